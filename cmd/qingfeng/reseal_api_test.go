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
