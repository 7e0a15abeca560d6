package sqlite

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/retention"
	"github.com/qingfeng-zj/qingfeng/stats"
)

var _ stats.Source = (*CaseStore)(nil)

// derived are the values of derivedColumns for c. The rules are the stats and
// retention packages' own (stats.AcceptanceStep, stats.FeedbackStep, stats.Day,
// retention.LastClosed), applied here once per write instead of once per case on
// every count.
func derived(c *intake.Case) []any {
	steps := make([]stats.Step, 0, len(c.Transitions))
	for _, t := range c.Transitions {
		steps = append(steps, stats.Step{Action: t.Action, At: t.At})
	}
	acceptedOn, feedbackOn := "", ""
	if at, ok := stats.AcceptanceStep(steps); ok {
		acceptedOn = stats.Day(at)
	}
	if at, ok := stats.FeedbackStep(steps); ok {
		feedbackOn = stats.Day(at)
	}
	var closedAt, purgedAt any
	if at, ok := retention.LastClosed(c); ok {
		closedAt = ms(at).UnixMilli()
	}
	if c.PurgedAt != nil {
		purgedAt = millis(ms(*c.PurgedAt))
	}
	return []any{c.RealName, acceptedOn, feedbackOn, closedAt, purgedAt}
}

// statsWhere is the condition of f on the cases table: the unit if one is named, and
// the received_at range.
func statsWhere(f stats.Filter) (string, []any) {
	var where []string
	var args []any
	if f.UnitID != "" {
		where, args = append(where, "unit_id = ?"), append(args, f.UnitID)
	}
	if !f.From.IsZero() {
		where, args = append(where, "received_at >= ?"), append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where, args = append(where, "received_at < ?"), append(args, f.To.UnixMilli())
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// statsQuery counts in one pass over the covering index cases_stats: one row per
// distinct (category, county, status, month, acceptance outcome, feedback outcome),
// summed up in Go. The outcomes are stats.AcceptanceOutcome and stats.FeedbackOutcome
// in SQL over the derived columns (the day of the deciding step, ” for none, compared
// with the due date as the rules compare them; ?1 is today in Asia/Shanghai), which the
// shared statistics suite checks against storage/mongo's Tally. The month is received_at
// in Asia/Shanghai as UTC+8: China has kept +08:00 without daylight saving since 1991,
// before any case.
const statsQuery = `SELECT category, substr(division, 1, 6), status,
	strftime('%Y-%m', received_at / 1000, 'unixepoch', '+8 hours'),
	CASE WHEN real_name = 0 OR acceptance_due = '' THEN 0
		WHEN accepted_on <> '' THEN iif(accepted_on <= acceptance_due, 1, 2)
		WHEN acceptance_due < ?1 THEN 2 ELSE 3 END,
	CASE WHEN feedback_due = '' THEN 0
		WHEN feedback_on <> '' THEN iif(feedback_on <= feedback_due, 1, 2)
		WHEN feedback_due < ?1 THEN 2 ELSE 3 END,
	count(*)
	FROM cases INDEXED BY cases_stats`

// statsGroup ends statsQuery after its WHERE.
const statsGroup = " GROUP BY 1, 2, 3, 4, 5, 6"

// Stats implements stats.Source: the cases of f counted by category, county, status
// and month received, and how their acceptance and feedback deadlines were kept as of
// now — in SQL, over an index, without reading any case's doc.
func (s *CaseStore) Stats(ctx context.Context, f stats.Filter) (stats.Stats, error) {
	const op = "case statistics"
	where, args := statsWhere(f)
	now := s.db.now()
	// Positional ?1 is today; the filter's arguments follow it as ?2, ?3...
	where = renumber(where, 2)
	rows, err := s.db.r.QueryContext(ctx, statsQuery+where+statsGroup, append([]any{stats.Day(now)}, args...)...)
	if err != nil {
		return stats.Stats{}, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	t := stats.NewTally(now)
	for rows.Next() {
		var category, county, status, month string
		var acc, fb stats.Outcome
		var n int64
		if err := rows.Scan(&category, &county, &status, &month, &acc, &fb, &n); err != nil {
			return stats.Stats{}, storeError(op, err, nil, nil)
		}
		t.AddCounted(stats.Counted{Category: category, County: county, Status: status, Month: month, Acceptance: acc, Feedback: fb}, n)
	}
	if err := rows.Err(); err != nil {
		return stats.Stats{}, storeError(op, err, nil, nil)
	}
	return t.Result(), nil
}

// renumber turns the ? of where into ?n, ?n+1, ... so that they follow ?1.
func renumber(where string, n int) string {
	var b strings.Builder
	for _, r := range where {
		if r == '?' {
			b.WriteString("?" + strconv.Itoa(n))
			n++
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ExportCases implements stats.Source: the cases of f, oldest first (ties by id
// descending, as storage/mongo's), one row each, streamed from the cursor: rows are
// read as fn takes them, never all in memory. The read holds one reader connection and
// its snapshot until the export ends. It stops at fn's first error and returns it
// unwrapped.
func (s *CaseStore) ExportCases(ctx context.Context, f stats.Filter, fn func(stats.ExportRow) error) error {
	const op = "export cases"
	where, args := statsWhere(f)
	// The queue's indexes (received_at DESC, id) walked backwards give this order.
	index := "cases_received"
	if f.UnitID != "" {
		index = "cases_unit_received"
	}
	rows, err := s.db.r.QueryContext(ctx, `SELECT number, category, division, status, unit_id, real_name, received_at,
		acceptance_due, feedback_due, escalated FROM cases INDEXED BY `+index+where+` ORDER BY received_at, id DESC`, args...)
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	defer rows.Close()
	for rows.Next() {
		var r stats.ExportRow
		var received int64
		var escalated string
		if err := rows.Scan(&r.Number, &r.Category, &r.Division, &r.Status, &r.UnitID, &r.RealName, &received,
			&r.AcceptanceDue, &r.FeedbackDue, &escalated); err != nil {
			return storeError(op, err, nil, nil)
		}
		r.ReceivedAt = time.UnixMilli(received).UTC()
		if e := strings.Trim(escalated, ","); e != "" {
			r.Overdue = strings.Split(e, ",")
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return storeError(op, rows.Err(), nil, nil)
}
