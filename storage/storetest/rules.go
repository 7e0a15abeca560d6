package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// RuleStore is routing.RuleStorage with the seeding cmd/qingfeng does at start.
type RuleStore interface {
	routing.RuleStorage
	Seed(ctx context.Context, set routing.RuleSet) (bool, error)
}

// Rules is the suite every rule store passes: seeding once, versions bumped by each
// change and by nothing that failed, retirement once; 16 concurrent adds get 16
// versions, 16 concurrent retirements of one rule have one winner; a seeded random
// sequence of changes checked against a model of the versions.
func Rules(t *testing.T, newStore func(t *testing.T) RuleStore) {
	run(t, newStore, []scenario[RuleStore]{
		{"Versions", testRulesVersions},
		{"Concurrent", testRulesConcurrent},
		{"Property", testRulesProperty},
	})
}

func testRulesVersions(t *testing.T, s RuleStore) {
	ctx := context.Background()
	if v, err := s.Version(ctx); err != nil || v != 0 {
		t.Fatalf("empty store: version %d, %v", v, err)
	}
	def := routing.DefaultRules()
	for i := range 2 { // seeding is idempotent
		seeded, err := s.Seed(ctx, def)
		if err != nil || seeded != (i == 0) {
			t.Fatalf("seed #%d: %v, %v", i+1, seeded, err)
		}
	}
	set, err := s.Load(ctx)
	if err != nil || set.Version != 1 || len(set.Rules) != len(def.Rules) {
		t.Fatalf("load: version %d, %d rules, %v", set.Version, len(set.Rules), err)
	}
	if got, want := set.Rules[0].Primary.Relation, def.Rules[0].Primary.Relation; got == "" || len(set.Rules[0].Categories) == 0 {
		t.Fatalf("rule fields lost in the round trip: %+v (want relation %s)", set.Rules[0], want)
	}

	r := routing.Rule{ID: "yiwu-fees", Name: "义乌涉企收费", Categories: []intake.Category{"arbitrary_fees"}, DivisionPrefix: "330782",
		Primary: routing.Target{Relation: routing.RelKindForDivision, Kind: routing.KindMarket}, Priority: 200,
		ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	added, err := s.Add(ctx, r)
	if err != nil || added.Version != 2 {
		t.Fatalf("add: %+v, %v", added, err)
	}
	if _, err := s.Add(ctx, r); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("adding the same id again: %v", err)
	}
	retired, err := s.Retire(ctx, "yiwu-fees", "admin-1", time.Now())
	if err != nil || retired.RetiredIn != 3 {
		t.Fatalf("retire: %+v, %v", retired, err)
	}
	if _, err := s.Retire(ctx, "yiwu-fees", "admin-1", time.Now()); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("retiring twice: %v", err)
	}
	if _, err := s.Retire(ctx, "nope", "admin-1", time.Now()); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Fatalf("retiring an unknown rule: %v", err)
	}
	set, err = s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The failed second Add bumped nothing; versions are 1 (seed), 2 (add), 3 (retire).
	if set.Version != 3 {
		t.Fatalf("version %d, want 3", set.Version)
	}
	var found *routing.Rule
	for i := range set.Rules {
		if set.Rules[i].ID == "yiwu-fees" {
			found = &set.Rules[i]
		}
	}
	if found == nil || !found.InForceAt(2) || found.InForceAt(3) || found.RetiredBy != "admin-1" {
		t.Fatalf("stored rule %+v", found)
	}
}

func testRulesConcurrent(t *testing.T, s RuleStore) {
	ctx := context.Background()
	if _, err := s.Seed(ctx, routing.DefaultRules()); err != nil {
		t.Fatal(err)
	}
	const n = 16
	versions := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := routing.Rule{ID: fmt.Sprintf("concurrent-%d", i), Name: "并发规则", DivisionPrefix: "330782",
				Primary: routing.Target{Relation: routing.RelKindForDivision, Kind: routing.KindMarket}, Priority: 100 + i,
				ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			added, err := s.Add(ctx, r)
			if err != nil {
				t.Error(err)
				return
			}
			versions[i] = added.Version
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, v := range versions {
		if v < 2 || v > n+1 || seen[v] {
			t.Errorf("add %d got version %d (versions %v): not one new version each", i, v, versions)
		}
		seen[v] = true
	}
	var won atomic.Int32
	for range n {
		wg.Go(func() {
			switch _, err := s.Retire(ctx, "concurrent-3", "admin-1", time.Now()); qingfeng.ErrorCode(err) {
			case "":
				won.Add(1)
			case qingfeng.ECONFLICT:
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d retirements won, want 1", won.Load())
	}
	set, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	retired := 0
	for _, r := range set.Rules {
		if r.RetiredIn != 0 {
			retired++
			if r.ID != "concurrent-3" || r.RetiredIn > set.Version || r.RetiredBy != "admin-1" || r.RetiredAt == nil {
				t.Errorf("retired rule %+v", r)
			}
		}
	}
	if retired != 1 || len(set.Rules) != len(routing.DefaultRules().Rules)+n {
		t.Errorf("%d rules, %d retired; want %d, 1", len(set.Rules), retired, len(routing.DefaultRules().Rules)+n)
	}
}
