package stats

import (
	"slices"
	"testing"
	"time"
)

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"QF-330782-2026-000001": "QF-330782-2026-000001",
		"=1+1":                  "'=1+1",
		"+86":                   "'+86",
		"-2":                    "'-2",
		"@SUM(A1)":              "'@SUM(A1)",
		"\t=1":                  "'\t=1",
		"\r=1":                  "'\r=1",
		"a=1":                   "a=1",
		"'x":                    "'x",
	} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSVRecord(t *testing.T) {
	r := ExportRow{Number: "QF-330782-2026-000001", Category: "arbitrary_fees", Division: "330782001", Status: "registered",
		UnitID: "330782-mz", RealName: true, ReceivedAt: time.Date(2026, 1, 31, 16, 30, 5, 0, time.UTC),
		AcceptanceDue: "2026-02-10", Overdue: []string{"acceptance", "transfer"}}
	want := []string{"QF-330782-2026-000001", "arbitrary_fees", "330782001", "registered", "330782-mz", "true",
		"2026-02-01 00:30:05", "2026-02-10", "", "acceptance;transfer"}
	if got := r.CSVRecord(); !slices.Equal(got, want) {
		t.Errorf("record %q, want %q", got, want)
	}
	if len(CSVHeader()) != len(want) {
		t.Errorf("header has %d columns, records %d", len(CSVHeader()), len(want))
	}
	if got := (ExportRow{Category: "=HYPERLINK(\"x\")"}).CSVRecord(); got[1] != "'=HYPERLINK(\"x\")" || got[5] != "false" || got[6] != "" {
		t.Errorf("guarded record %q", got)
	}
}

func TestCounty(t *testing.T) {
	for in, want := range map[string]string{"330782001": "330782", "330782": "330782", "3307": "3307", "": ""} {
		if got := County(in); got != want {
			t.Errorf("County(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOutcomes(t *testing.T) {
	at := func(v string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", v, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	const today = "2026-04-15"
	tests := []struct {
		name       string
		c          Case
		acceptance Outcome
		feedback   Outcome
	}{
		{"anonymous, even with a date", Case{AcceptanceDue: "2026-04-01"}, None, None},
		{"real-name, no date", Case{RealName: true}, None, None},
		{"due today, not yet accepted", Case{RealName: true, AcceptanceDue: today}, Pending, None},
		{"due yesterday, not accepted", Case{RealName: true, AcceptanceDue: "2026-04-14"}, Missed, None},
		{"accepted at 23:59 on the date", Case{RealName: true, AcceptanceDue: "2026-04-10",
			Steps: []Step{{"accept", at("2026-04-10 23:59")}}}, Met, None},
		{"accepted at 00:00 the day after", Case{RealName: true, AcceptanceDue: "2026-04-10",
			Steps: []Step{{"accept", at("2026-04-11 00:00")}}}, Missed, None},
		{"the first deciding step counts", Case{RealName: true, AcceptanceDue: "2026-04-10",
			Steps: []Step{{"assign", at("2026-04-01 09:00")}, {"not_accept", at("2026-04-12 09:00")}, {"accept", at("2026-04-13 09:00")}}}, Missed, None},
		{"linked as a duplicate in time", Case{RealName: true, AcceptanceDue: "2026-04-10",
			Steps: []Step{{"link_duplicate", at("2026-04-09 09:00")}}}, Met, None},
		{"feedback without a conclusion on record", Case{FeedbackDue: "2026-04-10",
			Steps: []Step{{"give_feedback", at("2026-04-10 09:00")}}}, None, Met},
		{"feedback before the latest conclusion does not count", Case{FeedbackDue: "2026-04-20",
			Steps: []Step{{"conclude", at("2026-03-01 09:00")}, {"give_feedback", at("2026-03-02 09:00")}, {"reopen", at("2026-03-03 09:00")},
				{"conclude", at("2026-04-01 09:00")}}}, None, Pending},
		{"feedback late", Case{FeedbackDue: "2026-04-10",
			Steps: []Step{{"conclude", at("2026-03-01 09:00")}, {"give_feedback", at("2026-04-11 09:00")}}}, None, Missed},
	}
	for _, tt := range tests {
		if got := AcceptanceOutcome(tt.c, today); got != tt.acceptance {
			t.Errorf("%s: acceptance %d, want %d", tt.name, got, tt.acceptance)
		}
		if got := FeedbackOutcome(tt.c, today); got != tt.feedback {
			t.Errorf("%s: feedback %d, want %d", tt.name, got, tt.feedback)
		}
	}
}

func TestTally(t *testing.T) {
	tl := NewTally(time.Date(2026, 4, 15, 2, 0, 0, 0, time.UTC))
	tl.Add(Case{Category: "other", Division: "330782001", Status: "accepted", ReceivedAt: time.Date(2026, 3, 31, 16, 0, 0, 0, time.UTC),
		RealName: true, AcceptanceDue: "2026-04-10", Steps: []Step{{"accept", time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC)}}})
	tl.Add(Case{Category: "other", Division: "330782", Status: "registered", RealName: true, AcceptanceDue: "2026-04-01"})
	s := tl.Result()
	if s.Total != 2 || s.ByCategory["other"] != 2 || s.ByDivision["330782"] != 2 || s.ByMonth["2026-04"] != 1 || len(s.ByMonth) != 1 {
		t.Errorf("counts %+v", s)
	}
	if a := s.OnTime[KindAcceptance]; a != (OnTime{Due: 2, Met: 1, Missed: 1, Rate: 0.5}) {
		t.Errorf("acceptance %+v", a)
	}
	if f, ok := s.OnTime[KindFeedback]; !ok || f != (OnTime{}) {
		t.Errorf("feedback %+v (present %v)", f, ok)
	}
}
