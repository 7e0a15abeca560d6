package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// LeaseStore keeps the leases of periodic jobs: one row per lease, taken when free or
// expired, renewed by its holder.
type LeaseStore struct{ db *DB }

// NewLeaseStore returns the lease store of db.
func NewLeaseStore(db *DB) *LeaseStore { return &LeaseStore{db: db} }

// AcquireLease takes lease name for holder until until, if it is free, expired (its
// until before now) or already holder's: one conditional upsert.
func (s *LeaseStore) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	var ok bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
			WHERE leases.until < ? OR leases.holder = excluded.holder`, name, holder, until.UnixMilli(), now.UnixMilli())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	if err != nil {
		return false, storeError("take lease "+name, err, nil, nil)
	}
	return ok, nil
}

// ReleaseLease gives up holder's lease name (a no-op when another holds it), so that
// another instance can take it at once instead of waiting for it to lapse.
func (s *LeaseStore) ReleaseLease(ctx context.Context, name, holder string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder)
		return err
	})
	return storeError("release lease "+name, err, nil, nil)
}
