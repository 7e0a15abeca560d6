// Package apitest checks HTTP responses against the OpenAPI 3.1 contract in
// api-spec/openapi.yaml, so that API tests fail when the served API and the document
// clients are built from drift apart.
//
// Typical use in an API test:
//
//	spec := apitest.Load(t, "../api-spec/openapi.yaml")
//	resp, _ := srv.App.Test(req)
//	body := spec.CheckHTTP(t, req, resp) // or spec.CheckResponse(t, method, path, status, contentType, body)
//
// It is for tests only: it reports through testing.TB and never panics on a bad
// response. Parsing, path matching and JSON Schema 2020-12 validation are done by
// github.com/pb33f/libopenapi and github.com/pb33f/libopenapi-validator.
package apitest

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi/datamodel"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Spec is a loaded OpenAPI document. It is safe for concurrent use by parallel tests.
type Spec struct {
	path string
	doc  libopenapi.Document
	ops  []Op

	mu sync.Mutex // serializes the validator, whose caches are not documented as concurrency-safe
	v  validator.Validator
}

// Op is one operation of the document.
type Op struct {
	Method      string // upper case, e.g. "GET"
	Path        string // the OpenAPI path template, e.g. "/v1/cases/{case}"
	OperationID string
	// Statuses are the declared response keys ("200", "404", "4XX", "default"), sorted.
	Statuses []string
}

func (o Op) String() string { return o.Method + " " + o.Path }

var (
	cacheMu sync.Mutex
	cache   = map[string]*Spec{}
)

// Load reads, parses and prepares the OpenAPI 3.1 document at specPath, failing the
// test if it cannot. A document is parsed once per test binary and shared.
func Load(t testing.TB, specPath string) *Spec {
	t.Helper()
	abs, err := filepath.Abs(specPath)
	if err != nil {
		t.Fatalf("apitest: %v", err)
		return nil
	}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if s, ok := cache[abs]; ok {
		return s
	}
	s, err := load(abs)
	if err != nil {
		t.Fatalf("apitest: load %s: %v", specPath, err)
		return nil
	}
	cache[abs] = s
	return s
}

func load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := datamodel.NewDocumentConfiguration()
	cfg.Logger = slog.New(slog.DiscardHandler) // problems come back as errors; nothing on stdout
	doc, err := libopenapi.NewDocumentWithConfiguration(b, cfg)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1.") {
		return nil, fmt.Errorf("openapi version is %q, want 3.1.x", v)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build model: %w", err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("build validator: %w", joinErrs(errs))
	}
	return &Spec{path: path, doc: doc, v: v, ops: operations(&m.Model)}, nil
}

func joinErrs(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

func operations(m *v3.Document) []Op {
	var ops []Op
	if m.Paths == nil || m.Paths.PathItems == nil {
		return nil
	}
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			o := Op{Method: strings.ToUpper(method), Path: path, OperationID: op.OperationId}
			if op.Responses != nil {
				if op.Responses.Codes != nil {
					for code := range op.Responses.Codes.KeysFromOldest() {
						o.Statuses = append(o.Statuses, code)
					}
				}
				if op.Responses.Default != nil {
					o.Statuses = append(o.Statuses, "default")
				}
			}
			slices.Sort(o.Statuses)
			ops = append(ops, o)
		}
	}
	slices.SortFunc(ops, func(a, b Op) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return ops
}

// Operations lists every operation the document declares, sorted by path and method.
func (s *Spec) Operations() []Op { return slices.Clone(s.ops) }

// Match finds the operation serving method and a concrete request path (query string
// allowed), e.g. GET /v1/cases/QF-330782-2026-000001 → GET /v1/cases/{case}. Literal
// segments win over parameters, as in OpenAPI. A trailing slash is ignored, as the
// server's non-strict routing does.
func (s *Spec) Match(method, requestPath string) (Op, bool) {
	segs := splitPath(cleanPath(requestPath))
	method = strings.ToUpper(method)
	var (
		best      Op
		bestScore = -1
	)
	for _, o := range s.ops {
		if o.Method != method {
			continue
		}
		if score, ok := matchTemplate(splitPath(o.Path), segs); ok && score > bestScore {
			best, bestScore = o, score
		}
	}
	return best, bestScore >= 0
}

// matchTemplate matches path segments against a template's; the score ranks literal
// matches, earlier segments weighing more.
func matchTemplate(tmpl, segs []string) (int, bool) {
	if len(tmpl) != len(segs) {
		return 0, false
	}
	score := 0
	for i, t := range tmpl {
		score <<= 1
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if segs[i] == "" {
				return 0, false
			}
			continue
		}
		if t != segs[i] {
			return 0, false
		}
		score |= 1
	}
	return score, true
}

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// cleanPath drops the query and a trailing slash.
func cleanPath(p string) string {
	if u, err := url.Parse(p); err == nil {
		p = u.EscapedPath()
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	if p == "" {
		p = "/"
	}
	return p
}

// CheckResponse fails t unless the document declares the operation serving method and
// requestPath, declares status for it, and — for a declared JSON body — body validates
// against the declared schema (JSON Schema 2020-12, with format assertions). A body
// the document declares no content for is not examined; a body of another declared
// media type is checked for its media type only.
func (s *Spec) CheckResponse(t testing.TB, method, requestPath string, status int, contentType string, body []byte) {
	t.Helper()
	for _, msg := range s.checkResponse(method, requestPath, status, contentType, body) {
		t.Errorf("%s", msg)
	}
}

// CheckHTTP checks a response as CheckResponse does, taking method and path from req.
// It reads resp.Body, leaves a fresh reader over the same bytes in its place, and
// returns them.
func (s *Spec) CheckHTTP(t testing.TB, req *http.Request, resp *http.Response) []byte {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("apitest: read response body of %s %s: %v", req.Method, req.URL.Path, err)
		return nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	s.CheckResponse(t, req.Method, req.URL.RequestURI(), resp.StatusCode, resp.Header.Get("Content-Type"), body)
	return body
}

func (s *Spec) checkResponse(method, requestPath string, status int, contentType string, body []byte) []string {
	method = strings.ToUpper(method)
	path := cleanPath(requestPath)
	where := fmt.Sprintf("%s %s → %d", method, requestPath, status)
	op, ok := s.Match(method, path)
	if !ok {
		return []string{fmt.Sprintf("%s: the OpenAPI document %s declares no operation %s %s", where, filepath.Base(s.path), method, path)}
	}
	code := strconv.Itoa(status)
	if !slices.Contains(op.Statuses, code) && !slices.Contains(op.Statuses, code[:1]+"XX") && !slices.Contains(op.Statuses, "default") {
		return []string{fmt.Sprintf("%s: status %d is not declared for %s (declared: %s)", where, status, op, strings.Join(op.Statuses, ", "))}
	}

	if len(bytes.TrimSpace(body)) == 0 && isJSON(contentType) {
		// The validator skips empty bodies; a JSON response with none is always a bug.
		return []string{fmt.Sprintf("%s (%s): the %s response body is empty", where, op, contentType)}
	}

	req, err := http.NewRequest(method, "http://api.test"+path, nil)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", where, err)}
	}
	resp := &http.Response{
		StatusCode: status,
		Header:     http.Header{},
		Body:       io.NopCloser(bytes.NewReader(body)),
		Request:    req,
	}
	if contentType != "" {
		resp.Header.Set("Content-Type", contentType)
	}
	s.mu.Lock()
	ok, verrs := s.v.ValidateHttpResponse(req, resp)
	s.mu.Unlock()
	if ok {
		return nil
	}
	msgs := make([]string, 0, len(verrs))
	for _, e := range verrs {
		msgs = append(msgs, fmt.Sprintf("%s (%s): %s", where, op, describe(e)))
	}
	if len(msgs) == 0 {
		msgs = append(msgs, fmt.Sprintf("%s (%s): response does not match the OpenAPI document", where, op))
	}
	if len(body) > 0 {
		msgs[len(msgs)-1] += "\nbody: " + truncate(string(body), 2000)
	}
	return msgs
}

func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func describe(e *valerrors.ValidationError) string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Reason != "" && e.Reason != e.Message {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	for _, f := range e.SchemaValidationErrors {
		b.WriteString("\n\t")
		loc := f.FieldPath
		if loc == "" && len(f.InstancePath) > 0 {
			loc = "/" + strings.Join(f.InstancePath, "/")
		}
		if loc != "" {
			b.WriteString(loc)
			b.WriteString(": ")
		}
		b.WriteString(f.Reason)
		if f.KeywordLocation != "" {
			b.WriteString(" [schema ")
			b.WriteString(f.KeywordLocation)
			b.WriteString("]")
		}
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// CheckDocument fails t unless the document is valid against the OpenAPI 3.1 schema
// (the specification's own JSON Schema, as embedded in libopenapi-validator).
func (s *Spec) CheckDocument(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	ok, errs := s.v.ValidateDocument()
	s.mu.Unlock()
	if ok {
		return
	}
	for _, e := range errs {
		t.Errorf("%s: line %d: %s", filepath.Base(s.path), e.SpecLine, describe(e))
	}
	if len(errs) == 0 {
		t.Errorf("%s: not a valid OpenAPI document", filepath.Base(s.path))
	}
}
