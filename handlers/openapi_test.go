package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime/multipart"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/internal/apitest"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// specPath is the contract mobile clients are built from.
const specPath = "../api-spec/openapi.yaml"

func routesOnlyServer() *Server {
	// Nil services are fine: only routes, and handlers that fail before using a
	// service, are exercised.
	return New(Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
}

// TestOpenAPIDocument checks that api-spec/openapi.yaml is a valid OpenAPI 3.1 document
// whose response objects are closed, so that drift fails the response checks.
func TestOpenAPIDocument(t *testing.T) {
	spec := apitest.Load(t, specPath)
	spec.CheckDocument(t)
	spec.CheckClosedResponses(t)
}

// TestOpenAPIRoutes fails when a served route is missing from the document, or the
// document declares an operation nobody serves.
func TestOpenAPIRoutes(t *testing.T) {
	s := routesOnlyServer()
	spec := apitest.Load(t, specPath)
	strict := s.App.Config().StrictRouting

	var served []string
	hasGet := map[string]bool{}
	pageGets := map[string]bool{}
	for _, r := range s.App.GetRoutes(true) {
		op := r.Method + " " + openAPIPath(r.Path, strict)
		// The web pages are not API operations; they are named as pages (IsPageRoute),
		// and only they may be: a page route under /v1, or a path the API serves too,
		// fails here.
		if IsPageRoute(r.Name) || (r.Method == fiber.MethodHead && pageGets[r.Path]) {
			if strings.HasPrefix(r.Path, "/v1") || r.Path == "/healthz" || r.Path == "/readyz" || r.Path == "/metrics" {
				t.Errorf("page route %s %s is in the API's namespace", r.Method, r.Path)
			}
			if r.Method == fiber.MethodGet {
				pageGets[r.Path] = true
			}
			continue
		}
		if r.Method == fiber.MethodGet {
			hasGet[openAPIPath(r.Path, strict)] = true
		}
		if !slices.Contains(served, op) {
			served = append(served, op)
		}
	}
	// Fiber answers HEAD for every GET route; the document describes the GETs.
	served = slices.DeleteFunc(served, func(op string) bool {
		path, ok := strings.CutPrefix(op, fiber.MethodHead+" ")
		return ok && hasGet[path]
	})

	var declared []string
	for _, op := range spec.Operations() {
		declared = append(declared, op.String())
	}
	for _, op := range served {
		if !slices.Contains(declared, op) {
			t.Errorf("served route %s is missing from %s", op, specPath)
		}
	}
	for _, op := range declared {
		if !slices.Contains(served, op) {
			t.Errorf("%s declares %s, which the server does not serve", specPath, op)
		}
	}
	if len(served) == 0 {
		t.Fatal("the server registered no routes")
	}
}

var fiberParam = regexp.MustCompile(`^:([A-Za-z0-9_]+)(<[^>]*>)?\??$`)

// openAPIPath turns a Fiber route path into an OpenAPI path template: ":case" →
// "{case}" (constraints and the optional marker dropped), and a trailing slash dropped
// unless routing is strict.
func openAPIPath(p string, strict bool) string {
	if !strict && len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if m := fiberParam.FindStringSubmatch(s); m != nil {
			segs[i] = "{" + m[1] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func TestOpenAPIPath(t *testing.T) {
	tests := []struct {
		in     string
		strict bool
		want   string
	}{
		{"/healthz", false, "/healthz"},
		{"/v1/cases/", false, "/v1/cases"},
		{"/v1/cases/", true, "/v1/cases/"},
		{"/", false, "/"},
		{"/v1/cases/:case/evidence/:evidence", false, "/v1/cases/{case}/evidence/{evidence}"},
		{"/v1/admin/users/:id<minLen(1)>", false, "/v1/admin/users/{id}"},
		{"/v1/x/:opt?", false, "/v1/x/{opt}"},
		{"/static/*", false, "/static/*"},
	}
	for _, tt := range tests {
		if got := openAPIPath(tt.in, tt.strict); got != tt.want {
			t.Errorf("openAPIPath(%q, %v) = %q, want %q", tt.in, tt.strict, got, tt.want)
		}
	}
}

// TestOpenAPILiveResponses sends requests that need no backend (probes, categories,
// and requests refused before any service is used) and checks every real response
// against the document.
func TestOpenAPILiveResponses(t *testing.T) {
	spec := apitest.Load(t, specPath)
	var ready error
	s := New(Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ready: func(context.Context) error { return ready }, MaxUploadBody: 1 << 20})
	tiny := New(Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxUploadBody: 16})

	const caseNo = "QF-330782-2026-000001"
	form := func(field, value string) (string, string) {
		var b strings.Builder
		w := multipart.NewWriter(&b)
		_ = w.WriteField(field, value)
		_ = w.Close()
		return b.String(), w.FormDataContentType()
	}
	unknownField, unknownFieldCT := form("bogus", "x")
	bigForm, bigFormCT := form("description", strings.Repeat("举", 100))

	tests := []struct {
		name        string
		srv         *Server
		method      string
		path        string
		contentType string
		body        string
		header      map[string]string
		unready     bool
		want        int
		wantCode    string // error.code, for error responses
	}{
		{name: "health", method: "GET", path: "/healthz", want: 200},
		{name: "ready", method: "GET", path: "/readyz", want: 200},
		{name: "not ready", method: "GET", path: "/readyz", unready: true, want: 503},
		{name: "metrics", method: "GET", path: "/metrics", want: 200},
		{name: "categories", method: "GET", path: "/v1/categories", want: 200},

		{name: "report: wrong content type", method: "POST", path: "/v1/reports", contentType: "text/plain", body: "hi",
			want: 415, wantCode: "unsupported"},
		{name: "report: malformed JSON", method: "POST", path: "/v1/reports", contentType: "application/json", body: "{",
			want: 400, wantCode: "invalid_input"},
		{name: "report: unknown field", method: "POST", path: "/v1/reports", contentType: "application/json",
			body: `{"category":"other","ip":"10.0.0.1"}`, want: 400, wantCode: "invalid_input"},
		{name: "report: wrong type, English", method: "POST", path: "/v1/reports", contentType: "application/json",
			body: `{"anonymous":"yes"}`, header: map[string]string{"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"},
			want: 400, wantCode: "invalid_input"},
		{name: "report: unknown source", method: "POST", path: "/v1/reports", contentType: "application/json",
			body: `{"source":"fax"}`, want: 400, wantCode: "invalid_input"},
		{name: "report form: unknown field", method: "POST", path: "/v1/reports", contentType: unknownFieldCT,
			body: unknownField, want: 400, wantCode: "invalid_input"},
		{name: "report form: over the upload limit", srv: tiny, method: "POST", path: "/v1/reports", contentType: bigFormCT,
			body: bigForm, want: 413, wantCode: "too_large"},
		{name: "evidence: no token", method: "POST", path: "/v1/reports/" + caseNo + "/evidence", contentType: unknownFieldCT,
			body: unknownField, want: 401, wantCode: "unauthorized"},

		{name: "session: wrong content type", method: "POST", path: "/v1/followup/session", contentType: "text/plain",
			body: "4111 1111 1111 1111", want: 415, wantCode: "unsupported"},
		{name: "session: wrong type", method: "POST", path: "/v1/followup/session", contentType: "application/json",
			body: `{"receipt_code":4111111111111111}`, want: 400, wantCode: "invalid_input"},
		{name: "session: body too large", method: "POST", path: "/v1/followup/session", contentType: "application/json",
			body: `{"receipt_code":"` + strings.Repeat("1", 70<<10) + `"}`, want: 413, wantCode: "too_large",
			// The server answers before reading the whole body; without this, Fiber's test
			// connection reads the rest as a next request and fails.
			header: map[string]string{"Connection": "close"}},
		{name: "follow-up case: no token", method: "GET", path: "/v1/followup/case", want: 401, wantCode: "unauthorized"},
		{name: "follow-up message: no token", method: "POST", path: "/v1/followup/messages", contentType: "application/json",
			body: `{"body":"x"}`, want: 401, wantCode: "unauthorized"},

		{name: "login: empty", method: "POST", path: "/v1/auth/login", contentType: "application/json", body: `{}`,
			want: 401, wantCode: "unauthorized"},
		{name: "login: operator injection", method: "POST", path: "/v1/auth/login", contentType: "application/json",
			body: `{"username":{"$ne":""},"password":"x"}`, want: 400, wantCode: "invalid_input"},
		{name: "refresh: wrong content type", method: "POST", path: "/v1/auth/refresh", contentType: "text/plain",
			body: "x", want: 415, wantCode: "unsupported"},
		{name: "logout: no token", method: "POST", path: "/v1/auth/logout", want: 401, wantCode: "unauthorized"},
		{name: "me: no token", method: "GET", path: "/v1/auth/me", want: 401, wantCode: "unauthorized"},
		{name: "me: not a bearer token", method: "GET", path: "/v1/auth/me", header: map[string]string{"Authorization": "Basic eDp5"},
			want: 401, wantCode: "unauthorized"},
		{name: "create user: no token", method: "POST", path: "/v1/admin/users", contentType: "application/json", body: `{}`,
			want: 401, wantCode: "unauthorized"},
		{name: "update user: no token", method: "PATCH", path: "/v1/admin/users/u1", contentType: "application/json",
			body: `{"disabled":true}`, want: 401, wantCode: "unauthorized"},
		{name: "list users: no token", method: "GET", path: "/v1/admin/users", want: 401, wantCode: "unauthorized"},
		{name: "password reset: no token", method: "POST", path: "/v1/admin/users/u1/password-reset", want: 401, wantCode: "unauthorized"},
		{name: "totp reset: no token", method: "POST", path: "/v1/admin/users/u1/totp-reset", want: 401, wantCode: "unauthorized"},
		{name: "unlock: no token", method: "POST", path: "/v1/admin/users/u1/unlock", want: 401, wantCode: "unauthorized"},
		{name: "change password: no token", method: "POST", path: "/v1/auth/password", contentType: "application/json",
			body: `{"current_password":"a","new_password":"b"}`, want: 401, wantCode: "unauthorized"},
		{name: "totp enroll: no token", method: "POST", path: "/v1/auth/totp/enroll", want: 401, wantCode: "unauthorized"},
		{name: "totp confirm: no token", method: "POST", path: "/v1/auth/totp/confirm", contentType: "application/json",
			body: `{"code":"123456"}`, want: 401, wantCode: "unauthorized"},
		{name: "cases: no token", method: "GET", path: "/v1/cases", want: 401, wantCode: "unauthorized"},
		{name: "cases with slash: no token", method: "GET", path: "/v1/cases/?limit=10", want: 401, wantCode: "unauthorized"},
		{name: "case: no token", method: "GET", path: "/v1/cases/" + caseNo, want: 401, wantCode: "unauthorized"},
		{name: "staff message: no token", method: "POST", path: "/v1/cases/" + caseNo + "/messages", contentType: "application/json",
			body: `{"body":"x"}`, want: 401, wantCode: "unauthorized"},
		{name: "evidence download: no token", method: "GET", path: "/v1/cases/" + caseNo + "/evidence/abc", want: 401,
			wantCode: "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv
			if srv == nil {
				srv = s
			}
			ready = nil
			if tt.unready {
				ready = errors.New("database unreachable")
			}
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.App.Test(req, fiber.TestConfig{Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			body := spec.CheckHTTP(t, req, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.want, body)
			}
			if tt.wantCode != "" {
				var e errorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.wantCode {
					t.Errorf("error code %q (%v), want %q; body %s", e.Error.Code, err, tt.wantCode, body)
				}
			}
		})
	}
}

// TestOpenAPIResponseTypes fills every response type the handlers send, as they build
// it, and checks it against the document: a field added to or renamed in a Go type
// without the document (or the reverse) fails here, before any client sees it.
func TestOpenAPIResponseTypes(t *testing.T) {
	spec := apitest.Load(t, specPath)
	at := time.Date(2026, 3, 2, 1, 30, 0, 0, time.UTC)
	lat, lng := 29.3, 120.07
	ev := intake.Evidence{ID: "ev1", ContentType: "image/jpeg", Size: 123456, SHA256Received: strings.Repeat("a", 64),
		SHA256Stored: strings.Repeat("b", 64), MetadataRemoved: true, UploadedBy: "liaison:u7", UploadedAt: at}
	msg := &intake.Message{ID: "m1", CaseID: "c1", From: "staff", Kind: "message", AuthorID: "u1", Body: "请补充材料", CreatedAt: at}
	full := &intake.Case{
		ID: "c1", Number: "QF-330782-2026-000001", Source: "app", Category: "arbitrary_fees",
		Subject:     intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: "53330000501874064B", Name: "某商会"}},
		Description: "违规收取会费", Location: intake.Location{Division: "330782", Address: "稠城街道", Lat: &lat, Lng: &lng},
		OccurredOn: "2026-02", RealName: true,
		Identity: &intake.SealedIdentity{Ciphertext: []byte("age"), Recipients: []string{"age1a", "age1b"}, SealedAt: at},
		Status:   intake.StatusRegistered, UnitID: "mz-330782",
		Decision: intake.Decision{UnitID: "mz-330782", UnitName: "义乌市民政局", Reason: "登记管理机关", Router: "first/1",
			Inputs: map[string]string{"division": "330782"}, Fallback: true, DecidedAt: at},
		Warnings:   []intake.Warning{{Field: "subject.organization.credit_code", Code: "credit_code_check_failed", Message: "校验位不符"}},
		ReceivedAt: at, AcceptanceDue: "2026-03-23", Evidence: []intake.Evidence{ev},
		NewActivity: true, ReporterActivityAt: at, ReporterActivityN: 2,
	}
	anon := &intake.Case{
		ID: "c2", Number: "QF-330782-2026-000002", Source: "wechat", Category: "official_discipline",
		Subject:     intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某"}},
		Description: "公款吃喝", Location: intake.Location{Division: "330782001"},
		Status: intake.StatusRegistered, Decision: intake.Decision{UnitID: "jw-330782", UnitName: "义乌市纪委监委", Reason: "r", Router: "first/1", DecidedAt: at},
		ReceivedAt: at,
	}
	staffView := func(cs *intake.Case) staffCaseView { // as getCase builds it
		v := staffCaseView{caseSummary: summaryOf(cs), Source: cs.Source, Subject: cs.Subject, Description: cs.Description,
			Location: cs.Location, OccurredOn: cs.OccurredOn, Workflow: workflowOf(cs), Decision: decisionOf(cs.Decision), Warnings: nonNil(cs.Warnings),
			Evidence: evidenceViews(cs.Evidence), Messages: messageViews([]*intake.Message{msg})}
		if cs.Identity != nil {
			v.Identity = identityView{Sealed: true, SealedOnDevice: cs.Identity.SealedOnDevice, Recipients: len(cs.Identity.Recipients)}
		}
		return v
	}
	reporterView := func(cs *intake.Case) reporterCaseView { // as followUpCase builds it
		return reporterCaseView{CaseNumber: cs.Number, Status: string(cs.Status), StatusLabel: statusLabel(cs.Status),
			Category: categoryOf(cs.Category), Unit: unitRef{Name: cs.Decision.UnitName}, RealName: cs.RealName,
			ReceivedAt: wireTime(cs.ReceivedAt), AcceptanceDue: cs.AcceptanceDue, Evidence: evidenceViews(cs.Evidence),
			Messages: messageViews(nil)}
	}
	filed := func(cs *intake.Case, estimated bool) filedResponse { // as fileReport builds it
		return filedResponse{CaseNumber: cs.Number, ReceiptCode: "4111 1111 1111 1111", Status: string(cs.Status),
			StatusLabel: statusLabel(cs.Status), RealName: cs.RealName, Unit: unitRef{Name: cs.Decision.UnitName},
			ReceivedAt: wireTime(cs.ReceivedAt), AcceptanceDue: cs.AcceptanceDue, AcceptanceDueEstimated: estimated,
			Warnings: nonNil(cs.Warnings), Evidence: evidenceViews(cs.Evidence), FollowUpToken: "eyJ.x.y",
			FollowUpExpiresAt: wireTime(at.Add(30 * time.Minute)), Notice: "请抄写并妥善保存回执码"}
	}
	outside := &intake.Case{
		ID: "c3", Number: "QF-330000-2026-000003", Source: "app", Category: "other",
		Subject:     intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{Name: "上海某商会"}},
		Description: "x", Location: intake.Location{Division: "330000", ReportedDivision: "310101"},
		Status: intake.StatusRegistered, Decision: intake.Decision{UnitID: "330000-xf", UnitName: "浙江省纪委监委信访室", Reason: "r", Router: "rules/1",
			Fallback: true, FallbackReason: "outside_zhejiang", Inputs: map[string]string{"reported_division": "310101"}, DecidedAt: at},
		ReceivedAt: at,
	}
	unsure := intake.Decision{UnitID: "330782-mz-pz", UnitName: "派驻义乌市民政局纪检监察组", Reason: "r", Router: "rules/1", RuleVersion: 1, DecidedAt: at,
		Candidates: []intake.Candidate{{UnitID: "330782-mz-pz", UnitName: "派驻义乌市民政局纪检监察组", RuleID: "default-org-by-place", Chosen: true, Detail: "适用规则"},
			{UnitID: "330782-mz", UnitName: "义乌市民政局", RuleID: "default-org-by-place", Excluded: "possible_recusal", Detail: "被举报人的工作单位“义乌民政”可能就是义乌市民政局"}}}
	unit := routing.RegistryUnit{Unit: routing.Unit{ID: "330782-wl", Name: "义乌市文化和广电旅游体育局", Kind: routing.KindSupervisor, Division: "330782", Level: routing.LevelCounty},
		Parent: "330700-wl", Active: true, Aliases: []string{"义乌文旅局"}}
	staff := userView{ID: "u1", Username: "wang.li", DisplayName: "王力", Role: string(accounts.RoleStaff), UnitID: "mz-330782", UnitName: "义乌市民政局"}
	liaison := userView{ID: "u7", Username: "liaison7", Role: string(accounts.RoleLiaison), Division: "330782001", Disabled: true}

	tests := []struct {
		name   string
		method string
		path   string
		status int
		body   any
	}{
		{"filed, real name", "POST", "/v1/reports", 201, filed(full, true)},
		{"filed, anonymous", "POST", "/v1/reports", 201, filed(anon, false)},
		{"filed, replayed", "POST", "/v1/reports", 200, filed(full, false)},
		{"evidence added", "POST", "/v1/reports/QF-330782-2026-000001/evidence", 201,
			fiber.Map{"case_number": full.Number, "evidence": evidenceViews(full.Evidence)}},
		{"evidence added, one file already stored", "POST", "/v1/reports/QF-330782-2026-000001/evidence", 201,
			fiber.Map{"case_number": full.Number, "evidence": func() []evidenceView {
				v := evidenceViews(full.Evidence)
				v[0].AlreadyStored = true
				return v
			}()}},
		{"follow-up session", "POST", "/v1/followup/session", 200,
			fiber.Map{"token": "eyJ.x.y", "expires_at": wireTime(at), "case_number": full.Number}},
		{"reporter case, real name", "GET", "/v1/followup/case", 200, reporterView(full)},
		{"reporter case, anonymous", "GET", "/v1/followup/case", 200, reporterView(anon)},
		{"reporter message", "POST", "/v1/followup/messages", 201, messageViews([]*intake.Message{msg})[0]},
		{"login", "POST", "/v1/auth/login", 200, tokenResponse{AccessToken: "a", RefreshToken: "r", TokenType: "Bearer",
			ExpiresAt: wireTime(at), User: staff}},
		{"refresh", "POST", "/v1/auth/refresh", 200, tokenResponse{AccessToken: "a", RefreshToken: "r", TokenType: "Bearer",
			ExpiresAt: wireTime(at), User: liaison}},
		{"login, restricted", "POST", "/v1/auth/login", 200, tokenResponse{AccessToken: "a", RefreshToken: "r", TokenType: "Bearer",
			ExpiresAt: wireTime(at), User: userView{ID: "u0", Username: "admin", Role: string(accounts.RoleAdmin), MustChange: true}, Restriction: "password_change_required"}},
		{"me, admin", "GET", "/v1/auth/me", 200, userView{ID: "u0", Username: "admin", Role: string(accounts.RoleAdmin), TOTPEnabled: true, LastLoginAt: wireTime(at)}},
		{"user list", "GET", "/v1/admin/users", 200, fiber.Map{"users": []userView{staff, liaison}, "next_after": "wang.li"}},
		{"password reset", "POST", "/v1/admin/users/u7/password-reset", 200, fiber.Map{"password": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "user": liaison}},
		{"totp reset", "POST", "/v1/admin/users/u7/totp-reset", 200, liaison},
		{"unlock", "POST", "/v1/admin/users/u7/unlock", 200, liaison},
		{"totp enroll", "POST", "/v1/auth/totp/enroll", 200, fiber.Map{"secret": "JBSWY3DPEHPK3PXP", "otpauth_uri": "otpauth://totp/Qingfeng:admin?secret=JBSWY3DPEHPK3PXP"}},
		{"totp confirm", "POST", "/v1/auth/totp/confirm", 200, fiber.Map{"recovery_codes": []string{"ABCDE-FGHIJ"}}},
		{"must change password", "GET", "/v1/cases", 403, errorBody{Error: errorDetail{Code: "password_change_required", Message: "请先修改初始密码或重置后的密码"}}},
		{"second factor missing", "POST", "/v1/auth/login", 401, errorBody{Error: errorDetail{Code: "totp_required", Message: "请输入动态验证码或恢复码"}}},
		{"create user", "POST", "/v1/admin/users", 201, liaison},
		{"update user", "PATCH", "/v1/admin/users/u7", 200, staff},
		{"case list", "GET", "/v1/cases?limit=2", 200,
			fiber.Map{"cases": []caseSummary{summaryOf(full), summaryOf(anon)}, "next_cursor": "c2"}},
		{"case list, empty", "GET", "/v1/cases", 200, fiber.Map{"cases": []caseSummary{}, "next_cursor": ""}},
		{"case list by organization", "GET", "/v1/cases?org=%E6%9F%90%E6%9F%90%E6%85%88%E5%96%84&sort=due", 200,
			fiber.Map{"cases": []caseSummary{summaryOf(full)}, "next_cursor": ""}},
		{"case list, organization too short", "GET", "/v1/cases?org=%E6%9F%90", 400, errorBody{Error: errorDetail{Code: "invalid_input", Message: "提交的内容有误",
			Fields: map[string]fieldError{"org": {Code: "too_short", Message: "请输入被举报组织的统一社会信用代码（18位），或名称的至少两个字"}}}}},
		{"staff case, real name", "GET", "/v1/cases/QF-330782-2026-000001", 200, staffView(full)},
		{"staff case, anonymous", "GET", "/v1/cases/QF-330782-2026-000002", 200, staffView(anon)},
		{"staff message", "POST", "/v1/cases/QF-330782-2026-000001/messages", 201, messageViews([]*intake.Message{msg})[0]},
		{"staff case, outside Zhejiang", "GET", "/v1/cases/QF-330000-2026-000003", 200, staffView(outside)},
		{"routing explain, possible recusal", "POST", "/v1/routing/explain", 200, fiber.Map{"decision": decisionOf(unsure), "warnings": []intake.Warning{}}},
		{"unit", "GET", "/v1/routing/units/330782-wl", 200, unitOf(unit)},
		{"unit without aliases", "GET", "/v1/routing/units/330782-mz", 200, unitOf(routing.RegistryUnit{Unit: routing.Unit{ID: "330782-mz", Name: "义乌市民政局", Kind: routing.KindCivilAffairs, Division: "330782", Level: routing.LevelCounty}, Active: true})},
		{"unit alias added", "POST", "/v1/routing/units/330782-wl/aliases", 200, unitOf(unit)},
		{"unit alias removed", "DELETE", "/v1/routing/units/330782-wl/aliases/%E4%B9%89", 200, unitOf(unit)},
		{"error with fields", "POST", "/v1/reports", 400, errorBody{Error: errorDetail{Code: "invalid_input", Message: "提交的内容有误",
			Fields: map[string]fieldError{"identity.mobile": {Code: "invalid_mobile", Message: "手机号码格式不正确"}}}}},
		{"error with allowed", "POST", "/v1/reports", 415, errorBody{Error: errorDetail{Code: "unsupported", Message: "仅支持",
			Allowed: []string{"image/jpeg", "application/pdf"}}}},
		{"rate limited", "POST", "/v1/auth/login", 429, errorBody{Error: errorDetail{Code: "rate_limited", Message: "登录失败次数较多"}}},
		{"pow required", "POST", "/v1/followup/session", 428, errorBody{Error: errorDetail{Code: "pow_required", Message: "需要计算验证",
			PoW: challengeView(pow.Challenge{Token: "v1.receipt.12.1.n.m", Purpose: pow.Receipt, Difficulty: 12, ExpiresAt: time.Now()})}}},
		{"pow challenge", "GET", "/v1/pow/challenge", 200, challengeView(pow.Challenge{Token: "v1.report.0.1.n.m", Purpose: pow.Report, ExpiresAt: time.Now()})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			spec.CheckResponse(t, tt.method, tt.path, tt.status, "application/json; charset=utf-8", b)
		})
	}
}
