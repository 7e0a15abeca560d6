// Package stats is case statistics and the de-identified case export: the counting
// rules, the types the storage layer fills and the API serves, and the export's CSV
// format. It knows nothing of MongoDB or HTTP; storage/mongo streams the few fields
// the rules need into a Tally, and handlers serves the result.
//
// Nothing here carries a reporter's identity, the description, the subject (names of
// organizations or people) or an address: those can identify a reporter or the
// accused, and statistics and exports leave the case file. An ExportRow has codes,
// dates and a flag, nothing else.
package stats

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// Filter selects the cases counted or exported.
type Filter struct {
	// UnitID limits to one unit's cases; "" means every unit. Who may ask for every
	// unit (administrators) is the caller's decision: the store does not know roles.
	UnitID string
	// From and To bound received_at: From inclusive, To exclusive; a zero time is
	// unbounded on that side.
	From, To time.Time
}

// Deadline kinds counted in Stats.OnTime.
const (
	KindAcceptance = "acceptance" // 受理告知: real-name reports, by acceptance_due
	KindFeedback   = "feedback"   // 结果反馈: by feedback_due, set on conclusion
)

// Stats counts cases.
type Stats struct {
	Total      int64
	ByCategory map[string]int64
	// ByDivision counts by county-level code: the first 6 digits of location.division.
	ByDivision map[string]int64
	ByStatus   map[string]int64
	// ByMonth counts by the month received, YYYY-MM in Asia/Shanghai (a case without
	// received_at, which intake never stores, is left out).
	ByMonth map[string]int64
	// OnTime is keyed by KindAcceptance and KindFeedback; both are always present.
	OnTime map[string]OnTime
}

// OnTime is how a deadline was kept. Due = Met + Missed + Pending.
type OnTime struct {
	Due     int64 // cases with this deadline
	Met     int64 // the step was taken on or before the due date
	Missed  int64 // taken after it, or not taken and the date has passed
	Pending int64 // not taken, and the date has not passed
	// Rate is Met / (Met + Missed): pending cases are not yet decided. It is 0 when
	// none are decided (Met + Missed == 0); look at the counts to tell the two apart.
	Rate float64
}

// Step is one workflow transition, as far as deadlines care.
type Step struct {
	Action string
	At     time.Time
}

// Case is what the statistics need of one case, and nothing more.
type Case struct {
	Category      string
	Division      string
	Status        string
	ReceivedAt    time.Time
	RealName      bool
	AcceptanceDue string // YYYY-MM-DD, Asia/Shanghai; "" for none
	FeedbackDue   string // YYYY-MM-DD, Asia/Shanghai; "" for none
	Steps         []Step // oldest first
}

// Source computes statistics and streams the export; storage/mongo's and
// storage/sqlite's CaseStore implement it.
type Source interface {
	Stats(ctx context.Context, f Filter) (Stats, error)
	// ExportCases calls fn for each case of f, oldest first, and stops at fn's first
	// error, returning it.
	ExportCases(ctx context.Context, f Filter, fn func(ExportRow) error) error
}

// shanghai is the zone dates and months are in.
var shanghai = qingfeng.Shanghai // the one definition of the zone

const dateLayout = "2006-01-02"

// Tally counts cases one at a time, so that a store can stream them.
type Tally struct {
	today string
	s     Stats
	on    map[string]*OnTime
}

// NewTally starts counting; now decides which unkept deadlines have passed (a due
// date passes when its day in Asia/Shanghai is over).
func NewTally(now time.Time) *Tally {
	return &Tally{
		today: now.In(shanghai).Format(dateLayout),
		s: Stats{ByCategory: map[string]int64{}, ByDivision: map[string]int64{}, ByStatus: map[string]int64{},
			ByMonth: map[string]int64{}},
		on: map[string]*OnTime{KindAcceptance: {}, KindFeedback: {}},
	}
}

// Outcome is how one case kept one deadline.
type Outcome int

// Outcomes. None: the case has no such deadline.
const (
	None Outcome = iota
	Met
	Missed
	Pending
)

// Add counts one case.
func (t *Tally) Add(c Case) {
	t.s.Total++
	t.s.ByCategory[c.Category]++
	t.s.ByDivision[County(c.Division)]++
	t.s.ByStatus[c.Status]++
	if !c.ReceivedAt.IsZero() {
		t.s.ByMonth[Month(c.ReceivedAt)]++
	}
	t.count(KindAcceptance, AcceptanceOutcome(c, t.today))
	t.count(KindFeedback, FeedbackOutcome(c, t.today))
}

// Counted is a group of N cases a store has counted as Add would: the county (County
// of the division), the month received (Month), and how many of them kept each
// deadline how, indexed by Outcome (the None entry is not read). A store that keeps the
// days the rules need (AcceptanceStep, FeedbackStep) can count in its query and hand
// the groups over.
type Counted struct {
	Category, County, Status, Month string
	N                               int64
	Acceptance, Feedback            [4]int64
}

// AddCounted counts group g.
func (t *Tally) AddCounted(g Counted) {
	t.s.Total += g.N
	t.s.ByCategory[g.Category] += g.N
	t.s.ByDivision[g.County] += g.N
	t.s.ByStatus[g.Status] += g.N
	if g.Month != "" {
		t.s.ByMonth[g.Month] += g.N
	}
	for _, o := range []Outcome{Met, Missed, Pending} {
		t.countN(KindAcceptance, o, g.Acceptance[o])
		t.countN(KindFeedback, o, g.Feedback[o])
	}
}

func (t *Tally) count(kind string, o Outcome) { t.countN(kind, o, 1) }

func (t *Tally) countN(kind string, o Outcome, n int64) {
	ot := t.on[kind]
	switch o {
	case Met:
		ot.Met += n
	case Missed:
		ot.Missed += n
	case Pending:
		ot.Pending += n
	default:
		return
	}
	ot.Due += n
}

// Result returns the counts so far.
func (t *Tally) Result() Stats {
	s := t.s
	s.OnTime = make(map[string]OnTime, len(t.on))
	for k, ot := range t.on {
		o := *ot
		if d := o.Met + o.Missed; d > 0 {
			o.Rate = float64(o.Met) / float64(d)
		}
		s.OnTime[k] = o
	}
	return s
}

// County returns the county-level part of a division code: its first 6 digits.
func County(division string) string {
	if len(division) > 6 {
		return division[:6]
	}
	return division
}

// AcceptanceOutcome judges a real-name case's acceptance notice: the first step that
// decides acceptance (accept, not_accept or link_duplicate) on or before
// AcceptanceDue is met; after it, missed. With no such step the case is missed once
// the due date has passed (today is later), pending until then. Anonymous cases and
// cases without a due date have no such deadline (None).
//
// A case linked as a duplicate has its acceptance_due cleared by triage, so it drops
// out of these counts however late the link was made.
func AcceptanceOutcome(c Case, today string) Outcome {
	if !c.RealName || c.AcceptanceDue == "" {
		return None
	}
	if at, ok := AcceptanceStep(c.Steps); ok {
		return judge(at, c.AcceptanceDue)
	}
	return unkept(c.AcceptanceDue, today)
}

// FeedbackOutcome judges the result feedback to a real-name reporter: the first
// give_feedback after the case's last conclusion (which set FeedbackDue; a reopening
// clears it, and a new conclusion sets a new one) on or before FeedbackDue is met;
// after it, missed. With none, missed once the due date has passed, pending until then.
func FeedbackOutcome(c Case, today string) Outcome {
	if c.FeedbackDue == "" {
		return None
	}
	if at, ok := FeedbackStep(c.Steps); ok {
		return judge(at, c.FeedbackDue)
	}
	return unkept(c.FeedbackDue, today)
}

// AcceptanceStep is when the first step that decides acceptance (accept, not_accept
// or link_duplicate) was taken; ok is false when none was. A store that keeps
// Day(at) with the case can then judge AcceptanceOutcome without the steps.
func AcceptanceStep(steps []Step) (at time.Time, ok bool) {
	for _, s := range steps {
		switch s.Action {
		case string(triage.ActAccept), string(triage.ActNotAccept), string(triage.ActLinkDuplicate):
			return s.At, true
		}
	}
	return time.Time{}, false
}

// FeedbackStep is when the first give_feedback after the last conclusion was given;
// ok is false when none was.
func FeedbackStep(steps []Step) (at time.Time, ok bool) {
	from := 0
	for i, s := range steps {
		if s.Action == string(triage.ActConclude) {
			from = i + 1
		}
	}
	for _, s := range steps[from:] {
		if s.Action == string(triage.ActGiveFeedback) {
			return s.At, true
		}
	}
	return time.Time{}, false
}

// Day is at's date in Asia/Shanghai, YYYY-MM-DD: what a step's time is compared with
// a due date as.
func Day(at time.Time) string { return at.In(shanghai).Format(dateLayout) }

// Month is at's month in Asia/Shanghai, YYYY-MM: what ByMonth counts by.
func Month(at time.Time) string { return at.In(shanghai).Format("2006-01") }

// judge compares the day a step was taken, in Asia/Shanghai, with a due date. Both are
// YYYY-MM-DD, which compare as dates.
func judge(at time.Time, due string) Outcome {
	if Day(at) <= due {
		return Met
	}
	return Missed
}

func unkept(due, today string) Outcome {
	if due < today {
		return Missed
	}
	return Pending
}

// ExportRow is one case in the export: codes, dates and flags only. It never carries
// the reporter's identity (sealed or not), the receipt, the description, the subject
// (organization or person names, credit codes), the address or coordinates, messages,
// evidence or the staff who handled the case: the description and subject can identify
// the reporter or the accused, and an export leaves the case file.
type ExportRow struct {
	Number        string
	Category      string
	Division      string // location.division as stored: 6 or 9 digits
	Status        string
	UnitID        string
	RealName      bool // whether the report was real-name; never who
	ReceivedAt    time.Time
	AcceptanceDue string
	FeedbackDue   string
	Overdue       []string // steps escalated as overdue: acceptance, feedback, transfer
}

// CSVHeader is the export's header row, in the order of CSVRecord.
func CSVHeader() []string {
	return []string{"case_number", "category", "division", "status", "unit_id", "real_name",
		"received_at", "acceptance_due", "feedback_due", "overdue"}
}

// CSVRecord renders r as a CSV record: received_at as "YYYY-MM-DD HH:MM:SS" in
// Asia/Shanghai (which spreadsheets read as a date and time), overdue steps joined by
// ";", and every cell guarded by SafeCell.
func (r ExportRow) CSVRecord() []string {
	received := ""
	if !r.ReceivedAt.IsZero() {
		received = r.ReceivedAt.In(shanghai).Format("2006-01-02 15:04:05")
	}
	rec := []string{r.Number, r.Category, r.Division, r.Status, r.UnitID, strconv.FormatBool(r.RealName),
		received, r.AcceptanceDue, r.FeedbackDue, strings.Join(r.Overdue, ";")}
	for i, v := range rec {
		rec[i] = SafeCell(v)
	}
	return rec
}

// SafeCell defuses CSV (formula) injection: a cell a spreadsheet would read as a
// formula — starting with = + - @, or a tab or carriage return that some strip first —
// is prefixed with a single quote, which makes it text. The values exported are codes
// and dates, so this should never fire; it is there in case one ever is not.
func SafeCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
