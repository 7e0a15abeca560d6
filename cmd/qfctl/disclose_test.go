package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

// fakeServer plays the disclosure endpoints for one request, sealed to the custodian's
// recipient, and records what qfctl sends.
type fakeServer struct {
	t        *testing.T
	sealed   []byte // the identity as sealed to the custodians
	resealTo string
	mu       sync.Mutex
	puts     [][]byte // uploaded re-sealed files
	requests []string
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(401)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"未登录或登录已失效"}}`)
		return
	}
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/disclosures/d1/sealed-identity":
		json.NewEncoder(w).Encode(map[string]string{"disclosure": "d1", "ciphertext": base64.StdEncoding.EncodeToString(f.sealed), "reseal_to": f.resealTo})
	case r.Method == "PUT" && r.URL.Path == "/v1/disclosures/d1/resealed":
		var body struct{ Ciphertext string }
		json.NewDecoder(r.Body).Decode(&body)
		ct, _ := base64.StdEncoding.DecodeString(body.Ciphertext)
		f.mu.Lock()
		f.puts = append(f.puts, ct)
		f.mu.Unlock()
		io.WriteString(w, `{"id":"d1","case":"QF-330782-2026-000001","status":"completed"}`)
	case r.URL.Path == "/v1/disclosures/d2/approve":
		w.WriteHeader(409)
		io.WriteString(w, `{"error":{"code":"conflict","message":"申请当前状态为“denied”，不能执行该操作","allowed":[]}}`)
	case r.URL.Path == "/v1/disclosures/d3/approve":
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"code":"invalid_input","message":"提交的内容有误，请检查标注的字段","fields":{"reason":{"code":"required","message":"请填写理由（不超过1000字）"}}}}`)
	case r.URL.Path == "/v1/disclosures/d4/approve":
		w.WriteHeader(502)
		io.WriteString(w, `<html>bad gateway</html>`)
	default:
		w.WriteHeader(404)
		io.WriteString(w, `{"error":{"code":"not_found","message":"申请不存在"}}`)
	}
}

func writeKey(t *testing.T, dir, name string) (path, identity, recipient string) {
	t.Helper()
	identity, recipient, err := qfcrypto.GenerateCustodianKey()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("# public key: "+recipient+"\n"+identity+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, identity, recipient
}

func sealTo(t *testing.T, recipient string, plain []byte) []byte {
	t.Helper()
	s, err := qfcrypto.NewSealer(map[string][]string{"*": {recipient}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Seal(context.Background(), "330782", plain)
	if err != nil {
		t.Fatal(err)
	}
	return out.Ciphertext
}

func TestResealUploadsOnlyForTheRequester(t *testing.T) {
	dir := t.TempDir()
	custKey, _, custRcp := writeKey(t, dir, "cust.key")
	otherKey, _, _ := writeKey(t, dir, "other.key")
	_, staffID, staffRcp := writeKey(t, dir, "staff.key")
	plain := []byte(`{"v":1,"name":"钱七","mobile":"13700137000"}`)
	f := &fakeServer{t: t, sealed: sealTo(t, custRcp, plain), resealTo: staffRcp}
	ts := httptest.NewServer(f)
	defer ts.Close()
	t.Setenv("QF_SERVER", ts.URL)
	t.Setenv("QF_TOKEN", "tok")

	// The wrong key: a clear message, and no PUT at all.
	var out, errb bytes.Buffer
	if code := run([]string{"disclose", "reseal", "d1", "--key", otherKey}, nil, &out, &errb); code != 1 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "密钥不匹配") || !strings.Contains(errb.String(), "nothing was uploaded") || out.Len() != 0 {
		t.Errorf("wrong key: stdout %q stderr %q", out.String(), errb.String())
	}
	if len(f.puts) != 0 {
		t.Fatalf("a wrong key uploaded %d files", len(f.puts))
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"disclose", "reseal", "d1", "--key", custKey}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, s := range []string{out.String(), errb.String()} {
		if strings.Contains(s, "钱七") || strings.Contains(s, "13700137000") {
			t.Fatalf("reseal printed the plaintext: %q", s)
		}
	}
	if len(f.puts) != 1 {
		t.Fatalf("%d uploads", len(f.puts))
	}
	up := f.puts[0]
	if bytes.Contains(up, []byte("钱七")) {
		t.Fatal("the upload holds the plaintext")
	}
	info, err := qfcrypto.InspectSealed(up)
	if err != nil || !info.PostQuantum || len(info.StanzaTypes) != 1 {
		t.Fatalf("upload %+v, %v: want one post-quantum stanza", info, err)
	}
	if got, err := qfcrypto.Open(staffID, up); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("the requester cannot open the upload: %v", err)
	}
	// Sealed to the requester only: the custodian's own key no longer opens it.
	if _, err := openSealed(mustKey(t, custKey), up); err != errWrongKey {
		t.Fatalf("the custodian's key on the re-sealed file: %v", err)
	}
}

func mustKey(t *testing.T, path string) string {
	t.Helper()
	id, err := loadKey(path, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestResealRefusesAClassicRecipient(t *testing.T) {
	dir := t.TempDir()
	custKey, _, custRcp := writeKey(t, dir, "cust.key")
	f := &fakeServer{t: t, sealed: sealTo(t, custRcp, []byte(`{"v":1,"name":"钱七"}`)),
		resealTo: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}
	ts := httptest.NewServer(f)
	defer ts.Close()
	t.Setenv("QF_TOKEN", "tok")
	var errb bytes.Buffer
	if code := run([]string{"disclose", "reseal", "--server", ts.URL, "d1", "--key", custKey}, nil, io.Discard, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "not post-quantum") || len(f.puts) != 0 {
		t.Errorf("stderr %q, %d uploads", errb.String(), len(f.puts))
	}
}

func TestServerErrors(t *testing.T) {
	f := &fakeServer{t: t}
	ts := httptest.NewServer(f)
	defer ts.Close()
	t.Setenv("QF_SERVER", ts.URL)
	tests := []struct {
		token, id string
		want      []string
	}{
		{"tok", "d2", []string{"申请当前状态为“denied”，不能执行该操作（conflict，HTTP 409）"}},
		{"tok", "d3", []string{"提交的内容有误", "reason: 请填写理由（不超过1000字）"}},
		{"tok", "d4", []string{"HTTP 502", "bad gateway"}},
		{"tok", "nope", []string{"申请不存在（not_found，HTTP 404）"}},
		{"expired", "d2", []string{"未登录或登录已失效（unauthorized，HTTP 401）", "qfctl login"}},
	}
	for _, tt := range tests {
		t.Setenv("QF_TOKEN", tt.token)
		var out, errb bytes.Buffer
		if code := run([]string{"disclose", "approve", tt.id, "--reason", "理由"}, nil, &out, &errb); code != 1 {
			t.Errorf("%s: exit %d", tt.id, code)
		}
		for _, w := range tt.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%s: stderr %q lacks %q", tt.id, errb.String(), w)
			}
		}
		if out.Len() != 0 {
			t.Errorf("%s: stdout %q", tt.id, out.String())
		}
	}
}

func TestDiscloseUsage(t *testing.T) {
	t.Setenv("QF_SERVER", "http://127.0.0.1:1")
	t.Setenv("QF_TOKEN", "tok")
	for _, args := range [][]string{
		{"disclose"}, {"disclose", "frobnicate"}, {"disclose", "approve"}, {"disclose", "approve", "d1"},
		{"disclose", "approve", "a", "b", "--reason", "x"}, {"disclose", "list", "extra"}, {"disclose", "fetch"},
		{"disclose", "approve", "d1", "--bogus"}, {"login"}, {"login", "--server", "http://127.0.0.1:1"},
	} {
		if code := run(args, strings.NewReader(""), io.Discard, io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestNoServerOrToken(t *testing.T) {
	t.Setenv("QF_SERVER", "")
	t.Setenv("QF_TOKEN", "tok")
	var errb bytes.Buffer
	if code := run([]string{"disclose", "list"}, nil, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "QF_SERVER") {
		t.Errorf("no server: exit %d %q", code, errb.String())
	}
	t.Setenv("QF_SERVER", "ftp://example.org")
	errb.Reset()
	if code := run([]string{"disclose", "list"}, nil, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "not an http(s) URL") {
		t.Errorf("ftp: exit %d %q", code, errb.String())
	}
	t.Setenv("QF_SERVER", "http://127.0.0.1:1")
	t.Setenv("QF_TOKEN", "")
	errb.Reset()
	if code := run([]string{"disclose", "list"}, nil, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "not signed in") {
		t.Errorf("no token: exit %d %q", code, errb.String())
	}
	// Plain http to another machine: a warning.
	errb.Reset()
	if _, err := serverURL("http://qingfeng.example.gov.cn/", &errb); err != nil || !strings.Contains(errb.String(), "plain http") {
		t.Errorf("plain http: %v %q", err, errb.String())
	}
}

func TestLoginPrintsExports(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Username, Password string }
		json.NewDecoder(r.Body).Decode(&body)
		if r.URL.Path != "/v1/auth/login" || body.Username != "cust1" || body.Password != "pass word'1" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"用户名或密码错误"}}`)
			return
		}
		io.WriteString(w, `{"access_token":"eyJ.a-b_c.d","refresh_token":"r","token_type":"Bearer","expires_at":"2026-12-01T10:00:00Z","user":{"username":"cust1","role":"custodian"}}`)
	}))
	defer ts.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"login", "--server", ts.URL + "/", "--username", "cust1"}, strings.NewReader("pass word'1\n"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "export QF_SERVER=" + ts.URL + "\nexport QF_TOKEN=eyJ.a-b_c.d\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if strings.Contains(out.String()+errb.String(), "pass word") || strings.Contains(out.String(), "refresh") {
		t.Error("login printed the password or the refresh token")
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"login", "--server", ts.URL, "--username", "cust1"}, strings.NewReader("wrong\n"), &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "用户名或密码错误（unauthorized，HTTP 401）") || strings.Contains(errb.String(), "expired") || out.Len() != 0 {
		t.Errorf("wrong password: exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
	if code := run([]string{"login", "--server", ts.URL, "--username", "cust1"}, strings.NewReader(""), io.Discard, &errb); code != 1 {
		t.Errorf("empty stdin: exit %d", code)
	}
}

func TestLoginSendsTOTP(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		if body["totp"] != "123456" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"totp_required","message":"请输入动态验证码或恢复码"}}`)
			return
		}
		io.WriteString(w, `{"access_token":"eyJ.a.b","refresh_token":"r","token_type":"Bearer","expires_at":"2026-12-01T10:00:00Z","user":{"username":"cust1","role":"custodian"}}`)
	}))
	defer ts.Close()
	var errb bytes.Buffer
	if code := run([]string{"login", "--server", ts.URL, "--username", "cust1"}, strings.NewReader("pw\n"), io.Discard, &errb); code != 1 ||
		!strings.Contains(errb.String(), "totp_required") {
		t.Errorf("without --totp: exit %d %q", code, errb.String())
	}
	if code := run([]string{"login", "--server", ts.URL, "--username", "cust1", "--totp", "123456"}, strings.NewReader("pw\n"), io.Discard, &errb); code != 0 {
		t.Errorf("with --totp: exit %d %q", code, errb.String())
	}
}

// TestLoginSaysRestriction: signing in to an account that must first change its
// password or set up its second factor says so at once (the token opens nothing else).
func TestLoginSaysRestriction(t *testing.T) {
	for restriction, want := range map[string]string{
		"password_change_required": "/v1/auth/password",
		"totp_enrollment_required": "/v1/auth/totp/enroll",
		"":                         "",
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"access_token":"eyJ.a.b","refresh_token":"r","token_type":"Bearer","expires_at":"2026-12-01T10:00:00Z","user":{"username":"cust1","role":"custodian"},"restriction":"`+restriction+`"}`)
		}))
		var out, errb bytes.Buffer
		code := run([]string{"login", "--server", ts.URL, "--username", "cust1"}, strings.NewReader("pw\n"), &out, &errb)
		ts.Close()
		if code != 0 || !strings.Contains(out.String(), "export QF_TOKEN=eyJ.a.b") {
			t.Errorf("%q: exit %d stdout %q", restriction, code, out.String())
		}
		if got := strings.Contains(errb.String(), "注意"); got != (want != "") || !strings.Contains(errb.String(), want) {
			t.Errorf("%q: stderr %q, want a note naming %q", restriction, errb.String(), want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080": "http://127.0.0.1:8080",
		"eyJ.a-b_c":             "eyJ.a-b_c",
		"a b":                   "'a b'",
		"it's":                  `'it'\''s'`,
		"$(rm -rf /)":           "'$(rm -rf /)'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	path, identity, recipient := writeKey(t, dir, "k")
	var errb bytes.Buffer
	got, err := loadKey(path, &errb)
	if err != nil || got != identity || errb.Len() != 0 {
		t.Fatalf("loadKey: %q %v %q", got, err, errb.String())
	}
	if runtime.GOOS != "windows" {
		os.Chmod(path, 0o640)
		if _, err := loadKey(path, &errb); err != nil || !strings.Contains(errb.String(), "mode 0640") {
			t.Errorf("group-readable key: %v, stderr %q", err, errb.String())
		}
	}
	pub := filepath.Join(dir, "pub")
	os.WriteFile(pub, []byte(recipient+"\n"), 0o644)
	if _, err := loadKey(pub, io.Discard); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("public key file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := loadKey(empty, io.Discard); err == nil {
		t.Error("an empty key file loaded")
	}
	if _, err := loadKey(dir, io.Discard); err == nil {
		t.Error("a directory loaded as a key")
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "")
	pos, err := parseInterspersed(fs, []string{"ID", "--reason", "理由 充分", "ID2"})
	if err != nil || *reason != "理由 充分" || strings.Join(pos, ",") != "ID,ID2" {
		t.Errorf("%v %q %v", pos, *reason, err)
	}
}

func TestPrintIdentity(t *testing.T) {
	var out bytes.Buffer
	printIdentity(&out, []byte(`{"v":1,"name":"钱七","mobile":"13700137000","preferred_contact":"sms"}`))
	for _, w := range []string{"钱七", "13700137000", "短信 sms", "未填写"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	out.Reset()
	printIdentity(&out, []byte("姓名：钱七（设备端格式）"))
	if !strings.Contains(out.String(), "设备端格式") {
		t.Errorf("a non-JSON identity is not shown as it is: %q", out.String())
	}
}
