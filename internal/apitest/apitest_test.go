package apitest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.errs = append(r.errs, "FATAL: "+fmt.Sprintf(format, args...))
}

const fixture = "testdata/mini.yaml"

func TestCheckResponse(t *testing.T) {
	spec := Load(t, fixture)
	const okCase = `{"case_number":"QF-330782-2026-000001","real_name":true,"received_at":"2026-03-02T09:30:00+08:00"}`
	tests := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		body        string
		wantErr     string // substring of the failure; "" means the response passes
	}{
		{name: "valid", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200,
			contentType: "application/json", body: okCase},
		{name: "valid with charset and optional field", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200,
			contentType: "application/json; charset=utf-8",
			body:        `{"case_number":"QF-330782-2026-000001","real_name":false,"received_at":"2026-03-02T09:30:00+08:00","acceptance_due":"2026-03-23"}`},
		{name: "lower-case method, query and trailing slash", method: "get", path: "/v1/cases/?limit=5", status: 200,
			contentType: "application/json", body: `{"cases":[` + okCase + `]}`},
		{name: "declared error", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 404,
			contentType: "application/json", body: `{"error":{"code":"not_found","message":"案件不存在"}}`},
		{name: "no content declared", method: "POST", path: "/v1/auth/logout", status: 204},
		{name: "binary media type", method: "GET", path: "/files/abc", status: 200, contentType: "image/jpeg", body: "\xff\xd8\xff"},

		{name: "extra field", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, contentType: "application/json",
			body:    `{"case_number":"QF-330782-2026-000001","real_name":true,"received_at":"2026-03-02T09:30:00+08:00","unit_id":"u1"}`,
			wantErr: "unit_id"},
		{name: "extra field in nested array item", method: "GET", path: "/v1/cases", status: 200, contentType: "application/json",
			body:    `{"cases":[{"case_number":"x","real_name":true,"received_at":"2026-03-02T09:30:00+08:00","ip":"10.0.0.1"}]}`,
			wantErr: "ip"},
		{name: "wrong type", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, contentType: "application/json",
			body:    `{"case_number":"QF-330782-2026-000001","real_name":"yes","received_at":"2026-03-02T09:30:00+08:00"}`,
			wantErr: "real_name"},
		{name: "missing required field", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, contentType: "application/json",
			body:    `{"case_number":"QF-330782-2026-000001","real_name":true}`,
			wantErr: "received_at"},
		{name: "bad date-time format", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, contentType: "application/json",
			body:    `{"case_number":"QF-330782-2026-000001","real_name":true,"received_at":"2 March 2026"}`,
			wantErr: "date-time"},
		{name: "not JSON", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, contentType: "application/json",
			body: `<html>`, wantErr: "decoded"},
		{name: "empty JSON body", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, contentType: "application/json",
			wantErr: "body is empty"},
		{name: "undeclared status", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 500, contentType: "application/json",
			body: `{"error":{"code":"internal_error","message":"x"}}`, wantErr: "status 500 is not declared for GET /v1/cases/{case}"},
		{name: "undeclared media type", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, contentType: "text/html",
			body: okCase, wantErr: "text/html"},
		{name: "missing content type", method: "GET", path: "/v1/cases/QF-330782-2026-000001", status: 200, body: okCase,
			wantErr: "content type"},
		{name: "undeclared path", method: "GET", path: "/v1/nothing", status: 200, contentType: "application/json", body: `{}`,
			wantErr: "declares no operation GET /v1/nothing"},
		{name: "undeclared method", method: "DELETE", path: "/v1/cases/QF-330782-2026-000001", status: 204,
			wantErr: "declares no operation DELETE"},
		{name: "too many segments", method: "GET", path: "/v1/cases/QF-330782-2026-000001/extra", status: 200,
			contentType: "application/json", body: okCase, wantErr: "declares no operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			spec.CheckResponse(rec, tt.method, tt.path, tt.status, tt.contentType, []byte(tt.body))
			switch {
			case tt.wantErr == "" && len(rec.errs) > 0:
				t.Errorf("want no failure, got:\n%s", strings.Join(rec.errs, "\n"))
			case tt.wantErr != "" && len(rec.errs) == 0:
				t.Errorf("want a failure mentioning %q, got none", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(strings.ToLower(strings.Join(rec.errs, "\n")), strings.ToLower(tt.wantErr)):
				t.Errorf("want a failure mentioning %q, got:\n%s", tt.wantErr, strings.Join(rec.errs, "\n"))
			}
		})
	}
}

func TestMatch(t *testing.T) {
	spec := Load(t, fixture)
	tests := []struct {
		method, path string
		want         string // "" for no match
	}{
		{"GET", "/v1/cases/QF-330782-2026-000001", "GET /v1/cases/{case}"},
		{"GET", "/v1/cases/latest", "GET /v1/cases/latest"}, // a literal beats a parameter
		{"GET", "/v1/cases", "GET /v1/cases"},
		{"GET", "/v1/cases/", "GET /v1/cases"},
		{"GET", "/v1/cases?after=x", "GET /v1/cases"},
		{"POST", "/v1/cases", ""},
		{"GET", "/v1", ""},
		{"GET", "/files/", ""}, // an empty parameter does not match
	}
	for _, tt := range tests {
		op, ok := spec.Match(tt.method, tt.path)
		got := ""
		if ok {
			got = op.String()
		}
		if got != tt.want {
			t.Errorf("Match(%s, %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestOperations(t *testing.T) {
	spec := Load(t, fixture)
	var got []string
	for _, op := range spec.Operations() {
		got = append(got, op.String()+" "+op.OperationID+" "+strings.Join(op.Statuses, ","))
	}
	want := []string{
		"GET /files/{id} download 200",
		"POST /v1/auth/logout logout 204",
		"GET /v1/cases listCases 200",
		"GET /v1/cases/latest latestCase 200",
		"GET /v1/cases/{case} getCase 200,404",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Operations() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckHTTP(t *testing.T) {
	spec := Load(t, fixture)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"case_number":"QF-330782-2026-000001","real_name":true,"received_at":"2026-03-02T09:30:00+08:00","extra":1}`)
	})
	req := httptest.NewRequest("GET", "/v1/cases/QF-330782-2026-000001", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()

	rec := &recorder{TB: t}
	body := spec.CheckHTTP(rec, req, resp)
	if len(rec.errs) == 0 {
		t.Error("an extra field passed CheckHTTP")
	}
	again, _ := io.ReadAll(resp.Body)
	if string(again) != string(body) || !strings.Contains(string(body), "extra") {
		t.Errorf("CheckHTTP must return the body and leave it readable: returned %q, left %q", body, again)
	}
}

func TestLoadFailures(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]string{
		"missing.yaml": "",
		"v30.yaml":     "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n",
		"broken.yaml":  "openapi: 3.1.0\ninfo: [\n",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := dir + "/" + name
			if content != "" {
				writeFile(t, path, content)
			}
			rec := &recorder{TB: t}
			if s := Load(rec, path); s != nil && len(rec.errs) == 0 {
				t.Errorf("Load(%s) succeeded", name)
			}
			if len(rec.errs) == 0 {
				t.Errorf("Load(%s) reported nothing", name)
			}
		})
	}
}

func TestCheckDocument(t *testing.T) {
	t.Run("fixture is valid", func(t *testing.T) {
		Load(t, fixture).CheckDocument(t)
	})
	t.Run("invalid document", func(t *testing.T) {
		path := t.TempDir() + "/bad.yaml"
		// A response object without its required description, and an unknown field.
		writeFile(t, path, "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      bogus: 1\n      responses:\n        '200': {}\n")
		rec := &recorder{TB: t}
		s := Load(rec, path)
		if s == nil {
			t.Fatalf("Load: %v", rec.errs)
		}
		s.CheckDocument(rec)
		if len(rec.errs) == 0 {
			t.Error("CheckDocument accepted an invalid document")
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckClosedResponses(t *testing.T) {
	t.Run("fixture is closed", func(t *testing.T) {
		Load(t, fixture).CheckClosedResponses(t)
	})
	t.Run("open objects", func(t *testing.T) {
		path := t.TempDir() + "/open.yaml"
		writeFile(t, path, `openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /x:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema:
                $ref: '#/components/schemas/Outer'
components:
  schemas:
    Outer:
      type: object
      additionalProperties: false
      properties:
        inner:
          type: object
          properties:
            a: {type: string}
        list:
          type: array
          items:
            $ref: '#/components/schemas/Item'
        map:
          type: object
          additionalProperties:
            $ref: '#/components/schemas/Item'
    Item:
      type: object
      additionalProperties: true
      properties:
        b: {type: string}
`)
		rec := &recorder{TB: t}
		Load(t, path).CheckClosedResponses(rec)
		got := strings.Join(rec.errs, "\n")
		for _, want := range []string{"#/components/schemas/Outer.inner", "#/components/schemas/Item"} {
			if !strings.Contains(got, want) {
				t.Errorf("want a failure naming %s, got:\n%s", want, got)
			}
		}
		if len(rec.errs) != 2 {
			t.Errorf("want 2 failures, got %d:\n%s", len(rec.errs), got)
		}
	})
}
