package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

// TestResealTasks: a case handed to a unit in another jurisdiction gets a re-seal task;
// a custodian who can open the identity re-seals it to both jurisdictions' custodians,
// after which the receiving jurisdiction's custodian opens it. Adding a custodian
// creates tasks for the jurisdiction's open cases.
func TestResealTasks(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	yiwu, yiwuUser := staffLogin(t, accounts.RoleCustodian, "", "330782")
	hangzhou, hzUser := staffLogin(t, accounts.RoleCustodian, "", "330100")
	yiwuKey, yiwuRcp := newKey(t)
	hzKey, hzRcp := newKey(t)
	for _, r := range []struct{ user, rcp string }{{yiwuUser.ID, yiwuRcp}, {hzUser.ID, hzRcp}} {
		wantStatus(t, postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": r.user, "recipient": r.rcp}), 201)
	}
	f := fileReport(t, realNameReport())
	c, err := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qfcrypto.Open(hzKey, c.Identity.Ciphertext); err == nil {
		t.Fatal("Hangzhou's custodian opens a Yiwu identity before any transfer")
	}
	wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/transfer", staff, map[string]any{"to_unit": "330100-mz", "reason": "属杭州市民政局管辖"}), 200)

	r := do(t, req{method: "GET", path: "/v1/reseal-tasks", token: yiwu})
	wantStatus(t, r, 200)
	var list struct {
		Tasks []struct {
			ID       string   `json:"id"`
			Case     string   `json:"case"`
			Reason   string   `json:"reason"`
			ResealTo []string `json:"reseal_to"`
		} `json:"tasks"`
	}
	r.json(t, &list)
	task := ""
	for _, x := range list.Tasks {
		if x.Case == f.CaseNumber && x.Reason == "transfer" {
			task = x.ID
			if !strings.Contains(strings.Join(x.ResealTo, " "), hzRcp) || !strings.Contains(strings.Join(x.ResealTo, " "), yiwuRcp) {
				t.Errorf("reseal_to %v", x.ResealTo)
			}
		}
	}
	if task == "" {
		t.Fatalf("no transfer task: %s", r.Body)
	}
	// Hangzhou's custodian cannot do it (they cannot open it; not their case's jurisdiction).
	wantStatus(t, do(t, req{method: "GET", path: "/v1/reseal-tasks/" + task + "/sealed-identity", token: hangzhou}), 404)
	r = do(t, req{method: "GET", path: "/v1/reseal-tasks/" + task + "/sealed-identity", token: yiwu})
	wantStatus(t, r, 200)
	var got struct {
		Ciphertext string   `json:"ciphertext"`
		ResealTo   []string `json:"reseal_to"`
	}
	r.json(t, &got)
	ct, _ := base64.StdEncoding.DecodeString(got.Ciphertext)
	plain, err := qfcrypto.Open(yiwuKey, ct)
	if err != nil {
		t.Fatal(err)
	}
	put := func(ct []byte, status int) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"ciphertext": base64.StdEncoding.EncodeToString(ct)})
		wantStatus(t, do(t, req{method: "PUT", path: "/v1/reseal-tasks/" + task + "/resealed", body: strings.NewReader(string(b)), contentType: "application/json", token: yiwu}), status)
	}
	short, _ := qfcrypto.NewSealer(map[string][]string{"*": {hzRcp}}) // missing recipients
	s1, _ := short.Seal(context.Background(), "330782", plain)
	put(s1.Ciphertext, 400)
	all, err := qfcrypto.NewSealer(map[string][]string{"*": got.ResealTo})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := all.Seal(context.Background(), "330782", plain)
	clear(plain)
	put(s2.Ciphertext, 200)
	put(s2.Ciphertext, 409)
	c, _ = srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber)
	if p, err := qfcrypto.Open(hzKey, c.Identity.Ciphertext); err != nil || !strings.Contains(string(p), "赵六") {
		t.Fatalf("Hangzhou's custodian cannot open the re-sealed identity: %v", err)
	}

	// A second Yiwu custodian: the jurisdiction's open cases get tasks.
	second, secondUser := staffLogin(t, accounts.RoleCustodian, "", "330782")
	_, secondRcp := newKey(t)
	g := fileReport(t, realNameReport())
	wantStatus(t, postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": secondUser.ID, "recipient": secondRcp}), 201)
	r = do(t, req{method: "GET", path: "/v1/reseal-tasks", token: second})
	wantStatus(t, r, 200)
	if !containsString(r.Body, g.CaseNumber) || !containsString(r.Body, "custodians_changed") {
		t.Errorf("no task after adding a custodian: %s", r.Body)
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/reseal-tasks", token: staff}), 403)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/reseal-tasks/nope/sealed-identity", token: yiwu}), 404)
	wantStatus(t, do(t, req{method: "PUT", path: "/v1/reseal-tasks/" + task + "/resealed", body: strings.NewReader(`{"ciphertext":"@@@"}`), contentType: "application/json", token: yiwu}), 400)
}

// TestStaleResealUploadRefused is the sequence over HTTP: two custodians added
// one after the other; the older task's upload, made after the newer custodian was
// registered, is refused (409) instead of cutting the recipients from 3 to 2, and the
// newer custodian can open the identity once the current task is done.
func TestStaleResealUploadRefused(t *testing.T) {
	ctx := context.Background()
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	a, au := staffLogin(t, accounts.RoleCustodian, "", "330381")
	_, bu := staffLogin(t, accounts.RoleCustodian, "", "330381")
	_, cu := staffLogin(t, accounts.RoleCustodian, "", "330381")
	aKey, aRcp := newKey(t)
	_, bRcp := newKey(t)
	cKey, cRcp := newKey(t)
	register := func(user, rcp string) {
		t.Helper()
		wantStatus(t, postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": user, "recipient": rcp}), 201)
	}
	register(au.ID, aRcp)
	body := pingyangReport("王十三")
	body["location"] = map[string]any{"division": "330381", "address": "瑞安市安阳街道"}
	f := fileReport(t, body)
	type task struct {
		ID       string   `json:"id"`
		Case     string   `json:"case"`
		Status   string   `json:"status"`
		ResealTo []string `json:"reseal_to"`
	}
	pending := func() task {
		t.Helper()
		r := do(t, req{method: "GET", path: "/v1/reseal-tasks", token: a})
		wantStatus(t, r, 200)
		var l struct{ Tasks []task }
		r.json(t, &l)
		var out []task
		for _, x := range l.Tasks {
			if x.Case == f.CaseNumber {
				out = append(out, x)
			}
		}
		if len(out) != 1 {
			t.Fatalf("%d pending tasks for the case, want 1: %s", len(out), r.Body)
		}
		return out[0]
	}
	download := func(id string) (plain []byte, to []string) {
		t.Helper()
		r := do(t, req{method: "GET", path: "/v1/reseal-tasks/" + id + "/sealed-identity", token: a})
		wantStatus(t, r, 200)
		var got struct {
			Ciphertext string   `json:"ciphertext"`
			ResealTo   []string `json:"reseal_to"`
		}
		r.json(t, &got)
		ct, _ := base64.StdEncoding.DecodeString(got.Ciphertext)
		p, err := qfcrypto.Open(aKey, ct)
		if err != nil {
			t.Fatal(err)
		}
		return p, got.ResealTo
	}
	upload := func(id string, plain []byte, to []string) response {
		s, _ := qfcrypto.NewSealer(map[string][]string{"*": to})
		out, _ := s.Seal(ctx, "", plain)
		b, _ := json.Marshal(map[string]any{"ciphertext": base64.StdEncoding.EncodeToString(out.Ciphertext)})
		return do(t, req{method: "PUT", path: "/v1/reseal-tasks/" + id + "/resealed", body: strings.NewReader(string(b)), contentType: "application/json", token: a})
	}

	register(bu.ID, bRcp)
	t1 := pending()
	p1, to1 := download(t1.ID) // sealed to A; the task asks for A and B
	register(cu.ID, cRcp)
	t2 := pending()
	if t2.ID == t1.ID || len(t2.ResealTo) != 3 {
		t.Fatalf("after the third custodian: task %s with %d recipients", t2.ID, len(t2.ResealTo))
	}
	// The older task, uploaded late: refused, and the identity is untouched.
	r := upload(t1.ID, p1, to1)
	wantStatus(t, r, 409)
	if !containsString(r.Body, "任务已过期") {
		t.Errorf("stale upload: %s", r.Body)
	}
	c, _ := srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber)
	if len(c.Identity.Recipients) != 1 {
		t.Errorf("a refused upload changed the identity: %d recipients", len(c.Identity.Recipients))
	}
	// The newer task, then the older one again: still refused.
	p2, to2 := download(t2.ID)
	wantStatus(t, upload(t2.ID, p2, to2), 200)
	wantStatus(t, upload(t1.ID, p1, to1), 409)
	clear(p1)
	clear(p2)
	c, _ = srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber)
	if len(c.Identity.Recipients) != 3 {
		t.Errorf("%d recipients after the current task, want 3", len(c.Identity.Recipients))
	}
	if p, err := qfcrypto.Open(cKey, c.Identity.Ciphertext); err != nil || !strings.Contains(string(p), "王十三") {
		t.Errorf("the third custodian cannot open the identity: %v", err)
	}
}
