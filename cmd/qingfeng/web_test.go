package main

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/handlers"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// The public web pages over plain HTTP: headers, origins, CSRF, idempotent retries, and
// what a real-name report through the form leaves in the data directory. The browser
// tests (browser_test.go) drive the same pages in Chromium.

type page struct {
	status int
	header http.Header
	body   string
	url    string
}

func webClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

func getPage(t *testing.T, c *http.Client, path string) page {
	t.Helper()
	resp, err := c.Get(baseURL + path)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b), url: resp.Request.URL.String()}
}

var hiddenInput = regexp.MustCompile(`name="(_csrf|_key)" value="([^"]*)"`)

// formTokens reads the hidden CSRF token and idempotency key of a rendered form.
func formTokens(t *testing.T, body string) (csrf, key string) {
	t.Helper()
	for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
		switch m[1] {
		case "_csrf":
			csrf = m[2]
		case "_key":
			key = m[2]
		}
	}
	if csrf == "" {
		t.Fatalf("no CSRF token in the form:\n%s", body)
	}
	return csrf, key
}

// postReportForm sends the report form as a browser does: fields in order, then files.
func postReportForm(t *testing.T, c *http.Client, fields [][2]string, files []filePart) page {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		// A file input left empty still sends a part with an empty file name.
		if _, err := w.CreateFormFile("files", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		pw, err := w.CreateFormFile(f.field, f.name)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(f.data)
	}
	w.Close()
	resp, err := c.Post(baseURL+"/report", w.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func postPageForm(t *testing.T, c *http.Client, path string, v url.Values) page {
	t.Helper()
	resp, err := c.PostForm(baseURL+path, v)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

var receiptCode = regexp.MustCompile(`id="receipt-code">([0-9 ]+)<`)

// webOrg registers an organization for the page tests.
func webOrg(code, name string) {
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: name, Type: "民办非企业单位/社会服务机构",
		RegDivision: "330782", Division: "330782", Status: routing.OrgNormal, Grade: "3A"})
}

// checkPageHeaders asserts the headers every page carries, and that it sets no cookie.
func checkPageHeaders(t *testing.T, name string, p page, cookieOK bool) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", name, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "*") {
		t.Errorf("%s: CSP %q allows inline code or any origin", name, csp)
	}
	for h, want := range map[string]string{"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s: %s = %q, want %q", name, h, got, want)
		}
	}
	if !cookieOK && len(p.header.Values("Set-Cookie")) > 0 {
		t.Errorf("%s sets a cookie: %v", name, p.header.Values("Set-Cookie"))
	}
}

// urlAttr finds every URL a page refers to: src, href, action, formaction, poster,
// srcset, xlink:href, and url(...) in style attributes or elements.
var (
	urlAttr  = regexp.MustCompile(`(?i)\s(?:src|href|action|formaction|poster|srcset|xlink:href|data)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)
	cssURL   = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")]*)`)
	atImport = regexp.MustCompile(`(?i)@import\s+['"]([^'"]+)`)
)

// checkSameOrigin fails for any reference to another origin (scheme-relative
// included), and for inline scripts, styles and event handlers, which the CSP forbids.
func checkSameOrigin(t *testing.T, name, body string) {
	t.Helper()
	var refs []string
	for _, m := range urlAttr.FindAllStringSubmatch(body, -1) {
		refs = append(refs, strings.Trim(m[1], `"'`))
	}
	for _, m := range cssURL.FindAllStringSubmatch(body, -1) {
		refs = append(refs, m[1])
	}
	for _, m := range atImport.FindAllStringSubmatch(body, -1) {
		refs = append(refs, m[1])
	}
	for _, r := range refs {
		r = strings.TrimSpace(r)
		u, err := url.Parse(r)
		if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(r, "//") || strings.HasPrefix(r, `\\`) {
			t.Errorf("%s refers to another origin (or an unparsable URL): %q", name, r)
		}
	}
	if regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`).MatchString(body) {
		t.Errorf("%s has an inline script", name)
	}
	if regexp.MustCompile(`(?i)<style|\sstyle\s*=|\son[a-z]+\s*=`).MatchString(body) {
		t.Errorf("%s has an inline style or event handler", name)
	}
}

// TestWebPagesHeadersAndOrigins requests every page, in each state a reporter meets
// it, and checks its headers and that it refers to no other origin.
func TestWebPagesHeadersAndOrigins(t *testing.T) {
	const code = "52330782MJ0000031X"
	webOrg(code, "义乌市某公益服务中心")
	c := webClient(t)
	pages := map[string]page{}
	for _, path := range []string{"/", "/about", "/report", "/report?org=" + code, "/followup", "/orgs/" + code,
		"/orgs/" + strings.ToLower(code), "/orgs/not-a-code", "/orgs/53330000501874064B", "/orgs?code=" + code} {
		pages["GET "+path] = getPage(t, c, path)
	}
	for _, nf := range []string{"GET /orgs/not-a-code", "GET /orgs/53330000501874064B"} {
		if p := pages[nf]; p.status != 404 || !strings.Contains(p.body, "统一社会信用代码") || !strings.Contains(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want a Chinese 404 page", nf, p.status, p.header.Get("Content-Type"))
		}
	}
	if p := pages["GET /orgs/"+strings.ToLower(code)]; p.status != 200 || !strings.Contains(p.body, "义乌市某公益服务中心") {
		t.Errorf("lower-case code: %d", p.status)
	}
	if p := pages["GET /report?org="+code]; !strings.Contains(p.body, `value="义乌市某公益服务中心"`) || !strings.Contains(p.body, `value="`+code+`"`) {
		t.Error("the report link does not fill in the organization")
	}

	// A filed report's receipt, a wrong receipt, and the follow-up page with a session.
	csrf, key := formTokens(t, pages["GET /report"].body)
	receipt := postReportForm(t, c, webReportFields(csrf, key, "anonymous"), nil)
	pages["POST /report"] = receipt
	m := receiptCode.FindStringSubmatch(receipt.body)
	if receipt.status != 200 || m == nil {
		t.Fatalf("report form: %d\n%s", receipt.status, receipt.body)
	}
	login := pages["GET /followup"]
	lc, _ := formTokens(t, login.body)
	pages["POST /followup (wrong)"] = postPageForm(t, c, "/followup", url.Values{"_csrf": {lc}, "receipt_code": {"1234 5678 9012 3456"}})
	caseView := postPageForm(t, c, "/followup", url.Values{"_csrf": {lc}, "receipt_code": {m[1]}})
	pages["POST /followup → GET /followup"] = caseView
	if !strings.Contains(caseView.body, "举报进展") || !strings.Contains(caseView.body, "已登记") {
		t.Fatalf("follow-up after login: %d\n%s", caseView.status, caseView.body)
	}
	pages["GET /report/divisions?parent=330782"] = getPage(t, c, "/report/divisions?parent=330782")
	for name, p := range pages {
		checkPageHeaders(t, name, p, name == "POST /followup → GET /followup")
		checkSameOrigin(t, name, p.body)
	}
	// Every page the server registers is among those checked (static files below).
	for _, r := range srv.server.App.GetRoutes(true) {
		if !handlers.IsPageRoute(r.Name) || r.Method != "GET" || r.Path == "/static/*" {
			continue
		}
		if strings.HasPrefix(r.Path, "/console") {
			continue // signed-in pages: TestConsolePagesHeadersAndOrigins fetches each
		}
		pattern := regexp.MustCompile("^GET " + regexp.MustCompile(`:[a-z]+`).ReplaceAllString(regexp.QuoteMeta(r.Path), `[^/?]+`) + `(\?.*)?$`)
		found := false
		for name := range pages {
			found = found || pattern.MatchString(name)
		}
		if !found {
			t.Errorf("page route GET %s is not checked", r.Path)
		}
	}
	for _, s := range []string{"/static/site.css", "/static/site.js"} {
		p := getPage(t, c, s)
		if p.status != 200 || p.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, nosniff %q", s, p.status, p.header.Get("X-Content-Type-Options"))
		}
		checkSameOrigin(t, s, strings.ReplaceAll(p.body, `"/report/divisions?parent="`, ""))
		if strings.Contains(p.body, "://") {
			t.Errorf("%s names an absolute URL", s)
		}
	}
}

// webReportFields is a complete report as the form sends it (division picked down to
// the county).
func webReportFields(csrf, key, mode string) [][2]string {
	f := [][2]string{{"_csrf", csrf}, {"_key", key}, {"_pow", ""}, {"category", "arbitrary_fees"}, {"subject.kind", "organization"},
		{"subject.organization.name", "义乌市某行业协会"}, {"subject.organization.credit_code", "51330782MJ0000018J"},
		{"subject.person.name", ""}, {"subject.person.position", ""}, {"subject.person.employer", ""},
		{"description", "该协会以“会员服务费”名义向会员企业收取费用，没有收费依据。"},
		{"_city", "330700"}, {"_county", "330782"}, {"_town", ""}, {"location.address", "稠城街道"}, {"occurred_on", "2026-10"}}
	if mode == "anonymous" {
		return append(f, [][2]string{{"anonymous", "true"}, {"identity.name", ""}, {"identity.mobile", ""}, {"identity.resident_id", ""}, {"identity.preferred_contact", ""}}...)
	}
	return append(f, [][2]string{{"anonymous", "false"}, {"identity.name", "钱多多网页"}, {"identity.mobile", "13700137000"},
		{"identity.resident_id", "11010519491231002X"}, {"identity.preferred_contact", "sms"}}...)
}

// TestWebReportForm: a retry files once, a validation error keeps what was typed, the
// picker re-renders without filing, and a form without a valid CSRF token files nothing.
func TestWebReportForm(t *testing.T) {
	c := webClient(t)
	form := getPage(t, c, "/report")
	csrf, key := formTokens(t, form.body)

	first := postReportForm(t, c, webReportFields(csrf, key, "anonymous"), []filePart{{"files", "photo.jpg", testJPEG(t)}})
	again := postReportForm(t, c, webReportFields(csrf, key, "anonymous"), []filePart{{"files", "photo.jpg", testJPEG(t)}})
	m1, m2 := receiptCode.FindStringSubmatch(first.body), receiptCode.FindStringSubmatch(again.body)
	if m1 == nil || m2 == nil || m1[1] != m2[1] || !strings.Contains(again.body, "没有重复登记") || !strings.Contains(first.body, "1 个文件已保存") {
		t.Fatalf("retry of the same form: first %d, again %d\n%s", first.status, again.status, again.body)
	}

	// A validation error: everything typed comes back, each field named.
	bad := webReportFields(csrf, freshFormKey(t, c), "anonymous")
	for i := range bad {
		switch bad[i][0] {
		case "category":
			bad[i][1] = ""
		case "subject.organization.credit_code":
			bad[i][1] = "ＡＢＣ" // full-width, malformed
		case "occurred_on":
			bad[i][1] = "2099-01-01"
		}
	}
	p := postReportForm(t, c, bad, nil)
	if p.status != 400 {
		t.Fatalf("invalid form: status %d", p.status)
	}
	for _, want := range []string{`href="#f-category"`, "举报类别：必填", "统一社会信用代码：", "发生时间：发生时间不能晚于今天",
		`value="义乌市某行业协会"`, `value="ＡＢＣ"`, "没有收费依据。</textarea>", `value="330782" selected`, "已选择的文件没有保留"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("re-rendered form lacks %q", want)
		}
	}
	if receiptCode.MatchString(p.body) {
		t.Error("an invalid form was filed")
	}

	// The picker's update button: the next level, nothing filed.
	up := webReportFields(csrf, freshFormKey(t, c), "anonymous")
	up = append(up[:len(up):len(up)], [2]string{"_action", "divisions"})
	for i := range up {
		if up[i][0] == "_county" {
			up[i][1] = "330782"
		}
	}
	p = postReportForm(t, c, up, nil)
	if p.status != 200 || receiptCode.MatchString(p.body) || !strings.Contains(p.body, "稠城街道</option>") {
		t.Errorf("picker update: %d, townships listed %v", p.status, strings.Contains(p.body, "稠城街道</option>"))
	}

	// Without a valid CSRF token nothing is filed, and the form comes back.
	for _, tok := range []string{"", "9999999999.AAAA", strings.Replace(csrf, ".", ".x", 1)} {
		p := postReportForm(t, c, webReportFields(tok, freshFormKey(t, c), "anonymous"), nil)
		if p.status != 403 || receiptCode.MatchString(p.body) || !strings.Contains(p.body, "页面已过期") {
			t.Errorf("CSRF token %q: status %d", tok, p.status)
		}
	}
}

func freshFormKey(t *testing.T, c *http.Client) string {
	t.Helper()
	_, key := formTokens(t, getPage(t, c, "/report").body)
	return key
}

// TestWebRealNameLeavesNoPlaintext files a real-name report through the web form and
// scans every file under QF_DATA_DIR for the identity.
func TestWebRealNameLeavesNoPlaintext(t *testing.T) {
	c := webClient(t)
	csrf, key := formTokens(t, getPage(t, c, "/report").body)
	p := postReportForm(t, c, webReportFields(csrf, key, "real"), nil)
	if p.status != 200 || !receiptCode.MatchString(p.body) || !strings.Contains(p.body, "实名") {
		t.Fatalf("real-name report: %d\n%s", p.status, p.body)
	}
	if err := srv.st.ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	needles := []string{"钱多多网页", "13700137000", "11010519491231002X"}
	for _, path := range dataFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s contains %q in plaintext", path, n)
			}
		}
	}
	for _, n := range needles {
		if strings.Contains(logBuf.String(), n) {
			t.Errorf("the log contains %q", n)
		}
	}
}

// TestWebReportSameFormAtOnce: 32 submissions of one form at once (a double tap on a
// bad network, many times over) file one case; every answer is its receipt or "still
// in progress", never a second case.
func TestWebReportSameFormAtOnce(t *testing.T) {
	c := webClient(t)
	csrf, key := formTokens(t, getPage(t, c, "/report").body)
	const n = 32
	var wg sync.WaitGroup
	bodies := make([]page, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = postReportForm(t, webClient(t), webReportFields(csrf, key, "anonymous"), nil)
		}()
	}
	wg.Wait()
	codes := map[string]int{}
	for _, p := range bodies {
		switch m := receiptCode.FindStringSubmatch(p.body); {
		case m != nil && p.status == 200:
			codes[m[1]]++
		case p.status == 409 && strings.Contains(p.body, "请求正在处理"):
		default:
			t.Errorf("status %d:\n%.400s", p.status, p.body)
		}
	}
	if len(codes) != 1 {
		t.Errorf("%d different receipts from one form: %v", len(codes), codes)
	}
}

// TestWebOrgCodeSpellings: the organization page opens however the code is written
// (lower case, full width from a Chinese input method, spaces around it), and its QR
// code encodes QF_PUBLIC_URL whatever Host the request names.
func TestWebOrgCodeSpellings(t *testing.T) {
	const code = "52330782MJ0000053Y"
	webOrg(code, "义乌市某养老服务中心")
	c := webClient(t)
	for _, spelling := range []string{strings.ToLower(code), "５２３３０７８２ＭＪ０００００５３Ｙ", " " + code + " ", "\u3000" + code} {
		p := getPage(t, c, "/orgs/"+url.PathEscape(spelling))
		if p.status != 200 || !strings.Contains(p.body, "义乌市某养老服务中心") {
			t.Errorf("/orgs/%q: %d", spelling, p.status)
		}
		p = getPage(t, c, "/orgs?code="+url.QueryEscape(spelling))
		if p.status != 200 || !strings.HasSuffix(p.url, "/orgs/"+code) {
			t.Errorf("/orgs?code=%q: %d at %s", spelling, p.status, p.url)
		}
	}
	want, err := qrcode.Encode(srv.Config.PublicURL+"/orgs/"+code, qrcode.Medium, 256)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"", "evil.example", "127.0.0.1:1"} {
		r, err := http.NewRequest("GET", baseURL+"/v1/public/orgs/"+code+"/qr.png", nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			r.Host = host
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		p := readPage(t, resp)
		if p.status != 200 || p.body != string(want) {
			t.Errorf("QR code with Host %q: %d, encodes something other than %s/orgs/%s", host, p.status, srv.Config.PublicURL, code)
		}
	}
	// Unknown page addresses get the Chinese 404 page; unknown API paths keep JSON.
	p := getPage(t, c, "/reprot")
	if p.status != 404 || !strings.Contains(p.header.Get("Content-Type"), "text/html") || !strings.Contains(p.body, "页面不存在") {
		t.Errorf("/reprot: %d %s", p.status, p.header.Get("Content-Type"))
	}
	checkPageHeaders(t, "/reprot", p, false)
	if p := getPage(t, c, "/v1/nope"); p.status != 404 || !strings.Contains(p.header.Get("Content-Type"), "json") {
		t.Errorf("/v1/nope: %d %s", p.status, p.header.Get("Content-Type"))
	}
}

// TestWebFollowUpSession: the session cookie's attributes, bad input on each form, a
// token from another session refused, and logout clearing the cookie.
func TestWebFollowUpSession(t *testing.T) {
	c := webClient(t)
	csrf, key := formTokens(t, getPage(t, c, "/report").body)
	m := receiptCode.FindStringSubmatch(postReportForm(t, c, webReportFields(csrf, key, "anonymous"), nil).body)
	if m == nil {
		t.Fatal("no receipt")
	}
	lc, _ := formTokens(t, getPage(t, c, "/followup").body)

	// A typo and a wrong code are field errors; nothing opens.
	for code, want := range map[string]string{"1234": "回执码格式不正确", "4111 1111 1111 1111": "回执码无效", "": "回执码格式不正确"} {
		p := postPageForm(t, c, "/followup", url.Values{"_csrf": {lc}, "receipt_code": {code}})
		if p.status != 400 || !strings.Contains(p.body, want) || !strings.Contains(p.body, `href="#f-receipt"`) {
			t.Errorf("receipt %q: %d, want %q", code, p.status, want)
		}
	}
	// The code as a Chinese input method types it, with an invisible character copied
	// along, opens the case.
	wide := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '０' + (r - '0')
		}
		return r
	}, m[1])
	if p := postPageForm(t, webClient(t), "/followup", url.Values{"_csrf": {lc}, "receipt_code": {"\u200b" + wide + "\u3000"}}); !strings.Contains(p.body, "举报进展") {
		t.Errorf("full-width receipt: %d", p.status)
	}
	if p := postPageForm(t, c, "/followup", url.Values{"_csrf": {"x"}, "receipt_code": {m[1]}}); p.status != 403 {
		t.Errorf("login without a valid token: %d", p.status)
	}

	// The session: HttpOnly, SameSite=Strict, only on /followup, nothing but a token.
	noRedirect := webClient(t)
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.PostForm(baseURL+"/followup", url.Values{"_csrf": {lc}, "receipt_code": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"qf_followup=", "HttpOnly", "SameSite=Strict", "Path=/followup", "Max-Age="} {
		if !strings.Contains(strings.ToLower(set), strings.ToLower(want)) {
			t.Errorf("session cookie %q lacks %s", set, want)
		}
	}
	if resp.StatusCode != 303 || strings.Contains(set, m[1]) || strings.Contains(set, strings.ReplaceAll(m[1], " ", "")) {
		t.Errorf("login: %d, cookie %q", resp.StatusCode, set)
	}

	casePage := getPage(t, noRedirect, "/followup")
	sc, _ := formTokens(t, casePage.body)
	// An empty reply and one over 2,000 characters: the form comes back with the text.
	for body, want := range map[string]string{"\u200b ": "留言：必填", strings.Repeat("长", 2001): "留言：留言不能超过2000字"} {
		p := postPageForm(t, noRedirect, "/followup/messages", url.Values{"_csrf": {sc}, "body": {body}})
		if p.status != 400 || !strings.Contains(p.body, want) {
			t.Errorf("reply %.10q: %d, want %q", body, p.status, want)
		}
	}
	// Another session's token is refused, and nothing is posted.
	other := webClient(t)
	postPageForm(t, other, "/followup", url.Values{"_csrf": {lc}, "receipt_code": {m[1]}})
	oc, _ := formTokens(t, getPage(t, other, "/followup").body)
	if p := postPageForm(t, noRedirect, "/followup/messages", url.Values{"_csrf": {oc}, "body": {"别的会话的令牌"}}); p.status != 403 {
		t.Errorf("another session's token: %d", p.status)
	}
	if p := getPage(t, noRedirect, "/followup"); strings.Contains(p.body, "别的会话的令牌") {
		t.Error("a reply with another session's token was posted")
	}
	// Without a session the forms send the reporter to the receipt form.
	if p := postPageForm(t, webClient(t), "/followup/messages", url.Values{"_csrf": {sc}, "body": {"x"}}); !strings.Contains(p.body, `id="f-receipt"`) {
		t.Errorf("reply without a session: %d", p.status)
	}

	followUpURL, _ := url.Parse(baseURL + "/followup")
	var kept []*http.Cookie
	for _, ck := range noRedirect.Jar.Cookies(followUpURL) {
		kept = append(kept, &http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err = noRedirect.PostForm(baseURL+"/followup/logout", url.Values{"_csrf": {sc}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if set := resp.Header.Get("Set-Cookie"); !strings.Contains(set, "qf_followup=;") || !strings.Contains(resp.Header.Get("Clear-Site-Data"), "cookies") {
		t.Errorf("logout: cookie %q, Clear-Site-Data %q", set, resp.Header.Get("Clear-Site-Data"))
	}
	if p := getPage(t, noRedirect, "/followup"); !strings.Contains(p.body, `id="f-receipt"`) {
		t.Error("still logged in after logout")
	}
	// The session ended on the server too: the cookie kept from before the logout (a
	// copy, another tab's) and the other session opened with the same receipt are
	// refused.
	copied := webClient(t)
	copied.Jar.SetCookies(followUpURL, kept)
	if len(kept) == 0 {
		t.Fatal("no follow-up cookie to keep")
	}
	for name, c := range map[string]*http.Client{"a copy of the cookie": copied, "another session": other} {
		if p := getPage(t, c, "/followup"); !strings.Contains(p.body, `id="f-receipt"`) || strings.Contains(p.body, "我还有") {
			t.Errorf("%s still follows the case up after the logout", name)
		}
	}
}

// TestWebFormValidatesAsTheAPI is a seeded property test: random forms — fields empty,
// misspelt, full-width, invisible, too long, inconsistent — sent through the web form
// and, as the same fields, through POST /v1/reports, are accepted by both or refused
// by both with the API's own messages shown on the page: there is one validation.
func TestWebFormValidatesAsTheAPI(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("QF_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (QF_TEST_SEED=%d to repeat)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	c := webClient(t)
	csrf, _ := formTokens(t, getPage(t, c, "/report").body)
	filedBoth := 0
	defer func() { t.Logf("%d of 40 filed by both", filedBoth) }()
	for i := range 40 {
		v := map[string]string{
			"category":                         pick("", "arbitrary_fees", "other", " other ", "OTHER", "bogus"),
			"subject.kind":                     pick("", "organization", "person", "Person"),
			"subject.organization.name":        pick("", "义乌市某协会", "\u200b", strings.Repeat("协", 201)),
			"subject.organization.credit_code": pick("", "51330782MJ0000018J", "51330782mj0000018j", "５１３３０７８２ＭＪ００００００１８Ｊ", "ABC", "51330782MJ0000018K"),
			"subject.person.name":              pick("", "张三", "\u200b\u200b"),
			"subject.person.position":          pick("", "科长"),
			"description":                      pick("", "该协会违规收费。", "\u200b", strings.Repeat("举", 5001)),
			"occurred_on":                      pick("", "2026-10", "2026-13", "2099-01-01", "２０２６-10"),
			"anonymous":                        pick("", "true", "false"),
			"identity.name":                    pick("", "李四"),
			"identity.mobile":                  pick("", "13800138000", "12345", "+86 138 0013 8000"),
			"identity.resident_id":             pick("", "11010519491231002X", "123"),
		}
		division := [][3]string{{"", "", ""}, {"330700", "", ""}, {"330700", "330782", ""}, {"330700", "330782", "330782001"}}[rng.IntN(4)]
		if i%8 == 0 {
			// Every eighth is a valid report with random spellings, so both sides file too.
			v["category"], v["subject.kind"], v["description"] = pick("other", " other "), "organization", "该协会违规收费。"
			v["subject.organization.credit_code"] = pick("", "51330782MJ0000018J", "51330782mj0000018j", "51330782MJ0000018K")
			v["occurred_on"], v["anonymous"], division = pick("", "2026-10"), pick("", "true"), [3]string{"330700", "330782", ""}
		}

		// The web form, as a browser sends it (every field, empty or not).
		fields := [][2]string{{"_csrf", csrf}, {"_key", fmt.Sprintf("web-prop-%d-%d", seed, i)}}
		for _, k := range []string{"category", "subject.kind", "subject.organization.name", "subject.organization.credit_code",
			"subject.person.name", "subject.person.position", "description"} {
			fields = append(fields, [2]string{k, v[k]})
		}
		fields = append(fields, [2]string{"_city", division[0]}, [2]string{"_county", division[1]}, [2]string{"_town", division[2]},
			[2]string{"occurred_on", v["occurred_on"]})
		if v["anonymous"] != "" {
			fields = append(fields, [2]string{"anonymous", v["anonymous"]})
		}
		for _, k := range []string{"identity.name", "identity.mobile", "identity.resident_id"} {
			fields = append(fields, [2]string{k, v[k]})
		}
		web := postReportForm(t, c, fields, nil)

		// The same report to the API: the fields that apply, as an app sends them.
		anonymous := v["anonymous"] != "false"
		var api [][2]string
		api = append(api, [2]string{"source", "web"})
		for _, d := range []string{division[2], division[1], division[0]} { // the deepest level picked
			if d != "" {
				api = append(api, [2]string{"location.division", d})
				break
			}
		}
		for k, val := range v {
			switch {
			case strings.TrimSpace(val) == "",
				strings.HasPrefix(k, "identity.") && anonymous,
				strings.HasPrefix(k, "subject.person.") && v["subject.kind"] == "organization",
				strings.HasPrefix(k, "subject.organization.") && v["subject.kind"] == "person":
				continue
			}
			api = append(api, [2]string{k, val})
		}
		if v["anonymous"] == "" {
			api = append(api, [2]string{"anonymous", "true"})
		}
		body, ct := multipartBody(t, api, nil)
		r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})

		switch {
		case r.Status == 201:
			filedBoth++
			if web.status != 200 || !receiptCode.MatchString(web.body) {
				t.Errorf("case %d %v %v: the API filed it, the form answered %d", i, v, division, web.status)
			}
		case r.Status == 400:
			var e struct {
				Error struct {
					Fields map[string]struct{ Message string } `json:"fields"`
				} `json:"error"`
			}
			r.json(t, &e)
			if web.status != 400 || receiptCode.MatchString(web.body) {
				t.Errorf("case %d %v %v: the API refused it (%s), the form answered %d", i, v, division, r.Body, web.status)
				continue
			}
			for f, fe := range e.Error.Fields {
				if !strings.Contains(web.body, html.EscapeString(fe.Message)) {
					t.Errorf("case %d: the form does not show %s: %q", i, f, fe.Message)
				}
			}
		default:
			t.Errorf("case %d: API status %d: %s", i, r.Status, r.Body)
		}
	}
}

// TestWebFollowUpSequences is a seeded property test over random sequences of what a
// reporter and the unit do — log in with the right or a wrong receipt, reply (or send
// an empty reply), staff messages, public notes and internal notes, log out, look — in
// any order: the page shows the case exactly while logged in, every message and public
// note once, in order, and never an internal note.
func TestWebFollowUpSequences(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("QF_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (QF_TEST_SEED=%d to repeat)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	for run := range 3 {
		c := webClient(t)
		csrf, key := formTokens(t, getPage(t, c, "/report").body)
		m := receiptCode.FindStringSubmatch(postReportForm(t, c, webReportFields(csrf, key, "anonymous"), nil).body)
		if m == nil {
			t.Fatal("no receipt")
		}
		number := regexp.MustCompile(`id="case-number">([^<]+)<`)
		staff := ""
		loggedIn, caseNo := false, ""
		var shown []string // what the conversation and notes must show, in order
		for step := range 25 {
			switch op := rng.IntN(8); op {
			case 0, 1: // log in, right or wrong
				// The receipt form's token (a logged-in page holds the session's token,
				// which a login must not accept).
				lc, _ := formTokens(t, getPage(t, webClient(t), "/followup").body)
				code := m[1]
				if op == 1 {
					code = "4111 1111 1111 1111"
				}
				p := postPageForm(t, c, "/followup", url.Values{"_csrf": {lc}, "receipt_code": {code}})
				if op == 0 {
					loggedIn = true
					if n := number.FindStringSubmatch(p.body); n != nil {
						caseNo = n[1]
					}
				} else if p.status != 400 {
					t.Fatalf("run %d step %d: wrong receipt answered %d", run, step, p.status)
				}
				// A wrong receipt does not end a session: the cookie stays.
			case 2, 3: // reply, or an empty one
				body := fmt.Sprintf("举报人留言 %d-%d", run, step)
				if op == 3 {
					body = " \u200b "
				}
				page := getPage(t, c, "/followup")
				tok := ""
				if loggedIn {
					tok, _ = formTokens(t, page.body)
				}
				p := postPageForm(t, c, "/followup/messages", url.Values{"_csrf": {tok}, "body": {body}})
				switch {
				case !loggedIn && !strings.Contains(p.body, `id="f-receipt"`):
					t.Fatalf("run %d step %d: a reply without a session was not sent to the receipt form", run, step)
				case loggedIn && op == 2:
					shown = append(shown, body)
				case loggedIn && op == 3 && p.status != 400:
					t.Fatalf("run %d step %d: an empty reply answered %d", run, step, p.status)
				}
			case 4, 5, 6: // the unit writes: a message, a public note or an internal note
				if caseNo == "" {
					continue // not known to the test until the first login
				}
				if staff == "" {
					full, err := srv.Intake.Cases.CaseByNumber(t.Context(), caseNo)
					if err != nil {
						t.Fatal(err)
					}
					staff, _ = staffLogin(t, accounts.RoleStaff, full.UnitID, "")
				}
				kind := map[int]string{4: "message", 5: "public_note", 6: "internal"}[op]
				body := fmt.Sprintf("单位%s %d-%d", kind, run, step)
				wantStatus(t, postJSON(t, "/v1/cases/"+caseNo+"/messages", staff, map[string]string{"body": body, "kind": kind}), 201)
				if kind != "internal" {
					shown = append(shown, body)
				}
			case 7: // log out
				tok := ""
				if loggedIn {
					tok, _ = formTokens(t, getPage(t, c, "/followup").body)
				}
				postPageForm(t, c, "/followup/logout", url.Values{"_csrf": {tok}})
				loggedIn = false
			}
			p := getPage(t, c, "/followup")
			if got := strings.Contains(p.body, `id="case-status"`); got != loggedIn {
				t.Fatalf("run %d step %d: case shown %v, logged in %v", run, step, got, loggedIn)
			}
			if !loggedIn {
				for _, s := range shown {
					if strings.Contains(p.body, s) {
						t.Fatalf("run %d step %d: %q shown while logged out", run, step, s)
					}
				}
				continue
			}
			if strings.Contains(p.body, "单位internal") {
				t.Fatalf("run %d step %d: an internal note reached the reporter", run, step)
			}
			last := -1
			for _, s := range shown {
				if n := strings.Count(p.body, s+"<"); n != 1 {
					t.Fatalf("run %d step %d: %q shown %d times", run, step, s, n)
				}
				// Messages are in order among themselves; notes have their own list.
				if !strings.HasPrefix(s, "单位public_note") {
					at := strings.Index(p.body, s+"<")
					if at < last {
						t.Fatalf("run %d step %d: %q out of order", run, step, s)
					}
					last = at
				}
			}
		}
	}
}

// TestWebReportOutsideZhejiang: the form reports a place in another province as the API
// does with its code — filed, held by the province (330000) with the reported province
// kept, the reporter told — whatever Zhejiang levels were left picked; the update
// button shows the other province without the Zhejiang levels; a province that is no
// province files nothing.
func TestWebReportOutsideZhejiang(t *testing.T) {
	c := webClient(t)
	with := func(fields [][2]string, set map[string]string) [][2]string {
		out := [][2]string{}
		for _, f := range fields {
			if v, ok := set[f[0]]; ok {
				f[1] = v
				delete(set, f[0])
			}
			out = append(out, f)
		}
		for k, v := range set {
			out = append(out, [2]string{k, v})
		}
		return out
	}
	csrf, key := formTokens(t, getPage(t, c, "/report").body)
	p := postReportForm(t, c, with(webReportFields(csrf, key, "anonymous"), map[string]string{"_province": "310000", "_action": "divisions"}), nil)
	if p.status != 200 || receiptCode.MatchString(p.body) || !strings.Contains(p.body, `<option value="310000" selected>上海市</option>`) ||
		!strings.Contains(p.body, `<div id="zj-levels" hidden>`) || strings.Contains(p.body, `id="outside-note" hidden`) {
		t.Fatalf("update with another province: %d", p.status)
	}
	csrf, key = formTokens(t, p.body)
	p = postReportForm(t, c, with(webReportFields(csrf, key, "anonymous"), map[string]string{"_province": "310000", "location.address": "上海市浦东新区"}), nil)
	m := receiptCode.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("report about Shanghai: %d\n%s", p.status, p.body)
	}
	number := regexp.MustCompile(`id="case-number">([^<]+)<`).FindStringSubmatch(p.body)
	cs, err := srv.Intake.Cases.CaseByNumber(t.Context(), number[1])
	if err != nil {
		t.Fatal(err)
	}
	if cs.Location.Division != "330000" || cs.Location.ReportedDivision != "310000" || cs.Location.Address != "上海市浦东新区" {
		t.Errorf("stored location %+v", cs.Location)
	}
	csrf, key = formTokens(t, getPage(t, c, "/report").body)
	before, _ := srv.Intake.Cases.ListCases(t.Context(), intake.CaseFilter{Limit: 1})
	for _, bad := range []string{"990000", "33", "310100", "3100００"} {
		p := postReportForm(t, c, with(webReportFields(csrf, key, "anonymous"), map[string]string{"_province": bad, "_city": "", "_county": ""}), nil)
		if p.status != 400 || receiptCode.MatchString(p.body) || !strings.Contains(p.body, "发生地点") {
			t.Errorf("province %q: %d", bad, p.status)
		}
	}
	if after, _ := srv.Intake.Cases.ListCases(t.Context(), intake.CaseFilter{Limit: 1}); len(after) != len(before) || len(after) > 0 && after[0].ID != before[0].ID {
		t.Error("a bad province filed a case")
	}
}
