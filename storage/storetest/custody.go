package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// RecipientStore is custody's store: keys, disclosures and re-seal tasks.
type RecipientStore interface {
	custody.KeyStore
	custody.DisclosureStore
	custody.ResealStore
}

// CustodyCaseStore is the case store custody reads open cases from.
type CustodyCaseStore interface {
	CaseStore
	OpenCasesWithIdentity(ctx context.Context, prefix string) ([]*intake.Case, error)
}

// CustodyStores are custody's store and the case store whose identities it re-seals,
// on one database (ReplaceIdentity writes the case).
type CustodyStores struct {
	Recipients RecipientStore
	Cases      CustodyCaseStore
}

// Custody is the suite of custody's disclosures and re-seal tasks: the conditional
// steps (a decision, a claim, a replaced identity) have exactly one winner among 32
// at once; a wrong or stale condition changes nothing; lists are oldest first and
// leave out the re-sealed copies; OpenCasesWithIdentity scopes by division prefix.
// newStores returns fresh, empty stores on one database.
func Custody(t *testing.T, newStores func(t *testing.T) CustodyStores) {
	run(t, newStores, []scenario[CustodyStores]{
		{"DisclosureLifecycle", testDisclosureLifecycle},
		{"DisclosureOneDecider", testDisclosureOneDecider},
		{"TaskLifecycle", testTaskLifecycle},
		{"TaskOneClaimer", testTaskOneClaimer},
		{"ReplaceIdentity", testReplaceIdentity},
		{"ReplaceIdentityOneWinner", testReplaceIdentityOneWinner},
		{"OpenCasesWithIdentity", testOpenCasesWithIdentity},
	})
}

func disclosure(i int, caseID string, requested time.Time) custody.Disclosure {
	return custody.Disclosure{ID: fmt.Sprintf("dis-%d", i), CaseID: caseID, Case: "QF-330782-2026-000001", Division: "330782001",
		UnitID: "u-yw", Requester: fmt.Sprintf("staff-%d", i), RequesterRecipient: "age1pq1requester", Reason: "核实举报人联系方式",
		Status: custody.Pending, RequestedAt: requested, ExpiresAt: requested.Add(7 * 24 * time.Hour)}
}

func utcDisclosure(d custody.Disclosure) custody.Disclosure {
	d.RequestedAt, d.ExpiresAt = d.RequestedAt.UTC(), d.ExpiresAt.UTC()
	for _, p := range []**time.Time{&d.DecidedAt, &d.CompletedAt, &d.CancelledAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return d
}

func testDisclosureLifecycle(t *testing.T, s CustodyStores) {
	ctx := context.Background()
	r := s.Recipients
	if ds, err := r.OpenDisclosures(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("OpenDisclosures on empty = %v, %v", ds, err)
	}
	_, err := r.Disclosure(ctx, "dis-none")
	wantCode(t, err, qingfeng.ENOTFOUND)

	// Inserted out of order; another case's request; one on a second unit's division.
	a, b, other := disclosure(1, "case-a", base.Add(time.Hour)), disclosure(2, "case-a", base), disclosure(3, "case-b", base.Add(time.Minute))
	b.UnitDivision = "330100"
	for _, d := range []custody.Disclosure{a, b, other} {
		if err := r.InsertDisclosure(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, r.InsertDisclosure(ctx, disclosure(1, "case-c", base)), qingfeng.ECONFLICT) // a's id again
	got, err := r.Disclosure(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := utcDisclosure(a); !reflect.DeepEqual(got, want) {
		t.Fatalf("Disclosure = %+v\nwant %+v", got, want)
	}
	list, err := r.Disclosures(ctx, "case-a")
	if err != nil {
		t.Fatal(err)
	}
	if want := []custody.Disclosure{utcDisclosure(b), utcDisclosure(a)}; !reflect.DeepEqual(list, want) {
		t.Fatalf("Disclosures(case-a) = %+v\nwant %+v", list, want)
	}

	// Approve a: the wrong from status, or past the expiry, changes nothing.
	now := base.Add(2 * time.Hour)
	approve := custody.DisclosureUpdate{Status: custody.Approved, DecidedBy: "cust-1", DecidedAt: now, DecisionReason: "同意"}
	wantCode(t, r.UpdateDisclosure(ctx, a.ID, custody.Approved, now, approve), qingfeng.ECONFLICT)
	wantCode(t, r.UpdateDisclosure(ctx, a.ID, custody.Pending, a.ExpiresAt, approve), qingfeng.ECONFLICT)
	wantCode(t, r.UpdateDisclosure(ctx, "dis-none", custody.Pending, now, approve), qingfeng.ECONFLICT)
	if got, _ := r.Disclosure(ctx, a.ID); got.Status != custody.Pending || got.DecidedAt != nil || got.DecidedBy != "" {
		t.Fatalf("a refused update changed the request: %+v", got)
	}
	if err := r.UpdateDisclosure(ctx, a.ID, custody.Pending, now, approve); err != nil {
		t.Fatal(err)
	}
	// Deny b; cancel other.
	if err := r.UpdateDisclosure(ctx, b.ID, custody.Pending, now, custody.DisclosureUpdate{Status: custody.Denied, DecidedBy: "cust-2", DecidedAt: now, DecisionReason: "理由不足"}); err != nil {
		t.Fatal(err)
	}
	open, err := r.OpenDisclosures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open[0].ID != other.ID || open[1].ID != a.ID || open[1].Status != custody.Approved {
		t.Fatalf("OpenDisclosures = %+v, want other (pending) then a (approved)", open)
	}
	if err := r.UpdateDisclosure(ctx, other.ID, custody.Pending, now, custody.DisclosureUpdate{Status: custody.Cancelled, CancelledAt: now, CancelReason: "申请人登记的公钥已注销"}); err != nil {
		t.Fatal(err)
	}

	// Complete a with the re-sealed identity: only Disclosure returns it.
	later := now.Add(time.Minute)
	resealed := []byte("age-encryption.org/v1\n-> mlkem768x25519 ...\x00\xff")
	if err := r.UpdateDisclosure(ctx, a.ID, custody.Approved, later, custody.DisclosureUpdate{Status: custody.Completed, CompletedAt: later, Resealed: resealed}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, r.UpdateDisclosure(ctx, a.ID, custody.Approved, later, custody.DisclosureUpdate{Status: custody.Completed, CompletedAt: later, Resealed: []byte("second")}), qingfeng.ECONFLICT)
	want := utcDisclosure(a)
	nowUTC, laterUTC := now.UTC(), later.UTC()
	want.Status, want.DecidedBy, want.DecidedAt, want.DecisionReason = custody.Completed, "cust-1", &nowUTC, "同意"
	want.CompletedAt, want.Resealed = &laterUTC, resealed
	if got, err := r.Disclosure(ctx, a.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("completed Disclosure = %+v, %v\nwant %+v", got, err, want)
	}
	list, _ = r.Disclosures(ctx, "case-a")
	if len(list) != 2 || list[1].ID != a.ID || list[1].Resealed != nil || list[1].Status != custody.Completed || list[0].Status != custody.Denied {
		t.Fatalf("Disclosures after completion = %+v (the re-sealed copy must not be listed)", list)
	}
	if got, _ := r.Disclosure(ctx, other.ID); got.Status != custody.Cancelled || got.CancelledAt == nil || !got.CancelledAt.Equal(now) || got.CancelReason == "" {
		t.Fatalf("cancelled Disclosure = %+v", got)
	}
	if open, _ := r.OpenDisclosures(ctx); len(open) != 0 {
		t.Fatalf("OpenDisclosures after every request was decided = %+v", open)
	}
}

// testDisclosureOneDecider: 32 custodians decide one request at once, half approving,
// half denying; exactly one decision is recorded, the winner's.
func testDisclosureOneDecider(t *testing.T, s CustodyStores) {
	ctx := context.Background()
	d := disclosure(1, "case-a", base)
	if err := s.Recipients.InsertDisclosure(ctx, d); err != nil {
		t.Fatal(err)
	}
	const n = 32
	now := base.Add(time.Hour)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		status := custody.Approved
		if i%2 == 1 {
			status = custody.Denied
		}
		wg.Go(func() {
			errs[i] = s.Recipients.UpdateDisclosure(ctx, d.ID, custody.Pending, now,
				custody.DisclosureUpdate{Status: status, DecidedBy: fmt.Sprintf("cust-%d", i), DecidedAt: now, DecisionReason: "决定"})
		})
	}
	wg.Wait()
	winner := wantOneWinner(t, errs)
	got, err := s.Recipients.Disclosure(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := custody.Approved
	if winner%2 == 1 {
		wantStatus = custody.Denied
	}
	if got.DecidedBy != fmt.Sprintf("cust-%d", winner) || got.Status != wantStatus {
		t.Fatalf("stored decision %s by %s, the winner was cust-%d (%s)", got.Status, got.DecidedBy, winner, wantStatus)
	}
}

// wantOneWinner checks that exactly one of errs is nil and the others ECONFLICT, and
// returns the winner's index.
func wantOneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("both %d and %d won", winner, i)
			}
			winner = i
		case qingfeng.ECONFLICT:
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no attempt won")
	}
	return winner
}

func task(i int, caseID string, created time.Time) custody.ResealTask {
	return custody.ResealTask{ID: fmt.Sprintf("task-%d", i), CaseID: caseID, Case: "QF-330782-2026-000001", Division: "330782001",
		Target: "330100", Reason: "transfer", ResealTo: []string{"age1pq1a", "age1pq1b"}, Status: custody.TaskPending, CreatedAt: created}
}

func utcTask(t custody.ResealTask) custody.ResealTask {
	t.CreatedAt = t.CreatedAt.UTC()
	if t.DoneAt != nil {
		u := t.DoneAt.UTC()
		t.DoneAt = &u
	}
	return t
}

func testTaskLifecycle(t *testing.T, s CustodyStores) {
	ctx := context.Background()
	r := s.Recipients
	if ts, err := r.PendingTasks(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("PendingTasks on empty = %v, %v", ts, err)
	}
	_, err := r.Task(ctx, "task-none")
	wantCode(t, err, qingfeng.ENOTFOUND)
	a, b, other := task(1, "case-a", base.Add(time.Hour)), task(2, "case-a", base), task(3, "case-b", base.Add(time.Minute))
	other.Reason, other.Target = "custodians_changed", "330782001"
	for _, x := range []custody.ResealTask{a, b, other} {
		if err := r.InsertTask(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, r.InsertTask(ctx, task(1, "case-c", base)), qingfeng.ECONFLICT)
	if got, err := r.Task(ctx, a.ID); err != nil || !reflect.DeepEqual(got, utcTask(a)) {
		t.Fatalf("Task = %+v, %v\nwant %+v", got, err, utcTask(a))
	}
	all, err := r.PendingTasks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []custody.ResealTask{utcTask(b), utcTask(other), utcTask(a)}; !reflect.DeepEqual(all, want) {
		t.Fatalf("PendingTasks = %+v\nwant %+v", all, want)
	}
	ofA, err := r.PendingCaseTasks(ctx, "case-a")
	if err != nil {
		t.Fatal(err)
	}
	if want := []custody.ResealTask{utcTask(b), utcTask(a)}; !reflect.DeepEqual(ofA, want) {
		t.Fatalf("PendingCaseTasks(case-a) = %+v\nwant %+v", ofA, want)
	}

	at := base.Add(2 * time.Hour)
	wantCode(t, r.SetTaskStatus(ctx, a.ID, custody.TaskDone, custody.TaskPending, "", at), qingfeng.ECONFLICT)
	wantCode(t, r.SetTaskStatus(ctx, "task-none", custody.TaskPending, custody.TaskDone, "cust-1", at), qingfeng.ECONFLICT)
	if err := r.SetTaskStatus(ctx, b.ID, custody.TaskPending, custody.TaskSuperseded, "", at); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTaskStatus(ctx, a.ID, custody.TaskPending, custody.TaskDone, "cust-1", at); err != nil {
		t.Fatal(err)
	}
	wantCode(t, r.SetTaskStatus(ctx, a.ID, custody.TaskPending, custody.TaskDone, "cust-2", at), qingfeng.ECONFLICT)
	got, _ := r.Task(ctx, a.ID)
	if got.Status != custody.TaskDone || got.DoneBy != "cust-1" || got.DoneAt == nil || !got.DoneAt.Equal(at) {
		t.Fatalf("done task = %+v", got)
	}
	if got, _ := r.Task(ctx, b.ID); got.Status != custody.TaskSuperseded || got.DoneBy != "" || got.DoneAt != nil {
		t.Fatalf("superseded task = %+v", got)
	}
	if ofA, _ := r.PendingCaseTasks(ctx, "case-a"); len(ofA) != 0 {
		t.Fatalf("PendingCaseTasks after both were settled = %+v", ofA)
	}
	// Given back (the identity changed after the claim): pending again, not done by anyone.
	if err := r.SetTaskStatus(ctx, a.ID, custody.TaskDone, custody.TaskPending, "", at); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Task(ctx, a.ID); !reflect.DeepEqual(got, utcTask(a)) {
		t.Fatalf("task given back = %+v\nwant %+v", got, utcTask(a))
	}
	if all, _ := r.PendingTasks(ctx); len(all) != 2 || all[0].ID != other.ID || all[1].ID != a.ID {
		t.Fatalf("PendingTasks at the end = %+v", all)
	}
}

// testTaskOneClaimer: 32 custodians claim a task while it is superseded; exactly one
// change wins.
func testTaskOneClaimer(t *testing.T, s CustodyStores) {
	ctx := context.Background()
	x := task(1, "case-a", base)
	if err := s.Recipients.InsertTask(ctx, x); err != nil {
		t.Fatal(err)
	}
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		to, by := custody.TaskDone, fmt.Sprintf("cust-%d", i)
		if i%4 == 3 {
			to, by = custody.TaskSuperseded, ""
		}
		wg.Go(func() {
			errs[i] = s.Recipients.SetTaskStatus(ctx, x.ID, custody.TaskPending, to, by, base.Add(time.Hour))
		})
	}
	wg.Wait()
	winner := wantOneWinner(t, errs)
	got, err := s.Recipients.Task(ctx, x.ID)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case winner%4 == 3 && (got.Status != custody.TaskSuperseded || got.DoneBy != ""),
		winner%4 != 3 && (got.Status != custody.TaskDone || got.DoneBy != fmt.Sprintf("cust-%d", winner)):
		t.Fatalf("stored %+v, the winner was attempt %d", got, winner)
	}
}

// identityCase is a stored case with an identity sealed to old, in status (default registered).
func identityCase(t *testing.T, s CustodyStores, i int, division string, old []byte, status ...intake.Status) *intake.Case {
	t.Helper()
	c := NewCase(i, "u-yw", division, base)
	if len(status) > 0 {
		c.Status = status[0]
	}
	c.Identity = &intake.SealedIdentity{Ciphertext: old, Recipients: []string{"age1pq1old"}, SealedOnDevice: true, SealedAt: base}
	if err := s.Cases.CreateCase(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func testReplaceIdentity(t *testing.T, s CustodyStores) {
	ctx := context.Background()
	old := []byte("age-encryption.org/v1\nOLD\x00\x01\xfe")
	c := identityCase(t, s, 1, "330782001", old)
	before, err := s.Cases.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Hour)
	next := intake.SealedIdentity{Ciphertext: []byte("age-encryption.org/v1\nNEW\x00"), Recipients: []string{"age1pq1a", "age1pq1b"}, SealedAt: at}
	// Not the stored ciphertext (a prefix of it, nothing, another case's): no change.
	for _, wrong := range [][]byte{old[:len(old)-1], nil, []byte("age-encryption.org/v1\nOTHER")} {
		wantCode(t, s.Recipients.ReplaceIdentity(ctx, c.ID, wrong, next), qingfeng.ECONFLICT)
	}
	wantCode(t, s.Recipients.ReplaceIdentity(ctx, "case-none", old, next), qingfeng.ECONFLICT)
	if got, _ := s.Cases.CaseByID(ctx, c.ID); !reflect.DeepEqual(got.Identity, before.Identity) {
		t.Fatalf("a refused replacement changed the identity: %+v", got.Identity)
	}
	if err := s.Recipients.ReplaceIdentity(ctx, c.ID, old, next); err != nil {
		t.Fatal(err)
	}
	got, err := s.Cases.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := next
	want.SealedAt = at.UTC()
	if !reflect.DeepEqual(*got.Identity, want) {
		t.Fatalf("identity after replacement = %+v\nwant %+v", *got.Identity, want)
	}
	// Only the identity changed: the workflow's version stays, so that a re-seal never
	// fails staff's concurrent step.
	if got.Version != before.Version || got.Status != before.Status || !reflect.DeepEqual(got.Decision, before.Decision) {
		t.Fatalf("ReplaceIdentity changed more than the identity: version %d→%d", before.Version, got.Version)
	}
	// The old ciphertext no longer matches.
	wantCode(t, s.Recipients.ReplaceIdentity(ctx, c.ID, old, next), qingfeng.ECONFLICT)
	// An anonymous case has nothing to replace.
	anon := NewCase(2, "u-yw", "330782001", base)
	anon.Identity, anon.RealName = nil, false
	if err := s.Cases.CreateCase(ctx, anon); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.Recipients.ReplaceIdentity(ctx, anon.ID, nil, next), qingfeng.ECONFLICT)
	if got, _ := s.Cases.CaseByID(ctx, anon.ID); got.Identity != nil {
		t.Fatalf("an anonymous case got an identity: %+v", got.Identity)
	}
}

// testReplaceIdentityOneWinner: 32 custodians upload a re-sealed identity for the same
// downloaded ciphertext at once; exactly one replaces it, and it is the winner's.
func testReplaceIdentityOneWinner(t *testing.T, s CustodyStores) {
	ctx := context.Background()
	old := []byte("age-encryption.org/v1\nOLD")
	c := identityCase(t, s, 1, "330782001", old)
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Recipients.ReplaceIdentity(ctx, c.ID, old, intake.SealedIdentity{
				Ciphertext: fmt.Appendf(nil, "age-encryption.org/v1\nNEW-%d", i), Recipients: []string{fmt.Sprintf("age1pq1-%d", i)}, SealedAt: base})
		})
	}
	wg.Wait()
	winner := wantOneWinner(t, errs)
	got, err := s.Cases.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Identity.Ciphertext, fmt.Appendf(nil, "age-encryption.org/v1\nNEW-%d", winner)) ||
		!slices.Equal(got.Identity.Recipients, []string{fmt.Sprintf("age1pq1-%d", winner)}) {
		t.Fatalf("stored identity %q for %v, the winner was %d", got.Identity.Ciphertext, got.Identity.Recipients, winner)
	}
}

func testOpenCasesWithIdentity(t *testing.T, s CustodyStores) {
	ctx := context.Background()
	yw := identityCase(t, s, 1, "330782001", []byte("ct-1"))
	yw2 := identityCase(t, s, 2, "330782", []byte("ct-2"))
	hz := identityCase(t, s, 3, "330102", []byte("ct-3"))
	identityCase(t, s, 4, "330782002", []byte("ct-4"), intake.StatusClosed)
	identityCase(t, s, 6, "330102", []byte("ct-6"), intake.StatusConcluded) // concluded is not closed
	anon := NewCase(5, "u-yw", "330782001", base)
	anon.Identity, anon.RealName = nil, false
	if err := s.Cases.CreateCase(ctx, anon); err != nil {
		t.Fatal(err)
	}
	ids := func(prefix string) []string {
		t.Helper()
		cs, err := s.Cases.OpenCasesWithIdentity(ctx, prefix)
		if err != nil {
			t.Fatalf("OpenCasesWithIdentity(%q): %v", prefix, err)
		}
		var out []string
		for _, c := range cs {
			if c.Identity == nil || len(c.Identity.Ciphertext) == 0 {
				t.Errorf("case %s listed without its identity", c.ID)
			}
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(xs ...string) []string { slices.Sort(xs); return xs }
	for prefix, want := range map[string][]string{
		"":          sorted(yw.ID, yw2.ID, hz.ID, "case-0006"),
		"330782":    sorted(yw.ID, yw2.ID),
		"330782001": {yw.ID},
		"3301":      sorted(hz.ID, "case-0006"),
		"3399":      nil,
	} {
		if got := ids(prefix); !slices.Equal(got, want) {
			t.Errorf("OpenCasesWithIdentity(%q) = %v, want %v", prefix, got, want)
		}
	}
	for _, bad := range []string{"33a", "３３０７", "3307\u200b", "1234567890123"} {
		_, err := s.Cases.OpenCasesWithIdentity(ctx, bad)
		wantCode(t, err, qingfeng.EINVALID)
	}
	// A re-sealed identity is still listed, with its new recipients.
	if err := s.Recipients.ReplaceIdentity(ctx, hz.ID, []byte("ct-3"), intake.SealedIdentity{Ciphertext: []byte("ct-3b"), Recipients: []string{"age1pq1hz"}, SealedAt: base}); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Cases.OpenCasesWithIdentity(ctx, "330102")
	if err == nil {
		cs = slices.DeleteFunc(cs, func(c *intake.Case) bool { return c.ID != hz.ID })
	}
	if err != nil || len(cs) != 1 || string(cs[0].Identity.Ciphertext) != "ct-3b" || !slices.Equal(cs[0].Identity.Recipients, []string{"age1pq1hz"}) {
		t.Fatalf("after a re-seal: %+v, %v", cs, err)
	}
}
