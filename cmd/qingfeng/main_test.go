package main

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/internal/apitest"
)

// The API tests share one server: Main started on :0 in a temporary directory, on the
// embedded default — or, when QF_TEST_S3_* is set (CI), with the evidence in a real
// MinIO. Every response is checked against api-spec/openapi.yaml.
var (
	srv     *Main
	baseURL string
	logBuf  = &syncBuffer{}
	spec    *apitest.Spec
	dataDir string
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testConfig(t testing.TB, dir string, env map[string]string) Config {
	t.Helper()
	base := map[string]string{"QF_ADDR": "127.0.0.1:0", "QF_DATA_DIR": dir, "QF_MAX_FILE_BYTES": "2MiB", "QF_MAX_CASE_BYTES": "5MiB", "QF_MAX_UPLOAD_BYTES": "6MiB",
		// Small enough that the import tests send bodies over it, buffered and streamed.
		"QF_MAX_IMPORT_BYTES": "512KiB",
		// The suite files and mistypes far more than a real minute's worth; the guessing
		// flood test (pow_api_test.go) runs its own server at the default rate.
		"QF_POW_NORMAL_PER_MINUTE": "1000000"}
	if ep := os.Getenv("QF_TEST_S3_ENDPOINT"); ep != "" {
		base["S3_ENDPOINT"] = ep
		base["S3_ACCESS_KEY"] = os.Getenv("QF_TEST_S3_ACCESS_KEY")
		base["S3_SECRET_KEY"] = os.Getenv("QF_TEST_S3_SECRET_KEY")
		base["S3_BUCKET"] = fmt.Sprintf("qf-api-test-%d", time.Now().UnixNano())
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := ConfigFromEnv(func(k string) string { return base[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "qingfeng-api-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		dataDir = dir
		t := &testing.T{}
		cfg := testConfig(t, dir, nil)
		srv = &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})), Stderr: io.Discard}
		if err := srv.Run(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "start server:", err)
			return 1
		}
		defer srv.Close()
		defer func() {
			for _, f := range testCleanups {
				f()
			}
		}()
		baseURL = "http://" + srv.Addr()
		if os.Getenv("QF_TEST_S3_ENDPOINT") != "" {
			fmt.Println("api tests: evidence in the real S3 at", os.Getenv("QF_TEST_S3_ENDPOINT"))
		} else {
			fmt.Println("api tests: embedded default (QF_TEST_S3_ENDPOINT not set)")
		}
		return m.Run()
	}())
}

func loadSpec(t *testing.T) *apitest.Spec {
	t.Helper()
	if spec == nil {
		spec = apitest.Load(t, "../../api-spec/openapi.yaml")
	}
	return spec
}

// response is a finished HTTP exchange, already checked against the spec.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Fields  map[string]any `json:"fields"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Message == "" {
		t.Errorf("error without message: %s", r.Body)
	}
	return e.Error.Code
}

type req struct {
	method, path string
	body         io.Reader
	contentType  string
	token        string
	header       map[string]string
}

func do(t *testing.T, r req) response {
	t.Helper()
	hr, err := http.NewRequest(r.method, baseURL+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	path, _, _ := strings.Cut(r.path, "?")
	loadSpec(t).CheckResponse(t, r.method, path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	checkWireTimes(t, r.method+" "+path, body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func postJSON(t *testing.T, path, token string, v any) response {
	t.Helper()
	var body []byte
	switch b := v.(type) {
	case string:
		body = []byte(b)
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return do(t, req{method: "POST", path: path, body: bytes.NewReader(body), contentType: "application/json", token: token})
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
}

// multipartBody builds a multipart form: fields first, then files.
type filePart struct {
	field, name string
	data        []byte
}

func multipartBody(t *testing.T, fields [][2]string, files []filePart) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.name))
		h.Set("Content-Type", "application/octet-stream")
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(f.data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

// staffLogin creates an account directly and logs it in through the API. A role that
// must have a second factor (QF_REQUIRE_2FA) enrols one through the API first, as its
// owner would; the account's TOTP secret is returned by enrolTOTP for tests that need it.
func staffLogin(t *testing.T, role accounts.Role, unit, division string) (string, *accounts.User) {
	t.Helper()
	name := fmt.Sprintf("u%d", time.Now().UnixNano())
	pw := "correct horse battery staple"
	u, err := srv.Accounts.CreateUser(context.Background(), accounts.NewUser{Username: name, Password: pw, Role: role, UnitID: unit, Division: division},
		func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	r := postJSON(t, "/v1/auth/login", "", map[string]string{"username": name, "password": pw})
	wantStatus(t, r, 200)
	var tok struct {
		AccessToken string `json:"access_token"`
		Restriction string `json:"restriction"`
	}
	r.json(t, &tok)
	if srv.Config.Require2FA[role] {
		if tok.Restriction != "totp_enrollment_required" {
			t.Fatalf("%s without a second factor logged in with restriction %q", role, tok.Restriction)
		}
		enrolTOTP(t, tok.AccessToken)
	}
	return tok.AccessToken, u
}

// enrolTOTP sets up a second factor for the account of token and returns its secret
// and recovery codes.
func enrolTOTP(t *testing.T, token string) ([]byte, []string) {
	t.Helper()
	r := postJSON(t, "/v1/auth/totp/enroll", token, "")
	wantStatus(t, r, 200)
	var e struct {
		Secret string `json:"secret"`
	}
	r.json(t, &e)
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil {
		t.Fatal(err)
	}
	r = postJSON(t, "/v1/auth/totp/confirm", token, map[string]string{"code": accounts.TOTPCode(secret, accounts.TOTPStep(time.Now()))})
	wantStatus(t, r, 200)
	var c struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.json(t, &c)
	return secret, c.RecoveryCodes
}

// anonymousReport is a valid anonymous report about a Yiwu trade association.
func anonymousReport() map[string]any {
	return map[string]any{
		"category":    "arbitrary_fees",
		"subject":     map[string]any{"kind": "organization", "organization": map[string]any{"credit_code": "51330782MJ0000018J", "name": "义乌市某行业协会"}},
		"description": "该协会以“会员服务费”名义向会员企业收取费用，没有收费依据，也不开具票据。",
		"location":    map[string]any{"division": "330782", "address": "义乌市稠城街道"},
		"occurred_on": "2026-10",
		"anonymous":   true,
	}
}

type filed struct {
	CaseNumber    string `json:"case_number"`
	ReceiptCode   string `json:"receipt_code"`
	FollowUpToken string `json:"followup_token"`
	AcceptanceDue string `json:"acceptance_due"`
	Unit          struct {
		Name string `json:"name"`
	} `json:"unit"`
	Warnings []struct {
		Field string `json:"field"`
		Code  string `json:"code"`
	} `json:"warnings"`
	Evidence []struct {
		ID              string `json:"id"`
		ContentType     string `json:"content_type"`
		MetadataRemoved bool   `json:"metadata_removed"`
		SHA256Received  string `json:"sha256_received"`
		SHA256Stored    string `json:"sha256_stored"`
	} `json:"evidence"`
}

func fileReport(t *testing.T, body any) filed {
	t.Helper()
	r := postJSON(t, "/v1/reports", "", body)
	wantStatus(t, r, 201)
	var f filed
	r.json(t, &f)
	return f
}

func dataFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}
