package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
)

var _ custody.DisclosureStore = (*RecipientStore)(nil)

var (
	errDisclosureNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "申请不存在", "no such request")
	errDisclosureExists   = qingfeng.Errorf(qingfeng.ECONFLICT, "申请已存在", "the request already exists")
	errDisclosureDecided  = qingfeng.Errorf(qingfeng.ECONFLICT, "申请已被处理或已过期", "the request was decided meanwhile or has expired")
)

// disclosureColumns are every column but resealed, which only Disclosure reads.
const disclosureColumns = "id, case_id, case_number, division, unit_division, unit_id, requester, requester_recipient, reason, status, " +
	"requested_at, expires_at, decided_by, decided_at, decision_reason, completed_at, cancelled_at, cancel_reason"

// openDisclosure is the condition of the disclosures_open partial index, spelt as it
// is there so that the planner can use it.
const openDisclosure = "status IN ('" + custody.Pending + "', '" + custody.Approved + "')"

func scanDisclosure(s interface{ Scan(...any) error }, resealed bool) (custody.Disclosure, error) {
	var d custody.Disclosure
	var requested, expires int64
	var decided, completed, cancelled sql.NullInt64
	dest := []any{&d.ID, &d.CaseID, &d.Case, &d.Division, &d.UnitDivision, &d.UnitID, &d.Requester, &d.RequesterRecipient, &d.Reason, &d.Status,
		&requested, &expires, &d.DecidedBy, &decided, &d.DecisionReason, &completed, &cancelled, &d.CancelReason}
	if resealed {
		dest = append(dest, &d.Resealed)
	}
	if err := s.Scan(dest...); err != nil {
		return d, err
	}
	d.RequestedAt, d.ExpiresAt = time.UnixMilli(requested).UTC(), time.UnixMilli(expires).UTC()
	d.DecidedAt, d.CompletedAt, d.CancelledAt = optionalTime(decided), optionalTime(completed), optionalTime(cancelled)
	return d, nil
}

// optionalTime is a nullable time column as the domain's *time.Time.
func optionalTime(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromMillis(ms)
	return &t
}

// optionalMillis is a *time.Time as stored: NULL for nil.
func optionalMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return millis(*t)
}

// InsertDisclosure implements custody.DisclosureStore.
func (s *RecipientStore) InsertDisclosure(ctx context.Context, d custody.Disclosure) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO disclosures ("+disclosureColumns+", resealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			d.ID, d.CaseID, d.Case, d.Division, d.UnitDivision, d.UnitID, d.Requester, d.RequesterRecipient, d.Reason, d.Status,
			d.RequestedAt.UnixMilli(), d.ExpiresAt.UnixMilli(), d.DecidedBy, optionalMillis(d.DecidedAt), d.DecisionReason,
			optionalMillis(d.CompletedAt), optionalMillis(d.CancelledAt), d.CancelReason, d.Resealed)
		return err
	})
	return storeError("store disclosure request", err, nil, errDisclosureExists)
}

// Disclosure implements custody.DisclosureStore: the request with its re-sealed
// identity, if any.
func (s *RecipientStore) Disclosure(ctx context.Context, id string) (custody.Disclosure, error) {
	d, err := scanDisclosure(s.db.r.QueryRowContext(ctx, "SELECT "+disclosureColumns+", resealed FROM disclosures WHERE id = ?", id), true)
	return d, storeError("load disclosure "+id, err, errDisclosureNotFound, nil)
}

// UpdateDisclosure implements custody.DisclosureStore: one UPDATE conditional on the
// status and the expiry, so that of two custodians deciding at once one wins.
func (s *RecipientStore) UpdateDisclosure(ctx context.Context, id, from string, now time.Time, u custody.DisclosureUpdate) error {
	if u.Status == "" {
		return fmt.Errorf("update disclosure %s: no status to set", id)
	}
	set := []string{"status = ?"}
	args := []any{u.Status}
	str := func(col, v string) {
		if v != "" {
			set, args = append(set, col+" = ?"), append(args, v)
		}
	}
	at := func(col string, t time.Time) {
		if !t.IsZero() {
			set, args = append(set, col+" = ?"), append(args, t.UnixMilli())
		}
	}
	str("decided_by", u.DecidedBy)
	at("decided_at", u.DecidedAt)
	str("decision_reason", u.DecisionReason)
	at("completed_at", u.CompletedAt)
	if u.Resealed != nil {
		set, args = append(set, "resealed = ?"), append(args, u.Resealed)
	}
	at("cancelled_at", u.CancelledAt)
	str("cancel_reason", u.CancelReason)
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE disclosures SET "+strings.Join(set, ", ")+" WHERE id = ? AND status = ? AND expires_at > ?",
			append(args, id, from, now.UnixMilli())...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return storeError("update disclosure "+id, err, nil, nil)
	}
	if n == 0 {
		return domainError(errDisclosureDecided, fmt.Sprintf("update disclosure %s: not %s or expired", id, from))
	}
	return nil
}

// Disclosures implements custody.DisclosureStore: a case's requests, oldest first,
// without their re-sealed identities.
func (s *RecipientStore) Disclosures(ctx context.Context, caseID string) ([]custody.Disclosure, error) {
	return s.listDisclosures(ctx, "WHERE case_id = ?", caseID)
}

// OpenDisclosures implements custody.DisclosureStore: the pending and approved
// requests, oldest first, without their re-sealed identities.
func (s *RecipientStore) OpenDisclosures(ctx context.Context) ([]custody.Disclosure, error) {
	return s.listDisclosures(ctx, "WHERE "+openDisclosure)
}

func (s *RecipientStore) listDisclosures(ctx context.Context, where string, args ...any) ([]custody.Disclosure, error) {
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+disclosureColumns+" FROM disclosures "+where+" ORDER BY requested_at, id", args...)
	if err != nil {
		return nil, storeError("list disclosures", err, nil, nil)
	}
	defer rows.Close()
	var out []custody.Disclosure
	for rows.Next() {
		d, err := scanDisclosure(rows, false)
		if err != nil {
			return nil, storeError("list disclosures", err, nil, nil)
		}
		out = append(out, d)
	}
	return out, storeError("list disclosures", rows.Err(), nil, nil)
}
