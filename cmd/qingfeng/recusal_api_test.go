package main

import (
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

// TestRecusalSpellings sends the examples through POST /v1/routing/explain:
// however the subject's employer is written, the case never goes to it.
func TestRecusalSpellings(t *testing.T) {
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	report := func(category, position, employer string) map[string]any {
		r := anonymousReport()
		r["category"] = category
		r["subject"] = map[string]any{"kind": "person", "person": map[string]any{"name": "李某", "position": position, "employer": employer}}
		return r
	}
	tests := []struct {
		category, employer, accused string
		possible                    bool // only resembles: excluded as possible_recusal
	}{
		{"arbitrary_fees", "义乌民政局", "330782-mz", false},
		{"arbitrary_fees", "浙江省义乌市民政局", "330782-mz", false},
		{"arbitrary_fees", "义乌市民政局办公室", "330782-mz", false},
		{"arbitrary_fees", "义乌市民政局（社会组织管理科）", "330782-mz", false},
		{"arbitrary_fees", "义乌市民政局\u3000", "330782-mz", false},
		{"arbitrary_fees", "义乌市\u200b民政\ufeff局", "330782-mz", false},
		{"arbitrary_fees", "義烏市民政局", "330782-mz", false},
		{"arbitrary_fees", "义乌民政", "330782-mz", true},
		{"arbitrary_fees", "某某协会（义乌市民政局主管）", "330782-mz", true},
		{"official_discipline", "义乌市纪委", "330782-jw", false},
		{"official_discipline", "中共义乌市纪律检查委员会", "330782-jw", false},
		{"official_discipline", "义乌市监察委员会", "330782-jw", false},
		{"official_discipline", "中共義烏市紀律檢查委員會", "330782-jw", false},
		{"official_discipline", "义乌纪检", "330782-jw", true},
	}
	for _, tt := range tests {
		t.Run(tt.employer, func(t *testing.T) {
			r := postJSON(t, "/v1/routing/explain", staff, report(tt.category, "科员", tt.employer))
			wantStatus(t, r, 200)
			var out struct {
				Decision struct {
					UnitID     string `json:"unit_id"`
					Candidates []struct {
						UnitID   string `json:"unit_id"`
						Excluded string `json:"excluded"`
						Detail   string `json:"detail"`
					} `json:"candidates"`
				} `json:"decision"`
			}
			r.json(t, &out)
			if out.Decision.UnitID == tt.accused || out.Decision.UnitID == "" {
				t.Fatalf("%s about someone at %q went to %q: %s", tt.category, tt.employer, out.Decision.UnitID, r.Body)
			}
			want := "recusal"
			if tt.possible {
				want = "possible_recusal"
			}
			found := false
			for _, c := range out.Decision.Candidates {
				if c.UnitID == tt.accused && c.Excluded == want {
					found = !tt.possible || strings.Contains(c.Detail, tt.employer)
				}
			}
			if !found {
				t.Errorf("%s not excluded as %s (naming the employer): %s", tt.accused, want, r.Body)
			}
		})
	}
}

// TestOutsideZhejiangReport: a report placed in Shanghai is filed, held by the province
// and triaged by hand by the provincial intake office; a malformed code is still refused.
func TestOutsideZhejiangReport(t *testing.T) {
	body := anonymousReport()
	body["category"] = "other"
	body["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"name": "上海某商会"}}
	body["location"] = map[string]any{"division": "310101", "address": "上海市黄浦区"}
	f := fileReport(t, body)
	if !strings.HasPrefix(f.CaseNumber, "QF-330000-") {
		t.Errorf("case number %q, want QF-330000-…", f.CaseNumber)
	}
	warned := false
	for _, w := range f.Warnings {
		warned = warned || w.Code == "outside_zhejiang" && w.Field == "location.division"
	}
	if !warned {
		t.Errorf("no outside_zhejiang warning: %+v", f.Warnings)
	}
	// Someone is alerted, and the alert names the case (it was once logged with an
	// empty case number: routing ran before the case was numbered).
	if !strings.Contains(logBuf.String(), `"event":"routing.fallback","case":"`+f.CaseNumber+`"`) {
		t.Errorf("no routing.fallback event naming %s in the log", f.CaseNumber)
	}
	if strings.Contains(logBuf.String(), `"event":"routing.fallback","case":""`) {
		t.Error("a routing.fallback event names no case")
	}
	xf, _ := staffLogin(t, accounts.RoleStaff, "330000-xf", "")
	r := do(t, req{method: "GET", path: "/v1/routing/cases/" + f.CaseNumber, token: xf})
	wantStatus(t, r, 200)
	var rv struct {
		Decision struct {
			UnitID         string            `json:"unit_id"`
			Reason         string            `json:"reason"`
			Fallback       bool              `json:"fallback"`
			FallbackReason string            `json:"fallback_reason"`
			Inputs         map[string]string `json:"inputs"`
		} `json:"decision"`
	}
	r.json(t, &rv)
	d := rv.Decision
	if d.UnitID != "330000-xf" || !d.Fallback || d.FallbackReason != "outside_zhejiang" || !strings.Contains(d.Reason, "310101") || d.Inputs["reported_division"] != "310101" {
		t.Errorf("routing of a Shanghai report: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: xf})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.Body), `"reported_division":"310101"`) || !strings.Contains(string(r.Body), `"division":"330000"`) {
		t.Errorf("case location: %s", r.Body)
	}
}
