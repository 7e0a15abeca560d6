package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

type disclosureResp struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func newKey(t *testing.T) (identity, recipient string) {
	t.Helper()
	id, rcp, err := qfcrypto.GenerateCustodianKey()
	if err != nil {
		t.Fatal(err)
	}
	return id, rcp
}

// TestDisclosureFlow: staff ask, a custodian approves, opens the sealed identity with
// their own key, re-seals it to the requester's recipient; the requester opens it with
// theirs. The server only ever holds ciphertext.
func TestDisclosureFlow(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, staffUser := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	custodian, custodianUser := staffLogin(t, accounts.RoleCustodian, "", "330782")
	otherCustodian, _ := staffLogin(t, accounts.RoleCustodian, "", "330100") // 杭州: another jurisdiction
	custID, custRcp := newKey(t)
	staffID, staffRcp := newKey(t)

	register := func(userID, rcp string, status int) string {
		t.Helper()
		r := postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": userID, "recipient": rcp})
		wantStatus(t, r, status)
		var v struct {
			ID string `json:"id"`
		}
		r.json(t, &v)
		return v.ID
	}
	custRecipientID := register(custodianUser.ID, custRcp, 201)
	// The phone sees the custodian's key for Yiwu.
	r := do(t, req{method: "GET", path: "/v1/keys?division=330782001"})
	wantStatus(t, r, 200)
	if !containsString(r.Body, custRcp) {
		t.Fatalf("keys for 330782001 lack the registered custodian: %s", r.Body)
	}
	// One custodian for 330782 is a risk.
	r = do(t, req{method: "GET", path: "/v1/admin/recipients", token: admin})
	wantStatus(t, r, 200)
	if !containsString(r.Body, `"jurisdiction":"330782","custodians":1`) {
		t.Errorf("risk not shown: %s", r.Body)
	}

	body := realNameReport()
	body["identity"] = map[string]any{"name": "钱七", "mobile": "13700137000"}
	f := fileReport(t, body)
	path := "/v1/cases/" + f.CaseNumber + "/disclosures"

	// Without a registered recipient of their own, staff cannot ask.
	wantStatus(t, postJSON(t, path, staff, map[string]any{"reason": "核实需要"}), 409)
	register(staffUser.ID, staffRcp, 201)
	r = postJSON(t, path, staff, map[string]any{"reason": "需与举报人核实线索"})
	wantStatus(t, r, 201)
	var d disclosureResp
	r.json(t, &d)
	wantStatus(t, postJSON(t, path, staff, map[string]any{"reason": "again"}), 409) // one open request at a time

	// Not the requester, not another jurisdiction's custodian.
	wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/approve", staff, map[string]any{"reason": "x"}), 403)
	wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/approve", otherCustodian, map[string]any{"reason": "x"}), 404)
	// The custodian sees it, cannot download before approving, approves.
	r = do(t, req{method: "GET", path: "/v1/disclosures", token: custodian})
	wantStatus(t, r, 200)
	if !containsString(r.Body, d.ID) {
		t.Fatalf("custodian's list: %s", r.Body)
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/sealed-identity", token: custodian}), 409)
	wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/approve", custodian, map[string]any{"reason": "理由充分"}), 200)
	wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/deny", custodian, map[string]any{"reason": "x"}), 409)

	r = do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/sealed-identity", token: custodian})
	wantStatus(t, r, 200)
	var sealed struct {
		Ciphertext string `json:"ciphertext"`
		ResealTo   string `json:"reseal_to"`
	}
	r.json(t, &sealed)
	if sealed.ResealTo != staffRcp {
		t.Fatalf("reseal to %q, want the requester's recipient", sealed.ResealTo)
	}
	ct, _ := base64.StdEncoding.DecodeString(sealed.Ciphertext)
	plain, err := qfcrypto.Open(custID, ct) // on the custodian's own machine
	if err != nil {
		t.Fatalf("the custodian cannot open the identity: %v", err)
	}
	if !strings.Contains(string(plain), "钱七") {
		t.Fatalf("opened identity %s", plain)
	}
	// Wrong uploads are refused: garbage, and a file sealed to two recipients.
	put := func(ct []byte, status int) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"ciphertext": base64.StdEncoding.EncodeToString(ct)})
		wantStatus(t, do(t, req{method: "PUT", path: "/v1/disclosures/" + d.ID + "/resealed", body: strings.NewReader(string(b)), contentType: "application/json", token: custodian}), status)
	}
	put([]byte("not an age file"), 400)
	two, _ := qfcrypto.NewSealer(map[string][]string{"*": {staffRcp, custRcp}})
	twice, err := two.Seal(context.Background(), "330782", plain)
	if err != nil {
		t.Fatal(err)
	}
	put(twice.Ciphertext, 400)
	one, _ := qfcrypto.NewSealer(map[string][]string{"*": {sealed.ResealTo}})
	resealed, err := one.Seal(context.Background(), "330782", plain)
	if err != nil {
		t.Fatal(err)
	}
	clear(plain)
	put(resealed.Ciphertext, 200)
	put(resealed.Ciphertext, 409) // done already

	// The requester fetches and opens it with their own key; nobody else can fetch.
	wantStatus(t, do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/identity", token: custodian}), 403)
	other, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	wantStatus(t, do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/identity", token: other}), 404)
	r = do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/identity", token: staff})
	wantStatus(t, r, 200)
	var got struct {
		Ciphertext string `json:"ciphertext"`
	}
	r.json(t, &got)
	gct, _ := base64.StdEncoding.DecodeString(got.Ciphertext)
	if mine, err := qfcrypto.Open(staffID, gct); err != nil || !strings.Contains(string(mine), "钱七") {
		t.Fatalf("the requester cannot open it: %v", err)
	}
	if _, err := qfcrypto.Open(custID, gct); err == nil {
		t.Error("the custodian's key opens what was re-sealed to the requester")
	}
	tampered := append([]byte(nil), gct...)
	tampered[len(tampered)-5] ^= 1
	if _, err := qfcrypto.Open(staffID, tampered); err == nil {
		t.Error("a tampered ciphertext opened")
	}
	// Staff see on the case that, and to whom, it was disclosed.
	r = do(t, req{method: "GET", path: path, token: staff})
	wantStatus(t, r, 200)
	if !containsString(r.Body, `"status":"completed"`) || !containsString(r.Body, staffUser.ID) {
		t.Errorf("case disclosures: %s", r.Body)
	}

	// Denial, and expiry.
	r = postJSON(t, path, staff, map[string]any{"reason": "再次核实"})
	wantStatus(t, r, 201)
	r.json(t, &d)
	wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/deny", custodian, map[string]any{"reason": "理由不足"}), 200)
	r = postJSON(t, path, staff, map[string]any{"reason": "第三次"})
	wantStatus(t, r, 201)
	r.json(t, &d)
	srv.disclosures.Now = func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/approve", custodian, map[string]any{"reason": "x"}), 409)
	srv.disclosures.Now = nil

	// The jurisdiction's last custodian key is not revoked: nobody could open its
	// identities. With a successor registered, revoking it works, and new identities
	// are no longer sealed to it.
	r = postJSON(t, "/v1/admin/recipients/"+custRecipientID+"/revoke", admin, "")
	wantStatus(t, r, 409)
	if !containsString(r.Body, "最后一把保密员密钥") {
		t.Errorf("revoking the last key: %s", r.Body)
	}
	_, successor := staffLogin(t, accounts.RoleCustodian, "", "330782")
	_, successorRcp := newKey(t)
	register(successor.ID, successorRcp, 201)
	wantStatus(t, postJSON(t, "/v1/admin/recipients/"+custRecipientID+"/revoke", admin, ""), 200)
	wantStatus(t, postJSON(t, "/v1/admin/recipients/"+custRecipientID+"/revoke", admin, ""), 409)
	r = do(t, req{method: "GET", path: "/v1/keys?division=330782"})
	if containsString(r.Body, custRcp) {
		t.Errorf("a revoked key is still served: %s", r.Body)
	}
}

func TestCustodyBadInput(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, staffUser := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	liaison, liaisonUser := staffLogin(t, accounts.RoleLiaison, "", "330782")
	id, rcp := newKey(t)
	tests := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"a private key instead of the public one", admin, map[string]any{"user_id": staffUser.ID, "recipient": id}, 400},
		{"a classic X25519 key", admin, map[string]any{"user_id": staffUser.ID, "recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}, 400},
		{"unknown user", admin, map[string]any{"user_id": "nobody", "recipient": rcp}, 400},
		{"a liaison", admin, map[string]any{"user_id": liaisonUser.ID, "recipient": rcp}, 400},
		{"wrong type", admin, map[string]any{"user_id": 1, "recipient": rcp}, 400},
		{"operator injection", admin, `{"user_id":{"$ne":""},"recipient":"x"}`, 400},
		{"unknown field", admin, `{"user_id":"a","recipient":"b","private_key":"c"}`, 400},
		{"staff", staff, map[string]any{"user_id": staffUser.ID, "recipient": rcp}, 403},
		{"no token", "", map[string]any{"user_id": staffUser.ID, "recipient": rcp}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, "/v1/admin/recipients", tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
			if containsString(r.Body, "AGE-SECRET-KEY") {
				t.Error("an error echoes a private key")
			}
		})
	}
	for _, q := range []string{"", "?division=110101", "?division=abc"} {
		wantStatus(t, do(t, req{method: "GET", path: "/v1/keys" + q}), 400)
	}
	// Anonymous cases have no identity to disclose.
	f := fileReport(t, anonymousReport())
	wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/disclosures", staff, map[string]any{"reason": "x"}), 409)
	wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/disclosures", staff, map[string]any{}), 400)
	wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/disclosures", liaison, map[string]any{"reason": "x"}), 403)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/disclosures", token: staff}), 403)
	wantStatus(t, postJSON(t, "/v1/disclosures/nope/approve", admin, map[string]any{"reason": "x"}), 403)
	custodian, _ := staffLogin(t, accounts.RoleCustodian, "", "330782")
	wantStatus(t, postJSON(t, "/v1/disclosures/nope/approve", custodian, map[string]any{"reason": "x"}), 404)
	wantStatus(t, postJSON(t, "/v1/disclosures/nope/approve", custodian, `{"reason":{"$gt":""}}`), 400)
	wantStatus(t, postJSON(t, "/v1/admin/recipients/nope/revoke", admin, ""), 404)
}

// TestRevokedStaffKeyCancelsDisclosure: the recipient a disclosure is re-sealed to is
// fixed when it is requested, so approval, download and upload each check it is still
// the requester's current key; a revoked one cancels the request (409), audited, and
// nothing is re-sealed to it.
func TestRevokedStaffKeyCancelsDisclosure(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	custodian, cu := staffLogin(t, accounts.RoleCustodian, "", "330782")
	custID, custRcp := newKey(t)
	register := func(userID, rcp string) string {
		t.Helper()
		r := postJSON(t, "/v1/admin/recipients", admin, map[string]any{"user_id": userID, "recipient": rcp})
		wantStatus(t, r, 201)
		var v struct {
			ID string `json:"id"`
		}
		r.json(t, &v)
		return v.ID
	}
	register(cu.ID, custRcp)
	f := fileReport(t, realNameReport())
	path := "/v1/cases/" + f.CaseNumber + "/disclosures"

	for _, stage := range []string{"approve", "download", "upload"} {
		t.Run(stage, func(t *testing.T) {
			staff, su := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
			_, staffRcp := newKey(t)
			keyID := register(su.ID, staffRcp)
			r := postJSON(t, path, staff, map[string]any{"reason": "需与举报人核实线索"})
			wantStatus(t, r, 201)
			var d disclosureResp
			r.json(t, &d)
			revoke := func() {
				wantStatus(t, postJSON(t, "/v1/admin/recipients/"+keyID+"/revoke", admin, ""), 200)
			}
			var refused response
			switch stage {
			case "approve":
				revoke()
				refused = postJSON(t, "/v1/disclosures/"+d.ID+"/approve", custodian, map[string]any{"reason": "理由充分"})
			case "download":
				wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/approve", custodian, map[string]any{"reason": "理由充分"}), 200)
				revoke()
				refused = do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/sealed-identity", token: custodian})
			case "upload":
				wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/approve", custodian, map[string]any{"reason": "理由充分"}), 200)
				r := do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/sealed-identity", token: custodian})
				wantStatus(t, r, 200)
				var sealed struct {
					Ciphertext string `json:"ciphertext"`
					ResealTo   string `json:"reseal_to"`
				}
				r.json(t, &sealed)
				ct, _ := base64.StdEncoding.DecodeString(sealed.Ciphertext)
				plain, err := qfcrypto.Open(custID, ct)
				if err != nil {
					t.Fatal(err)
				}
				one, _ := qfcrypto.NewSealer(map[string][]string{"*": {sealed.ResealTo}})
				out, _ := one.Seal(context.Background(), "", plain)
				clear(plain)
				revoke()
				b, _ := json.Marshal(map[string]any{"ciphertext": base64.StdEncoding.EncodeToString(out.Ciphertext)})
				refused = do(t, req{method: "PUT", path: "/v1/disclosures/" + d.ID + "/resealed", body: strings.NewReader(string(b)), contentType: "application/json", token: custodian})
			}
			wantStatus(t, refused, 409)
			if !containsString(refused.Body, "公钥已注销") {
				t.Errorf("refusal: %s", refused.Body)
			}
			// Cancelled, with the reason, and nothing to fetch.
			r = do(t, req{method: "GET", path: path, token: staff})
			wantStatus(t, r, 200)
			var list struct {
				Disclosures []struct {
					ID           string `json:"id"`
					Status       string `json:"status"`
					CancelReason string `json:"cancel_reason"`
				} `json:"disclosures"`
			}
			r.json(t, &list)
			found := false
			for _, x := range list.Disclosures {
				if x.ID == d.ID {
					found = true
					if x.Status != "cancelled" || x.CancelReason == "" {
						t.Errorf("after the refusal the request is %q (%q)", x.Status, x.CancelReason)
					}
				}
			}
			if !found {
				t.Fatal("request not listed")
			}
			wantStatus(t, do(t, req{method: "GET", path: "/v1/disclosures/" + d.ID + "/identity", token: staff}), 409)
			wantStatus(t, postJSON(t, "/v1/disclosures/"+d.ID+"/approve", custodian, map[string]any{"reason": "再试"}), 409)
			entries, err := srv.Audit.Store.List(context.Background(), audit.Query{Case: f.CaseNumber, Limit: audit.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			audited := false
			for _, e := range entries {
				if e.Action == "identity.disclosure.cancelled" && e.Detail["disclosure"] == d.ID {
					audited = true
				}
			}
			if !audited {
				t.Error("the cancellation is not in the audit log")
			}
		})
	}
}
