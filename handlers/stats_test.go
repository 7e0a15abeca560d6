package handlers

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/audit/audittest"
	"github.com/qingfeng-zj/qingfeng/stats"
)

// fakeStats serves rows, then fails with err (if set) after failAfter rows.
type fakeStats struct {
	rows      []stats.ExportRow
	failAfter int
	err       error
	exported  bool
	got       stats.Filter
}

func (f *fakeStats) Stats(_ context.Context, flt stats.Filter) (stats.Stats, error) {
	f.got = flt
	if f.err != nil {
		return stats.Stats{}, f.err
	}
	t := stats.NewTally(time.Now())
	return t.Result(), nil
}

func (f *fakeStats) ExportCases(_ context.Context, flt stats.Filter, fn func(stats.ExportRow) error) error {
	f.exported, f.got = true, flt
	for i, r := range f.rows {
		if f.err != nil && i == f.failAfter {
			return f.err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if f.err != nil && f.failAfter >= len(f.rows) {
		return f.err
	}
	return nil
}

// failingAudit refuses every entry.
type failingAudit struct{ *audittest.MemStore }

func (failingAudit) Append(context.Context, audit.Entry) error { return errors.New("audit store down") }

// statsApp serves the two handlers to a signed-in user, without the account service.
func statsApp(t *testing.T, src stats.Source, store audit.Store, user *accounts.User) *fiber.App {
	t.Helper()
	s := &Server{d: Deps{Stats: src, Audit: &audit.Log{Store: store}, Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		UnitName: func(id string) (string, bool) { return "", id == "330782-mz" || id == "330783-mz" }}}
	app := fiber.New(fiber.Config{ErrorHandler: s.handleError})
	signIn := func(c fiber.Ctx) error {
		c.Locals(principalKey{}, &principal{user: user})
		return c.Next()
	}
	app.Get("/v1/stats", signIn, s.caseStats)
	app.Get("/v1/stats/cases.csv", signIn, s.casesCSV)
	return app
}

func get(t *testing.T, app *fiber.App, path string) (int, string, []byte, error) {
	t.Helper()
	resp, err := app.Test(httptest.NewRequest("GET", path, nil))
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body, err
}

var exportRows = []stats.ExportRow{
	{Number: "QF-330782-2026-000001", Category: "arbitrary_fees", Division: "330782001", Status: "registered", UnitID: "330782-mz",
		RealName: true, ReceivedAt: time.Date(2026, 1, 31, 17, 0, 0, 0, time.UTC), AcceptanceDue: "2026-02-10", Overdue: []string{"acceptance", "transfer"}},
	{Number: "QF-330782-2026-000002", Category: "=cmd|' /C calc'!A0", Division: "330782", Status: "accepted", UnitID: "330782-mz"},
}

func TestCasesCSV(t *testing.T) {
	staff := &accounts.User{ID: "u-staff", Role: accounts.RoleStaff, UnitID: "330782-mz"}

	t.Run("rows", func(t *testing.T) {
		src, store := &fakeStats{rows: exportRows}, audittest.NewMemStore()
		status, ct, body, err := get(t, statsApp(t, src, store, staff), "/v1/stats/cases.csv?from=2026-01-01&to=2026-01-31")
		if err != nil || status != 200 || ct != "text/csv; charset=utf-8" {
			t.Fatalf("%d %s %v: %s", status, ct, err, body)
		}
		if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
			t.Errorf("no byte order mark: %q", body[:min(10, len(body))])
		}
		recs, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{stats.CSVHeader(),
			{"QF-330782-2026-000001", "arbitrary_fees", "330782001", "registered", "330782-mz", "true", "2026-02-01 01:00:00", "2026-02-10", "", "acceptance;transfer"},
			{"QF-330782-2026-000002", "'=cmd|' /C calc'!A0", "330782", "accepted", "330782-mz", "false", "", "", "", ""}}
		if len(recs) != len(want) {
			t.Fatalf("records %q", recs)
		}
		for i := range want {
			if strings.Join(recs[i], ",") != strings.Join(want[i], ",") {
				t.Errorf("record %d: %q, want %q", i, recs[i], want[i])
			}
		}
		// The staff member's unit, from the start of 1 January to the end of 31 January
		// in Asia/Shanghai.
		if src.got.UnitID != "330782-mz" || !src.got.From.Equal(time.Date(2025, 12, 31, 16, 0, 0, 0, time.UTC)) ||
			!src.got.To.Equal(time.Date(2026, 1, 31, 16, 0, 0, 0, time.UTC)) {
			t.Errorf("filter %+v", src.got)
		}
		if len(store.Entries) != 1 || store.Entries[1].Action != "stats.export" || store.Entries[1].Actor != "u-staff" ||
			store.Entries[1].Detail["unit"] != "330782-mz" || store.Entries[1].Detail["from"] != "2026-01-01" {
			t.Errorf("audit %+v", store.Entries)
		}
	})

	t.Run("no cases: the header alone", func(t *testing.T) {
		status, _, body, err := get(t, statsApp(t, &fakeStats{}, audittest.NewMemStore(), staff), "/v1/stats/cases.csv")
		if err != nil || status != 200 || string(body) != "\uFEFF"+strings.Join(stats.CSVHeader(), ",")+"\n" {
			t.Errorf("%d %v: %q", status, err, body)
		}
	})

	t.Run("audit down: nothing exported", func(t *testing.T) {
		src := &fakeStats{rows: exportRows}
		status, ct, body, _ := get(t, statsApp(t, src, failingAudit{audittest.NewMemStore()}, staff), "/v1/stats/cases.csv")
		if status != 500 || !strings.HasPrefix(ct, "application/json") || src.exported || bytes.Contains(body, []byte("QF-")) {
			t.Errorf("%d %s exported=%v: %s", status, ct, src.exported, body)
		}
	})

	t.Run("database down before the first row: an error response", func(t *testing.T) {
		src := &fakeStats{rows: exportRows, err: qingfeng.Errorf(qingfeng.EUNAVAILABLE, "不可用", "unavailable")}
		status, ct, body, _ := get(t, statsApp(t, src, audittest.NewMemStore(), staff), "/v1/stats/cases.csv")
		if status != 503 || !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%d %s: %s", status, ct, body)
		}
	})

	t.Run("database down after a row: not a whole file", func(t *testing.T) {
		src := &fakeStats{rows: exportRows, err: errors.New("cursor lost"), failAfter: 1}
		status, _, body, err := get(t, statsApp(t, src, audittest.NewMemStore(), staff), "/v1/stats/cases.csv")
		// The response is cut short (no final chunk): reading it fails, so that a
		// partial export cannot pass for a whole one.
		if err == nil {
			t.Errorf("%d: a partial export read as complete: %q", status, body)
		}
		if bytes.Contains(body, []byte("cursor lost")) || err != nil && strings.Contains(err.Error(), "cursor lost") {
			t.Errorf("the cause reached the client: %v %q", err, body)
		}
		t.Logf("status %d, err %v, body %q", status, err, body)
	})
}

func TestStatsScope(t *testing.T) {
	admin := &accounts.User{ID: "u-admin", Role: accounts.RoleAdmin}
	staff := &accounts.User{ID: "u-staff", Role: accounts.RoleStaff, UnitID: "330782-mz"}
	unitless := &accounts.User{ID: "u-none", Role: accounts.RoleStaff}
	liaison := &accounts.User{ID: "u-liaison", Role: accounts.RoleLiaison, Division: "330782"}
	tests := []struct {
		name     string
		user     *accounts.User
		query    string
		status   int
		wantUnit string
	}{
		{"admin, every unit", admin, "", 200, ""},
		{"admin, one unit", admin, "?unit=330783-mz", 200, "330783-mz"},
		{"admin, unknown unit", admin, "?unit=nowhere", 400, ""},
		{"staff, own unit", staff, "", 200, "330782-mz"},
		{"staff, own unit named", staff, "?unit=330782-mz", 200, "330782-mz"},
		{"staff, another unit", staff, "?unit=330783-mz", 403, ""},
		{"staff without a unit", unitless, "", 403, ""},
		{"liaison", liaison, "", 403, ""},
		{"bad date", staff, "?from=2026-02-30", 400, ""},
		{"not a date", staff, "?to=20260101", 400, ""},
		{"from after to", staff, "?from=2026-03-02&to=2026-03-01", 400, ""},
		{"one day", staff, "?from=2026-03-01&to=2026-03-01", 200, "330782-mz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/stats", "/v1/stats/cases.csv"} {
				src, store := &fakeStats{}, audittest.NewMemStore()
				status, _, body, err := get(t, statsApp(t, src, store, tt.user), path+tt.query)
				if err != nil || status != tt.status {
					t.Fatalf("%s: %d %v: %s", path, status, err, body)
				}
				if status == 200 && src.got.UnitID != tt.wantUnit {
					t.Errorf("%s: counted unit %q, want %q", path, src.got.UnitID, tt.wantUnit)
				}
				if audited := len(store.Entries) == 1; audited != (status == 200) {
					t.Errorf("%s: %d audit entries for status %d", path, len(store.Entries), status)
				}
			}
		})
	}
}

func TestStatsView(t *testing.T) {
	src := &fakeStats{}
	status, _, body, err := get(t, statsApp(t, src, audittest.NewMemStore(), &accounts.User{ID: "a", Role: accounts.RoleAdmin}), "/v1/stats")
	if err != nil || status != 200 {
		t.Fatalf("%d %v", status, err)
	}
	// Nothing decided yet: the rates are null, not 0.
	want := `{"total":0,"by_category":{},"by_division":{},"by_status":{},"by_month":{},"on_time":{"acceptance":{"due":0,"met":0,"missed":0,"pending":0,"rate":null},"feedback":{"due":0,"met":0,"missed":0,"pending":0,"rate":null}}}`
	if string(body) != want {
		t.Errorf("body\n%s, want\n%s", body, want)
	}
}
