package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/triage"
)

// Calendar is the suite every triage.CalendarStore passes.
func Calendar(t *testing.T, newStore func(t *testing.T) triage.CalendarStore) {
	run(t, newStore, []scenario[triage.CalendarStore]{
		{"PutAndReplace", testCalendarPutAndReplace},
	})
}

func testCalendarPutAndReplace(t *testing.T, s triage.CalendarStore) {
	ctx := context.Background()
	if ys, err := s.Years(ctx); err != nil || len(ys) != 0 {
		t.Fatalf("Years on empty = %v, %v", ys, err)
	}
	before := time.Now().Add(-time.Second)
	// Out of order, and 2027 twice: the second replaces the first.
	for _, y := range []struct {
		year int
		data string
		by   string
	}{
		{2028, `{"year":2028,"days":[]}`, "u-admin"},
		{2027, `{"year":2027,"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true}]}`, "u-admin"},
		{2027, `{"year":2027,"days":[{"name":"春节","date":"2027-02-06","isOffDay":true}]}`, "cli"},
	} {
		if err := s.PutYear(ctx, y.year, []byte(y.data), y.by); err != nil {
			t.Fatal(err)
		}
	}
	ys, err := s.Years(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ys) != 2 || ys[0].Year != 2027 || ys[1].Year != 2028 {
		t.Fatalf("Years = %+v, want 2027 then 2028", ys)
	}
	if ys[0].Data != `{"year":2027,"days":[{"name":"春节","date":"2027-02-06","isOffDay":true}]}` || ys[0].AddedBy != "cli" {
		t.Errorf("2027 = %+v, want the replacement", ys[0])
	}
	for _, y := range ys {
		if y.AddedAt.Location() != time.UTC || y.AddedAt.Before(before) || y.AddedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("%d added at %v, want now in UTC", y.Year, y.AddedAt)
		}
	}
}
