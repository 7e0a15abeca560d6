package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// testRulesProperty runs a seeded random sequence of adds and retirements against the
// store and a model of the versions: each change that succeeds makes exactly one new
// version, a refused one none, and every rule remembers the versions that added and
// retired it.
func testRulesProperty(t *testing.T, s RuleStore) {
	ctx := context.Background()
	type rule struct{ added, retired int }
	const seed, steps = 20261203, 120
	rng := rand.New(rand.NewPCG(seed, seed))
	model := map[string]*rule{}
	version := 0
	for step := range steps {
		id := fmt.Sprint("r", rng.IntN(8))
		cur := model[id]
		var desc, want string
		var err error
		if rng.IntN(2) == 0 {
			desc = "Add " + id
			_, err = s.Add(ctx, routing.Rule{ID: id, Name: "规则" + id, DivisionPrefix: "330782",
				Primary: routing.Target{Relation: routing.RelKindForDivision, Kind: routing.KindMarket}, Priority: 100,
				ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
			if cur != nil {
				want = qingfeng.ECONFLICT
			} else {
				version++
				model[id] = &rule{added: version}
			}
		} else {
			desc = "Retire " + id
			_, err = s.Retire(ctx, id, "admin", base)
			switch {
			case cur == nil:
				want = qingfeng.ENOTFOUND
			case cur.retired != 0:
				want = qingfeng.ECONFLICT
			default:
				version++
				cur.retired = version
			}
		}
		if got := qingfeng.ErrorCode(err); got != want || (want == "" && err != nil) {
			t.Fatalf("seed %d step %d: %s: %v (code %q), want %q", seed, step, desc, err, got, want)
		}
		if v, err := s.Version(ctx); err != nil || v != version {
			t.Fatalf("seed %d step %d: after %s version %d, %v; want %d", seed, step, desc, v, err, version)
		}
		if step%20 != 19 {
			continue
		}
		set, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if set.Version != version || len(set.Rules) != len(model) {
			t.Fatalf("seed %d step %d: loaded version %d with %d rules; want %d with %d", seed, step, set.Version, len(set.Rules), version, len(model))
		}
		for _, r := range set.Rules {
			m := model[r.ID]
			if m == nil || r.Version != m.added || r.RetiredIn != m.retired {
				t.Fatalf("seed %d step %d: rule %s added in %d, retired in %d; want %+v", seed, step, r.ID, r.Version, r.RetiredIn, m)
			}
		}
	}
}
