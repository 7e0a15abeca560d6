package main

// HTTP tests of the staff console (/console): sign-in with the second factor, the
// session cookie, CSRF, the must-change and enrolment flows, and the scope of every
// case URL. The browser tests (console_browser_test.go) drive the same pages in
// Chromium.

import (
	"context"
	"encoding/base32"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/routing"
)

const consolePassword = "correct horse battery staple"

// consoleAccount creates an account; with totp it enrols a second factor through
// the API, as its owner would, and returns the secret and recovery codes.
func consoleAccount(t *testing.T, role accounts.Role, unit, division string, totp bool) (*accounts.User, []byte, []string) {
	t.Helper()
	name := fmt.Sprintf("c%d", time.Now().UnixNano())
	u, err := srv.Accounts.CreateUser(context.Background(), accounts.NewUser{Username: name, DisplayName: "测试" + string(role), Password: consolePassword,
		Role: role, UnitID: unit, Division: division}, func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if !totp {
		return u, nil, nil
	}
	r := postJSON(t, "/v1/auth/login", "", map[string]string{"username": name, "password": consolePassword})
	wantStatus(t, r, 200)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.json(t, &tok)
	secret, codes := enrolTOTP(t, tok.AccessToken)
	// The API session is left open: a console login opens its own.
	return u, secret, codes
}

// nextTOTP is a code the server has not seen yet: enrolment used the current step.
func nextTOTP(secret []byte) string {
	return accounts.TOTPCode(secret, accounts.TOTPStep(time.Now())+1)
}

// consoleSignIn signs u in through the form and returns a browser-like client.
func consoleSignIn(t *testing.T, u *accounts.User, code string) *http.Client {
	t.Helper()
	c := webClient(t)
	p := getPage(t, c, "/console/login")
	csrf, _ := formTokens(t, p.body)
	p = postPageForm(t, c, "/console/login", url.Values{"_csrf": {csrf}, "username": {u.Username}, "password": {consolePassword}, "code": {code}})
	if p.status != 200 || strings.Contains(p.url, "/console/login") {
		t.Fatalf("sign-in of %s: %d at %s\n%s", u.Username, p.status, p.url, p.body)
	}
	return c
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// consoleCSRF is the session's form token from a signed-in page.
func consoleCSRF(t *testing.T, c *http.Client) string {
	t.Helper()
	p := getPage(t, c, "/console")
	m := csrfInput.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no form token on /console: %s", p.body)
	}
	return m[1]
}

// noRedirect is c that reports redirects instead of following them.
func noRedirect(c *http.Client) *http.Client {
	n := *c
	n.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &n
}

func TestConsoleSignIn(t *testing.T) {
	u, secret, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", true)
	c := webClient(t)
	raw := noRedirect(c)

	// Signed out, every console page sends the browser to the sign-in page.
	for _, path := range []string{"/console", "/console/cases", "/console/stats", "/console/custody", "/console/password"} {
		resp, err := raw.Get(baseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
			t.Errorf("%s signed out: %d → %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	p := getPage(t, c, "/console/login")
	checkPageHeaders(t, "/console/login", p, true)
	csrf, _ := formTokens(t, p.body)
	login := func(fields url.Values) page {
		t.Helper()
		fields.Set("_csrf", csrf)
		fields.Set("username", u.Username)
		return postPageForm(t, c, "/console/login", fields)
	}
	// Two failures only: a third would start the account's backoff for this browser,
	// which has never signed in (accounts.Backoff).
	cases := []struct {
		name   string
		fields url.Values
		status int
		want   string
	}{
		{"wrong password", url.Values{"password": {"wrong wrong wrong"}, "code": {nextTOTP(secret)}}, 401, "用户名或密码错误"},
		{"no second factor", url.Values{"password": {consolePassword}}, 400, "已启用两步验证"},
	}
	for _, tc := range cases {
		p := login(tc.fields)
		if p.status != tc.status || !strings.Contains(p.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.name, p.status, tc.status, tc.want)
		}
		if cookieOf(c, consoleCookieName) != "" {
			t.Fatalf("%s: a console cookie was set", tc.name)
		}
	}
	// A form without the token, or with one of another form, is refused.
	p = postPageForm(t, c, "/console/login", url.Values{"_csrf": {"1." + strings.Repeat("A", 24)}, "username": {u.Username}, "password": {consolePassword}, "code": {nextTOTP(secret)}})
	if p.status != 403 {
		t.Errorf("forged CSRF: %d", p.status)
	}
	// Full-width digits from a Chinese input method are the same code.
	code := nextTOTP(secret)
	wide := strings.Map(func(r rune) rune { return r - '0' + '０' }, code)
	resp, err := raw.PostForm(baseURL+"/console/login", url.Values{"_csrf": {csrf}, "username": {strings.ToUpper(u.Username)}, "password": {consolePassword}, "code": {wide}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
		t.Fatalf("sign-in: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == consoleCookieName {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/console" || sc.Secure || !sc.Expires.IsZero() {
		t.Fatalf("console cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, a session cookie (not Secure over plain HTTP)", sc)
	}
	if strings.Contains(sc.Value, u.Username) || strings.Contains(sc.Value, consolePassword) {
		t.Fatalf("cookie names the account: %s", sc.Value)
	}
	// From this browser, now a known device: the code just used is refused a second
	// time (the API's replay rule), and so are wrong ones, and no second session opens.
	for name, code := range map[string]string{"replayed": code, "wrong": "000000", "letters": "abcdef"} {
		resp, err := raw.PostForm(baseURL+"/console/login", url.Values{"_csrf": {csrf}, "username": {u.Username}, "password": {consolePassword}, "code": {code}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Errorf("%s code: %d, cookies %v", name, resp.StatusCode, resp.Cookies())
		}
	}

	p = getPage(t, c, "/console/cases")
	checkPageHeaders(t, "/console/cases", p, true)
	if p.status != 200 || !strings.Contains(p.body, "本单位案件") {
		t.Fatalf("queue: %d %s", p.status, p.body)
	}
	// A tampered cookie is no session.
	tampered := webClient(t)
	base, _ := url.Parse(baseURL + "/console")
	tampered.Jar.SetCookies(base, []*http.Cookie{{Name: consoleCookieName, Value: strings.Replace(sc.Value, ".", ".9", 1), Path: "/console"}})
	if p := getPage(t, tampered, "/console/cases"); !strings.Contains(p.url, "/console/login") {
		t.Errorf("tampered cookie reached %s", p.url)
	}
	// A form without the session's token changes nothing.
	p = postPageForm(t, c, "/console/logout", url.Values{"_csrf": {"x"}})
	if p.status != 403 {
		t.Errorf("logout without token: %d", p.status)
	}
	// Logging out ends the accounts session: the old cookie, replayed, is no session.
	p = postPageForm(t, c, "/console/logout", url.Values{"_csrf": {consoleCSRF(t, c)}})
	if !strings.Contains(p.url, "/console/login?out=1") || !strings.Contains(p.body, "您已退出") {
		t.Fatalf("logout landed on %s", p.url)
	}
	replay := webClient(t)
	replay.Jar.SetCookies(base, []*http.Cookie{{Name: consoleCookieName, Value: sc.Value, Path: "/console"}})
	if p := getPage(t, replay, "/console/cases"); !strings.Contains(p.url, "/console/login?expired=1") {
		t.Errorf("cookie after logout reached %s", p.url)
	}
}

const consoleCookieName = "qf_console"

func cookieOf(c *http.Client, name string) string {
	u, _ := url.Parse(baseURL + "/console")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// TestConsoleDisabledAccount: disabling an account ends its console session at once.
func TestConsoleDisabledAccount(t *testing.T) {
	u, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	c := consoleSignIn(t, u, "")
	if _, err := srv.Accounts.SetDisabled(context.Background(), u.ID, true); err != nil {
		t.Fatal(err)
	}
	if p := getPage(t, c, "/console/cases"); !strings.Contains(p.url, "/console/login") {
		t.Fatalf("disabled account reached %s", p.url)
	}
}

// TestConsoleRestrictions: a one-time password must be changed before anything else,
// and a role that needs a second factor enrols it in the browser first.
func TestConsoleRestrictions(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("c%d", time.Now().UnixNano())
	u, err := srv.Accounts.CreateUser(ctx, accounts.NewUser{Username: name, Password: consolePassword, Role: accounts.RoleCustodian,
		Division: "330782", MustChangePassword: true}, func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	c := consoleSignIn(t, u, "")
	for _, path := range []string{"/console", "/console/custody", "/console/totp"} {
		if p := getPage(t, c, path); !strings.HasSuffix(p.url, "/console/password") || !strings.Contains(p.body, "一次性密码") {
			t.Errorf("%s with a one-time password landed on %s", path, p.url)
		}
	}
	csrf := csrfInput.FindStringSubmatch(getPage(t, c, "/console/password").body)[1]
	newPW := "a much longer passphrase 2026"
	bad := []struct {
		name string
		v    url.Values
		want string
	}{
		{"wrong current", url.Values{"current_password": {"nope nope nope"}, "new_password": {newPW}, "new_password_again": {newPW}}, "当前密码"},
		{"mismatch", url.Values{"current_password": {consolePassword}, "new_password": {newPW}, "new_password_again": {newPW + "x"}}, "不一致"},
		{"weak", url.Values{"current_password": {consolePassword}, "new_password": {"short"}, "new_password_again": {"short"}}, "密码"},
	}
	for _, tc := range bad {
		tc.v.Set("_csrf", csrf)
		p := postPageForm(t, c, "/console/password", tc.v)
		if p.status < 400 || !strings.Contains(p.body, tc.want) || !strings.Contains(p.body, "error-summary") {
			t.Errorf("%s: %d", tc.name, p.status)
		}
	}
	p := postPageForm(t, c, "/console/password", url.Values{"_csrf": {csrf}, "current_password": {consolePassword}, "new_password": {newPW}, "new_password_again": {newPW}})
	// A custodian must have a second factor: the enrolment page comes next.
	if !strings.HasSuffix(p.url, "/console/totp") || !strings.Contains(p.body, "要求启用两步验证") {
		t.Fatalf("after the password change: %s\n%s", p.url, p.body)
	}
	if p := getPage(t, c, "/console/custody"); !strings.HasSuffix(p.url, "/console/totp") {
		t.Errorf("custody before enrolment landed on %s", p.url)
	}
	csrf = csrfInput.FindStringSubmatch(p.body)[1]
	p = postPageForm(t, c, "/console/totp/enroll", url.Values{"_csrf": {csrf}})
	m := regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no secret shown: %s", p.body)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(m[1], " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	if p := postPageForm(t, c, "/console/totp/confirm", url.Values{"_csrf": {csrf}, "code": {"123456"}}); p.status != 400 || !strings.Contains(p.body, "验证码不正确") || !strings.Contains(p.body, `id="totp-confirm"`) {
		t.Errorf("wrong confirmation code: %d", p.status)
	}
	p = postPageForm(t, c, "/console/totp/confirm", url.Values{"_csrf": {csrf}, "code": {accounts.TOTPCode(secret, accounts.TOTPStep(time.Now()))}})
	if !strings.Contains(p.body, `id="recovery-codes"`) {
		t.Fatalf("no recovery codes: %d %s", p.status, p.body)
	}
	if p := getPage(t, c, "/console/custody"); p.status != 200 || !strings.Contains(p.body, "身份披露审批") {
		t.Errorf("custody after enrolment: %d at %s", p.status, p.url)
	}
}

// TestConsoleCaseScope: staff of another unit get "not found" for every URL of a case,
// typed by hand (and in variants of the number), and a forbidden page for another
// role's pages; the case's own unit sees it.
func TestConsoleCaseScope(t *testing.T) {
	own, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	other, _, _ := consoleAccount(t, accounts.RoleStaff, "330326-mz", "", false)
	sameCounty, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-scjg", "", false)
	liaison, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)

	body := anonymousReport()
	mp, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, body))}}, []filePart{{"file", "photo.jpg", testJPEG(t)}})
	r := do(t, req{method: "POST", path: "/v1/reports", body: mp, contentType: ct})
	wantStatus(t, r, 201)
	var f filed
	r.json(t, &f)
	if len(f.Evidence) != 1 {
		t.Fatalf("evidence: %+v", f.Evidence)
	}
	number, ev := f.CaseNumber, f.Evidence[0].ID

	oc := consoleSignIn(t, own, "")
	if p := getPage(t, oc, "/console/cases/"+number); p.status != 200 || !strings.Contains(p.body, number) {
		t.Fatalf("own unit: %d", p.status)
	}
	if p := getPage(t, oc, "/console/cases/"+number+"/evidence/"+ev); p.status != 200 || p.header.Get("Content-Type") != "image/jpeg" ||
		!strings.HasPrefix(p.header.Get("Content-Disposition"), "inline") {
		t.Fatalf("own unit's evidence: %d %v", p.status, p.header)
	}

	for _, u := range []*accounts.User{other, sameCounty} {
		c := consoleSignIn(t, u, "")
		csrf := consoleCSRF(t, c)
		numbers := []string{number, strings.ToLower(number), " " + number, number + "/", strings.Replace(number, "-", "－", 1)}
		for _, n := range numbers {
			for _, path := range []string{"/console/cases/" + n, "/console/cases/" + n + "/evidence/" + ev, "/console/cases/" + n + "/evidence/" + ev + "/view"} {
				p := getPage(t, c, strings.ReplaceAll(path, " ", "%20"))
				if p.status != 404 || strings.Contains(p.body, "义乌市某行业协会") {
					t.Errorf("%s GET %s: %d", u.UnitID, path, p.status)
				}
			}
		}
		for _, op := range []url.Values{
			{"op": {"transition"}, "action": {"accept"}, "reason": {"x"}}, {"op": {"claim"}}, {"op": {"unassign"}},
			{"op": {"assign"}, "assignee": {u.Username}}, {"op": {"message"}, "kind": {"message"}, "body": {"你好"}},
			{"op": {"message"}, "kind": {"internal"}, "body": {"备注"}}, {"op": {"transfer"}, "to_unit": {u.UnitID}, "reason": {"x"}},
			{"op": {"transfer_accept"}, "reason": {"x"}}, {"op": {"transfer_return"}, "reason": {"x"}}, {"op": {"disclosure"}, "reason": {"x"}},
		} {
			op.Set("_csrf", csrf)
			if p := postPageForm(t, c, "/console/cases/"+number, op); p.status != 404 {
				t.Errorf("%s POST %s: %d", u.UnitID, op.Get("op"), p.status)
			}
		}
		// Search by its number: the case page answers "not found" too.
		if p := getPage(t, c, "/console/cases?q="+url.QueryEscape(strings.ToLower(number))); p.status != 404 {
			t.Errorf("%s search: %d", u.UnitID, p.status)
		}
		if p := getPage(t, c, "/console/cases"); strings.Contains(p.body, number) {
			t.Errorf("%s's queue lists the case", u.UnitID)
		}
	}
	// Nothing the other units tried changed the case.
	if p := getPage(t, oc, "/console/cases/"+number); !strings.Contains(p.body, `id="case-status">已登记<`) || !strings.Contains(p.body, `id="case-assignee">未指派<`) ||
		strings.Contains(p.body, "你好") {
		t.Errorf("the case changed: %s", p.body)
	}
	// A liaison has no staff pages at all.
	lc := consoleSignIn(t, liaison, "")
	for _, path := range []string{"/console/cases", "/console/cases/" + number, "/console/notifications", "/console/custody"} {
		if p := getPage(t, lc, path); p.status != 403 {
			t.Errorf("liaison GET %s: %d", path, p.status)
		}
	}
}

// TestConsoleCaseActions: bad input is a clear error on the page and changes nothing;
// a form without the session's token is refused; 32 accepts of one case at once make
// one step; the queue's filters refuse bad values in words.
func TestConsoleCaseActions(t *testing.T) {
	own, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	f := fileReport(t, anonymousReport())
	c := consoleSignIn(t, own, "")
	csrf := consoleCSRF(t, c)
	path := "/console/cases/" + f.CaseNumber
	bad := []struct {
		name   string
		v      url.Values
		status int
		want   string
	}{
		{"no token", url.Values{"op": {"transition"}, "action": {"accept"}, "reason": {"x"}}, 403, "页面已过期"},
		{"another session's token", url.Values{"_csrf": {consoleCSRF(t, consoleSignIn(t, own, ""))}, "op": {"transition"}, "action": {"accept"}, "reason": {"x"}}, 403, "页面已过期"},
		{"no reason", url.Values{"_csrf": {csrf}, "op": {"transition"}, "action": {"accept"}, "reason": {"   "}}, 400, "请填写理由"},
		{"not allowed now", url.Values{"_csrf": {csrf}, "op": {"transition"}, "action": {"conclude"}, "reason": {"x"}, "result": {"substantiated"}}, 409, "不能执行该操作"},
		{"unknown action", url.Values{"_csrf": {csrf}, "op": {"transition"}, "action": {"delete"}, "reason": {"x"}}, 400, "未知的操作"},
		{"unknown op", url.Values{"_csrf": {csrf}, "op": {"drop"}}, 400, "未知的操作"},
		{"empty message", url.Values{"_csrf": {csrf}, "op": {"message"}, "body": {"\u200b "}}, 400, "必填"},
		{"assign outside the unit", url.Values{"_csrf": {csrf}, "op": {"assign"}, "assignee": {"nobody-here"}}, 400, "只能指派给本单位"},
		{"transfer to itself", url.Values{"_csrf": {csrf}, "op": {"transfer"}, "to_unit": {"330782-mz"}, "reason": {"x"}}, 400, "不能转办给本单位"},
		{"transfer nowhere", url.Values{"_csrf": {csrf}, "op": {"transfer"}, "to_unit": {"999999-zz"}, "reason": {"x"}}, 400, "接收单位不存在"},
	}
	for _, tc := range bad {
		p := postPageForm(t, c, path, tc.v)
		if p.status != tc.status || !strings.Contains(p.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.name, p.status, tc.status, tc.want)
		}
	}
	cs, err := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Status != "registered" || len(cs.Transitions) != 0 || cs.Assignee != "" || cs.Transfer != nil {
		t.Fatalf("bad input changed the case: %s, %d steps, assignee %q", cs.Status, len(cs.Transitions), cs.Assignee)
	}
	if msgs, _ := srv.Intake.Cases.Messages(context.Background(), cs.ID); len(msgs) != 0 {
		t.Fatalf("a message was stored: %d", len(msgs))
	}

	// 32 at once, the same form: one step, the others told the case moved on.
	const n = 32
	statuses := make(chan int, n)
	var start sync.WaitGroup
	start.Add(1)
	var done sync.WaitGroup
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			cl := noRedirect(c)
			resp, err := cl.PostForm(baseURL+path, url.Values{"_csrf": {csrf}, "op": {"transition"}, "action": {"accept"}, "reason": {"受理"}})
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	start.Done()
	done.Wait()
	close(statuses)
	got := map[int]int{}
	for st := range statuses {
		got[st]++
	}
	if got[http.StatusSeeOther] != 1 || got[http.StatusConflict] != n-1 {
		t.Errorf("32 accepts at once: %v, want one 303 and 31 409", got)
	}
	if cs, _ = srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber); len(cs.Transitions) != 1 {
		t.Errorf("%d steps after 32 accepts", len(cs.Transitions))
	}

	for _, q := range []string{"status=nope", "category=%E4%B9%B1", "division=999999", "sort=random", "due_before=2026-13-01", "assignee=" + strings.Repeat("x", 80)} {
		if p := getPage(t, c, "/console/cases?"+q); p.status != 400 || !strings.Contains(p.body, "筛选条件有误") {
			t.Errorf("queue ?%s: %d", q, p.status)
		}
	}
	// Search by a pasted number: full-width, spaces, a zero-width space, lower case.
	wide := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r - '0' + '０'
		}
		return r
	}, strings.ToLower(f.CaseNumber))
	if p := getPage(t, c, "/console/cases?q="+url.QueryEscape(" \u200b"+wide+" ")); p.status != 200 || !strings.HasSuffix(p.url, path) {
		t.Errorf("search %q landed on %s (%d)", wide, p.url, p.status)
	}
	// Anything else searches by the reported organization (console_search_test.go).
	if p := getPage(t, c, "/console/cases?q="+url.QueryEscape("義烏市某行業協會")); !strings.Contains(p.body, "按被举报组织搜索") || !strings.Contains(p.body, f.CaseNumber) {
		t.Errorf("an organization name search does not list the case")
	}
	// Stats and the CSV of the unit.
	if p := getPage(t, c, "/console/stats"); p.status != 200 || !strings.Contains(p.body, "<svg") {
		t.Errorf("stats: %d", p.status)
	}
	if p := getPage(t, c, "/console/stats/cases.csv"); p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") || !strings.Contains(p.body, f.CaseNumber) {
		t.Errorf("CSV: %d %s", p.status, p.header.Get("Content-Type"))
	}
}

// TestConsoleAssignFromList: the case page offers exactly the active staff of the
// case's unit to assign to (never a disabled colleague, another unit's staff, a
// liaison or an admin); choosing one assigns; a username not on the list (typed into a
// forged form) is refused as the API refuses it.
func TestConsoleAssignFromList(t *testing.T) {
	own, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	mate, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	gone, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	other, _, _ := consoleAccount(t, accounts.RoleStaff, "330326-mz", "", false)
	liaison, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	admin, _, _ := consoleAccount(t, accounts.RoleAdmin, "", "", false)
	if _, err := srv.Accounts.SetDisabled(context.Background(), gone.ID, true); err != nil {
		t.Fatal(err)
	}
	f := fileReport(t, anonymousReport())
	c := consoleSignIn(t, own, "")
	csrf := consoleCSRF(t, c)
	path := "/console/cases/" + f.CaseNumber
	p := getPage(t, c, path)
	options := map[string]bool{}
	list, _, _ := strings.Cut(p.body[strings.Index(p.body, `id="f-assignee"`):], "</select>")
	for _, m := range regexp.MustCompile(`<option value="([^"]*)">`).FindAllStringSubmatch(list, -1) {
		options[m[1]] = true
	}
	for _, tc := range []struct {
		u    *accounts.User
		want bool
	}{{own, true}, {mate, true}, {gone, false}, {other, false}, {liaison, false}, {admin, false}} {
		if options[tc.u.Username] != tc.want {
			t.Errorf("%s (%s %s, disabled %v) offered = %v, want %v", tc.u.Username, tc.u.Role, tc.u.UnitID, tc.u.ID == gone.ID, options[tc.u.Username], tc.want)
		}
	}
	for _, u := range []*accounts.User{gone, other, liaison, admin} {
		if p := postPageForm(t, c, path, url.Values{"_csrf": {csrf}, "op": {"assign"}, "assignee": {u.Username}}); p.status != 400 || !strings.Contains(p.body, "只能指派给本单位在岗的工作人员") {
			t.Errorf("assign to %s (%s): %d", u.Username, u.Role, p.status)
		}
	}
	if cs, _ := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber); cs.Assignee != "" {
		t.Fatalf("a refused assignment set %q", cs.Assignee)
	}
	if p := postPageForm(t, c, path, url.Values{"_csrf": {csrf}, "op": {"assign"}, "assignee": {strings.ToUpper(mate.Username)}}); p.status != 200 || !strings.Contains(p.body, "已指派") {
		t.Errorf("assign to a colleague: %d", p.status)
	}
	if cs, _ := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber); cs.Assignee != mate.ID {
		t.Errorf("assignee %q, want %q", cs.Assignee, mate.ID)
	}
}

// TestConsoleTransferNotifications: a transfer tells the receiving unit (a row linking
// to the case, with the answer's deadline), a return tells the unit the case came back
// to; the API lists the same; a refused transfer tells nobody; another unit sees none
// of it.
func TestConsoleTransferNotifications(t *testing.T) {
	from, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	toToken, to := staffLogin(t, accounts.RoleStaff, "330782-scjg", "")
	outsider, _, _ := consoleAccount(t, accounts.RoleStaff, "330326-mz", "", false)
	f := fileReport(t, anonymousReport())
	path := "/console/cases/" + f.CaseNumber
	cf, ct := consoleSignIn(t, from, ""), consoleSignIn(t, to, "")
	row := func(c *http.Client, kind string) bool {
		p := getPage(t, c, "/console/notifications")
		return strings.Contains(p.body, kind+`</td><td class="mono"><a href="`+path+`">`+f.CaseNumber+"</a>")
	}
	if p := postPageForm(t, cf, path, url.Values{"_csrf": {consoleCSRF(t, cf)}, "op": {"transfer"}, "to_unit": {"330782-scjg"}, "reason": {"\u200b"}}); p.status != 400 {
		t.Fatalf("transfer without a reason: %d", p.status)
	}
	if row(ct, "转来本单位，待接收或退回") {
		t.Fatal("a refused transfer notified the receiving unit")
	}
	if p := postPageForm(t, cf, path, url.Values{"_csrf": {consoleCSRF(t, cf)}, "op": {"transfer"}, "to_unit": {"330782-scjg"}, "reason": {"属市场监管职责"}}); p.status != 200 {
		t.Fatalf("transfer: %d", p.status)
	}
	if !row(ct, "转来本单位，待接收或退回") {
		t.Error("the receiving unit's notifications do not list the transfer")
	}
	if p := getPage(t, ct, path); p.status != 200 {
		t.Errorf("the notification's link: %d", p.status)
	}
	r := do(t, req{method: "GET", path: "/v1/notifications", token: toToken})
	wantStatus(t, r, 200)
	var raw struct {
		Notifications []map[string]string `json:"notifications"`
	}
	r.json(t, &raw)
	found := false
	for _, n := range raw.Notifications {
		if n["case"] == f.CaseNumber && n["kind"] == "transfer_in" && n["case_unit"] == "330782-mz" && n["due"] != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("GET /v1/notifications of the receiving unit: %+v", raw.Notifications)
	}
	if p := postPageForm(t, ct, path, url.Values{"_csrf": {consoleCSRF(t, ct)}, "op": {"transfer_return"}, "reason": {"不属本单位职责"}}); p.status != 200 {
		t.Fatalf("return: %d", p.status)
	}
	if !row(cf, "被退回本单位") {
		t.Error("the sending unit's notifications do not list the return")
	}
	co := consoleSignIn(t, outsider, "")
	if p := getPage(t, co, "/console/notifications"); strings.Contains(p.body, f.CaseNumber) {
		t.Error("another unit's notifications list the case")
	}
}

// TestConsoleTransferByName: the transfer form suggests the city's and the province's
// units (never the case's own) and takes a unit by its name as the routing reads names
// (traditional script, 市场监管局 for 市场监督管理局) or by its code in any case or
// width, with invisible characters; a name it cannot surely tell (民政局 without its
// place) is refused and changes nothing.
func TestConsoleTransferByName(t *testing.T) {
	own, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	c := consoleSignIn(t, own, "")
	csrf := consoleCSRF(t, c)
	f := fileReport(t, anonymousReport())
	p := getPage(t, c, "/console/cases/"+f.CaseNumber)
	list, _, _ := strings.Cut(p.body[strings.Index(p.body, `<datalist id="units-near">`):], "</datalist>")
	for want, in := range map[string]bool{`<option value="义乌市市场监督管理局">330782-scjg</option>`: true, `>330782-mz<`: false, `>330000-jw<`: true, `>330326-mz<`: false} {
		if strings.Contains(list, want) != in {
			t.Errorf("suggestions contain %s = %v, want %v", want, !in, in)
		}
	}
	for _, typed := range []string{"义乌市市场监督管理局", " 義烏市市場監督管理局 ", "义乌市市场监管局", "３３０７８２－ＳＣＪＧ", "330782-SCJG\u200b", "\ufeff330782-scjg"} {
		f := fileReport(t, anonymousReport())
		path := "/console/cases/" + f.CaseNumber
		if p := postPageForm(t, c, path, url.Values{"_csrf": {csrf}, "op": {"transfer"}, "to_unit": {typed}, "reason": {"属市场监管职责"}}); p.status != 200 {
			t.Errorf("transfer to %q: %d", typed, p.status)
			continue
		}
		if cs, _ := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber); cs.UnitID != "330782-scjg" || cs.Transfer == nil {
			t.Errorf("transfer to %q: the case is with %s", typed, cs.UnitID)
		}
	}
	for _, typed := range []string{"某某局", "民政局", "330782-zz", ""} {
		if p := postPageForm(t, c, "/console/cases/"+f.CaseNumber, url.Values{"_csrf": {csrf}, "op": {"transfer"}, "to_unit": {typed}, "reason": {"x"}}); p.status != 400 {
			t.Errorf("transfer to %q: %d, want 400", typed, p.status)
		}
	}
	if cs, _ := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber); cs.UnitID != "330782-mz" || cs.Transfer != nil || len(cs.Transitions) != 0 {
		t.Errorf("refused transfers moved the case: %s %+v", cs.UnitID, cs.Transfer)
	}
}

// TestConsoleQueueChoices: the queue's division filter offers the unit's townships and
// its assignee filter the unit's colleagues (never another unit's staff); choosing one
// lists exactly the cases it names.
func TestConsoleQueueChoices(t *testing.T) {
	own, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	mate, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	other, _, _ := consoleAccount(t, accounts.RoleStaff, "330326-mz", "", false)
	var town routing.Division
	for _, d := range routing.Divisions() {
		if d.Parent == "330782" && d.Level == routing.LevelTownship && d.RetiredFrom == "" {
			town = d
			break
		}
	}
	inTown := anonymousReport()
	inTown["location"] = map[string]any{"division": town.Code}
	ft, fa := fileReport(t, inTown), fileReport(t, anonymousReport())
	c := consoleSignIn(t, own, "")
	if p := postPageForm(t, c, "/console/cases/"+fa.CaseNumber, url.Values{"_csrf": {consoleCSRF(t, c)}, "op": {"assign"}, "assignee": {mate.Username}}); p.status != 200 {
		t.Fatalf("assign: %d", p.status)
	}
	p := getPage(t, c, "/console/cases")
	for want, in := range map[string]bool{`<option value="` + town.Code + `">` + town.Name + `</option>`: true,
		`<option value="` + mate.ID + `">`: true, `<option value="` + other.ID + `">`: false} {
		if strings.Contains(p.body, want) != in {
			t.Errorf("queue page contains %s = %v, want %v", want, !in, in)
		}
	}
	for q, want := range map[string][]string{"division=" + town.Code: {ft.CaseNumber}, "assignee=" + mate.ID: {fa.CaseNumber}} {
		p := getPage(t, c, "/console/cases?"+q)
		got := regexp.MustCompile(`QF-\d{6}-\d{4}-\d{6}`).FindAllString(p.body[strings.Index(p.body, "<table"):], -1)
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(got, want) && !(strings.HasPrefix(q, "division") && slices.Contains(got, ft.CaseNumber) && !slices.Contains(got, fa.CaseNumber)) {
			t.Errorf("queue ?%s lists %v, want %v", q, got, want)
		}
	}
}

// TestConsoleAdminUsers: only admins reach the accounts page; a reset password is shown
// once and ends the account's console session; the admin's own account is refused.
func TestConsoleAdminUsers(t *testing.T) {
	admin, secret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	sc := consoleSignIn(t, staff, "")
	if p := getPage(t, sc, "/console/admin/users"); p.status != 403 {
		t.Errorf("staff on the accounts page: %d", p.status)
	}
	ac := consoleSignIn(t, admin, nextTOTP(secret))
	p := getPage(t, ac, "/console/admin/users")
	if p.status != 200 {
		t.Fatalf("accounts page: %d", p.status)
	}
	csrf := csrfInput.FindStringSubmatch(p.body)[1]
	if p := postPageForm(t, ac, "/console/admin/users", url.Values{"_csrf": {csrf}, "op": {"disable"}, "id": {admin.ID}}); p.status != 409 {
		t.Errorf("disabling oneself: %d", p.status)
	}
	p = postPageForm(t, ac, "/console/admin/users", url.Values{"_csrf": {csrf}, "op": {"password_reset"}, "id": {staff.ID}})
	m := regexp.MustCompile(`id="one-time-password">([^<]+)<`).FindStringSubmatch(p.body)
	if p.status != 200 || m == nil {
		t.Fatalf("reset: %d", p.status)
	}
	if p := getPage(t, sc, "/console/cases"); !strings.Contains(p.url, "/console/login") {
		t.Errorf("the staff session survived the reset: %s", p.url)
	}
	if p := getPage(t, ac, "/console/admin/users"); strings.Contains(p.body, m[1]) {
		t.Error("the one-time password is shown again")
	}
	if p := postPageForm(t, ac, "/console/admin/users", url.Values{"_csrf": {csrf}, "op": {"create"}, "username": {"x"}, "role": {"staff"}, "unit_id": {"nope"}, "password": {"short"}}); p.status != 400 ||
		!strings.Contains(p.body, "单位不存在") || !strings.Contains(p.body, "用户名") {
		t.Errorf("bad new account: %d", p.status)
	}
}
