package mongo

import (
	"context"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

func TestRuleStore(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Rules(t, func(t *testing.T) storetest.RuleStore { return NewRuleStore(openTestDB(t, tg)) })
	})
}

func TestReroute(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s := NewCaseStore(openTestDB(t, tg))
		at := time.Date(2026, 11, 2, 1, 0, 0, 0, time.UTC)
		c := newCase(1, "330782-mz", "330782", at)
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
	})
}
