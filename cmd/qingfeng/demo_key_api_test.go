package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

// pingyangReport is a real-name report about a person in 平阳县 (330326), a division
// no other test registers custodians for.
func pingyangReport(name string) map[string]any {
	return map[string]any{
		"category":    "official_discipline",
		"subject":     map[string]any{"kind": "person", "person": map[string]any{"name": "某干部", "position": "某局科员"}},
		"description": "该干部多次接受管理服务对象宴请，并收受购物卡。",
		"location":    map[string]any{"division": "330326", "address": "平阳县昆阳镇"},
		"occurred_on": "2026-10",
		"identity":    map[string]any{"name": name, "mobile": "13800138001"},
	}
}

type caseIdentity struct {
	Identity struct {
		Recipients int `json:"recipients"`
	} `json:"identity"`
}

// TestDemoKeyRetired: on the embedded default, the generated demo custodian key seals
// a jurisdiction's identities only until its first real custodian is registered; then
// GET /v1/keys no longer lists it there, admins no longer see the jurisdiction as
// depending on it, the open cases sealed to it get re-seal tasks that whoever holds
// the demo key file does, after which the demo key no longer opens them, and every
// count of recipients is honest.
func TestDemoKeyRetired(t *testing.T) {
	ctx := context.Background()
	demoID, demoRcp := demoCustodianKey(t)
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	keys := func() string {
		r := do(t, req{method: "GET", path: "/v1/keys?division=330326"})
		wantStatus(t, r, 200)
		return string(r.Body)
	}
	dependsOnDemo := func(code string) bool {
		r := do(t, req{method: "GET", path: "/v1/admin/recipients", token: admin})
		wantStatus(t, r, 200)
		var v struct {
			Demo *struct {
				Warning   string `json:"warning"`
				Recipient string `json:"recipient"`
				Divisions []struct {
					Code string `json:"code"`
				} `json:"divisions"`
			} `json:"demo_key"`
		}
		r.json(t, &v)
		if v.Demo == nil || v.Demo.Recipient != demoRcp || !strings.Contains(v.Demo.Warning, "演示保密员密钥") {
			t.Fatalf("no loud demo key section: %s", r.Body)
		}
		for _, d := range v.Demo.Divisions {
			if d.Code == code {
				return true
			}
		}
		return false
	}
	if !strings.Contains(keys(), demoRcp) || !dependsOnDemo("330326") {
		t.Fatal("before any custodian, 330326 is not sealed to the demo key")
	}
	if !strings.Contains(logBuf.String(), "DEMO custodian key in use") {
		t.Error("no warning at start about the demo key")
	}

	// A case filed while 330326 depends on the demo key.
	f := fileReport(t, pingyangReport("周九"))
	before, err := srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := qfcrypto.Open(demoID, before.Identity.Ciphertext); err != nil || !strings.Contains(string(p), "周九") {
		t.Fatalf("the demo key does not open the demo-sealed identity: %v", err)
	}

	// The first real custodian of 330326 retires the demo key there.
	custodian, cu := staffLogin(t, accounts.RoleCustodian, "", "330326")
	realID, realRcp := newKey(t)
	wantStatus(t, postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": cu.ID, "recipient": realRcp}), 201)
	if k := keys(); strings.Contains(k, demoRcp) || !strings.Contains(k, realRcp) {
		t.Fatalf("after a real custodian, GET /v1/keys?division=330326 = %s", k)
	}
	if dependsOnDemo("330326") {
		t.Error("admins still see 330326 as depending on the demo key")
	}
	if !dependsOnDemo("330327") {
		t.Error("a neighbouring county with no custodian no longer depends on the demo key")
	}
	// The demo key cannot be registered as anyone's.
	r := postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": cu.ID, "recipient": demoRcp})
	wantStatus(t, r, 409)

	// New identities there are sealed to the real custodian alone.
	g := fileReport(t, pingyangReport("吴十"))
	after, _ := srv.Intake.Cases.CaseByNumber(ctx, g.CaseNumber)
	if _, err := qfcrypto.Open(demoID, after.Identity.Ciphertext); err == nil {
		t.Error("a new identity opens with the retired demo key")
	}
	if _, err := qfcrypto.Open(realID, after.Identity.Ciphertext); err != nil {
		t.Errorf("the real custodian cannot open a new identity: %v", err)
	}

	// The old case has a re-seal task to the real custodian only; the custodian does it
	// with the demo key file (qfctl reseal do TASK --key data/demo-custodian-key.txt).
	r = do(t, req{method: "GET", path: "/v1/reseal-tasks", token: custodian})
	wantStatus(t, r, 200)
	var list struct {
		Tasks []struct {
			ID       string   `json:"id"`
			Case     string   `json:"case"`
			ResealTo []string `json:"reseal_to"`
		} `json:"tasks"`
	}
	r.json(t, &list)
	task := ""
	for _, x := range list.Tasks {
		if x.Case == f.CaseNumber {
			task = x.ID
			if len(x.ResealTo) != 1 || x.ResealTo[0] != realRcp {
				t.Fatalf("the task re-seals to %d recipients (demo included: %v)", len(x.ResealTo), strings.Contains(strings.Join(x.ResealTo, ","), demoRcp))
			}
		}
		if x.Case == g.CaseNumber {
			t.Error("a task for a case already sealed to the real custodian")
		}
	}
	if task == "" {
		t.Fatalf("no re-seal task for the demo-sealed case: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/reseal-tasks/" + task + "/sealed-identity", token: custodian})
	wantStatus(t, r, 200)
	var got struct {
		Ciphertext string   `json:"ciphertext"`
		ResealTo   []string `json:"reseal_to"`
	}
	r.json(t, &got)
	ct, _ := base64.StdEncoding.DecodeString(got.Ciphertext)
	if _, err := qfcrypto.Open(realID, ct); err == nil {
		t.Fatal("the real custodian opens a demo-sealed identity before the re-seal")
	}
	plain, err := qfcrypto.Open(demoID, ct)
	if err != nil {
		t.Fatal(err)
	}
	to, _ := qfcrypto.NewSealer(map[string][]string{"*": got.ResealTo})
	resealed, _ := to.Seal(ctx, "", plain)
	clear(plain)
	b, _ := json.Marshal(map[string]string{"ciphertext": base64.StdEncoding.EncodeToString(resealed.Ciphertext)})
	wantStatus(t, do(t, req{method: "PUT", path: "/v1/reseal-tasks/" + task + "/resealed", body: strings.NewReader(string(b)), contentType: "application/json", token: custodian}), 200)

	done, _ := srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber)
	if _, err := qfcrypto.Open(demoID, done.Identity.Ciphertext); err == nil {
		t.Error("the retired demo key still opens the re-sealed identity")
	}
	if p, err := qfcrypto.Open(realID, done.Identity.Ciphertext); err != nil || !strings.Contains(string(p), "周九") {
		t.Errorf("the real custodian cannot open the re-sealed identity: %v", err)
	}
	staff, _ := staffLogin(t, accounts.RoleStaff, done.UnitID, "")
	recipients := func(number string) int {
		r := do(t, req{method: "GET", path: "/v1/cases/" + number, token: staff})
		wantStatus(t, r, 200)
		var v caseIdentity
		r.json(t, &v)
		return v.Identity.Recipients
	}
	if n := recipients(f.CaseNumber); n != 1 {
		t.Errorf("identity.recipients = %d after the re-seal, want 1 (the real custodian)", n)
	}

	// A second custodian: two recipients, and a task to add them to the open cases.
	_, cu2 := staffLogin(t, accounts.RoleCustodian, "", "330326")
	_, rcp2 := newKey(t)
	wantStatus(t, postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": cu2.ID, "recipient": rcp2}), 201)
	if k := keys(); strings.Contains(k, demoRcp) || !strings.Contains(k, rcp2) || !strings.Contains(k, realRcp) {
		t.Errorf("keys with two custodians: %s", k)
	}
	h := fileReport(t, pingyangReport("郑十一"))
	if n := recipients(h.CaseNumber); n != 2 {
		t.Errorf("identity.recipients = %d with two custodians, want 2", n)
	}
}

// TestOneKeyOneHolder: an age recipient is registered once, for one holder — not again
// for another user or role, not in another spelling, not after revocation, and of 32
// concurrent registrations of the same key exactly one succeeds.
func TestOneKeyOneHolder(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	_, c1 := staffLogin(t, accounts.RoleCustodian, "", "330328")
	_, c2 := staffLogin(t, accounts.RoleCustodian, "", "330328")
	_, st := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	_, rcp := newKey(t)
	register := func(user, rcp string) response {
		return postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": user, "recipient": rcp})
	}
	r := register(c1.ID, rcp)
	wantStatus(t, r, 201)
	var first struct {
		ID string `json:"id"`
	}
	r.json(t, &first)
	for name, tc := range map[string]struct{ user, rcp string }{
		"the same holder again":     {c1.ID, rcp},
		"another custodian":         {c2.ID, rcp},
		"a staff member (role)":     {st.ID, rcp},
		"upper case":                {c2.ID, strings.ToUpper(rcp)},
		"surrounding white space":   {c2.ID, "  " + rcp + "\n"},
		"upper case and whitespace": {st.ID, "\t" + strings.ToUpper(rcp)},
	} {
		t.Run(name, func(t *testing.T) {
			r := register(tc.user, tc.rcp)
			wantStatus(t, r, 409)
			if code := r.errorCode(t); code != "conflict" {
				t.Errorf("code %q", code)
			}
		})
	}
	// Variants that are not the same key are refused as invalid, not registered.
	for _, bad := range []string{rcp + "\u200b", "ａ" + rcp[1:], rcp[:10] + strings.ToUpper(rcp[10:20]) + rcp[20:]} {
		wantStatus(t, register(c2.ID, bad), 400)
	}
	// The custodian counts once: 330328 is still at risk with one custodian.
	r = do(t, req{method: "GET", path: "/v1/admin/recipients", token: admin})
	if !containsString(r.Body, `"jurisdiction":"330328","custodians":1`) {
		t.Errorf("330328 not shown with one custodian: %s", r.Body)
	}
	// A revoked key does not come back. (A second key first: the last one is kept.)
	_, other := newKey(t)
	wantStatus(t, register(c2.ID, other), 201)
	wantStatus(t, postJSON(t, "/v1/admin/recipients/"+first.ID+"/revoke", admin, ""), 200)
	wantStatus(t, register(c2.ID, rcp), 409)
	wantStatus(t, register(c1.ID, rcp), 409)

	// 32 at once, the same new key, different holders: exactly one wins.
	_, fresh := newKey(t)
	users := make([]string, 32)
	for i := range users {
		_, u := staffLogin(t, accounts.RoleCustodian, "", "330329")
		users[i] = u.ID
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			r := register(u, fresh)
			mu.Lock()
			codes[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[201] != 1 || codes[409] != 31 {
		t.Errorf("32 concurrent registrations of one key: %v", codes)
	}
}

// TestRefuseDemoKeyOnMongoDB: with MONGODB_URI set, a demo custodian key in the data
// directory stops the server, naming the file and the variable.
func TestRefuseDemoKeyOnMongoDB(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dataDir, "demo-custodian-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo-custodian-key.txt"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, rcp := newKey(t)
	cfg := testConfig(t, dir, map[string]string{"MONGODB_URI": testMongoURI(t), "MONGODB_DATABASE": "qf_demo_refused", "QF_CUSTODIAN_RECIPIENTS": "*=" + rcp})
	m := &Main{Config: cfg, Log: srv.Log}
	err = m.Open(context.Background())
	_ = m.Close()
	if err == nil || !strings.Contains(err.Error(), "MONGODB_URI") || !strings.Contains(err.Error(), "demo-custodian-key.txt") {
		t.Fatalf("started on MongoDB beside a demo key: %v", err)
	}
	if m.st != nil {
		t.Error("the database was opened before refusing")
	}
}

// TestRefuseFerretDBDataDir: a data directory an earlier release wrote with FerretDB,
// and no SQLite database yet, is not started afresh beside the old data (which would
// hide every earlier case): the server refuses, naming the migrate command, and
// creates nothing.
func TestRefuseFerretDBDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "ferretdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ferretdb", "qingfeng.sqlite"), []byte("SQLite format 3\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: testConfig(t, dir, nil), Log: srv.Log, Stderr: io.Discard}
	err := m.Open(context.Background())
	_ = m.Close()
	if err == nil || !strings.Contains(err.Error(), "qingfeng migrate --from "+dir+" --to "+dir) {
		t.Fatalf("started beside FerretDB data: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); !os.IsNotExist(err) {
		t.Errorf("a new database was created beside the old data: %v", err)
	}
}
