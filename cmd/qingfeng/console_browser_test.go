package main

// The scripted day in Chromium, at a desktop viewport, as far as the console's
// pages go (see TestConsoleBrowserDay's comment for the steps done outside them).
// Screenshots per step; axe-core on every console page.

import (
	"context"
	"encoding/base32"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

// consoleSignInBrowser signs u in through the form with a code (TOTP or recovery).
func (b *browserSession) consoleSignIn(u *accounts.User, code string) {
	b.t.Helper()
	b.run(chromedp.Navigate(baseURL+"/console/login"), chromedp.WaitVisible("#login-form", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", u.Username, chromedp.ByQuery), chromedp.SendKeys("#f-password", consolePassword, chromedp.ByQuery),
		chromedp.SendKeys("#f-code", code, chromedp.ByQuery), chromedp.Click("#login-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#logout", chromedp.ByQuery))
}

func (b *browserSession) consoleSignOut() {
	b.t.Helper()
	b.run(chromedp.Click("#logout", chromedp.ByQuery), chromedp.WaitVisible("#login-form", chromedp.ByQuery))
}

// act fills a case-page form and submits it, waiting for the page that follows.
func (b *browserSession) act(button string, fill ...chromedp.Action) {
	b.t.Helper()
	b.run(fill...)
	// Mark the page, submit, and wait for a page without the mark: a query during the
	// navigation may lose its context, so it is retried.
	b.run(chromedp.Evaluate(`document.body.dataset.before = "1"`, nil), chromedp.Click(button, chromedp.ByQuery))
	deadline := time.Now().Add(20 * time.Second)
	for {
		var fresh bool
		err := chromedp.Run(b.ctx, chromedp.Evaluate(`document.readyState === "complete" && document.body && !document.body.dataset.before`, &fresh))
		if err == nil && fresh {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no new page after %s: %v", button, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsoleBrowserDay is the scripted day of issue 14:
//
//   - the admin creates a staff member of each unit, a custodian (all with a second
//     factor) — through the API (the admin pages have their own tests);
//   - a citizen files through the public form with a photo;
//   - the staff member signs in with the second factor, sees the case marked new,
//     opens it, views the photo, accepts, messages the reporter, transfers it;
//   - the other unit's staff member signs in, returns it with a reason;
//   - the first signs in again (with a recovery code), disposes and concludes with
//     澄清正名 (错告); the reporter sees the outcome on the follow-up page;
//   - on a real-name case the staff member requests the identity; a custodian signs
//     in and approves it, and sees the qfctl command for the re-seal;
//   - statistics and notifications pages, each checked by axe.
//
// The liaisons' part (goods from a phone, verified by a second liaison) is
// TestConsoleBrowserLiaison.
func TestConsoleBrowserDay(t *testing.T) {
	b := newBrowserAt(t, true, 1280, 900)
	axeJS := axeSource(t)

	// Later sign-ins within the same 30 s use recovery codes: a TOTP code is good once.
	mz, mzSecret, mzCodes := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", true)
	scjg, scjgSecret, _ := consoleAccount(t, accounts.RoleStaff, "330782-scjg", "", true)

	// A citizen files through the public form.
	photo := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(photo, testJPEG(t), 0o644); err != nil {
		t.Fatal(err)
	}
	b.run(chromedp.Navigate(baseURL+"/report"), chromedp.WaitVisible("#report-form", chromedp.ByQuery))
	b.pickDivision("330700", "330782")
	b.run(chromedp.Click("#f-category-arbitrary_fees", chromedp.ByQuery), chromedp.Click("#f-kind-org", chromedp.ByQuery),
		chromedp.SendKeys("#f-org-name", "义乌市某商会", chromedp.ByQuery),
		chromedp.SendKeys("#f-description", "商会向会员企业收取“赞助费”，没有依据。（控制台测试）", chromedp.ByQuery),
		chromedp.SetUploadFiles("#f-files", []string{photo}, chromedp.ByQuery),
		chromedp.Click("#submit-report", chromedp.ByQuery), chromedp.WaitVisible("#receipt-code", chromedp.ByQuery))
	receipt, number := b.text("#receipt-code"), b.text("#case-number")
	b.shot("citizen-receipt")

	// The staff member signs in with the second factor.
	b.run(chromedp.Navigate(baseURL + "/console"))
	b.run(chromedp.WaitVisible("#login-form", chromedp.ByQuery))
	b.axe(axeJS, "/console/login")
	b.shot("login")
	b.consoleSignIn(mz, nextTOTP(mzSecret))
	b.axe(axeJS, "/console")
	b.run(chromedp.Navigate(baseURL+"/console/cases"), chromedp.WaitVisible("#queue", chromedp.ByQuery))
	b.axe(axeJS, "/console/cases")
	b.shot("queue")
	row := b.text(`#queue tr:has(a[href="/console/cases/` + number + `"])`)
	if !strings.Contains(row, "新案件") || !strings.Contains(row, "已登记") {
		t.Errorf("queue row of the new case: %q", row)
	}
	b.run(chromedp.Navigate(baseURL+"/console/cases?sort=due&category=arbitrary_fees"), chromedp.WaitVisible("main h1", chromedp.ByQuery))
	b.axe(axeJS, "/console/cases (filtered)")
	// Searches the queue by the organization, typed in traditional script.
	b.run(chromedp.Navigate(baseURL+"/console/cases"), chromedp.WaitVisible("#f-q", chromedp.ByQuery),
		chromedp.SendKeys("#f-q", "義烏市某商會\n", chromedp.ByQuery), chromedp.WaitVisible("#org-search", chromedp.ByQuery))
	b.axe(axeJS, "/console/cases?q= (organization)")
	b.shot("queue-org-search")
	if row := b.text(`#queue tr:has(a[href="/console/cases/` + number + `"])`); !strings.Contains(row, "义乌市某商会") {
		t.Errorf("the organization search's row of the new case: %q", row)
	}

	// Opens it: the report, the routing decision, the photo.
	b.run(chromedp.Navigate(baseURL+"/console/cases/"+number), chromedp.WaitVisible("#case-number", chromedp.ByQuery))
	b.axe(axeJS, "/console/cases/{case}")
	b.shot("case")
	if got := b.text("#case-description"); !strings.Contains(got, "赞助费") {
		t.Errorf("description %q", got)
	}
	if got := b.text("#routing-reason"); got == "" {
		t.Error("no routing reason")
	}
	var loaded bool
	b.run(chromedp.WaitVisible("#evidence img", chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#evidence img").complete && document.querySelector("#evidence img").naturalWidth > 0`, &loaded,
			chromedp.WithPollingTimeout(10*time.Second)))
	b.run(chromedp.Click("#evidence a", chromedp.ByQuery), chromedp.WaitVisible("#viewer-image", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("viewer-image").naturalWidth > 0`, &loaded, chromedp.WithPollingTimeout(10*time.Second)))
	b.axe(axeJS, "/console/cases/{case}/evidence/{id}/view")
	b.shot("evidence-viewer")

	// Accepts — first without a reason: the error, and nothing changes.
	b.run(chromedp.Navigate(baseURL+"/console/cases/"+number), chromedp.WaitVisible("#do-accept", chromedp.ByQuery))
	b.act("#do-accept")
	if got := b.text(".error-summary"); !strings.Contains(got, "理由") {
		t.Errorf("accept without a reason: %q", got)
	}
	b.axe(axeJS, "/console/cases/{case} (error)")
	b.shot("accept-error")
	b.act("#do-accept", chromedp.SendKeys("#f-accept-reason", "属于本单位受理范围", chromedp.ByQuery))
	if got := b.text("#case-status"); got != "已受理" {
		t.Fatalf("status after accepting: %q", got)
	}
	question := "请问收费的时间和金额？"
	b.act("#do-message", chromedp.SendKeys("#f-body", question, chromedp.ByQuery))
	if !strings.Contains(b.text("#timeline"), question) {
		t.Errorf("message not in the timeline: %s", b.text("#timeline"))
	}
	b.shot("accepted-messaged")
	// Transfers it to the market regulator.
	b.act("#do-transfer", chromedp.SendKeys("#f-to-unit", "330782-scjg", chromedp.ByQuery),
		chromedp.SendKeys("#f-transfer-reason", "涉企收费，属市场监管职责", chromedp.ByQuery))
	if !strings.Contains(b.text("main"), "已转出本单位") {
		t.Errorf("after the transfer: %s", b.text("main"))
	}
	b.shot("transferred")
	b.consoleSignOut()

	// The other unit returns it.
	b.consoleSignIn(scjg, nextTOTP(scjgSecret))
	b.run(chromedp.Navigate(baseURL+"/console/cases/"+number), chromedp.WaitVisible("#act-transfer_answer", chromedp.ByQuery))
	b.axe(axeJS, "/console/cases/{case} (transfer in)")
	b.shot("transfer-in")
	b.act("#transfer-return", chromedp.SendKeys("#f-ta-reason", "属于民政职责，退回", chromedp.ByQuery))
	b.consoleSignOut()

	// The first unit concludes it with 澄清正名.
	b.consoleSignIn(mz, mzCodes[0])
	b.run(chromedp.Navigate(baseURL+"/console/cases/"+number), chromedp.WaitVisible("#do-dispose", chromedp.ByQuery))
	if !strings.Contains(b.text("#timeline"), "属于民政职责，退回") {
		t.Errorf("the return is not in the timeline: %s", b.text("#timeline"))
	}
	b.act("#do-dispose", chromedp.SetValue("#f-disposition", "preliminary_verification", chromedp.ByQuery),
		chromedp.SendKeys("#f-dispose-reason", "初步核实", chromedp.ByQuery))
	b.act("#do-conclude", chromedp.Click("#f-result-unsubstantiated", chromedp.ByQuery), chromedp.Click("#f-name-cleared", chromedp.ByQuery),
		chromedp.Click("#f-fa-mistake", chromedp.ByQuery), chromedp.SendKeys("#f-conclude-reason", "经核实不属实，系误解", chromedp.ByQuery))
	if got := b.text("#case-outcome"); !strings.Contains(got, "澄清正名") || !strings.Contains(got, "错告") {
		t.Errorf("outcome: %q", got)
	}
	if got := b.text("#case-status"); got != "已办结" {
		t.Errorf("status %q", got)
	}
	b.shot("concluded")

	// Statistics and notifications.
	b.run(chromedp.Navigate(baseURL+"/console/stats"), chromedp.WaitVisible("#stats-total", chromedp.ByQuery))
	b.axe(axeJS, "/console/stats")
	b.shot("stats")
	b.run(chromedp.Navigate(baseURL+"/console/notifications"), chromedp.WaitVisible("main h1", chromedp.ByQuery))
	b.axe(axeJS, "/console/notifications")
	b.run(chromedp.Navigate(baseURL+"/console/totp"), chromedp.WaitVisible("main h1", chromedp.ByQuery))
	b.axe(axeJS, "/console/totp")
	b.run(chromedp.Navigate(baseURL+"/console/password"), chromedp.WaitVisible("#password-submit", chromedp.ByQuery))
	b.axe(axeJS, "/console/password")
	b.consoleSignOut()

	// The reporter sees the outcome.
	b.run(chromedp.Navigate(baseURL+"/followup"), chromedp.WaitVisible("#f-receipt", chromedp.ByQuery),
		chromedp.SendKeys("#f-receipt", receipt, chromedp.ByQuery), chromedp.Click("form button.primary", chromedp.ByQuery),
		chromedp.WaitVisible("#outcome", chromedp.ByQuery))
	if got := b.text("#outcome"); !strings.Contains(got, "澄清正名") {
		t.Errorf("the reporter's outcome: %q", got)
	}
	if !strings.Contains(b.text("main"), question) {
		t.Error("the reporter does not see the staff's message")
	}
	b.shot("reporter-outcome")
	b.run(chromedp.Click("#logout", chromedp.ByQuery), chromedp.WaitVisible("#f-receipt", chromedp.ByQuery))

	// A disclosure: the staff member requests it on a real-name case, a custodian
	// approves it.
	t.Run("disclosure", func(t *testing.T) {
		b.t = t
		admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
		// In Pan'an (磐安), a county no other test registers custodians for: a
		// jurisdiction's last custodian key cannot be revoked, and other tests count
		// Yiwu's.
		const unit, county = "330727-mz", "330727"
		requester, _, _ := consoleAccount(t, accounts.RoleStaff, unit, "", false)
		custodian, custSecret, _ := consoleAccount(t, accounts.RoleCustodian, "", county, true)
		_, custRcp := newKey(t)
		_, staffRcp := newKey(t)
		wantStatus(t, postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": custodian.ID, "recipient": custRcp}), 201)
		wantStatus(t, postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": requester.ID, "recipient": staffRcp}), 201)
		body := realNameReport()
		body["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"name": "磐安县某行业协会"}}
		body["location"] = map[string]any{"division": county, "address": "磐安县安文街道"}
		body["identity"] = map[string]any{"name": "孙八", "mobile": "13600136000"}
		f := fileReport(t, body)
		if cs, err := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber); err != nil || cs.UnitID != unit {
			t.Fatalf("the Pan'an case went to %v (%v)", cs, err)
		}

		b.consoleSignIn(requester, "")
		b.run(chromedp.Navigate(baseURL+"/console/cases/"+f.CaseNumber), chromedp.WaitVisible("#do-disclosure", chromedp.ByQuery))
		b.act("#do-disclosure", chromedp.SendKeys("#f-disclosure-reason", "需与举报人当面核实线索", chromedp.ByQuery))
		if !strings.Contains(b.text("#act-disclosure"), "待保密员审批") {
			t.Errorf("disclosure section: %s", b.text("#act-disclosure"))
		}
		if strings.Contains(b.text("main"), "孙八") {
			t.Fatal("the identity is on the staff page")
		}
		b.consoleSignOut()

		b.consoleSignIn(custodian, nextTOTP(custSecret))
		b.run(chromedp.Navigate(baseURL+"/console/custody"), chromedp.WaitVisible("main h1", chromedp.ByQuery))
		b.axe(axeJS, "/console/custody")
		b.shot("custody")
		var id string
		b.run(chromedp.AttributeValue(`section[id^="d-"]`, "id", &id, nil, chromedp.ByQuery))
		id = strings.TrimPrefix(id, "d-")
		if !strings.Contains(b.text("#d-"+id), "需与举报人当面核实线索") {
			t.Errorf("the request's reason is not shown: %s", b.text("#d-"+id))
		}
		// Approving without a reason is refused.
		b.run(chromedp.Click("#approve-"+id, chromedp.ByQuery), chromedp.WaitVisible(".error-summary", chromedp.ByQuery))
		b.run(chromedp.SendKeys("#f-reason-"+id, "理由充分，同意披露", chromedp.ByQuery), chromedp.Click("#approve-"+id, chromedp.ByQuery),
			chromedp.WaitVisible("#flash", chromedp.ByQuery))
		if got := b.text("#cmd-" + id); !strings.Contains(got, "qfctl disclose reseal "+id+" --key") {
			t.Errorf("re-seal command: %q", got)
		}
		if strings.Contains(b.text("main"), "孙八") {
			t.Fatal("the identity is on the custodian's page")
		}
		b.axe(axeJS, "/console/custody (approved)")
		b.shot("custody-approved")
	})
}

// createAccount creates an account through /console/admin/users as the signed-in
// admin, with a one-time initial password.
func (b *browserSession) createAccount(name, display, role, division, initial string) {
	b.t.Helper()
	b.run(chromedp.Navigate(baseURL+"/console/admin/users"), chromedp.WaitVisible("#create-user", chromedp.ByQuery))
	b.act("#create-user", chromedp.SendKeys("#f-username", name, chromedp.ByQuery), chromedp.SendKeys("#f-display_name", display, chromedp.ByQuery),
		chromedp.SetValue("#f-role", role, chromedp.ByQuery), chromedp.SendKeys("#f-division", division, chromedp.ByQuery),
		chromedp.SendKeys("#f-password", initial, chromedp.ByQuery))
	if !strings.Contains(b.text("#flash"), "账号已创建") {
		b.t.Fatalf("creating %s: %s", name, b.text("main"))
	}
}

// firstSignIn signs in with the initial password, changes it, and enrols a second
// factor, as a new account's owner does; it returns the TOTP secret.
func (b *browserSession) firstSignIn(axeJS, name, initial, step string) []byte {
	b.t.Helper()
	b.run(chromedp.Navigate(baseURL+"/console/login"), chromedp.WaitVisible("#login-form", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", name, chromedp.ByQuery), chromedp.SendKeys("#f-password", initial, chromedp.ByQuery),
		chromedp.Click("#login-submit", chromedp.ByQuery), chromedp.WaitVisible("#password-submit", chromedp.ByQuery))
	b.axe(axeJS, "/console/password (required, "+step+")")
	b.shot(step + "-must-change")
	newPW := "liaison long passphrase 2026"
	b.run(chromedp.SendKeys("#f-current_password", initial, chromedp.ByQuery), chromedp.SendKeys("#f-new_password", newPW, chromedp.ByQuery),
		chromedp.SendKeys("#f-new_password_again", newPW, chromedp.ByQuery), chromedp.Click("#password-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#flash, .panel.success", chromedp.ByQuery))
	b.run(chromedp.Navigate(baseURL+"/console/totp"), chromedp.WaitVisible("#totp-start", chromedp.ByQuery),
		chromedp.Click("#totp-start", chromedp.ByQuery), chromedp.WaitVisible("#totp-secret", chromedp.ByQuery))
	b.axe(axeJS, "/console/totp (secret, "+step+")")
	b.shot(step + "-totp-secret")
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(b.text("#totp-secret"), " ", ""))
	if err != nil {
		b.t.Fatal(err)
	}
	b.run(chromedp.SendKeys("#f-code", accounts.TOTPCode(secret, accounts.TOTPStep(time.Now())), chromedp.ByQuery),
		chromedp.Click("#totp-confirm", chromedp.ByQuery), chromedp.WaitVisible("#recovery-codes", chromedp.ByQuery))
	b.axe(axeJS, "/console/totp (recovery codes, "+step+")")
	return secret
}

// TestConsoleBrowserLiaison: the liaisons' part of the scripted day, at a phone's
// width (375 px). The admin creates two liaisons in the browser; each signs in with
// the one-time password, changes it and enrols a second factor. The first records
// income in yuan and goods with a photo chosen in the file input (a missing quantity
// first: the error, the values kept), sees the photo's thumbnail, and cannot verify
// their own goods. The second verifies them, hands out part of the stock (more than
// there is first: the error with what there is), reverses the hand-out (without a
// reason first: the error), sees both entries, and publishes the month. axe-core on
// every state, a screenshot per step.
func TestConsoleBrowserLiaison(t *testing.T) {
	const code = "52330782MJ0000077X"
	webOrg(code, "义乌市某公益服务中心（台账测试）")
	b := newBrowser(t, true)
	axeJS := axeSource(t)
	admin, adminSecret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	// The admin works at a desk; the liaisons in the field.
	b.run(emulation.SetDeviceMetricsOverride(1280, 900, 1, false))
	b.consoleSignIn(admin, nextTOTP(adminSecret))
	suffix := time.Now().UnixNano() % 1_000_000
	first, second := fmt.Sprintf("li%d", suffix), fmt.Sprintf("zhao%d", suffix)
	b.createAccount(first, "李联络员", "liaison", "330782", "first initial passphrase")
	b.createAccount(second, "赵联络员", "liaison", "330782", "second initial passphrase")
	b.axe(axeJS, "/console/admin/users (created)")
	b.shot("admin-created-liaisons")
	for _, name := range []string{first, second} {
		if u, err := srv.Accounts.Users.UserByUsername(context.Background(), name); err != nil || u.Role != accounts.RoleLiaison || u.Division != "330782" {
			t.Fatalf("liaison %s: %+v, %v", name, u, err)
		}
	}
	b.consoleSignOut()
	b.run(emulation.SetDeviceMetricsOverride(375, 812, 2, true))

	b.firstSignIn(axeJS, first, "first initial passphrase", "first")
	b.run(chromedp.Navigate(baseURL+"/console/ledger"), chromedp.WaitVisible("#f-org", chromedp.ByQuery))
	b.axe(axeJS, "/console/ledger")
	b.run(chromedp.SendKeys("#f-org", strings.ToLower(code), chromedp.ByQuery), chromedp.Click("#open-ledger", chromedp.ByQuery),
		chromedp.WaitVisible("#balance", chromedp.ByQuery))
	b.axe(axeJS, "/console/ledger/{code}")
	b.shot("ledger")
	// Dated last month, so that the month can be published (only a month that is over).
	sh := time.FixedZone("CST", 8*3600)
	now := time.Now().In(sh)
	lastMonth := time.Date(now.Year(), now.Month()-1, 15, 0, 0, 0, 0, sh)
	day := lastMonth.Format(time.DateOnly)
	b.act("#record-income", chromedp.Click("#form-income summary", chromedp.ByQuery), chromedp.SetValue("#f-in-date", day, chromedp.ByQuery),
		chromedp.SendKeys("#f-in-amount", "1200.50", chromedp.ByQuery), chromedp.SendKeys("#f-in-receipt", "ZJ2026-000101", chromedp.ByQuery))
	if got := b.text("#total-funds"); got != "1,200.50 元" {
		t.Errorf("funds after 1200.50 yuan: %q", got)
	}
	photo := filepath.Join(t.TempDir(), "rice.jpg")
	if err := os.WriteFile(photo, testJPEG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	// Goods with a missing quantity: the error, nothing recorded, the values kept.
	b.act("#record-goods", chromedp.Click("#form-goods summary", chromedp.ByQuery), chromedp.SetValue("#f-g-date", day, chromedp.ByQuery),
		chromedp.SendKeys("#f-g-item", "大米", chromedp.ByQuery), chromedp.SendKeys("#f-g-unit", "袋", chromedp.ByQuery),
		chromedp.SendKeys("#f-g-val", "500", chromedp.ByQuery), chromedp.SendKeys("#f-g-receipt", "ZJ2026-000102", chromedp.ByQuery),
		chromedp.SetUploadFiles("#f-g-photos", []string{photo}, chromedp.ByQuery))
	if b.text(".error-summary") == "" || b.value("#f-g-item") != "大米" {
		t.Fatal("no error for goods without a quantity, or the values lost")
	}
	b.axe(axeJS, "/console/ledger/{code} (goods error)")
	b.shot("goods-error")
	// The file input is empty again after the error (a browser never refills one).
	b.act("#record-goods", chromedp.SendKeys("#f-g-qty", "20", chromedp.ByQuery), chromedp.SetValue("#f-g-date", day, chromedp.ByQuery),
		chromedp.SetUploadFiles("#f-g-photos", []string{photo}, chromedp.ByQuery))
	if got := b.text("#stock"); !strings.Contains(got, "大米") || !strings.Contains(got, "20 袋") {
		t.Errorf("stock: %q", got)
	}
	if got := b.text("#entries li:first-child"); !strings.Contains(got, "待另一人核验") {
		t.Errorf("goods entry: %q", got)
	}
	var loaded bool
	b.run(chromedp.WaitVisible("#entries li:first-child .ledger-photos img", chromedp.ByQuery),
		chromedp.Poll(`(() => { const i = document.querySelector("#entries li:first-child .ledger-photos img"); return i && i.complete && i.naturalWidth > 0; })()`, &loaded,
			chromedp.WithPollingTimeout(10*time.Second)))
	if !loaded {
		t.Error("the photo's thumbnail did not load")
	}
	if n := b.count(`#entries button[id^="verify-"]`); n != 0 {
		t.Errorf("the recorder may verify their own goods (%d buttons)", n)
	}
	b.axe(axeJS, "/console/ledger/{code} (goods with a photo)")
	b.shot("goods-recorded")
	b.consoleSignOut()

	b.firstSignIn(axeJS, second, "second initial passphrase", "second")
	b.run(chromedp.Navigate(baseURL+"/console/ledger/"+code), chromedp.WaitVisible(`#entries button[id^="verify-"]`, chromedp.ByQuery))
	b.act(`#entries button[id^="verify-"]`)
	if got := b.text("#entries li:first-child"); !strings.Contains(got, "已由") || !strings.Contains(got, "核验") {
		t.Errorf("after verifying: %q", got)
	}
	b.shot("goods-verified")

	// Hand-out from the stock: more than there is, then part of it.
	b.act("#record-handout", chromedp.Click("#form-handout summary", chromedp.ByQuery), chromedp.SetValue("#f-h-date", day, chromedp.ByQuery),
		chromedp.SendKeys("#f-h-qty", "25", chromedp.ByQuery), chromedp.SendKeys("#f-h-benef", "王某某", chromedp.ByQuery),
		chromedp.SendKeys("#f-h-purpose", "冬季困难家庭救助", chromedp.ByQuery), chromedp.SetUploadFiles("#f-h-photos", []string{photo}, chromedp.ByQuery))
	if got := b.text(".error-summary"); !strings.Contains(got, "库存只有 20 袋") {
		t.Fatalf("hand-out beyond the stock: %q", got)
	}
	b.axe(axeJS, "/console/ledger/{code} (hand-out error)")
	b.shot("handout-error")
	b.act("#record-handout", chromedp.SetValue("#f-h-qty", "5", chromedp.ByQuery), chromedp.SetValue("#f-h-date", day, chromedp.ByQuery),
		chromedp.SetUploadFiles("#f-h-photos", []string{photo}, chromedp.ByQuery))
	if got := b.text("#stock"); !strings.Contains(got, "15 袋") {
		t.Errorf("stock after handing out 5: %q", got)
	}
	b.shot("handout-recorded")

	// Reverse the hand-out: without a reason first.
	b.run(chromedp.Click("#entries li:first-child details.reverse summary", chromedp.ByQuery))
	b.axe(axeJS, "/console/ledger/{code} (reversal form)")
	b.shot("reverse-form")
	b.act(`#entries li:first-child button[id^="reverse-"]`)
	if got := b.text(".error-summary"); !strings.Contains(got, "冲销原因") {
		t.Fatalf("reversal without a reason: %q", got)
	}
	b.axe(axeJS, "/console/ledger/{code} (reversal error)")
	b.shot("reverse-error")
	b.act(`#entries li:first-child button[id^="reverse-"]`, chromedp.SendKeys("#entries li:first-child textarea", "受助人登记错误，重新发放", chromedp.ByQuery))
	if got := b.text("#entries li:first-child"); !strings.Contains(got, "冲销第 3 笔") || !strings.Contains(got, "受助人登记错误") {
		t.Errorf("the reversal: %q", got)
	}
	if got := b.text("#entries li:nth-child(2)"); !strings.Contains(got, "已被第 4 笔冲销") {
		t.Errorf("the reversed hand-out: %q", got)
	}
	if got := b.text("#stock"); !strings.Contains(got, "20 袋") {
		t.Errorf("stock after the reversal: %q", got)
	}
	b.axe(axeJS, "/console/ledger/{code} (reversed)")
	b.shot("reversed")

	month := lastMonth.Format("2006-01")
	b.run(chromedp.Navigate(baseURL+"/console/ledger/"+code+"?month="+month), chromedp.WaitVisible("#publish", chromedp.ByQuery))
	if got := b.text("#publish-preview"); !strings.Contains(got, "1,200.50 元") || !strings.Contains(got, "大米") {
		t.Errorf("what publishing freezes: %q", got)
	}
	b.axe(axeJS, "/console/ledger/{code} (publish)")
	b.shot("publish-preview")
	b.act("#publish")
	b.run(chromedp.WaitVisible("#published-note", chromedp.ByQuery))
	b.axe(axeJS, "/console/ledger/{code} (published)")
	b.shot("published")
}

// TestConsoleBrowserLedgerNoJS: with JavaScript off, at 375 px, the ledger's forms are
// plain HTML: goods with a photo from the file input (a multipart form), its
// thumbnail, a hand-out picked from the stock with a photo, and a reversal.
func TestConsoleBrowserLedgerNoJS(t *testing.T) {
	const code = "52330782MJ0000144X"
	webOrg(code, "义乌市某公益服务中心（无脚本测试）")
	b := newBrowser(t, false)
	a, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	v, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	photo := filepath.Join(t.TempDir(), "quilt.jpg")
	if err := os.WriteFile(photo, testJPEG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	b.consoleSignIn(a, "")
	b.run(chromedp.Navigate(baseURL+"/console/ledger/"+code), chromedp.WaitVisible("#balance", chromedp.ByQuery))
	b.act("#record-goods", chromedp.Click("#form-goods summary", chromedp.ByQuery), chromedp.SendKeys("#f-g-item", "棉被", chromedp.ByQuery),
		chromedp.SendKeys("#f-g-qty", "6", chromedp.ByQuery), chromedp.SendKeys("#f-g-unit", "床", chromedp.ByQuery),
		chromedp.SendKeys("#f-g-val", "1200", chromedp.ByQuery), chromedp.SetUploadFiles("#f-g-photos", []string{photo}, chromedp.ByQuery))
	if got := b.text("#stock"); !strings.Contains(got, "6 床") || b.count("#entries li:first-child .ledger-photos img") != 1 {
		t.Fatalf("goods with a photo, no script: stock %q, %s", got, b.text("main"))
	}
	b.shot("nojs-goods")
	b.consoleSignOut()
	b.consoleSignIn(v, "")
	b.run(chromedp.Navigate(baseURL+"/console/ledger/"+code), chromedp.WaitVisible(`#entries button[id^="verify-"]`, chromedp.ByQuery))
	b.act(`#entries button[id^="verify-"]`)
	b.act("#record-handout", chromedp.Click("#form-handout summary", chromedp.ByQuery), chromedp.SendKeys("#f-h-qty", "2", chromedp.ByQuery),
		chromedp.SendKeys("#f-h-benef", "李某", chromedp.ByQuery), chromedp.SetUploadFiles("#f-h-photos", []string{photo}, chromedp.ByQuery))
	if got := b.text("#stock"); !strings.Contains(got, "4 床") {
		t.Fatalf("hand-out, no script: stock %q, %s", got, b.text("main"))
	}
	b.run(chromedp.Click("#entries li:first-child details.reverse summary", chromedp.ByQuery))
	b.act(`#entries li:first-child button[id^="reverse-"]`, chromedp.SendKeys("#entries li:first-child textarea", "数量记错", chromedp.ByQuery))
	if got := b.text("#stock"); !strings.Contains(got, "6 床") || !strings.Contains(b.text("#entries li:first-child"), "冲销第 2 笔") {
		t.Fatalf("reversal, no script: stock %q, %s", got, b.text("#entries"))
	}
	b.shot("nojs-reversed")
}

func (b *browserSession) count(sel string) int {
	b.t.Helper()
	var n int
	b.run(chromedp.Evaluate(`document.querySelectorAll(`+"`"+sel+"`"+`).length`, &n))
	return n
}

// TestConsoleBrowserAdmin: the day's first step in the browser. The admin signs in with
// the second factor and creates a staff member (a bad password first: the error, the
// other values kept); the staff member signs in with the initial password, must change
// it, enrols a second factor in the browser, keeps the recovery codes, and signs in
// again with password and code.
func TestConsoleBrowserAdmin(t *testing.T) {
	b := newBrowserAt(t, true, 1280, 900)
	axeJS := axeSource(t)
	admin, adminSecret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	b.consoleSignIn(admin, nextTOTP(adminSecret))
	b.run(chromedp.Navigate(baseURL+"/console/admin/users"), chromedp.WaitVisible("#create-user", chromedp.ByQuery))
	b.axe(axeJS, "/console/admin/users")
	name := fmt.Sprintf("zhang%d", time.Now().UnixNano()%1_000_000)
	initial := "initial passphrase 2026"
	b.act("#create-user", chromedp.SendKeys("#f-username", name, chromedp.ByQuery), chromedp.SendKeys("#f-display_name", "张干部", chromedp.ByQuery),
		chromedp.SendKeys("#f-unit_id", "330782-mz", chromedp.ByQuery), chromedp.SendKeys("#f-password", "short", chromedp.ByQuery))
	if b.text(".error-summary") == "" || b.value("#f-unit_id") != "330782-mz" {
		t.Fatalf("weak password: summary %q, unit kept %q", b.text(".error-summary"), b.value("#f-unit_id"))
	}
	b.axe(axeJS, "/console/admin/users (error)")
	b.shot("admin-create-error")
	b.act("#create-user", chromedp.SendKeys("#f-password", initial, chromedp.ByQuery))
	// The list pages by username over every test's accounts: look the new one up.
	if !strings.Contains(b.text("#flash"), "账号已创建") {
		t.Fatalf("after creating: %s", b.text("main"))
	}
	if created, err := srv.Accounts.Users.UserByUsername(context.Background(), name); err != nil || created.UnitID != "330782-mz" || !created.MustChangePassword {
		t.Fatalf("the new account: %+v, %v", created, err)
	}
	b.shot("admin-created")
	b.consoleSignOut()

	// First sign-in: the initial password must be changed, then (voluntarily) the
	// second factor set up.
	b.run(chromedp.Navigate(baseURL+"/console/login"), chromedp.WaitVisible("#login-form", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", name, chromedp.ByQuery), chromedp.SendKeys("#f-password", initial, chromedp.ByQuery),
		chromedp.Click("#login-submit", chromedp.ByQuery), chromedp.WaitVisible("#password-submit", chromedp.ByQuery))
	b.axe(axeJS, "/console/password (required)")
	b.shot("must-change")
	newPW := "my own long passphrase 2026"
	b.run(chromedp.SendKeys("#f-current_password", initial, chromedp.ByQuery), chromedp.SendKeys("#f-new_password", newPW, chromedp.ByQuery),
		chromedp.SendKeys("#f-new_password_again", newPW, chromedp.ByQuery), chromedp.Click("#password-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#flash, .panel.success", chromedp.ByQuery))
	b.run(chromedp.Navigate(baseURL+"/console/totp"), chromedp.WaitVisible("#totp-start", chromedp.ByQuery),
		chromedp.Click("#totp-start", chromedp.ByQuery), chromedp.WaitVisible("#totp-secret", chromedp.ByQuery))
	b.axe(axeJS, "/console/totp (secret)")
	b.shot("totp-secret")
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(b.text("#totp-secret"), " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	b.run(chromedp.SendKeys("#f-code", accounts.TOTPCode(secret, accounts.TOTPStep(time.Now())), chromedp.ByQuery),
		chromedp.Click("#totp-confirm", chromedp.ByQuery), chromedp.WaitVisible("#recovery-codes", chromedp.ByQuery))
	b.axe(axeJS, "/console/totp (recovery codes)")
	b.shot("totp-enabled")
	b.run(chromedp.Navigate(baseURL+"/console"), chromedp.WaitVisible("#logout", chromedp.ByQuery))
	b.consoleSignOut()
	u, err := srv.Accounts.Users.UserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	u.Username = name
	b.run(chromedp.Navigate(baseURL+"/console/login"), chromedp.WaitVisible("#login-form", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", name, chromedp.ByQuery), chromedp.SendKeys("#f-password", newPW, chromedp.ByQuery),
		chromedp.SendKeys("#f-code", accounts.TOTPCode(secret, accounts.TOTPStep(time.Now())+1), chromedp.ByQuery),
		chromedp.Click("#login-submit", chromedp.ByQuery), chromedp.WaitVisible("#logout", chromedp.ByQuery))
	if got := b.text("header"); !strings.Contains(got, "张干部") || !strings.Contains(got, "义乌市民政局") {
		t.Errorf("signed in as %q", got)
	}
	b.axe(axeJS, "/console (staff)")
	b.shot("staff-home")
}

func (b *browserSession) value(sel string) string {
	b.t.Helper()
	var v string
	b.run(chromedp.Value(sel, &v, chromedp.ByQuery))
	return v
}

// TestConsoleBrowserAdminPages: each admin page beyond accounts, at desktop width,
// through axe-core (its normal state and its error state) with a screenshot.
func TestConsoleBrowserAdminPages(t *testing.T) {
	b := newBrowserAt(t, true, 1280, 900)
	axeJS := axeSource(t)
	admin, adminSecret, _ := consoleAccount(t, accounts.RoleAdmin, "", "", true)
	b.consoleSignIn(admin, nextTOTP(adminSecret))

	// The audit log: a bad case filter, then verify.
	b.run(chromedp.Navigate(baseURL+"/console/admin/audit?case=qf-1"), chromedp.WaitVisible("#audit-verify", chromedp.ByQuery))
	if !strings.Contains(b.text(".error-summary"), "案件编号") {
		t.Errorf("bad case filter: %q", b.text(".error-summary"))
	}
	b.axe(axeJS, "/console/admin/audit (error)")
	b.run(chromedp.Navigate(baseURL+"/console/admin/audit"), chromedp.WaitVisible("#audit-verify", chromedp.ByQuery))
	b.act("#audit-verify")
	if !strings.Contains(b.text("#verify-result"), "校验通过") {
		t.Fatalf("verify: %q", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/audit (verified)")
	b.shot("admin-audit")

	// Recipients: a private key pasted by mistake, then the real one.
	custodian, _, _ := consoleAccount(t, accounts.RoleCustodian, "", "330922", false)
	priv, rcp := newKey(t)
	b.run(chromedp.Navigate(baseURL+"/console/admin/recipients"), chromedp.WaitVisible("#register-recipient", chromedp.ByQuery))
	b.axe(axeJS, "/console/admin/recipients")
	b.act("#register-recipient", chromedp.SendKeys("#f-username", custodian.Username, chromedp.ByQuery), chromedp.SendKeys("#f-recipient", priv, chromedp.ByQuery))
	if !strings.Contains(b.text(".error-summary"), "公钥") || b.value("#f-username") != custodian.Username {
		t.Errorf("a private key: summary %q", b.text(".error-summary"))
	}
	b.axe(axeJS, "/console/admin/recipients (error)")
	b.run(chromedp.Evaluate(`document.getElementById("f-recipient").value = ""`, nil))
	b.act("#register-recipient", chromedp.SendKeys("#f-recipient", rcp, chromedp.ByQuery), chromedp.SendKeys("#f-label", "嵊泗县保密员", chromedp.ByQuery))
	if !strings.Contains(b.text("#flash"), "公钥已登记") {
		t.Fatalf("register: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/recipients (registered)")
	b.shot("admin-recipients")

	// Routing rules: a rule without a name, then with one; then retired.
	b.run(chromedp.Navigate(baseURL+"/console/admin/rules"), chromedp.WaitVisible("#create-rule", chromedp.ByQuery))
	b.axe(axeJS, "/console/admin/rules")
	ruleID := fmt.Sprintf("browser-%d", time.Now().UnixNano()%1_000_000)
	b.act("#create-rule", chromedp.SendKeys("#f-id", ruleID, chromedp.ByQuery), chromedp.Click("#f-cat-dormant_org", chromedp.ByQuery),
		chromedp.SendKeys("#f-division_prefix", "330922", chromedp.ByQuery))
	if !strings.Contains(b.text(".error-summary"), "规则名称") || b.value("#f-division_prefix") != "330922" {
		t.Errorf("no name: summary %q", b.text(".error-summary"))
	}
	b.axe(axeJS, "/console/admin/rules (error)")
	b.act("#create-rule", chromedp.SendKeys("#f-name", "嵊泗县僵尸组织", chromedp.ByQuery))
	if !strings.Contains(b.text("#rule-"+ruleID), "僵尸型社会组织") {
		t.Fatalf("create rule: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/rules (created)")
	b.shot("admin-rules")

	// The explain tool from the new rule's 试算 link: the rule's category filled in, no
	// place (an error), then the place through the picker.
	b.act("#explain-" + ruleID)
	if b.value("#f-category") != "dormant_org" {
		t.Errorf("试算 did not fill in the category: %q", b.value("#f-category"))
	}
	b.axe(axeJS, "/console/routing/explain")
	b.act("#explain-submit", chromedp.SetValue("#f-subject-kind", "organization", chromedp.ByQuery),
		chromedp.SendKeys("#f-subject-organization-name", "嵊泗县某僵尸协会", chromedp.ByQuery), chromedp.SetValue("#f-city", "", chromedp.ByQuery))
	if !strings.Contains(b.text(".error-summary"), "发生地区划") || b.value("#f-subject-organization-name") != "嵊泗县某僵尸协会" {
		t.Errorf("no place: summary %q", b.text(".error-summary"))
	}
	b.axe(axeJS, "/console/routing/explain (error)")
	b.shot("explain-error")
	// The site script fills the counties when the city changes (and hides the update
	// button the page needs without it).
	b.run(chromedp.SetValue("#f-city", "330900", chromedp.ByQuery), chromedp.Evaluate(`document.getElementById("f-city").dispatchEvent(new Event("change"))`, nil),
		chromedp.WaitReady(`#f-county option[value="330922"]`, chromedp.ByQuery))
	b.act("#explain-submit", chromedp.SetValue("#f-county", "330922", chromedp.ByQuery))
	if got := b.text("#explain-result"); !strings.Contains(got, "依据规则") || !strings.Contains(b.text("#routing-reason"), "嵊泗县民政局") || b.count("#candidates tbody tr") == 0 {
		t.Errorf("explain: %s", got)
	}
	// The rule just written applies (a lower priority than the default that wins): it is
	// among the candidates, with why it did not choose.
	if got := b.text("#candidates"); !strings.Contains(got, ruleID) || !strings.Contains(got, "优先级较低") {
		t.Errorf("the new rule is not among the candidates: %s", got)
	}
	b.axe(axeJS, "/console/routing/explain (result)")
	b.shot("explain-result")

	// The complete form: an informed unit that does not exist, kept on the page.
	b.run(chromedp.Navigate(baseURL+"/console/admin/rules"), chromedp.WaitVisible("#create-rule", chromedp.ByQuery))
	b.act("#create-rule", chromedp.SendKeys("#f-name", "嵊泗县抄送测试", chromedp.ByQuery), chromedp.Click("#f-sk-organization", chromedp.ByQuery),
		chromedp.SetValue("#f-inform-1-relation", "fixed", chromedp.ByQuery), chromedp.SendKeys("#f-inform-1-unit", "330922-nowhere", chromedp.ByQuery))
	if !strings.Contains(b.text(".error-summary"), "抄送单位 2 的固定单位") || b.value("#f-inform-1-unit") != "330922-nowhere" {
		t.Errorf("unknown informed unit: summary %q", b.text(".error-summary"))
	}
	b.axe(axeJS, "/console/admin/rules (informed unit error)")
	b.shot("admin-rules-inform-error")
	b.run(chromedp.Navigate(baseURL+"/console/admin/rules"), chromedp.WaitVisible("#create-rule", chromedp.ByQuery))
	b.act("#retire-" + ruleID)
	if !strings.Contains(b.text("#flash"), "规则已停用") {
		t.Errorf("retire: %s", b.text("main"))
	}

	// Units: another unit's name as an alias, then a real one.
	b.run(chromedp.Navigate(baseURL+"/console/admin/units?id=330922-jw"), chromedp.WaitVisible("#add-alias", chromedp.ByQuery))
	b.axe(axeJS, "/console/admin/units")
	b.act("#add-alias", chromedp.SendKeys("#f-alias", "义乌市民政局", chromedp.ByQuery))
	if !strings.Contains(b.text("#form-notice, .error-summary"), "义乌市民政局") {
		t.Errorf("another unit's name: %q", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/units (error)")
	b.run(chromedp.Evaluate(`document.getElementById("f-alias").value = ""`, nil))
	b.act("#add-alias", chromedp.SendKeys("#f-alias", "嵊泗纪委", chromedp.ByQuery))
	if !strings.Contains(b.text("#aliases"), "嵊泗纪委") {
		t.Fatalf("add alias: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/units (alias added)")
	b.shot("admin-units")

	// Unit search, in traditional script; then a new unit with a parent that does not
	// exist, corrected.
	b.run(chromedp.Navigate(baseURL+"/console/admin/units"), chromedp.WaitVisible("#unit-search-submit", chromedp.ByQuery))
	b.act("#unit-search-submit", chromedp.SendKeys("#f-q", "嵊泗縣", chromedp.ByQuery))
	if b.count("#units tbody tr") < 5 || !strings.Contains(b.text("#units"), "嵊泗县纪委监委") {
		t.Errorf("unit search: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/units (search result)")
	b.shot("admin-units-search")
	b.run(chromedp.Click("#unit-unstaffed-link", chromedp.ByQuery), chromedp.WaitVisible("#unstaffed-title", chromedp.ByQuery))
	if b.count("#unstaffed-units tbody tr, #unstaffed-none") == 0 {
		t.Errorf("unstaffed units: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/units (unstaffed)")
	b.shot("admin-units-unstaffed")
	// The unit page with its load, at a phone's width too (the console is for the
	// desktop, but nothing should break on a narrow screen).
	b.run(emulation.SetDeviceMetricsOverride(375, 812, 2, true), chromedp.Navigate(baseURL+"/console/admin/units?id=330922-jw"),
		chromedp.WaitVisible("#unit-load", chromedp.ByQuery))
	b.shot("admin-unit-phone")
	b.run(emulation.ClearDeviceMetricsOverride())
	newUnit := fmt.Sprintf("330922-qt%d", time.Now().UnixNano()%1e6)
	b.run(chromedp.Navigate(baseURL+"/console/admin/units?new=1"), chromedp.WaitVisible("#save-unit", chromedp.ByQuery))
	b.act("#save-unit", chromedp.SendKeys("#f-id", newUnit, chromedp.ByQuery), chromedp.SendKeys("#f-name", "嵊泗县浏览器测试单位", chromedp.ByQuery),
		chromedp.SetValue("#f-kind", "qt", chromedp.ByQuery), chromedp.SendKeys("#f-division", "330922", chromedp.ByQuery),
		chromedp.SendKeys("#f-parent", "330922-nowhere", chromedp.ByQuery))
	if !strings.Contains(b.text(".error-summary"), "上级单位") || b.value("#f-parent") != "330922-nowhere" || b.value("#f-id") != newUnit {
		t.Errorf("unknown parent: summary %q", b.text(".error-summary"))
	}
	b.axe(axeJS, "/console/admin/units (form error)")
	b.shot("admin-units-new-error")
	b.run(chromedp.Evaluate(`document.getElementById("f-parent").value = ""`, nil))
	b.act("#save-unit")
	if !strings.Contains(b.text("#flash"), "单位已新建") || !strings.Contains(b.text("#unit-title"), newUnit) {
		t.Fatalf("create unit: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/units (unit created)")
	b.shot("admin-units-created")

	// Holiday calendars: the upload without a file, then a year's file.
	b.run(chromedp.Navigate(baseURL+"/console/admin/calendar"), chromedp.WaitVisible("#upload-calendar", chromedp.ByQuery))
	b.axe(axeJS, "/console/admin/calendar")
	b.act("#upload-calendar")
	if !strings.Contains(b.text(".error-summary"), "文件") {
		t.Errorf("no file: %q", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/calendar (error)")
	yearFile := filepath.Join(t.TempDir(), "2024.json")
	if err := os.WriteFile(yearFile, []byte(`{"year":2024,"days":[{"name":"元旦","date":"2024-01-01","isOffDay":true}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b.act("#upload-calendar", chromedp.SetUploadFiles("#f-file", []string{yearFile}, chromedp.ByQuery))
	if !strings.Contains(b.text("#flash"), "2024年") || !strings.Contains(b.text("#years"), "2024") {
		t.Fatalf("upload: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/calendar (uploaded)")
	b.shot("admin-calendar")

	// Registry import: a file with one good and one bad row.
	b.run(chromedp.Navigate(baseURL+"/console/admin/import"), chromedp.WaitVisible("#upload-import", chromedp.ByQuery))
	b.axe(axeJS, "/console/admin/import")
	orgFile := filepath.Join(t.TempDir(), "orgs.csv")
	csv := "credit_code,name,status,registration_authority\n" + newImportCode("330782") + ",义乌市浏览器导入协会,正常,\n" + newImportCode("330782") + ",,正常,\n"
	if err := os.WriteFile(orgFile, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	b.act("#upload-import", chromedp.SetUploadFiles("#f-file", []string{orgFile}, chromedp.ByQuery))
	if !strings.Contains(b.text("#import-result"), "新增 1 条") || b.count("#rejected tbody tr") != 1 {
		t.Fatalf("import: %s", b.text("main"))
	}
	b.axe(axeJS, "/console/admin/import (rows rejected)")
	b.shot("admin-import")
}
