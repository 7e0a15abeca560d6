package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// Reporter activity: a reporter's message or upload marks the case until staff of the
// owning unit read it (intake.Case.NewActivity). The scenarios, part of Cases.

func reporterMsg(caseID string, at time.Time) *intake.Message {
	return &intake.Message{ID: intake.NewID(), CaseID: caseID, From: intake.UploaderReporter, Kind: "message", Body: "补充一点情况", CreatedAt: at}
}

func uploadBy(by string, at time.Time) intake.Evidence {
	e := ev(intake.NewID(), 10)
	e.UploadedBy, e.UploadedAt = by, at
	return e
}

func loadCase(t *testing.T, s CaseStore, id string) *intake.Case {
	t.Helper()
	c, err := s.CaseByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantActivity(t *testing.T, c *intake.Case, flagged bool, n int64) {
	t.Helper()
	if c.NewActivity != flagged || c.ReporterActivityN != n {
		t.Fatalf("new_activity %v, count %d; want %v, %d", c.NewActivity, c.ReporterActivityN, flagged, n)
	}
}

func testActivityMarking(t *testing.T, s CaseStore) {
	ctx := context.Background()
	c := NewCase(1, "mz-330782", "330782", base)
	c.Status = intake.StatusClosed // closed cases are marked like any other
	mustCreate(t, s, c)
	wantActivity(t, loadCase(t, s, c.ID), false, 0)

	t1 := base.Add(time.Hour)
	if err := s.AddMessage(ctx, reporterMsg(c.ID, t1)); err != nil {
		t.Fatal(err)
	}
	got := loadCase(t, s, c.ID)
	wantActivity(t, got, true, 1)
	if !got.ReporterActivityAt.Equal(t1) {
		t.Errorf("reporter_activity_at %v, want %v", got.ReporterActivityAt, t1)
	}
	if got.Version != c.Version {
		t.Errorf("a reporter's message changed the version %d → %d: staff's concurrent step would fail", c.Version, got.Version)
	}

	// Staff writing does not count, nor clear.
	if err := s.AddMessage(ctx, &intake.Message{ID: intake.NewID(), CaseID: c.ID, From: "staff", Kind: "message", AuthorID: "u1", Body: "收到", CreatedAt: t1}); err != nil {
		t.Fatal(err)
	}
	wantActivity(t, loadCase(t, s, c.ID), true, 1)

	// Another unit's read, and a read of an older state, leave the mark.
	for _, tt := range []struct {
		name string
		unit string
		n    int64
	}{{"another unit", "jw-330782", 1}, {"stale count", "mz-330782", 0}, {"future count", "mz-330782", 2}, {"no unit", "", 1}} {
		ok, err := s.MarkActivitySeen(ctx, c.ID, tt.unit, tt.n, t1)
		if err != nil || ok {
			t.Fatalf("%s: cleared %v, err %v", tt.name, ok, err)
		}
		wantActivity(t, loadCase(t, s, c.ID), true, 1)
	}
	seenAt := t1.Add(time.Minute)
	if ok, err := s.MarkActivitySeen(ctx, c.ID, "mz-330782", 1, seenAt); err != nil || !ok {
		t.Fatalf("owning unit's read: cleared %v, err %v", ok, err)
	}
	got = loadCase(t, s, c.ID)
	wantActivity(t, got, false, 1)
	if !got.StaffSeenAt.Equal(seenAt) {
		t.Errorf("staff_seen_at %v, want %v", got.StaffSeenAt, seenAt)
	}
	// Clearing twice is a no-op.
	if ok, err := s.MarkActivitySeen(ctx, c.ID, "mz-330782", 1, seenAt); err != nil || ok {
		t.Fatalf("second clear: %v, %v", ok, err)
	}

	// The reporter's evidence marks in the same update; staff's and a liaison's do not.
	t2 := t1.Add(2 * time.Hour)
	if _, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{uploadBy("staff:u1", t2), uploadBy("liaison:u7", t2)}, 1<<20); err != nil {
		t.Fatal(err)
	}
	wantActivity(t, loadCase(t, s, c.ID), false, 1)
	if _, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{uploadBy(intake.UploaderReporter, t2), uploadBy(intake.UploaderReporter, t1)}, 1<<20); err != nil {
		t.Fatal(err)
	}
	got = loadCase(t, s, c.ID)
	wantActivity(t, got, true, 3)
	if !got.ReporterActivityAt.Equal(t2) {
		t.Errorf("reporter_activity_at %v, want the latest upload %v", got.ReporterActivityAt, t2)
	}
	// Evidence over the limit changes nothing, the mark included.
	if _, err := s.MarkActivitySeen(ctx, c.ID, "mz-330782", 3, t2); err != nil {
		t.Fatal(err)
	}
	_, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{uploadBy(intake.UploaderReporter, t2)}, 1)
	wantCode(t, err, qingfeng.ETOOLARGE)
	wantActivity(t, loadCase(t, s, c.ID), false, 3)

	// A message stored out of order does not move the time back.
	if err := s.AddMessage(ctx, reporterMsg(c.ID, base)); err != nil {
		t.Fatal(err)
	}
	got = loadCase(t, s, c.ID)
	wantActivity(t, got, true, 4)
	if !got.ReporterActivityAt.Equal(t2) {
		t.Errorf("reporter_activity_at went back to %v, want %v", got.ReporterActivityAt, t2)
	}

	// A message under an id already stored (intake's retry under the same key) is
	// ECONFLICT and changes nothing: no second message, no second mark.
	again := reporterMsg(c.ID, t2)
	if err := s.AddMessage(ctx, again); err != nil {
		t.Fatal(err)
	}
	wantActivity(t, loadCase(t, s, c.ID), true, 5)
	before, _ := s.Messages(ctx, c.ID)
	wantCode(t, s.AddMessage(ctx, again), qingfeng.ECONFLICT)
	wantActivity(t, loadCase(t, s, c.ID), true, 5)
	if after, _ := s.Messages(ctx, c.ID); len(after) != len(before) {
		t.Errorf("a message under a taken id was stored: %d → %d", len(before), len(after))
	}

	// A reporter's message to a case that does not exist is refused and not kept.
	wantCode(t, s.AddMessage(ctx, reporterMsg("no-such-case", t1)), qingfeng.ENOTFOUND)
	if ms, err := s.Messages(ctx, "no-such-case"); err != nil || len(ms) != 0 {
		t.Errorf("messages of a missing case: %d, %v", len(ms), err)
	}
	if _, err := s.MarkActivitySeen(ctx, "no-such-case", "mz-330782", 1, t1); err != nil {
		t.Errorf("clearing a missing case: %v", err)
	}
}

func testActivityQueue(t *testing.T, s CaseStore) {
	ctx := context.Background()
	units := []string{"mz-330782", "jw-330782"}
	want := map[string][]string{}
	for i := range 12 {
		unit := units[i%2]
		c := NewCase(i, unit, "330782", base.Add(time.Duration(i)*time.Minute))
		mustCreate(t, s, c)
		switch i % 3 {
		case 0: // a message
			if err := s.AddMessage(ctx, reporterMsg(c.ID, base)); err != nil {
				t.Fatal(err)
			}
			want[unit] = append(want[unit], c.ID)
		case 1: // a message, read
			if err := s.AddMessage(ctx, reporterMsg(c.ID, base)); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.MarkActivitySeen(ctx, c.ID, unit, 1, base); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}
	}
	for _, unit := range units {
		// Newest first, paged two at a time.
		var wantIDs []string
		for i := len(want[unit]) - 1; i >= 0; i-- {
			wantIDs = append(wantIDs, want[unit][i])
		}
		ids, _ := pageAll(t, s, intake.CaseFilter{UnitID: unit, NewActivity: true, Limit: 2})
		if fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
			t.Errorf("%s: new activity %v, want %v", unit, ids, wantIDs)
		}
		n, err := s.CountNewActivity(ctx, unit)
		if err != nil || n != int64(len(wantIDs)) {
			t.Errorf("%s: count %d (%v), want %d", unit, n, err, len(wantIDs))
		}
		all, _ := pageAll(t, s, intake.CaseFilter{UnitID: unit})
		if len(all) != 6 {
			t.Errorf("%s: without the filter %d cases, want 6", unit, len(all))
		}
	}
	if n, err := s.CountNewActivity(ctx, "no-such-unit"); err != nil || n != 0 {
		t.Errorf("unknown unit: %d, %v", n, err)
	}
}

// testActivitySequences runs seeded random sequences of reporter messages and uploads,
// staff uploads, transfers between two units and reads by staff of either unit, a read
// being split into its load and its mark with other steps between, and checks after
// every step that a cleared mark means an owning unit's reader was shown everything
// the reporter sent, and that such a read always clears it.
func testActivitySequences(t *testing.T, s CaseStore) {
	ctx := context.Background()
	units := []string{"mz-330782", "jw-330782"}
	type read struct {
		unit      string
		snap      *intake.Case
		displayed int // reporter messages and uploads the reader was shown
	}
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 2026))
		c := NewCase(int(seed), units[0], "330782", base)
		mustCreate(t, s, c)
		owner := units[0]
		sent := 0 // reporter messages and uploads so far
		clock := base
		pending := map[string]*read{}
		var trace []string
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d after %v: %s", seed, trace, fmt.Sprintf(format, args...))
		}
		for range 40 {
			clock = clock.Add(time.Duration(rng.IntN(3)) * time.Second) // ties included
			unit := units[rng.IntN(2)]
			switch op := rng.IntN(6); op {
			case 0:
				trace = append(trace, "msg")
				if err := s.AddMessage(ctx, reporterMsg(c.ID, clock)); err != nil {
					fail("%v", err)
				}
				sent++
			case 1:
				trace = append(trace, "upload")
				if _, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{uploadBy(intake.UploaderReporter, clock)}, 1<<30); err != nil {
					fail("%v", err)
				}
				sent++
			case 2:
				trace = append(trace, "staff-upload")
				if _, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{uploadBy("staff:u1", clock)}, 1<<30); err != nil {
					fail("%v", err)
				}
			case 3:
				owner = units[rng.IntN(2)]
				trace = append(trace, "transfer:"+owner[:2])
				if err := s.Hand(ctx, loadCase(t, s, c.ID), intake.Decision{UnitID: owner, DecidedAt: clock}, nil, intake.Transition{Action: "transfer", By: "lead", At: clock}); err != nil {
					fail("%v", err)
				}
			case 4: // a reader loads the case, then its messages, as GET /v1/cases/{case} does
				trace = append(trace, "load:"+unit[:2])
				snap := loadCase(t, s, c.ID)
				ms, err := s.Messages(ctx, c.ID)
				if err != nil {
					fail("%v", err)
				}
				r := &read{unit: unit, snap: snap}
				for _, m := range ms {
					if m.From == intake.UploaderReporter {
						r.displayed++
					}
				}
				for _, e := range snap.Evidence {
					if e.UploadedBy == intake.UploaderReporter {
						r.displayed++
					}
				}
				pending[unit] = r
			case 5:
				r := pending[unit]
				if r == nil {
					continue
				}
				delete(pending, unit)
				trace = append(trace, "mark:"+unit[:2])
				if !r.snap.NewActivity || r.snap.UnitID != r.unit {
					continue // what intake.Service.MarkActivitySeen skips
				}
				cleared, err := s.MarkActivitySeen(ctx, c.ID, r.unit, r.snap.ReporterActivityN, clock)
				if err != nil {
					fail("%v", err)
				}
				if cleared && (r.displayed < sent || r.unit != owner) {
					fail("cleared by a %s reader shown %d of %d (owner %s)", r.unit, r.displayed, sent, owner)
				}
				if !cleared && r.displayed == sent && r.unit == owner {
					fail("a reader of the owning unit shown all %d was not counted", sent)
				}
			}
			got := loadCase(t, s, c.ID)
			if got.ReporterActivityN != int64(sent) {
				fail("count %d, want %d", got.ReporterActivityN, sent)
			}
			if sent == 0 && got.NewActivity {
				fail("marked with nothing sent")
			}
		}
	}
}

// testActivityConcurrent: 32 reporter messages at once while staff of the owning unit
// read the case over and over. Every read that clears the mark must have been shown
// every message counted; after the last message, the mark is set unless a read after
// it cleared it, and a read after the last message clears it.
func testActivityConcurrent(t *testing.T, s CaseStore) {
	ctx := context.Background()
	const unit, n = "mz-330782", 32
	c := NewCase(1, unit, "330782", base)
	mustCreate(t, s, c)

	read := func() (snap *intake.Case, shown int, cleared bool, err error) {
		if snap, err = s.CaseByID(ctx, c.ID); err != nil {
			return
		}
		ms, err := s.Messages(ctx, c.ID)
		if err != nil {
			return
		}
		shown = len(ms)
		if snap.NewActivity {
			cleared, err = s.MarkActivitySeen(ctx, c.ID, unit, snap.ReporterActivityN, time.Now())
		}
		return
	}
	var (
		wg      sync.WaitGroup
		done    = make(chan struct{})
		readers sync.WaitGroup
		mu      sync.Mutex
		errs    []error
	)
	report := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				snap, shown, cleared, err := read()
				if err != nil {
					report(err)
					return
				}
				if cleared && int64(shown) < snap.ReporterActivityN {
					report(fmt.Errorf("cleared at count %d having shown %d messages", snap.ReporterActivityN, shown))
				}
			}
		}()
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AddMessage(ctx, reporterMsg(c.ID, base.Add(time.Duration(i)*time.Millisecond))); err != nil {
				report(err)
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	got := loadCase(t, s, c.ID)
	if got.ReporterActivityN != n {
		t.Fatalf("count %d, want %d", got.ReporterActivityN, n)
	}
	if !got.NewActivity && got.StaffSeenAt.IsZero() {
		t.Fatal("cleared without a read")
	}
	if !got.ReporterActivityAt.Equal(base.Add((n - 1) * time.Millisecond)) {
		t.Errorf("reporter_activity_at %v, want the latest message's", got.ReporterActivityAt)
	}
	// A read now, after the last message, clears the mark.
	if _, shown, _, err := read(); err != nil || shown != n {
		t.Fatalf("final read: shown %d, %v", shown, err)
	}
	wantActivity(t, loadCase(t, s, c.ID), false, n)
}
