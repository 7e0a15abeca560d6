package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/outbox"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// CaseStore is what the suite needs of a case store, nothing more: intake.CaseStore's
// case methods (its counters and idempotency records have suites of their own), the
// workflow's, transfers' and escalation's interfaces, and the queue's counts and
// notifications. That each store is a whole intake.CaseStore is checked where it is
// declared (stores.go).
type CaseStore interface {
	CreateCase(ctx context.Context, c *intake.Case) error
	CaseByReceipt(ctx context.Context, receiptHash []byte) (*intake.Case, error)
	ListCases(ctx context.Context, f intake.CaseFilter) ([]*intake.Case, error)
	AddEvidence(ctx context.Context, caseID string, evs []intake.Evidence, maxBytes int64) ([]intake.Evidence, error)
	Reroute(ctx context.Context, c *intake.Case, category intake.Category, subject intake.Subject, d intake.Decision) error
	AddMessage(ctx context.Context, m *intake.Message) error
	Messages(ctx context.Context, caseID string) ([]*intake.Message, error)
	MarkActivitySeen(ctx context.Context, caseID, unitID string, seenN int64, at time.Time) (bool, error)
	EndFollowUp(ctx context.Context, caseID string, at time.Time) error
	triage.Store
	triage.TransferStore
	triage.EscalationStore
	CountByStatus(ctx context.Context, unitID string) (map[intake.Status]int64, error)
	CountNewActivity(ctx context.Context, unitID string) (int64, error)
	Notifications(ctx context.Context, unitID string, limit int) ([]triage.Notification, error)
}

// The list page sizes both stores use.
const (
	defaultListLimit = 50
	maxListLimit     = 200
)

// CaseStores are a case store and the stores its cases' jobs use, on one database:
// the outbox that delivers the events the case store writes, and the leases the
// escalator and the dispatcher take.
type CaseStores struct {
	Cases  CaseStore
	Outbox outbox.Store
	Leases donations.Leases
}

// Cases is the suite every case store passes: round trips by id, number and receipt;
// unique keys; evidence within the per-case limit (16 concurrent uploaders); lists
// with every filter, both sorts and cursors; messages and reporter activity;
// workflow steps conditional on version and status (16 concurrent writers, one
// winner); assignment, transfers, re-routing and escalation; the events of those
// changes delivered through the outbox.
func Cases(t *testing.T, newStores func(t *testing.T) CaseStores) {
	run(t, newStores, []scenario[CaseStores]{
		{"CaseRoundTrip", cases(testCaseRoundTrip)},
		{"CaseLookupNotFound", cases(testCaseLookupNotFound)},
		{"CaseDuplicates", cases(testCaseDuplicates)},
		{"CreateConcurrent", testCreateConcurrent},
		{"AddEvidence", cases(testAddEvidence)},
		{"AddEvidenceConcurrent", cases(testAddEvidenceConcurrent)},
		{"AddEvidenceRepeats", cases(testAddEvidenceRepeats)},
		{"AddEvidenceRepeatsConcurrent", cases(testAddEvidenceRepeatsConcurrent)},
		{"ListPagination", cases(testListPagination)},
		{"ListFilters", cases(testListFilters)},
		{"ListLimits", cases(testListLimits)},
		{"ListBadInput", cases(testListBadInput)},
		{"Messages", cases(testMessages)},
		{"ListQueueFilters", cases(testListQueueFilters)},
		{"ListFilterCombinations", cases(testListFilterCombinations)},
		{"ListByOrganization", cases(testListByOrganization)},
		{"TransitionConcurrent", cases(testTransitionConcurrent)},
		{"WorkflowSteps", cases(testWorkflowSteps)},
		{"ReporterActivity", cases(testReporterActivity)},
		{"Escalation", cases(testEscalation)},
		{"Escalator", testEscalator},
		{"OverdueBeyondTheLimit", cases(testOverdueBeyondTheLimit)},
		{"Reroute", cases(testReroute)},
		{"Outbox", testOutbox},
		{"OutboxGivesUp", testOutboxGivesUp},
		{"Property", cases(testCasesProperty)},
		{"ActivityMarking", cases(testActivityMarking)},
		{"ActivityQueueFilterAndCount", cases(testActivityQueue)},
		{"ActivityRandomSequences", cases(testActivitySequences)},
		{"ActivityConcurrent", cases(testActivityConcurrent)},
	})
}

// cases adapts a scenario that needs only the case store.
func cases(f func(*testing.T, CaseStore)) func(*testing.T, CaseStores) {
	return func(t *testing.T, s CaseStores) { f(t, s.Cases) }
}

func ptr[T any](v T) *T { return &v }

// NewCase returns a fully populated case; i makes its keys unique. The stores'
// package-internal tests use it too.
func NewCase(i int, unit, division string, received time.Time) *intake.Case {
	return &intake.Case{
		ID:       fmt.Sprintf("case-%04d", i),
		Number:   fmt.Sprintf("QF-%s-2026-%06d", division[:min(6, len(division))], i),
		Source:   "app",
		Category: "arbitrary_fees",
		Subject: intake.Subject{
			Kind:         intake.SubjectOrganization,
			Organization: &intake.OrgSubject{CreditCode: "51330782MJ0000000X", Name: "义乌市某某协会"},
		},
		Description: "以会员费名义向企业强制收费。",
		Location:    intake.Location{Division: division, Address: "稠城街道", Lat: ptr(29.3), Lng: ptr(120.07)},
		OccurredOn:  "2026-02",
		RealName:    true,
		Identity: &intake.SealedIdentity{
			Ciphertext: []byte("age-encryption.org/v1\n..."),
			Recipients: []string{"age1custodian"},
			SealedAt:   received,
		},
		ReceiptHash: []byte(fmt.Sprintf("receipt-hash-%04d", i)),
		Status:      intake.StatusRegistered,
		UnitID:      unit,
		Decision: intake.Decision{
			UnitID: unit, UnitName: "义乌市民政局", Reason: "属地管辖", Router: "rules/v1",
			Inputs: map[string]string{"division": division}, DecidedAt: received,
		},
		Warnings:      []intake.Warning{{Field: "subject.organization.credit_code", Code: "checksum", Message: "校验位不符"}},
		ReceivedAt:    received,
		AcceptanceDue: "2026-03-20",
		Version:       1,
		UpdatedAt:     received,
	}
}

// inUTC returns c as it reads back: every time in UTC.
func inUTC(c *intake.Case) *intake.Case {
	out := *c
	out.ReceivedAt = c.ReceivedAt.UTC()
	out.UpdatedAt = c.UpdatedAt.UTC()
	out.Decision.DecidedAt = c.Decision.DecidedAt.UTC()
	if c.Identity != nil {
		id := *c.Identity
		id.SealedAt = id.SealedAt.UTC()
		out.Identity = &id
	}
	out.Evidence = nil
	for _, ev := range c.Evidence {
		ev.UploadedAt = ev.UploadedAt.UTC()
		out.Evidence = append(out.Evidence, ev)
	}
	return &out
}

func mustCreate(t *testing.T, s CaseStore, cs ...*intake.Case) {
	t.Helper()
	for _, c := range cs {
		if err := s.CreateCase(context.Background(), c); err != nil {
			t.Fatalf("CreateCase(%s): %v", c.ID, err)
		}
	}
}

func testCaseRoundTrip(t *testing.T, s CaseStore) {
	ctx := context.Background()
	withEvidence := NewCase(1, "unit-a", "330782", base)
	withEvidence.Evidence = []intake.Evidence{{
		ID: "ev-1", ObjectKey: "cases/case-0001/ev-1", ContentType: "image/jpeg", Size: 1234,
		SHA256Received: "aa", SHA256Stored: "bb", MetadataRemoved: true, OriginalKey: "sealed/ev-1",
		UploadedBy: "reporter", UploadedAt: base,
	}}
	withEvidence.EvidenceBytes = 1234
	anonymous := NewCase(2, "unit-a", "330782001", base.Add(time.Minute))
	anonymous.RealName = false
	anonymous.Identity = nil
	anonymous.AcceptanceDue = ""
	anonymous.Warnings = nil
	anonymous.Subject = intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某", Position: "科长"}}
	anonymous.Location.Lat, anonymous.Location.Lng = nil, nil
	anonymous.FiledBy = "liaison-1"

	for _, c := range []*intake.Case{withEvidence, anonymous} {
		mustCreate(t, s, c)
		lookups := []struct {
			name string
			get  func() (*intake.Case, error)
		}{
			{"ByID", func() (*intake.Case, error) { return s.CaseByID(ctx, c.ID) }},
			{"ByNumber", func() (*intake.Case, error) { return s.CaseByNumber(ctx, c.Number) }},
			{"ByReceipt", func() (*intake.Case, error) { return s.CaseByReceipt(ctx, c.ReceiptHash) }},
		}
		for _, l := range lookups {
			got, err := l.get()
			if err != nil {
				t.Fatalf("%s %s: %v", c.ID, l.name, err)
			}
			if want := inUTC(c); !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s:\n got %+v\nwant %+v", c.ID, l.name, got, want)
			}
			if got.ReceivedAt.Location() != time.UTC {
				t.Errorf("%s %s: ReceivedAt in %v, want UTC", c.ID, l.name, got.ReceivedAt.Location())
			}
		}
	}
}

func testCaseLookupNotFound(t *testing.T, s CaseStore) {
	ctx := context.Background()
	mustCreate(t, s, NewCase(1, "unit-a", "330782", base))
	tests := []struct {
		name string
		get  func() (*intake.Case, error)
	}{
		{"ByID", func() (*intake.Case, error) { return s.CaseByID(ctx, "nope") }},
		{"ByNumber", func() (*intake.Case, error) { return s.CaseByNumber(ctx, "QF-000000-2026-000000") }},
		{"ByReceipt", func() (*intake.Case, error) { return s.CaseByReceipt(ctx, []byte("nope")) }},
		{"ByEmptyReceipt", func() (*intake.Case, error) { return s.CaseByReceipt(ctx, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.get()
			if c != nil {
				t.Errorf("got case %s", c.ID)
			}
			wantCode(t, err, qingfeng.ENOTFOUND)
		})
	}
}

func testCaseDuplicates(t *testing.T, s CaseStore) {
	ctx := context.Background()
	orig := NewCase(1, "unit-a", "330782", base)
	mustCreate(t, s, orig)
	tests := []struct {
		name   string
		modify func(c *intake.Case)
	}{
		{"same ID", func(c *intake.Case) { c.ID = orig.ID }},
		{"same number", func(c *intake.Case) { c.Number = orig.Number }},
		{"same receipt", func(c *intake.Case) { c.ReceiptHash = orig.ReceiptHash }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCase(100+i, "unit-a", "330782", base)
			tt.modify(c)
			wantCode(t, s.CreateCase(ctx, c), qingfeng.ECONFLICT)
		})
	}
	t.Run("missing keys", func(t *testing.T) {
		c := NewCase(200, "unit-a", "330782", base)
		c.ReceiptHash = nil
		if err := s.CreateCase(ctx, c); err == nil {
			t.Fatal("CreateCase without a receipt hash succeeded")
		}
	})
	// A new case has no reporter activity whatever it is given: activity is only what
	// arrives after filing (AddMessage, AddEvidence), on both stores alike.
	t.Run("created without activity", func(t *testing.T) {
		c := NewCase(300, "unit-a", "330782", base)
		c.NewActivity, c.ReporterActivityN, c.ReporterActivityAt, c.StaffSeenAt = true, 3, base, base
		mustCreate(t, s, c)
		got, err := s.CaseByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.NewActivity || got.ReporterActivityN != 0 || !got.ReporterActivityAt.IsZero() || !got.StaffSeenAt.IsZero() {
			t.Errorf("created with activity: new %v, n %d, at %v, seen %v", got.NewActivity, got.ReporterActivityN, got.ReporterActivityAt, got.StaffSeenAt)
		}
		if n, err := s.CountNewActivity(ctx, "unit-a"); err != nil || n != 0 {
			t.Errorf("CountNewActivity = %d, %v", n, err)
		}
	})
	// EndFollowUp keeps the later time (to the millisecond), leaves the version, and
	// a new case starts without one.
	t.Run("follow-up ended", func(t *testing.T) {
		c := NewCase(301, "unit-a", "330782", base)
		c.FollowUpEndedAt = base
		mustCreate(t, s, c)
		got, _ := s.CaseByID(ctx, c.ID)
		if !got.FollowUpEndedAt.IsZero() {
			t.Errorf("created with FollowUpEndedAt %v", got.FollowUpEndedAt)
		}
		later := base.Add(90*time.Minute + 1500*time.Microsecond)
		for _, at := range []time.Time{later, base, later.Add(-time.Millisecond)} {
			if err := s.EndFollowUp(ctx, c.ID, at); err != nil {
				t.Fatal(err)
			}
		}
		got, _ = s.CaseByID(ctx, c.ID)
		if want := later.Truncate(time.Millisecond).UTC(); !got.FollowUpEndedAt.Equal(want) || got.Version != c.Version {
			t.Errorf("after EndFollowUp: ended %v (want %v), version %d (want %d)", got.FollowUpEndedAt, want, got.Version, c.Version)
		}
		wantCode(t, s.EndFollowUp(ctx, "no-such-case", base), qingfeng.ENOTFOUND)
	})
}

func ev(id string, size int64) intake.Evidence {
	return intake.Evidence{ID: id, ObjectKey: "cases/x/" + id, ContentType: "image/png", Size: size,
		SHA256Received: "recv-" + id, SHA256Stored: "stored-" + id, UploadedBy: "reporter", UploadedAt: base}
}

func testAddEvidence(t *testing.T, s CaseStore) {
	ctx := context.Background()
	c := NewCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	const max = 100
	steps := []struct {
		name      string
		caseID    string
		evs       []intake.Evidence
		wantCode  string
		wantBytes int64 // evidence_bytes after the step
		wantIDs   []string
	}{
		{"first fits", c.ID, []intake.Evidence{ev("a", 40)}, "", 40, []string{"a"}},
		{"batch fits exactly", c.ID, []intake.Evidence{ev("b", 30), ev("c", 30)}, "", 100, []string{"a", "b", "c"}},
		{"zero bytes at the limit", c.ID, []intake.Evidence{ev("d", 0)}, "", 100, []string{"a", "b", "c", "d"}},
		{"one byte over", c.ID, []intake.Evidence{ev("e", 1)}, qingfeng.ETOOLARGE, 100, []string{"a", "b", "c", "d"}},
		{"empty batch", c.ID, nil, "", 100, []string{"a", "b", "c", "d"}},
		{"unknown case", "nope", []intake.Evidence{ev("f", 1)}, qingfeng.ENOTFOUND, 100, []string{"a", "b", "c", "d"}},
		{"unknown case, empty batch", "nope", nil, qingfeng.ENOTFOUND, 100, []string{"a", "b", "c", "d"}},
	}
	wantVersion := c.Version
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_, err := s.AddEvidence(ctx, st.caseID, st.evs, max)
			wantCode(t, err, st.wantCode)
			if err == nil && len(st.evs) > 0 {
				wantVersion++
			}
			got, err := s.CaseByID(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got.Evidence {
				ids = append(ids, e.ID)
			}
			if got.EvidenceBytes != st.wantBytes || !reflect.DeepEqual(ids, st.wantIDs) || got.Version != wantVersion {
				t.Errorf("bytes %d, evidence %v, version %d; want %d, %v, %d",
					got.EvidenceBytes, ids, got.Version, st.wantBytes, st.wantIDs, wantVersion)
			}
		})
	}
	t.Run("too large message", func(t *testing.T) {
		var e *qingfeng.Error
		if _, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{ev("g", 1)}, max); !errors.As(err, &e) || e.Message != "该案件的证据总量已达上限" {
			t.Errorf("err = %v, want the Chinese over-limit message", err)
		}
	})
	t.Run("stored evidence round-trips", func(t *testing.T) {
		got, err := s.CaseByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := ev("a", 40)
		want.UploadedAt = want.UploadedAt.UTC()
		if !reflect.DeepEqual(got.Evidence[0], want) {
			t.Errorf("evidence = %+v, want %+v", got.Evidence[0], want)
		}
		if got.UpdatedAt.Equal(c.UpdatedAt) {
			t.Error("updated_at not set by AddEvidence")
		}
	})
}

func testAddEvidenceConcurrent(t *testing.T, s CaseStore) {
	ctx := context.Background()
	c := NewCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	const workers, size, max = 16, 10, 100
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			_, errs[i] = s.AddEvidence(ctx, c.ID, []intake.Evidence{ev(fmt.Sprintf("ev-%02d", i), size)}, max)
		})
	}
	wg.Wait()
	var ok, tooLarge int
	for _, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			ok++
		case qingfeng.ETOOLARGE:
			tooLarge++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	got, err := s.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != max/size || tooLarge != workers-max/size {
		t.Errorf("%d succeeded, %d too large; want %d and %d", ok, tooLarge, max/size, workers-max/size)
	}
	if got.EvidenceBytes != max || len(got.Evidence) != max/size || got.Version != c.Version+max/size {
		t.Errorf("evidence_bytes %d, %d items, version %d; want %d, %d, %d",
			got.EvidenceBytes, len(got.Evidence), got.Version, max, max/size, c.Version+max/size)
	}
}

// sameBytes is a new upload of e's bytes by the same uploader: another id and object.
func sameBytes(e intake.Evidence, id string) intake.Evidence {
	e.ID, e.ObjectKey, e.UploadedAt = id, "cases/x/"+id, e.UploadedAt.Add(time.Minute)
	return e
}

func evidenceIDs(evs []intake.Evidence) []string {
	ids := []string{}
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

// testAddEvidenceRepeats: a file whose received bytes its uploader already gave the
// case (the same SHA256Received) is not appended again, but answered with the entry
// the case holds; a batch mixing new and repeated files appends the new ones only,
// counting their bytes and reporter activity once; a batch of nothing but repeats
// changes nothing, not even the version, and fits a full case. Another uploader's
// copy, another case's and a purged entry's are not repeats.
func testAddEvidenceRepeats(t *testing.T, s CaseStore) {
	ctx := context.Background()
	c := NewCase(1, "unit-a", "330782", base)
	purged := ev("old", 7)
	purged.ObjectKey = "" // retention removed its object
	c.Evidence, c.EvidenceBytes = []intake.Evidence{purged}, 7
	mustCreate(t, s, c)
	other := NewCase(2, "unit-a", "330782", base)
	mustCreate(t, s, other)
	const max = 200
	a, b := ev("a", 40), ev("b", 30)
	steps := []struct {
		name     string
		caseID   string
		evs      []intake.Evidence
		max      int64
		wantCode string
		wantKept []string // the ids answered, one per file
		wantIDs  []string // the case's evidence afterwards
		addBytes int64
		addN     int64 // reporter activity
	}{
		{"first", c.ID, []intake.Evidence{a}, max, "", []string{"a"}, []string{"old", "a"}, 40, 1},
		{"the same file again", c.ID, []intake.Evidence{sameBytes(a, "a2")}, max, "", []string{"a"}, []string{"old", "a"}, 0, 0},
		{"a batch of repeated and new, new twice", c.ID, []intake.Evidence{sameBytes(a, "a3"), b, sameBytes(b, "b2")}, max, "",
			[]string{"a", "b", "b"}, []string{"old", "a", "b"}, 30, 1},
		{"nothing but repeats on a full case", c.ID, []intake.Evidence{sameBytes(b, "b3"), sameBytes(a, "a4")}, 77, "",
			[]string{"b", "a"}, []string{"old", "a", "b"}, 0, 0},
		{"a repeat and one new byte over", c.ID, []intake.Evidence{sameBytes(a, "a5"), ev("c", 1)}, 77, qingfeng.ETOOLARGE,
			nil, []string{"old", "a", "b"}, 0, 0},
		{"another uploader's copy is its own", c.ID, []intake.Evidence{func() intake.Evidence {
			e := sameBytes(a, "s1")
			e.UploadedBy = "liaison:u7"
			return e
		}()}, max, "", []string{"s1"}, []string{"old", "a", "b", "s1"}, 40, 0},
		{"a purged entry's bytes are new again", c.ID, []intake.Evidence{sameBytes(purged, "new-old")}, max, "",
			[]string{"new-old"}, []string{"old", "a", "b", "s1", "new-old"}, 7, 1},
		{"unknown case", "nope", []intake.Evidence{sameBytes(a, "a6")}, max, qingfeng.ENOTFOUND, nil, []string{"old", "a", "b", "s1", "new-old"}, 0, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := loadCase(t, s, c.ID)
			kept, err := s.AddEvidence(ctx, st.caseID, st.evs, st.max)
			wantCode(t, err, st.wantCode)
			if err == nil && !reflect.DeepEqual(evidenceIDs(kept), st.wantKept) {
				t.Errorf("answered %v, want %v", evidenceIDs(kept), st.wantKept)
			}
			got := loadCase(t, s, c.ID)
			if ids := evidenceIDs(got.Evidence); !reflect.DeepEqual(ids, st.wantIDs) {
				t.Errorf("evidence %v, want %v", ids, st.wantIDs)
			}
			changed := int64(0)
			if len(got.Evidence) > len(before.Evidence) {
				changed = 1
			}
			if got.EvidenceBytes != before.EvidenceBytes+st.addBytes || got.ReporterActivityN != before.ReporterActivityN+st.addN ||
				got.Version != before.Version+changed {
				t.Errorf("bytes %d, activity %d, version %d; want %d, %d, %d", got.EvidenceBytes, got.ReporterActivityN, got.Version,
					before.EvidenceBytes+st.addBytes, before.ReporterActivityN+st.addN, before.Version+changed)
			}
			if changed == 0 && !got.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("updated_at moved from %v to %v with nothing appended", before.UpdatedAt, got.UpdatedAt)
			}
			// The answer is the entry as the case holds it.
			for _, k := range kept {
				if i := slices.IndexFunc(got.Evidence, func(e intake.Evidence) bool { return e.ID == k.ID }); i < 0 || !reflect.DeepEqual(got.Evidence[i], k) {
					t.Errorf("answered %+v, not as stored", k)
				}
			}
		})
	}
	t.Run("the same file on another case is stored there", func(t *testing.T) {
		kept, err := s.AddEvidence(ctx, other.ID, []intake.Evidence{sameBytes(a, "o1")}, max)
		if err != nil || len(kept) != 1 || kept[0].ID != "o1" {
			t.Fatalf("answered %v, %v; want o1", evidenceIDs(kept), err)
		}
		if got := loadCase(t, s, other.ID); len(got.Evidence) != 1 || got.EvidenceBytes != 40 || got.ReporterActivityN != 1 {
			t.Errorf("other case: %v, %d bytes, activity %d", evidenceIDs(got.Evidence), got.EvidenceBytes, got.ReporterActivityN)
		}
	})
}

// testAddEvidenceRepeatsConcurrent: 32 uploads of one file at once append it once and
// all are answered with that entry; 32 batches at once, each the shared file and one
// of its own, append the shared one once and each own one.
func testAddEvidenceRepeatsConcurrent(t *testing.T, s CaseStore) {
	ctx := context.Background()
	const workers, size, max = 32, 10, 1 << 20
	for _, mixed := range []bool{false, true} {
		t.Run(fmt.Sprintf("mixed=%v", mixed), func(t *testing.T) {
			c := NewCase(1, "unit-a", "330782", base)
			if mixed {
				c = NewCase(2, "unit-a", "330782", base)
			}
			mustCreate(t, s, c)
			shared := ev("shared", size)
			kept := make([][]intake.Evidence, workers)
			errs := make([]error, workers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					evs := []intake.Evidence{sameBytes(shared, fmt.Sprintf("try-%02d", i))}
					if mixed {
						evs = append(evs, ev(fmt.Sprintf("own-%02d", i), size))
					}
					<-start
					kept[i], errs[i] = s.AddEvidence(ctx, c.ID, evs, max)
				})
			}
			close(start)
			wg.Wait()
			got := loadCase(t, s, c.ID)
			var sharedIDs []string
			for _, e := range got.Evidence {
				if e.SHA256Received == shared.SHA256Received {
					sharedIDs = append(sharedIDs, e.ID)
				}
			}
			if len(sharedIDs) != 1 {
				t.Fatalf("the shared file is on the case %d times: %v", len(sharedIDs), sharedIDs)
			}
			for i := range workers {
				if errs[i] != nil {
					t.Fatalf("upload %d: %v", i, errs[i])
				}
				if len(kept[i]) == 0 || kept[i][0].ID != sharedIDs[0] {
					t.Errorf("upload %d answered %v, want %s first", i, evidenceIDs(kept[i]), sharedIDs[0])
				}
				if mixed && (len(kept[i]) != 2 || kept[i][1].ID != fmt.Sprintf("own-%02d", i)) {
					t.Errorf("upload %d answered %v, want its own file second", i, evidenceIDs(kept[i]))
				}
			}
			n := int64(1)
			if mixed {
				n += workers
			}
			if int64(len(got.Evidence)) != n || got.EvidenceBytes != n*size || got.ReporterActivityN != n {
				t.Errorf("%d entries, %d bytes, activity %d; want %d, %d, %d", len(got.Evidence), got.EvidenceBytes, got.ReporterActivityN, n, n*size, n)
			}
		})
	}
}

// pageAll lists with f page by page and returns the IDs in order.
func pageAll(t *testing.T, s CaseStore, f intake.CaseFilter) (ids []string, pages int) {
	t.Helper()
	for {
		page, err := s.ListCases(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return ids, pages
		}
		pages++
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		f.After = page[len(page)-1].ID
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
	}
}

func testListPagination(t *testing.T, s CaseStore) {
	// 25 cases in unit-a, in groups of 3 sharing a received_at (ties are where a
	// cursor on the time alone would skip or repeat cases), created out of order;
	// plus cases in another unit interleaved in time.
	var want []*intake.Case
	for i := 24; i >= 0; i-- {
		c := NewCase(i, "unit-a", "330782", base.Add(time.Duration(i/3)*time.Second))
		c.FiledBy = "liaison-1"
		mustCreate(t, s, c)
		want = append(want, c)
		mustCreate(t, s, NewCase(100+i, "unit-b", "330782", base.Add(time.Duration(i/3)*time.Second)))
	}
	sort.Slice(want, func(i, j int) bool {
		if !want[i].ReceivedAt.Equal(want[j].ReceivedAt) {
			return want[i].ReceivedAt.After(want[j].ReceivedAt)
		}
		return want[i].ID < want[j].ID
	})
	var wantIDs []string
	for _, c := range want {
		wantIDs = append(wantIDs, c.ID)
	}
	tests := []struct {
		name      string
		filter    intake.CaseFilter
		wantIDs   []string
		wantPages int
	}{
		{"unit", intake.CaseFilter{UnitID: "unit-a", Limit: 10}, wantIDs, 3},
		{"division and filed by", intake.CaseFilter{DivisionPrefix: "3307", FiledBy: "liaison-1", Limit: 10}, wantIDs, 3},
		{"one page", intake.CaseFilter{UnitID: "unit-a"}, wantIDs, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, pages := pageAll(t, s, tt.filter)
			if pages != tt.wantPages {
				t.Errorf("%d pages, want %d", pages, tt.wantPages)
			}
			if !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("paged IDs\n got %v\nwant %v", ids, tt.wantIDs)
			}
		})
	}
}

func testListFilters(t *testing.T, s CaseStore) {
	divisions := []string{"330782", "330782001", "330782102", "330783", "330783001", "3307", "330700", "330800", "33078"}
	for i, d := range divisions {
		c := NewCase(i, "unit-a", d, base.Add(time.Duration(i)*time.Second))
		if i%2 == 0 {
			c.UnitID = "unit-b"
		}
		if i == 1 || i == 3 {
			c.FiledBy = "liaison-1"
		}
		mustCreate(t, s, c)
	}
	byDiv := func(ds ...string) []string {
		var ids []string
		for _, d := range ds {
			for i, dd := range divisions {
				if dd == d {
					ids = append(ids, fmt.Sprintf("case-%04d", i))
				}
			}
		}
		sort.Strings(ids)
		return ids
	}
	tests := []struct {
		name   string
		filter intake.CaseFilter
		want   []string
	}{
		// A liaison of 330782 sees its towns (330782001...) but not the neighbouring
		// county 330783, although both share the prefix 33078.
		{"county", intake.CaseFilter{DivisionPrefix: "330782"}, byDiv("330782", "330782001", "330782102")},
		{"neighbour county", intake.CaseFilter{DivisionPrefix: "330783"}, byDiv("330783", "330783001")},
		{"town", intake.CaseFilter{DivisionPrefix: "330782001"}, byDiv("330782001")},
		{"city", intake.CaseFilter{DivisionPrefix: "3307"}, byDiv("330782", "330782001", "330782102", "330783", "330783001", "3307", "330700", "33078")},
		{"prefix ending in 9", intake.CaseFilter{DivisionPrefix: "3309"}, nil},
		{"unit", intake.CaseFilter{UnitID: "unit-a"}, []string{"case-0001", "case-0003", "case-0005", "case-0007"}},
		{"unit and division", intake.CaseFilter{UnitID: "unit-b", DivisionPrefix: "330782"}, byDiv("330782", "330782102")},
		{"filed by", intake.CaseFilter{FiledBy: "liaison-1"}, []string{"case-0001", "case-0003"}},
		{"filed by and division", intake.CaseFilter{FiledBy: "liaison-1", DivisionPrefix: "330783"}, []string{"case-0003"}},
		{"unknown unit", intake.CaseFilter{UnitID: "unit-z"}, nil},
		{"everything", intake.CaseFilter{}, byDiv(divisions...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListCases(context.Background(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			sort.Strings(ids)
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func testListLimits(t *testing.T, s CaseStore) {
	for i := range maxListLimit + 5 {
		mustCreate(t, s, NewCase(i, "unit-a", "330782", base.Add(time.Duration(i)*time.Millisecond)))
	}
	tests := []struct {
		limit, want int
	}{
		{0, defaultListLimit},
		{-1, defaultListLimit},
		{7, 7},
		{maxListLimit, maxListLimit},
		{maxListLimit + 1, maxListLimit},
		{1 << 30, maxListLimit},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			got, err := s.ListCases(context.Background(), intake.CaseFilter{UnitID: "unit-a", Limit: tt.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("%d cases, want %d", len(got), tt.want)
			}
		})
	}
}

func testListBadInput(t *testing.T, s CaseStore) {
	other := NewCase(2, "unit-b", "330783", base)
	other.FiledBy = "liaison-2"
	mustCreate(t, s, NewCase(1, "unit-a", "330782", base), other)
	tests := []struct {
		name   string
		filter intake.CaseFilter
	}{
		{"unknown cursor", intake.CaseFilter{UnitID: "unit-a", After: "nope"}},
		// A cursor must be visible through the filter, or it would reveal where a
		// foreign case sits in time.
		{"cursor from another unit", intake.CaseFilter{UnitID: "unit-a", After: "case-0002"}},
		{"cursor from another division", intake.CaseFilter{DivisionPrefix: "330782", After: "case-0002"}},
		{"cursor filed by someone else", intake.CaseFilter{FiledBy: "liaison-1", After: "case-0002"}},
		// Pattern or operator syntax never reaches the filter.
		{"regex prefix", intake.CaseFilter{DivisionPrefix: "33.*"}},
		{"operator prefix", intake.CaseFilter{DivisionPrefix: "$gt"}},
		{"non-ASCII prefix", intake.CaseFilter{DivisionPrefix: "３３０７"}},
		{"overlong prefix", intake.CaseFilter{DivisionPrefix: strings.Repeat("3", 13)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListCases(context.Background(), tt.filter)
			wantCode(t, err, qingfeng.EINVALID)
			if len(got) != 0 {
				t.Errorf("returned %d cases with the error", len(got))
			}
		})
	}
}

func testMessages(t *testing.T, s CaseStore) {
	ctx := context.Background()
	msgs := []*intake.Message{
		{ID: "m3", CaseID: "c1", From: "staff", Kind: "internal", AuthorID: "u1", Body: "请补充材料", CreatedAt: base.Add(2 * time.Minute)},
		{ID: "m1", CaseID: "c1", From: "reporter", Kind: "message", Body: "您好", CreatedAt: base},
		{ID: "m2", CaseID: "c1", From: "reporter", Kind: "message", Body: "同一时刻", CreatedAt: base},
		{ID: "x1", CaseID: "c2", From: "reporter", Kind: "message", Body: "别的案件", CreatedAt: base},
	}
	// A reporter's message marks its case, so the cases must exist.
	for i, id := range []string{"c1", "c2"} {
		c := NewCase(900+i, "mz-330782", "330782", base)
		c.ID = id
		mustCreate(t, s, c)
	}
	for _, m := range msgs {
		if err := s.AddMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, s.AddMessage(ctx, msgs[0]), qingfeng.ECONFLICT)

	tests := []struct {
		caseID string
		want   []string
	}{
		{"c1", []string{"m1", "m2", "m3"}},
		{"c2", []string{"x1"}},
		{"c3", nil},
	}
	for _, tt := range tests {
		t.Run(tt.caseID, func(t *testing.T) {
			got, err := s.Messages(ctx, tt.caseID)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Error("nil slice; want empty")
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
	got, err := s.Messages(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := *msgs[0] // m3, from staff: every field set
	want.CreatedAt = want.CreatedAt.UTC()
	if !reflect.DeepEqual(*got[2], want) {
		t.Errorf("message round trip: got %+v, want %+v", *got[2], want)
	}
}

func ids(cs []*intake.Case) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// testListQueueFilters covers the queue's filters (status, category, assignee, new
// activity), the sort by due date with DueBefore and its cursor, and the counts.
func testListQueueFilters(t *testing.T, s CaseStore) {
	ctx := context.Background()
	dues := []string{"2026-03-20", "2026-03-18", "", "2026-03-18", "2026-03-25", "2026-03-19"}
	for i, due := range dues {
		c := NewCase(i, "unit-a", "330782", base.Add(time.Duration(i)*time.Second))
		c.AcceptanceDue = due
		if i%2 == 1 {
			c.Category = "donation_misuse"
		}
		if i == 4 {
			c.Status = intake.StatusAccepted // nothing due while accepted
		}
		mustCreate(t, s, c)
	}
	mustCreate(t, s, NewCase(50, "unit-b", "330782", base))
	if err := s.Assign(ctx, "case-0003", 1, "staff-1", intake.Transition{Action: "assign", By: "lead", At: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMessage(ctx, &intake.Message{ID: "m1", CaseID: "case-0005", From: intake.UploaderReporter, Kind: "message", Body: "补充", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		filter intake.CaseFilter
		want   []string // in order
	}{
		{"newest first", intake.CaseFilter{UnitID: "unit-a"}, []string{"case-0005", "case-0004", "case-0003", "case-0002", "case-0001", "case-0000"}},
		{"status", intake.CaseFilter{UnitID: "unit-a", Status: intake.StatusAccepted}, []string{"case-0004"}},
		{"category", intake.CaseFilter{UnitID: "unit-a", Category: "donation_misuse"}, []string{"case-0005", "case-0003", "case-0001"}},
		{"assignee", intake.CaseFilter{UnitID: "unit-a", Assignee: "staff-1"}, []string{"case-0003"}},
		{"new activity", intake.CaseFilter{UnitID: "unit-a", NewActivity: true}, []string{"case-0005"}},
		{"new activity elsewhere", intake.CaseFilter{UnitID: "unit-b", NewActivity: true}, nil},
		{"by due", intake.CaseFilter{UnitID: "unit-a", SortByDue: true}, []string{"case-0001", "case-0003", "case-0005", "case-0000"}},
		{"due before", intake.CaseFilter{UnitID: "unit-a", SortByDue: true, DueBefore: "2026-03-19"}, []string{"case-0001", "case-0003", "case-0005"}},
		{"due before, newest first", intake.CaseFilter{UnitID: "unit-a", DueBefore: "2026-03-18"}, []string{"case-0003", "case-0001"}},
		{"by due, every unit", intake.CaseFilter{SortByDue: true, Limit: 3}, []string{"case-0001", "case-0003", "case-0005"}},
		{"by due, second page", intake.CaseFilter{UnitID: "unit-a", SortByDue: true, Limit: 2, After: "case-0003"}, []string{"case-0005", "case-0000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListCases(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("got %v, want %v", g, tt.want)
			}
		})
	}
	t.Run("by due after a case with nothing due", func(t *testing.T) {
		_, err := s.ListCases(ctx, intake.CaseFilter{UnitID: "unit-a", SortByDue: true, After: "case-0002"})
		wantCode(t, err, qingfeng.EINVALID)
	})
	counts, err := s.CountByStatus(ctx, "unit-a")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[intake.Status]int64{intake.StatusRegistered: 5, intake.StatusAccepted: 1}; !reflect.DeepEqual(counts, want) {
		t.Errorf("CountByStatus = %v, want %v", counts, want)
	}
	for unit, want := range map[string]int64{"unit-a": 1, "unit-b": 0, "unit-z": 0} {
		if n, err := s.CountNewActivity(ctx, unit); err != nil || n != want {
			t.Errorf("CountNewActivity(%s) = %d, %v; want %d", unit, n, err, want)
		}
	}
}

// testTransitionConcurrent: 16 staff accept one case at once, each at the version
// they read; exactly one wins, the rest get ECONFLICT, and the case holds one step.
func testTransitionConcurrent(t *testing.T, s CaseStore) {
	ctx := context.Background()
	c := NewCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	const writers = 16
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			tr := intake.Transition{Action: "accept", From: intake.StatusRegistered, To: intake.StatusAccepted, By: fmt.Sprintf("staff-%d", i), At: base}
			errs[i] = s.ApplyTransition(ctx, c.ID, c.Version, tr, triage.TransitionFields{Disposition: ptr(fmt.Sprintf("d%d", i)), CaseNumber: c.Number, UnitID: c.UnitID})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case qingfeng.ECONFLICT:
		default:
			t.Errorf("writer %d: %v", i, err)
		}
	}
	got, err := s.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if winner < 0 || len(got.Transitions) != 1 || got.Version != c.Version+1 || got.Status != intake.StatusAccepted ||
		got.Transitions[0].By != fmt.Sprintf("staff-%d", winner) || got.Disposition != fmt.Sprintf("d%d", winner) {
		t.Errorf("winner %d; case: %d steps, version %d, status %s, disposition %q", winner, len(got.Transitions), got.Version, got.Status, got.Disposition)
	}
}

// testWorkflowSteps runs every conditional step at a stale version or in the wrong
// status (ECONFLICT, nothing changes), on a missing case (ENOTFOUND), then for real.
func testWorkflowSteps(t *testing.T, s CaseStore) {
	ctx := context.Background()
	c := NewCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	accept := intake.Transition{Action: "accept", From: intake.StatusRegistered, To: intake.StatusAccepted, By: "u1", At: base.Add(time.Hour)}
	refused := []struct {
		name string
		code string
		do   func() error
	}{
		{"stale transition", qingfeng.ECONFLICT, func() error {
			return s.ApplyTransition(ctx, c.ID, c.Version+1, accept, triage.TransitionFields{})
		}},
		{"wrong status", qingfeng.ECONFLICT, func() error {
			tr := accept
			tr.From = intake.StatusConcluded
			return s.ApplyTransition(ctx, c.ID, c.Version, tr, triage.TransitionFields{})
		}},
		{"missing case", qingfeng.ENOTFOUND, func() error { return s.ApplyTransition(ctx, "nope", 1, accept, triage.TransitionFields{}) }},
		{"stale assign", qingfeng.ECONFLICT, func() error { return s.Assign(ctx, c.ID, c.Version-1, "u2", accept) }},
		{"stale hand", qingfeng.ECONFLICT, func() error {
			old := *c
			old.Version++
			return s.Hand(ctx, &old, intake.Decision{UnitID: "unit-b"}, nil, accept)
		}},
		{"stale reroute", qingfeng.ECONFLICT, func() error {
			old := *c
			old.Version--
			return s.Reroute(ctx, &old, "other", c.Subject, intake.Decision{UnitID: "unit-b"})
		}},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			wantCode(t, r.do(), r.code)
			got, err := s.CaseByID(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, inUTC(c)) {
				t.Errorf("case changed:\n got %+v\nwant %+v", got, inUTC(c))
			}
		})
	}

	// Accept with a disposition, assign, conclude with an outcome, reopen (clearing it).
	if err := s.ApplyTransition(ctx, c.ID, 1, accept, triage.TransitionFields{Disposition: ptr("初步核实"), AcceptanceDue: ptr(""), NextDue: ""}); err != nil {
		t.Fatal(err)
	}
	if err := s.Assign(ctx, c.ID, 2, "u2", intake.Transition{Action: "assign", By: "lead", At: base}); err != nil {
		t.Fatal(err)
	}
	conclude := intake.Transition{Action: "conclude", From: intake.StatusAccepted, To: intake.StatusConcluded, By: "u2", At: base}
	if err := s.ApplyTransition(ctx, c.ID, 3, conclude, triage.TransitionFields{Outcome: &intake.Outcome{Result: "partly"}, FeedbackDue: ptr("2026-04-01"), NextDue: "2026-04-01"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != intake.StatusConcluded || got.Disposition != "初步核实" || got.AcceptanceDue != "" || got.Assignee != "u2" ||
		got.Outcome == nil || got.Outcome.Result != "partly" || got.FeedbackDue != "2026-04-01" || got.Version != 4 || len(got.Transitions) != 3 {
		t.Fatalf("after accept, assign, conclude: %+v", got)
	}
	if due, err := s.ListCases(ctx, intake.CaseFilter{UnitID: "unit-a", SortByDue: true}); err != nil || len(due) != 1 {
		t.Errorf("by due after concluding: %v, %v; want the case (feedback due)", ids(due), err)
	}
	if err := s.Assign(ctx, c.ID, 4, "", intake.Transition{Action: "unassign", By: "lead", At: base}); err != nil {
		t.Fatal(err)
	}
	reopen := intake.Transition{Action: "reopen", From: intake.StatusConcluded, To: intake.StatusAccepted, By: "lead", At: base}
	if err := s.ApplyTransition(ctx, c.ID, 5, reopen, triage.TransitionFields{ClearOutcome: true, FeedbackDue: ptr("")}); err != nil {
		t.Fatal(err)
	}

	// Transfer to unit-b (pending), then its return to unit-a.
	// The hand-over's notification is recorded with it, once: a hand-over refused
	// (a stale version) records none, and one with a notification id already used
	// records no second.
	got, _ = s.CaseByID(ctx, c.ID)
	pending := &intake.PendingTransfer{From: "unit-a", To: "unit-b", By: "lead", At: base, Reason: "管辖", Due: "2026-03-30"}
	notice := triage.Notification{ID: c.ID + ":transfer@1", UnitID: "unit-b", Case: c.Number, CaseUnit: "unit-a", Kind: "transfer_in", Due: "2026-03-30", CreatedAt: base.UTC()}
	stale := *got
	stale.Version--
	staleNotice := notice
	staleNotice.ID = c.ID + ":transfer@0"
	wantCode(t, s.Hand(ctx, &stale, intake.Decision{UnitID: "unit-b", DecidedAt: base}, pending, intake.Transition{Action: "transfer", By: "lead", At: base}, staleNotice), qingfeng.ECONFLICT)
	if err := s.Hand(ctx, got, intake.Decision{UnitID: "unit-b", UnitName: "乙", DecidedAt: base}, pending, intake.Transition{Action: "transfer", By: "lead", At: base}, notice); err != nil {
		t.Fatal(err)
	}
	if ns, err := s.Notifications(ctx, "unit-b", 10); err != nil || len(ns) != 1 || !reflect.DeepEqual(ns[0], notice) {
		t.Errorf("unit-b's notifications after the transfer: %+v, %v; want %+v", ns, err, notice)
	}
	if ns, _ := s.Notifications(ctx, "unit-a", 10); len(ns) != 0 {
		t.Errorf("the sending unit was notified: %+v", ns)
	}
	got, _ = s.CaseByID(ctx, c.ID)
	if got.UnitID != "unit-b" || got.Transfer == nil || got.Transfer.Due != "2026-03-30" || len(got.EarlierDecisions) != 1 || got.Outcome != nil || got.Assignee != "" {
		t.Fatalf("after transfer: unit %s, transfer %+v, %d earlier decisions, outcome %v, assignee %q", got.UnitID, got.Transfer, len(got.EarlierDecisions), got.Outcome, got.Assignee)
	}
	if q, _ := s.ListCases(ctx, intake.CaseFilter{UnitID: "unit-b", SortByDue: true}); !reflect.DeepEqual(ids(q), []string{c.ID}) {
		t.Errorf("receiving unit's queue by due = %v, want the pending transfer", ids(q))
	}
	returned := triage.Notification{ID: c.ID + ":transfer_return@1", UnitID: "unit-a", Case: c.Number, CaseUnit: "unit-b", Kind: "transfer_returned", CreatedAt: base.Add(time.Minute).UTC()}
	if err := s.Hand(ctx, got, intake.Decision{UnitID: "unit-a", DecidedAt: base}, nil, intake.Transition{Action: "return", By: "b1", At: base}, returned, notice); err != nil {
		t.Fatal(err)
	}
	if ns, err := s.Notifications(ctx, "unit-a", 10); err != nil || len(ns) != 1 || !reflect.DeepEqual(ns[0], returned) {
		t.Errorf("unit-a's notifications after the return: %+v, %v", ns, err)
	}
	if ns, _ := s.Notifications(ctx, "unit-b", 10); len(ns) != 1 {
		t.Errorf("a notification id used again made a second: %+v", ns)
	}
	got, _ = s.CaseByID(ctx, c.ID)
	if got.UnitID != "unit-a" || got.Transfer != nil || len(got.EarlierDecisions) != 2 || got.EarlierDecisions[1].UnitID != "unit-b" {
		t.Fatalf("after return: unit %s, transfer %+v, earlier %+v", got.UnitID, got.Transfer, got.EarlierDecisions)
	}
	if q, _ := s.ListCases(ctx, intake.CaseFilter{UnitID: "unit-a", SortByDue: true}); len(q) != 0 {
		t.Errorf("nothing is due after the return, queue by due = %v", ids(q))
	}

	// Re-routing keeps the earlier decision.
	subject := intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "李某", Employer: "某局"}}
	if err := s.Reroute(ctx, got, "official_discipline", subject, intake.Decision{UnitID: "jw-330782", Reason: "改派", DecidedAt: base, By: "lead", Why: "涉及公职人员"}); err != nil {
		t.Fatal(err)
	}
	got2, _ := s.CaseByID(ctx, c.ID)
	if got2.UnitID != "jw-330782" || got2.Category != "official_discipline" || !reflect.DeepEqual(got2.Subject, subject) ||
		len(got2.EarlierDecisions) != 3 || !reflect.DeepEqual(got2.EarlierDecisions[2], got.Decision) || got2.Version != got.Version+1 {
		t.Errorf("after reroute: %+v", got2)
	}
}

// testReporterActivity: a reporter's message or upload marks the case without
// changing its version; staff of the owning unit clear it only at the count they
// were shown; staff messages and uploads do not mark.
func testReporterActivity(t *testing.T, s CaseStore) {
	ctx := context.Background()
	c := NewCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	wantCode(t, s.AddMessage(ctx, &intake.Message{ID: "m0", CaseID: "nope", From: intake.UploaderReporter, Kind: "message", Body: "x", CreatedAt: base}), qingfeng.ENOTFOUND)
	if m, _ := s.Messages(ctx, "nope"); len(m) != 0 {
		t.Errorf("a reporter's message to no case was stored")
	}
	if err := s.AddMessage(ctx, &intake.Message{ID: "s1", CaseID: c.ID, From: "staff", Kind: "message", AuthorID: "u1", Body: "请补充", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	staffEv := ev("s-ev", 1)
	staffEv.UploadedBy = "staff:u1"
	if _, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{staffEv}, 100); err != nil {
		t.Fatal(err)
	}
	got, _ := s.CaseByID(ctx, c.ID)
	if got.NewActivity || got.ReporterActivityN != 0 {
		t.Fatalf("staff activity marked the case: %v, %d", got.NewActivity, got.ReporterActivityN)
	}
	later := base.Add(time.Hour)
	if err := s.AddMessage(ctx, &intake.Message{ID: "r1", CaseID: c.ID, From: intake.UploaderReporter, Kind: "message", Body: "好的", CreatedAt: later}); err != nil {
		t.Fatal(err)
	}
	up := ev("r-ev", 1)
	up.UploadedAt = base.Add(time.Minute) // earlier than the message: the latest stays
	if _, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{up}, 100); err != nil {
		t.Fatal(err)
	}
	got, _ = s.CaseByID(ctx, c.ID)
	if !got.NewActivity || got.ReporterActivityN != 2 || !got.ReporterActivityAt.Equal(later) || got.Version != c.Version+2 {
		t.Fatalf("after reporter activity: new %v, n %d, at %v, version %d", got.NewActivity, got.ReporterActivityN, got.ReporterActivityAt, got.Version)
	}
	seen := []struct {
		name string
		unit string
		n    int64
		want bool
	}{
		{"another unit", "unit-b", 2, false},
		{"an older count", "unit-a", 1, false},
		{"missing case", "unit-a", 2, false},
		{"the owning unit at the count shown", "unit-a", 2, true},
		{"again", "unit-a", 2, false},
	}
	for _, st := range seen {
		id := c.ID
		if st.name == "missing case" {
			id = "nope"
		}
		ok, err := s.MarkActivitySeen(ctx, id, st.unit, st.n, later)
		if err != nil || ok != st.want {
			t.Errorf("%s: MarkActivitySeen = %v, %v; want %v", st.name, ok, err, st.want)
		}
	}
	got, _ = s.CaseByID(ctx, c.ID)
	if got.NewActivity || !got.StaffSeenAt.Equal(later) || got.Version != c.Version+2 {
		t.Errorf("after seen: new %v, seen at %v, version %d", got.NewActivity, got.StaffSeenAt, got.Version)
	}
}

// testEscalation: overdue steps of each kind are listed once, escalated once (16
// concurrent escalators, one notification), and a new transfer clears its mark.
func testEscalation(t *testing.T, s CaseStore) {
	ctx := context.Background()
	acc := NewCase(1, "unit-a", "330782", base) // acceptance due 2026-03-20
	fb := NewCase(2, "unit-a", "330782", base)
	fb.Status, fb.AcceptanceDue, fb.FeedbackDue = intake.StatusConcluded, "", "2026-03-19"
	tr := NewCase(3, "unit-b", "330782", base)
	tr.Status, tr.AcceptanceDue = intake.StatusAccepted, ""
	tr.Transfer = &intake.PendingTransfer{From: "unit-a", To: "unit-b", By: "lead", At: base, Due: "2026-03-18"}
	notYet := NewCase(4, "unit-a", "330782", base)
	notYet.AcceptanceDue = "2026-03-21"
	mustCreate(t, s, acc, fb, tr, notYet)

	got, err := s.OverdueSteps(ctx, "2026-03-21", 100)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].CaseID < got[j].CaseID })
	want := []triage.Overdue{
		{CaseID: acc.ID, Number: acc.Number, UnitID: "unit-a", Kind: "acceptance", Due: "2026-03-20"},
		{CaseID: fb.ID, Number: fb.Number, UnitID: "unit-a", Kind: "feedback", Due: "2026-03-19"},
		{CaseID: tr.ID, Number: tr.Number, UnitID: "unit-b", Kind: "transfer", Due: "2026-03-18", Key: fmt.Sprintf("transfer@%d", base.UnixMilli())},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("OverdueSteps:\n got %+v\nwant %+v", got, want)
	}
	var created sync.Map
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for _, o := range want {
				n := triage.Notification{ID: o.CaseID + ":" + o.Kind, UnitID: "parent", Case: o.Number, CaseUnit: o.UnitID, Kind: o.Kind, Due: o.Due, CreatedAt: base}
				ok, err := s.Escalate(ctx, o, n)
				if err != nil {
					t.Errorf("escalator %d: %v", i, err)
				}
				if ok {
					if _, dup := created.LoadOrStore(n.ID, i); dup {
						t.Errorf("%s notified twice", n.ID)
					}
				}
			}
		})
	}
	wg.Wait()
	ns, err := s.Notifications(ctx, "parent", 10)
	if err != nil || len(ns) != 3 {
		t.Fatalf("notifications = %+v, %v; want 3", ns, err)
	}
	if again, _ := s.OverdueSteps(ctx, "2026-03-21", 100); len(again) != 0 {
		t.Errorf("escalated steps listed again: %+v", again)
	}
	c, _ := s.CaseByID(ctx, acc.ID)
	if !reflect.DeepEqual(c.Escalated, []string{"acceptance"}) || c.Version != acc.Version {
		t.Errorf("escalated %v, version %d; want [acceptance], %d", c.Escalated, c.Version, acc.Version)
	}
	// A new transfer of the case clears its transfer mark.
	c, _ = s.CaseByID(ctx, tr.ID)
	next := &intake.PendingTransfer{From: "unit-b", To: "unit-c", By: "b1", At: base.Add(time.Hour), Due: "2026-03-20"}
	if err := s.Hand(ctx, c, intake.Decision{UnitID: "unit-c", DecidedAt: base}, next, intake.Transition{Action: "transfer", By: "b1", At: base}); err != nil {
		t.Fatal(err)
	}
	again, err := s.OverdueSteps(ctx, "2026-03-21", 100)
	if err != nil || len(again) != 1 || again[0].Kind != "transfer" || again[0].Key != fmt.Sprintf("transfer@%d", next.At.UnixMilli()) {
		t.Errorf("after a new transfer: %+v, %v", again, err)
	}
}

// testCreateConcurrent: 32 attempts at once to store the same case (a retried
// filing): one is stored, every other is ECONFLICT, and one case.registered event
// waits for the relay.
func testCreateConcurrent(t *testing.T, stores CaseStores) {
	ctx := context.Background()
	s := stores.Cases
	const writers = 32
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			c := NewCase(1, "unit-a", "330782", base)
			c.Description = fmt.Sprint("第", i, "次提交")
			errs[i] = s.CreateCase(ctx, c)
		})
	}
	wg.Wait()
	stored := -1
	for i, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			if stored >= 0 {
				t.Errorf("attempts %d and %d both stored", stored, i)
			}
			stored = i
		case qingfeng.ECONFLICT:
		default:
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	got, err := s.CaseByID(ctx, "case-0001")
	if err != nil {
		t.Fatal(err)
	}
	if stored < 0 || got.Description != fmt.Sprint("第", stored, "次提交") {
		t.Errorf("stored attempt %d, case says %q", stored, got.Description)
	}
	if n, err := stores.Outbox.Relay(ctx, []string{"w"}, base, 100); err != nil || n != 1 {
		t.Errorf("relayed %d events, %v; want the one case.registered", n, err)
	}
}

// testOverdueBeyondTheLimit: escalated cases stay overdue; with more of them than
// the escalator's limit, a newly overdue step must still be listed.
func testOverdueBeyondTheLimit(t *testing.T, s CaseStore) {
	ctx := context.Background()
	const limit = 3
	for i := range limit + 2 {
		c := NewCase(i, "unit-a", "330782", base) // acceptance due 2026-03-20
		mustCreate(t, s, c)
		o := triage.Overdue{CaseID: c.ID, Number: c.Number, UnitID: c.UnitID, Kind: "acceptance", Due: c.AcceptanceDue}
		if _, err := s.Escalate(ctx, o, triage.Notification{ID: c.ID + ":acceptance", UnitID: "parent", Case: c.Number, CaseUnit: c.UnitID, Kind: "acceptance", Due: c.AcceptanceDue, CreatedAt: base}); err != nil {
			t.Fatal(err)
		}
	}
	late := NewCase(99, "unit-a", "330782", base)
	mustCreate(t, s, late)
	got, err := s.OverdueSteps(ctx, "2026-03-21", limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].CaseID != late.ID {
		t.Errorf("OverdueSteps(limit %d) = %+v; want only %s, the one not yet escalated", limit, got, late.ID)
	}
}
