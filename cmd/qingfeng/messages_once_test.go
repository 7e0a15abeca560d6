package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

// TestMessagesOnce: a message sent again under its idempotency key — a reporter on a
// bad connection resending, a double tap on a form, 32 at once — is stored once: the
// reporter never reads one message twice, staff never count one reporter message as
// two. The API's Idempotency-Key and the pages' form key go through the same
// intake.PostNote; the same key with another message is refused and changes nothing;
// keys are the sender's own (another staff member's same key is another message).
func TestMessagesOnce(t *testing.T) {
	ctx := context.Background()
	f := fileReport(t, anonymousReport())
	cs, err := srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	count := func() (all, reporter int, activity int64) {
		t.Helper()
		msgs, err := srv.Intake.Cases.Messages(ctx, cs.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.From == "reporter" {
				reporter++
			}
		}
		c, err := srv.Intake.Cases.CaseByID(ctx, cs.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs), reporter, c.ReporterActivityN
	}
	send := func(path, token, key, body string) response {
		t.Helper()
		b, _ := json.Marshal(map[string]string{"body": body})
		h := map[string]string{}
		if key != "" {
			h["Idempotency-Key"] = key
		}
		return do(t, req{method: "POST", path: path, body: strings.NewReader(string(b)), contentType: "application/json", token: token, header: h})
	}

	// The reporter: 32 resends at once under one key.
	all0, rep0, act0 := count()
	statuses := make([]int, 32)
	ids := make([]string, 32)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 32 {
		wg.Go(func() {
			<-start
			r := send("/v1/followup/messages", f.FollowUpToken, "resend-1", "我补充一下：收费发生在十月。")
			statuses[i] = r.Status
			var m struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(r.Body, &m)
			ids[i] = m.ID
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for i, st := range statuses {
		switch {
		case st == 201:
			created++
		case st != 200:
			t.Errorf("resend %d: %d", i, st)
		}
		if ids[i] != ids[0] || ids[i] == "" {
			t.Errorf("resend %d answered message %q, the first %q", i, ids[i], ids[0])
		}
	}
	all1, rep1, act1 := count()
	if created != 1 || all1 != all0+1 || rep1 != rep0+1 || act1 != act0+1 {
		t.Fatalf("32 resends: %d created; messages %d → %d, reporter's %d → %d, activity %d → %d", created, all0, all1, rep0, rep1, act0, act1)
	}
	r := send("/v1/followup/messages", f.FollowUpToken, "resend-1", "我补充一下：收费发生在十月。")
	if r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a later resend: %d, replayed %q", r.Status, r.Header.Get("Idempotent-Replayed"))
	}
	// The key with another message; a key too long; no key (two messages).
	if r := send("/v1/followup/messages", f.FollowUpToken, "resend-1", "另一条留言"); r.Status != 409 {
		t.Errorf("the key with another message: %d", r.Status)
	}
	if r := send("/v1/followup/messages", f.FollowUpToken, strings.Repeat("k", 201), "留言"); r.Status != 400 {
		t.Errorf("a key of 201 characters: %d", r.Status)
	}
	if all, _, _ := count(); all != all1 {
		t.Fatalf("refused messages were stored: %d → %d", all1, all)
	}
	send("/v1/followup/messages", f.FollowUpToken, "", "没有幂等键的留言")
	send("/v1/followup/messages", f.FollowUpToken, "", "没有幂等键的留言")
	if all, _, _ := count(); all != all1+2 {
		t.Errorf("two messages without a key: %d → %d", all1, all)
	}

	// Staff, through the API: once per key and person.
	tokA, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	tokB, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	path := "/v1/cases/" + f.CaseNumber + "/messages"
	all2, _, _ := count()
	if r := send(path, tokA, "reply-1", "已收到，正在核实。"); r.Status != 201 {
		t.Fatalf("staff message: %d %s", r.Status, r.Body)
	}
	if r := send(path, tokA, "reply-1", "已收到，正在核实。"); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("staff retry: %d", r.Status)
	}
	if r := send(path, tokB, "reply-1", "已收到，正在核实。"); r.Status != 201 {
		t.Errorf("another staff member's same key: %d", r.Status)
	}
	if all, _, _ := count(); all != all2+2 {
		t.Errorf("staff messages: %d → %d, want 2 more", all2, all)
	}

	// The console's message form, tapped twice (the same rendered form).
	u, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	cc := consoleSignIn(t, u, "")
	p := getPage(t, cc, "/console/cases/"+f.CaseNumber)
	form := regexpFind(t, `(?s)<section class="action" id="act-message".*?(<form.*?</form>)`, p.body)
	csrf, key := csrfInput.FindStringSubmatch(form), regexpFind(t, `name="_key" value="([^"]+)"`, form)
	if csrf == nil || key == "" {
		t.Fatalf("the message form carries no token or key: %s", form)
	}
	all3, _, _ := count()
	v := url.Values{"_csrf": {csrf[1]}, "_key": {key}, "op": {"message"}, "kind": {"message"}, "body": {"请补充收费凭证的照片。"}}
	for range 2 {
		if p := postPageForm(t, cc, "/console/cases/"+f.CaseNumber, v); p.status != 200 || !strings.Contains(p.url, "done=message") {
			t.Errorf("the console's message form: %d at %s", p.status, p.url)
		}
	}
	if all, _, _ := count(); all != all3+1 {
		t.Errorf("a double tap of the console's form: %d → %d messages", all3, all)
	}
	// The next rendering carries another key: the next message is another message.
	if next := regexpFind(t, `(?s)<section class="action" id="act-message".*?name="_key" value="([^"]+)"`, getPage(t, cc, "/console/cases/"+f.CaseNumber).body); next == key {
		t.Error("the form's key is the same on the next page")
	}

	// The reporter's follow-up page, its reply form sent twice.
	wc := webClient(t)
	login := getPage(t, wc, "/followup")
	lc, _ := formTokens(t, login.body)
	page := postPageForm(t, wc, "/followup", url.Values{"_csrf": {lc}, "receipt_code": {f.ReceiptCode}})
	reply := regexpFind(t, `(?s)(<form method="post" action="/followup/messages".*?</form>)`, page.body)
	rc, rk := csrfInput.FindStringSubmatch(reply), regexpFind(t, `name="_key" value="([^"]+)"`, reply)
	if rc == nil || rk == "" {
		t.Fatalf("the reply form carries no token or key: %s", reply)
	}
	all4, _, _ := count()
	for range 2 {
		if p := postPageForm(t, wc, "/followup/messages", url.Values{"_csrf": {rc[1]}, "_key": {rk}, "body": {"照片明天补上。"}}); p.status != 200 {
			t.Errorf("the reply form: %d", p.status)
		}
	}
	if all, _, _ := count(); all != all4+1 {
		t.Errorf("a double tap of the reply form: %d → %d messages", all4, all)
	}
}
