package mongo

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/storage/storetest"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// TestEscalationCrashBetweenNotifyAndMark: this store writes the notification and the
// case's mark in two writes; a crash between them leaves an unmarked case, which the
// next run marks without notifying again. (The shared scenarios are storetest's
// Escalation and Escalator.)
func TestEscalationCrashBetweenNotifyAndMark(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		s := NewCaseStore(db)
		at := time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC)
		c := storetest.NewCase(2, "330782-mz", "330782", at)
		c.AcceptanceDue = "2026-10-22"
		if err := s.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)
		esc := func(holder string) *triage.Escalator {
			return &triage.Escalator{Store: s, Leases: NewLeaseStore(db), Parent: func(string) string { return "330700-mz" }, Holder: holder, Now: func() time.Time { return now }}
		}
		if n, err := esc("first").RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("first run escalated %d, %v", n, err)
		}
		now = now.Add(time.Hour)
		// A crash between notifying and marking: the next run marks, and does not
		// notify again.
		if _, err := db.coll(collCases).UpdateOne(ctx, bson.M{"_id": "case-0002"}, bson.M{"$unset": bson.M{"escalated": ""}}); err != nil {
			t.Fatal(err)
		}
		if n, err := esc("after-restart").RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("re-marking escalated %d, %v", n, err)
		}
		if c, _ := s.CaseByID(ctx, "case-0002"); len(c.Escalated) != 1 {
			t.Errorf("not re-marked: %v", c.Escalated)
		}
		if ns, _ := s.Notifications(ctx, "330700-mz", 100); len(ns) != 1 {
			t.Errorf("%d notifications after the crash recovery", len(ns))
		}
	})
}
