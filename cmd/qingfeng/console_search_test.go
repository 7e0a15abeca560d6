package main

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/routing"
)

var queueNumber = regexp.MustCompile(`<th scope="row"><a href="/console/cases/(QF-[0-9]+-[0-9]+-[0-9]+)">`)

// queueNumbers are the case numbers the queue page lists, and its next page's link.
func queueNumbers(p page) (numbers []string, next string) {
	for _, m := range queueNumber.FindAllStringSubmatch(p.body, -1) {
		numbers = append(numbers, m[1])
	}
	if m := regexp.MustCompile(`<a href="([^"]+)" class="button" id="next-page">`).FindStringSubmatch(p.body); m != nil {
		next = html.UnescapeString(m[1])
	}
	return numbers, next
}

// TestConsoleQueueOrgSearch: staff search their queue by the reported organization,
// as a registered name (its start, traditional script, brackets, invisible characters)
// or a credit code (full width, lower case, spaces, zero-width space); a case filed with
// only the code is found by the registered name and one filed with only the name by
// the code. Another unit's case about the same organization is never listed, paging
// keeps the search, the status tabs and filters combine with it, and bad input is a
// clear error in words; GET /v1/cases?org= answers the same.
func TestConsoleQueueOrgSearch(t *testing.T) {
	ctx := context.Background()
	code := newImportCode("330782")
	serial := strings.TrimPrefix(code[10:16], "0")
	name := "义乌市清风（测试" + serial + "）慈善会"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: name, Type: "社会团体", RegDivision: "330782", Division: "330782", Status: routing.OrgNormal})

	file := func(division, code, name string) (number, unit string) {
		t.Helper()
		body := anonymousReport()
		body["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"credit_code": code, "name": name}}
		body["location"] = map[string]any{"division": division}
		f := fileReport(t, body)
		cs, err := srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber)
		if err != nil {
			t.Fatal(err)
		}
		return f.CaseNumber, cs.UnitID
	}
	fullWidth := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r > ' ' && r < 0x7f {
				return r + 0xFEE0
			}
			return r
		}, s)
	}
	var ours []string // newest first
	byCode, unit := file("330782", strings.ToLower(fullWidth(code)), "")
	ours = append([]string{byCode}, ours...)
	byName, unit2 := file("330782", "", "義烏市清風(測試"+serial+")慈善會")
	if unit2 != unit {
		t.Fatalf("the two reports went to %s and %s", unit, unit2)
	}
	ours = append([]string{byName}, ours...)
	for range 3 {
		n, _ := file("330782", "", name)
		ours = append([]string{n}, ours...)
	}
	// A report about the same organization from Pingyang goes to its registration
	// authority too, which transfers it to Pingyang's 民政局: no longer ours to list.
	theirs, _ := file("330326", "", name)
	token, _ := staffLogin(t, accounts.RoleStaff, unit, "")
	const otherUnit = "330326-mz"
	wantStatus(t, postJSON(t, "/v1/cases/"+theirs+"/transfer", token, map[string]any{"to_unit": otherUnit, "reason": "属平阳县管辖"}), 200)

	staff, _, _ := consoleAccount(t, accounts.RoleStaff, unit, "", false)
	c := consoleSignIn(t, staff, "")
	search := func(q string, extra ...string) page {
		t.Helper()
		return getPage(t, c, "/console/cases?q="+url.QueryEscape(q)+strings.Join(extra, ""))
	}
	for _, q := range []string{
		name, "义乌市清风(测试" + serial + ")慈善会", "義烏市清風（測試" + serial + "）慈善會", "义乌市清风", "义乌市\u200b清风 （测试",
		"清风（测试" + serial + "）", "清風(測試" + serial + ")慈善",
		code, strings.ToLower(code), fullWidth(code), code[:6] + "\u200b" + code[6:], " " + code[:9] + " " + code[9:] + " ",
	} {
		p := search(q)
		got, _ := queueNumbers(p)
		if p.status != 200 || !slices.Equal(got, ours) {
			t.Errorf("search %q: %d, listed %v, want %v", q, p.status, got, ours)
		}
		if !strings.Contains(p.body, "按被举报组织搜索“"+html.EscapeString(strings.TrimSpace(q))+"”：") || strings.Contains(p.body, "尚未支持") {
			t.Errorf("search %q: no heading naming the search", q)
		}
		if strings.Contains(p.body, theirs) {
			t.Errorf("search %q lists %s, another unit's case", q, theirs)
		}
	}
	// The other unit finds its own case only.
	oc := consoleSignIn(t, func() *accounts.User {
		u, _, _ := consoleAccount(t, accounts.RoleStaff, otherUnit, "", false)
		return u
	}(), "")
	if got, _ := queueNumbers(getPage(t, oc, "/console/cases?q="+url.QueryEscape(name))); !slices.Equal(got, []string{theirs}) {
		t.Errorf("the other unit's search: %v, want [%s]", got, theirs)
	}
	// A unit of the same county with no such case: a clear empty state.
	sc := consoleSignIn(t, func() *accounts.User {
		u, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-scjg", "", false)
		return u
	}(), "")
	if unit != "330782-scjg" {
		p := getPage(t, sc, "/console/cases?q="+url.QueryEscape(code))
		if got, _ := queueNumbers(p); len(got) != 0 || !strings.Contains(p.body, "本单位没有被举报组织与“"+code+"”相符的案件") {
			t.Errorf("330782-scjg's search: %v\n%s", got, p.body)
		}
	}
	// Not a substring, not another organization.
	for _, q := range []string{"（测试" + serial + "）慈善会", "义乌市清风（测试" + serial + "）慈善会分会"} {
		if got, _ := queueNumbers(search(q)); len(got) != 0 {
			t.Errorf("search %q: %v", q, got)
		}
	}

	// Paging keeps the search: two a page, to the end, each case once.
	var all []string
	p := search(name, "&limit=2")
	for pages := 0; ; pages++ {
		got, next := queueNumbers(p)
		all = append(all, got...)
		if next == "" || pages > 5 {
			break
		}
		if !strings.Contains(next, "q=") {
			t.Fatalf("next page %s drops the search", next)
		}
		p = getPage(t, c, next)
	}
	if !slices.Equal(all, ours) {
		t.Errorf("paged: %v, want %v", all, ours)
	}
	// With the status tabs and the filters.
	p = search(name, "&status=accepted")
	if got, _ := queueNumbers(p); len(got) != 0 || !strings.Contains(p.body, "（在所选筛选条件下）") {
		t.Errorf("accepted only: %v", got)
	}
	if !strings.Contains(p.body, `href="/console/cases?status=registered&amp;q=`+url.QueryEscape(name)+`"`) {
		t.Errorf("the status tabs drop the search")
	}
	// The tabs count the whole unit: while searching they show no count that could be
	// read as the matches'.
	tabs := regexpFind(t, `(?s)<nav aria-label="按状态" class="tabs">(.*?)</nav>`, p.body)
	if strings.Contains(tabs, `<span class="count">`) || !strings.Contains(tabs, `id="tabs-searching"`) {
		t.Errorf("the status tabs while searching:\n%s", tabs)
	}
	if tabs := regexpFind(t, `(?s)<nav aria-label="按状态" class="tabs">(.*?)</nav>`, getPage(t, c, "/console/cases").body); strings.Count(tabs, `<span class="count">`) < 2 ||
		strings.Contains(tabs, `id="tabs-searching"`) {
		t.Errorf("the status tabs without a search:\n%s", tabs)
	}
	if got, _ := queueNumbers(search(name, "&status=registered")); !slices.Equal(got, ours) {
		t.Errorf("registered: %v, want %v", got, ours)
	}
	// Anonymous reports have no acceptance deadline: by due, none is listed.
	if got, _ := queueNumbers(search(name, "&sort=due")); len(got) != 0 {
		t.Errorf("by due: %v", got)
	}
	if got, _ := queueNumbers(search(name, "&category=donation_misuse")); len(got) != 0 {
		t.Errorf("another category: %v", got)
	}
	// Too short: an error in words, nothing listed.
	for _, q := range []string{"义", "\u200b义 ", "（"} {
		p := search(q)
		if got, _ := queueNumbers(p); p.status != 400 || len(got) != 0 || !strings.Contains(p.body, "名称的至少两个字") {
			t.Errorf("search %q: %d %v", q, p.status, got)
		}
	}
	// A whole case number still opens the case.
	if p := getPage(t, noRedirect(c), "/console/cases?q="+url.QueryEscape(strings.ToLower(byName))); p.status != 303 || !strings.HasSuffix(p.header.Get("Location"), "/console/cases/"+byName) {
		t.Errorf("a case number: %d %s", p.status, p.header.Get("Location"))
	}

	// The API: the same search, the same scope, strict validation.
	var list struct {
		Cases []struct {
			CaseNumber string `json:"case_number"`
		} `json:"cases"`
	}
	r := do(t, req{method: "GET", path: "/v1/cases?org=" + url.QueryEscape(fullWidth(strings.ToLower(code))), token: token})
	wantStatus(t, r, 200)
	r.json(t, &list)
	var got []string
	for _, cs := range list.Cases {
		got = append(got, cs.CaseNumber)
	}
	if !slices.Equal(got, ours) {
		t.Errorf("GET /v1/cases?org=: %v, want %v", got, ours)
	}
	for _, bad := range []string{"某", strings.Repeat("慈", 80)} {
		r := do(t, req{method: "GET", path: "/v1/cases?org=" + url.QueryEscape(bad), token: token})
		wantStatus(t, r, 400)
		if !strings.Contains(string(r.Body), `"org"`) {
			t.Errorf("org=%q: %s", bad, r.Body)
		}
	}
}
