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
	return []any{c.RealName, acceptedOn, feedbackOn, closedAt, purgedAt, stats.County(c.Location.Division), stats.Month(c.ReceivedAt)}
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

// statsQuery counts in one pass over a covering index whose order is the grouping's
// (cases_stats_unit for one unit's cases, seeking to them; cases_stats for all units): one row per (category, county, status, month received), with the
// counts of each outcome of each deadline. The outcomes are stats.AcceptanceOutcome
// and stats.FeedbackOutcome in SQL over the derived columns (the day of the deciding
// step, ” for none, compared with the due date as the rules compare them; ?1 is today
// in Asia/Shanghai), which the shared statistics suite checks against stats.Tally.
// Outcome codes are stats.Outcome's: 1 met, 2 missed, 3 pending.
const statsQuery = `SELECT category, county, status, received_month, count(*),
	total(a = 1), total(a = 2), total(a = 3), total(f = 1), total(f = 2), total(f = 3)
	FROM (SELECT category, county, status, received_month,
		CASE WHEN real_name = 0 OR acceptance_due = '' THEN 0
			WHEN accepted_on <> '' THEN iif(accepted_on <= acceptance_due, 1, 2)
			WHEN acceptance_due < ?1 THEN 2 ELSE 3 END AS a,
		CASE WHEN feedback_due = '' THEN 0
			WHEN feedback_on <> '' THEN iif(feedback_on <= feedback_due, 1, 2)
			WHEN feedback_due < ?1 THEN 2 ELSE 3 END AS f
		FROM cases INDEXED BY `

// statsGroup ends statsQuery after its WHERE.
const statsGroup = ") GROUP BY category, county, status, received_month"

// Stats implements stats.Source: the cases of f counted by category, county, status
// and month received, and how their acceptance and feedback deadlines were kept as of
// now — in SQL, in one pass over an index, without reading any case's doc.
func (s *CaseStore) Stats(ctx context.Context, f stats.Filter) (stats.Stats, error) {
	const op = "case statistics"
	where, args := statsWhere(f)
	now := s.db.now()
	// Positional ?1 is today; the filter's arguments follow it as ?2, ?3...
	where = renumber(where, 2)
	index := "cases_stats"
	if f.UnitID != "" {
		index = "cases_stats_unit"
	}
	rows, err := s.db.r.QueryContext(ctx, statsQuery+index+where+statsGroup, append([]any{stats.Day(now)}, args...)...)
	if err != nil {
		return stats.Stats{}, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	t := stats.NewTally(now)
	for rows.Next() {
		var g stats.Counted
		var a, f [3]float64 // total() is a float; the counts are exact below 2^53
		if err := rows.Scan(&g.Category, &g.County, &g.Status, &g.Month, &g.N, &a[0], &a[1], &a[2], &f[0], &f[1], &f[2]); err != nil {
			return stats.Stats{}, storeError(op, err, nil, nil)
		}
		for i := range 3 {
			g.Acceptance[stats.Met+stats.Outcome(i)] = int64(a[i])
			g.Feedback[stats.Met+stats.Outcome(i)] = int64(f[i])
		}
		t.AddCounted(g)
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
