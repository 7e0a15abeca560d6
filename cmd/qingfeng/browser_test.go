package main

// Browser tests of the public pages: Chromium driven from Go with chromedp, at a
// 375 px phone viewport. chromedp rather than go-rod: it speaks the DevTools protocol
// to a browser we launch ourselves (Debian's /usr/bin/chromium, with our flags and a
// fresh profile), and never downloads a browser of its own. It is pinned at v0.14.2,
// the last release of its long-standing Action interface (v0.22 on is a generic
// rewrite), with the cdproto that release was built against. Test-only: nothing in
// the server imports it.
//
// Locally the tests skip, loudly, when Chromium or axe-core is missing; with CI=true
// they fail instead (.ci/run installs both). Each test saves screenshots under a
// folder it names in the log.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

func chromiumPath() string {
	if p := os.Getenv("QF_TEST_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// missing skips, or in CI fails, a test that lacks a tool.
func missing(t *testing.T, what string) {
	t.Helper()
	msg := fmt.Sprintf("!!! BROWSER TEST NOT RUN: %s (CI installs it with .ci/run)", what)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

type browserSession struct {
	ctx   context.Context
	t     *testing.T
	shots string
	n     int
	js    bool
}

// newBrowser starts a fresh Chromium at a phone viewport, with JavaScript on or off.
func newBrowser(t *testing.T, js bool) *browserSession {
	t.Helper()
	return newBrowserAt(t, js, 375, 812)
}

// newBrowserAt starts a fresh Chromium at a viewport of width × height CSS pixels.
func newBrowserAt(t *testing.T, js bool, width, height int64) *browserSession {
	t.Helper()
	if _, err := os.Stat(chromiumPath()); err != nil {
		missing(t, "no Chromium at "+chromiumPath())
	}
	// Chromium's helper processes may still write to the profile for a moment after the
	// browser is stopped (longer on a loaded machine), so it is removed with retries
	// rather than as a t.TempDir, whose cleanup fails the test on "directory not empty".
	profile, err := os.MkdirTemp("", "qingfeng-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s", profile)
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath()), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true), chromedp.UserDataDir(profile), chromedp.WindowSize(int(width), int(height)),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	actions := []chromedp.Action{emulation.SetDeviceMetricsOverride(width, height, 2, width < 600)}
	if !js {
		actions = append(actions, emulation.SetScriptExecutionDisabled(true))
	}
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	dir, err := os.MkdirTemp("", "qingfeng-screens-"+strings.ReplaceAll(t.Name(), "/", "-")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of %s in %s", t.Name(), dir)
	return &browserSession{ctx: ctx, t: t, shots: dir, js: js}
}

func (b *browserSession) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// shot saves a full-page PNG.
func (b *browserSession) shot(name string) {
	b.t.Helper()
	var png []byte
	b.run(chromedp.FullScreenshot(&png, 100))
	b.n++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// navigating runs actions that leave the page (a form submitted, a reload) and waits
// until the next document has loaded, so that nothing is read from the old one.
func (b *browserSession) navigating(actions ...chromedp.Action) {
	b.t.Helper()
	// The marker is on the document, not the window: the script's upload replaces the
	// document in the same window (document.open), a navigation replaces both.
	b.run(chromedp.Evaluate(`document.documentElement.dataset.qfOld = "1"`, nil))
	b.run(actions...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		// While the old document goes away, evaluating can fail: try again.
		var done bool
		err := chromedp.Run(b.ctx, chromedp.Evaluate(`!document.documentElement.dataset.qfOld && document.readyState === "complete"`, &done))
		if err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the page did not change: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shotWide saves the page at a desktop width too, then returns to the phone.
func (b *browserSession) shotWide(name string) {
	b.t.Helper()
	b.shot(name)
	b.run(emulation.SetDeviceMetricsOverride(1280, 900, 1, false))
	b.shot(name + "-desktop")
	b.run(emulation.SetDeviceMetricsOverride(375, 812, 2, true))
}

func (b *browserSession) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

// axeSource is axe-core's script, from QF_TEST_AXE or the repository's node_modules.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("QF_TEST_AXE")
	if path == "" {
		path = "../../node_modules/axe-core/axe.min.js"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		missing(t, "no axe-core at "+path+" (set QF_TEST_AXE)")
	}
	return string(b)
}

// axe runs axe-core on the page and fails on serious or critical violations of WCAG
// 2.x A/AA. It is injected through DevTools, which the page's CSP does not govern.
func (b *browserSession) axe(src, page string) {
	b.t.Helper()
	if !b.js {
		return // axe is a script: it runs in the JavaScript session
	}
	var out string
	script := src + `;axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}})
	  .then(r => JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
	  .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))))`
	b.run(chromedp.Evaluate(script, &out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		b.t.Fatalf("axe on %s: %v (%s)", page, err, out)
	}
	for _, x := range v {
		b.t.Errorf("axe on %s: %v %v: %v %v", page, x["impact"], x["id"], x["help"], x["nodes"])
	}
}

// pickDivision chooses city and county as the reporter does: with the script the
// next level fills in; without it, the update button re-renders the form.
func (b *browserSession) pickDivision(city, county string) {
	b.t.Helper()
	if b.js {
		b.run(chromedp.SetValue("#f-city", city, chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById("f-city").dispatchEvent(new Event("change"))`, nil),
			chromedp.WaitReady(`#f-county option[value="`+county+`"]`, chromedp.ByQuery),
			chromedp.SetValue("#f-county", county, chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById("f-county").dispatchEvent(new Event("change"))`, nil))
		return
	}
	b.run(chromedp.SetValue("#f-city", city, chromedp.ByQuery), chromedp.Click("#division-refresh", chromedp.ByQuery),
		chromedp.WaitReady(`#f-county option[value="`+county+`"]`, chromedp.ByQuery),
		chromedp.SetValue("#f-county", county, chromedp.ByQuery), chromedp.Click("#division-refresh", chromedp.ByQuery),
		chromedp.WaitReady(`#f-town option:nth-child(2)`, chromedp.ByQuery))
}

// TestBrowserReportAndFollowUp: an anonymous report with a photo through the form,
// the receipt, follow-up with it, a message exchanged with staff (staff through the
// API), the outcome in words, logout — with JavaScript on and with it off.
func TestBrowserReportAndFollowUp(t *testing.T) {
	for _, js := range []bool{true, false} {
		t.Run(map[bool]string{true: "js", false: "nojs"}[js], func(t *testing.T) {
			b := newBrowser(t, js)
			axeJS := ""
			if js {
				axeJS = axeSource(t)
			}
			photo := filepath.Join(t.TempDir(), "photo.jpg")
			if err := os.WriteFile(photo, testJPEG(t), 0o644); err != nil {
				t.Fatal(err)
			}
			b.run(chromedp.Navigate(baseURL+"/"), chromedp.WaitVisible("h1", chromedp.ByQuery))
			b.axe(axeJS, "/")
			b.shotWide("home")
			b.run(chromedp.Navigate(baseURL+"/about"), chromedp.WaitVisible("h1", chromedp.ByQuery))
			b.axe(axeJS, "/about")
			b.run(chromedp.Navigate(baseURL+"/report"), chromedp.WaitVisible("#report-form", chromedp.ByQuery))
			b.axe(axeJS, "/report")
			b.shotWide("report")
			b.pickDivision("330700", "330782")
			desc := "协会向会员企业收取“服务费”，没有依据。" + map[bool]string{true: "（脚本开启）", false: "（脚本关闭）"}[js]
			b.run(chromedp.Click("#f-category-arbitrary_fees", chromedp.ByQuery), chromedp.Click("#f-kind-org", chromedp.ByQuery),
				chromedp.SendKeys("#f-org-name", "义乌市某行业协会", chromedp.ByQuery),
				chromedp.SendKeys("#f-description", desc, chromedp.ByQuery),
				chromedp.SendKeys("#f-occurred", "2026-10", chromedp.ByQuery),
				chromedp.SetUploadFiles("#f-files", []string{photo}, chromedp.ByQuery))
			b.shot("report-filled")
			b.run(chromedp.Click("#submit-report", chromedp.ByQuery), chromedp.WaitVisible("#receipt-code", chromedp.ByQuery))
			b.axe(axeJS, "receipt")
			b.shotWide("receipt")
			code, number := b.text("#receipt-code"), b.text("#case-number")
			if len(strings.ReplaceAll(code, " ", "")) != 16 || !strings.HasPrefix(number, "QF-330782-") {
				t.Fatalf("receipt %q, case %q", code, number)
			}
			if body := b.text("main"); !strings.Contains(body, "1 个文件已保存") || !strings.Contains(body, "匿名") {
				t.Errorf("receipt page: %s", body)
			}

			// Follow up with the receipt.
			b.run(chromedp.Navigate(baseURL+"/followup"), chromedp.WaitVisible("#f-receipt", chromedp.ByQuery))
			b.axe(axeJS, "/followup")
			b.run(chromedp.SendKeys("#f-receipt", code, chromedp.ByQuery), chromedp.Click("form button.primary", chromedp.ByQuery),
				chromedp.WaitVisible("#case-status", chromedp.ByQuery))
			if got := b.text("#case-number"); got != number {
				t.Fatalf("follow-up shows %q, want %q", got, number)
			}

			// Staff ask a question through the API; the reporter reads and answers it.
			cs, err := srv.Intake.Cases.CaseByNumber(context.Background(), number)
			if err != nil {
				t.Fatal(err)
			}
			staff, _ := staffLogin(t, accounts.RoleStaff, cs.UnitID, "")
			question := "请问收费发生在哪一天？有没有收据？"
			wantStatus(t, postJSON(t, "/v1/cases/"+number+"/messages", staff, map[string]string{"body": question}), 201)
			b.navigating(chromedp.Reload())
			if !strings.Contains(b.text("#conversation"), question) {
				t.Fatalf("the staff's question is not shown: %s", b.text("#conversation"))
			}
			answer := "十月八日，在协会办公室，没有收据。"
			b.run(chromedp.SendKeys("#f-reply", answer, chromedp.ByQuery), chromedp.Submit("#f-reply", chromedp.ByQuery),
				chromedp.WaitVisible(".panel.success", chromedp.ByQuery))
			if !strings.Contains(b.text("#conversation"), answer) {
				t.Errorf("the reply is not shown: %s", b.text("#conversation"))
			}
			r := do(t, req{method: "GET", path: "/v1/cases/" + number, token: staff})
			if !containsString(r.Body, answer) {
				t.Errorf("staff do not see the reply: %s", r.Body)
			}
			b.axe(axeJS, "/followup (case)")
			b.shot("followup-conversation")

			// More evidence from the follow-up page (with the progress bar when the
			// script runs).
			png := filepath.Join(t.TempDir(), "more.png")
			if err := os.WriteFile(png, testPNG(t), 0o644); err != nil {
				t.Fatal(err)
			}
			b.run(chromedp.SetUploadFiles("#f-files", []string{png}, chromedp.ByQuery))
			b.navigating(chromedp.Click("#evidence button", chromedp.ByQuery))
			if got := b.text("main"); !strings.Contains(got, "已补充 1 个文件") || !strings.Contains(got, "文件 2") {
				t.Errorf("after adding evidence: %s", got)
			}
			if cs, err := srv.Intake.Cases.CaseByNumber(context.Background(), number); err != nil || len(cs.Evidence) != 2 {
				t.Errorf("case evidence after the upload: %v, %v", err, cs)
			}

			// Concluded: the outcome in words.
			step(t, staff, number, map[string]any{"action": "accept", "reason": "属于本单位受理范围"}, 200)
			step(t, staff, number, map[string]any{"action": "dispose", "disposition": "preliminary_verification", "reason": "初核"}, 200)
			step(t, staff, number, map[string]any{"action": "conclude", "reason": "经核实属实",
				"outcome": map[string]any{"result": "substantiated", "name_cleared": false}}, 200)
			b.navigating(chromedp.Reload())
			if got := b.text("#outcome"); !strings.Contains(got, "问题属实") {
				t.Errorf("outcome: %s", got)
			}
			if got := b.text("#case-status"); got != "已办结" {
				t.Errorf("status %q", got)
			}
			b.shotWide("followup-outcome")

			// Logging out clears the session.
			b.run(chromedp.Click("#logout", chromedp.ByQuery), chromedp.WaitVisible("#f-receipt", chromedp.ByQuery))
			if !strings.Contains(b.text("main"), "您已退出") {
				t.Errorf("after logout: %s", b.text("main"))
			}
			b.run(chromedp.Navigate(baseURL+"/followup"), chromedp.WaitVisible("#f-receipt", chromedp.ByQuery))
			if strings.Contains(b.text("main"), number) {
				t.Error("the case is still shown after logout")
			}
			b.shot("logged-out")
		})
	}
}

// TestBrowserFormKeepsValues: a validation error re-renders the form with what was
// typed and an error summary that names and links each field.
func TestBrowserFormKeepsValues(t *testing.T) {
	b := newBrowser(t, true)
	axeJS := axeSource(t)
	b.run(chromedp.Navigate(baseURL+"/report"), chromedp.WaitVisible("#report-form", chromedp.ByQuery),
		chromedp.Click("#f-kind-person", chromedp.ByQuery),
		chromedp.SendKeys("#f-person-name", "王某某", chromedp.ByQuery),
		chromedp.SendKeys("#f-person-position", "科长", chromedp.ByQuery),
		chromedp.SendKeys("#f-description", "公款吃喝，多次在酒店宴请。", chromedp.ByQuery),
		chromedp.Click("#f-anon-no", chromedp.ByQuery),
		chromedp.SendKeys("#f-id-name", "李四", chromedp.ByQuery),
		chromedp.SendKeys("#f-id-mobile", "12345", chromedp.ByQuery),
		chromedp.Click("#submit-report", chromedp.ByQuery), chromedp.WaitVisible("#error-summary", chromedp.ByQuery))
	b.shotWide("errors")
	b.axe(axeJS, "/report (errors)")
	summary := b.text("#error-summary")
	for _, want := range []string{"举报类别", "发生地点", "手机号码"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %s: %s", want, summary)
		}
	}
	var name, position, desc, idName string
	var anonNo, focused bool
	b.run(chromedp.Value("#f-person-name", &name, chromedp.ByQuery), chromedp.Value("#f-person-position", &position, chromedp.ByQuery),
		chromedp.Value("#f-description", &desc, chromedp.ByQuery), chromedp.Value("#f-id-name", &idName, chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("f-anon-no").checked`, &anonNo),
		chromedp.Evaluate(`document.activeElement && document.activeElement.id === "error-summary"`, &focused))
	if name != "王某某" || position != "科长" || desc != "公款吃喝，多次在酒店宴请。" || idName != "李四" || !anonNo {
		t.Errorf("values not kept: %q %q %q %q anonymous=no:%v", name, position, desc, idName, anonNo)
	}
	if !focused {
		t.Error("the error summary does not take the focus")
	}
}

// TestBrowserOrgPage: an organization with a published statement shows it with its
// chart, the donor check finds a recorded gift (typed full-width, as a Chinese input
// method does) and not a wrong amount, and an unknown code is a Chinese 404 page.
func TestBrowserOrgPage(t *testing.T) {
	const code = "52330782MJ0000042R"
	webOrg(code, "义乌市某助学服务中心")
	a, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	base := "/v1/orgs/" + code + "/ledger"
	wantStatus(t, postJSON(t, base+"/entries", a, map[string]any{"kind": "income", "income_type": "transfer", "amount_fen": 6_000_000, "date": "2026-10-08",
		"donor": map[string]any{"anonymous": false, "name": "某公司", "name_consent": true}, "receipt_number": "ZJ2026-88"}), 201)
	wantStatus(t, postJSON(t, base+"/entries", a, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": 20_050, "date": "2026-10-09",
		"donor": map[string]any{"anonymous": true}, "receipt_number": "ZJ2026-89"}), 201)
	wantStatus(t, postJSON(t, base+"/entries", a, map[string]any{"kind": "disbursement", "from": "funds", "amount_fen": 1_500_000, "date": "2026-10-20",
		"beneficiary": map[string]any{"name": "受助学生"}}), 201)
	wantStatus(t, postJSON(t, base+"/statements/2026-10/publish", a, ""), 201)

	b := newBrowser(t, true)
	axeJS := axeSource(t)
	b.run(chromedp.Navigate(baseURL+"/orgs/"+code), chromedp.WaitVisible("#org-name", chromedp.ByQuery))
	b.axe(axeJS, "/orgs/{code}")
	b.shotWide("org")
	var bars int
	b.run(chromedp.Evaluate(`document.querySelectorAll("#m-2026-10 svg.chart rect").length`, &bars))
	if bars != 3 {
		t.Errorf("chart has %d bars, want 3", bars)
	}
	page := b.text("main")
	for _, want := range []string{"2026年10月", "60,200.50 元", "15,000 元", "大额收支", "某公司", "正常", "义乌市民政局"} {
		if !strings.Contains(page, want) {
			t.Errorf("org page lacks %q", want)
		}
	}
	var href string
	var ok bool
	b.run(chromedp.AttributeValue("#report-org", "href", &href, &ok, chromedp.ByQuery))
	if href != "/report?org="+code {
		t.Errorf("report link %q", href)
	}

	b.run(chromedp.SendKeys("#f-receipt", "ＺＪ２０２６－８９", chromedp.ByQuery), chromedp.SendKeys("#f-amount", "200.50", chromedp.ByQuery),
		chromedp.Submit("#f-amount", chromedp.ByQuery), chromedp.WaitVisible("#check-result", chromedp.ByQuery))
	if got := b.text("#check-result"); !strings.Contains(got, "已入账") {
		t.Errorf("donor check: %s", got)
	}
	b.shot("donor-check")
	b.run(chromedp.SetValue("#f-amount", "200", chromedp.ByQuery))
	b.navigating(chromedp.Submit("#f-amount", chromedp.ByQuery))
	if got := b.text("#check-result"); !strings.Contains(got, "没有找到") {
		t.Errorf("donor check, wrong amount: %s", got)
	}
	b.axe(axeJS, "/orgs/{code} (checked)")

	b.run(chromedp.Navigate(baseURL+"/orgs/52330782MJ0000099A"), chromedp.WaitVisible("h1", chromedp.ByQuery))
	if got := b.text("main"); !strings.Contains(got, "没有找到") {
		t.Errorf("unknown org page: %s", got)
	}
	b.axe(axeJS, "404")
	b.shot("not-found")
}

// TestBrowserProofOfWork: while wrong receipts run above normal, the follow-up form
// asks for a proof of work, the page's script solves it, and the reporter gets in; the
// page says what is happening (and what to do with JavaScript off).
func TestBrowserProofOfWork(t *testing.T) {
	b := newBrowser(t, true)
	cfg := testConfig(t, t.TempDir(), map[string]string{"QF_POW_NORMAL_PER_MINUTE": "1"})
	m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()
	e, err := send(base, "POST", "/v1/reports", jsonBytes(t, anonymousReport()), nil)
	if err != nil || e.status != 201 {
		t.Fatalf("file: %v %d %s", err, e.status, e.body)
	}
	var f filed
	if err := json.Unmarshal(e.body, &f); err != nil {
		t.Fatal(err)
	}
	login := func(code string) {
		b.run(chromedp.Navigate(base+"/followup"), chromedp.WaitVisible("#f-receipt", chromedp.ByQuery),
			chromedp.SendKeys("#f-receipt", code, chromedp.ByQuery))
		b.navigating(chromedp.Click("form button.primary", chromedp.ByQuery))
	}
	login("4111 1111 1111 1111") // a wrong receipt: the difficulty rises
	if !strings.Contains(b.text("main"), "回执码无效") {
		t.Fatalf("wrong receipt: %s", b.text("main"))
	}
	login(f.ReceiptCode)
	if got := b.text("main"); !strings.Contains(got, "计算验证") || !strings.Contains(got, "JavaScript") {
		t.Fatalf("no proof-of-work notice: %s", got)
	}
	b.shot("pow-notice")
	var solved bool
	b.run(chromedp.Poll(`document.getElementById("f-pow").value.includes(":")`, &solved, chromedp.WithPollingTimeout(60*time.Second)))
	b.run(chromedp.SendKeys("#f-receipt", f.ReceiptCode, chromedp.ByQuery))
	b.navigating(chromedp.Click("form button.primary", chromedp.ByQuery))
	if got := b.text("main"); !strings.Contains(got, f.CaseNumber) {
		t.Fatalf("after solving: %s", got)
	}
	b.shot("pow-solved")
}
