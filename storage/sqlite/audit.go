package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/qingfeng-zj/qingfeng/audit"
)

// AuditStore keeps the audit log, one row per entry with the entry's Seq as its key.
// The primary key is what lets several processes append to one chain: of two inserts
// of the same Seq exactly one succeeds. Entries are never updated or deleted here.
type AuditStore struct{ db *DB }

// NewAuditStore returns the audit store of db.
func NewAuditStore(db *DB) *AuditStore { return &AuditStore{db: db} }

const auditColumns = "seq, at, actor, role, action, case_number, detail, prev, hash"

// auditRow is one stored entry.
type auditRow struct {
	Seq    int64
	At     int64
	Actor  string
	Role   string
	Action string
	Case   string
	Detail sql.NullString
	Prev   string
	Hash   string
}

func (r *auditRow) scan(s interface{ Scan(...any) error }) error {
	return s.Scan(&r.Seq, &r.At, &r.Actor, &r.Role, &r.Action, &r.Case, &r.Detail, &r.Prev, &r.Hash)
}

// entry decodes r; a detail that is not a JSON object of strings (written by hand) is
// an *audit.MalformedError.
func (r *auditRow) entry() (audit.Entry, error) {
	e := audit.Entry{Seq: r.Seq, At: time.UnixMilli(r.At).UTC(), Actor: r.Actor, Role: r.Role, Action: r.Action,
		Case: r.Case, Prev: r.Prev, Hash: r.Hash}
	if r.Detail.Valid {
		if err := json.Unmarshal([]byte(r.Detail.String), &e.Detail); err != nil {
			return audit.Entry{}, &audit.MalformedError{Seq: r.Seq, Err: err}
		}
		if len(e.Detail) == 0 {
			e.Detail = nil
		}
	}
	return e, nil
}

var _ audit.Chainer = (*AuditStore)(nil)

// AppendChained implements audit.Chainer: the last entry's Seq and Hash are read and
// the next entry inserted in one transaction of the writer, so concurrent appends
// line up in the writer's order and share its commits.
func (s *AuditStore) AppendChained(ctx context.Context, next func(last audit.Entry, ok bool) audit.Entry) (audit.Entry, error) {
	var e audit.Entry
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var last audit.Entry
		err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").Scan(&last.Seq, &last.Hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e = next(last, err == nil)
		if !e.At.Equal(e.At.Truncate(time.Millisecond)) {
			return fmt.Errorf("time %s is finer than a millisecond", e.At.Format(time.RFC3339Nano))
		}
		var detail any
		if len(e.Detail) > 0 {
			b, err := json.Marshal(e.Detail)
			if err != nil {
				return err
			}
			detail = string(b)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO audit ("+auditColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			e.Seq, e.At.UnixMilli(), e.Actor, e.Role, e.Action, e.Case, detail, e.Prev, e.Hash)
		return err
	})
	if err != nil {
		return audit.Entry{}, storeError("append audit entry", err, nil, nil)
	}
	return e, nil
}

// Append implements audit.Store.
func (s *AuditStore) Append(ctx context.Context, e audit.Entry) error {
	if !e.At.Equal(e.At.Truncate(time.Millisecond)) {
		// Milliseconds are stored: the entry read back would not match its hash.
		return fmt.Errorf("append audit entry %d: time %s is finer than a millisecond", e.Seq, e.At.Format(time.RFC3339Nano))
	}
	var detail any
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
		}
		detail = string(b)
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO audit ("+auditColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			e.Seq, e.At.UnixMilli(), e.Actor, e.Role, e.Action, e.Case, detail, e.Prev, e.Hash)
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, audit.ErrSeqTaken)
	}
	return storeError(fmt.Sprintf("append audit entry %d", e.Seq), err, nil, nil)
}

// Get implements audit.Store.
func (s *AuditStore) Get(ctx context.Context, seq int64) (audit.Entry, error) {
	var r auditRow
	err := r.scan(s.db.r.QueryRowContext(ctx, "SELECT "+auditColumns+" FROM audit WHERE seq = ?", seq))
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Entry{}, fmt.Errorf("read audit entry %d: %w", seq, audit.ErrNotFound)
	}
	if err != nil {
		return audit.Entry{}, storeError(fmt.Sprintf("read audit entry %d", seq), err, nil, nil)
	}
	return r.entry()
}

// Last implements audit.Store.
func (s *AuditStore) Last(ctx context.Context) (audit.Entry, bool, error) {
	var r auditRow
	err := r.scan(s.db.r.QueryRowContext(ctx, "SELECT "+auditColumns+" FROM audit ORDER BY seq DESC LIMIT 1"))
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Entry{}, false, nil
	}
	if err != nil {
		return audit.Entry{}, false, storeError("read the last audit entry", err, nil, nil)
	}
	e, err := r.entry()
	return e, err == nil, err
}

// Each implements audit.Store. It streams in chain order from one read snapshot, so
// entries appended meanwhile are not seen and the writer is not held up.
func (s *AuditStore) Each(ctx context.Context, fromSeq int64, fn func(audit.Entry) error) error {
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit WHERE seq >= ? ORDER BY seq", fromSeq)
	if err != nil {
		return storeError("read the audit log", err, nil, nil)
	}
	defer rows.Close()
	for rows.Next() {
		var r auditRow
		if err := r.scan(rows); err != nil {
			return &audit.MalformedError{Seq: r.Seq, Err: err}
		}
		e, err := r.entry()
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return storeError("read the audit log", rows.Err(), nil, nil)
}

// List implements audit.Store. With a case it is served by audit_case_seq, without by
// the primary key.
func (s *AuditStore) List(ctx context.Context, q audit.Query) ([]audit.Entry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // no limit, as a zero limit is for MongoDB
	}
	var rows *sql.Rows
	var err error
	if q.Case != "" {
		rows, err = s.db.r.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit WHERE case_number = ? AND seq > ? ORDER BY seq LIMIT ?",
			q.Case, q.After, limit)
	} else {
		rows, err = s.db.r.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", q.After, limit)
	}
	if err != nil {
		return nil, storeError("list audit entries", err, nil, nil)
	}
	defer rows.Close()
	out := []audit.Entry{}
	for rows.Next() {
		var r auditRow
		if err := r.scan(rows); err != nil {
			return nil, storeError("list audit entries", err, nil, nil)
		}
		e, err := r.entry()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, storeError("list audit entries", rows.Err(), nil, nil)
}
