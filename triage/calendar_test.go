package triage

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

func newCalendar(t *testing.T) *Calendar {
	t.Helper()
	c, err := NewCalendar()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// day is midnight UTC of a date, which is 08:00 the same day in Asia/Shanghai.
func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// fake2027 is a made-up 2027 calendar for the tests: only New Year's Day is off.
const fake2027 = `{"year": 2027, "days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true}]}`

func TestNewCalendarLoadsEmbeddedYears(t *testing.T) {
	if got := newCalendar(t).Years(); !slices.Equal(got, []int{2025, 2026}) {
		t.Fatalf("Years() = %v, want [2025 2026]", got)
	}
}

// TestEmbeddedMakeUpDaysAreWeekends checks the embedded data the way a reviewer would: a
// make-up working day on a weekday would mean nothing, so it signals a broken file.
func TestEmbeddedMakeUpDaysAreWeekends(t *testing.T) {
	for _, name := range []string{"holidays/2025.json", "holidays/2026.json"} {
		data, err := holidayFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var f yearFile
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		makeUp := 0
		for _, d := range f.Days {
			wd := day(d.Date).Weekday()
			if !*d.IsOffDay {
				makeUp++
				if wd != time.Saturday && wd != time.Sunday {
					t.Errorf("%s: make-up working day %s is a %s", name, d.Date, wd)
				}
			}
		}
		if makeUp == 0 {
			t.Errorf("%s: no make-up working days", name)
		}
	}
}

func TestIsWorkingDay(t *testing.T) {
	c := newCalendar(t)
	tests := []struct {
		date           string
		working, known bool
	}{
		{"2026-10-01", false, true}, // Thursday, 国庆节
		{"2026-10-07", false, true}, // Wednesday, 国庆节
		{"2026-10-08", true, true},  // Thursday, back to work
		{"2026-10-10", true, true},  // Saturday, make-up working day
		{"2026-10-11", false, true}, // Sunday, unlisted
		{"2026-10-12", true, true},  // Monday, unlisted
		{"2026-09-20", true, true},  // Sunday, make-up working day
		{"2026-09-25", false, true}, // Friday, 中秋节
		{"2026-02-14", true, true},  // Saturday, make-up before 春节
		{"2026-02-23", false, true}, // Monday, last day of 春节
		{"2025-01-26", true, true},  // Sunday, make-up before 春节
		{"2025-01-27", true, true},  // Monday, unlisted: 春节 starts on the 28th
		{"2025-01-28", false, true}, // 春节
		{"2025-10-08", false, true}, // Wednesday, 国庆节、中秋节
		{"2025-10-11", true, true},  // Saturday, make-up
		{"2027-01-04", true, false}, // Monday in an unloaded year
		{"2027-01-02", false, false},
		{"2024-10-01", true, false}, // a real holiday, but 2024 is not loaded
	}
	for _, tt := range tests {
		working, known := c.IsWorkingDay(day(tt.date))
		if working != tt.working || known != tt.known {
			t.Errorf("IsWorkingDay(%s) = %v, %v; want %v, %v", tt.date, working, known, tt.working, tt.known)
		}
	}
}

func TestAddWorkingDays(t *testing.T) {
	c := newCalendar(t)
	tests := []struct {
		from      string
		n         int
		want      string
		estimated bool
		why       string
	}{
		{"2026-09-25", 15, "2026-10-22", false,
			// Fri 9-25 (中秋, day 0). Sat 26, Sun 27 off. Mon 28 =1, 29 =2, 30 =3. Oct 1–7 off
			// (国庆). Thu 8 =4, Fri 9 =5, Sat 10 (make-up) =6, Sun 11 off, Mon 12 =7 … Fri 16 =11,
			// weekend, Mon 19 =12, 20 =13, 21 =14, Thu 22 =15.
			"国庆/中秋 2026 with the Oct 10 make-up Saturday"},
		{"2026-09-18", 1, "2026-09-20", false,
			// Fri 9-18. Sat 19 off. Sun 20 is a make-up working day =1.
			"make-up Sunday before 国庆 2026"},
		{"2026-09-18", 3, "2026-09-22", false, "Sun 20 =1, Mon 21 =2, Tue 22 =3"},
		{"2025-01-24", 5, "2025-02-07", false,
			// Fri 1-24. Sat 25 off. Sun 26 (make-up) =1. Mon 27 =2. Jan 28–Feb 4 off (春节).
			// Wed 5 =3, Thu 6 =4, Fri 7 =5 (Sat 8, a make-up day, is not needed).
			"春节 2025 with the Jan 26 make-up Sunday"},
		{"2025-01-24", 6, "2025-02-08", false, "… Fri 7 =5, Sat 8 (make-up) =6"},
		{"2025-09-26", 3, "2025-09-30", false, "Sat 27 off, Sun 28 (make-up) =1, Mon 29 =2, Tue 30 =3"},
		{"2025-09-30", 3, "2025-10-11", false, "Oct 1–8 off; Thu 9 =1, Fri 10 =2, Sat 11 (make-up) =3"},
		{"2025-12-31", 1, "2026-01-04", false,
			"Jan 1–3 2026 off (元旦; the 3rd is a Saturday), Sun Jan 4 is a make-up day =1"},
		{"2026-02-13", 1, "2026-02-14", false, "Sat Feb 14 is a make-up day"},
		{"2026-02-13", 2, "2026-02-24", false, "Feb 15–23 off (春节); Tue 24 =2"},
		{"2026-12-21", 15, "2027-01-11", true,
			// Mon 12-21. Tue 22 =1 … Fri 25 =4, Mon 28 =5 … Thu 31 =8. 2027 is not loaded:
			// Fri Jan 1 counts as a weekday =9, Mon 4 =10 … Fri 8 =14, Mon 11 =15.
			"crossing into 2027, which is not loaded"},
		{"2026-12-30", 1, "2026-12-31", false, "does not reach 2027"},
		{"2026-12-31", 1, "2027-01-01", true, "the first day counted is in 2027"},
		{"2024-12-31", 1, "2025-01-02", false,
			"day 0 is in 2024 (not loaded) but is not counted; Jan 1 2025 off, Thu 2 =1"},
		{"2026-10-01", 0, "2026-10-01", false, "n = 0: the same day, even a holiday"},
		{"2026-10-01", -3, "2026-10-01", false, "n < 0: the same day"},
	}
	for _, tt := range tests {
		got, estimated := c.AddWorkingDays(day(tt.from), tt.n)
		if got != tt.want || estimated != tt.estimated {
			t.Errorf("AddWorkingDays(%s, %d) = %s, %v; want %s, %v (%s)", tt.from, tt.n, got, estimated, tt.want, tt.estimated, tt.why)
		}
	}
}

func TestAddWorkingDaysCountsFromTheDateInShanghai(t *testing.T) {
	c := newCalendar(t)
	tests := []struct {
		t    time.Time
		n    int
		want string
	}{
		// 2026-10-08 23:30 UTC is Oct 9 07:30 in Shanghai: day 0 is Fri Oct 9, so day 1 is
		// the make-up Saturday Oct 10. Counting from Oct 8 would give Oct 9.
		{time.Date(2026, 10, 8, 23, 30, 0, 0, time.UTC), 1, "2026-10-10"},
		// Sat 10 =1, Mon 12 =2, 13 =3, 14 =4, Thu 15 =5.
		{time.Date(2026, 10, 8, 23, 30, 0, 0, time.UTC), 5, "2026-10-15"},
		// 15:59 UTC is still Oct 8 (23:59) in Shanghai.
		{time.Date(2026, 10, 8, 15, 59, 0, 0, time.UTC), 1, "2026-10-09"},
		// A time in another zone: Oct 8 12:00 at UTC−5 is Oct 9 01:00 in Shanghai.
		{time.Date(2026, 10, 8, 12, 0, 0, 0, time.FixedZone("", -5*3600)), 1, "2026-10-10"},
		// n = 0 gives the Shanghai date too.
		{time.Date(2026, 10, 8, 23, 30, 0, 0, time.UTC), 0, "2026-10-09"},
	}
	for _, tt := range tests {
		if got, _ := c.AddWorkingDays(tt.t, tt.n); got != tt.want {
			t.Errorf("AddWorkingDays(%s, %d) = %s, want %s", tt.t, tt.n, got, tt.want)
		}
	}
}

func TestAddYearMakesLaterYearsExact(t *testing.T) {
	c := newCalendar(t)
	from := day("2026-12-21")
	if got, est := c.AddWorkingDays(from, 15); got != "2027-01-11" || !est {
		t.Fatalf("before AddYear: %s, %v", got, est)
	}
	if err := c.AddYear([]byte(fake2027)); err != nil {
		t.Fatal(err)
	}
	if got := c.Years(); !slices.Equal(got, []int{2025, 2026, 2027}) {
		t.Errorf("Years() = %v", got)
	}
	// With Jan 1 2027 a holiday: … Thu Dec 31 =8, Jan 1 off, Mon 4 =9 … Fri 8 =13,
	// Mon 11 =14, Tue 12 =15.
	if got, est := c.AddWorkingDays(from, 15); got != "2027-01-12" || est {
		t.Errorf("after AddYear: %s, %v; want 2027-01-12, false", got, est)
	}
	if working, known := c.IsWorkingDay(day("2027-01-01")); working || !known {
		t.Errorf("IsWorkingDay(2027-01-01) = %v, %v", working, known)
	}
}

// TestEstimatedWhenOnlyAnUnknownWeekendWasSkipped: a weekend in a year that is not loaded
// might have been a make-up working day, so skipping it makes the answer an estimate too.
func TestEstimatedWhenOnlyAnUnknownWeekendWasSkipped(t *testing.T) {
	c := newCalendar(t)
	// 2023 as announced: 元旦 Dec 31 2022 – Jan 2 2023. 2022 itself is not loaded.
	if err := c.AddYear([]byte(`{"year": 2023, "days": [
		{"name": "元旦", "date": "2023-01-01", "isOffDay": true},
		{"name": "元旦", "date": "2023-01-02", "isOffDay": true}]}`)); err != nil {
		t.Fatal(err)
	}
	// Fri 2022-12-30 (day 0). Sat 31 (2022: unknown, off by weekend rule), Sun Jan 1 and
	// Mon Jan 2 off (2023), Tue Jan 3 =1. No working day was counted in 2022.
	if got, est := c.AddWorkingDays(day("2022-12-30"), 1); got != "2023-01-03" || !est {
		t.Errorf("AddWorkingDays(2022-12-30, 1) = %s, %v; want 2023-01-03, true", got, est)
	}
	// From the Saturday itself nothing in 2022 is examined: exact.
	if got, est := c.AddWorkingDays(day("2022-12-31"), 1); got != "2023-01-03" || est {
		t.Errorf("AddWorkingDays(2022-12-31, 1) = %s, %v; want 2023-01-03, false", got, est)
	}
}

func TestAddYearReplacesAYear(t *testing.T) {
	c := newCalendar(t)
	// A corrected 2026 that lists only New Year's Day: the October holidays are gone.
	if err := c.AddYear([]byte(`{"year": 2026, "days": [{"name": "元旦", "date": "2026-01-01", "isOffDay": true}]}`)); err != nil {
		t.Fatal(err)
	}
	if got := c.Years(); !slices.Equal(got, []int{2025, 2026}) {
		t.Errorf("Years() = %v", got)
	}
	if working, known := c.IsWorkingDay(day("2026-10-01")); !working || !known {
		t.Errorf("2026-10-01 after replacing 2026: %v, %v; want a plain working Thursday", working, known)
	}
	if working, _ := c.IsWorkingDay(day("2026-10-10")); working {
		t.Error("2026-10-10: the old make-up Saturday survived the replacement")
	}
}

func TestAddYearRejectsBadInput(t *testing.T) {
	bad := map[string]string{
		"not JSON":         `{"year": 2027, "days": [`,
		"not an object":    `[1, 2]`,
		"no year":          `{"days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true}]}`,
		"year as string":   `{"year": "2027", "days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true}]}`,
		"implausible year": `{"year": 20277, "days": [{"name": "元旦", "date": "20277-01-01", "isOffDay": true}]}`,
		"no days":          `{"year": 2027}`,
		"empty days":       `{"year": 2027, "days": []}`,
		"date in 2026":     `{"year": 2027, "days": [{"name": "元旦", "date": "2026-12-31", "isOffDay": true}]}`,
		"short date":       `{"year": 2027, "days": [{"name": "元旦", "date": "2027-1-1", "isOffDay": true}]}`,
		"slashes":          `{"year": 2027, "days": [{"name": "元旦", "date": "2027/01/01", "isOffDay": true}]}`,
		"impossible date":  `{"year": 2027, "days": [{"name": "春节", "date": "2027-02-30", "isOffDay": true}]}`,
		"timestamp":        `{"year": 2027, "days": [{"name": "元旦", "date": "2027-01-01T00:00:00Z", "isOffDay": true}]}`,
		"no date":          `{"year": 2027, "days": [{"name": "元旦", "isOffDay": true}]}`,
		"no isOffDay":      `{"year": 2027, "days": [{"name": "元旦", "date": "2027-01-01"}]}`,
		"duplicate": `{"year": 2027, "days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true},
			{"name": "元旦", "date": "2027-01-01", "isOffDay": false}]}`,
	}
	for name, data := range bad {
		c := newCalendar(t)
		err := c.AddYear([]byte(data))
		var qe *qingfeng.Error
		if !errors.As(err, &qe) || qe.Code != qingfeng.EINVALID || qe.Message == "" {
			t.Errorf("%s: err = %v, want an EINVALID *qingfeng.Error", name, err)
		}
		// A rejected file leaves the calendar as it was.
		if got := c.Years(); !slices.Equal(got, []int{2025, 2026}) {
			t.Errorf("%s: Years() = %v after a rejected AddYear", name, got)
		}
	}
	// The messages say what is wrong, in Chinese.
	err := newCalendar(t).AddYear([]byte(bad["duplicate"]))
	if !strings.Contains(err.(*qingfeng.Error).Message, "2027-01-01重复") {
		t.Errorf("duplicate: message %q", err.(*qingfeng.Error).Message)
	}
}

func TestZeroCalendarEstimatesEverything(t *testing.T) {
	var c Calendar
	if got, est := c.AddWorkingDays(day("2026-09-25"), 15); got != "2026-10-16" || !est {
		// Weekends only: Mon 28 =1 … Fri Oct 2 =5 … Fri 9 =10 … Fri 16 =15.
		t.Errorf("zero Calendar: %s, %v; want 2026-10-16, true", got, est)
	}
	if err := c.AddYear([]byte(fake2027)); err != nil {
		t.Fatal(err)
	}
	if got := c.Years(); !slices.Equal(got, []int{2027}) {
		t.Errorf("Years() = %v", got)
	}
}

func TestWorkingDaysBetween(t *testing.T) {
	c := newCalendar(t)
	tests := []struct {
		a, b string
		want int
	}{
		{"2026-09-25", "2026-10-22", 15},
		{"2026-10-22", "2026-09-25", -15},
		{"2026-09-25", "2026-09-25", 0},
		{"2026-10-01", "2026-10-07", 0}, // all 国庆节
		{"2026-10-09", "2026-10-11", 1}, // Sat 10 (make-up) counts, Sun 11 does not
		{"2025-01-24", "2025-02-07", 5},
		{"2026-12-31", "2027-01-04", 2}, // 2027 by weekends: Fri 1, Mon 4
	}
	for _, tt := range tests {
		if got := c.WorkingDaysBetween(day(tt.a), day(tt.b)); got != tt.want {
			t.Errorf("WorkingDaysBetween(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	// Shanghai dates: 2026-10-08 23:30 UTC is already Oct 9.
	if got := c.WorkingDaysBetween(time.Date(2026, 10, 8, 23, 30, 0, 0, time.UTC), day("2026-10-10")); got != 1 {
		t.Errorf("WorkingDaysBetween from Oct 8 23:30 UTC to Oct 10 = %d, want 1", got)
	}
}

// TestWorkingDaysBetweenInvertsAddWorkingDays checks every start day of the loaded years
// against deadlines of 1 to 20 working days.
func TestWorkingDaysBetweenInvertsAddWorkingDays(t *testing.T) {
	c := newCalendar(t)
	for d := day("2025-01-01"); d.Year() < 2027; d = d.AddDate(0, 0, 1) {
		for n := 1; n <= 20; n++ {
			due, _ := c.AddWorkingDays(d, n)
			dueDay := day(due)
			if working, _ := c.IsWorkingDay(dueDay); !working {
				t.Fatalf("AddWorkingDays(%s, %d) = %s, not a working day", d.Format(time.DateOnly), n, due)
			}
			if got := c.WorkingDaysBetween(d, dueDay); got != n {
				t.Fatalf("WorkingDaysBetween(%s, %s) = %d, want %d", d.Format(time.DateOnly), due, got, n)
			}
		}
	}
}

func TestCalendarConcurrentUse(t *testing.T) {
	c := newCalendar(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				if i%2 == 0 && j%20 == 0 {
					if err := c.AddYear([]byte(fake2027)); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				got, _ := c.AddWorkingDays(day("2026-09-25"), 15)
				if got != "2026-10-22" {
					t.Errorf("concurrent AddWorkingDays = %s", got)
					return
				}
				c.IsWorkingDay(day("2027-01-01"))
				c.WorkingDaysBetween(day("2026-12-01"), day("2027-02-01"))
				_ = c.Years()
			}
		})
	}
	wg.Wait()
}

func ExampleCalendar_AddWorkingDays() {
	cal, err := NewCalendar()
	if err != nil {
		panic(err)
	}
	received := time.Date(2026, 9, 25, 10, 0, 0, 0, Shanghai()) // 中秋节, a holiday
	due, estimated := cal.AddWorkingDays(received, 15)
	fmt.Println(due, estimated)
	// Output: 2026-10-22 false
}

// TestShanghaiIsUTCPlus8 holds whichever zone was picked (the named one or the fixed
// fallback) to the offset the deadlines rely on.
func TestShanghaiIsUTCPlus8(t *testing.T) {
	for _, d := range []string{"2025-01-01", "2026-07-01", "2026-12-31"} {
		if _, off := day(d).In(Shanghai()).Zone(); off != 8*3600 {
			t.Errorf("%s: Asia/Shanghai offset %d s, want 28800", d, off)
		}
	}
}
