package storetest

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
)

// testLeasesProperty runs a seeded random sequence of takes, renewals and releases by
// three instances over two leases, with the clock moving forward irregularly, and
// checks every answer against a model.
func testLeasesProperty(t *testing.T, s donations.Leases) {
	ctx := context.Background()
	type lease struct {
		holder string
		until  time.Time
	}
	const seed, steps = 20261202, 300
	rng := rand.New(rand.NewPCG(seed, seed))
	model := map[string]lease{}
	now := base
	for step := range steps {
		// Steps of 10 s, so that a lease's end and the clock often meet exactly.
		now = now.Add(time.Duration(rng.IntN(5)) * 10 * time.Second)
		name := []string{"escalation", "retention"}[rng.IntN(2)]
		holder := []string{"a", "b", "c"}[rng.IntN(3)]
		cur, held := model[name]
		if rng.IntN(4) == 0 {
			if err := s.ReleaseLease(ctx, name, holder); err != nil {
				t.Fatalf("seed %d step %d: release %s by %s: %v", seed, step, name, holder, err)
			}
			if held && cur.holder == holder {
				delete(model, name)
			}
			continue
		}
		until := now.Add(time.Duration(3+rng.IntN(9)) * 10 * time.Second)
		got, err := s.AcquireLease(ctx, name, holder, now, until)
		want := !held || cur.until.Before(now) || cur.holder == holder
		if err != nil || got != want {
			t.Fatalf("seed %d step %d: %s takes %s at %v (held by %+v): %v, %v; want %v",
				seed, step, holder, name, now.Sub(base), cur, got, err, want)
		}
		if want {
			model[name] = lease{holder: holder, until: until}
		}
	}
}
