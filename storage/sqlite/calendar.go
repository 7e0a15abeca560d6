package sqlite

import (
	"context"
	"database/sql"

	"github.com/qingfeng-zj/qingfeng/triage"
)

// CalendarStore keeps the holiday calendars admins added after the release (years
// beyond the embedded ones, or corrections), in the holiday-cn JSON format.
type CalendarStore struct{ db *DB }

// NewCalendarStore returns the calendar store of db.
func NewCalendarStore(db *DB) *CalendarStore { return &CalendarStore{db: db} }

// PutYear stores year's calendar, replacing an earlier one. The caller validates it.
func (s *CalendarStore) PutYear(ctx context.Context, year int, data []byte, by string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO calendar_years (year, data, added_by, added_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (year) DO UPDATE SET data = excluded.data, added_by = excluded.added_by, added_at = excluded.added_at`,
			year, string(data), by, s.db.now().UnixMilli())
		return err
	})
	return storeError("store calendar year", err, nil, nil)
}

// Years returns every stored calendar, in year order.
func (s *CalendarStore) Years(ctx context.Context) ([]triage.StoredYear, error) {
	rows, err := s.db.r.QueryContext(ctx, "SELECT year, data, added_by, added_at FROM calendar_years ORDER BY year")
	if err != nil {
		return nil, storeError("load calendar years", err, nil, nil)
	}
	defer rows.Close()
	out := []triage.StoredYear{}
	for rows.Next() {
		var y triage.StoredYear
		var at sql.NullInt64
		if err := rows.Scan(&y.Year, &y.Data, &y.AddedBy, &at); err != nil {
			return nil, storeError("load calendar years", err, nil, nil)
		}
		y.AddedAt = fromMillis(at)
		out = append(out, y)
	}
	return out, storeError("load calendar years", rows.Err(), nil, nil)
}
