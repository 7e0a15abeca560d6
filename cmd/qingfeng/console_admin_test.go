package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
)

// Tests of the admin pages of the console beyond accounts: each is admin-only, every
// form needs the session's CSRF token, and bad input is shown with the field named
// and changes nothing.

// lastAuditSeq is the Seq of the newest audit entry.
func lastAuditSeq(t *testing.T) int64 {
	t.Helper()
	e, _, err := srv.Audit.Store.Last(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return e.Seq
}

// TestConsoleAdminAudit: the audit log pages by Seq and filters by case; reading it and
// verifying it are recorded; a bad case number (any spelling the API refuses) is a 400
// naming the field and reads nothing; staff get 403; verify without the token is refused.
func TestConsoleAdminAudit(t *testing.T) {
	ctx := context.Background()
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	cs := fmt.Sprintf("QF-330782-2026-%06d", lastAuditSeq(t)%1_000_000+600_000)
	for i := range 55 {
		if err := srv.Audit.Record(ctx, "u-t", "staff", "case.read", cs, map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	sc := consoleSignIn(t, staff, "")
	for _, path := range []string{"/console/admin/audit", "/console/admin/audit?case=" + cs} {
		if p := getPage(t, sc, path); p.status != 403 || strings.Contains(p.body, cs) {
			t.Errorf("staff on %s: %d", path, p.status)
		}
	}
	if p := postPageForm(t, sc, "/console/admin/audit/verify", url.Values{"_csrf": {consoleCSRF(t, sc)}}); p.status != 403 {
		t.Errorf("staff verifying: %d", p.status)
	}

	ac := consoleSignIn(t, admin, nextTOTP(secret))
	p := getPage(t, ac, "/console/admin/audit?case="+cs)
	if p.status != 200 || strings.Count(p.body, `<tr id="a-`) != 50 || !strings.Contains(p.body, "i=0") || strings.Contains(p.body, "i=50") {
		t.Fatalf("first page of %s: %d, %d rows", cs, p.status, strings.Count(p.body, `<tr id="a-`))
	}
	if e, _, _ := srv.Audit.Store.Last(ctx); e.Action != "audit.list" || e.Actor != admin.ID || e.Case != cs {
		t.Errorf("reading the log was not recorded: %+v", e)
	}
	next := strings.ReplaceAll(regexpFind(t, `href="(/console/admin/audit\?[^"]+)" id="audit-next"`, p.body), "&amp;", "&")
	// The second page: the last five, then the first page's own read of the case.
	p = getPage(t, ac, next)
	if p.status != 200 || strings.Count(p.body, `<tr id="a-`) != 6 || !strings.Contains(p.body, "i=54") || !strings.Contains(p.body, "audit.list") || strings.Contains(p.body, "i=49;") ||
		strings.Contains(p.body, `id="audit-next"`) {
		t.Errorf("second page: %d, %d rows", p.status, strings.Count(p.body, `<tr id="a-`))
	}

	before := lastAuditSeq(t)
	lower := strings.ToLower(cs)
	wide := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r - '0' + '０'
		}
		return r
	}, cs)
	for _, bad := range []string{lower, wide, cs + "\u200b", "QF-330782-2026-12", "' OR 1=1", strings.Repeat("9", 200)} {
		p := getPage(t, ac, "/console/admin/audit?case="+url.QueryEscape(bad))
		if p.status != 400 || !strings.Contains(p.body, "案件编号格式不正确") || !strings.Contains(p.body, `href="#f-case"`) || strings.Contains(p.body, `<tr id="a-`) {
			t.Errorf("case %q: %d", bad, p.status)
		}
	}
	if p := getPage(t, ac, "/console/admin/audit?after=-1"); p.status != 400 {
		t.Errorf("after=-1: %d", p.status)
	}
	if got := lastAuditSeq(t); got != before {
		t.Errorf("a refused filter was recorded as a read: %d → %d", before, got)
	}

	// Verify: without the token, or with another session's, refused and not run.
	for _, tok := range []string{"", "1." + strings.Repeat("A", 24), consoleCSRF(t, sc)} {
		if p := postPageForm(t, ac, "/console/admin/audit/verify", url.Values{"_csrf": {tok}}); p.status != 403 || strings.Contains(p.body, `id="verify-result"`) {
			t.Errorf("verify with token %q: %d", tok, p.status)
		}
	}
	if got := lastAuditSeq(t); got != before {
		t.Errorf("a refused verify was recorded: %d → %d", before, got)
	}
	p = postPageForm(t, ac, "/console/admin/audit/verify?case="+cs, url.Values{"_csrf": {consoleCSRF(t, ac)}})
	if p.status != 200 || !strings.Contains(p.body, "校验通过") || !strings.Contains(p.body, cs) {
		t.Fatalf("verify: %d\n%s", p.status, p.body)
	}
	entries, err := srv.Audit.Store.List(ctx, audit.Query{After: before, Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	verified := false
	for _, e := range entries {
		verified = verified || (e.Action == "audit.verify" && e.Actor == admin.ID && e.Detail["ok"] == "true")
	}
	if !verified {
		t.Error("the verify was not recorded")
	}
}

// regexpFind is the first group of re in s.
func regexpFind(t *testing.T, re, s string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in the page", re)
	}
	return m[1]
}

// TestConsoleAdminRecipients: a custodian's key registered through the page shows
// under the county with the "fewer than two" risk; a second custodian clears it; the
// last-but-one key is revoked with a reason (recorded), the last is refused; bad keys
// (a private key, spaces, full-width, a revoked one again), an unknown account, a
// missing reason and a missing token change nothing; staff get 403.
func TestConsoleAdminRecipients(t *testing.T) {
	ctx := context.Background()
	const county = "330922" // 嵊泗县: no other test registers custodians here
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	c1, _, _ := consoleAccount(t, accounts.RoleCustodian, "", county, false)
	c2, _, _ := consoleAccount(t, accounts.RoleCustodian, "", county, false)
	id1, rcp1 := newKey(t)
	_, rcp2 := newKey(t)

	sc := consoleSignIn(t, staff, "")
	if p := getPage(t, sc, "/console/admin/recipients"); p.status != 403 {
		t.Errorf("staff on the recipients page: %d", p.status)
	}
	if p := postPageForm(t, sc, "/console/admin/recipients", url.Values{"_csrf": {consoleCSRF(t, sc)}, "op": {"register"}, "username": {c1.Username}, "recipient": {rcp1}}); p.status != 403 {
		t.Errorf("staff registering: %d", p.status)
	}
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	count := func() int {
		all, _, err := srv.keys.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	before, seq := count(), lastAuditSeq(t)
	wide := strings.Map(func(r rune) rune {
		if r >= '!' && r <= '~' {
			return r - '!' + '！'
		}
		return r
	}, rcp1)
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"private key", url.Values{"op": {"register"}, "username": {c1.Username}, "recipient": {id1}}, "f-recipient"},
		{"full-width key", url.Values{"op": {"register"}, "username": {c1.Username}, "recipient": {wide}}, "f-recipient"},
		{"key with a space inside", url.Values{"op": {"register"}, "username": {c1.Username}, "recipient": {rcp1[:20] + " " + rcp1[20:]}}, "f-recipient"},
		{"unknown account", url.Values{"op": {"register"}, "username": {"nobody-" + c1.Username}, "recipient": {rcp1}}, "f-username"},
		{"admin account", url.Values{"op": {"register"}, "username": {admin.Username}, "recipient": {rcp1}}, "f-username"},
		{"label too long", url.Values{"op": {"register"}, "username": {c1.Username}, "recipient": {rcp1}, "label": {strings.Repeat("长", 101)}}, "f-label"},
		{"no reason", url.Values{"op": {"revoke"}, "id": {"x"}, "reason": {" \u3000 "}}, "f-reason"},
	} {
		tc.form.Set("_csrf", csrf)
		p := postPageForm(t, ac, "/console/admin/recipients", tc.form)
		if p.status != 400 || !strings.Contains(p.body, `href="#`+tc.field+`"`) {
			t.Errorf("%s: %d, want 400 naming %s", tc.name, p.status, tc.field)
		}
	}
	for _, tok := range []string{"", consoleCSRF(t, sc)} {
		if p := postPageForm(t, ac, "/console/admin/recipients", url.Values{"_csrf": {tok}, "op": {"register"}, "username": {c1.Username}, "recipient": {rcp1}}); p.status != 403 {
			t.Errorf("register with token %q: %d", tok, p.status)
		}
	}
	if n, s := count(), lastAuditSeq(t); n != before || s != seq {
		t.Fatalf("refused forms changed something: %d → %d recipients, audit %d → %d", before, n, seq, s)
	}

	// The first key: the county is one lost key away.
	p := postPageForm(t, ac, "/console/admin/recipients", url.Values{"_csrf": {csrf}, "op": {"register"}, "username": {strings.ToUpper(c1.Username)}, "recipient": {rcp1}, "label": {"一号"}})
	if p.status != 200 || !strings.Contains(p.body, "公钥已登记") {
		t.Fatalf("register: %d", p.status)
	}
	risks := regexpFind(t, `(?s)<section class="notice" aria-labelledby="risks-title" id="risks">(.*?)</section>`, p.body)
	if !strings.Contains(risks, "嵊泗县（"+county+"）：只有1把保密员密钥") {
		t.Errorf("risks after one key: %s", risks)
	}
	// The same key for the second custodian: one key, one holder.
	if p := postPageForm(t, ac, "/console/admin/recipients", url.Values{"_csrf": {csrf}, "op": {"register"}, "username": {c2.Username}, "recipient": {rcp1}}); p.status != 409 || !strings.Contains(p.body, "一把密钥只能属于一人") {
		t.Errorf("a key registered twice: %d", p.status)
	}
	p = postPageForm(t, ac, "/console/admin/recipients", url.Values{"_csrf": {csrf}, "op": {"register"}, "username": {c2.Username}, "recipient": {rcp2}})
	if p.status != 200 || strings.Contains(p.body, "嵊泗县（"+county+"）：") {
		t.Errorf("the risk stays after the second key: %d", p.status)
	}
	var r1, r2 string
	all, _, _ := srv.keys.List(ctx)
	for _, r := range all {
		switch r.Recipient {
		case rcp1:
			r1 = r.ID
		case rcp2:
			r2 = r.ID
		}
	}
	if !strings.Contains(p.body, `<option value="`+r1+`">`) {
		t.Errorf("the key to revoke is not offered")
	}
	p = postPageForm(t, ac, "/console/admin/recipients", url.Values{"_csrf": {csrf}, "op": {"revoke"}, "id": {r1}, "reason": {"保密员调离"}})
	if p.status != 200 || !strings.Contains(p.body, "公钥已注销") || !strings.Contains(p.body, "只有1把保密员密钥") {
		t.Fatalf("revoke: %d", p.status)
	}
	if e, _, _ := srv.Audit.Store.Last(ctx); e.Action != "identity.recipient.revoke" || e.Detail["reason"] != "保密员调离" || e.Detail["recipient_id"] != r1 {
		t.Errorf("the revocation's audit entry: %+v", e)
	}
	// The county's last key stays; a revoked key cannot come back.
	seq = lastAuditSeq(t)
	if p := postPageForm(t, ac, "/console/admin/recipients", url.Values{"_csrf": {csrf}, "op": {"revoke"}, "id": {r2}, "reason": {"试试"}}); p.status != 409 || !strings.Contains(p.body, "最后一把保密员密钥") {
		t.Errorf("revoking the last key: %d", p.status)
	}
	if p := postPageForm(t, ac, "/console/admin/recipients", url.Values{"_csrf": {csrf}, "op": {"register"}, "username": {c1.Username}, "recipient": {rcp1}}); p.status != 409 || !strings.Contains(p.body, "已注销") {
		t.Errorf("a revoked key again: %d", p.status)
	}
	if s := lastAuditSeq(t); s != seq {
		t.Errorf("refused revoke or register recorded: %d → %d", seq, s)
	}
}

// TestConsoleAdminRules: a rule added through the page is in force at once and listed;
// bad input (no name, a prefix outside Zhejiang or of full-width digits, an unknown
// fixed unit, an unknown category, a bad priority) is a 400 naming the field and adds
// no version; retire takes it out of force; staff get 403; no token, no change.
func TestConsoleAdminRules(t *testing.T) {
	ctx := context.Background()
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	sc := consoleSignIn(t, staff, "")
	if p := getPage(t, sc, "/console/admin/rules"); p.status != 403 {
		t.Errorf("staff on the rules page: %d", p.status)
	}
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	version := func() int { return ruleSetVersion(t) }
	v0 := version()
	id := fmt.Sprintf("console-test-%d", v0)
	good := func() url.Values {
		return url.Values{"_csrf": {csrf}, "op": {"create"}, "id": {id}, "name": {"嵊泗县僵尸组织"}, "categories": {"dormant_org", "illegal_org"},
			"division_prefix": {"330922"}, "primary.relation": {"registration_authority"}, "priority": {"5"}}
	}
	for _, tc := range []struct {
		name, key, value, field string
	}{
		{"no name", "name", " \u3000", "f-name"},
		{"prefix outside Zhejiang", "division_prefix", "310101", "f-division_prefix"},
		{"full-width prefix", "division_prefix", "３３０９２２", "f-division_prefix"},
		{"unknown category", "categories", "Dormant_Org", "f-categories"},
		{"bad priority", "priority", "五", "f-priority"},
		{"bad id", "id", "Rule One", "f-id"},
		{"unknown fixed unit", "primary.relation", "fixed", "f-primary-unit"},
		{"unknown relation", "primary.relation", "nearest", "f-primary-relation"},
	} {
		f := good()
		f.Set(tc.key, tc.value)
		p := postPageForm(t, ac, "/console/admin/rules", f)
		if p.status != 400 || !strings.Contains(p.body, `href="#`+tc.field+`"`) || !strings.Contains(p.body, `value="`+id+`"`) && tc.key != "id" {
			t.Errorf("%s: %d, want 400 naming %s with the values kept", tc.name, p.status, tc.field)
		}
	}
	for _, tok := range []string{"", consoleCSRF(t, sc)} {
		f := good()
		f.Set("_csrf", tok)
		if p := postPageForm(t, ac, "/console/admin/rules", f); p.status != 403 {
			t.Errorf("create with token %q: %d", tok, p.status)
		}
	}
	if p := postPageForm(t, sc, "/console/admin/rules", url.Values{"_csrf": {consoleCSRF(t, sc)}, "op": {"retire"}, "id": {"anything"}}); p.status != 403 {
		t.Errorf("staff retiring: %d", p.status)
	}
	if v := version(); v != v0 {
		t.Fatalf("refused forms added versions: %d → %d", v0, v)
	}

	p := postPageForm(t, ac, "/console/admin/rules", good())
	if p.status != 200 || !strings.Contains(p.body, "规则已添加") {
		t.Fatalf("create: %d", p.status)
	}
	row := regexpFind(t, `(?s)<tr id="rule-`+id+`">(.*?)</tr>`, p.body)
	if !strings.Contains(row, "僵尸型社会组织") || !strings.Contains(row, "非法社会组织") || !strings.Contains(row, "330922") || !strings.Contains(row, "登记管理机关") ||
		!strings.Contains(row, `id="retire-`+id+`"`) {
		t.Errorf("the new rule's row: %s", row)
	}
	set, _ := srv.routing.Rules(ctx)
	found := false
	for _, r := range set.Rules {
		found = found || (r.ID == id && r.InForceAt(set.Version) && r.CreatedBy == admin.ID && r.Priority == 5 && len(r.Categories) == 2)
	}
	if !found {
		t.Errorf("the rule is not in force as given")
	}
	// The same id again is refused.
	if p := postPageForm(t, ac, "/console/admin/rules", good()); p.status < 400 || p.status >= 500 {
		t.Errorf("the same id again: %d", p.status)
	}
	p = postPageForm(t, ac, "/console/admin/rules", url.Values{"_csrf": {csrf}, "op": {"retire"}, "id": {id}})
	if p.status != 200 || !strings.Contains(p.body, "规则已停用") || strings.Contains(p.body, `id="rule-`+id+`"`) {
		t.Errorf("retire: %d", p.status)
	}
	if p := getPage(t, ac, "/console/admin/rules?all=true"); !strings.Contains(regexpFind(t, `(?s)<tr id="rule-`+id+`">(.*?)</tr>`, p.body), "已停用") {
		t.Error("the retired rule is not shown as retired among all versions")
	}
	if e, _, _ := srv.Audit.Store.Last(ctx); e.Action != "routing.rule.retire" || e.Detail["rule"] != id {
		t.Errorf("the retirement's audit entry: %+v", e)
	}
}

// TestConsoleAdminUnits: a unit looked up by code shows its aliases; an alias added
// through the page is the unit's (added twice, or written with other spacing, still
// once); another unit's name is refused, as are an empty or an over-long alias; it is
// removed by another way of writing it; staff get 403; no token, no change.
func TestConsoleAdminUnits(t *testing.T) {
	const unit = "330922-mz"
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	sc := consoleSignIn(t, staff, "")
	if p := getPage(t, sc, "/console/admin/units?id="+unit); p.status != 403 {
		t.Errorf("staff on the units page: %d", p.status)
	}
	if p := postPageForm(t, sc, "/console/admin/units", url.Values{"_csrf": {consoleCSRF(t, sc)}, "op": {"add"}, "id": {unit}, "alias": {"x"}}); p.status != 403 {
		t.Errorf("staff adding an alias: %d", p.status)
	}
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	aliases := func() []string {
		u, ok := srv.routing.Engine.Units.Get(unit)
		if !ok {
			t.Fatalf("no unit %s", unit)
		}
		return u.Aliases
	}
	if p := getPage(t, ac, "/console/admin/units?id=nope"); p.status != 404 || !strings.Contains(p.body, "没有编码为") || !strings.Contains(p.body, `href="#f-q"`) {
		t.Errorf("unknown unit: %d", p.status)
	}
	p := getPage(t, ac, "/console/admin/units?id="+unit)
	if p.status != 200 || !strings.Contains(p.body, "嵊泗县民政局") {
		t.Fatalf("unit page: %d", p.status)
	}
	before := len(aliases())
	for _, tc := range []struct{ name, alias string }{{"empty", " \u3000 "}, {"too long", strings.Repeat("长", 300)}, {"another unit's name", "义乌市民政局"}} {
		if p := postPageForm(t, ac, "/console/admin/units", url.Values{"_csrf": {csrf}, "op": {"add"}, "id": {unit}, "alias": {tc.alias}}); p.status < 400 || p.status >= 500 || !strings.Contains(p.body, `href="#f-alias"`) && p.status == 400 {
			t.Errorf("%s: %d", tc.name, p.status)
		}
	}
	for _, tok := range []string{"", consoleCSRF(t, sc)} {
		if p := postPageForm(t, ac, "/console/admin/units", url.Values{"_csrf": {tok}, "op": {"add"}, "id": {unit}, "alias": {"嵊泗民政"}}); p.status != 403 {
			t.Errorf("add with token %q: %d", tok, p.status)
		}
	}
	if n := len(aliases()); n != before {
		t.Fatalf("refused forms changed the aliases: %d → %d", before, n)
	}
	for _, a := range []string{"嵊泗民政", " 嵊泗民政 "} {
		p = postPageForm(t, ac, "/console/admin/units", url.Values{"_csrf": {csrf}, "op": {"add"}, "id": {unit}, "alias": {a}})
		if p.status != 200 || !strings.Contains(p.body, "别名已添加") {
			t.Fatalf("add %q: %d", a, p.status)
		}
	}
	if got := aliases(); len(got) != before+1 || !strings.Contains(regexpFind(t, `(?s)<ul id="aliases">(.*?)</ul>`, p.body), "嵊泗民政") {
		t.Errorf("aliases after adding twice: %q", got)
	}
	p = postPageForm(t, ac, "/console/admin/units", url.Values{"_csrf": {csrf}, "op": {"remove"}, "id": {unit}, "alias": {"嵊泗民政\u3000"}})
	if p.status != 200 || !strings.Contains(p.body, "别名已删除") || len(aliases()) != before {
		t.Errorf("remove: %d, aliases %q", p.status, aliases())
	}
	if p := postPageForm(t, ac, "/console/admin/units", url.Values{"_csrf": {csrf}, "op": {"remove"}, "id": {unit}, "alias": {"嵊泗民政"}}); p.status != 404 {
		t.Errorf("removing it again: %d", p.status)
	}
}

// postMultipart posts fields and one file part named file.
func postMultipart(t *testing.T, c *http.Client, path string, fields map[string]string, file string) page {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	fw, err := w.CreateFormFile("file", "calendar.json")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(fw, file)
	w.Close()
	resp, err := c.Post(baseURL+path, w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(b), url: resp.Request.URL.String(), header: resp.Header}
}

// TestConsoleAdminCalendar: a year's file uploaded through the page is loaded and
// listed; a bad file (no days, a bad date, a duplicate key, a case variant of a key,
// not JSON, empty) is a 400 naming the file and loads nothing; staff get 403; no
// token, no change.
func TestConsoleAdminCalendar(t *testing.T) {
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	y := `{"year":2023,"days":[{"name":"元旦","date":"2023-01-01","isOffDay":true},{"name":"春节","date":"2023-01-28","isOffDay":false}]}`
	sc := consoleSignIn(t, staff, "")
	if p := getPage(t, sc, "/console/admin/calendar"); p.status != 403 {
		t.Errorf("staff on the calendar page: %d", p.status)
	}
	if p := postMultipart(t, sc, "/console/admin/calendar", map[string]string{"_csrf": consoleCSRF(t, sc)}, y); p.status != 403 {
		t.Errorf("staff uploading: %d", p.status)
	}
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	has2023 := func() bool {
		for _, n := range srv.calendar.Years() {
			if n == 2023 {
				return true
			}
		}
		return false
	}
	for _, bad := range []string{
		`{"year":2023,"days":[]}`,
		`{"year":2023,"days":[{"date":"2023-13-01","isOffDay":true}]}`,
		`{"year":2023,"days":[{"name":"元旦","date":"2023-01-01","isOffDay":true,"isOffDay":false}]}`,
		`{"year":2023,"days":[{"name":"元旦","date":"2023-01-01","IsOffDay":true}]}`,
		"year,days\n2023,",
		"",
	} {
		p := postMultipart(t, ac, "/console/admin/calendar", map[string]string{"_csrf": csrf}, bad)
		if p.status != 400 || !strings.Contains(p.body, `href="#f-file"`) {
			t.Errorf("file %q: %d", bad, p.status)
		}
	}
	for _, tok := range []string{"", consoleCSRF(t, sc)} {
		if p := postMultipart(t, ac, "/console/admin/calendar", map[string]string{"_csrf": tok}, y); p.status != 403 {
			t.Errorf("upload with token %q: %d", tok, p.status)
		}
	}
	if has2023() {
		t.Fatal("a refused upload loaded 2023")
	}
	p := postMultipart(t, ac, "/console/admin/calendar", map[string]string{"_csrf": csrf}, y)
	if p.status != 200 || !strings.Contains(p.body, "2023年的节假日安排已载入") || !strings.Contains(regexpFind(t, `<p id="years">([^<]*)</p>`, p.body), "2023") {
		t.Fatalf("upload: %d", p.status)
	}
	if due, est := srv.Intake.Calendar.AddWorkingDays(time.Date(2023, 1, 27, 4, 0, 0, 0, time.UTC), 1); due != "2023-01-28" || est {
		t.Errorf("after loading 2023: %s (estimated %v)", due, est)
	}
}

// postParts posts multipart parts in the order given; a part named file is a file.
func postParts(t *testing.T, c *http.Client, path string, parts [][2]string, fileName string) page {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, p := range parts {
		if p[0] == "file" {
			fw, err := w.CreateFormFile("file", fileName)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(fw, p[1])
			continue
		}
		w.WriteField(p[0], p[1])
	}
	w.Close()
	resp, err := c.Post(baseURL+path, w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(b), url: resp.Request.URL.String(), header: resp.Header}
}

// TestConsoleAdminImport: an organization file uploaded through the page imports its
// good rows and lists each rejected row with the field and a Chinese message; a file
// of units as CSV, an empty file, a missing choice or parts out of order are a 400 and
// import nothing; staff get 403; without the token the file is not read.
func TestConsoleAdminImport(t *testing.T) {
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	good, bad := newImportCode("330782"), newImportCode("330782")
	file := "credit_code,name,status,registration_authority\n" + good + ",义乌市控制台导入协会,正常,\n" + bad + ",,正常,\n"
	sc := consoleSignIn(t, staff, "")
	if p := getPage(t, sc, "/console/admin/import"); p.status != 403 {
		t.Errorf("staff on the import page: %d", p.status)
	}
	if p := postParts(t, sc, "/console/admin/import", [][2]string{{"_csrf", consoleCSRF(t, sc)}, {"what", "orgs"}, {"file", file}}, "orgs.csv"); p.status != 403 {
		t.Errorf("staff importing: %d", p.status)
	}
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	csrf := consoleCSRF(t, ac)
	imported := func() bool { _, ok := srv.routing.Engine.Orgs.Get(good); return ok }
	for _, tc := range []struct {
		name  string
		parts [][2]string
		fname string
		want  int
	}{
		{"no token", [][2]string{{"_csrf", ""}, {"what", "orgs"}, {"file", file}}, "orgs.csv", 403},
		{"another session's token", [][2]string{{"_csrf", consoleCSRF(t, sc)}, {"what", "orgs"}, {"file", file}}, "orgs.csv", 403},
		{"file before the token", [][2]string{{"file", file}, {"_csrf", csrf}, {"what", "orgs"}}, "orgs.csv", 403},
		{"no choice", [][2]string{{"_csrf", csrf}, {"what", "ORGS"}, {"file", file}}, "orgs.csv", 400},
		{"units as CSV", [][2]string{{"_csrf", csrf}, {"what", "units"}, {"file", file}}, "orgs.csv", 415},
		{"empty file", [][2]string{{"_csrf", csrf}, {"what", "orgs"}, {"file", ""}}, "orgs.csv", 400},
		{"not a known type", [][2]string{{"_csrf", csrf}, {"what", "orgs"}, {"file", file}}, "orgs.xlsx", 415},
	} {
		if p := postParts(t, ac, "/console/admin/import", tc.parts, tc.fname); p.status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, p.status, tc.want)
		}
	}
	if imported() {
		t.Fatal("a refused upload imported")
	}
	p := postParts(t, ac, "/console/admin/import", [][2]string{{"_csrf", csrf}, {"what", "orgs"}, {"file", file}}, "orgs.csv")
	if p.status != 200 || !strings.Contains(p.body, "新增 1 条") || !strings.Contains(p.body, "拒收 1 条") {
		t.Fatalf("import: %d\n%s", p.status, p.body)
	}
	rej := regexpFind(t, `(?s)<table id="rejected">(.*?)</table>`, p.body)
	if !strings.Contains(rej, "<th scope=\"row\">2</th>") || !strings.Contains(rej, "name") || !hasHan(regexpFind(t, `<td class="mono">name</td><td>([^<]+)</td>`, rej)) {
		t.Errorf("rejected rows: %s", rej)
	}
	if !imported() {
		t.Error("the good row was not imported")
	}
}

// ruleSetVersion is the version of the routing rules in force.
func ruleSetVersion(t *testing.T) int {
	t.Helper()
	set, err := srv.routing.Rules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return set.Version
}
