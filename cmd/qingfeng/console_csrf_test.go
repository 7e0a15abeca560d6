package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/handlers"
)

// TestConsoleEveryFormNeedsItsToken: every form the console accepts (each POST route
// the server registers under /console, found from the router, so that a new one
// cannot be left out) refuses a submission without the session's form token, with
// another session's token, and with the token altered in one character — 403 with the
// page's message, and nothing recorded in the audit log; the session still works
// after. Each carries the fields of a real submission of its form.
func TestConsoleEveryFormNeedsItsToken(t *testing.T) {
	type signedIn struct {
		c     *http.Client
		token func() string // the session's own token
		other string        // a token of another session of the same role
	}
	account := func(role accounts.Role, unit, division string, totp bool, tokenPage string) signedIn {
		mk := func() (*http.Client, func() string) {
			u, secret, _ := consoleAccount(t, role, unit, division, totp)
			code := ""
			if secret != nil {
				code = nextTOTP(secret)
			}
			c := consoleSignIn(t, u, code)
			return c, func() string {
				p := getPage(t, c, tokenPage)
				m := csrfInput.FindStringSubmatch(p.body)
				if m == nil {
					t.Fatalf("no form token on %s: %d", tokenPage, p.status)
				}
				return m[1]
			}
		}
		c, token := mk()
		_, other := mk()
		return signedIn{c: c, token: token, other: other()}
	}
	staff := account(accounts.RoleStaff, "330782-mz", "", srv.Config.Require2FA[accounts.RoleStaff], "/console")
	liaison := account(accounts.RoleLiaison, "", "330782", srv.Config.Require2FA[accounts.RoleLiaison], "/console")
	admin := account(accounts.RoleAdmin, "", "", true, "/console")
	custodian := account(accounts.RoleCustodian, "", "330782", srv.Config.Require2FA[accounts.RoleCustodian], "/console")
	// A staff member who must still enrol a second factor: only the enrolment pages.
	enrolling := account(accounts.RoleAdmin, "", "", false, "/console/totp")

	// A case in the staff member's unit, and an organization in the liaison's division.
	number := fileReport(t, anonymousReport()).CaseNumber
	code := newImportCode("330782")
	webOrg(code, "义乌市某公益服务中心（表单令牌测试）")
	today := time.Now().In(qingfeng.Shanghai).Format(time.DateOnly)

	type form struct {
		who       signedIn
		fields    [][2]string
		multipart bool
	}
	forms := map[string]form{
		"/console/logout":          {who: staff},
		"/console/password":        {who: staff, fields: [][2]string{{"current", consolePassword}, {"new", "另一个足够长的新密码-2026"}, {"confirm", "另一个足够长的新密码-2026"}}},
		"/console/totp/enroll":     {who: enrolling},
		"/console/totp/confirm":    {who: enrolling, fields: [][2]string{{"code", "123456"}}},
		"/console/cases/" + number: {who: staff, fields: [][2]string{{"op", "claim"}}},
		"/console/routing/explain": {who: staff, fields: [][2]string{{"category", "illegal_org"}, {"subject.kind", "organization"},
			{"subject.organization.name", "义乌市某协会"}, {"location.division", "330782"}, {"description", "试算"}}},
		"/console/ledger/" + code: {who: liaison, fields: [][2]string{{"op", "income"}, {"income_type", "transfer"}, {"amount_yuan", "50"}, {"date", today}}},
		"/console/ledger/" + code + " (multipart)": {who: liaison, multipart: true, fields: [][2]string{{"op", "income"}, {"income_type", "transfer"},
			{"amount_yuan", "50"}, {"date", today}}},
		"/console/admin/users": {who: admin, fields: [][2]string{{"op", "create"}, {"username", fmt.Sprintf("csrf%d", time.Now().UnixNano())},
			{"display_name", "令牌测试"}, {"role", "staff"}, {"unit", "330782-mz"}}},
		"/console/admin/recipients":                     {who: admin, fields: [][2]string{{"op", "register"}, {"username", "nobody"}, {"recipient", "age1pq1..."}}},
		"/console/admin/rules":                          {who: admin, fields: [][2]string{{"op", "create"}, {"name", "令牌测试规则"}, {"primary.relation", "registration_authority"}}},
		"/console/admin/units":                          {who: admin, fields: [][2]string{{"op", "add"}, {"id", "330782-mz"}, {"alias", "令牌测试别名"}}},
		"/console/admin/calendar":                       {who: admin, multipart: true, fields: [][2]string{{"year", "2031"}}},
		"/console/admin/import":                         {who: admin, multipart: true, fields: [][2]string{{"what", "units"}}},
		"/console/admin/audit/verify":                   {who: admin},
		"/console/custody/disclosures/" + "d-csrf-test": {who: custodian, fields: [][2]string{{"decision", "approve"}, {"reason", "核实"}}},
	}
	alter := func(tok string) string {
		b := []byte(tok)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	post := func(c *http.Client, path string, f form, tok string) page {
		t.Helper()
		fields := append([][2]string{}, f.fields...)
		if tok != "\x00" {
			fields = append([][2]string{{"_csrf", tok}}, fields...)
		}
		var body io.Reader
		var ct string
		if f.multipart {
			files := []filePart{{"file", "x.json", []byte("[]")}}
			if strings.HasPrefix(path, "/console/ledger/") {
				files = []filePart{{"photos", "p.jpg", testJPEG(t)}}
			}
			body, ct = multipartBody(t, fields, files)
		} else {
			v := url.Values{}
			for _, kv := range fields {
				v.Add(kv[0], kv[1])
			}
			body, ct = strings.NewReader(v.Encode()), "application/x-www-form-urlencoded"
		}
		resp, err := noRedirect(c).Post(baseURL+path, ct, body)
		if err != nil {
			t.Fatal(err)
		}
		return readPage(t, resp)
	}
	checked := map[string]bool{}
	before := lastAuditSeq(t)
	for name, f := range forms {
		path := strings.TrimSuffix(name, " (multipart)")
		own := f.who.token()
		for variant, tok := range map[string]string{"no token": "\x00", "an empty token": "", "another session's token": f.who.other,
			"the token altered": alter(own), "the login form's token": loginToken(t)} {
			p := post(f.who.c, path, f, tok)
			if p.status != 403 || !strings.Contains(p.body, "页面已过期") {
				t.Errorf("POST %s with %s: %d\n%s", name, variant, p.status, excerpt(p.body))
			}
		}
		checked[path] = true
	}
	if got := lastAuditSeq(t); got != before {
		t.Errorf("refused submissions were recorded: audit %d → %d", before, got)
	}
	// Still signed in: nothing above ended a session.
	for name, s := range map[string]signedIn{"staff": staff, "liaison": liaison, "admin": admin, "custodian": custodian} {
		if p := getPage(t, s.c, "/console"); p.status != 200 || strings.Contains(p.url, "/console/login") {
			t.Errorf("%s signed out by a refused form: %d at %s", name, p.status, p.url)
		}
	}
	// The login form has its own token (there is no session yet).
	c := webClient(t)
	for variant, tok := range map[string]string{"no token": "\x00", "a console session's token": staff.token(), "altered": alter(loginToken(t))} {
		v := url.Values{"username": {"nobody"}, "password": {"x"}}
		if tok != "\x00" {
			v.Set("_csrf", tok)
		}
		if p := postPageForm(t, c, "/console/login", v); p.status != 403 || !strings.Contains(p.body, "页面已过期") {
			t.Errorf("POST /console/login with %s: %d", variant, p.status)
		}
	}
	checked["/console/login"] = true

	// Every POST route under /console is among those checked.
	for _, rt := range srv.server.App.GetRoutes(true) {
		if rt.Method != "POST" || !strings.HasPrefix(rt.Path, "/console") || !handlers.IsPageRoute(rt.Name) {
			continue
		}
		prefix := rt.Path
		if i := strings.Index(prefix, ":"); i >= 0 {
			prefix = prefix[:i]
		}
		found := false
		for path := range checked {
			found = found || path == rt.Path || (prefix != rt.Path && strings.HasPrefix(path, prefix))
		}
		if !found {
			t.Errorf("console form POST %s is not checked", rt.Path)
		}
	}
}

// loginToken is a fresh token of the console's sign-in form.
func loginToken(t *testing.T) string {
	t.Helper()
	p := getPage(t, webClient(t), "/console/login")
	tok, _ := formTokens(t, p.body)
	return tok
}
