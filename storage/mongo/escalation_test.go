package mongo

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/triage"
)

func TestEscalation(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		s := NewCaseStore(db)
		at := time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC)
		for i := range 6 {
			c := newCase(i+1, "330782-mz", "330782", at)
			c.AcceptanceDue = "2026-10-22"
			switch i {
			case 4: // not yet due
				c.AcceptanceDue = "2026-11-30"
			case 5: // accepted in time: no acceptance deadline pending; its feedback is overdue
				c.Status, c.FeedbackDue = intake.StatusConcluded, "2026-11-02"
			}
			if err := s.CreateCase(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)
		parent := func(string) string { return "330700-mz" }
		newEscalator := func(holder string) *triage.Escalator {
			return &triage.Escalator{Store: s, Parent: parent, Holder: holder, Now: func() time.Time { return now }}
		}

		// Two instances at once: the lease lets one work; together they escalate each
		// overdue step once.
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := newEscalator(fmt.Sprint("instance-", i)).RunOnce(ctx)
				if err != nil {
					t.Error(err)
				}
				counts[i] = n
			}()
		}
		wg.Wait()
		if counts[0]+counts[1] != 5 || (counts[0] != 0 && counts[1] != 0) {
			t.Fatalf("escalated %v, want 5 by one instance", counts)
		}
		ns, err := s.Notifications(ctx, "330700-mz", 100)
		if err != nil || len(ns) != 5 {
			t.Fatalf("%d notifications, %v", len(ns), err)
		}
		// A restarted instance (new holder, after the lease expired) finds nothing new.
		now = now.Add(time.Hour)
		if n, err := newEscalator("after-restart").RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("second run escalated %d, %v", n, err)
		}
		c, _ := s.CaseByID(ctx, "case-0001")
		if len(c.Escalated) != 1 || c.Escalated[0] != "acceptance" || c.Version != 1 {
			t.Errorf("case mark %v version %d", c.Escalated, c.Version)
		}
		c, _ = s.CaseByID(ctx, "case-0006")
		if len(c.Escalated) != 1 || c.Escalated[0] != "feedback" {
			t.Errorf("feedback mark %v", c.Escalated)
		}

		// A crash between notifying and marking: the next run marks, and does not
		// notify again.
		if _, err := db.coll(collCases).UpdateOne(ctx, bson.M{"_id": "case-0002"}, bson.M{"$unset": bson.M{"escalated": ""}}); err != nil {
			t.Fatal(err)
		}
		if n, err := newEscalator("after-restart").RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("re-marking escalated %d, %v", n, err)
		}
		if c, _ := s.CaseByID(ctx, "case-0002"); len(c.Escalated) != 1 {
			t.Errorf("not re-marked: %v", c.Escalated)
		}
		if ns, _ := s.Notifications(ctx, "330700-mz", 100); len(ns) != 5 {
			t.Errorf("%d notifications after the crash recovery", len(ns))
		}

		// The lease: held by one holder until it expires.
		ok, err := s.AcquireLease(ctx, "test", "a", now, now.Add(time.Minute))
		if err != nil || !ok {
			t.Fatalf("first take: %v %v", ok, err)
		}
		if ok, _ := s.AcquireLease(ctx, "test", "b", now.Add(30*time.Second), now.Add(2*time.Minute)); ok {
			t.Error("a held lease was taken")
		}
		if ok, _ := s.AcquireLease(ctx, "test", "a", now.Add(30*time.Second), now.Add(2*time.Minute)); !ok {
			t.Error("the holder could not renew")
		}
		if ok, _ := s.AcquireLease(ctx, "test", "b", now.Add(3*time.Minute), now.Add(4*time.Minute)); !ok {
			t.Error("an expired lease was not taken")
		}
	})
}
