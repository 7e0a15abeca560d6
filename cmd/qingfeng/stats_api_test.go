package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
)

type statsBody struct {
	UnitID     string           `json:"unit_id"`
	From       string           `json:"from"`
	To         string           `json:"to"`
	Total      int64            `json:"total"`
	ByCategory map[string]int64 `json:"by_category"`
	ByDivision map[string]int64 `json:"by_division"`
	ByStatus   map[string]int64 `json:"by_status"`
	ByMonth    map[string]int64 `json:"by_month"`
	OnTime     map[string]struct {
		Due     int64    `json:"due"`
		Met     int64    `json:"met"`
		Missed  int64    `json:"missed"`
		Pending int64    `json:"pending"`
		Rate    *float64 `json:"rate"`
	} `json:"on_time"`
}

func getStats(t *testing.T, token, query string) statsBody {
	t.Helper()
	r := do(t, req{method: "GET", path: "/v1/stats" + query, token: token})
	wantStatus(t, r, 200)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	var b statsBody
	r.json(t, &b)
	return b
}

// TestStatsAPI files two reports, accepts one, and checks that the counts move by
// exactly them; then the scope rules and bad input.
func TestStatsAPI(t *testing.T) {
	staff, user := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	before := getStats(t, staff, "")

	anon := anonymousReport()
	anon["category"] = "illegal_org"
	fa := fileReport(t, anon)
	fr := fileReport(t, realNameReport())
	step(t, staff, fr.CaseNumber, map[string]any{"action": "accept", "reason": "属于本单位受理范围"}, 200)

	after := getStats(t, staff, "")
	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	for _, d := range []struct {
		name          string
		before, after int64
		want          int64
	}{
		{"total", before.Total, after.Total, 2},
		{"illegal_org", before.ByCategory["illegal_org"], after.ByCategory["illegal_org"], 1},
		{"arbitrary_fees", before.ByCategory["arbitrary_fees"], after.ByCategory["arbitrary_fees"], 1},
		{"330782", before.ByDivision["330782"], after.ByDivision["330782"], 2},
		{"registered", before.ByStatus["registered"], after.ByStatus["registered"], 1},
		{"accepted", before.ByStatus["accepted"], after.ByStatus["accepted"], 1},
		{month, before.ByMonth[month], after.ByMonth[month], 2},
		// The real-name case was accepted today, before its due date; the anonymous
		// one has no acceptance deadline.
		{"acceptance due", before.OnTime["acceptance"].Due, after.OnTime["acceptance"].Due, 1},
		{"acceptance met", before.OnTime["acceptance"].Met, after.OnTime["acceptance"].Met, 1},
		{"feedback due", before.OnTime["feedback"].Due, after.OnTime["feedback"].Due, 0},
	} {
		if d.after-d.before != d.want {
			t.Errorf("%s: %d → %d, want +%d", d.name, d.before, d.after, d.want)
		}
	}
	if after.UnitID != "330782-mz" {
		t.Errorf("unit %q", after.UnitID)
	}

	// A range without cases: all zero, rates null.
	empty := getStats(t, staff, "?from=2001-01-01&to=2001-12-31")
	if empty.Total != 0 || len(empty.ByCategory) != 0 || empty.OnTime["acceptance"].Rate != nil || empty.From != "2001-01-01" {
		t.Errorf("empty range: %+v", empty)
	}
	// Administrators: every unit, or the one named, which matches what its staff see.
	all := getStats(t, admin, "")
	if all.UnitID != "" || all.Total < after.Total {
		t.Errorf("every unit: %d cases, unit %q; the unit alone has %d", all.Total, all.UnitID, after.Total)
	}
	if one := getStats(t, admin, "?unit=330782-mz"); one.Total != after.Total || one.UnitID != "330782-mz" {
		t.Errorf("admin, one unit: %+v", one)
	}

	// The export: the two cases, codes and dates only.
	r := do(t, req{method: "GET", path: "/v1/stats/cases.csv", token: staff})
	wantStatus(t, r, 200)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="qingfeng-cases-`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	if !bytes.HasPrefix(r.Body, []byte("\uFEFF")) {
		t.Fatalf("no byte order mark: %.40q", r.Body)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.Body[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "case_number,category,division,status,unit_id,real_name,received_at,acceptance_due,feedback_due,overdue" {
		t.Errorf("header %q", recs[0])
	}
	rows := map[string][]string{}
	for _, rec := range recs[1:] {
		rows[rec[0]] = rec
		if rec[4] != "330782-mz" {
			t.Errorf("another unit's case exported to staff: %q", rec)
		}
	}
	if int64(len(recs)-1) != after.Total {
		t.Errorf("%d rows, %d cases counted", len(recs)-1, after.Total)
	}
	if a := rows[fa.CaseNumber]; len(a) != 10 || a[1] != "illegal_org" || a[3] != "registered" || a[5] != "false" || a[7] != "" {
		t.Errorf("anonymous row %q", a)
	}
	if rn := rows[fr.CaseNumber]; len(rn) != 10 || rn[3] != "accepted" || rn[5] != "true" || rn[7] != fr.AcceptanceDue {
		t.Errorf("real-name row %q", rn)
	}
	// Nothing that identifies the reporter or says what the report is about.
	for _, secret := range []string{"赵六", "13900139000", "会员服务费", "没有收费依据", "义乌市某行业协会", "51330782MJ0000018J",
		"义乌市稠城街道", "属于本单位受理范围", fr.ReceiptCode, fa.ReceiptCode, user.ID} {
		if bytes.Contains(r.Body, []byte(secret)) {
			t.Errorf("the export contains %q", secret)
		}
	}

	// Both reads are in the audit log, by the staff member, with the scope.
	var actions []string
	for after := int64(0); ; {
		entries, err := srv.Audit.List(context.Background(), audit.Query{After: after, Limit: audit.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Actor == user.ID && strings.HasPrefix(e.Action, "stats.") {
				actions = append(actions, e.Action+" "+e.Detail["unit"])
			}
		}
		if len(entries) < audit.MaxLimit {
			break
		}
		after = entries[len(entries)-1].Seq
	}
	if got := strings.Join(actions, ","); got != "stats.read 330782-mz,stats.read 330782-mz,stats.read 330782-mz,stats.export 330782-mz" {
		t.Errorf("audited %s", got)
	}
}

func TestStatsAPIBadInput(t *testing.T) {
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	custodian, _ := staffLogin(t, accounts.RoleCustodian, "", "330782")
	f := fileReport(t, realNameReport())
	tests := []struct {
		name   string
		token  string
		query  string
		status int
		field  string
	}{
		{"no token", "", "", 401, ""},
		{"a follow-up token", f.FollowUpToken, "", 401, ""},
		{"liaison", liaison, "", 403, ""},
		{"custodian", custodian, "", 403, ""},
		{"staff naming another unit", staff, "?unit=330782-jw", 403, ""},
		{"not a date", staff, "?from=yesterday", 400, "from"},
		{"no such day", staff, "?to=2026-02-30", 400, "to"},
		{"no dashes", staff, "?from=20260101", 400, "from"},
		{"from after to", staff, "?from=2026-03-02&to=2026-03-01", 400, "from"},
		{"unknown unit", admin, "?unit=nowhere", 400, "unit"},
		{"unit too long", admin, "?unit=" + strings.Repeat("u", 65), 400, "unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/stats", "/v1/stats/cases.csv"} {
				r := do(t, req{method: "GET", path: path + tt.query, token: tt.token})
				wantStatus(t, r, tt.status)
				var e struct {
					Error struct {
						Fields map[string]any `json:"fields"`
					} `json:"error"`
				}
				r.json(t, &e)
				if _, ok := e.Error.Fields[tt.field]; tt.field != "" && !ok {
					t.Errorf("%s: fields %v, want %s", path, e.Error.Fields, tt.field)
				}
				if bytes.Contains(r.Body, []byte(f.CaseNumber)) {
					t.Errorf("%s: a refused request shows a case: %s", path, r.Body)
				}
			}
		})
	}
	// Staff naming their own unit is fine.
	wantStatus(t, do(t, req{method: "GET", path: "/v1/stats?unit=330782-mz", token: staff}), 200)
}
