package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/handlers"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// TestConsolePagesHeadersAndOrigins is TestWebPagesHeadersAndOrigins for the console:
// every GET console route, fetched signed in with the role it serves, carries the
// page headers, and its HTML refers to no other origin and holds no inline code. It
// fails when a console route is added that it does not fetch.
func TestConsolePagesHeadersAndOrigins(t *testing.T) {
	ctx := context.Background()
	// A case with a photo in the staff member's unit, and an organization in the
	// liaison's division.
	mp, ct := multipartBody(t, [][2]string{{"category", "arbitrary_fees"}, {"subject.kind", "organization"}, {"subject.organization.name", "义乌市某协会"},
		{"description", "强制收取会费"}, {"location.division", "330782001"}, {"anonymous", "true"}}, []filePart{{"file", "p.jpg", testJPEG(t)}})
	r := do(t, req{method: "POST", path: "/v1/reports", body: mp, contentType: ct})
	wantStatus(t, r, 201)
	var f filed
	r.json(t, &f)
	c, err := srv.Intake.Cases.CaseByNumber(ctx, f.CaseNumber)
	if err != nil || len(c.Evidence) != 1 {
		t.Fatalf("case %v, %v", c, err)
	}
	code := newImportCode("330782")
	org := routing.Organization{CreditCode: code, Name: "义乌市某页面测试协会", Type: "社会团体", RegDivision: "330782", Division: "330782", Status: routing.OrgNormal}
	if _, _, err := srv.st.orgs.UpsertOrganizations(ctx, []routing.Organization{org}); err != nil {
		t.Fatal(err)
	}
	srv.engine.Orgs.Put(org)

	signIn := func(role accounts.Role, unit, division string) *http.Client {
		u, secret, _ := consoleAccount(t, role, unit, division, srv.Config.Require2FA[role])
		totp := ""
		if secret != nil {
			totp = nextTOTP(secret)
		}
		return consoleSignIn(t, u, totp)
	}
	staff := signIn(accounts.RoleStaff, "330782-mz", "")
	liaison := signIn(accounts.RoleLiaison, "", "330782")
	admin := signIn(accounts.RoleAdmin, "", "")
	custodian := signIn(accounts.RoleCustodian, "", "330782")
	ev := "/console/cases/" + f.CaseNumber + "/evidence/" + c.Evidence[0].ID
	// A ledger photo, recorded with goods through the ledger's form.
	lp := postLedger(t, liaison, code, [][2]string{{"_csrf", consoleCSRF(t, liaison)}, {"op", "goods"}, {"item", "毛毯"}, {"quantity", "2"},
		{"unit", "条"}, {"valuation_yuan", "100"}, {"date", time.Now().In(qingfeng.Shanghai).Format(time.DateOnly)}}, []filePart{{"photos", "p.jpg", testJPEG(t)}})
	photo := ledgerThumb.FindStringSubmatch(lp.body)
	if photo == nil {
		t.Fatalf("goods with a photo: %d, no thumbnail", lp.status)
	}
	fetch := map[string]*http.Client{
		"/console/login": webClient(t), "/console/password": staff, "/console/totp": staff, "/console": staff,
		"/console/cases": staff, "/console/cases?status=registered&sort=due": staff, "/console/cases/" + f.CaseNumber: staff,
		ev: staff, ev + "/view": staff, photo[1]: liaison, "/console/notifications": staff, "/console/stats": staff, "/console/stats/cases.csv": staff,
		"/console/ledger": liaison, "/console/ledger/" + code: liaison, "/console/ledger/" + code + "/export.csv?from=2026-11&to=2026-11": liaison,
		"/console/admin/users": admin, "/console/custody": custodian, "/console/admin": admin,
		"/console/admin/recipients": admin, "/console/admin/rules": admin, "/console/admin/rules?all=1": admin,
		"/console/admin/units?id=330782-mz": admin, "/console/admin/units?q=330782": admin, "/console/admin/units?new=1": admin, "/console/admin/calendar": admin, "/console/admin/import": admin,
		"/console/admin/audit": admin, "/console/admin/audit?case=" + f.CaseNumber: admin,
		"/console/routing/explain": staff, "/console/routing/explain?rule=default-illegal-org": admin,
	}
	binary := func(path string) bool { return strings.HasSuffix(path, ".csv") || path == ev || path == photo[1] }
	fetched := map[string]bool{}
	for path, cl := range fetch {
		p := getPage(t, cl, path)
		if p.status == 404 && path == "/console/admin" {
			continue // no admin index page
		}
		if p.status != 200 {
			t.Errorf("GET %s: %d", path, p.status)
			continue
		}
		fetched[strings.SplitN(path, "?", 2)[0]] = true
		if path == ev || path == photo[1] {
			// The evidence itself (or a ledger photo), framed only by the console's own viewer: a sandbox
			// and nothing it may load or run.
			csp := p.header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "frame-ancestors 'self'") ||
				p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("Cache-Control") != "no-store" || p.header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("GET %s: headers %v", path, p.header)
			}
			continue
		}
		checkPageHeaders(t, "GET "+path, p, true)
		if !binary(path) {
			checkSameOrigin(t, "GET "+path, p.body)
		}
	}
	for _, rt := range srv.server.App.GetRoutes(true) {
		if !handlers.IsPageRoute(rt.Name) || rt.Method != "GET" || !strings.HasPrefix(rt.Path, "/console") {
			continue
		}
		pattern := regexp.MustCompile("^" + regexp.MustCompile(`:[a-z]+`).ReplaceAllString(regexp.QuoteMeta(rt.Path), `[^/?]+`) + "$")
		found := false
		for path := range fetched {
			found = found || pattern.MatchString(path)
		}
		if !found {
			t.Errorf("console route GET %s is not checked", rt.Path)
		}
	}
}
