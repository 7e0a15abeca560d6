package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/qingfeng-zj/qingfeng/outbox"
)

// OutboxStore delivers case events: the case store writes each event into
// case_events in the same transaction as the change (insertEvent); Relay turns them
// into deliveries, one per webhook, and the dispatcher works those off.
type OutboxStore struct{ db *DB }

// NewOutboxStore returns the outbox store of db.
func NewOutboxStore(db *DB) *OutboxStore { return &OutboxStore{db: db} }

// eventRow is an event as kept in deliveries.event.
type eventRow struct {
	ID   string            `json:"id"`
	Type string            `json:"type"`
	Case string            `json:"case"`
	Unit string            `json:"unit"`
	At   time.Time         `json:"at"`
	Data map[string]string `json:"data,omitempty"`
}

// Relay implements outbox.Store: in one transaction, up to limit waiting events in
// the order they were written become one delivery per webhook and leave case_events.
// An event written meanwhile waits for the next run; none is relayed twice.
func (s *OutboxStore) Relay(ctx context.Context, webhooks []string, now time.Time, limit int) (int, error) {
	var n int
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, "SELECT seq, id, type, case_number, unit_id, at, data FROM case_events ORDER BY seq LIMIT ?", sqlLimit(limit))
		if err != nil {
			return err
		}
		type ev struct {
			seq int64
			row eventRow
		}
		var evs []ev
		for rows.Next() {
			var e ev
			var at int64
			var data sql.NullString
			if err := rows.Scan(&e.seq, &e.row.ID, &e.row.Type, &e.row.Case, &e.row.Unit, &at, &data); err != nil {
				rows.Close()
				return err
			}
			e.row.At = time.UnixMilli(at).UTC()
			if data.Valid {
				if err := json.Unmarshal([]byte(data.String), &e.row.Data); err != nil {
					rows.Close()
					return fmt.Errorf("decode event %s: %w", e.row.ID, err)
				}
			}
			evs = append(evs, e)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, e := range evs {
			js, err := json.Marshal(e.row)
			if err != nil {
				return err
			}
			for _, w := range webhooks {
				if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (event_id, webhook, status, next_at, event) VALUES (?, ?, 'pending', ?, ?)
					ON CONFLICT (event_id, webhook) DO NOTHING`, e.row.ID, w, ms(now).UnixMilli(), string(js)); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM case_events WHERE seq = ?", e.seq); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, storeError("relay events", err, nil, nil)
	}
	return n, nil
}

// Due implements outbox.Store: pending deliveries whose next attempt is due, oldest first.
func (s *OutboxStore) Due(ctx context.Context, now time.Time, limit int) ([]outbox.Delivery, error) {
	rows, err := s.db.r.QueryContext(ctx, `SELECT event_id, webhook, attempts, event FROM deliveries
		WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, event_id, webhook LIMIT ?`, ms(now).UnixMilli(), sqlLimit(limit))
	if err != nil {
		return nil, storeError("find due deliveries", err, nil, nil)
	}
	defer rows.Close()
	out := []outbox.Delivery{}
	for rows.Next() {
		var d outbox.Delivery
		var js string
		if err := rows.Scan(&d.EventID, &d.Webhook, &d.Attempts, &js); err != nil {
			return nil, storeError("find due deliveries", err, nil, nil)
		}
		var e eventRow
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return nil, fmt.Errorf("find due deliveries: decode event %s: %w", d.EventID, err)
		}
		d.Event = outbox.Event(e)
		out = append(out, d)
	}
	return out, storeError("find due deliveries", rows.Err(), nil, nil)
}

// Delivered implements outbox.Store.
func (s *OutboxStore) Delivered(ctx context.Context, d outbox.Delivery, at time.Time) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'done', done_at = ?, attempts = attempts + 1
			WHERE event_id = ? AND webhook = ? AND status = 'pending'`, ms(at).UnixMilli(), d.EventID, d.Webhook)
		return err
	})
	return storeError("record delivery", err, nil, nil)
}

// Failed implements outbox.Store: the next attempt at next, or given up when next is zero.
func (s *OutboxStore) Failed(ctx context.Context, d outbox.Delivery, at, next time.Time, reason string) error {
	status, nextAt := "pending", ms(next).UnixMilli()
	if next.IsZero() {
		status, nextAt = "failed", ms(at).UnixMilli()
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = ?, next_at = ?, last_error = ?, attempts = attempts + 1
			WHERE event_id = ? AND webhook = ? AND status = 'pending'`, status, nextAt, reason, d.EventID, d.Webhook)
		return err
	})
	return storeError("record failed delivery", err, nil, nil)
}
