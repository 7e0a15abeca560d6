package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

// TestUnitSaveAPI: POST /v1/routing/units creates a unit as the console's form does
// (201; an existing id, in any case, is 400 on id; each bad field 400 on its field;
// staff 403), PUT /v1/routing/units/{id} changes it keeping its aliases (an unknown
// unit 404, another id in the body 400, a missing active 400); refused requests
// change nothing and are not audited.
func TestUnitSaveAPI(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330922-mz", "")
	id := fmt.Sprintf("330922-api%d", time.Now().UnixNano()%1e9)
	put := func(path, token string, v any) response {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, req{method: "PUT", path: path, body: bytes.NewReader(b), contentType: "application/json", token: token})
	}
	good := func() map[string]any {
		return map[string]any{"id": id, "name": "嵊泗县接口测试单位", "kind": "qt", "division": "330922", "parent": "330922-jw", "active": true}
	}
	with := func(k string, v any) map[string]any {
		m := good()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	fieldOf := func(r response) string {
		t.Helper()
		var e struct {
			Error struct {
				Fields map[string]any `json:"fields"`
			} `json:"error"`
		}
		r.json(t, &e)
		for f := range e.Error.Fields {
			return f
		}
		return ""
	}
	seq := lastAuditSeq(t)
	for _, tc := range []struct {
		name   string
		token  string
		body   any
		status int
		field  string
	}{
		{"staff", staff, good(), 403, ""},
		{"no token", "", good(), 401, ""},
		{"empty name", admin, with("name", " "), 400, "name"},
		{"unknown kind", admin, with("kind", "zz"), 400, "kind"},
		{"outside Zhejiang", admin, with("division", "110101"), 400, "division"},
		{"unknown parent", admin, with("parent", "330922-nowhere"), 400, "parent"},
		{"its own parent", admin, with("parent", id), 400, "parent"},
		{"id with a space", admin, with("id", "330922 api"), 400, "id"},
		{"id that exists, upper case", admin, with("id", "330922-MZ"), 400, "id"},
		{"another unit's name", admin, with("name", "嵊泗縣民政局"), 400, "name"},
		{"no active", admin, with("active", nil), 400, "active"},
		{"unknown field", admin, with("aliases", []string{"x"}), 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := postJSON(t, "/v1/routing/units", tc.token, tc.body)
			wantStatus(t, r, tc.status)
			r.errorCode(t)
			if tc.field != "" && fieldOf(r) != tc.field {
				t.Errorf("error on %q, want %q: %s", fieldOf(r), tc.field, r.Body)
			}
		})
	}
	if _, ok := srv.routing.Engine.Units.Get(id); ok || lastAuditSeq(t) != seq {
		t.Fatal("a refused request changed something")
	}
	r := postJSON(t, "/v1/routing/units", admin, good())
	wantStatus(t, r, 201)
	var v struct {
		ID      string   `json:"id"`
		Level   string   `json:"level"`
		Active  bool     `json:"active"`
		Aliases []string `json:"aliases"`
	}
	r.json(t, &v)
	if v.ID != id || v.Level != "county" || !v.Active {
		t.Errorf("created: %s", r.Body)
	}
	if saves := unitSaves(t, seq, id); len(saves) != 1 || saves[0].Detail["result"] != "created" {
		t.Errorf("audit: %+v", saves)
	}
	wantStatus(t, postJSON(t, "/v1/routing/units", admin, good()), 400)

	wantStatus(t, postJSON(t, "/v1/routing/units/"+id+"/aliases", admin, map[string]any{"alias": "嵊泗接口测试"}), 200)
	seq = lastAuditSeq(t)
	wantStatus(t, put("/v1/routing/units/330922-nowhere", admin, with("id", nil)), 404)
	wantStatus(t, put("/v1/routing/units/"+id, admin, with("id", "330922-mz")), 400)
	wantStatus(t, put("/v1/routing/units/"+id, staff, with("id", nil)), 403)
	if lastAuditSeq(t) != seq {
		t.Error("a refused change was audited")
	}
	m := with("id", nil)
	m["name"], m["active"] = "嵊泗县接口测试单位（更名）", false
	r = put("/v1/routing/units/"+id, admin, m)
	wantStatus(t, r, 200)
	r.json(t, &v)
	if v.Active || len(v.Aliases) != 1 || !strings.Contains(string(r.Body), "（更名）") {
		t.Errorf("changed: %s", r.Body)
	}
	if u, _ := srv.routing.Engine.Units.Get(id); u.Active || u.Name != "嵊泗县接口测试单位（更名）" {
		t.Errorf("the registry: %+v", u)
	}
	if saves := unitSaves(t, seq, id); len(saves) != 1 || saves[0].Detail["result"] != "updated" || saves[0].Detail["active"] != "false" {
		t.Errorf("audit: %+v", saves)
	}
}
