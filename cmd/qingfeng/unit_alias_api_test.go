package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

type unitAPIView struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases"`
}

// TestUnitAliasesAPI: an alias an admin adds makes routing recognise the unit (and
// recuse it); bad requests change nothing; concurrent additions all land, none past the
// limit; the change is stored and audited; removing it undoes it. It uses 嘉善县
// (330421) so that the shared server's other tests are unaffected.
func TestUnitAliasesAPI(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330421-mz", "")
	const unit, former = "330421-mz", "嘉善县社会组织管理局"
	explain := func(employer string) string {
		t.Helper()
		r := anonymousReport()
		r["subject"] = map[string]any{"kind": "person", "person": map[string]any{"name": "李某", "position": "科员", "employer": employer}}
		r["location"] = map[string]any{"division": "330421"}
		resp := postJSON(t, "/v1/routing/explain", admin, r)
		wantStatus(t, resp, 200)
		var out struct {
			Decision struct {
				UnitID string `json:"unit_id"`
			} `json:"decision"`
		}
		resp.json(t, &out)
		return out.Decision.UnitID
	}
	get := func() unitAPIView {
		t.Helper()
		r := getAPI(t, "/v1/routing/units/"+unit, admin)
		wantStatus(t, r, 200)
		var v unitAPIView
		r.json(t, &v)
		return v
	}
	// Unknown to the registry, the former name does not stop the case reaching the unit.
	if got := explain(former); got != unit {
		t.Fatalf("before the alias: %s", got)
	}
	ctx := context.Background()
	last, _, err := sqlite.NewAuditStore(srv.st.sqlite).Last(ctx)
	if err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name, path, token string
		body              any
		status            int
	}{
		{"staff", "/v1/routing/units/" + unit + "/aliases", staff, map[string]any{"alias": former}, 403},
		{"no token", "/v1/routing/units/" + unit + "/aliases", "", map[string]any{"alias": former}, 401},
		{"empty", "/v1/routing/units/" + unit + "/aliases", admin, map[string]any{"alias": " \u200b "}, 400},
		{"missing", "/v1/routing/units/" + unit + "/aliases", admin, map[string]any{}, 400},
		{"unknown field", "/v1/routing/units/" + unit + "/aliases", admin, map[string]any{"alias": former, "unit": "x"}, 400},
		{"wrong type", "/v1/routing/units/" + unit + "/aliases", admin, `{"alias":["x"]}`, 400},
		{"too long", "/v1/routing/units/" + unit + "/aliases", admin, map[string]any{"alias": strings.Repeat("局", 101)}, 400},
		{"another unit's name", "/v1/routing/units/" + unit + "/aliases", admin, map[string]any{"alias": "嘉善纪委"}, 409},
		{"unknown unit", "/v1/routing/units/330421-nope/aliases", admin, map[string]any{"alias": former}, 404},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, tt.path, tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
	if v := get(); len(v.Aliases) != 0 {
		t.Fatalf("refused requests changed the unit: %+v", v)
	}
	wantStatus(t, getAPI(t, "/v1/routing/units/"+unit, staff), 403)
	wantStatus(t, getAPI(t, "/v1/routing/units/330421-nope", admin), 404)

	// 32 at once, the same alias: it lands once.
	var wg sync.WaitGroup
	codes := make([]int, 32)
	for i := range codes {
		wg.Go(func() {
			codes[i] = postJSON(t, "/v1/routing/units/"+unit+"/aliases", admin, map[string]any{"alias": former}).Status
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if v := get(); !slices.Equal(v.Aliases, []string{former}) {
		t.Fatalf("after 32 identical additions: %+v", v)
	}
	for _, employer := range []string{former, "浙江省嘉善县社会组织管理局办公室", "嘉善社会组织\u200b管理局", "嘉善縣社會組織管理局"} {
		if got := explain(employer); got == unit || got == "" {
			t.Errorf("with the alias, %q still went to %s", employer, got)
		}
	}
	// Stored: what the next start loads.
	stored, err := sqlite.NewUnitStore(srv.st.sqlite).Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range stored {
		if u.ID == unit && !slices.Equal(u.Aliases, []string{former}) {
			t.Errorf("stored aliases %v", u.Aliases)
		}
	}
	// Audited.
	found := false
	if err := sqlite.NewAuditStore(srv.st.sqlite).Each(ctx, last.Seq+1, func(e audit.Entry) error {
		found = found || e.Action == "routing.unit.alias.add" && e.Detail["unit"] == unit && e.Detail["alias"] == former
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Error("no audit entry for the alias")
	}

	// 32 different aliases at once on another unit: exactly the limit land.
	const other = "330421-cz"
	for i := range codes {
		wg.Go(func() {
			codes[i] = postJSON(t, "/v1/routing/units/"+other+"/aliases", admin, map[string]any{"alias": fmt.Sprintf("嘉善财政别名%02d", i)}).Status
		})
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == 200 {
			ok++
		} else if c != 400 {
			t.Errorf("status %d", c)
		}
	}
	r := getAPI(t, "/v1/routing/units/"+other, admin)
	var ov unitAPIView
	r.json(t, &ov)
	if ok != 30 || len(ov.Aliases) != 30 {
		t.Errorf("%d additions accepted, %d aliases stored; want 30 (the limit)", ok, len(ov.Aliases))
	}

	// Removing it (written another way) undoes it.
	path := "/v1/routing/units/" + unit + "/aliases/" + url.PathEscape("嘉善縣社會組織管理局")
	wantStatus(t, do(t, req{method: "DELETE", path: path, token: staff}), 403)
	r = do(t, req{method: "DELETE", path: path, token: admin})
	wantStatus(t, r, 200)
	var v unitAPIView
	r.json(t, &v)
	if len(v.Aliases) != 0 {
		t.Errorf("after removal: %s", r.Body)
	}
	wantStatus(t, do(t, req{method: "DELETE", path: path, token: admin}), 404)
	if got := explain(former); got != unit {
		t.Errorf("after removal: %s", got)
	}
}
