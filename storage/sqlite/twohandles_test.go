package sqlite

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// The suites' concurrent scenarios once more, with every call going to one of two
// handles on the same file in turn, as a server and a CLI (or two servers) would
// share it: each handle has its own writer connection, so what makes a conditional
// update atomic here is SQLite's write lock (BEGIN IMMEDIATE), not anything in this
// process.

// twoHandles opens the same database file twice.
func twoHandles(t *testing.T) (*DB, *DB) {
	t.Helper()
	a := openTestDB(t)
	b, err := Open(context.Background(), a.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// alternate returns the two stores in turn.
type alternate[S any] struct {
	s [2]S
	n atomic.Uint64
}

func (a *alternate[S]) next() S { return a.s[a.n.Add(1)%2] }

type twoCounters struct{ alternate[intake.Counters] }

func (c *twoCounters) NextSequence(ctx context.Context, name string) (int64, error) {
	return c.next().NextSequence(ctx, name)
}
func (c *twoCounters) ReturnSequence(ctx context.Context, name string, n int64) (bool, error) {
	return c.next().ReturnSequence(ctx, name, n)
}

type twoIdempotency struct {
	alternate[intake.IdempotencyStore]
}

func (c *twoIdempotency) ClaimIdempotency(ctx context.Context, r *intake.IdempotencyRecord) (*intake.IdempotencyRecord, error) {
	return c.next().ClaimIdempotency(ctx, r)
}
func (c *twoIdempotency) UpdateIdempotency(ctx context.Context, r *intake.IdempotencyRecord) error {
	return c.next().UpdateIdempotency(ctx, r)
}
func (c *twoIdempotency) ReleaseIdempotency(ctx context.Context, keyHash, owner string) error {
	return c.next().ReleaseIdempotency(ctx, keyHash, owner)
}
func (c *twoIdempotency) Idempotency(ctx context.Context, keyHash string) (*intake.IdempotencyRecord, error) {
	return c.next().Idempotency(ctx, keyHash)
}

type twoLeases struct{ alternate[donations.Leases] }

func (c *twoLeases) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	return c.next().AcquireLease(ctx, name, holder, now, until)
}
func (c *twoLeases) ReleaseLease(ctx context.Context, name, holder string) error {
	return c.next().ReleaseLease(ctx, name, holder)
}

type twoKeys struct{ alternate[custody.KeyStore] }

func (c *twoKeys) Add(ctx context.Context, r custody.Recipient) error { return c.next().Add(ctx, r) }
func (c *twoKeys) Revoke(ctx context.Context, id, by string, at time.Time) (custody.Recipient, error) {
	return c.next().Revoke(ctx, id, by, at)
}
func (c *twoKeys) All(ctx context.Context) ([]custody.Recipient, error) { return c.next().All(ctx) }

func TestSuitesOnTwoHandles(t *testing.T) {
	t.Run("counters", func(t *testing.T) {
		storetest.Counters(t, func(t *testing.T) intake.Counters {
			a, b := twoHandles(t)
			return &twoCounters{alternate[intake.Counters]{s: [2]intake.Counters{NewCounterStore(a), NewCounterStore(b)}}}
		})
	})
	t.Run("idempotency", func(t *testing.T) {
		storetest.Idempotency(t, func(t *testing.T) intake.IdempotencyStore {
			a, b := twoHandles(t)
			return &twoIdempotency{alternate[intake.IdempotencyStore]{s: [2]intake.IdempotencyStore{NewIdempotencyStore(a), NewIdempotencyStore(b)}}}
		})
	})
	t.Run("leases", func(t *testing.T) {
		storetest.Leases(t, func(t *testing.T) donations.Leases {
			a, b := twoHandles(t)
			return &twoLeases{alternate[donations.Leases]{s: [2]donations.Leases{NewLeaseStore(a), NewLeaseStore(b)}}}
		})
	})
	t.Run("keys", func(t *testing.T) {
		storetest.Keys(t, func(t *testing.T) custody.KeyStore {
			a, b := twoHandles(t)
			return &twoKeys{alternate[custody.KeyStore]{s: [2]custody.KeyStore{NewRecipientStore(a), NewRecipientStore(b)}}}
		})
	})
}
