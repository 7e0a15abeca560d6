package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Tests of the admin's unit pages: the search, and the one form that creates or
// changes a unit as a one-row units import.

// storedUnit is unit id as the store has it (not the in-memory registry).
func storedUnit(t *testing.T, id string) (routing.RegistryUnit, bool) {
	t.Helper()
	list, err := srv.routing.Units.Units(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range list {
		if u.ID == id {
			return u, true
		}
	}
	return routing.RegistryUnit{}, false
}

// unitSaves are the routing.unit.save entries about unit id after seq.
func unitSaves(t *testing.T, after int64, id string) []audit.Entry {
	t.Helper()
	entries, err := srv.Audit.Store.List(context.Background(), audit.Query{After: after, Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for _, e := range entries {
		if e.Action == "routing.unit.save" && e.Detail["unit"] == id {
			out = append(out, e)
		}
	}
	return out
}

// TestConsoleAdminUnitSearch: a unit is found by its name however it is written
// (traditional script, full-width, zero-width characters), by its alias, by its code in
// upper case, and a division's units by the division's name or code; each row links to
// the unit's page; a query matching many says how many are not listed; an empty query
// gives the hint and no list; an unknown id is 404 with the search box marked.
func TestConsoleAdminUnitSearch(t *testing.T) {
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	search := func(q string) page {
		t.Helper()
		p := getPage(t, ac, "/console/admin/units?q="+url.QueryEscape(q))
		if p.status != 200 {
			t.Fatalf("search %q: %d", q, p.status)
		}
		return p
	}
	for _, tc := range []struct{ name, q, want string }{
		{"name", "嵊泗县民政局", "330922-mz"},
		{"traditional", "嵊泗縣民政局", "330922-mz"},
		{"full-width and spaces", "嵊泗县　民政局 ", "330922-mz"},
		{"zero-width", "嵊泗\u200b县民\u2060政局\ufeff", "330922-mz"},
		{"code in upper case", "330922-MZ", "330922-mz"},
		{"code full-width", "３３０９２２－ＭＺ", "330922-mz"},
		{"division name", "嵊泗县", "330922-jw"},
		{"division code", "330922", "330922-xf"},
		{"routing's spelling", "浙江省嵊泗县纪律检查委员会", "330922-jw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := search(tc.q)
			row := regexpFind(t, `(?s)<tr id="unit-`+tc.want+`">(.*?)</tr>`, p.body)
			if !strings.Contains(row, `href="/console/admin/units?id=`+tc.want+`"`) || !strings.Contains(row, "嵊泗县") {
				t.Errorf("the row of %s: %s", tc.want, row)
			}
		})
	}
	// An alias added through the API is found too, in traditional script.
	if _, err := srv.routing.AddUnitAlias(context.Background(), "330922-cz", "嵊泗财政"); err != nil {
		t.Fatal(err)
	}
	if p := search("嵊泗財政"); !strings.Contains(p.body, `id="unit-330922-cz"`) {
		t.Errorf("alias in traditional script: not found")
	}
	p := search("民政")
	if !strings.Contains(p.body, "另有") || strings.Count(p.body, `<tr id="unit-`) != routing.UnitSearchMax {
		t.Errorf("民政: %d rows, count %q", strings.Count(p.body, `<tr id="unit-`), regexpFind(t, `(?s)<p id="results-count">(.*?)</p>`, p.body))
	}
	if p := search("没有这样的单位"); !strings.Contains(p.body, "没有找到") || strings.Contains(p.body, `<tr id="unit-`) {
		t.Error("no match: no message")
	}
	p = getPage(t, ac, "/console/admin/units")
	if p.status != 200 || !strings.Contains(p.body, `id="unit-search-hint"`) || strings.Contains(p.body, `id="unit-results"`) {
		t.Errorf("empty query: %d", p.status)
	}
	if p := search("\u200b 　"); strings.Contains(p.body, `id="unit-results"`) {
		t.Error("an invisible query searched")
	}
	if p := getPage(t, ac, "/console/admin/units?q="+strings.Repeat("长", 101)); p.status != 400 || !strings.Contains(p.body, `href="#f-q"`) {
		t.Errorf("over-long query: %d", p.status)
	}
	if p := getPage(t, ac, "/console/admin/units?id=nope"); p.status != 404 || !strings.Contains(p.body, "没有编码为") || !strings.Contains(p.body, `href="#f-q"`) {
		t.Errorf("unknown unit: %d", p.status)
	}
}

// TestConsoleAdminUnitCreate: the form refuses each bad field with its error on that
// field and changes nothing (no stored unit, no audit entry, the registry as it was);
// a good one is stored, in the registry at once (a fixed rule target validates, the
// search lists it), audited once; the same id again, also in other case, is refused.
// Editing keeps the aliases; a parent cycle is refused; deactivating takes the unit
// out of routing (a case goes to its parent) and reactivating brings it back. Staff
// get 403; no token or another session's token, 403 and nothing stored.
func TestConsoleAdminUnitCreate(t *testing.T) {
	id := fmt.Sprintf("330922-pz%d", time.Now().UnixNano()%1e9)
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330922-mz", "", false)
	sc := consoleSignIn(t, staff, "")
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	good := func() url.Values {
		return url.Values{"_csrf": {csrf}, "op": {"create"}, "id": {id}, "name": {"派驻嵊泗县文广旅体局纪检监察组"}, "kind": {"pz"},
			"division": {"330922"}, "level": {""}, "parent": {"330922-jw"}, "stationed_at": {"330922-mz"}, "active": {"true"}}
	}
	with := func(k, v string) url.Values {
		f := good()
		if v == "\x00" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	unchanged := func(what string, seq int64) {
		t.Helper()
		if _, ok := srv.routing.Engine.Units.Get(id); ok {
			t.Errorf("%s: the unit is in the registry", what)
		}
		if _, ok := storedUnit(t, id); ok {
			t.Errorf("%s: the unit is stored", what)
		}
		if got := lastAuditSeq(t); got != seq {
			t.Errorf("%s: audited (%d → %d)", what, seq, got)
		}
	}

	for _, path := range []string{"/console/admin/units?q=嵊泗", "/console/admin/units?new=1"} {
		if p := getPage(t, sc, path); p.status != 403 {
			t.Errorf("staff on %s: %d", path, p.status)
		}
	}
	seq := lastAuditSeq(t)
	if p := postPageForm(t, sc, "/console/admin/units", with("_csrf", consoleCSRF(t, sc))); p.status != 403 {
		t.Errorf("staff creating a unit: %d", p.status)
	}
	for _, tok := range []string{"", consoleCSRF(t, sc), "1." + strings.Repeat("A", 24)} {
		if p := postPageForm(t, ac, "/console/admin/units", with("_csrf", tok)); p.status != 403 {
			t.Errorf("create with token %q: %d", tok, p.status)
		}
	}
	unchanged("refused by role or token", seq)

	if p := getPage(t, ac, "/console/admin/units?new=1"); p.status != 200 || !strings.Contains(p.body, `id="save-unit"`) || !strings.Contains(p.body, "已在该单位的案件不会自动移走") {
		t.Fatalf("the new-unit form: %d", p.status)
	}
	for _, tc := range []struct{ name, field, value, errField, msg string }{
		{"empty name", "name", " \u3000", "name", "单位名称必填"},
		{"unknown kind", "kind", "zz", "kind", "单位类别"},
		{"no kind", "kind", "", "kind", "单位类别"},
		{"a division outside Zhejiang", "division", "110101", "division", "不是浙江省的行政区划代码"},
		{"a parent that does not exist", "parent", "330922-nowhere", "parent", "不在单位名录中"},
		{"the unit its own parent", "parent", id, "parent", "不能是自身"},
		{"stationed at nothing", "stationed_at", "330922-nowhere", "stationed_at", "不在单位名录中"},
		{"an id with a space", "id", "330922 pz", "id", "不能含空白"},
		{"an id with a dot", "id", "330922.pz", "id", "不能含空白"},
		{"an id with a zero-width space", "id", "330922-pz\u200b1", "id", "不可见字符"},
		{"a name of invisible characters", "name", "\u200b\u2060", "name", "单位名称必填"},
		{"another unit's name", "name", "嵊泗县民政局", "name", "已指单位"},
		{"another unit's name, traditional and spaced", "name", "浙江省 嵊泗縣民政局", "name", "已指单位"},
		{"no id", "id", "", "id", "单位编号必填"},
		{"an id that exists", "id", "330922-mz", "id", "已存在"},
		{"an id that exists, upper case", "id", "330922-MZ", "id", "已存在"},
		{"an id that exists, full-width", "id", "３３０９２２－ｍｚ", "id", "已存在"},
		{"an unknown level", "level", "galaxy", "level", "层级"},
		{"no status", "active", "\x00", "active", "请选择单位状态"},
		{"a bad status", "active", "maybe", "active", "请选择单位状态"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := lastAuditSeq(t)
			p := postPageForm(t, ac, "/console/admin/units", with(tc.field, tc.value))
			onField := strings.Contains(p.body, `<div class="field has-error"><label for="f-`+tc.errField+`">`) ||
				strings.Contains(p.body, `<fieldset class="field has-error" id="f-`+tc.errField+`"`)
			if !onField {
				t.Errorf("the error is not on the field %s", tc.errField)
			}
			if p.status != 400 || !strings.Contains(p.body, `href="#f-`+tc.errField+`"`) || !strings.Contains(p.body, tc.msg) {
				t.Errorf("%d, want 400 with %s on #f-%s", p.status, tc.msg, tc.errField)
			}
			if v := tc.value; tc.field != "active" && tc.field != "kind" && tc.field != "level" && !strings.Contains(p.body, `value="`+strings.TrimSpace(v)+`"`) {
				t.Errorf("the value typed (%q) is not kept", v)
			}
			unchanged(tc.name, seq)
		})
	}

	seq = lastAuditSeq(t)
	p := postPageForm(t, ac, "/console/admin/units", good())
	if p.status != 200 || !strings.Contains(p.body, "单位已新建") || !strings.Contains(p.body, `id="unit-title"`) {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	u, ok := srv.routing.Engine.Units.Get(id)
	if !ok || u.Name != "派驻嵊泗县文广旅体局纪检监察组" || u.Kind != routing.KindStationed || u.Level != routing.LevelCounty || u.Parent != "330922-jw" || !u.Active {
		t.Fatalf("the registry's unit: %+v", u)
	}
	if s, ok := storedUnit(t, id); !ok || s.Name != u.Name {
		t.Errorf("the stored unit: %+v", s)
	}
	rule := routing.Rule{ID: "t", Name: "测试", Primary: routing.Target{Relation: routing.RelFixed, Unit: id}}
	if err := rule.Validate(srv.routing.Engine.Units); err != nil {
		t.Errorf("a rule with the new unit as its target: %v", err)
	}
	if saves := unitSaves(t, seq, id); len(saves) != 1 || saves[0].Detail["result"] != "created" || saves[0].Actor != admin.ID {
		t.Errorf("the audit entries: %+v", saves)
	}
	if p := getPage(t, ac, "/console/admin/units?q="+url.QueryEscape("派駐嵊泗縣文廣旅體局")); !strings.Contains(p.body, `id="unit-`+id+`"`) {
		t.Error("the new unit is not found by the search")
	}
	seq = lastAuditSeq(t)
	if p := postPageForm(t, ac, "/console/admin/units", good()); p.status != 400 || !strings.Contains(p.body, "已存在") || !strings.Contains(p.body, `href="#f-id"`) {
		t.Errorf("the same id again: %d", p.status)
	}
	if p := postPageForm(t, ac, "/console/admin/units", with("id", strings.ToUpper(id))); p.status != 400 || !strings.Contains(p.body, "已存在") {
		t.Errorf("the same id in upper case: %d", p.status)
	}
	if saves := unitSaves(t, seq, id); len(saves) != 0 || lastAuditSeq(t) != seq {
		t.Errorf("a refused create was audited: %+v", saves)
	}

	// Edit: an alias added first stays; the name changes; the id cannot.
	if p := postPageForm(t, ac, "/console/admin/units", url.Values{"_csrf": {csrf}, "op": {"add"}, "id": {id}, "alias": {"嵊泗文旅派驻组"}}); p.status != 200 {
		t.Fatalf("add alias: %d", p.status)
	}
	edit := func(k, v string) page {
		t.Helper()
		f := good()
		f.Set("op", "update")
		f.Set(k, v)
		return postPageForm(t, ac, "/console/admin/units", f)
	}
	seq = lastAuditSeq(t)
	if p := edit("name", ""); p.status != 400 || !strings.Contains(p.body, `href="#f-name"`) || !strings.Contains(p.body, `id="unit-title"`) {
		t.Errorf("edit with an empty name: %d", p.status)
	}
	if u, _ := srv.routing.Engine.Units.Get(id); u.Name != "派驻嵊泗县文广旅体局纪检监察组" || lastAuditSeq(t) != seq {
		t.Errorf("a refused edit changed something: %+v", u)
	}
	p = edit("name", "派驻嵊泗县文化和广电旅游体育局纪检监察组")
	if p.status != 200 || !strings.Contains(p.body, "单位已保存") {
		t.Fatalf("edit: %d", p.status)
	}
	u, _ = srv.routing.Engine.Units.Get(id)
	if u.Name != "派驻嵊泗县文化和广电旅游体育局纪检监察组" || len(u.Aliases) != 1 || u.Aliases[0] != "嵊泗文旅派驻组" {
		t.Errorf("after the edit: %+v", u)
	}
	if s, _ := storedUnit(t, id); len(s.Aliases) != 1 {
		t.Errorf("the stored aliases after the edit: %q", s.Aliases)
	}
	if saves := unitSaves(t, seq, id); len(saves) != 1 || saves[0].Detail["result"] != "updated" {
		t.Errorf("the edit's audit entries: %+v", saves)
	}
	if p := edit("id", "330922-nowhere"); p.status != 404 {
		t.Errorf("editing a unit that does not exist: %d", p.status)
	}
	if _, ok := storedUnit(t, "330922-nowhere"); ok {
		t.Error("editing an unknown id created it")
	}

	// A unit below the new one cannot become its parent.
	child := id + "-c"
	if p := postPageForm(t, ac, "/console/admin/units", url.Values{"_csrf": {csrf}, "op": {"create"}, "id": {child}, "name": {"嵊泗测试下级组"},
		"kind": {"qt"}, "division": {"330922"}, "parent": {id}, "active": {"true"}}); p.status != 200 {
		t.Fatalf("create the child: %d", p.status)
	}
	seq = lastAuditSeq(t)
	if p := edit("parent", child); p.status != 400 || !strings.Contains(p.body, "循环") || !strings.Contains(p.body, `href="#f-parent"`) {
		t.Errorf("a parent cycle: %d", p.status)
	}
	if u, _ := srv.routing.Engine.Units.Get(id); u.Parent != "330922-jw" || lastAuditSeq(t) != seq {
		t.Errorf("a refused cycle changed the unit: %+v", u)
	}

	// Deactivated, a case its rule names goes to its parent; reactivated, to it again.
	engine := routing.NewEngine(srv.routing.Engine.Units, routing.NewOrgs(), routing.RuleSet{Version: 1, Rules: []routing.Rule{{ID: "t", Name: "测试",
		Version: 1, Primary: routing.Target{Relation: routing.RelFixed, Unit: id}, ValidFrom: time.Now().Add(-time.Hour)}}})
	cs := &intake.Case{Category: "other", Location: intake.Location{Division: "330922"},
		Subject: intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "某人"}}}
	if d := engine.Decide(cs); d.UnitID != id {
		t.Fatalf("active: routed to %s (%s)", d.UnitID, d.Reason)
	}
	p = edit("active", "false")
	if p.status != 200 || !strings.Contains(p.body, "已撤销") || !strings.Contains(p.body, "仍由它办理") {
		t.Fatalf("deactivate: %d", p.status)
	}
	if u, _ := srv.routing.Engine.Units.Get(id); u.Active {
		t.Fatal("still active")
	}
	if d := engine.Decide(cs); d.UnitID != "330922-jw" || !strings.Contains(fmt.Sprint(d.Candidates), "该单位已停用") {
		t.Errorf("inactive: routed to %s (%+v)", d.UnitID, d.Candidates)
	}
	if p := getPage(t, ac, "/console/admin/units?q="+url.QueryEscape(id)); !strings.Contains(regexpFind(t, `(?s)<tr id="unit-`+id+`">(.*?)</tr>`, p.body), "已撤销") {
		t.Error("the search does not mark the unit 已撤销")
	}
	if p := edit("active", "true"); p.status != 200 {
		t.Fatalf("reactivate: %d", p.status)
	}
	if d := engine.Decide(cs); d.UnitID != id {
		t.Errorf("reactivated: routed to %s", d.UnitID)
	}
}

// TestConsoleAdminUnitCreateConcurrent: 32 identical creates at once store one unit
// and one audit entry; every other answer is the import lock's retryable 409 or the
// id's "exists" error, never a 500.
func TestConsoleAdminUnitCreateConcurrent(t *testing.T) {
	id := fmt.Sprintf("330922-cc%d", time.Now().UnixNano()%1e9)
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	form := url.Values{"_csrf": {consoleCSRF(t, ac)}, "op": {"create"}, "id": {id}, "name": {"嵊泗县并发测试单位"}, "kind": {"qt"},
		"division": {"330922"}, "active": {"true"}}
	seq := lastAuditSeq(t)
	type answer struct {
		status     int
		body       string
		retryAfter string
	}
	answers := make([]answer, 32)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := ac.PostForm(baseURL+"/console/admin/units", form)
			if err != nil {
				t.Error(err)
				return
			}
			p := readPage(t, resp)
			answers[i] = answer{p.status, p.body, p.header.Get("Retry-After")}
		}()
	}
	close(start)
	wg.Wait()
	created, busy, exists := 0, 0, 0
	for _, a := range answers {
		switch {
		case a.status == http.StatusOK && strings.Contains(a.body, "单位已新建"):
			created++
		case a.status == http.StatusConflict && strings.Contains(a.body, "导入正在进行") && a.retryAfter != "":
			busy++
		case a.status == http.StatusBadRequest && strings.Contains(a.body, "已存在"):
			exists++
		default:
			t.Errorf("unexpected answer %d: %.300s", a.status, a.body)
		}
	}
	t.Logf("32 concurrent creates: %d created, %d busy (409), %d exists (400)", created, busy, exists)
	if created != 1 {
		t.Errorf("%d creates succeeded", created)
	}
	if saves := unitSaves(t, seq, id); len(saves) != 1 {
		t.Errorf("%d audit entries", len(saves))
	}
	n := 0
	list, _ := srv.routing.Units.Units(context.Background())
	for _, u := range list {
		if strings.EqualFold(u.ID, id) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d units stored", n)
	}
}

// TestSaveUnitProperty runs seeded random sequences of unit saves (creates and edits
// with good and bad fields: unknown or own parents, parent cycles, names taken, ids that
// exist in another case) and alias additions through routing.Admin against the real
// store, and checks after every step: a refused save changed nothing; an accepted one is
// stored as given, in the registry at once, with every alias the unit had; the stored
// units and the registry agree; no parent chain goes round; no two units share a name.
func TestSaveUnitProperty(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2026))
			prefix := fmt.Sprintf("330922-p%d%d", seed, time.Now().UnixNano()%1e6)
			ids := []string{prefix + "-a", prefix + "-b", prefix + "-c", prefix + "-d"}
			pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
			snapshot := func() map[string]routing.RegistryUnit {
				list, err := srv.routing.Units.Units(ctx)
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]routing.RegistryUnit{}
				for _, u := range list {
					if strings.HasPrefix(strings.ToLower(u.ID), prefix) {
						out[u.ID] = u
					}
				}
				return out
			}
			accepted, refused := 0, 0
			for step := range 60 {
				before := snapshot()
				in := routing.RegistryUnit{Unit: routing.Unit{ID: pick(ids...), Name: fmt.Sprintf("嵊泗县属性测试%s单位%s", prefix[len("330922-"):], pick("甲", "乙", "丙", "丁", "戊")),
					Kind: routing.UnitKind(pick("qt", "zg", "pz", "qt", "zg", "zz")), Division: pick("330922", "330922", "330922", "110101", "")},
					Parent: pick(append(append(ids, ids...), "330922-jw", "330922-jw", "", "330922-nowhere")...), Active: rng.IntN(4) != 0}
				create := rng.IntN(3) == 0 || len(before) == 0
				if _, exists := before[in.ID]; create && exists && rng.IntN(3) == 0 {
					in.ID = strings.ToUpper(in.ID) // the same id in another case
				}
				if have := slices.Sorted(maps.Keys(before)); !create && len(have) > 0 && rng.IntN(5) != 0 {
					in.ID = pick(have...) // mostly edit a unit that exists
				}
				var err error
				op := "save"
				if rng.IntN(6) == 0 {
					op = "alias"
					_, err = srv.routing.AddUnitAlias(ctx, in.ID, fmt.Sprintf("属性别名%d", step))
				} else {
					_, _, err = srv.routing.SaveUnit(ctx, in, create)
				}
				after := snapshot()
				what := fmt.Sprintf("step %d: %s create=%v %+v", step, op, create, in)
				old, existed := before[in.ID]
				switch {
				case err != nil:
					refused++
					if !reflect.DeepEqual(before, after) {
						t.Fatalf("%s: refused (%v) but the store changed", what, err)
					}
				case op == "save":
					accepted++
					got := after[in.ID]
					if create && existed {
						t.Fatalf("%s: created over an existing unit", what)
					}
					if got.Name != in.Name || got.Kind != in.Kind || got.Parent != in.Parent || got.Active != in.Active || got.Division != in.Division {
						t.Fatalf("%s: stored %+v", what, got)
					}
					for _, a := range old.Aliases {
						if !slices.Contains(got.Aliases, a) {
							t.Fatalf("%s: alias %q lost", what, a)
						}
					}
				}
				if !create && op == "save" && !existed && qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
					t.Fatalf("%s: editing a unit that does not exist: %v", what, err)
				}
				names := map[string]string{}
				for id, u := range after {
					if r, ok := srv.routing.Engine.Units.Get(id); !ok || !reflect.DeepEqual(r, u) {
						t.Fatalf("%s: the registry has %+v, the store %+v", what, r, u)
					}
					if other, dup := names[routing.NormalizeName(u.Name)]; dup {
						t.Fatalf("%s: %s and %s share the name %s", what, id, other, u.Name)
					}
					names[routing.NormalizeName(u.Name)] = id
					seen := map[string]bool{}
					for p := u.Parent; p != ""; p = after[p].Parent {
						if seen[p] || p == id {
							t.Fatalf("%s: the parents of %s go round", what, id)
						}
						seen[p] = true
					}
				}
			}
			t.Logf("seed %d: %d saves accepted, %d refused, %d units", seed, accepted, refused, len(snapshot()))
			if accepted < 5 || refused < 5 {
				t.Error("too few accepted or refused saves: the sequence tests little")
			}
		})
	}
}

// TestConsoleAdminUnitLoad: a unit's page says how many of its cases are not closed,
// per status, and how many of its staff accounts are enabled, and marks open cases no
// one can work — what stays with the unit when it is deactivated. A case linked as a
// duplicate is not counted, a case transferred to the unit and not yet accepted is. The
// admin's list of units with open cases and no enabled staff account lists the unit once
// its only staff account is disabled, and never a unit with staff.
func TestConsoleAdminUnitLoad(t *testing.T) {
	ctx := context.Background()
	id := fmt.Sprintf("330782-qt%d", time.Now().UnixNano()%1e9)
	if _, _, err := srv.routing.SaveUnit(ctx, routing.RegistryUnit{Unit: routing.Unit{ID: id, Name: "义乌市负载测试" + id[len("330782-qt"):] + "办公室",
		Kind: "qt", Division: "330782"}, Parent: "330782-jw", Active: true}, true); err != nil {
		t.Fatal(err)
	}
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	load := func() string {
		t.Helper()
		p := getPage(t, ac, "/console/admin/units?id="+id)
		if p.status != 200 {
			t.Fatalf("unit page: %d", p.status)
		}
		return regexpFind(t, `(?s)<p id="unit-load">(.*?)</p>`, p.body)
	}
	if got := load(); got != "现无未结案的案件；在用的工作人员 0 名。" {
		t.Errorf("a new unit: %q", got)
	}
	mz, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	own, staff := staffLogin(t, accounts.RoleStaff, id, "")
	var numbers []string
	for range 3 {
		n := fileReport(t, anonymousReport()).CaseNumber
		wantStatus(t, postJSON(t, "/v1/cases/"+n+"/transfer", mz, map[string]any{"to_unit": id, "reason": "属本单位职责"}), 200)
		numbers = append(numbers, n)
	}
	for _, n := range numbers[:2] {
		wantStatus(t, postJSON(t, "/v1/cases/"+n+"/transfer/accept", own, map[string]any{"reason": "接收"}), 200)
	}
	wantStatus(t, postJSON(t, "/v1/cases/"+numbers[1]+"/transitions", own,
		map[string]any{"action": "link_duplicate", "reason": "同一事项", "duplicate_of": numbers[0]}), 200)
	if got := load(); got != "现有未结案的案件 2 件（已登记 2）；在用的工作人员 1 名。" {
		t.Errorf("two registered (one of them still a pending transfer), one duplicate: %q", got)
	}
	wantStatus(t, postJSON(t, "/v1/cases/"+numbers[0]+"/transitions", own, map[string]any{"action": "accept", "reason": "受理"}), 200)
	if got := load(); got != "现有未结案的案件 2 件（已登记 1、已受理 1）；在用的工作人员 1 名。" {
		t.Errorf("one accepted: %q", got)
	}
	// The list of units whose open cases no one can work.
	unstaffed := func() string {
		t.Helper()
		p := getPage(t, ac, "/console/admin/units?unstaffed=1")
		if p.status != 200 || !strings.Contains(p.body, `id="unstaffed-title"`) {
			t.Fatalf("unstaffed units: %d", p.status)
		}
		if strings.Contains(p.body, `id="unstaffed-330782-mz"`) {
			t.Error("a unit with staff is listed as unstaffed")
		}
		return regexpFind(t, `(?s)<tr id="unstaffed-`+id+`">(.*?)</tr>|$`, p.body)
	}
	if row := unstaffed(); row != "" {
		t.Errorf("a unit with an enabled staff account is listed: %s", row)
	}
	if _, err := srv.Accounts.SetDisabled(ctx, staff.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := load(); !strings.HasPrefix(got, "现有未结案的案件 2 件（已登记 1、已受理 1）；在用的工作人员 0 名。") || !strings.Contains(got, `id="unit-unstaffed"`) {
		t.Errorf("its only staff account disabled: %q", got)
	}
	if row := unstaffed(); !strings.Contains(row, `href="/console/admin/units?id=`+id+`"`) || !strings.Contains(row, "2 件（已登记 1、已受理 1）") {
		t.Errorf("its only staff account disabled, the unstaffed list: %q", row)
	}
}
