package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/retention"
	"github.com/qingfeng-zj/qingfeng/storage/blob"
)

// RetentionStore is a case store the purge runs on.
type RetentionStore interface {
	CaseStore
	intake.IdempotencyStore
	retention.Store
}

// RetentionEnv is one fresh, empty database as the retention suite needs it.
type RetentionEnv struct {
	Cases  RetentionStore
	Leases retention.Leases
	Audit  audit.Store
	// Disclosures is the store's custody.DisclosureStore; nil while the store has none
	// (the disclosure scenarios are then skipped, and say so).
	Disclosures custody.DisclosureStore
	// Dump is every value the database holds, as text and raw bytes: no marker of a
	// purged case may be found in it.
	Dump func(t *testing.T) string
}

// Retention is the suite of retention.Store, through retention.Purger on a real
// object store (gofakes3): what a purge destroys and what it keeps, the cases it must
// not touch (recent, reopened, closed again, closed without a step, unread reporter
// activity), the lease, a crash after the objects are deleted, a change during the
// purge, object store and audit failures, and 16 concurrent purges of one case.
func Retention(t *testing.T, newEnv func(t *testing.T) RetentionEnv) {
	run(t, newEnv, []scenario[RetentionEnv]{
		{"Purge", testRetentionPurge},
		{"Lease", testRetentionLease},
		{"CrashRetry", testRetentionCrashRetry},
		{"ChangedDuringPurge", testRetentionChangedDuringPurge},
		{"Failures", testRetentionFailures},
		{"AnonymiseConcurrent", testAnonymiseConcurrent},
		{"UnreadActivity", testRetentionKeepsUnreadActivity},
		{"SentAgainAfterPurge", testRetentionSentAgainAfterPurge},
	})
}

// testRetentionSentAgainAfterPurge: before the purge, a file the case holds, sent again
// by its uploader, is answered with the entry held; after it (the objects gone, the
// keys cleared), the same file is new evidence again and is appended.
func testRetentionSentAgainAfterPurge(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	blobs := MemObjects(t)
	s := env.Cases
	f := ClosedCase(t, env, blobs, 1, RetentionNow.AddDate(-6, 0, 0), false, nil)
	held := f.Case.Evidence[0]
	again := func(id string) intake.Evidence {
		e := held
		e.ID, e.ObjectKey, e.OriginalKey, e.UploadedAt = id, "cases/"+f.Case.ID+"/"+id, "", RetentionNow
		return e
	}
	kept, err := s.AddEvidence(ctx, f.Case.ID, []intake.Evidence{again("before")}, 1<<30)
	if err != nil || len(kept) != 1 || kept[0].ID != held.ID {
		t.Fatalf("before the purge: answered %+v, %v; want the entry held, %s", kept, err, held.ID)
	}
	if n, err := NewPurger(env, blobs, "x").RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	kept, err = s.AddEvidence(ctx, f.Case.ID, []intake.Evidence{again("after")}, 1<<30)
	if err != nil || len(kept) != 1 || kept[0].ID != "after" {
		t.Fatalf("after the purge: answered %+v, %v; want it appended", kept, err)
	}
	got, err := s.CaseByID(ctx, f.Case.ID)
	if err != nil || len(got.Evidence) != len(f.Case.Evidence)+1 || got.Evidence[len(got.Evidence)-1].ObjectKey == "" {
		t.Errorf("after the purge: %d entries (%v), want %d and the new one's object", len(got.Evidence), err, len(f.Case.Evidence)+1)
	}
}

// RetentionPeriod is the period the suite purges with: five years.
const RetentionPeriod = 5 * 365 * 24 * time.Hour

// RetentionNow is the suite's "now".
var RetentionNow = time.Date(2032, 6, 1, 2, 0, 0, 0, time.UTC)

// MemObjects is an S3 server in memory (gofakes3) with a fresh bucket, through the
// real blob.Store.
func MemObjects(t *testing.T) *blob.Store {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	s, err := blob.Open(context.Background(), blob.Config{Endpoint: strings.TrimPrefix(srv.URL, "http://"),
		AccessKey: "qingfeng-test", SecretKey: "qingfeng-test-secret", Bucket: "qf-retention"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// RetentionFixture is a case with everything the purge must destroy: a sealed
// identity, identifying text, evidence objects (one with a kept original), messages,
// disclosure requests (one completed with a re-sealed copy, one approved and waiting
// for it) and an idempotency record with a sealed receipt. Markers are unique per
// case, so that tests can look for them anywhere.
type RetentionFixture struct {
	Case    *intake.Case
	Tag     string
	Markers []string // plaintext that must not survive the purge
}

// ClosedCase builds case i closed at closedAt (after steps about a year earlier),
// lets shape change it (nil: none), and stores it with its messages, disclosures,
// idempotency record and objects.
func ClosedCase(t *testing.T, env RetentionEnv, blobs intake.EvidenceStore, i int, closedAt time.Time, person bool, shape func(*intake.Case)) RetentionFixture {
	t.Helper()
	ctx := context.Background()
	s := env.Cases
	received := closedAt.AddDate(-1, 0, 0)
	c := NewCase(i, "330782-mz", "330782", received)
	tag := fmt.Sprintf("%04d", i)
	f := RetentionFixture{Case: c, Tag: tag, Markers: []string{
		"DESC-MARKER-" + tag, "ADDR-MARKER-" + tag, "NAME-MARKER-" + tag, "MSG-MARKER-" + tag, "IDENTITY-MARKER-" + tag,
		"RECEIPT-MARKER-" + tag, "EVIDENCE-MARKER-" + tag, "REASON-MARKER-" + tag,
	}}
	if env.Disclosures != nil {
		f.Markers = append(f.Markers, "RESEALED-MARKER-"+tag)
	}
	c.Description = "以会员费名义强制收费 DESC-MARKER-" + tag
	c.Location.Address = "稠城街道某路1号 ADDR-MARKER-" + tag
	if person {
		c.Subject = intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{
			Name: "张某 NAME-MARKER-" + tag, Position: "科长 NAME-MARKER-" + tag, Employer: "某局 NAME-MARKER-" + tag}}
	} else {
		c.Subject.Organization.Name = "义乌市某某协会 NAME-MARKER-" + tag
	}
	c.Identity.Ciphertext = []byte("age-encryption.org/v1\nIDENTITY-MARKER-" + tag)
	c.Status = intake.StatusClosed
	c.AcceptanceDue = ""
	c.Decision.Why = "改派 REASON-MARKER-" + tag
	c.EarlierDecisions = []intake.Decision{{UnitID: "330782-jw", UnitName: "义乌市纪委", Router: "rules/v1", DecidedAt: received,
		By: "staff-1", Why: "REASON-MARKER-" + tag}}
	step := func(action string, from, to intake.Status, at time.Time) intake.Transition {
		return intake.Transition{Action: action, From: from, To: to, By: "staff-1", At: at, Reason: "与张三核实 REASON-MARKER-" + tag}
	}
	c.Transitions = []intake.Transition{
		step("accept", intake.StatusRegistered, intake.StatusAccepted, received.Add(24*time.Hour)),
		step("dispose", intake.StatusAccepted, intake.StatusDisposed, received.Add(48*time.Hour)),
		step("conclude", intake.StatusDisposed, intake.StatusConcluded, closedAt.Add(-48*time.Hour)),
		step("give_feedback", intake.StatusConcluded, intake.StatusFeedbackGiven, closedAt.Add(-24*time.Hour)),
		step("close", intake.StatusFeedbackGiven, intake.StatusClosed, closedAt),
	}
	c.Outcome = &intake.Outcome{Result: "substantiated"}
	for j, orig := range []bool{true, false} {
		ev := intake.Evidence{ID: fmt.Sprintf("ev-%s-%d", tag, j), ObjectKey: fmt.Sprintf("cases/%s/ev-%d", c.ID, j),
			ContentType: "image/jpeg", Size: 100 + int64(j), SHA256Received: fmt.Sprintf("recv-%s-%d", tag, j),
			SHA256Stored: fmt.Sprintf("stored-%s-%d", tag, j), MetadataRemoved: true, UploadedBy: "reporter", UploadedAt: received}
		if orig {
			ev.OriginalKey = fmt.Sprintf("originals/%s/ev-%d", c.ID, j)
		}
		c.Evidence = append(c.Evidence, ev)
		c.EvidenceBytes += ev.Size
	}
	if shape != nil {
		shape(c)
	}
	if err := s.CreateCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, key := range retention.ObjectKeys(c.Evidence) {
		if _, err := blobs.Put(ctx, key, strings.NewReader("EVIDENCE-MARKER-"+tag+" "+key), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	for j, body := range []string{"举报人补充：我是王五 MSG-MARKER-" + tag, "请补充材料 MSG-MARKER-" + tag} {
		if err := s.AddMessage(ctx, &intake.Message{ID: fmt.Sprintf("m-%s-%d", tag, j), CaseID: c.ID, From: "reporter",
			Kind: "message", Body: body, CreatedAt: received.Add(time.Duration(j) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// The unit read the reporter's messages before it closed the case.
	if ok, err := s.MarkActivitySeen(ctx, c.ID, c.UnitID, 2, closedAt); err != nil || !ok {
		t.Fatalf("mark activity seen: %v, %v", ok, err)
	}
	if env.Disclosures != nil {
		for j, d := range []custody.Disclosure{
			{Status: custody.Completed, Resealed: []byte("age-encryption.org/v1\nRESEALED-MARKER-" + tag)},
			{Status: custody.Approved},
		} {
			d.ID, d.CaseID, d.Case, d.Division, d.UnitID = fmt.Sprintf("dis-%s-%d", tag, j), c.ID, c.Number, "330782", c.UnitID
			d.Requester, d.RequesterRecipient, d.Reason = "staff-1", "age1staff", "核查线索"
			// Open requests far in the future: only the purge can expire them.
			d.RequestedAt, d.ExpiresAt = received, RetentionNow.AddDate(1, 0, 0)
			if err := env.Disclosures.InsertDisclosure(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.ClaimIdempotency(ctx, &intake.IdempotencyRecord{KeyHash: "idem-" + tag, RequestHash: "req", Owner: "o", Done: true, CaseID: c.ID,
		CaseNumber: c.Number, ReceiptEnc: []byte("RECEIPT-MARKER-" + tag), CreatedAt: received,
		ExpiresAt: RetentionNow.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	// The case as stored, for comparisons.
	stored, err := s.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.Case = stored
	return f
}

// NewPurger is a purger over env with the suite's period and clock.
func NewPurger(env RetentionEnv, blobs retention.Blobs, holder string) *retention.Purger {
	return &retention.Purger{Cases: env.Cases, Leases: env.Leases, Blobs: blobs, Audit: &audit.Log{Store: env.Audit},
		Period: RetentionPeriod, Now: func() time.Time { return RetentionNow }, Holder: holder}
}

// CheckPurged checks everything the purge promises about f's case.
func CheckPurged(t *testing.T, env RetentionEnv, blobs intake.EvidenceStore, f RetentionFixture) {
	t.Helper()
	ctx := context.Background()
	s := env.Cases
	got, err := s.CaseByID(ctx, f.Case.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identity != nil {
		t.Errorf("%s: identity kept", f.Case.Number)
	}
	if got.PurgedAt == nil {
		t.Errorf("%s: not marked purged", f.Case.Number)
	}
	if got.Description != retention.PurgedDescription {
		t.Errorf("%s: description %q", f.Case.Number, got.Description)
	}
	if got.Location != (intake.Location{Division: f.Case.Location.Division}) {
		t.Errorf("%s: location %+v, want the division only", f.Case.Number, got.Location)
	}
	switch {
	case f.Case.Subject.Person != nil:
		if p := got.Subject.Person; got.Subject.Kind != intake.SubjectPerson || p == nil || *p != (intake.PersonSubject{}) {
			t.Errorf("%s: subject %+v %+v", f.Case.Number, got.Subject, got.Subject.Person)
		}
	default:
		want := intake.OrgSubject{CreditCode: f.Case.Subject.Organization.CreditCode}
		if o := got.Subject.Organization; got.Subject.Kind != intake.SubjectOrganization || o == nil || *o != want {
			t.Errorf("%s: subject %+v %+v, want the credit code only", f.Case.Number, got.Subject, got.Subject.Organization)
		}
	}
	// Chain of custody: every entry stays with its hashes, size and type; no keys.
	if len(got.Evidence) != len(f.Case.Evidence) {
		t.Fatalf("%s: %d evidence entries, want %d", f.Case.Number, len(got.Evidence), len(f.Case.Evidence))
	}
	for i, ev := range got.Evidence {
		want := f.Case.Evidence[i]
		want.ObjectKey, want.OriginalKey, want.UploadedAt = "", "", want.UploadedAt.UTC()
		if !reflect.DeepEqual(ev, want) {
			t.Errorf("%s: evidence %d\n got %+v\nwant %+v", f.Case.Number, i, ev, want)
		}
	}
	for _, key := range retention.ObjectKeys(f.Case.Evidence) {
		rc, _, err := blobs.Get(ctx, key)
		if err == nil {
			rc.Close()
			t.Errorf("%s: object %s still stored", f.Case.Number, key)
		} else if qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
			t.Errorf("%s: get %s: %v", f.Case.Number, key, err)
		}
	}
	// The workflow stays, without its free text: statistics count steps and dates.
	if len(got.Transitions) != len(f.Case.Transitions) || got.Status != intake.StatusClosed || got.Outcome == nil {
		t.Errorf("%s: workflow %v %v %v", f.Case.Number, got.Status, len(got.Transitions), got.Outcome)
	}
	for i, tr := range got.Transitions {
		if tr.Reason != "" || tr.Action != f.Case.Transitions[i].Action || !tr.At.Equal(f.Case.Transitions[i].At) {
			t.Errorf("%s: transition %d %+v", f.Case.Number, i, tr)
		}
	}
	if got.Number != f.Case.Number || got.Category != f.Case.Category || !got.ReceivedAt.Equal(f.Case.ReceivedAt) || !got.RealName {
		t.Errorf("%s: statistics fields changed: %s %s %v", f.Case.Number, got.Number, got.Category, got.ReceivedAt)
	}
	msgs, err := s.Messages(ctx, f.Case.ID)
	if err != nil || len(msgs) != 0 {
		t.Errorf("%s: %d messages left, %v", f.Case.Number, len(msgs), err)
	}
	if env.Disclosures != nil {
		ds, err := env.Disclosures.Disclosures(ctx, f.Case.ID)
		if err != nil || len(ds) != 2 {
			t.Fatalf("%s: %d disclosures, %v", f.Case.Number, len(ds), err)
		}
		for _, d := range ds {
			full, err := env.Disclosures.Disclosure(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if full.Resealed != nil || (full.Status != custody.Completed && full.Status != custody.Expired) {
				t.Errorf("%s: disclosure %s status %s, %d bytes re-sealed", f.Case.Number, d.ID, full.Status, len(full.Resealed))
			}
		}
	}
	_, err = s.Idempotency(ctx, "idem-"+f.Tag)
	wantCode(t, err, qingfeng.ENOTFOUND)
	// Whatever else the database holds: no marker anywhere in it.
	all := env.Dump(t)
	for _, m := range f.Markers {
		if strings.Contains(all, m) {
			t.Errorf("%s: %q is still in the database", f.Case.Number, m)
		}
	}
}

// purgeEntries is the audit log's purge entries, by case number.
func purgeEntries(t *testing.T, env RetentionEnv) map[string][]audit.Entry {
	t.Helper()
	es, err := env.Audit.List(context.Background(), audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]audit.Entry{}
	for _, e := range es {
		if e.Action == retention.AuditAction {
			out[e.Case] = append(out[e.Case], e)
		}
	}
	return out
}

func logNoDisclosures(t *testing.T, env RetentionEnv) {
	if env.Disclosures == nil {
		t.Log("this store keeps no disclosures yet: their destruction is not checked")
	}
}

func testRetentionPurge(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	logNoDisclosures(t, env)
	blobs := MemObjects(t)
	s := env.Cases
	old := RetentionNow.AddDate(-6, 0, 0)

	due := []RetentionFixture{
		ClosedCase(t, env, blobs, 1, old, false, nil),
		ClosedCase(t, env, blobs, 2, old.Add(time.Hour), true, nil),
	}
	recent := ClosedCase(t, env, blobs, 3, RetentionNow.AddDate(-1, 0, 0), false, nil)
	// Closed long ago, then reopened: not closed now.
	reopened := ClosedCase(t, env, blobs, 4, old, false, func(c *intake.Case) {
		c.Transitions = append(c.Transitions, intake.Transition{Action: "reopen", From: intake.StatusClosed,
			To: intake.StatusAccepted, By: "staff-1", At: old.AddDate(1, 0, 0), Reason: "新线索"})
		c.Status = intake.StatusAccepted
	})
	// Reopened and closed again recently: the last close counts.
	reclosed := ClosedCase(t, env, blobs, 5, old, false, func(c *intake.Case) {
		c.Transitions = append(c.Transitions,
			intake.Transition{Action: "reopen", From: intake.StatusClosed, To: intake.StatusAccepted, By: "staff-1", At: old.AddDate(1, 0, 0), Reason: "新线索"},
			intake.Transition{Action: "close", From: intake.StatusAccepted, To: intake.StatusClosed, By: "staff-1", At: RetentionNow.AddDate(-1, 0, 0), Reason: "结案"})
	})
	// Closed with no recorded step: when is unknown, so it is kept.
	unknown := ClosedCase(t, env, blobs, 6, old, false, func(c *intake.Case) { c.Transitions = nil })
	// Closed long ago, with a reporter's message the unit has not read: kept until read.
	unread := ClosedCase(t, env, blobs, 7, old, false, nil)
	if err := s.AddMessage(ctx, &intake.Message{ID: "m-late", CaseID: unread.Case.ID, From: "reporter", Kind: "message",
		Body: "结案后补充 MSG-MARKER-0007", CreatedAt: RetentionNow.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	kept := []RetentionFixture{recent, reopened, reclosed, unknown, unread}
	before := map[string]*intake.Case{}
	for _, f := range kept {
		c, err := s.CaseByID(ctx, f.Case.ID)
		if err != nil {
			t.Fatal(err)
		}
		before[f.Case.ID] = c
	}

	p := NewPurger(env, blobs, "instance-1")
	dry, err := p.Due(ctx)
	if err != nil || len(dry) != 2 || dry[0].Number != due[0].Case.Number || dry[1].Number != due[1].Case.Number ||
		dry[0].Evidence != 2 || len(dry[0].ObjectKeys) != 3 || !dry[0].ClosedAt.Equal(old) {
		t.Fatalf("due %+v, %v", dry, err)
	}
	n, err := p.RunOnce(ctx)
	if err != nil || n != 2 {
		t.Fatalf("purged %d, %v; want 2", n, err)
	}
	for _, f := range due {
		CheckPurged(t, env, blobs, f)
	}
	entries := purgeEntries(t, env)
	for _, f := range due {
		es := entries[f.Case.Number]
		if len(es) != 1 || es[0].Actor != audit.ActorSystem || es[0].Detail["evidence"] != "2" {
			t.Errorf("%s: audit entries %+v", f.Case.Number, es)
		}
	}
	if len(entries) != 2 {
		t.Errorf("audit entries for %d cases, want 2", len(entries))
	}
	if r, err := audit.Verify(ctx, env.Audit); err != nil || !r.OK {
		t.Errorf("audit chain: %+v %v", r, err)
	}

	// The others are untouched: case, messages, objects, disclosed copies.
	for _, f := range kept {
		c, err := s.CaseByID(ctx, f.Case.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, before[f.Case.ID]) {
			t.Errorf("%s changed:\n got %+v\nwant %+v", f.Case.Number, c, before[f.Case.ID])
		}
		want := 2
		if f.Case.ID == unread.Case.ID {
			want = 3
		}
		if msgs, _ := s.Messages(ctx, f.Case.ID); len(msgs) != want {
			t.Errorf("%s: %d messages, want %d", f.Case.Number, len(msgs), want)
		}
		for _, key := range retention.ObjectKeys(f.Case.Evidence) {
			rc, _, err := blobs.Get(ctx, key)
			if err != nil {
				t.Errorf("%s: %v", f.Case.Number, err)
				continue
			}
			rc.Close()
		}
		if env.Disclosures != nil {
			if d, _ := env.Disclosures.Disclosure(ctx, "dis-"+f.Tag+"-0"); d.Resealed == nil {
				t.Errorf("%s: disclosed copy removed", f.Case.Number)
			}
		}
	}

	// Running again purges nothing more, and records nothing more; another instance,
	// once the lease has expired, neither.
	if n, err := p.RunOnce(ctx); err != nil || n != 0 {
		t.Errorf("second run purged %d, %v", n, err)
	}
	later := NewPurger(env, blobs, "instance-2")
	later.Now = func() time.Time { return RetentionNow.Add(time.Hour) }
	if n, err := later.RunOnce(ctx); err != nil || n != 0 {
		t.Errorf("run by another instance purged %d, %v", n, err)
	}
	if got := purgeEntries(t, env); len(got[due[0].Case.Number]) != 1 || len(got[due[1].Case.Number]) != 1 {
		t.Errorf("audit entries after rerun: %v", got)
	}
	// Anonymise on a purged case is a no-op; on an open one, at the wrong version or with
	// unread activity, a conflict that changes nothing.
	if err := s.Anonymise(ctx, due[0].Case.ID, 0, RetentionNow); err != nil {
		t.Errorf("anonymise again: %v", err)
	}
	c, _ := s.CaseByID(ctx, reopened.Case.ID)
	wantCode(t, s.Anonymise(ctx, reopened.Case.ID, c.Version, RetentionNow), qingfeng.ECONFLICT)
	c, _ = s.CaseByID(ctx, recent.Case.ID)
	wantCode(t, s.Anonymise(ctx, recent.Case.ID, c.Version-1, RetentionNow), qingfeng.ECONFLICT)
	c, _ = s.CaseByID(ctx, unread.Case.ID)
	wantCode(t, s.Anonymise(ctx, unread.Case.ID, c.Version, RetentionNow), qingfeng.ECONFLICT)
	for _, f := range kept {
		if c, _ := s.CaseByID(ctx, f.Case.ID); !reflect.DeepEqual(c, before[f.Case.ID]) {
			t.Errorf("%s changed by a refused Anonymise", f.Case.Number)
		}
	}
	wantCode(t, s.Anonymise(ctx, "no-such-case", 1, RetentionNow), qingfeng.ENOTFOUND)
}

func testRetentionLease(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	blobs := MemObjects(t)
	f := ClosedCase(t, env, blobs, 1, RetentionNow.AddDate(-6, 0, 0), false, nil)
	if ok, err := env.Leases.AcquireLease(ctx, retention.LeaseName, "server", RetentionNow, RetentionNow.Add(time.Minute)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if n, err := NewPurger(env, blobs, "cli").RunOnce(ctx); !errors.Is(err, retention.ErrLeaseHeld) || n != 0 {
		t.Fatalf("purged %d while another held the lease: %v", n, err)
	}
	if n, err := NewPurger(env, blobs, "server").RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("lease holder purged %d, %v", n, err)
	}
	CheckPurged(t, env, blobs, f)
}

// failingStore is a store whose Anonymise fails once, before doing anything: a crash
// after the evidence objects are deleted.
type failingStore struct {
	RetentionStore
	fail bool
}

func (s *failingStore) Anonymise(ctx context.Context, caseID string, version int64, at time.Time) error {
	if s.fail {
		s.fail = false
		return errors.New("simulated crash")
	}
	return s.RetentionStore.Anonymise(ctx, caseID, version, at)
}

func testRetentionCrashRetry(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	blobs := MemObjects(t)
	s := env.Cases
	f := ClosedCase(t, env, blobs, 1, RetentionNow.AddDate(-6, 0, 0), false, nil)
	p := NewPurger(env, blobs, "crashy")
	p.Cases = &failingStore{RetentionStore: s, fail: true}
	if n, err := p.RunOnce(ctx); err == nil || n != 0 {
		t.Fatalf("purged %d, %v; want the simulated crash", n, err)
	}
	// The objects are gone, the case still names them and keeps everything else.
	c, err := s.CaseByID(ctx, f.Case.ID)
	if err != nil || c.Identity == nil || c.Description != f.Case.Description || len(retention.ObjectKeys(c.Evidence)) != 3 {
		t.Fatalf("case after the crash: %+v, %v", c, err)
	}
	if _, _, err := blobs.Get(ctx, f.Case.Evidence[0].ObjectKey); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Fatalf("object after the crash: %v", err)
	}
	if cands, err := s.ClosedBefore(ctx, RetentionNow.Add(-RetentionPeriod), 10); err != nil || len(cands) != 1 || cands[0].CaseID != f.Case.ID {
		t.Fatalf("candidates after the crash: %+v, %v", cands, err)
	}
	// The retry deletes the (missing) objects again and finishes.
	if n, err := p.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("retry purged %d, %v", n, err)
	}
	CheckPurged(t, env, blobs, f)
	if es := purgeEntries(t, env)[f.Case.Number]; len(es) != 1 {
		t.Errorf("%d audit entries", len(es))
	}
}

// changingStore adds late evidence from the reporter to the case just before the
// first Anonymise, after the purge read the case: as a reporter uploading meanwhile.
type changingStore struct {
	RetentionStore
	once func()
}

func (s *changingStore) Anonymise(ctx context.Context, caseID string, version int64, at time.Time) error {
	if f := s.once; f != nil {
		s.once = nil
		f()
	}
	return s.RetentionStore.Anonymise(ctx, caseID, version, at)
}

// testRetentionChangedDuringPurge: evidence added to the case after the purge read it
// makes Anonymise refuse, so no object is left behind without its key; the upload,
// the reporter's, waits until the unit has read it; the next run deletes it too.
func testRetentionChangedDuringPurge(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	blobs := MemObjects(t)
	s := env.Cases
	f := ClosedCase(t, env, blobs, 1, RetentionNow.AddDate(-6, 0, 0), false, nil)
	late := intake.Evidence{ID: "late", ObjectKey: "cases/" + f.Case.ID + "/late", ContentType: "image/png", Size: 5,
		SHA256Received: "x", SHA256Stored: "y", UploadedBy: "reporter", UploadedAt: RetentionNow}
	p := NewPurger(env, blobs, "x")
	p.Cases = &changingStore{RetentionStore: s, once: func() {
		if _, err := blobs.Put(ctx, late.ObjectKey, strings.NewReader("EVIDENCE-MARKER-late"), "image/png"); err != nil {
			t.Error(err)
		}
		if _, err := s.AddEvidence(ctx, f.Case.ID, []intake.Evidence{late}, 1<<30); err != nil {
			t.Error(err)
		}
	}}
	if n, err := p.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("purged %d, %v; want the case skipped", n, err)
	}
	c, _ := s.CaseByID(ctx, f.Case.ID)
	if c.Identity == nil || len(c.Evidence) != 3 {
		t.Fatalf("case changed by a refused purge: %+v", c)
	}
	if n, err := p.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("purged %d, %v; want the unread upload kept", n, err)
	}
	if ok, err := s.MarkActivitySeen(ctx, c.ID, c.UnitID, c.ReporterActivityN, RetentionNow); err != nil || !ok {
		t.Fatalf("mark seen: %v, %v", ok, err)
	}
	if n, err := p.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("next run purged %d, %v", n, err)
	}
	f.Case.Evidence = append(f.Case.Evidence, late)
	f.Markers = append(f.Markers, "EVIDENCE-MARKER-late")
	CheckPurged(t, env, blobs, f)
}

// failingBlobs fails to delete one object (a server error, not a missing object).
type failingBlobs struct {
	*blob.Store
	key string
}

func (b *failingBlobs) Delete(ctx context.Context, key string) error {
	if key == b.key {
		return errors.New("simulated S3 error")
	}
	return b.Store.Delete(ctx, key)
}

// failingAudit refuses every entry.
type failingAudit struct{}

func (failingAudit) Record(context.Context, string, string, string, string, map[string]string) error {
	return errors.New("simulated audit failure")
}

func testRetentionFailures(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	blobs := MemObjects(t)
	s := env.Cases
	old := RetentionNow.AddDate(-6, 0, 0)

	t.Run("no period", func(t *testing.T) {
		f := ClosedCase(t, env, blobs, 1, old.AddDate(-20, 0, 0), false, nil)
		p := NewPurger(env, blobs, "x")
		p.Period = 0
		if n, err := p.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("purged %d, %v with no period", n, err)
		}
		if due, err := p.Due(ctx); err != nil || len(due) != 0 {
			t.Fatalf("due %v, %v with no period", due, err)
		}
		if c, _ := s.CaseByID(ctx, f.Case.ID); c.Identity == nil {
			t.Fatal("purged with no period")
		}
		// Clean up for the next subtests.
		if n, err := NewPurger(env, blobs, "x").RunOnce(ctx); err != nil || n != 1 {
			t.Fatal(n, err)
		}
	})

	t.Run("object store error", func(t *testing.T) {
		f := ClosedCase(t, env, blobs, 2, old, false, nil)
		p := NewPurger(env, blobs, "x")
		p.Blobs = &failingBlobs{Store: blobs, key: f.Case.Evidence[1].ObjectKey}
		if n, err := p.RunOnce(ctx); err == nil || n != 0 {
			t.Fatalf("purged %d, %v; want the S3 error", n, err)
		}
		c, _ := s.CaseByID(ctx, f.Case.ID)
		if c.Identity == nil || len(retention.ObjectKeys(c.Evidence)) != 3 {
			t.Fatalf("case anonymised although an object could not be deleted: %+v", c)
		}
		p.Blobs = blobs
		if n, err := p.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("retry purged %d, %v", n, err)
		}
		CheckPurged(t, env, blobs, f)
	})

	t.Run("audit failure", func(t *testing.T) {
		f := ClosedCase(t, env, blobs, 3, old, false, nil)
		p := NewPurger(env, blobs, "x")
		p.Audit = failingAudit{}
		p.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
		// The case is purged, the error is reported, and the case is not listed again
		// (the log line is its record).
		if n, err := p.RunOnce(ctx); err == nil || n != 1 {
			t.Fatalf("purged %d, %v; want 1 and the audit error", n, err)
		}
		CheckPurged(t, env, blobs, f)
		if due, err := p.Due(ctx); err != nil || len(due) != 0 {
			t.Fatalf("due after purge %v, %v", due, err)
		}
	})
}

// testAnonymiseConcurrent: 16 purges of one case at once, at the version they read.
// Each succeeds or is ECONFLICT; at least one succeeds; the case is purged once.
func testAnonymiseConcurrent(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	blobs := MemObjects(t)
	f := ClosedCase(t, env, blobs, 1, RetentionNow.AddDate(-6, 0, 0), false, nil)
	for _, key := range retention.ObjectKeys(f.Case.Evidence) {
		if err := blobs.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { errs[i] = env.Cases.Anonymise(ctx, f.Case.ID, f.Case.Version, RetentionNow) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			if err != nil {
				t.Errorf("Anonymise: %v", err)
				continue
			}
			ok++
		case qingfeng.ECONFLICT:
		default:
			t.Errorf("Anonymise: %v", err)
		}
	}
	if ok == 0 {
		t.Error("no concurrent Anonymise succeeded")
	}
	CheckPurged(t, env, blobs, f)
}

// testRetentionKeepsUnreadActivity: a closed case past its retention period is not
// purged while it has reporter activity its unit has not read — not when the activity
// came before the run, nor when a message arrives during the purge (a message does not
// change the case's version, so the version alone would not stop it).
func testRetentionKeepsUnreadActivity(t *testing.T, env RetentionEnv) {
	ctx := context.Background()
	blobs := MemObjects(t)
	s := env.Cases
	closedAt := RetentionNow.AddDate(-6, 0, 0)
	msg := func(caseID string) *intake.Message {
		return &intake.Message{ID: intake.NewID(), CaseID: caseID, From: intake.UploaderReporter, Kind: "message", Body: "补充一点情况", CreatedAt: RetentionNow}
	}
	before := ClosedCase(t, env, blobs, 1, closedAt, false, nil)
	if err := s.AddMessage(ctx, msg(before.Case.ID)); err != nil {
		t.Fatal(err)
	}
	during := ClosedCase(t, env, blobs, 2, closedAt, false, nil)
	p := NewPurger(env, blobs, "x")
	p.Cases = &changingStore{RetentionStore: s, once: func() {
		if err := s.AddMessage(ctx, msg(during.Case.ID)); err != nil {
			t.Error(err)
		}
	}}
	if n, err := p.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("purged %d, %v; want both cases kept", n, err)
	}
	for _, f := range []RetentionFixture{before, during} {
		c, err := s.CaseByID(ctx, f.Case.ID)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := s.Messages(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.PurgedAt != nil || c.Identity == nil || !c.NewActivity || len(ms) != 3 {
			t.Fatalf("%s after the run: purged %v, identity %v, new activity %v, %d messages", c.Number, c.PurgedAt, c.Identity != nil, c.NewActivity, len(ms))
		}
	}
	if n, err := p.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("second run purged %d, %v", n, err)
	}
	// Read by the unit, they go.
	for _, f := range []RetentionFixture{before, during} {
		c, err := s.CaseByID(ctx, f.Case.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.MarkActivitySeen(ctx, c.ID, c.UnitID, c.ReporterActivityN, RetentionNow); err != nil || !ok {
			t.Fatalf("mark seen: %v, %v", ok, err)
		}
	}
	if n, err := p.RunOnce(ctx); err != nil || n != 2 {
		t.Fatalf("after the reads purged %d, %v; want 2", n, err)
	}
}
