package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// StatsStore is a case store that computes statistics and streams the export.
type StatsStore interface {
	intake.CaseStore
	triage.Store
	stats.Source
}

// NewStatsStore returns a fresh, empty store whose clock is now (Stats judges
// unkept deadlines by it).
type NewStatsStore func(t *testing.T, now func() time.Time) StatsStore

// Stats is the suite of stats.Source: the counts of a fixture whose deadlines are
// kept, missed and pending across Asia/Shanghai day and month boundaries, per unit and
// period; the export's order, fields and what it must never carry; and seeded random
// cases counted by the store and by stats.Tally over the same cases, which must agree.
func Stats(t *testing.T, newStore NewStatsStore) {
	for _, sc := range []struct {
		name string
		run  func(*testing.T, NewStatsStore)
	}{
		{"Counts", testStatsCounts},
		{"Export", testExportCases},
		{"SameAsTally", testStatsSameAsTally},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, newStore)
		})
	}
}

// cst is Asia/Shanghai: every date and month in the statistics is counted there.
var cst = time.FixedZone("CST", 8*3600)

// sh parses "2006-01-02 15:04" in Asia/Shanghai.
func sh(t *testing.T, v string) time.Time {
	t.Helper()
	at, err := time.ParseInLocation("2006-01-02 15:04", v, cst)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

type statsCase struct {
	n             int
	unit          string
	division      string
	category      intake.Category
	received      string // Asia/Shanghai
	realName      bool
	status        intake.Status
	acceptanceDue string
	feedbackDue   string
	steps         [][2]string // action, time in Asia/Shanghai
	escalated     []string
}

// statsFixture is cases of two units in several categories, counties and months, whose
// steps keep and miss their deadlines, judged on 2026-04-15 (statsNow).
var statsFixture = []statsCase{
	// Received 2026-02-01 01:00 in Shanghai, still 31 January in UTC: February. Accepted
	// at 23:30 on the due date: met.
	{n: 1, unit: "330782-mz", division: "330782001", category: "arbitrary_fees", received: "2026-02-01 01:00", realName: true,
		status: intake.StatusAccepted, acceptanceDue: "2026-02-10", steps: [][2]string{{"accept", "2026-02-10 23:30"}}},
	// Accepted half an hour into the day after the due date: missed. Feedback before its
	// date: met.
	{n: 2, unit: "330782-mz", division: "330782", category: "arbitrary_fees", received: "2026-02-05 10:00", realName: true,
		status: intake.StatusFeedbackGiven, acceptanceDue: "2026-02-20", feedbackDue: "2026-03-20",
		steps: [][2]string{{"accept", "2026-02-21 00:30"}, {"dispose", "2026-02-22 09:00"}, {"conclude", "2026-03-01 09:00"}, {"give_feedback", "2026-03-18 16:00"}}},
	// Never accepted, due date passed: missed (and escalated).
	{n: 3, unit: "330782-mz", division: "330782102", category: "illegal_org", received: "2026-03-03 09:00", realName: true,
		status: intake.StatusRegistered, acceptanceDue: "2026-03-17", escalated: []string{"acceptance"}},
	// Received at midnight starting April in Shanghai (still March in UTC); due today:
	// pending.
	{n: 4, unit: "330782-mz", division: "330782", category: "illegal_org", received: "2026-04-01 00:00", realName: true,
		status: intake.StatusRegistered, acceptanceDue: "2026-04-15"},
	// Anonymous: no acceptance deadline.
	{n: 5, unit: "330782-mz", division: "330782", category: "other", received: "2026-03-20 14:00",
		status: intake.StatusAccepted, steps: [][2]string{{"accept", "2026-03-21 09:00"}}},
	// Not accepted the day before the due date: met.
	{n: 6, unit: "330782-mz", division: "330782", category: "formalism", received: "2026-03-10 08:00", realName: true,
		status: intake.StatusNotAccepted, acceptanceDue: "2026-03-25", steps: [][2]string{{"not_accept", "2026-03-24 17:00"}}},
	// January, another county. Accepted in time; feedback five days late: missed.
	{n: 7, unit: "330782-mz", division: "330702", category: "donation_misuse", received: "2026-01-05 11:00", realName: true,
		status: intake.StatusFeedbackGiven, acceptanceDue: "2026-01-20", feedbackDue: "2026-02-15",
		steps: [][2]string{{"accept", "2026-01-15 10:00"}, {"conclude", "2026-02-01 10:00"}, {"give_feedback", "2026-02-20 10:00"}}},
	// Accepted in time; concluded, feedback due after today: pending.
	{n: 8, unit: "330782-mz", division: "330782", category: "arbitrary_fees", received: "2026-03-28 09:00", realName: true,
		status: intake.StatusConcluded, acceptanceDue: "2026-04-08", feedbackDue: "2026-04-30",
		steps: [][2]string{{"accept", "2026-04-01 09:00"}, {"conclude", "2026-04-10 09:00"}}},
	// Feedback given in a first round, then reopened and concluded again: the current
	// feedback date has passed with no feedback since: missed.
	{n: 9, unit: "330782-mz", division: "330781005", category: "official_discipline", received: "2026-02-02 09:00", realName: true,
		status: intake.StatusConcluded, acceptanceDue: "2026-02-12", feedbackDue: "2026-04-01", escalated: []string{"feedback"},
		steps: [][2]string{{"accept", "2026-02-03 09:00"}, {"conclude", "2026-02-10 09:00"}, {"give_feedback", "2026-02-12 09:00"},
			{"close", "2026-02-13 09:00"}, {"reopen", "2026-03-01 09:00"}, {"conclude", "2026-03-20 09:00"}}},
	// Another unit's case.
	{n: 10, unit: "330783-mz", division: "330783", category: "arbitrary_fees", received: "2026-03-05 09:00", realName: true,
		status: intake.StatusAccepted, acceptanceDue: "2026-03-19", steps: [][2]string{{"accept", "2026-03-18 09:00"}}},
	// A linked duplicate: triage clears its acceptance date, so no deadline.
	{n: 11, unit: "330782-mz", division: "330782", category: "arbitrary_fees", received: "2026-03-06 09:00", realName: true,
		status: intake.StatusDuplicate, steps: [][2]string{{"link_duplicate", "2026-03-30 09:00"}}},
}

var statsNow = time.Date(2026, 4, 15, 2, 0, 0, 0, time.UTC) // 10:00 in Shanghai

func loadStatsFixture(t *testing.T, s StatsStore) map[string]statsCase {
	t.Helper()
	byNumber := map[string]statsCase{}
	for _, f := range statsFixture {
		c := NewCase(f.n, f.unit, f.division, sh(t, f.received))
		c.Category, c.RealName, c.Status = f.category, f.realName, f.status
		c.AcceptanceDue, c.FeedbackDue, c.Escalated = f.acceptanceDue, f.feedbackDue, f.escalated
		if !f.realName {
			c.Identity = nil
		}
		for _, st := range f.steps {
			c.Transitions = append(c.Transitions, intake.Transition{Action: st[0], By: "staff-1", At: sh(t, st[1]),
				Reason: "承办人填写的理由"})
		}
		if err := s.CreateCase(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		byNumber[c.Number] = f
	}
	return byNumber
}

func testStatsCounts(t *testing.T, newStore NewStatsStore) {
	ctx := context.Background()
	var now atomic.Pointer[time.Time]
	now.Store(&statsNow)
	s := newStore(t, func() time.Time { return *now.Load() })
	loadStatsFixture(t, s)

	tests := []struct {
		name string
		f    stats.Filter
		want stats.Stats
	}{
		{"one unit, all time", stats.Filter{UnitID: "330782-mz"}, stats.Stats{
			Total:      10,
			ByCategory: map[string]int64{"arbitrary_fees": 4, "illegal_org": 2, "other": 1, "formalism": 1, "donation_misuse": 1, "official_discipline": 1},
			ByDivision: map[string]int64{"330782": 8, "330702": 1, "330781": 1},
			ByStatus:   map[string]int64{"accepted": 2, "feedback_given": 2, "registered": 2, "not_accepted": 1, "concluded": 2, "duplicate": 1},
			ByMonth:    map[string]int64{"2026-01": 1, "2026-02": 3, "2026-03": 5, "2026-04": 1},
			OnTime: map[string]stats.OnTime{
				// met: 1, 6, 7, 8, 9; missed: 2 (late), 3 (never); pending: 4 (due today)
				"acceptance": {Due: 8, Met: 5, Missed: 2, Pending: 1, Rate: 5.0 / 7},
				// met: 2; missed: 7 (late), 9 (none since reconcluding); pending: 8
				"feedback": {Due: 4, Met: 1, Missed: 2, Pending: 1, Rate: 1.0 / 3},
			},
		}},
		{"every unit", stats.Filter{}, stats.Stats{
			Total:      11,
			ByCategory: map[string]int64{"arbitrary_fees": 5, "illegal_org": 2, "other": 1, "formalism": 1, "donation_misuse": 1, "official_discipline": 1},
			ByDivision: map[string]int64{"330782": 8, "330702": 1, "330781": 1, "330783": 1},
			ByStatus:   map[string]int64{"accepted": 3, "feedback_given": 2, "registered": 2, "not_accepted": 1, "concluded": 2, "duplicate": 1},
			ByMonth:    map[string]int64{"2026-01": 1, "2026-02": 3, "2026-03": 6, "2026-04": 1},
			OnTime: map[string]stats.OnTime{
				"acceptance": {Due: 9, Met: 6, Missed: 2, Pending: 1, Rate: 6.0 / 8},
				"feedback":   {Due: 4, Met: 1, Missed: 2, Pending: 1, Rate: 1.0 / 3},
			},
		}},
		// February and March in Shanghai: case 1 (31 January in UTC) is in, case 4
		// (received at the exclusive end) and case 7 (January) are out.
		{"one unit, February and March", stats.Filter{UnitID: "330782-mz", From: sh(t, "2026-02-01 00:00"), To: sh(t, "2026-04-01 00:00")}, stats.Stats{
			Total:      8,
			ByCategory: map[string]int64{"arbitrary_fees": 4, "illegal_org": 1, "other": 1, "formalism": 1, "official_discipline": 1},
			ByDivision: map[string]int64{"330782": 7, "330781": 1},
			ByStatus:   map[string]int64{"accepted": 2, "feedback_given": 1, "registered": 1, "not_accepted": 1, "concluded": 2, "duplicate": 1},
			ByMonth:    map[string]int64{"2026-02": 3, "2026-03": 5},
			OnTime: map[string]stats.OnTime{
				"acceptance": {Due: 6, Met: 4, Missed: 2, Pending: 0, Rate: 4.0 / 6},
				"feedback":   {Due: 3, Met: 1, Missed: 1, Pending: 1, Rate: 0.5},
			},
		}},
		{"a unit without cases", stats.Filter{UnitID: "330700-mz"}, stats.Stats{
			ByCategory: map[string]int64{}, ByDivision: map[string]int64{}, ByStatus: map[string]int64{}, ByMonth: map[string]int64{},
			OnTime: map[string]stats.OnTime{"acceptance": {}, "feedback": {}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Stats(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			checkStats(t, got, tt.want)
		})
	}

	// A day later, case 4's acceptance date has passed.
	next := statsNow.Add(24 * time.Hour)
	now.Store(&next)
	got, err := s.Stats(ctx, stats.Filter{UnitID: "330782-mz"})
	if err != nil {
		t.Fatal(err)
	}
	if a := got.OnTime["acceptance"]; a.Pending != 0 || a.Missed != 3 {
		t.Errorf("acceptance the next day: %+v", a)
	}
}

func checkStats(t *testing.T, got, want stats.Stats) {
	t.Helper()
	if got.Total != want.Total {
		t.Errorf("total %d, want %d", got.Total, want.Total)
	}
	for _, m := range []struct {
		name      string
		got, want map[string]int64
	}{{"category", got.ByCategory, want.ByCategory}, {"division", got.ByDivision, want.ByDivision},
		{"status", got.ByStatus, want.ByStatus}, {"month", got.ByMonth, want.ByMonth}} {
		if !maps.Equal(m.got, m.want) || m.got == nil {
			t.Errorf("by %s: %v, want %v", m.name, m.got, m.want)
		}
	}
	if len(got.OnTime) != len(want.OnTime) {
		t.Errorf("on time: %v, want %v", got.OnTime, want.OnTime)
	}
	for k, w := range want.OnTime {
		g := got.OnTime[k]
		if g.Due != w.Due || g.Met != w.Met || g.Missed != w.Missed || g.Pending != w.Pending || math.Abs(g.Rate-w.Rate) > 1e-9 {
			t.Errorf("%s: %+v, want %+v", k, g, w)
		}
		if g.Due != g.Met+g.Missed+g.Pending {
			t.Errorf("%s: due %d is not met + missed + pending", k, g.Due)
		}
	}
}

func testExportCases(t *testing.T, newStore NewStatsStore) {
	ctx := context.Background()
	s := newStore(t, func() time.Time { return statsNow })
	fixture := loadStatsFixture(t, s)

	var rows []stats.ExportRow
	err := s.ExportCases(ctx, stats.Filter{UnitID: "330782-mz", From: sh(t, "2026-02-01 00:00")}, func(r stats.ExportRow) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Oldest first; case 7 (January) and the other unit's case 10 are not exported.
	var got []int
	for _, r := range rows {
		got = append(got, fixture[r.Number].n)
	}
	if want := []int{1, 9, 2, 3, 11, 6, 5, 8, 4}; !slices.Equal(got, want) {
		t.Fatalf("exported cases %v, want %v", got, want)
	}
	for _, r := range rows {
		f := fixture[r.Number]
		want := stats.ExportRow{Number: r.Number, Category: string(f.category), Division: f.division, Status: string(f.status),
			UnitID: f.unit, RealName: f.realName, ReceivedAt: sh(t, f.received).UTC(), AcceptanceDue: f.acceptanceDue,
			FeedbackDue: f.feedbackDue, Overdue: f.escalated}
		if fmt.Sprint(r) != fmt.Sprint(want) {
			t.Errorf("row\n%+v, want\n%+v", r, want)
		}
	}
	// Nothing that names the reporter, the accused or the matter is exported.
	dump := fmt.Sprintf("%+v", rows)
	for _, secret := range []string{"以会员费名义", "某某协会", "51330782MJ0000000X", "稠城街道", "age-encryption", "receipt-hash",
		"承办人填写的理由", "staff-1", "义乌市民政局"} {
		if strings.Contains(dump, secret) {
			t.Errorf("the export contains %q", secret)
		}
	}

	// The callback's error stops the export and is returned as is.
	stop := errors.New("stop")
	calls := 0
	err = s.ExportCases(ctx, stats.Filter{}, func(stats.ExportRow) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Errorf("stopping: %v after %d rows", err, calls)
	}
}

// testStatsSameAsTally: seeded random cases — real-name or not, due dates and steps
// near Asia/Shanghai midnight, reopenings, half of the steps stored afterwards
// through ApplyTransition — counted by the store and by stats.Tally over the cases it
// returns, for random units, periods and days.
func testStatsSameAsTally(t *testing.T, newStore NewStatsStore) {
	ctx := context.Background()
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 12))
			var now atomic.Pointer[time.Time]
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			n0 := start.AddDate(0, 3, 0)
			now.Store(&n0)
			s := newStore(t, func() time.Time { return *now.Load() })
			// A time near a Shanghai midnight, d days after start, to the millisecond.
			near := func(d int) time.Time {
				mid := time.Date(2026, 1, 1+d, 0, 0, 0, 0, cst)
				return mid.Add(time.Duration(rng.IntN(4*3600_000)-2*3600_000) * time.Millisecond).Truncate(time.Millisecond)
			}
			day := func(d int) string { return time.Date(2026, 1, 1+d, 0, 0, 0, 0, cst).Format("2006-01-02") }
			units := []string{"330782-mz", "330783-mz", "330702-jw"}
			divisions := []string{"330782", "330782001", "330783102", "330702", "3307"}
			categories := []intake.Category{"arbitrary_fees", "illegal_org", "other", "formalism"}
			actions := []string{"accept", "not_accept", "link_duplicate", "dispose", "conclude", "give_feedback", "close", "reopen"}
			var ids []string
			for i := range 150 {
				rd := rng.IntN(90)
				c := NewCase(i+1, units[rng.IntN(len(units))], divisions[rng.IntN(len(divisions))], near(rd))
				c.Category, c.RealName = categories[rng.IntN(len(categories))], rng.IntN(3) > 0
				c.Status = []intake.Status{intake.StatusRegistered, intake.StatusAccepted, intake.StatusConcluded, intake.StatusClosed}[rng.IntN(4)]
				c.AcceptanceDue, c.FeedbackDue = "", ""
				if rng.IntN(4) > 0 {
					c.AcceptanceDue = day(rd + rng.IntN(20))
				}
				if rng.IntN(2) > 0 {
					c.FeedbackDue = day(rd + rng.IntN(40))
				}
				for range rng.IntN(6) {
					c.Transitions = append(c.Transitions, intake.Transition{Action: actions[rng.IntN(len(actions))], By: "staff-1",
						At: near(rd + rng.IntN(30)), To: intake.StatusClosed})
				}
				if err := s.CreateCase(ctx, c); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, c.ID)
			}
			// Steps stored later, through the workflow's write.
			for _, id := range ids[:75] {
				c, err := s.CaseByID(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				due := day(rng.IntN(120))
				tr := intake.Transition{Action: actions[rng.IntN(len(actions))], From: c.Status, To: c.Status, By: "staff-2", At: near(rng.IntN(120))}
				if err := s.ApplyTransition(ctx, id, c.Version, tr, triage.TransitionFields{FeedbackDue: &due, CaseNumber: c.Number, UnitID: c.UnitID}); err != nil {
					t.Fatal(err)
				}
			}
			var all []*intake.Case
			for _, id := range ids {
				c, err := s.CaseByID(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, c)
			}
			for q := range 12 {
				f := stats.Filter{}
				if q%3 > 0 {
					f.UnitID = units[rng.IntN(len(units))]
				}
				if q%2 == 1 {
					f.From = near(rng.IntN(60))
					f.To = f.From.Add(time.Duration(rng.IntN(60*24)) * time.Hour)
				}
				at := near(rng.IntN(150))
				now.Store(&at)
				tally := stats.NewTally(at)
				for _, c := range all {
					if f.UnitID != "" && c.UnitID != f.UnitID || !f.From.IsZero() && c.ReceivedAt.Before(f.From) || !f.To.IsZero() && !c.ReceivedAt.Before(f.To) {
						continue
					}
					sc := stats.Case{Category: string(c.Category), Division: c.Location.Division, Status: string(c.Status), ReceivedAt: c.ReceivedAt,
						RealName: c.RealName, AcceptanceDue: c.AcceptanceDue, FeedbackDue: c.FeedbackDue}
					for _, tr := range c.Transitions {
						sc.Steps = append(sc.Steps, stats.Step{Action: tr.Action, At: tr.At})
					}
					tally.Add(sc)
				}
				got, err := s.Stats(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				t.Run(fmt.Sprintf("query %d %+v at %s", q, f, at.Format(time.RFC3339)), func(t *testing.T) {
					checkStats(t, got, tally.Result())
				})
			}
		})
	}
}
