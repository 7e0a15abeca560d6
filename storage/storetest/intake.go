package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// Counters is the suite every intake.Counters passes: independent counters from 1,
// 32 concurrent takers each get a different number, a number given back is taken
// again only if it was the last.
func Counters(t *testing.T, newStore func(t *testing.T) intake.Counters) {
	run(t, newStore, []scenario[intake.Counters]{
		{"NextSequence", testNextSequence},
		{"NextSequenceConcurrent", testNextSequenceConcurrent},
		{"ReturnSequence", testReturnSequence},
	})
}

// Idempotency is the suite every intake.IdempotencyStore passes: claims, takeover of
// a stale claim on the same request only, expiry, release by the owner only; 32
// concurrent claims of one key agree on one owner.
func Idempotency(t *testing.T, newStore func(t *testing.T) intake.IdempotencyStore) {
	run(t, newStore, []scenario[intake.IdempotencyStore]{
		{"Idempotency", testIdempotency},
	})
}

func testNextSequence(t *testing.T, s intake.Counters) {
	ctx := context.Background()
	steps := []struct {
		counter string
		want    int64
	}{
		{"QF-330782-2026", 1},
		{"QF-330782-2026", 2},
		{"QF-330783-2026", 1}, // counters are independent
		{"QF-330782-2026", 3},
	}
	for _, st := range steps {
		got, err := s.NextSequence(ctx, st.counter)
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Errorf("NextSequence(%s) = %d, want %d", st.counter, got, st.want)
		}
	}
}

func testNextSequenceConcurrent(t *testing.T, s intake.Counters) {
	ctx := context.Background()
	const n = 32
	got := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = s.NextSequence(ctx, "QF-330782-2026") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("values = %v, want 1..%d each once", got, n)
		}
	}
}

func testReturnSequence(t *testing.T, s intake.Counters) {
	ctx := context.Background()
	now := time.Now()
	name := fmt.Sprint("test:return:", now.UnixNano())
	for want := int64(1); want <= 2; want++ {
		n, err := s.NextSequence(ctx, name)
		if err != nil || n != want {
			t.Fatalf("next = %d, %v; want %d", n, err, want)
		}
	}
	if ok, err := s.ReturnSequence(ctx, name, 1); err != nil || ok {
		t.Errorf("returned 1 behind 2: %v, %v", ok, err)
	}
	if ok, err := s.ReturnSequence(ctx, name, 2); err != nil || !ok {
		t.Errorf("return 2: %v, %v", ok, err)
	}
	if n, err := s.NextSequence(ctx, name); err != nil || n != 2 {
		t.Errorf("after return: %d, %v; want 2 again", n, err)
	}

}

func testIdempotency(t *testing.T, s intake.IdempotencyStore) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	claim := func(key, req, owner string, claimUntil, expires time.Time) *intake.IdempotencyRecord {
		return &intake.IdempotencyRecord{KeyHash: key, RequestHash: req, Owner: owner, ClaimUntil: claimUntil,
			CreatedAt: now, ExpiresAt: expires}
	}
	day := now.Add(24 * time.Hour)
	a := claim("k1", "r1", "owner-a", now.Add(time.Minute), day)
	owns := func(r *intake.IdempotencyRecord, owner string) func() error {
		return func() error {
			got, err := s.ClaimIdempotency(ctx, r)
			if err == nil && got.Owner != owner {
				return fmt.Errorf("claim by %s: record owned by %q, want %q", r.Owner, got.Owner, owner)
			}
			return err
		}
	}
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"claim", owns(a, "owner-a"), ""},
		{"get", func() error {
			got, err := s.Idempotency(ctx, "k1")
			if err == nil && !reflect.DeepEqual(got, a) {
				return fmt.Errorf("got %+v, want %+v", got, a)
			}
			return err
		}, ""},
		{"live claim is not taken", owns(claim("k1", "r1", "owner-b", now.Add(time.Minute), day), "owner-a"), ""},
		{"other owner cannot update", func() error {
			return s.UpdateIdempotency(ctx, &intake.IdempotencyRecord{KeyHash: "k1", Owner: "owner-b", CaseID: "x"})
		}, qingfeng.ECONFLICT},
		{"other owner cannot release", func() error {
			if err := s.ReleaseIdempotency(ctx, "k1", "owner-b"); err != nil {
				return err
			}
			_, err := s.Idempotency(ctx, "k1")
			return err
		}, ""},
		{"owner records the case, claim lapses", func() error {
			r := *a
			r.CaseID, r.CaseNumber, r.ReceiptEnc, r.ClaimUntil = "c1", "QF-1", []byte{1, 2, 3}, now.Add(-time.Second)
			return s.UpdateIdempotency(ctx, &r)
		}, ""},
		{"stale claim for another request is not taken", owns(claim("k1", "r2", "owner-b", now.Add(time.Minute), day), "owner-a"), ""},
		{"stale claim is taken over, keeping the case", func() error {
			got, err := s.ClaimIdempotency(ctx, claim("k1", "r1", "owner-b", now.Add(time.Minute), day))
			if err == nil && (got.Owner != "owner-b" || got.CaseID != "c1" || got.CaseNumber != "QF-1" || string(got.ReceiptEnc) != "\x01\x02\x03") {
				return fmt.Errorf("after takeover: %+v", got)
			}
			return err
		}, ""},
		{"old owner lost it", func() error {
			return s.UpdateIdempotency(ctx, &intake.IdempotencyRecord{KeyHash: "k1", Owner: "owner-a", Done: true})
		}, qingfeng.ECONFLICT},
		{"done", func() error {
			return s.UpdateIdempotency(ctx, &intake.IdempotencyRecord{KeyHash: "k1", Owner: "owner-b", Done: true,
				CaseID: "c1", CaseNumber: "QF-1", ReceiptEnc: []byte{1}, ClaimUntil: now.Add(-time.Hour)})
		}, ""},
		{"a done record is never taken over", func() error {
			got, err := s.ClaimIdempotency(ctx, claim("k1", "r1", "owner-c", now.Add(time.Minute), day))
			if err == nil && (got.Owner != "owner-b" || !got.Done) {
				return fmt.Errorf("done record changed: %+v", got)
			}
			return err
		}, ""},
		{"expired record", func() error {
			_, err := s.ClaimIdempotency(ctx, claim("k2", "r2", "owner-a", now, now.Add(-time.Hour)))
			return err
		}, ""},
		{"get expired", func() error { _, err := s.Idempotency(ctx, "k2"); return err }, qingfeng.ENOTFOUND},
		{"expired record is replaced", owns(claim("k2", "r3", "owner-b", now.Add(time.Minute), day), "owner-b"), ""},
		{"release", func() error { return s.ReleaseIdempotency(ctx, "k2", "owner-b") }, ""},
		{"get released", func() error { _, err := s.Idempotency(ctx, "k2"); return err }, qingfeng.ENOTFOUND},
		{"release again", func() error { return s.ReleaseIdempotency(ctx, "k2", "owner-b") }, ""},
		{"claim after release", owns(claim("k2", "r1", "owner-c", now.Add(time.Minute), day), "owner-c"), ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.do()
			if st.want == "" && err != nil {
				t.Fatal(err)
			}
			wantCode(t, err, st.want)
		})
	}
	// 32 claims of one new key at once: exactly one wins, and every caller sees it.
	t.Run("concurrent claims", func(t *testing.T) {
		var wg sync.WaitGroup
		owners := make([]string, 32)
		for i := range owners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.ClaimIdempotency(ctx, claim("k3", "r1", fmt.Sprint("racer-", i), now.Add(time.Minute), day))
				if err != nil {
					t.Error(err)
					return
				}
				owners[i] = got.Owner
			}()
		}
		wg.Wait()
		for _, o := range owners {
			if o != owners[0] {
				t.Fatalf("claimants disagree on the owner: %q", owners)
			}
		}
	})
}
