package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

type routingView struct {
	Case     string `json:"case"`
	Decision struct {
		UnitID      string `json:"unit_id"`
		UnitName    string `json:"unit_name"`
		Reason      string `json:"reason"`
		RuleID      string `json:"rule_id"`
		RuleVersion int    `json:"rule_version"`
		Fallback    bool   `json:"fallback"`
		By          string `json:"by"`
		Why         string `json:"why"`
		Candidates  []struct {
			UnitID   string `json:"unit_id"`
			Chosen   bool   `json:"chosen"`
			Excluded string `json:"excluded"`
		} `json:"candidates"`
		Informed []struct {
			ID string `json:"id"`
		} `json:"informed"`
	} `json:"decision"`
	EarlierDecisions []struct {
		UnitID string `json:"unit_id"`
	} `json:"earlier_decisions"`
}

func officialReport(position, employer, division string) map[string]any {
	r := anonymousReport()
	r["category"] = "official_discipline"
	r["subject"] = map[string]any{"kind": "person", "person": map[string]any{"name": "李某", "position": position, "employer": employer}}
	r["location"] = map[string]any{"division": division}
	r["description"] = "逢年过节收受管理对象所送购物卡。"
	return r
}

func TestRoutingExplain(t *testing.T) {
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	var out struct {
		Decision struct {
			UnitID     string `json:"unit_id"`
			RuleID     string `json:"rule_id"`
			Candidates []struct {
				Excluded string `json:"excluded"`
			} `json:"candidates"`
		} `json:"decision"`
	}
	r := postJSON(t, "/v1/routing/explain", staff, officialReport("局长", "温州市民政局", "330302"))
	wantStatus(t, r, 200)
	r.json(t, &out)
	if out.Decision.UnitID != "330300-jw" {
		t.Errorf("principal leader of a city 民政局 → %s, want 330300-jw", out.Decision.UnitID)
	}
	recused := false
	for _, c := range out.Decision.Candidates {
		recused = recused || c.Excluded == "recusal"
	}
	if !recused {
		t.Errorf("no recusal recorded: %s", r.Body)
	}
	wantStatus(t, postJSON(t, "/v1/routing/explain", admin, anonymousReport()), 200)

	withIdentity := anonymousReport()
	delete(withIdentity, "anonymous")
	withIdentity["identity"] = map[string]any{"name": "张三", "mobile": "13800000000"}
	tests := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"identity refused", staff, withIdentity, 400},
		{"invalid draft", staff, map[string]any{"category": "nope"}, 400},
		{"operator injection", staff, `{"category":{"$gt":""}}`, 400},
		{"unknown field", staff, `{"category":"other","rule":"x"}`, 400},
		{"no token", "", anonymousReport(), 401},
		{"liaison", liaison, anonymousReport(), 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, "/v1/routing/explain", tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
	r = do(t, req{method: "POST", path: "/v1/routing/explain", body: nil, contentType: "text/plain", token: staff})
	wantStatus(t, r, 415)
}

func TestRoutingRulesAPI(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330226-xf", "")
	var list struct {
		Version int `json:"version"`
		Rules   []struct {
			ID string `json:"id"`
		} `json:"rules"`
	}
	r := do(t, req{method: "GET", path: "/v1/routing/rules", token: admin})
	wantStatus(t, r, 200)
	r.json(t, &list)
	if list.Version < 1 || len(list.Rules) < 10 {
		t.Fatalf("rule list: %s", r.Body)
	}
	before := list.Version

	// A rule for 宁海县 (330226) only, so the shared server's other tests are unaffected.
	id := fmt.Sprintf("ninghai-other-%d", time.Now().UnixNano())
	rule := map[string]any{"id": id, "name": "宁海县“其他”类举报由县纪委监委直接处理", "categories": []string{"other"},
		"division_prefix": "330226", "primary": map[string]any{"relation": "kind_for_division", "kind": "jw"}, "priority": 300,
		"inform": []any{map[string]any{"relation": "fixed", "unit": "330226-xf"}}}
	r = postJSON(t, "/v1/routing/rules", admin, rule)
	wantStatus(t, r, 201)
	var created struct {
		Version int `json:"version"`
	}
	r.json(t, &created)
	if created.Version != before+1 {
		t.Errorf("rule added in version %d, want %d", created.Version, before+1)
	}
	wantStatus(t, postJSON(t, "/v1/routing/rules", admin, rule), 409)

	other := anonymousReport()
	other["category"] = "other"
	other["location"] = map[string]any{"division": "330226"}
	f := fileReport(t, other)
	if f.Unit.Name != "宁海县纪委监委" {
		t.Errorf("filed under the new rule to %q", f.Unit.Name)
	}
	// The decision names the rule and version; the owning unit's staff cannot read it
	// (the case went to 330226-jw), an admin can.
	wantStatus(t, do(t, req{method: "GET", path: "/v1/routing/cases/" + f.CaseNumber, token: staff}), 404)
	r = do(t, req{method: "GET", path: "/v1/routing/cases/" + f.CaseNumber, token: admin})
	wantStatus(t, r, 200)
	var rv routingView
	r.json(t, &rv)
	if rv.Decision.RuleID != id || rv.Decision.RuleVersion != created.Version || len(rv.Decision.Informed) != 1 || rv.Decision.Informed[0].ID != "330226-xf" {
		t.Errorf("decision %+v", rv.Decision)
	}

	r = postJSON(t, "/v1/routing/rules/"+id+"/retire", admin, "")
	wantStatus(t, r, 200)
	wantStatus(t, postJSON(t, "/v1/routing/rules/"+id+"/retire", admin, ""), 409)
	wantStatus(t, postJSON(t, "/v1/routing/rules/no-such-rule/retire", admin, ""), 404)
	if f := fileReport(t, other); f.Unit.Name != "宁海县纪委监委信访室" {
		t.Errorf("after retiring, filed to %q", f.Unit.Name)
	}
	r = do(t, req{method: "GET", path: "/v1/routing/rules?all=true", token: admin})
	wantStatus(t, r, 200)
	r.json(t, &list)
	found := false
	for _, x := range list.Rules {
		found = found || x.ID == id
	}
	if !found {
		t.Error("a retired rule is missing from ?all=true")
	}

	bad := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"no name, unknown unit", admin, map[string]any{"primary": map[string]any{"relation": "fixed", "unit": "999999-mz"}}, 400},
		{"no primary", admin, map[string]any{"name": "x"}, 400},
		{"unknown relation", admin, map[string]any{"name": "x", "primary": map[string]any{"relation": "sideways"}}, 400},
		{"bad id", admin, map[string]any{"id": "../x", "name": "x", "primary": map[string]any{"relation": "registration_authority"}}, 400},
		{"wrong type", admin, map[string]any{"name": "x", "priority": "high", "primary": map[string]any{"relation": "registration_authority"}}, 400},
		{"operator injection", admin, `{"name":{"$gt":""},"primary":{"relation":"fixed"}}`, 400},
		{"unknown field", admin, `{"name":"x","primary":{"relation":"registration_authority"},"script":"1"}`, 400},
		{"valid_to before valid_from", admin, map[string]any{"name": "x", "primary": map[string]any{"relation": "registration_authority"},
			"valid_from": "2026-06-01T00:00:00+08:00", "valid_to": "2026-01-01T00:00:00+08:00"}, 400},
		{"staff", staff, map[string]any{"name": "x", "primary": map[string]any{"relation": "registration_authority"}}, 403},
		{"no token", "", map[string]any{"name": "x"}, 401},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, "/v1/routing/rules", tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/routing/rules?all=maybe", token: admin}), 400)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/routing/rules", token: staff}), 403)
	r = do(t, req{method: "GET", path: "/v1/routing/rules", token: admin})
	r.json(t, &list)
	if list.Version != before+2 {
		t.Errorf("version %d after one add and one retire from %d (failed requests must not bump it)", list.Version, before)
	}
}

func TestReroute(t *testing.T) {
	f := fileReport(t, anonymousReport())
	staff, staffUser := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	otherStaff, _ := staffLogin(t, accounts.RoleStaff, "330782-jw", "")
	path := "/v1/routing/cases/" + f.CaseNumber + "/reroute"

	bad := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"nothing changed", staff, map[string]any{"reason": "x"}, 400},
		{"no reason", staff, map[string]any{"category": "official_discipline"}, 400},
		{"unknown category", staff, map[string]any{"category": "nope", "reason": "x"}, 400},
		{"bad subject", staff, map[string]any{"subject": map[string]any{"kind": "robot"}, "reason": "x"}, 400},
		{"wrong type", staff, map[string]any{"category": 7, "reason": "x"}, 400},
		{"operator injection", staff, `{"category":{"$ne":null},"reason":"x"}`, 400},
		{"unknown field", staff, `{"category":"other","reason":"x","unit_id":"330000-jw"}`, 400},
		{"another unit's staff", otherStaff, map[string]any{"category": "other", "reason": "x"}, 404},
		{"no token", "", map[string]any{"category": "other", "reason": "x"}, 401},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, path, tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
	wantStatus(t, postJSON(t, "/v1/routing/cases/QF-330782-2026-999999/reroute", staff, map[string]any{"category": "other", "reason": "x"}), 404)
	wantStatus(t, postJSON(t, "/v1/routing/cases/..%2F..%2Fetc%2Fpasswd/reroute", staff, map[string]any{"category": "other", "reason": "x"}), 404)

	// Nothing changed by the refused requests.
	r := do(t, req{method: "GET", path: "/v1/routing/cases/" + f.CaseNumber, token: staff})
	wantStatus(t, r, 200)
	var rv routingView
	r.json(t, &rv)
	if rv.Decision.UnitID != "330782-mz" || len(rv.EarlierDecisions) != 0 {
		t.Fatalf("refused re-routes changed the case: %s", r.Body)
	}

	// Triage finds the report is about a 民政局 section chief: the case moves to the
	// 派驻组, the old decision stays on record with who and why.
	r = postJSON(t, path, staff, map[string]any{"category": "official_discipline", "reason": "举报内容实为民政局工作人员收受礼品",
		"subject": map[string]any{"kind": "person", "person": map[string]any{"name": "王某", "position": "科长", "employer": "义乌市民政局"}}})
	wantStatus(t, r, 200)
	r.json(t, &rv)
	if rv.Decision.UnitID != "330782-mz-pz" || rv.Decision.By != staffUser.ID || rv.Decision.Why == "" ||
		len(rv.EarlierDecisions) != 1 || rv.EarlierDecisions[0].UnitID != "330782-mz" {
		t.Fatalf("after re-routing: %s", r.Body)
	}
	// The case has left the unit: its staff no longer see it.
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff}), 404)
	pz, _ := staffLogin(t, accounts.RoleStaff, "330782-mz-pz", "")
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: pz}), 200)
	// The reporter sees only the new unit's name.
	var rc struct {
		Unit map[string]any `json:"unit"`
	}
	r = do(t, req{method: "GET", path: "/v1/followup/case", token: f.FollowUpToken})
	wantStatus(t, r, 200)
	r.json(t, &rc)
	if rc.Unit["name"] != "派驻义乌市民政局纪检监察组" || len(rc.Unit) != 1 {
		t.Errorf("reporter's view of the unit: %v", rc.Unit)
	}
}

// TestRoutingRefresh: a rule added by another process (straight into the store) is
// picked up by Refresh, which the server runs every 15 seconds.
func TestRoutingRefresh(t *testing.T) {
	before := srv.engine.Version()
	store := sqlite.NewRuleStore(srv.st.sqlite)
	id := fmt.Sprintf("other-process-%d", time.Now().UnixNano())
	if _, err := store.Add(t.Context(), routing.Rule{ID: id, Name: "另一实例新增的规则", Categories: []intake.Category{"other"}, DivisionPrefix: "330226",
		Primary: routing.Target{Relation: routing.RelKindForDivision, Kind: routing.KindDiscipline}, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	changed, err := srv.routing.Refresh(t.Context())
	if err != nil || !changed || srv.engine.Version() != before+1 {
		t.Fatalf("refresh: changed %v, version %d → %d, %v", changed, before, srv.engine.Version(), err)
	}
	if changed, _ := srv.routing.Refresh(t.Context()); changed {
		t.Error("a second refresh reloaded an unchanged rule set")
	}
	if _, err := store.Retire(t.Context(), id, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.routing.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
}
