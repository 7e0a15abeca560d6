package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Tests of the console's routing pages: the explain tool as a form (the API's answer,
// nothing written), the complete rules form (the API's validation, nothing created on
// error), and the audit page's actors and broken-chain display.

// explainWords is a routing decision as the explain page (or the case page) shows it.
type explainWords struct {
	Unit, Rule, Fallback, Informed string
	Candidates                     [][4]string // unit, 承办/未选, why, rule
}

var (
	wordsUnit      = regexp.MustCompile(`<p id="routing-reason"><strong>(.*?)</strong>`)
	wordsRule      = regexp.MustCompile(`<p id="routing-rule">依据规则：<span class="mono">(.*?)</span>`)
	wordsFallback  = regexp.MustCompile(`<p class="notice" id="routing-fallback">(.*?)</p>`)
	wordsInformed  = regexp.MustCompile(`<p id="routing-informed">抄送：(.*?)</p>`)
	wordsCandidate = regexp.MustCompile(`<tr><td>(.*?)</td><td>(承办|未选)</td><td>(.*?)</td><td class="mono">(.*?)</td></tr>`)
	summaryHref    = regexp.MustCompile(`<li><a href="#([^"]+)">`)
)

func wordsOf(body string) explainWords {
	first := func(re *regexp.Regexp) string {
		if m := re.FindStringSubmatch(body); m != nil {
			return html.UnescapeString(m[1])
		}
		return ""
	}
	w := explainWords{Unit: first(wordsUnit), Rule: first(wordsRule), Fallback: first(wordsFallback), Informed: first(wordsInformed)}
	for _, m := range wordsCandidate.FindAllStringSubmatch(body, -1) {
		w.Candidates = append(w.Candidates, [4]string{html.UnescapeString(m[1]), m[2], html.UnescapeString(m[3]), html.UnescapeString(m[4])})
	}
	return w
}

// summaryFields are the element ids the error summary links to, sorted.
func summaryFields(body string) []string {
	var out []string
	for _, m := range summaryHref.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// apiDecision is the decision of POST /v1/routing/explain.
type apiDecision struct {
	UnitName       string `json:"unit_name"`
	Fallback       bool   `json:"fallback"`
	FallbackReason string `json:"fallback_reason"`
	RuleID         string `json:"rule_id"`
	RuleVersion    int    `json:"rule_version"`
	Candidates     []struct {
		UnitName string `json:"unit_name"`
		RuleID   string `json:"rule_id"`
		Chosen   bool   `json:"chosen"`
		Excluded string `json:"excluded"`
		Detail   string `json:"detail"`
	} `json:"candidates"`
	Informed []struct {
		Name string `json:"name"`
	} `json:"informed"`
}

// agree says how the page's words and the API's decision differ ("" if they do not).
func agree(w explainWords, d apiDecision) string {
	if w.Unit != d.UnitName {
		return fmt.Sprintf("unit %q, API %q", w.Unit, d.UnitName)
	}
	wantRule := ""
	if d.RuleID != "" {
		wantRule = d.RuleID + "（规则版本 " + strconv.Itoa(d.RuleVersion) + "）"
	}
	if w.Rule != wantRule {
		return fmt.Sprintf("rule %q, API %q", w.Rule, wantRule)
	}
	if (w.Fallback != "") != d.Fallback {
		return fmt.Sprintf("fallback %q, API %v (%s)", w.Fallback, d.Fallback, d.FallbackReason)
	}
	var informed []string
	for _, u := range d.Informed {
		informed = append(informed, u.Name)
	}
	if w.Informed != strings.Join(informed, "、") {
		return fmt.Sprintf("informed %q, API %q", w.Informed, informed)
	}
	if len(w.Candidates) != len(d.Candidates) {
		return fmt.Sprintf("%d candidates, API %d", len(w.Candidates), len(d.Candidates))
	}
	for i, c := range d.Candidates {
		row := w.Candidates[i]
		name := c.UnitName
		if name == "" {
			name = "（未能确定）"
		}
		chosen := map[bool]string{true: "承办", false: "未选"}[c.Chosen]
		why := row[2]
		okWhy := why == c.Detail
		if c.Excluded != "" {
			label, _, found := strings.Cut(why, "：")
			okWhy = found && label != "" && strings.HasSuffix(why, "："+c.Detail)
		}
		if row[0] != name || row[1] != chosen || !okWhy || row[3] != c.RuleID {
			return fmt.Sprintf("candidate %d: page %q, API %+v", i, row, c)
		}
	}
	return ""
}

// explainBody is the API request for the form's values, as the page sends them: empty
// fields left out, the person's when the subject is an organization and the reverse.
func explainBody(v url.Values) map[string]any {
	body := map[string]any{}
	get := func(k string) string {
		if strings.TrimSpace(v.Get(k)) == "" {
			return ""
		}
		return v.Get(k)
	}
	if c := get("category"); c != "" {
		body["category"] = c
	}
	if d := get("description"); d != "" {
		body["description"] = d
	}
	div := get("location.division")
	if div == "" {
		for _, k := range []string{"_town", "_county", "_city"} {
			if div = get(k); div != "" {
				break
			}
		}
	}
	if div != "" {
		body["location"] = map[string]any{"division": div}
	}
	kind := get("subject.kind")
	subj, org, person := map[string]any{}, map[string]any{}, map[string]any{}
	if kind != "" {
		subj["kind"] = kind
	}
	for _, f := range []string{"name", "credit_code"} {
		if x := get("subject.organization." + f); x != "" && kind != "person" {
			org[f] = x
		}
	}
	for _, f := range []string{"name", "position", "employer"} {
		if x := get("subject.person." + f); x != "" && kind != "organization" {
			person[f] = x
		}
	}
	if len(org) > 0 {
		subj["organization"] = org
	}
	if len(person) > 0 {
		subj["person"] = person
	}
	if len(subj) > 0 {
		body["subject"] = subj
	}
	return body
}

// randomExplain is a report's routing fields drawn from what reporters send: every
// category, organizations by name and/or code (registered, unknown, lower-case), persons
// with and without a position or an employer (a leader of a unit: recusal), places in
// and outside Zhejiang, through the picker or as a code; one input in three has one
// mistake of the kinds reporters make (capitals, zero-width or full-width characters,
// a field left out, a malformed code).
func randomExplain(rng *rand.Rand) url.Values {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	v := url.Values{}
	var cats []string
	for _, k := range intake.Categories {
		cats = append(cats, string(k.Code))
	}
	v.Set("category", pick(cats...))
	v.Set("subject.kind", pick("organization", "person"))
	if v.Get("subject.kind") == "organization" || rng.IntN(4) == 0 {
		v.Set("subject.organization.name", pick("义乌市某行业协会", "浙江省爱心事业基金会", "嵊泗县某协会", "义乌市民政局", ""))
		v.Set("subject.organization.credit_code", pick("", "", "53330000501874064B", "51330782MJ0000018J", "53330000501874064b"))
		if v.Get("subject.organization.name")+v.Get("subject.organization.credit_code") == "" {
			v.Set("subject.organization.name", "义乌市某行业协会")
		}
	}
	if v.Get("subject.kind") == "person" || rng.IntN(4) == 0 {
		v.Set("subject.person.name", pick("张三", "李四"))
		v.Set("subject.person.position", pick("", "局长", "主任", "科员", "党组书记"))
		v.Set("subject.person.employer", pick("", "义乌市民政局", "嵊泗县民政局", "嵊泗县纪委", "义乌市某行业协会", "杭州市某公司"))
	}
	v.Set("description", pick(explainDefaultDescription, "会长挪用会费"))
	div := pick("330782", "330782001", "330922", "330100", "330000", "310101", "330102")
	if rng.IntN(3) == 0 {
		switch rng.IntN(9) {
		case 0:
			v.Set("category", strings.ToUpper(v.Get("category")[:1])+v.Get("category")[1:])
		case 1:
			v.Set("category", v.Get("category")+"\u200b")
		case 2:
			v.Set("subject.kind", pick("", "Person", "組織"))
		case 3:
			v.Set("subject.organization.credit_code", "12345")
			v.Set("subject.kind", "organization")
		case 4:
			div = pick("999999", "３３０７８２", "330782\u200b")
		case 5:
			div = ""
		case 6:
			v.Set("description", "")
		case 7:
			v.Set("subject.kind", "person")
			v.Del("subject.person.name")
		case 8:
			v.Set("category", "")
		}
	}
	switch {
	case rng.IntN(2) == 0 && len(div) >= 6 && div[:2] == "33" && div[4:6] != "00" && !strings.ContainsRune(div, '\u200b'):
		v.Set("_city", div[:4]+"00")
		v.Set("_county", div[:6])
		if len(div) == 9 {
			v.Set("_town", div)
		}
	default:
		v.Set("location.division", div)
	}
	for k := range v {
		if v.Get(k) == "" {
			v.Del(k)
		}
	}
	return v
}

const explainDefaultDescription = "（分办试算）"

// TestConsoleExplain: the explain form for admins and staff (the API's roles, no one
// else), CSRF-checked; its answer is POST /v1/routing/explain's for a seeded set of
// random inputs (errors naming the same fields); bad input is named; nothing is
// written: no case, no case number, no audit entry.
func TestConsoleExplain(t *testing.T) {
	ctx := context.Background()
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	liaison, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	sc := consoleSignIn(t, staff, "")
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	lc := consoleSignIn(t, liaison, "")
	for who, c := range map[string]*http.Client{"staff": sc, "admin": ac} {
		if p := getPage(t, c, "/console/routing/explain"); p.status != 200 || !strings.Contains(p.body, `id="explain-form"`) {
			t.Errorf("%s on the explain page: %d", who, p.status)
		}
	}
	if p := getPage(t, lc, "/console/routing/explain"); p.status != 403 {
		t.Errorf("liaison on the explain page: %d", p.status)
	}
	if p := postPageForm(t, lc, "/console/routing/explain", url.Values{"_csrf": {consoleCSRF(t, lc)}, "category": {"other"}}); p.status != 403 || strings.Contains(p.body, "explain-result") {
		t.Errorf("liaison explaining: %d", p.status)
	}
	// The rules page's 试算 link fills in the rule's conditions.
	p := getPage(t, ac, "/console/admin/rules")
	if !strings.Contains(p.body, `href="/console/routing/explain?rule=default-illegal-org"`) || !strings.Contains(p.body, `href="/console/routing/explain"`) {
		t.Error("the rules page does not link the explain tool")
	}
	if p := getPage(t, ac, "/console/routing/explain?rule=default-illegal-org"); !strings.Contains(p.body, `<option value="illegal_org" selected>`) {
		t.Error("the 试算 link did not fill in the rule's category")
	}
	// Staff may explain but not list the rules: the link fills nothing in for them.
	if p := getPage(t, sc, "/console/routing/explain?rule=default-illegal-org"); p.status != 200 || strings.Contains(p.body, " selected>") || strings.Contains(p.body, "default-illegal-org") {
		t.Errorf("staff on the 试算 link: %d", p.status)
	}

	good := url.Values{"category": {"illegal_org"}, "subject.kind": {"organization"}, "subject.organization.name": {"义乌市某未登记协会"},
		"description": {explainDefaultDescription}, "_city": {"330700"}, "_county": {"330782"}}
	form := func(c *http.Client, v url.Values) url.Values {
		out := url.Values{"_csrf": {consoleCSRF(t, c)}}
		for k, vs := range v {
			out[k] = slices.Clone(vs)
		}
		return out
	}
	for _, tok := range []string{"", "1." + strings.Repeat("A", 24), consoleCSRF(t, ac)} {
		f := form(sc, good)
		f.Set("_csrf", tok)
		if p := postPageForm(t, sc, "/console/routing/explain", f); p.status != 403 || strings.Contains(p.body, "explain-result") {
			t.Errorf("explain with token %q: %d", tok, p.status)
		}
	}

	// The picker's update button (JavaScript off) lists the next level and decides nothing.
	if p := postPageForm(t, sc, "/console/routing/explain", form(sc, url.Values{"_action": {"divisions"}, "_city": {"330900"}, "category": {"dormant_org"}})); p.status != 200 ||
		!strings.Contains(p.body, `<option value="330922">嵊泗县</option>`) || strings.Contains(p.body, `id="explain-result"`) || strings.Contains(p.body, "error-summary") {
		t.Errorf("the picker's update: %d\n%s", p.status, p.body)
	}

	// Nothing written: a case filed before and one after many explains of the same
	// county get consecutive numbers; no audit entry, no case.
	report := func() string {
		b := anonymousReport()
		b["category"], b["location"] = "illegal_org", map[string]any{"division": "330782"}
		return fileReport(t, b).CaseNumber
	}
	before := report()
	seq, cases := lastAuditSeq(t), caseCount(t)
	p = postPageForm(t, sc, "/console/routing/explain", form(sc, good))
	w := wordsOf(p.body)
	if p.status != 200 || !strings.Contains(p.body, `id="explain-result"`) || w.Unit != "义乌市民政局" || !strings.HasPrefix(w.Rule, "default-illegal-org（规则版本 ") ||
		!strings.Contains(w.Informed, "义乌市公安局") || len(w.Candidates) == 0 {
		t.Fatalf("explain: %d %+v\n%s", p.status, w, p.body)
	}
	bad := []struct {
		name, key, value, field string
	}{
		{"no category", "category", "", "f-category"},
		{"category in capitals", "category", "Illegal_Org", "f-category"},
		{"full-width category", "category", "ｉｌｌｅｇａｌ_ｏｒｇ", "f-category"},
		{"zero-width in the category", "category", "illegal_org\u200b", "f-category"},
		{"traditional-script kind", "subject.kind", "組織", "f-subject-kind"},
		{"no organization", "subject.organization.name", " \u3000", "f-subject-organization"},
		{"malformed credit code", "subject.organization.credit_code", "５３３３０００００５０１８７４０６４Ｂ", "f-subject-organization-credit_code"},
		{"full-width division code", "location.division", "３３０７８２", "f-location-division"},
		{"zero-width in the division code", "location.division", "330782\u200b", "f-location-division"},
		{"an identity", "identity.name", "王五", "f-identity-name"},
		{"no description", "description", "", "f-description"},
	}
	for _, tc := range bad {
		f := form(sc, good)
		if tc.value == "" {
			f.Del(tc.key)
		} else {
			f.Set(tc.key, tc.value)
		}
		if tc.key == "location.division" {
			f.Del("_city")
			f.Del("_county")
		}
		p := postPageForm(t, sc, "/console/routing/explain", f)
		if p.status != 400 || !slices.Contains(summaryFields(p.body), tc.field) || strings.Contains(p.body, `id="explain-result"`) ||
			(tc.key != "subject.organization.name" && !strings.Contains(p.body, "义乌市某未登记协会")) {
			t.Errorf("%s: %d, summary %v, want 400 naming %s with the values kept", tc.name, p.status, summaryFields(p.body), tc.field)
		}
	}
	for _, key := range []string{"category", "subject.organization.name", "_county"} {
		f := form(sc, good)
		f.Add(key, f.Get(key))
		if p := postPageForm(t, sc, "/console/routing/explain", f); p.status != 400 || !strings.Contains(p.body, "字段重复出现") {
			t.Errorf("%s twice: %d", key, p.status)
		}
	}

	// The page and the API agree, on answers and on errors.
	token, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	rng := rand.New(rand.NewPCG(14, 2026))
	answered, refused := 0, 0
	for i := range 60 {
		v := randomExplain(rng)
		p := postPageForm(t, sc, "/console/routing/explain", form(sc, v))
		r := postJSON(t, "/v1/routing/explain", token, explainBody(v))
		switch {
		case r.Status == 200 && p.status == 200:
			var out struct {
				Decision apiDecision `json:"decision"`
			}
			r.json(t, &out)
			if diff := agree(wordsOf(p.body), out.Decision); diff != "" {
				t.Errorf("input %d %v: %s", i, v, diff)
			}
			answered++
		case r.Status == 400 && p.status == 400:
			var e struct {
				Error struct {
					Fields map[string]any `json:"fields"`
				} `json:"error"`
			}
			r.json(t, &e)
			var want []string
			for k := range e.Error.Fields {
				want = append(want, "f-"+strings.ReplaceAll(k, ".", "-"))
			}
			slices.Sort(want)
			if got := summaryFields(p.body); !slices.Equal(got, want) {
				t.Errorf("input %d %v: the page names %v, the API %v", i, v, got, want)
			}
			refused++
		default:
			t.Errorf("input %d %v: page %d, API %d %s", i, v, p.status, r.Status, r.Body)
		}
	}
	if answered < 30 || refused < 8 {
		t.Errorf("the inputs tried too little: %d answered, %d refused", answered, refused)
	}
	if s, n := lastAuditSeq(t), caseCount(t); s != seq || n != cases {
		t.Errorf("explaining wrote: audit %d → %d, cases %d → %d", seq, s, cases, n)
	}
	after := report()
	if nb, na := caseSerial(t, before), caseSerial(t, after); na != nb+1 {
		t.Errorf("explaining used case numbers: %s then %s", before, after)
	}

	// The case page says it in the same words: the same input filed as a report.
	b := anonymousReport()
	b["category"], b["location"] = "illegal_org", map[string]any{"division": "330782"}
	b["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"name": "义乌市某未登记协会"}}
	f := fileReport(t, b)
	cp := getPage(t, sc, "/console/cases/"+f.CaseNumber)
	if cw := wordsOf(cp.body); cp.status != 200 || !slices.Equal(cw.Candidates, w.Candidates) || cw.Unit != w.Unit || cw.Informed != w.Informed || cw.Rule != w.Rule {
		t.Errorf("the case page's words %+v, the explain page's %+v", cw, w)
	}
	if _, err := srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber); err != nil {
		t.Fatal(err)
	}
}

// caseSerial is the serial number at the end of a case number.
func caseSerial(t *testing.T, number string) int {
	t.Helper()
	n, err := strconv.Atoi(number[strings.LastIndexByte(number, '-')+1:])
	if err != nil {
		t.Fatalf("case number %q: %v", number, err)
	}
	return n
}

// TestConsoleAdminRulesForm: every field POST /v1/routing/rules takes, through the
// page, stored as given; each bad field (in capitals, full-width, zero-width, in
// traditional script, repeated, out of range, unknown) is a 400 naming it with the
// values kept, and nothing is created; the API refuses what the page refuses.
func TestConsoleAdminRulesForm(t *testing.T) {
	ctx := context.Background()
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	version := func() int { return ruleSetVersion(t) }
	v0 := version()
	id := fmt.Sprintf("form-test-%d", v0)
	good := func() url.Values {
		return url.Values{"_csrf": {csrf}, "op": {"create"}, "id": {id}, "name": {"嵊泗县基金会乱收费"}, "categories": {"arbitrary_fees", "donation_misuse"},
			"subject_kinds": {"organization", "org_staff"}, "org_types": {"基金会", "社会团体"}, "division_prefix": {"330922"}, "division_level": {"county"},
			"supervisory_unit": {"330922-mz"}, "employer_unit": {"330922-jw"},
			"primary.relation": {"kind_for_division"}, "primary.kind": {"mz"}, "primary.division": {"place"},
			"inform.0.relation": {"fixed"}, "inform.0.unit": {"330922-jw"},
			"inform.2.relation": {"kind_for_division"}, "inform.2.kind": {"scjg"}, "inform.2.division": {"330922"},
			"priority": {"7"}, "valid_from": {"2026-01-01T08:00"}, "valid_to": {"2036-01-01"}}
	}
	seq := lastAuditSeq(t)
	for _, tc := range []struct {
		name  string
		edit  func(url.Values)
		field string
	}{
		{"subject kind in capitals", func(f url.Values) { f["subject_kinds"] = []string{"Organization"} }, "f-subject_kinds"},
		{"organization type with a zero-width space", func(f url.Values) { f["org_types"] = []string{"基金会\u200b"} }, "f-org_types"},
		{"organization type in traditional script", func(f url.Values) { f["org_types"] = []string{"社會團體"} }, "f-org_types"},
		{"a category ticked twice", func(f url.Values) { f["categories"] = []string{"arbitrary_fees", "arbitrary_fees"} }, "f-categories"},
		{"a subject kind ticked twice", func(f url.Values) { f["subject_kinds"] = []string{"org_staff", "org_staff"} }, "f-subject_kinds"},
		{"the name twice", func(f url.Values) { f.Add("name", "另一个") }, "f-name"},
		{"a name of zero-width spaces", func(f url.Values) { f.Set("name", "\u200b\ufeff") }, "f-name"},
		{"informed unit in capitals", func(f url.Values) { f.Set("inform.0.relation", "Fixed") }, "f-inform-0-relation"},
		{"informed unit full-width (third row, second empty)", func(f url.Values) {
			f.Set("inform.2.relation", "fixed")
			f.Set("inform.2.unit", "３３０９２２-jw")
			f.Del("inform.2.kind")
			f.Del("inform.2.division")
		}, "f-inform-2-unit"},
		{"informed division unknown", func(f url.Values) { f.Set("inform.2.division", "999999") }, "f-inform-2-division"},
		{"supervisory unit in capitals", func(f url.Values) { f.Set("supervisory_unit", "330922-MZ") }, "f-supervisory_unit"},
		{"employer unit with a zero-width space", func(f url.Values) { f.Set("employer_unit", "330922-jw\u200b") }, "f-employer_unit"},
		{"valid from with slashes", func(f url.Values) { f.Set("valid_from", "2026/01/01") }, "f-valid_from"},
		{"valid to before valid from", func(f url.Values) { f.Set("valid_to", "2025-12-31") }, "f-valid_to"},
		{"priority over the bound", func(f url.Values) { f.Set("priority", "1001") }, "f-priority"},
		{"full-width priority", func(f url.Values) { f.Set("priority", "１０") }, "f-priority"},
		{"level in capitals", func(f url.Values) { f.Set("division_level", "County") }, "f-division_level"},
		{"primary kind unknown", func(f url.Values) { f.Set("primary.kind", "MZ") }, "f-primary-kind"},
		{"a field the form does not have", func(f url.Values) { f.Set("created_by", "someone") }, "f-created_by"},
	} {
		f := good()
		tc.edit(f)
		p := postPageForm(t, ac, "/console/admin/rules", f)
		if p.status != 400 || !slices.Contains(summaryFields(p.body), tc.field) || !strings.Contains(p.body, `value="`+id+`"`) {
			t.Errorf("%s: %d, summary %v, want 400 naming %s with the values kept", tc.name, p.status, summaryFields(p.body), tc.field)
		}
	}
	// The ticked boxes and the rows come back as sent.
	f := good()
	f.Set("priority", "1001")
	p := postPageForm(t, ac, "/console/admin/rules", f)
	for _, want := range []string{`id="f-sk-org_staff" name="subject_kinds" value="org_staff" checked`, `value="基金会" checked`,
		`<option value="scjg" selected>`, `name="inform.2.division" type="text" maxlength="12" spellcheck="false" class="short" value="330922"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("not kept: %s", want)
		}
	}
	if v, s := version(), lastAuditSeq(t); v != v0 || s != seq {
		t.Fatalf("refused forms changed something: version %d → %d, audit %d → %d", v0, v, seq, s)
	}
	// The API refuses what the page refuses: the same validation.
	token, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	for _, body := range []map[string]any{
		{"name": "\u200b", "primary": map[string]any{"relation": "registration_authority"}},
		{"name": "x", "priority": 5000, "primary": map[string]any{"relation": "registration_authority"}},
		{"name": "x", "categories": []string{"other", "other"}, "primary": map[string]any{"relation": "registration_authority"}},
	} {
		if r := postJSON(t, "/v1/routing/rules", token, body); r.Status != 400 {
			t.Errorf("API %v: %d", body, r.Status)
		}
	}

	p = postPageForm(t, ac, "/console/admin/rules", good())
	if p.status != 200 || !strings.Contains(p.body, "规则已添加") {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	set, _ := srv.routing.Rules(ctx)
	var got *routing.Rule
	for i, r := range set.Rules {
		if r.ID == id {
			got = &set.Rules[i]
		}
	}
	if got == nil {
		t.Fatal("the rule was not stored")
	}
	from, _ := time.Parse(time.RFC3339, "2026-01-01T08:00:00+08:00")
	to, _ := time.Parse(time.RFC3339, "2036-01-01T00:00:00+08:00")
	want := routing.Rule{ID: id, Name: "嵊泗县基金会乱收费", Categories: []intake.Category{"arbitrary_fees", "donation_misuse"},
		SubjectKinds: []routing.SubjectRole{"organization", "org_staff"}, OrgTypes: []string{"基金会", "社会团体"}, DivisionPrefix: "330922",
		DivisionLevel: "county", SupervisoryUnit: "330922-mz", EmployerUnit: "330922-jw",
		Primary: routing.Target{Relation: "kind_for_division", Kind: "mz", Division: "place"},
		Inform:  []routing.Target{{Relation: "fixed", Unit: "330922-jw"}, {Relation: "kind_for_division", Kind: "scjg", Division: "330922"}}, Priority: 7}
	if !slices.Equal(got.Categories, want.Categories) || !slices.Equal(got.SubjectKinds, want.SubjectKinds) || !slices.Equal(got.OrgTypes, want.OrgTypes) ||
		got.DivisionPrefix != want.DivisionPrefix || got.DivisionLevel != want.DivisionLevel || got.SupervisoryUnit != want.SupervisoryUnit ||
		got.EmployerUnit != want.EmployerUnit || got.Primary != want.Primary || !slices.Equal(got.Inform, want.Inform) || got.Priority != 7 ||
		!got.ValidFrom.Equal(from) || got.ValidTo == nil || !got.ValidTo.Equal(to) || got.CreatedBy != admin.ID || got.Name != want.Name {
		t.Errorf("stored %+v", *got)
	}
	row := regexpFind(t, `(?s)<tr id="rule-`+id+`">(.*?)</tr>`, p.body)
	for _, w := range []string{"基金会", "社会组织从业人员", "业务主管单位：嵊泗县民政局", "嵊泗县纪委", "2036年1月1日", `href="/console/routing/explain?rule=` + id + `"`} {
		if !strings.Contains(row, w) {
			t.Errorf("the rule's row lacks %q: %s", w, row)
		}
	}
	if e, _, _ := srv.Audit.Store.Last(ctx); e.Action != "routing.rule.create" || e.Detail["rule"] != id {
		t.Errorf("the creation's audit entry: %+v", e)
	}
	// Retire it again: other tests route through the same county.
	if p := postPageForm(t, ac, "/console/admin/rules", url.Values{"_csrf": {csrf}, "op": {"retire"}, "id": {id}}); p.status != 200 {
		t.Errorf("retire: %d", p.status)
	}
}

// TestConsoleAuditActors: the audit page names each actor by display name and
// username, an account that no longer resolves by its id, marked; reporters and the
// system in words. A page of 50 distinct actors costs one lookup each, timed.
func TestConsoleAuditActors(t *testing.T) {
	ctx := context.Background()
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	cs := fmt.Sprintf("QF-330782-2026-%06d", lastAuditSeq(t)%1_000_000+700_000)
	gone := fmt.Sprintf("u-gone-%d", time.Now().UnixNano())
	for _, actor := range []string{staff.ID, gone, audit.ActorReporter, audit.ActorSystem} {
		if err := srv.Audit.Record(ctx, actor, "staff", "case.read", cs, nil); err != nil {
			t.Fatal(err)
		}
	}
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	p := getPage(t, ac, "/console/admin/audit?case="+cs)
	if p.status != 200 {
		t.Fatalf("audit page: %d", p.status)
	}
	rows := regexp.MustCompile(`(?s)<tr id="a-\d+">(.*?)</tr>`).FindAllStringSubmatch(p.body, -1)
	if len(rows) < 4 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, want := range []string{staff.DisplayName + ` <span class="mono">（` + staff.Username + `）</span>`, gone + `</span> <span class="tag tag-overdue">账号已不存在`, "举报人（不记录身份）", "<td>系统</td>"} {
		if !strings.Contains(rows[i][1], want) {
			t.Errorf("row %d lacks %q: %s", i, want, rows[i][1])
		}
	}
	if strings.Contains(rows[0][1], staff.ID) {
		t.Errorf("a resolved actor is shown by id: %s", rows[0][1])
	}

	// 50 distinct actors (none resolves: the same primary-key lookup as one that does)
	// against 50 entries of one actor.
	many, one := cs[:len(cs)-1]+"1", cs[:len(cs)-1]+"2"
	for i := range 50 {
		if err := srv.Audit.Record(ctx, fmt.Sprintf("%s-%d", gone, i), "staff", "case.read", many, nil); err != nil {
			t.Fatal(err)
		}
		if err := srv.Audit.Record(ctx, staff.ID, "staff", "case.read", one, nil); err != nil {
			t.Fatal(err)
		}
	}
	timed := func(c string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			if p := getPage(t, ac, "/console/admin/audit?case="+c); p.status != 200 || strings.Count(p.body, `<tr id="a-`) != 50 {
				t.Fatalf("page of %s: %d", c, p.status)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	tMany, tOne := timed(many), timed(one)
	t.Logf("audit page of 50 entries: 50 distinct actors %v, one actor %v (best of 3)", tMany, tOne)
}

// TestConsoleAuditVerifyBroken: on a server of its own, one audit entry edited in the
// SQLite file; the verify page names the first broken entry's number and the reason in
// Chinese, and the API's verify says the same.
func TestConsoleAuditVerifyBroken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := &Main{Config: testConfig(t, dir, map[string]string{"QF_REQUIRE_2FA": "none"}), Log: slog.New(slog.DiscardHandler), Stderr: io.Discard}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()
	admin, err := m.Accounts.CreateUser(ctx, accounts.NewUser{Username: "verifier", DisplayName: "校验员", Password: consolePassword, Role: accounts.RoleAdmin},
		func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	const cs = "QF-330782-2026-000042"
	for i := range 5 {
		if err := m.Audit.Record(ctx, admin.ID, "admin", "case.read", cs, map[string]string{"i": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := m.Audit.List(ctx, audit.Query{Case: cs, Limit: 5})
	if err != nil || len(entries) != 5 {
		t.Fatalf("entries %v, %v", entries, err)
	}
	broken := entries[2].Seq
	rawExec(t, dir, `UPDATE audit SET detail = json_set(detail, '$.i', '9') WHERE seq = ?`, broken)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) string {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post := func(path string, v url.Values) (int, string) {
		resp, err := c.PostForm(base+path, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	token := func(body string) string {
		m := csrfInput.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no form token: %s", body)
		}
		return m[1]
	}
	if st, body := post("/console/login", url.Values{"_csrf": {token(get("/console/login"))}, "username": {"verifier"}, "password": {consolePassword}}); st != 200 || !strings.Contains(body, "校验员") {
		t.Fatalf("sign-in: %d", st)
	}
	st, body := post("/console/admin/audit/verify", url.Values{"_csrf": {token(get("/console/admin/audit"))}})
	want := fmt.Sprintf("哈希链在第 %d 条记录处断开", broken)
	if st != 200 || !strings.Contains(body, "校验未通过") || !strings.Contains(body, want) || !strings.Contains(body, html.EscapeString(audit.ReasonHash)) ||
		!strings.Contains(body, fmt.Sprintf(`href="/console/admin/audit?after=%d" id="verify-broken-link"`, broken-1)) {
		t.Fatalf("verify page: %d, want %q\n%s", st, want, body)
	}
	if list := get(fmt.Sprintf("/console/admin/audit?after=%d", broken-1)); !strings.Contains(list, fmt.Sprintf(`<tr id="a-%d">`, broken)) || !strings.Contains(list, "i=9") {
		t.Error("the broken entry's link does not list it")
	}

	resp, err := http.Post(base+"/v1/auth/login", "application/json", strings.NewReader(`{"username":"verifier","password":"`+consolePassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", base+"/v1/admin/audit/verify", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		OK          bool `json:"ok"`
		FirstBroken *struct {
			Seq    int64  `json:"seq"`
			Reason string `json:"reason"`
		} `json:"first_broken"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	if resp.StatusCode != 200 || v.OK || v.FirstBroken == nil || v.FirstBroken.Seq != broken || v.FirstBroken.Reason != audit.ReasonHash {
		t.Errorf("API verify: %d %+v", resp.StatusCode, v)
	}
}

// TestConsoleRoutingConcurrent: 32 admins' forms creating the same rule at once make
// one rule and one new version, the others refused (never a 500); 32 explains at once
// all answer the same and write nothing.
func TestConsoleRoutingConcurrent(t *testing.T) {
	ctx := context.Background()
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	set, err := srv.routing.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v0 := set.Version
	id := fmt.Sprintf("race-%d", v0)
	form := url.Values{"_csrf": {csrf}, "op": {"create"}, "id": {id}, "name": {"并发测试"}, "categories": {"formalism"},
		"division_prefix": {"330922"}, "primary.relation": {"discipline_at_management_level"}, "priority": {"-1000"}}
	statuses := make(chan int, 32)
	for range 32 {
		go func() {
			resp, err := ac.PostForm(baseURL+"/console/admin/rules", form)
			if err != nil {
				statuses <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	count := map[int]int{}
	for range 32 {
		count[<-statuses]++
	}
	if count[200] != 1 || count[200]+count[409]+count[400] != 32 {
		t.Errorf("32 creations of one rule: %v", count)
	}
	set, _ = srv.routing.Rules(ctx)
	n := 0
	for _, r := range set.Rules {
		if r.ID == id {
			n++
		}
	}
	if n != 1 || set.Version != v0+1 {
		t.Errorf("%d rules %s, version %d → %d", n, id, v0, set.Version)
	}
	if p := postPageForm(t, ac, "/console/admin/rules", url.Values{"_csrf": {csrf}, "op": {"retire"}, "id": {id}}); p.status != 200 {
		t.Errorf("retire: %d", p.status)
	}

	seq, cases := lastAuditSeq(t), caseCount(t)
	explain := url.Values{"_csrf": {csrf}, "category": {"official_discipline"}, "subject.kind": {"person"}, "subject.person.name": {"王五"},
		"subject.person.position": {"局长"}, "subject.person.employer": {"义乌市民政局"}, "description": {explainDefaultDescription}, "location.division": {"330782"}}
	bodies := make(chan string, 32)
	for range 32 {
		go func() {
			resp, err := ac.PostForm(baseURL+"/console/routing/explain", explain)
			if err != nil {
				bodies <- ""
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				bodies <- ""
				return
			}
			bodies <- string(b)
		}()
	}
	var first explainWords
	for i := range 32 {
		w := wordsOf(<-bodies)
		if i == 0 {
			first = w
		}
		if w.Unit == "" || fmt.Sprint(w) != fmt.Sprint(first) {
			t.Errorf("explain %d: %+v, the first %+v", i, w, first)
		}
	}
	if s, n := lastAuditSeq(t), caseCount(t); s != seq || n != cases {
		t.Errorf("explaining wrote: audit %d → %d, cases %d → %d", seq, s, cases, n)
	}
}
