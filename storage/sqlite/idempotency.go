package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// CounterStore keeps named counters (case numbers).
type CounterStore struct{ db *DB }

// NewCounterStore returns the counter store of db.
func NewCounterStore(db *DB) *CounterStore { return &CounterStore{db: db} }

// NextSequence returns the next value of counter name, starting at 1: one upsert.
func (s *CounterStore) NextSequence(ctx context.Context, name string) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO counters (name, seq) VALUES (?, 1)
			ON CONFLICT (name) DO UPDATE SET seq = seq + 1 RETURNING seq`, name).Scan(&n)
	})
	if err != nil {
		return 0, storeError("next sequence "+name, err, nil, nil)
	}
	return n, nil
}

// ReturnSequence gives n back to counter name if it is still the last number taken,
// so that a case that could not be stored leaves no gap; it reports whether it did.
func (s *CounterStore) ReturnSequence(ctx context.Context, name string, n int64) (bool, error) {
	var ok bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE counters SET seq = seq - 1 WHERE name = ? AND seq = ?", name, n)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		ok = k == 1
		return err
	})
	if err != nil {
		return false, storeError("return sequence "+name, err, nil, nil)
	}
	return ok, nil
}

// IdempotencyStore keeps the idempotency records of POST /v1/reports.
type IdempotencyStore struct{ db *DB }

// NewIdempotencyStore returns the idempotency store of db.
func NewIdempotencyStore(db *DB) *IdempotencyStore { return &IdempotencyStore{db: db} }

var (
	errIdemNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "未找到该请求记录", "idempotency record not found")
	errIdemLost     = qingfeng.Errorf(qingfeng.ECONFLICT, "该请求已由另一次提交接手", "another attempt took over the idempotency key")
)

const idemColumns = "key_hash, request_hash, owner, claim_until, done, case_id, case_number, receipt_enc, created_at, expires_at"

func scanIdem(s interface{ Scan(...any) error }) (*intake.IdempotencyRecord, error) {
	var r intake.IdempotencyRecord
	var claimUntil, created sql.NullInt64
	var expires int64
	if err := s.Scan(&r.KeyHash, &r.RequestHash, &r.Owner, &claimUntil, &r.Done, &r.CaseID, &r.CaseNumber, &r.ReceiptEnc, &created, &expires); err != nil {
		return nil, err
	}
	r.ClaimUntil, r.CreatedAt = fromMillis(claimUntil), fromMillis(created)
	r.ExpiresAt = fromMillis(sql.NullInt64{Int64: expires, Valid: true})
	r.ReceiptEnc = nilIfEmpty(r.ReceiptEnc)
	return &r, nil
}

// ClaimIdempotency claims r's key for r.Owner in one transaction: a new key is
// inserted, an expired record replaced, a claim on the same request whose ClaimUntil
// has passed (its attempt crashed) taken over, keeping the case id, number and
// receipt it recorded. It returns the record as it is afterwards: the caller holds the
// claim only if the returned Owner is r.Owner.
func (s *IdempotencyStore) ClaimIdempotency(ctx context.Context, r *intake.IdempotencyRecord) (*intake.IdempotencyRecord, error) {
	const op = "claim idempotency record"
	if r.Owner == "" {
		return nil, fmt.Errorf("%s: no owner", op)
	}
	var out *intake.IdempotencyRecord
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.db.now().UnixMilli()
		// An expired record is as good as none.
		if _, err := tx.ExecContext(ctx, "DELETE FROM idempotency WHERE key_hash = ? AND expires_at <= ?", r.KeyHash, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO idempotency ("+idemColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING",
			r.KeyHash, r.RequestHash, r.Owner, millis(r.ClaimUntil), r.Done, r.CaseID, r.CaseNumber, blob(r.ReceiptEnc), millis(r.CreatedAt), r.ExpiresAt.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			c := *r
			c.ReceiptEnc = nilIfEmpty(c.ReceiptEnc)
			out = &c
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE idempotency SET owner = ?, claim_until = ?
			WHERE key_hash = ? AND done = 0 AND request_hash = ? AND (claim_until IS NULL OR claim_until <= ?)`,
			r.Owner, millis(r.ClaimUntil), r.KeyHash, r.RequestHash, now); err != nil {
			return err
		}
		out, err = scanIdem(tx.QueryRowContext(ctx, "SELECT "+idemColumns+" FROM idempotency WHERE key_hash = ?", r.KeyHash))
		return err
	})
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	return out, nil
}

// UpdateIdempotency records r's case, number, receipt, claim time and Done, if
// r.Owner still holds the claim; ECONFLICT if another attempt took it over.
func (s *IdempotencyStore) UpdateIdempotency(ctx context.Context, r *intake.IdempotencyRecord) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency SET case_id = ?, case_number = ?, receipt_enc = ?, claim_until = ?, done = ?
			WHERE key_hash = ? AND owner = ?`, r.CaseID, r.CaseNumber, blob(r.ReceiptEnc), millis(r.ClaimUntil), r.Done, r.KeyHash, r.Owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, domainError(errIdemLost, "update idempotency record: the claim is another's"))
		}
		return nil
	})
	return storeError("update idempotency record", err, nil, nil)
}

// ReleaseIdempotency removes the record with key keyHash if owner holds its claim,
// so that a retry starts afresh; someone else's record is left alone, and a missing
// one is not an error.
func (s *IdempotencyStore) ReleaseIdempotency(ctx context.Context, keyHash, owner string) error {
	if owner == "" {
		return fmt.Errorf("release idempotency record: no owner")
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM idempotency WHERE key_hash = ? AND owner = ?", keyHash, owner)
		return err
	})
	return storeError("release idempotency record", err, nil, nil)
}

// Idempotency returns the live record with key keyHash.
func (s *IdempotencyStore) Idempotency(ctx context.Context, keyHash string) (*intake.IdempotencyRecord, error) {
	r, err := scanIdem(s.db.r.QueryRowContext(ctx, "SELECT "+idemColumns+" FROM idempotency WHERE key_hash = ? AND expires_at > ?",
		keyHash, s.db.now().UnixMilli()))
	if err != nil {
		return nil, storeError("find idempotency record", err, errIdemNotFound, nil)
	}
	return r, nil
}
