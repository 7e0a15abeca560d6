package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/minio/minio-go/v7"

	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

func demoCustodianKey(t *testing.T) (identity, recipient string) {
	t.Helper()
	b, err := os.ReadFile(dataDir + "/demo-custodian-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			identity = l
		}
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			recipient = r
		}
	}
	return identity, recipient
}

// TestDeviceSealedIdentity: a phone seals the identity itself and sends only the age
// file, binary as base64 or ASCII-armored; the server stores it as received.
func TestDeviceSealedIdentity(t *testing.T) {
	identity, recipient := demoCustodianKey(t)
	r, err := age.ParseHybridRecipient(recipient)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(armored bool) string {
		var buf bytes.Buffer
		var dst io.Writer = &buf
		var aw io.WriteCloser
		if armored {
			aw = armor.NewWriter(&buf)
			dst = aw
		}
		w, err := age.Encrypt(dst, r)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, `{"name":"设备加密","mobile":"13912345678"}`)
		w.Close()
		if armored {
			aw.Close()
			return buf.String()
		}
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	for _, armored := range []bool{false, true} {
		t.Run(fmt.Sprintf("armored=%v", armored), func(t *testing.T) {
			body := anonymousReport()
			body["anonymous"] = false
			body["sealed_identity"] = seal(armored)
			f := fileReport(t, body)
			c, err := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber)
			if err != nil {
				t.Fatal(err)
			}
			if !c.RealName || c.Identity == nil || !c.Identity.SealedOnDevice {
				t.Fatalf("identity %+v", c.Identity)
			}
			plain, err := qfcrypto.Open(identity, c.Identity.Ciphertext)
			if err != nil || !strings.Contains(string(plain), "设备加密") {
				t.Fatalf("open: %v %q", err, plain)
			}
		})
	}
	t.Run("truncated age file", func(t *testing.T) {
		body := anonymousReport()
		body["anonymous"] = false
		raw, _ := base64.StdEncoding.DecodeString(seal(false))
		body["sealed_identity"] = base64.StdEncoding.EncodeToString(raw[:40])
		wantStatus(t, postJSON(t, "/v1/reports", "", body), 400)
	})
	t.Run("not base64", func(t *testing.T) {
		body := anonymousReport()
		body["anonymous"] = false
		body["sealed_identity"] = "%%%"
		r := postJSON(t, "/v1/reports", "", body)
		wantStatus(t, r, 400)
		if !strings.Contains(string(r.Body), "sealed_identity") {
			t.Errorf("error does not name sealed_identity: %s", r.Body)
		}
	})
}

// TestSealedOriginals: with QF_KEEP_ORIGINALS the received file, metadata and all, is
// kept only sealed to the custodians; the served copy is the cleaned one.
func TestSealedOriginals(t *testing.T) {
	srv.Intake.Config.KeepOriginals = true
	defer func() { srv.Intake.Config.KeepOriginals = false }()
	photo := testJPEG(t)
	f := fileReport(t, anonymousReport())
	body, ct := multipartBody(t, nil, []filePart{{"file", "p.jpg", photo}})
	wantStatus(t, do(t, req{method: "POST", path: "/v1/reports/" + f.CaseNumber + "/evidence", body: body, contentType: ct, token: f.FollowUpToken}), 201)
	c, err := srv.Intake.Cases.CaseByNumber(context.Background(), f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Evidence) != 1 || c.Evidence[0].OriginalKey == "" {
		t.Fatalf("evidence %+v", c.Evidence)
	}
	obj, err := s3Client(t).GetObject(context.Background(), srv.s3.Bucket, c.Evidence[0].OriginalKey, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("SN-QF-DEVICE-7788")) {
		t.Fatal("the original is stored in plaintext")
	}
	identity, _ := demoCustodianKey(t)
	orig, err := qfcrypto.Open(identity, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, photo) {
		t.Errorf("the custodian's original differs from what was received (%d vs %d bytes)", len(orig), len(photo))
	}
}

func TestOtherHandlersBadInput(t *testing.T) {
	f := fileReport(t, anonymousReport())
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	tests := []struct {
		name        string
		method      string
		path        string
		token       string
		body        string
		contentType string
		status      int
	}{
		{"staff message: empty", "POST", "/v1/cases/" + f.CaseNumber + "/messages", staff, `{"body":""}`, "application/json", 400},
		{"staff message: unknown field", "POST", "/v1/cases/" + f.CaseNumber + "/messages", staff, `{"body":"x","to":"reporter"}`, "application/json", 400},
		{"staff message: wrong type", "POST", "/v1/cases/" + f.CaseNumber + "/messages", staff, `{"body":{"$gt":""}}`, "application/json", 400},
		{"staff message: form body", "POST", "/v1/cases/" + f.CaseNumber + "/messages", staff, `body=x`, "application/x-www-form-urlencoded", 415},
		{"staff message: no token", "POST", "/v1/cases/" + f.CaseNumber + "/messages", "", `{"body":"x"}`, "application/json", 401},
		{"staff message: reporter token", "POST", "/v1/cases/" + f.CaseNumber + "/messages", f.FollowUpToken, `{"body":"x"}`, "application/json", 401},
		{"reporter message: wrong type", "POST", "/v1/followup/messages", f.FollowUpToken, `{"body":42}`, "application/json", 400},
		{"reporter message: no token", "POST", "/v1/followup/messages", "", `{"body":"x"}`, "application/json", 401},
		{"followup case: no token", "GET", "/v1/followup/case", "", "", "", 401},
		{"refresh: garbage", "POST", "/v1/auth/refresh", "", `{"refresh_token":"abc.def"}`, "application/json", 401},
		{"refresh: no dot", "POST", "/v1/auth/refresh", "", `{"refresh_token":"abcdef"}`, "application/json", 401},
		{"refresh: wrong type", "POST", "/v1/auth/refresh", "", `{"refresh_token":["x"]}`, "application/json", 400},
		{"login: unknown field", "POST", "/v1/auth/login", "", `{"username":"a","password":"b","otp":"1"}`, "application/json", 400},
		{"logout: no token", "POST", "/v1/auth/logout", "", "", "", 401},
		{"me: malformed header", "GET", "/v1/auth/me", "", "", "", 401},
		{"case list: no token", "GET", "/v1/cases", "", "", "", 401},
		{"case list: bad cursor", "GET", "/v1/cases?after=" + strings.Repeat("z", 65), staff, "", "", 400},
		{"evidence download: unknown evidence", "GET", "/v1/cases/" + f.CaseNumber + "/evidence/abc", staff, "", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := do(t, req{method: tt.method, path: tt.path, body: body, contentType: tt.contentType, token: tt.token})
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
}

// TestShutdownDrainsInFlight: Close (what SIGTERM triggers) lets an upload in flight
// finish, then refuses new connections.
func TestShutdownDrainsInFlight(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), map[string]string{"QF_SHUTDOWN_TIMEOUT": "20s"})
	m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()
	base := "http://" + m.Addr()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	fields := map[string]string{"category": "other", "subject.kind": "person", "subject.person.name": "赵六",
		"description": "慢速上传", "location.division": "330782", "anonymous": "true"}
	started := make(chan struct{})
	go func() {
		for _, k := range []string{"category", "subject.kind", "subject.person.name", "description", "location.division", "anonymous"} {
			mw.WriteField(k, fields[k])
		}
		fw, _ := mw.CreateFormFile("file", "slow.pdf")
		fw.Write([]byte("%PDF-1.7\n"))
		close(started)
		for i := 0; i < 10; i++ {
			time.Sleep(100 * time.Millisecond)
			fw.Write(bytes.Repeat([]byte("x"), 64<<10))
		}
		mw.Close()
		pw.Close()
	}()
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/v1/reports", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	<-started
	time.Sleep(200 * time.Millisecond)
	closeErr := make(chan error, 1)
	go func() { closeErr <- m.Close() }()
	res := <-done
	if res.err != nil || res.status != 201 {
		t.Fatalf("in-flight upload during shutdown: status %d, err %v", res.status, res.err)
	}
	if err := <-closeErr; err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still accepts connections after Close")
	}
}
