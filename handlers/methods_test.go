package handlers

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var routeParam = regexp.MustCompile(`:[A-Za-z0-9_]+`)

// TestMethodNotAllowed asks every served path with every method it does not serve, in
// the spellings Fiber matches (case, trailing slash), with and without a token: each is
// 405 with an Allow header naming exactly the methods the path serves, in the API's
// error shape, before any authentication.
func TestMethodNotAllowed(t *testing.T) {
	s := routesOnlyServer()
	served := map[string][]string{} // concrete path → methods
	for _, r := range s.App.GetRoutes(true) {
		p := strings.TrimRight(routeParam.ReplaceAllString(r.Path, "QF-330782-2026-000001"), "/")
		p = strings.Replace(p, "*", "site.css", 1) // the static files
		if p == "" {
			p = "/" // the landing page
		}
		if !slices.Contains(served[p], r.Method) {
			served[p] = append(served[p], r.Method)
		}
	}
	for p, have := range served { // Fiber answers HEAD for every GET route
		if slices.Contains(have, "GET") && !slices.Contains(have, "HEAD") {
			served[p] = append(have, "HEAD")
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d paths served", len(served))
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	checked := 0
	for path, have := range served {
		slices.Sort(have)
		wantAllow := strings.Join(have, ", ")
		for _, m := range methods {
			if slices.Contains(have, m) {
				continue
			}
			variants := []string{path, strings.ToUpper(path), path + "/"}
			if path == "/" {
				variants = variants[:1]
			}
			for _, variant := range variants {
				for _, token := range []string{"", "Bearer not.a.jwt"} {
					req := httptest.NewRequest(m, variant, strings.NewReader(`{}`))
					req.Header.Set("Content-Type", "application/json")
					if token != "" {
						req.Header.Set("Authorization", token)
					}
					resp, err := s.App.Test(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 405 || resp.Header.Get("Allow") != wantAllow {
						t.Errorf("%s %s: %d Allow %q, want 405 Allow %q: %s", m, variant, resp.StatusCode, resp.Header.Get("Allow"), wantAllow, body)
						continue
					}
					if m == "HEAD" {
						checked++
						continue
					}
					var e errorBody
					if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != codeMethodNotAllowed || !strings.Contains(e.Error.Message, "请求方法") {
						t.Errorf("%s %s: body %s", m, variant, body)
					}
					checked++
				}
			}
		}
	}
	t.Logf("%d requests answered 405", checked)
	// A served method is never refused as not allowed, and an unknown path stays 404.
	for _, tc := range []struct{ method, path string }{{"GET", "/v1/categories"}, {"HEAD", "/v1/categories"}, {"POST", "/v1/auth/logout"}, {"GET", "/v1/CATEGORIES/"}} {
		resp, err := s.App.Test(httptest.NewRequest(tc.method, tc.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 405 {
			t.Errorf("%s %s answered 405", tc.method, tc.path)
		}
	}
	resp, err := s.App.Test(httptest.NewRequest("PATCH", "/v1/no-such-thing", nil))
	if err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown path: %v %v", resp.StatusCode, err)
	}
}
