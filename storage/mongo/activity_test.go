package mongo

import (
	"context"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// Reporter activity: a reporter's message or upload marks the case until staff of the
// owning unit read it (intake.Case.NewActivity).

func reporterMsg(caseID string, at time.Time) *intake.Message {
	return &intake.Message{ID: intake.NewID(), CaseID: caseID, From: intake.UploaderReporter, Kind: "message", Body: "补充一点情况", CreatedAt: at}
}

func uploadBy(by string, at time.Time) intake.Evidence {
	e := ev(intake.NewID(), 10)
	e.UploadedBy, e.UploadedAt = by, at
	return e
}

func loadCase(t *testing.T, s *CaseStore, id string) *intake.Case {
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

// TestRetentionKeepsUnreadActivity: a closed case past its retention period is not
// purged while it has reporter activity its unit has not read — not when the activity
// came before the run, nor when a message arrives during the purge (a message does not
// change the case's version, so the version alone would not stop it).
func TestRetentionKeepsUnreadActivity(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		blobs := memS3(t)
		s := NewCaseStore(db)
		p := newPurger(db, blobs, "x")
		closedAt := retentionNow.AddDate(-6, 0, 0)

		before := closedCase(t, db, blobs, 1, closedAt, false)
		if err := s.AddMessage(ctx, reporterMsg(before.c.ID, retentionNow)); err != nil {
			t.Fatal(err)
		}
		during := closedCase(t, db, blobs, 2, closedAt, false)
		retentionHook = func(caseID, step string) error {
			if step == "case" && caseID == during.c.ID {
				retentionHook = nil
				return s.AddMessage(ctx, reporterMsg(caseID, retentionNow))
			}
			return nil
		}
		defer func() { retentionHook = nil }()
		if n, err := p.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("purged %d, %v; want both cases kept", n, err)
		}
		for _, f := range []retentionFixture{before, during} {
			c := loadCase(t, s, f.c.ID)
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
		for _, f := range []retentionFixture{before, during} {
			c := loadCase(t, s, f.c.ID)
			if ok, err := s.MarkActivitySeen(ctx, c.ID, c.UnitID, c.ReporterActivityN, retentionNow); err != nil || !ok {
				t.Fatalf("mark seen: %v, %v", ok, err)
			}
		}
		if n, err := p.RunOnce(ctx); err != nil || n != 2 {
			t.Fatalf("after the reads purged %d, %v; want 2", n, err)
		}
	})
}
