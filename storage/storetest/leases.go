package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
)

// Leases is the suite every lease store passes: held by one holder until it expires,
// renewed by the holder, released only by it; of 16 instances taking a free lease at
// once, one gets it; and a seeded random sequence checked against a model.
func Leases(t *testing.T, newStore func(t *testing.T) donations.Leases) {
	run(t, newStore, []scenario[donations.Leases]{
		{"HoldRenewExpire", testLeasesHoldRenewExpire},
		{"Release", testLeasesRelease},
		{"OneHolderConcurrently", testLeasesConcurrently},
		{"Property", testLeasesProperty},
	})
}

func testLeasesHoldRenewExpire(t *testing.T, s donations.Leases) {
	ctx := context.Background()
	now := base
	for _, st := range []struct {
		name      string
		holder    string
		at, until time.Duration
		want      bool
	}{
		{"first take", "a", 0, time.Minute, true},
		{"held by another", "b", 30 * time.Second, 2 * time.Minute, false},
		{"renewed by the holder", "a", 30 * time.Second, 2 * time.Minute, true},
		{"not expired at its end", "b", 2 * time.Minute, 3 * time.Minute, false},
		{"expired", "b", 3 * time.Minute, 4 * time.Minute, true},
		{"the old holder lost it", "a", 3 * time.Minute, 5 * time.Minute, false},
	} {
		ok, err := s.AcquireLease(ctx, "test", st.holder, now.Add(st.at), now.Add(st.until))
		if err != nil || ok != st.want {
			t.Errorf("%s: %v, %v; want %v", st.name, ok, err, st.want)
		}
	}
	// Another lease is another row.
	if ok, err := s.AcquireLease(ctx, "other", "a", now, now.Add(time.Minute)); err != nil || !ok {
		t.Errorf("another lease: %v, %v", ok, err)
	}
}

func testLeasesRelease(t *testing.T, s donations.Leases) {
	ctx := context.Background()
	now := base
	if ok, err := s.AcquireLease(ctx, "job", "a", now, now.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("take: %v, %v", ok, err)
	}
	if err := s.ReleaseLease(ctx, "job", "b"); err != nil { // not b's: a no-op
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx, "job", "b", now, now.Add(time.Hour)); ok {
		t.Error("released by a non-holder")
	}
	if err := s.ReleaseLease(ctx, "job", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AcquireLease(ctx, "job", "b", now, now.Add(time.Hour)); err != nil || !ok {
		t.Errorf("after release: %v, %v", ok, err)
	}
	if err := s.ReleaseLease(ctx, "never-taken", "a"); err != nil {
		t.Errorf("releasing a lease never taken: %v", err)
	}
}

func testLeasesConcurrently(t *testing.T, s donations.Leases) {
	ctx := context.Background()
	now := base
	const n = 16
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ok, err := s.AcquireLease(ctx, "race", fmt.Sprintf("instance-%d", i), now, now.Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d instances took the lease, want 1", won.Load())
	}
}
