package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// testEscalator: two escalator instances at once on the lease store's lease escalate
// each overdue step once; a restarted instance finds nothing new. (The Leases suite
// checks the lease itself.)
func testEscalator(t *testing.T, stores CaseStores) {
	ctx := context.Background()
	s := stores.Cases
	at := time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC)
	for i := range 6 {
		c := NewCase(i+1, "330782-mz", "330782", at)
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
		return &triage.Escalator{Store: s, Leases: stores.Leases, Parent: parent, Holder: holder, Now: func() time.Time { return now }}
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

}

// testReroute: the decision record survives; a re-routing keeps the earlier
// decision, refuses a stale version and an unknown case.
func testReroute(t *testing.T, s CaseStore) {
	{
		ctx := context.Background()
		at := time.Date(2026, 11, 2, 1, 0, 0, 0, time.UTC)
		c := NewCase(1, "330782-mz", "330782", at)
		c.Decision.Candidates = []intake.Candidate{{UnitID: "330782-mz", UnitName: "义乌市民政局", RuleID: "r1", Chosen: true, Detail: "适用规则"}}
		c.Decision.Informed = []intake.UnitRef{{ID: "330782-scjg", Name: "义乌市市场监督管理局"}}
		c.Decision.RuleID, c.Decision.RuleVersion = "r1", 4
		if err := s.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.CaseByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Decision.Candidates) != 1 || got.Decision.Informed[0].ID != "330782-scjg" || got.Decision.RuleVersion != 4 {
			t.Fatalf("decision record lost: %+v", got.Decision)
		}
		subject := intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "王某", Position: "科长", Employer: "义乌市民政局"}}
		next := intake.Decision{UnitID: "330782-mz-pz", UnitName: "派驻义乌市民政局纪检监察组", Reason: "r", Router: "rules/1@v4",
			By: "staff-1", Why: "被举报对象应为民政局工作人员", DecidedAt: at.Add(time.Hour)}
		if err := s.Reroute(ctx, got, "official_discipline", subject, next); err != nil {
			t.Fatal(err)
		}
		// The same stale version again: refused, nothing changes.
		if err := s.Reroute(ctx, got, "other", subject, next); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			t.Fatalf("stale reroute: %v", err)
		}
		after, err := s.CaseByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.UnitID != "330782-mz-pz" || after.Category != "official_discipline" || after.Subject.Person == nil ||
			after.Decision.By != "staff-1" || len(after.EarlierDecisions) != 1 || after.EarlierDecisions[0].UnitID != "330782-mz" ||
			after.Version != got.Version+1 {
			t.Fatalf("after reroute: unit %s category %s decision %+v earlier %+v version %d", after.UnitID, after.Category, after.Decision, after.EarlierDecisions, after.Version)
		}
		missing := *got
		missing.ID = "nope"
		if err := s.Reroute(ctx, &missing, "other", subject, next); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
			t.Fatalf("unknown case: %v", err)
		}
	}
}
