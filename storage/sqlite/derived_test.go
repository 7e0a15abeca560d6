package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// TestDerivedColumnsBackfill: migration 0010's UPDATE, which fills the derived
// columns of cases stored before it, computes what the store writes (derived) for
// cases with every kind of step history: none, accepted late at night in Shanghai,
// fed back before and after a reconclusion, closed, reopened and closed again, purged.
func TestDerivedColumnsBackfill(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	s := NewCaseStore(db)
	at := func(v string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	histories := [][][2]string{
		nil,
		{{"accept", "2026-02-10T16:30:00.123Z"}}, // 00:30 on 11 February in Shanghai
		{{"not_accept", "2026-02-10T15:59:59.999Z"}, {"accept", "2026-02-12T01:00:00Z"}},
		{{"link_duplicate", "2026-03-01T00:00:00Z"}},
		{{"accept", "2026-02-01T00:00:00Z"}, {"conclude", "2026-02-05T00:00:00Z"}, {"give_feedback", "2026-02-06T17:00:00Z"},
			{"close", "2026-02-07T00:00:00.5Z"}, {"reopen", "2026-03-01T00:00:00Z"}, {"conclude", "2026-03-05T00:00:00Z"}},
		{{"conclude", "2026-02-05T00:00:00Z"}, {"give_feedback", "2026-02-06T00:00:00Z"}, {"close", "2026-02-07T08:00:00.007Z"},
			{"reopen", "2026-03-01T00:00:00Z"}, {"close", "2026-04-01T23:59:59.999Z"}},
		{{"give_feedback", "2026-02-06T00:00:00Z"}},
	}
	for i, h := range histories {
		// Received at 23:30 on 31 January in UTC: February in Shanghai.
		c := storetest.NewCase(i+1, "330782-mz", "330782001", at("2026-01-31T16:30:00Z"))
		c.RealName = i%2 == 0
		for _, st := range h {
			c.Transitions = append(c.Transitions, intake.Transition{Action: st[0], To: intake.StatusClosed, At: at(st[1])})
		}
		if i == 5 {
			c.Status = intake.StatusClosed
			p := at("2026-05-01T00:00:00.042Z")
			c.PurgedAt = &p
		}
		if err := s.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	read := func() []string {
		rows, err := db.r.QueryContext(ctx, "SELECT id, "+derivedColumns+" FROM cases ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, acc, fb, county, month string
			var real bool
			var closed, purged *int64
			if err := rows.Scan(&id, &real, &acc, &fb, &closed, &purged, &county, &month); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s real=%v acc=%q fb=%q closed=%v purged=%v county=%s month=%s", id, real, acc, fb, deref(closed), deref(purged), county, month))
		}
		return out
	}
	written := read()
	var mig string
	for _, m := range migrations {
		if m.name == "0010_stats_retention.sql" {
			mig = m.sql
		}
	}
	i := strings.Index(mig, "UPDATE cases SET")
	if i < 0 {
		t.Fatal("no backfill in 0010")
	}
	backfill := mig[i : i+strings.Index(mig[i:], ";")]
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE cases SET real_name = 0, accepted_on = '', feedback_on = '', closed_at = NULL, purged_at = NULL, county = '', received_month = ''"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, backfill)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(); !reflect.DeepEqual(got, written) {
		t.Errorf("backfilled:\n%s\nwritten by the store:\n%s", strings.Join(got, "\n"), strings.Join(written, "\n"))
	}
	t.Logf("%s", strings.Join(written, "\n"))
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
