package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

func caseCount(t *testing.T) int64 {
	t.Helper()
	return caseCountOf(t, srv)
}

func s3Client(t *testing.T) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.s3.AccessKey, srv.s3.SecretKey, ""), Secure: srv.s3.UseSSL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// objectCount counts every object in the evidence bucket, through the S3 API.
func objectCount(t *testing.T) int {
	t.Helper()
	n := 0
	for o := range s3Client(t).ListObjects(context.Background(), srv.s3.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

func TestHealthReadyMetrics(t *testing.T) {
	wantStatus(t, do(t, req{method: "GET", path: "/healthz"}), 200)
	wantStatus(t, do(t, req{method: "GET", path: "/readyz"}), 200)
	r := do(t, req{method: "GET", path: "/metrics"})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.Body), "qingfeng_http_requests_total") {
		t.Errorf("metrics lack the request counter")
	}
	r = do(t, req{method: "GET", path: "/v1/categories"})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.Body), "非法社会组织") {
		t.Errorf("categories: %s", r.Body)
	}
}

func TestUnknownRoute(t *testing.T) {
	hr, _ := httpGet(baseURL + "/v1/nothing-here")
	if hr.Status != 404 || !strings.Contains(string(hr.Body), `"not_found"`) {
		t.Fatalf("%d %s", hr.Status, hr.Body)
	}
}

func httpGet(url string) (response, error) {
	resp, err := httpClient().Get(url)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b}, nil
}

func TestIdempotentFiling(t *testing.T) {
	body := anonymousReport()
	body["description"] = "重复提交测试：网络不稳定时手机会重发。"
	key := map[string]string{"Idempotency-Key": fmt.Sprintf("k-%d", caseCount(t))}
	send := func(b any) response {
		return do(t, req{method: "POST", path: "/v1/reports", body: bytes.NewReader(jsonBytes(t, b)), contentType: "application/json", header: key})
	}
	before := caseCount(t)
	first := send(body)
	wantStatus(t, first, 201)
	// Concurrent retries, as a flaky network produces.
	var wg sync.WaitGroup
	results := make([]response, 4)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = send(body) }()
	}
	wg.Wait()
	var f1 filed
	first.json(t, &f1)
	for _, r := range results {
		wantStatus(t, r, 200)
		var f filed
		r.json(t, &f)
		if f.CaseNumber != f1.CaseNumber || f.ReceiptCode != f1.ReceiptCode {
			t.Errorf("retry gave %s/%s, first %s/%s", f.CaseNumber, f.ReceiptCode, f1.CaseNumber, f1.ReceiptCode)
		}
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry not marked as replayed")
		}
	}
	if n := caseCount(t) - before; n != 1 {
		t.Errorf("%d cases created, want 1", n)
	}
	// The same key with another report is refused.
	body["description"] = "另一份举报"
	r := send(body)
	wantStatus(t, r, 409)
	if caseCount(t)-before != 1 {
		t.Errorf("a refused reuse created a case")
	}
}

func TestFollowUpBadInput(t *testing.T) {
	f := fileReport(t, anonymousReport())
	digits := strings.ReplaceAll(f.ReceiptCode, " ", "")
	typo := digits[:15] + string('0'+(digits[15]-'0'+1)%10) // breaks the check digit
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"typo caught by the check digit", `{"receipt_code":"` + typo + `"}`, 400},
		{"wrong receipt with a valid check digit", `{"receipt_code":"` + otherReceipt(digits) + `"}`, 401},
		{"empty receipt", `{"receipt_code":""}`, 400},
		{"operator injection", `{"receipt_code":{"$gt":""}}`, 400},
		{"unknown field", `{"receipt":"x"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, postJSON(t, "/v1/followup/session", "", tt.body), tt.status)
		})
	}
	t.Run("follow-up token is not a staff token", func(t *testing.T) {
		wantStatus(t, do(t, req{method: "GET", path: "/v1/cases", token: f.FollowUpToken}), 401)
	})
	t.Run("staff token is not a follow-up token", func(t *testing.T) {
		staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
		wantStatus(t, do(t, req{method: "GET", path: "/v1/followup/case", token: staff}), 401)
	})
	t.Run("empty message", func(t *testing.T) {
		wantStatus(t, postJSON(t, "/v1/followup/messages", f.FollowUpToken, map[string]string{"body": "  "}), 400)
	})
	t.Run("message too long", func(t *testing.T) {
		wantStatus(t, postJSON(t, "/v1/followup/messages", f.FollowUpToken, map[string]string{"body": strings.Repeat("长", 2001)}), 400)
	})
}

func TestStaffAuth(t *testing.T) {
	pw := "a long enough password"
	u, err := srv.Accounts.CreateUser(context.Background(), accounts.NewUser{Username: "auth-test", Password: pw, Role: accounts.RoleStaff, UnitID: "330782-mz"},
		func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	login := func() (access, refresh string) {
		r := postJSON(t, "/v1/auth/login", "", map[string]string{"username": "auth-test", "password": pw})
		wantStatus(t, r, 200)
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		r.json(t, &tok)
		return tok.AccessToken, tok.RefreshToken
	}
	t.Run("bad logins", func(t *testing.T) {
		for _, body := range []string{
			`{"username":"auth-test","password":"wrong password!"}`,
			`{"username":"nobody","password":"whatever password"}`,
			`{"username":"auth-test"}`,
		} {
			wantStatus(t, postJSON(t, "/v1/auth/login", "", body), 401)
		}
		wantStatus(t, postJSON(t, "/v1/auth/login", "", `{"username":{"$ne":""},"password":{"$ne":""}}`), 400)
	})
	t.Run("me, refresh, logout", func(t *testing.T) {
		access, refresh := login()
		wantStatus(t, do(t, req{method: "GET", path: "/v1/auth/me", token: access}), 200)
		r := postJSON(t, "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
		wantStatus(t, r, 200)
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		r.json(t, &tok)
		if tok.RefreshToken == refresh {
			t.Fatal("refresh did not rotate the refresh token")
		}
		// Reuse within the window (a retry, a second tab) gets the same next token;
		// reuse after it ends the session (TestRefreshReuse).
		r = postJSON(t, "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
		wantStatus(t, r, 200)
		var again struct {
			RefreshToken string `json:"refresh_token"`
		}
		r.json(t, &again)
		if again.RefreshToken != tok.RefreshToken {
			t.Errorf("a repeated refresh got another next token")
		}
		wantStatus(t, do(t, req{method: "GET", path: "/v1/auth/me", token: tok.AccessToken}), 200)

		access, _ = login()
		wantStatus(t, do(t, req{method: "POST", path: "/v1/auth/logout", token: access}), 204)
		wantStatus(t, do(t, req{method: "GET", path: "/v1/auth/me", token: access}), 401)
	})
	t.Run("disabled user's token stops working", func(t *testing.T) {
		access, _ := login()
		admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
		r := do(t, req{method: "PATCH", path: "/v1/admin/users/" + u.ID, body: strings.NewReader(`{"disabled":true}`), contentType: "application/json", token: admin})
		wantStatus(t, r, 200)
		wantStatus(t, do(t, req{method: "GET", path: "/v1/cases", token: access}), 401)
		wantStatus(t, postJSON(t, "/v1/auth/login", "", map[string]string{"username": "auth-test", "password": pw}), 403)
		r = do(t, req{method: "PATCH", path: "/v1/admin/users/" + u.ID, body: strings.NewReader(`{"disabled":false}`), contentType: "application/json", token: admin})
		wantStatus(t, r, 200)
	})
	t.Run("forged tokens", func(t *testing.T) {
		other, err := qfcrypto.GenerateSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		forger, _ := qfcrypto.NewTokenSigner(other, nil)
		forged, _ := forger.Sign(accounts.Claims{Subject: u.ID, Audience: accounts.AudienceStaff, Role: accounts.RoleAdmin, ID: "x", SessionID: "y", ExpiresAt: timeNow().Add(timeMinute)})
		wantStatus(t, do(t, req{method: "GET", path: "/v1/auth/me", token: forged}), 401)
		none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + b64(`{"sub":"`+u.ID+`","aud":"qingfeng-staff","role":"admin"}`) + "."
		wantStatus(t, do(t, req{method: "GET", path: "/v1/auth/me", token: none}), 401)
	})
}

func TestAdminUsersBadInput(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	tests := []struct {
		name   string
		token  string
		body   string
		status int
		field  string
	}{
		{"staff may not create users", staff, `{"username":"x1y","password":"long enough password","role":"admin"}`, 403, ""},
		{"unknown role", admin, `{"username":"x1y","password":"long enough password","role":"root"}`, 400, "role"},
		{"short password", admin, `{"username":"x1y","password":"short","role":"admin"}`, 400, "password"},
		{"bad username", admin, `{"username":"A B","password":"long enough password","role":"admin"}`, 400, "username"},
		{"staff without a unit", admin, `{"username":"x1y","password":"long enough password","role":"staff"}`, 400, "unit_id"},
		{"staff with an unknown unit", admin, `{"username":"x1y","password":"long enough password","role":"staff","unit_id":"999999-mz"}`, 400, "unit_id"},
		{"liaison outside Zhejiang", admin, `{"username":"x1y","password":"long enough password","role":"liaison","division":"110101"}`, 400, "division"},
		{"unknown field", admin, `{"username":"x1y","password":"long enough password","role":"admin","is_root":true}`, 400, "is_root"},
		{"good", admin, `{"username":"new.staff","password":"long enough password","role":"staff","unit_id":"330782-jw"}`, 201, ""},
		{"taken username", admin, `{"username":"new.staff","password":"long enough password","role":"staff","unit_id":"330782-jw"}`, 400, "username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, "/v1/admin/users", tt.token, tt.body)
			wantStatus(t, r, tt.status)
			if tt.field != "" && !strings.Contains(string(r.Body), `"`+tt.field+`"`) {
				t.Errorf("error does not name %q: %s", tt.field, r.Body)
			}
		})
	}
	t.Run("patch without disabled", func(t *testing.T) {
		r := do(t, req{method: "PATCH", path: "/v1/admin/users/abc", body: strings.NewReader(`{}`), contentType: "application/json", token: admin})
		wantStatus(t, r, 400)
	})
	t.Run("patch unknown user", func(t *testing.T) {
		r := do(t, req{method: "PATCH", path: "/v1/admin/users/abc", body: strings.NewReader(`{"disabled":true}`), contentType: "application/json", token: admin})
		wantStatus(t, r, 404)
	})
}

func TestStaffScope(t *testing.T) {
	yiwu := fileReport(t, anonymousReport())
	staffYiwu, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	staffOther, _ := staffLogin(t, accounts.RoleStaff, "330326-mz", "")
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + yiwu.CaseNumber, token: staffYiwu}), 200)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + yiwu.CaseNumber, token: staffOther}), 404)
	r := do(t, req{method: "GET", path: "/v1/cases", token: staffOther})
	wantStatus(t, r, 200)
	if strings.Contains(string(r.Body), yiwu.CaseNumber) {
		t.Errorf("staff of another unit list a Yiwu case")
	}
	// A liaison reads only what they filed.
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + yiwu.CaseNumber, token: liaison}), 404)
	r = do(t, req{method: "POST", path: "/v1/reports", body: bytes.NewReader(jsonBytes(t, anonymousReport())), contentType: "application/json", token: liaison})
	wantStatus(t, r, 201)
	var mine filed
	r.json(t, &mine)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + mine.CaseNumber, token: liaison}), 200)
	r = do(t, req{method: "GET", path: "/v1/cases", token: liaison})
	if !strings.Contains(string(r.Body), mine.CaseNumber) || strings.Contains(string(r.Body), yiwu.CaseNumber) {
		t.Errorf("liaison list: %s", r.Body)
	}
	// Liaisons do not reply as the unit.
	wantStatus(t, postJSON(t, "/v1/cases/"+mine.CaseNumber+"/messages", liaison, map[string]string{"body": "x"}), 403)
	for _, q := range []string{"?limit=0", "?limit=abc", "?limit=500"} {
		wantStatus(t, do(t, req{method: "GET", path: "/v1/cases" + q, token: staffYiwu}), 400)
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + yiwu.CaseNumber + "/evidence/nope", token: staffYiwu}), 404)
}

// TestRealNameIdentityNeverStoredInPlaintext files real-name reports (JSON and
// multipart, with a photo) and scans every database file and every stored object, and
// the logs, for the reporter's name, mobile number and ID number.
func TestRealNameIdentityNeverStoredInPlaintext(t *testing.T) {
	name, mobile, id := "欧阳清风测试", "13957912345", "330782199001011234"
	id = id[:17] + residentCheck(id[:17])
	body := anonymousReport()
	body["anonymous"] = false
	body["identity"] = map[string]any{"name": name, "mobile": mobile, "resident_id": id, "preferred_contact": "phone"}
	f := fileReport(t, body)
	if f.AcceptanceDue == "" {
		t.Errorf("a real-name report must carry its acceptance-notice due date")
	}
	mp, ct := multipartBody(t, [][2]string{{"category", "donation_misuse"}, {"subject.kind", "organization"}, {"subject.organization.name", "某慈善会"},
		{"description", "捐赠物资未入账"}, {"location.division", "330782001"}, {"anonymous", "false"},
		{"identity.name", name}, {"identity.mobile", "+86 139-5791-2345"}, {"identity.resident_id", id}}, []filePart{{"file", "p.jpg", testJPEG(t)}})
	wantStatus(t, do(t, req{method: "POST", path: "/v1/reports", body: mp, contentType: ct}), 201)

	// The sealed identity opens with the custodian's key, and only with it.
	c, err := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, err := os.ReadFile(dataDir + "/demo-custodian-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	identity := ""
	for _, l := range strings.Split(string(keyFile), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			identity = l
		}
	}
	plain, err := qfcrypto.Open(identity, c.Identity.Ciphertext)
	if err != nil || !strings.Contains(string(plain), mobile) {
		t.Fatalf("custodian cannot open the identity: %v", err)
	}

	needles := [][]byte{[]byte(name), []byte(mobile), []byte(id)}
	// The scan must see what the database holds (the SQLite file and its WAL): the
	// case's own description, stored in the clear, is the control.
	control, seen := []byte("捐赠物资未入账"), false
	for _, path := range dataFiles(t) {
		if strings.HasSuffix(path, "demo-custodian-key.txt") {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		seen = seen || bytes.Contains(b, control)
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains %q in plaintext", path, n)
			}
		}
	}
	if !seen {
		t.Error("the scan never saw the case's description: it cannot see what the database holds")
	}
	cl := s3Client(t)
	for o := range cl.ListObjects(context.Background(), srv.s3.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		obj, err := cl.GetObject(context.Background(), srv.s3.Bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(obj)
		obj.Close()
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("object %s contains %q", o.Key, n)
			}
		}
	}
	logs := logBuf.String()
	for _, n := range needles {
		if strings.Contains(logs, string(n)) {
			t.Errorf("the log contains %q", n)
		}
	}
	// Access log lines carry exactly these attributes: nothing about the client.
	allowed := map[string]bool{"time": true, "level": true, "msg": true, "method": true, "route": true, "status": true,
		"duration_ms": true, "bytes_out": true, "request_id": true}
	lines := 0
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" {
			continue
		}
		lines++
		for k := range rec {
			if !allowed[k] {
				t.Errorf("access log records %q: %s", k, line)
			}
		}
	}
	if lines == 0 {
		t.Error("no access log lines found")
	}
	if strings.Contains(logs, "Go-http-client") {
		t.Error("the log records a user agent")
	}
}

// otherReceipt is a well-formed receipt (valid check digit) that differs from code.
func otherReceipt(code string) string {
	for {
		if r := qfcrypto.NewReceiptCode(); r != code {
			return r
		}
	}
}

func residentCheck(first17 string) string {
	w := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, c := range first17 {
		sum += int(c-'0') * w[i]
	}
	return string("10X98765432"[sum%11])
}
