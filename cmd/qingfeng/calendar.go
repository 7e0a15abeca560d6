package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// calendarAdmin implements handlers.CalendarAdmin: a year is checked, stored, then
// loaded, so every instance (and the next start) has it.
type calendarAdmin struct {
	cal   *triage.Calendar
	store triage.CalendarStore
}

func (a calendarAdmin) Years() []int { return a.cal.Years() }

func (a calendarAdmin) AddYear(ctx context.Context, data []byte, by string) (int, error) {
	year, err := triage.CheckYear(data)
	if err != nil {
		return 0, err
	}
	if err := a.store.PutYear(ctx, year, data, by); err != nil {
		return 0, err
	}
	return year, a.cal.AddYear(data)
}

// loadCalendarYears loads the years admins added into cal (over the embedded ones).
func loadCalendarYears(ctx context.Context, store triage.CalendarStore, cal *triage.Calendar) error {
	years, err := store.Years(ctx)
	if err != nil {
		return err
	}
	for _, y := range years {
		if err := cal.AddYear([]byte(y.Data)); err != nil {
			return fmt.Errorf("stored calendar %d: %w", y.Year, err)
		}
	}
	return nil
}

// calendarCommand is `qingfeng calendar add FILE`: load a year's holiday calendar (the
// holiday-cn JSON format) into the configured database, for every instance.
func calendarCommand(cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("calendar", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 || fs.Arg(0) != "add" {
		fmt.Fprintln(stderr, "usage: qingfeng calendar add FILE.json   (a year in the holiday-cn format)")
		return 2
	}
	data, err := os.ReadFile(fs.Arg(1))
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng calendar:", err)
		return 1
	}
	if _, err := triage.CheckYear(data); err != nil {
		var qe *qingfeng.Error
		if errors.As(err, &qe) {
			fmt.Fprintf(stderr, "qingfeng calendar: %s (%s)\n", qe.Message, qe.English)
		} else {
			fmt.Fprintln(stderr, "qingfeng calendar:", err)
		}
		return 1
	}
	ctx := context.Background()
	m := &Main{Config: cfg, Log: log}
	defer m.Close()
	if err := m.openDatabase(ctx); err != nil {
		fmt.Fprintln(stderr, "qingfeng calendar:", err)
		return 1
	}
	cal, err := triage.NewCalendar()
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng calendar:", err)
		return 1
	}
	year, err := calendarAdmin{cal: cal, store: m.st.calendar}.AddYear(ctx, data, "cli")
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng calendar:", err)
		return 1
	}
	fmt.Fprintf(stdout, "calendar %d stored; running servers load it within about 3 minutes, new ones at start\n", year)
	return 0
}
