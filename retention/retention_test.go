package retention

import (
	"strconv"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// The purge itself is tested against a real database and object store in
// storage/mongo (retention_test.go); these are its pure parts.

func TestParsePeriod(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{" 0 ", 0, false},
		{"0s", 0, false},
		{"0y", 0, false},
		{"0d", 0, false},
		{"1y", 366 * day, false},
		{"4y", 1461 * day, false},
		{"5y", 1827 * day, false}, // 5×365 + 2: never shorter than five calendar years
		{"10y", 3653 * day, false},
		{"30d", 30 * day, false},
		{"1d", day, false},
		{"43800h", 43800 * time.Hour, false},
		{"24h", day, false},
		{"200y", (365*200 + 50) * day, false},
		{"201y", 0, true},
		{"6m", 0, true}, // six minutes, not six months
		{"23h", 0, true},
		{"-1y", 0, true},
		{"-5h", 0, true},
		{"y", 0, true},
		{"d", 0, true},
		{"1.5y", 0, true},
		{"5 y", 0, true},
		{"five years", 0, true},
		{"99999999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePeriod(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// A period of N years covers N calendar years from any day, leap days included.
func TestParsePeriodCoversCalendarYears(t *testing.T) {
	for n := 1; n <= 30; n++ {
		d, err := ParsePeriod(strconv.Itoa(n) + "y")
		if err != nil {
			t.Fatal(err)
		}
		for start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC); start.Year() < 2029; start = start.AddDate(0, 0, 1) {
			if end := start.AddDate(n, 0, 0); start.Add(d).Before(end) {
				t.Fatalf("%dy from %s ends %s, before %s", n, start.Format(time.DateOnly), start.Add(d).Format(time.DateOnly), end.Format(time.DateOnly))
			}
		}
	}
}

func TestLastClosed(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &intake.Case{Transitions: []intake.Transition{
		{Action: "close", To: intake.StatusClosed, At: t0},
		{Action: "reopen", To: intake.StatusAccepted, At: t0.Add(time.Hour)},
		{Action: "close", To: intake.StatusClosed, At: t0.Add(2 * time.Hour)},
		{Action: "assign", At: t0.Add(3 * time.Hour)},
	}}
	if at, ok := LastClosed(c); !ok || !at.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("LastClosed = %v, %v", at, ok)
	}
	if _, ok := LastClosed(&intake.Case{}); ok {
		t.Error("a case without steps has a close time")
	}
}

func TestObjectKeys(t *testing.T) {
	got := ObjectKeys([]intake.Evidence{{ObjectKey: "a", OriginalKey: "a.orig"}, {ObjectKey: "b"}, {}})
	if len(got) != 3 || got[0] != "a" || got[1] != "a.orig" || got[2] != "b" {
		t.Errorf("ObjectKeys = %q", got)
	}
}
