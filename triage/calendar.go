// Package triage is a case's workflow after intake: states, dispositions, deadlines,
// transfers; this file is its working-day calendar.
//
// Deadlines in 《纪检监察机关处理检举控告工作规则》 are counted in working days on China's
// official calendar: weekends are off, statutory holidays are off, and some weekend days
// are working days (调休) to make up for a long holiday. The State Council announces each
// year's calendar, usually in November, so the calendar embeds the years known at build
// time and accepts later ones at run time (Calendar.AddYear).
package triage

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

//go:embed holidays/*.json
var holidayFS embed.FS

// shanghai is the zone deadlines are counted in.
var shanghai = qingfeng.Shanghai // the one definition of the zone

// Shanghai returns the time zone working days are counted in (Asia/Shanghai), e.g. to parse
// a YYYY-MM-DD deadline back into a time.
func Shanghai() *time.Location { return shanghai }

// dayKind is what a year's file says about one date.
type dayKind uint8

const (
	unlisted      dayKind = iota // not in the file: Monday–Friday work, weekends are off
	listedOff                    // a holiday (isOffDay: true)
	listedWorking                // a make-up working day (isOffDay: false), usually a weekend
)

// yearTable holds one year's listed days, indexed by day of the year (1–366).
type yearTable [367]dayKind

// Calendar is China's working-day calendar for the years it has loaded. It is safe for
// concurrent use; AddYear may run while other goroutines compute deadlines. The zero value
// is usable and knows no years (every day is then estimated from weekends).
type Calendar struct {
	mu    sync.RWMutex
	years map[int]*yearTable
}

var _ intake.Calendar = (*Calendar)(nil)

// NewCalendar returns a calendar with the years embedded at build time (2025 and 2026).
func NewCalendar() (*Calendar, error) {
	c := &Calendar{}
	names, err := fs.Glob(holidayFS, "holidays/*.json")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		data, err := holidayFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if err := c.AddYear(data); err != nil {
			return nil, fmt.Errorf("triage: embedded %s: %w", name, err)
		}
	}
	if len(c.years) == 0 {
		return nil, fmt.Errorf("triage: no embedded holiday calendars")
	}
	return c, nil
}

// yearFile is the holiday-cn JSON format. Pointers tell a missing field from a zero value:
// a missing isOffDay must not silently mean "working day".
type yearFile struct {
	Year *int `json:"year"`
	Days []struct {
		Name     string `json:"name"`
		Date     string `json:"date"`
		IsOffDay *bool  `json:"isOffDay"`
	} `json:"days"`
}

// AddYear loads one year's calendar in the holiday-cn format used by the embedded files:
// {"year": 2027, "days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true}, ...]}.
// Every entry must have a YYYY-MM-DD date in that year and an isOffDay flag, and no date may
// appear twice. A year that is already loaded is replaced as a whole, so a corrected notice
// can be loaded over the first one. On error the calendar is unchanged; the error is an
// EINVALID *qingfeng.Error.
func (c *Calendar) AddYear(data []byte) error {
	year, table, err := parseYear(data)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.years == nil {
		c.years = map[int]*yearTable{}
	}
	c.years[year] = table
	return nil
}

// CheckYear validates a year's calendar without loading it and returns its year.
func CheckYear(data []byte) (int, error) {
	year, _, err := parseYear(data)
	return year, err
}

func parseYear(data []byte) (int, *yearTable, error) {
	invalid := func(zh, en string, err error) (int, *yearTable, error) {
		return 0, nil, &qingfeng.Error{Code: qingfeng.EINVALID, Message: zh, English: en, Err: err}
	}
	var f yearFile
	if err := json.Unmarshal(data, &f); err != nil {
		return invalid("节假日数据不是有效的JSON", "the holiday calendar is not valid JSON", err)
	}
	if f.Year == nil {
		return invalid("节假日数据缺少年份（year）", "the holiday calendar has no year", nil)
	}
	year := *f.Year
	// A plausible range catches typos such as 20277 without limiting real use.
	if year < 2000 || year > 2199 {
		return invalid(fmt.Sprintf("节假日数据的年份%d不在2000至2199之间", year),
			fmt.Sprintf("year %d is outside 2000–2199", year), nil)
	}
	// Every announced year has holidays; an empty list is a broken file, and loading it
	// would make every weekday of the year a working day.
	if len(f.Days) == 0 {
		return invalid(fmt.Sprintf("%d年节假日数据没有任何日期", year),
			fmt.Sprintf("the %d holiday calendar lists no days", year), nil)
	}
	table := new(yearTable)
	for i, d := range f.Days {
		t, err := time.Parse(time.DateOnly, d.Date)
		if err != nil || len(d.Date) != len(time.DateOnly) {
			return invalid(fmt.Sprintf("第%d条日期“%s”格式有误，应为YYYY-MM-DD", i+1, d.Date),
				fmt.Sprintf("entry %d: date %q is not YYYY-MM-DD", i+1, d.Date), err)
		}
		if t.Year() != year {
			return invalid(fmt.Sprintf("第%d条日期%s不属于%d年", i+1, d.Date, year),
				fmt.Sprintf("entry %d: %s is not in %d", i+1, d.Date, year), nil)
		}
		if d.IsOffDay == nil {
			return invalid(fmt.Sprintf("第%d条（%s）缺少isOffDay", i+1, d.Date),
				fmt.Sprintf("entry %d (%s) has no isOffDay", i+1, d.Date), nil)
		}
		if table[t.YearDay()] != unlisted {
			return invalid(fmt.Sprintf("日期%s重复出现", d.Date),
				fmt.Sprintf("%s is listed twice", d.Date), nil)
		}
		if *d.IsOffDay {
			table[t.YearDay()] = listedOff
		} else {
			table[t.YearDay()] = listedWorking
		}
	}
	return year, table, nil
}

// Years lists the loaded years in order.
func (c *Calendar) Years() []int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.years))
}

// dateOf returns the calendar date of t in Asia/Shanghai as midnight UTC, a form that date
// arithmetic (AddDate) and YearDay work on without any zone surprises.
func dateOf(t time.Time) time.Time {
	y, m, d := t.In(shanghai).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// isWorking reports whether a date (from dateOf) is a working day, and whether its year is
// loaded. For a year that is not, it falls back to weekends only. Callers hold c.mu.
func (c *Calendar) isWorking(day time.Time) (working, known bool) {
	weekday := day.Weekday() != time.Saturday && day.Weekday() != time.Sunday
	table, ok := c.years[day.Year()]
	if !ok {
		return weekday, false
	}
	switch table[day.YearDay()] {
	case listedOff:
		return false, true
	case listedWorking:
		return true, true
	}
	return weekday, true
}

// IsWorkingDay reports whether the date of d in Asia/Shanghai is a working day. A listed
// day follows its isOffDay flag; an unlisted Monday–Friday is a working day and an
// unlisted Saturday or Sunday is not. known is false when d's year is not loaded: working
// then reflects weekends only.
func (c *Calendar) IsWorkingDay(d time.Time) (working bool, known bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.isWorking(dateOf(d))
}

// AddWorkingDays returns the date (YYYY-MM-DD) of the n-th working day after the day of t
// in Asia/Shanghai: the day of t is day 0 whether or not it is a working day, so a report
// received on a holiday starts counting from the next working day. estimated is true when a
// day it examined lies in a year that is not loaded, where only weekends were counted off.
// For n ≤ 0 it returns the day of t itself.
func (c *Calendar) AddWorkingDays(t time.Time, n int) (date string, estimated bool) {
	day := dateOf(t)
	c.mu.RLock()
	defer c.mu.RUnlock()
	for counted := 0; counted < n; {
		day = day.AddDate(0, 0, 1)
		working, known := c.isWorking(day)
		if !known {
			estimated = true
		}
		if working {
			counted++
		}
	}
	return day.Format(time.DateOnly), estimated
}

// WorkingDaysBetween counts the working days after the day of a up to and including the day
// of b (both in Asia/Shanghai), so that WorkingDaysBetween(t, d) == n for the date d that
// AddWorkingDays(t, n) returns. It is negative when b's day is before a's, and 0 on the same
// day. It measures how much of an allowance is used (say 12 of 15 working days); whether a
// deadline has passed is better told by comparing today's date with the date AddWorkingDays
// gave, which also catches the weekend right after a missed Friday deadline. Days in years
// that are not loaded count by weekends only.
func (c *Calendar) WorkingDaysBetween(a, b time.Time) int {
	from, to := dateOf(a), dateOf(b)
	sign := 1
	if to.Before(from) {
		from, to, sign = to, from, -1
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for day := from.AddDate(0, 0, 1); !day.After(to); day = day.AddDate(0, 0, 1) {
		if working, _ := c.isWorking(day); working {
			n++
		}
	}
	return sign * n
}
