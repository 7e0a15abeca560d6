package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/qingfeng-zj/qingfeng/routing"
)

// orgRows is what a case contributes to case_orgs (migration 0014): its organization
// search keys, and the columns the queue is scoped and sorted by.
type orgRows struct {
	keys     []string // sorted
	unit     string
	received int64
	nextDue  string
}

func orgRowsOf(st stored) orgRows {
	keys := routing.OrgSearchKeys(st.c)
	slices.Sort(keys)
	return orgRows{keys: keys, unit: st.c.UnitID, received: ms(st.c.ReceivedAt).UnixMilli(), nextDue: st.nextDue}
}

func (r orgRows) equal(o orgRows) bool {
	return r.unit == o.unit && r.received == o.received && r.nextDue == o.nextDue && slices.Equal(r.keys, o.keys)
}

// insertOrgRows adds case id's rows, in one statement; conflict is "" or an ON
// CONFLICT clause.
func insertOrgRows(ctx context.Context, tx *sql.Tx, id string, r orgRows, conflict string) error {
	if len(r.keys) == 0 {
		return nil
	}
	args := make([]any, 0, 5*len(r.keys))
	for _, k := range r.keys {
		args = append(args, k, r.unit, r.received, id, r.nextDue)
	}
	q := "INSERT INTO case_orgs (key, unit_id, received_at, case_id, next_due) VALUES (?, ?, ?, ?, ?)" +
		strings.Repeat(", (?, ?, ?, ?, ?)", len(r.keys)-1) + conflict
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("index case %s by organization: %w", id, err)
	}
	return nil
}

// replaceOrgRows rewrites case id's rows from old to cur, if they differ.
func replaceOrgRows(ctx context.Context, tx *sql.Tx, id string, old, cur orgRows) error {
	if old.equal(cur) {
		return nil
	}
	if len(old.keys) > 0 {
		args := make([]any, 0, len(old.keys)+3)
		for _, k := range old.keys {
			args = append(args, k)
		}
		args = append(args, old.unit, old.received, id)
		q := "DELETE FROM case_orgs WHERE key IN (?" + strings.Repeat(", ?", len(old.keys)-1) + ") AND unit_id = ? AND received_at = ? AND case_id = ?"
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("reindex case %s by organization: %w", id, err)
		}
	}
	return insertOrgRows(ctx, tx, id, cur, "")
}

// fillCaseOrgs indexes the cases stored before migration 0014, in its transaction.
func fillCaseOrgs(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT "+caseColumns+" FROM cases ORDER BY id")
	if err != nil {
		return fmt.Errorf("index cases by organization: %w", err)
	}
	// The rows are computed while reading (the cases themselves are not kept) and
	// written once the read is done, so that no write runs beside an open read.
	type caseRows struct {
		id   string
		rows orgRows
	}
	var all []caseRows
	for rows.Next() {
		st, err := scanCase(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("index cases by organization: %w", err)
		}
		if r := orgRowsOf(st); len(r.keys) > 0 {
			all = append(all, caseRows{st.c.ID, r})
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("index cases by organization: %w", err)
	}
	for _, cr := range all {
		if err := insertOrgRows(ctx, tx, cr.id, cr.rows, " ON CONFLICT DO NOTHING"); err != nil {
			return err
		}
	}
	return nil
}
