package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The staff console (/console): the same accounts, roles and scopes as the API, in
// server-rendered pages. A console session is the accounts session a login opens —
// the one the API's refresh token names — so logging out, disabling the account or
// resetting its credentials ends it at once, exactly as for API clients. The cookie
// holds that session's id, the account id and two times (sign-in, last activity) under
// an HMAC with the form key; nothing else is kept about the browser. Each request signs
// a short access token for the session and hands it to accounts.Service.Authenticate:
// the API's own check, not a copy of it.

const (
	consoleCookie = "qf_console"
	// consoleIdle ends a console session left alone this long; consoleMaxAge ends any
	// console session this long after sign-in, active or not.
	consoleIdle   = 30 * time.Minute
	consoleMaxAge = 12 * time.Hour
	// consoleTouch is how stale the last-activity time may get before the cookie is
	// written again: not on every request.
	consoleTouch = time.Minute

	consoleLoginPurpose = "console-login"
	consolePurpose      = "console" // every form of a signed-in page, bound to its session
)

// consoleSession is a decoded console cookie.
type consoleSession struct {
	SessionID, UserID string
	SignedIn, Seen    time.Time
}

func (s *Server) consoleMAC(body string) string {
	m := hmac.New(sha256.New, s.d.FormKey)
	m.Write([]byte("qingfeng/console-session/v1\x00" + body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) encodeConsoleSession(cs consoleSession) string {
	body := cs.SessionID + "." + cs.UserID + "." + strconv.FormatInt(cs.SignedIn.Unix(), 10) + "." + strconv.FormatInt(cs.Seen.Unix(), 10)
	return body + "." + s.consoleMAC(body)
}

// decodeConsoleSession checks a cookie's MAC and both timeouts.
func (s *Server) decodeConsoleSession(v string, now time.Time) (consoleSession, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 || len(v) > 512 {
		return consoleSession{}, false
	}
	body, mac := v[:i], v[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.consoleMAC(body))) {
		return consoleSession{}, false
	}
	parts := strings.Split(body, ".")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" {
		return consoleSession{}, false
	}
	in, err1 := strconv.ParseInt(parts[2], 10, 64)
	seen, err2 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil {
		return consoleSession{}, false
	}
	cs := consoleSession{SessionID: parts[0], UserID: parts[1], SignedIn: time.Unix(in, 0), Seen: time.Unix(seen, 0)}
	if now.Sub(cs.Seen) > consoleIdle || now.Sub(cs.SignedIn) > consoleMaxAge || cs.Seen.After(now.Add(time.Minute)) {
		return consoleSession{}, false
	}
	return cs, true
}

func (s *Server) setConsoleCookie(c fiber.Ctx, cs consoleSession) {
	// A session cookie (no expiry): closing the browser ends it too.
	c.Cookie(&fiber.Cookie{Name: consoleCookie, Value: s.encodeConsoleSession(cs), Path: "/console",
		HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Secure: s.secureCookies(c)})
}

func (s *Server) clearConsoleCookie(c fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: consoleCookie, Value: "", Path: "/console", Expires: time.Unix(0, 0), MaxAge: -1,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Secure: s.secureCookies(c)})
}

// consoleAuthenticate turns the cookie into the principal the API's handlers use, or
// ok=false. The account may still have to change its password or enrol a second
// factor: the caller decides with Restriction.
func (s *Server) consoleAuthenticate(c fiber.Ctx) (*principal, consoleSession, bool) {
	now := time.Now()
	cs, ok := s.decodeConsoleSession(c.Cookies(consoleCookie), now)
	if !ok {
		return nil, cs, false
	}
	tok, err := s.d.Tokens.Sign(accounts.Claims{Subject: cs.UserID, Audience: accounts.AudienceStaff, SessionID: cs.SessionID,
		ID: randomHex(8), ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		return nil, cs, false
	}
	u, claims, err := s.d.Accounts.Authenticate(c.Context(), tok)
	if err != nil {
		return nil, cs, false
	}
	if now.Sub(cs.Seen) > consoleTouch {
		cs.Seen = now
		s.setConsoleCookie(c, cs)
	}
	return &principal{user: u, claims: claims}, cs, true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// consoleRestrictionPath is where an account with a restriction is sent.
func consoleRestrictionPath(r *qingfeng.Error) string {
	if r == accounts.ErrPasswordChangeRequired {
		return "/console/password"
	}
	return "/console/totp"
}

// consoleAuth admits a console session of one of roles (any if none). Without one the
// browser goes to the sign-in page; an account that must change its password or enrol
// a second factor goes to that page (restricted lists the restrictions a route serves).
func (s *Server) consoleAuth(restricted []*qingfeng.Error, roles ...accounts.Role) fiber.Handler {
	return func(c fiber.Ctx) error {
		p, _, ok := s.consoleAuthenticate(c)
		if !ok {
			if c.Cookies(consoleCookie) != "" {
				s.clearConsoleCookie(c)
				return c.Redirect().Status(fiber.StatusSeeOther).To("/console/login?expired=1")
			}
			return c.Redirect().Status(fiber.StatusSeeOther).To("/console/login")
		}
		if r := s.d.Accounts.Restriction(p.user); r != nil {
			allowed := false
			for _, a := range restricted {
				allowed = allowed || a == r
			}
			if !allowed {
				return c.Redirect().Status(fiber.StatusSeeOther).To(consoleRestrictionPath(r))
			}
		}
		if len(roles) > 0 {
			in := false
			for _, r := range roles {
				in = in || p.user.Role == r
			}
			if !in {
				return qingfeng.ErrForbidden
			}
		}
		c.Locals(principalKey{}, p)
		return c.Next()
	}
}

// consoleFormValues reads a signed-in page's form, every value of a repeated field,
// and checks its CSRF token.
func (s *Server) consoleFormValues(c fiber.Ctx) (url.Values, error) {
	v, err := s.pageForm(c)
	if err != nil {
		return nil, err
	}
	if err := s.checkCSRF(v.Get("_csrf"), consolePurpose, consoleBinding(principalOf(c))); err != nil {
		return nil, err
	}
	return v, nil
}

// consoleForm is consoleFormValues with the first value of each field.
func (s *Server) consoleForm(c fiber.Ctx) (map[string]string, error) {
	v, err := s.consoleFormValues(c)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(v))
	for k := range v {
		out[k] = v.Get(k)
	}
	return out, nil
}

// consoleBinding ties forms to the accounts session, without naming it.
func consoleBinding(p *principal) string { return sessionBinding("console:" + p.claims.SessionID) }

var roleLabels = map[accounts.Role]string{accounts.RoleAdmin: "系统管理员", accounts.RoleStaff: "纪检监察/民政工作人员",
	accounts.RoleLiaison: "联络员", accounts.RoleCustodian: "保密员"}

// consolePage is the frame of a signed-in page: who, the menu for the role, the CSRF
// token for its forms.
func (s *Server) consolePage(c fiber.Ctx, title, current string) web.ConsolePage {
	p := principalOf(c)
	cp := web.ConsolePage{Page: web.Page{Title: title, Nav: "console"}}
	if p == nil || p.user == nil {
		return cp
	}
	u := p.user
	cp.User = u.DisplayName
	if cp.User == "" {
		cp.User = u.Username
	}
	cp.RoleLabel = roleLabels[u.Role]
	switch {
	case u.UnitID != "":
		cp.Scope, _ = s.d.UnitName(u.UnitID)
	case u.Division != "":
		cp.Scope = divisionName(u.Division)
	}
	cp.SessionCSRF = s.csrfToken(consolePurpose, consoleBinding(p))
	if s.d.Accounts.Restriction(u) == nil {
		menu := []web.MenuItem{{Href: "/console", Label: "工作台"}}
		switch u.Role {
		case accounts.RoleStaff:
			menu = append(menu, web.MenuItem{Href: "/console/cases", Label: "案件"}, web.MenuItem{Href: "/console/notifications", Label: "提醒"},
				web.MenuItem{Href: "/console/stats", Label: "统计"}, web.MenuItem{Href: "/console/routing/explain", Label: "分办试算"})
		case accounts.RoleAdmin:
			menu = append(menu, web.MenuItem{Href: "/console/admin/users", Label: "账号"}, web.MenuItem{Href: "/console/admin/recipients", Label: "公钥"},
				web.MenuItem{Href: "/console/admin/rules", Label: "分办规则"}, web.MenuItem{Href: "/console/admin/units", Label: "单位"},
				web.MenuItem{Href: "/console/admin/calendar", Label: "节假日"}, web.MenuItem{Href: "/console/admin/import", Label: "名录导入"},
				web.MenuItem{Href: "/console/admin/audit", Label: "审计日志"},
				web.MenuItem{Href: "/console/stats", Label: "统计"})
		case accounts.RoleCustodian:
			menu = append(menu, web.MenuItem{Href: "/console/custody", Label: "身份披露审批"})
		case accounts.RoleLiaison:
			menu = append(menu, web.MenuItem{Href: "/console/ledger", Label: "捐赠台账"})
		}
		for i := range menu {
			menu[i].Current = menu[i].Href == current
		}
		cp.Menu = menu
	}
	return cp
}

func (s *Server) registerConsole() {
	mustChange, mustEnrol := accounts.ErrPasswordChangeRequired, accounts.ErrTOTPEnrollmentRequired
	either := []*qingfeng.Error{mustChange, mustEnrol}
	s.page(fiber.MethodGet, "/console/login", "console.login", s.consoleLoginPage)
	s.page(fiber.MethodPost, "/console/login", "console.login.submit", s.consoleLogin)
	s.consoleRoute(fiber.MethodPost, "/console/logout", "console.logout", s.consoleAuth(either), s.consoleLogout)
	s.consoleRoute(fiber.MethodGet, "/console/password", "console.password", s.consoleAuth(either), s.consolePasswordPage)
	s.consoleRoute(fiber.MethodPost, "/console/password", "console.password.submit", s.consoleAuth(either), s.consolePassword)
	enrol := s.consoleAuth([]*qingfeng.Error{mustEnrol})
	s.consoleRoute(fiber.MethodGet, "/console/totp", "console.totp", enrol, s.consoleTOTPPage)
	s.consoleRoute(fiber.MethodPost, "/console/totp/enroll", "console.totp.enroll", enrol, s.consoleTOTPEnroll)
	s.consoleRoute(fiber.MethodPost, "/console/totp/confirm", "console.totp.confirm", enrol, s.consoleTOTPConfirm)
	s.consoleRoute(fiber.MethodGet, "/console", "console.home", s.consoleAuth(nil), s.consoleHome)

	staff := s.consoleAuth(nil, accounts.RoleStaff)
	s.consoleRoute(fiber.MethodGet, "/console/cases", "console.cases", staff, s.consoleQueue)
	s.consoleRoute(fiber.MethodGet, "/console/cases/:case", "console.case", staff, s.consoleCase)
	s.consoleRoute(fiber.MethodPost, "/console/cases/:case", "console.case.act", staff, s.consoleCaseAct)
	s.consoleRoute(fiber.MethodGet, "/console/cases/:case/evidence/:evidence", "console.evidence", staff, s.consoleEvidenceFile)
	s.consoleRoute(fiber.MethodGet, "/console/cases/:case/evidence/:evidence/view", "console.evidence.view", staff, s.consoleEvidencePage)
	s.consoleRoute(fiber.MethodGet, "/console/notifications", "console.notifications", staff, s.consoleNotifications)
	statsRoles := s.consoleAuth(nil, accounts.RoleStaff, accounts.RoleAdmin)
	s.consoleRoute(fiber.MethodGet, "/console/stats", "console.stats", statsRoles, s.consoleStats)
	s.consoleRoute(fiber.MethodGet, "/console/stats/cases.csv", "console.stats.csv", statsRoles, s.casesCSV)
	// The explain tool: the roles of POST /v1/routing/explain.
	explainRoles := s.consoleAuth(nil, accounts.RoleStaff, accounts.RoleAdmin)
	s.consoleRoute(fiber.MethodGet, "/console/routing/explain", "console.routing.explain", explainRoles, s.consoleExplainPage)
	s.consoleRoute(fiber.MethodPost, "/console/routing/explain", "console.routing.explain.run", explainRoles, s.consoleExplain)

	liaison := s.consoleAuth(nil, accounts.RoleLiaison)
	s.consoleRoute(fiber.MethodGet, "/console/ledger", "console.ledger.lookup", liaison, s.consoleLedgerLookup)
	s.consoleRoute(fiber.MethodGet, "/console/ledger/:code", "console.ledger", liaison, s.consoleLedger)
	s.consoleRoute(fiber.MethodPost, "/console/ledger/:code", "console.ledger.act", liaison, s.consoleLedgerAct)
	s.consoleRoute(fiber.MethodGet, "/console/ledger/:code/export.csv", "console.ledger.csv", liaison, s.ledgerCSV)
	s.consoleRoute(fiber.MethodGet, "/console/ledger/:code/photos/:batch/:file", "console.ledger.photo", liaison, s.consoleLedgerPhoto)

	admin := s.consoleAuth(nil, accounts.RoleAdmin)
	s.consoleRoute(fiber.MethodGet, "/console/admin/users", "console.admin.users", admin, s.consoleUsers)
	s.consoleRoute(fiber.MethodPost, "/console/admin/users", "console.admin.users.act", admin, s.consoleUsersAct)
	s.consoleRoute(fiber.MethodGet, "/console/admin/recipients", "console.admin.recipients", admin, s.consoleRecipients)
	s.consoleRoute(fiber.MethodPost, "/console/admin/recipients", "console.admin.recipients.act", admin, s.consoleRecipientsAct)
	s.consoleRoute(fiber.MethodGet, "/console/admin/rules", "console.admin.rules", admin, s.consoleRules)
	s.consoleRoute(fiber.MethodPost, "/console/admin/rules", "console.admin.rules.act", admin, s.consoleRulesAct)
	s.consoleRoute(fiber.MethodGet, "/console/admin/units", "console.admin.units", admin, s.consoleUnit)
	s.consoleRoute(fiber.MethodPost, "/console/admin/units", "console.admin.units.act", admin, s.consoleUnitAct)
	s.consoleRoute(fiber.MethodGet, "/console/admin/calendar", "console.admin.calendar", admin, s.consoleCalendar)
	s.consoleRoute(fiber.MethodPost, "/console/admin/calendar", "console.admin.calendar.upload", admin, s.consoleCalendarUpload)
	s.consoleRoute(fiber.MethodGet, "/console/admin/import", "console.admin.import", admin, s.consoleImport)
	s.consoleRoute(fiber.MethodPost, "/console/admin/import", "console.admin.import.upload", admin, s.consoleImportUpload)
	s.consoleRoute(fiber.MethodGet, "/console/admin/audit", "console.admin.audit", admin, s.consoleAudit)
	s.consoleRoute(fiber.MethodPost, "/console/admin/audit/verify", "console.admin.audit.verify", admin, s.consoleAuditVerify)

	custodian := s.consoleAuth(nil, accounts.RoleCustodian)
	s.consoleRoute(fiber.MethodGet, "/console/custody", "console.custody", custodian, s.consoleCustody)
	s.consoleRoute(fiber.MethodPost, "/console/custody/disclosures/:id", "console.custody.decide", custodian, s.consoleDecide)
}

// consoleRoute registers a signed-in console page: the page headers, the session
// check, then the handler; an error of either becomes an HTML page.
func (s *Server) consoleRoute(method, path, name string, auth, h fiber.Handler) {
	wrap := func(h fiber.Handler) fiber.Handler {
		return func(c fiber.Ctx) error {
			if err := h(c); err != nil {
				return s.pageError(c, err)
			}
			return nil
		}
	}
	s.App.Add([]string{method}, path, pageHeaders(true), wrap(auth), wrap(h)).Name(pageRoutePrefix + name)
}

func (s *Server) consoleLoginView() web.ConsoleLoginPage {
	p := web.ConsoleLoginPage{ConsolePage: web.ConsolePage{Page: web.Page{Title: "工作人员登录", Nav: "console"}}}
	p.Form.CSRF = s.csrfToken(consoleLoginPurpose, "")
	p.Errors = map[string]string{}
	p.Values = map[string]string{}
	return p
}

// consoleLoginPage is GET /console/login.
func (s *Server) consoleLoginPage(c fiber.Ctx) error {
	if p, _, ok := s.consoleAuthenticate(c); ok && p != nil {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console")
	}
	p := s.consoleLoginView()
	p.Expired = c.Query("expired") == "1"
	p.LoggedOut = c.Query("out") == "1"
	return s.render(c, fiber.StatusOK, "console/login", p)
}

var consoleFieldLabels = map[string]string{"username": "用户名", "password": "密码", "code": "动态验证码或恢复码",
	"current_password": "当前密码", "new_password": "新密码", "reason": "理由", "body": "内容", "to_unit": "接收单位",
	"assignee": "承办人", "disposition": "处置方式", "not_accepted_reason": "不予受理的理由", "outcome": "办结结果",
	"outcome.result": "核查结论", "outcome.false_accusation": "诬告陷害或错告", "duplicate_of": "在先案件编号", "kind": "类型", "action": "操作", "case": "案件编号", "recipient": "公钥", "label": "备注", "id": "编号", "name": "规则名称", "categories": "举报类别", "division_prefix": "区划前缀", "division_level": "层级",
	"primary.relation": "承办单位", "primary.unit": "固定单位", "primary.kind": "单位类型", "primary.division": "区划", "priority": "优先级", "alias": "别名", "file": "文件", "what": "导入什么",
	// The donation ledger's fields (donations/validate.go).
	"amount_fen": "金额", "amount_yuan": "金额（元）", "beneficiary": "受助人", "beneficiary.name": "受助人姓名", "beneficiary.note": "受助人备注",
	"beneficiary.resident_id": "受助人身份证号", "date": "日期", "donor": "捐赠人", "donor.name": "捐赠人名称", "from": "来源",
	"goods": "物资", "goods.item": "物资名称", "goods.quantity": "数量", "goods.unit": "单位", "goods.valuation_fen": "估值",
	"income_type": "收入类型", "note": "备注", "photos": "照片", "project": "项目", "purpose": "用途", "receipt_number": "捐赠票据号",
	"recorded_by": "记录人", "stock": "库存物资", "reversed_from": "被冲销的记录", "reversed_income_type": "被冲销的收入类型", "reversed_kind": "被冲销的类型",
	"reverses": "被冲销的记录", "sign_offs": "签字", "sign_offs.finance_lead": "财务负责人签字", "sign_offs.handler": "经办人签字",
	"sign_offs.project_lead": "项目负责人签字", "sign_offs.secretary_general": "秘书长签字", "verified_by": "核验人", "month": "月份"}

// consoleFormErrors puts an error onto a console form: field messages under their
// names, a summary linking to each (element ids are "f-" + the name, dots as dashes).
func consoleFormErrors(f *web.Form, err error) {
	var qe *qingfeng.Error
	if !errors.As(err, &qe) {
		qe = internal
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if len(qe.Fields) == 0 {
		f.Notice = qe.Message
		return
	}
	for k, fe := range qe.Fields {
		label, ok := consoleFieldLabels[k]
		if !ok {
			label = "输入项" // never the machine name of a field
		}
		f.Errors[k] = fe.Message
		f.Summary = append(f.Summary, web.FieldError{ID: "f-" + strings.ReplaceAll(k, ".", "-"), Label: label, Message: fe.Message})
	}
}

// consoleLogin is POST /console/login: password and, in the same form, the second
// factor — the API's one-request rule. The same backoff as the API's login applies.
func (s *Server) consoleLogin(c fiber.Ctx) error {
	form, err := s.pageForm(c)
	if err != nil {
		return err
	}
	p := s.consoleLoginView()
	p.Values["username"] = form.Get("username")
	fail := func(err error) error {
		consoleFormErrors(&p.Form, err)
		return s.render(c, statusForForm(err), "console/login", p)
	}
	if err := s.checkCSRF(form.Get("_csrf"), consoleLoginPurpose, ""); err != nil {
		return fail(err)
	}
	user, pw, code := strings.TrimSpace(form.Get("username")), form.Get("password"), strings.TrimSpace(form.Get("code"))
	if user == "" || pw == "" || len(pw) > 1024 || len(user) > 64 || len(code) > 64 {
		return fail(qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "用户名或密码错误", "wrong username or password"))
	}
	cr := accounts.Credentials{Username: user, Password: pw}
	// Six digits (spaces allowed) is an authenticator code; anything longer a
	// recovery code.
	if digits := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '　' {
			return -1
		}
		return r
	}, code); utf8.RuneCountInString(digits) <= 8 {
		cr.TOTP = code
	} else {
		cr.RecoveryCode = code
	}
	attempt, err := s.d.Backoff.Admit(user, c.Cookies(accounts.DeviceCookieName))
	if err != nil {
		return fail(err)
	}
	t, err := s.d.Accounts.Login(c.Context(), cr)
	attempt.Done(err)
	if err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.ETOTPREQUIRED {
			err = qingfeng.Invalid(map[string]qingfeng.FieldError{"code": {Code: "totp_required",
				Message: "此账号已启用两步验证：请输入验证器应用中的6位动态验证码，或一个恢复码", English: "enter the authenticator code or a recovery code"}})
		}
		return fail(err)
	}
	claims, err := s.d.Tokens.Verify(t.AccessToken, accounts.AudienceStaff)
	if err != nil {
		return err
	}
	v, exp := s.d.Backoff.IssueDevice(t.User.Username)
	c.Cookie(&fiber.Cookie{Name: accounts.DeviceCookieName, Value: v, Path: "/console/login", Expires: exp,
		HTTPOnly: true, Secure: s.secureCookies(c), SameSite: fiber.CookieSameSiteStrictMode})
	now := time.Now()
	s.setConsoleCookie(c, consoleSession{SessionID: claims.SessionID, UserID: t.User.ID, SignedIn: now, Seen: now})
	to := "/console"
	if t.Restriction != nil {
		to = consoleRestrictionPath(t.Restriction)
	}
	return c.Redirect().Status(fiber.StatusSeeOther).To(to)
}

// consoleLogout is POST /console/logout: the accounts session ends (for the API's
// tokens of it too) and the cookie is cleared.
func (s *Server) consoleLogout(c fiber.Ctx) error {
	if _, err := s.consoleForm(c); err != nil {
		return err
	}
	if err := s.d.Accounts.Logout(c.Context(), principalOf(c).claims); err != nil {
		return err
	}
	s.clearConsoleCookie(c)
	return c.Redirect().Status(fiber.StatusSeeOther).To("/console/login?out=1")
}

func (s *Server) consolePasswordView(c fiber.Ctx) web.ConsolePasswordPage {
	p := web.ConsolePasswordPage{ConsolePage: s.consolePage(c, "修改密码", "")}
	p.Required = principalOf(c).user.MustChangePassword
	p.Form.CSRF = p.ConsolePage.SessionCSRF
	p.Errors = map[string]string{}
	return p
}

// consolePasswordPage is GET /console/password.
func (s *Server) consolePasswordPage(c fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, "console/password", s.consolePasswordView(c))
}

// consolePassword is POST /console/password: the API's password change, with its
// backoff on guesses at the current password.
func (s *Server) consolePassword(c fiber.Ctx) error {
	p := s.consolePasswordView(c)
	form, err := s.consoleForm(c)
	if err != nil {
		consoleFormErrors(&p.Form, err)
		return s.render(c, statusForForm(err), "console/password", p)
	}
	pr := principalOf(c)
	cur, next := form["current_password"], form["new_password"]
	if next != form["new_password_again"] {
		err := fieldInvalid("new_password", "mismatch", "两次输入的新密码不一致", "the new passwords differ")
		consoleFormErrors(&p.Form, err)
		return s.render(c, fiber.StatusUnprocessableEntity, "console/password", p)
	}
	if len(cur) > 1024 || len(next) > 1024 {
		err := fieldInvalid("new_password", "weak_password", "密码长度须为12–256位", "password must be 12–256 characters")
		consoleFormErrors(&p.Form, err)
		return s.render(c, statusForForm(err), "console/password", p)
	}
	attempt, err := s.d.Backoff.Admit(pr.user.Username, "")
	if err != nil {
		consoleFormErrors(&p.Form, err)
		return s.render(c, statusForForm(err), "console/password", p)
	}
	err = s.d.Accounts.ChangePassword(c.Context(), pr.user, pr.claims.SessionID, cur, next)
	attempt.Done(err)
	if err != nil {
		consoleFormErrors(&p.Form, err)
		return s.render(c, statusForForm(err), "console/password", p)
	}
	s.recordChange(c, "account.password_change", "", map[string]string{"user": pr.user.ID})
	return c.Redirect().Status(fiber.StatusSeeOther).To("/console?done=password")
}

func (s *Server) consoleTOTPView(c fiber.Ctx) web.ConsoleTOTPPage {
	u := principalOf(c).user
	p := web.ConsoleTOTPPage{ConsolePage: s.consolePage(c, "两步验证", ""), Enabled: u.TOTP.Enabled}
	p.Required = s.d.Accounts.Restriction(u) == accounts.ErrTOTPEnrollmentRequired
	p.Form.CSRF = p.ConsolePage.SessionCSRF
	p.Errors = map[string]string{}
	return p
}

// consoleTOTPPage is GET /console/totp.
func (s *Server) consoleTOTPPage(c fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, "console/totp", s.consoleTOTPView(c))
}

// consoleTOTPEnroll is POST /console/totp/enroll: a new pending secret, shown once
// as text to type into the authenticator app (no QR image: the page loads nothing
// but this origin's files, and a secret in an image URL would land in logs).
func (s *Server) consoleTOTPEnroll(c fiber.Ctx) error {
	p := s.consoleTOTPView(c)
	if _, err := s.consoleForm(c); err != nil {
		consoleFormErrors(&p.Form, err)
		return s.render(c, statusForForm(err), "console/totp", p)
	}
	e, err := s.d.Accounts.EnrollTOTP(c.Context(), principalOf(c).user)
	if err != nil {
		consoleFormErrors(&p.Form, err)
		return s.render(c, statusForForm(err), "console/totp", p)
	}
	p.Secret, p.URI = groupSecret(e.Secret), e.URI
	return s.render(c, fiber.StatusOK, "console/totp", p)
}

// groupSecret spaces a base32 secret in fours, for typing.
func groupSecret(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// consoleTOTPConfirm is POST /console/totp/confirm: the first code turns the factor
// on; the recovery codes are shown once.
func (s *Server) consoleTOTPConfirm(c fiber.Ctx) error {
	p := s.consoleTOTPView(c)
	form, err := s.consoleForm(c)
	if err == nil {
		var codes []string
		codes, err = s.d.Accounts.ConfirmTOTP(c.Context(), principalOf(c).user, form["code"])
		if err == nil {
			s.recordChange(c, "account.totp_enable", "", map[string]string{"user": principalOf(c).user.ID})
			p.RecoveryCodes, p.Enabled, p.Required = codes, true, false
			p.ConsolePage = s.consolePage(c, "两步验证", "")
			return s.render(c, fiber.StatusOK, "console/totp", p)
		}
	}
	consoleFormErrors(&p.Form, err)
	// The secret is not shown again: the confirmation form stays, and starting over
	// gives a new secret.
	p.Confirming = true
	return s.render(c, statusForForm(err), "console/totp", p)
}

// consoleHome is GET /console: the role's work, and honestly what the console does
// not do yet for it.
func (s *Server) consoleHome(c fiber.Ctx) error {
	u := principalOf(c).user
	p := web.ConsoleHomePage{ConsolePage: s.consolePage(c, "工作台", "/console")}
	if c.Query("done") == "password" {
		p.Flash = "密码已修改。"
	}
	switch u.Role {
	case accounts.RoleStaff:
		p.Links = []web.MenuItem{{Href: "/console/cases", Label: "本单位案件"}, {Href: "/console/cases?new_activity=true", Label: "举报人有新留言或新材料的案件"},
			{Href: "/console/notifications", Label: "逾期提醒"}, {Href: "/console/stats", Label: "统计与导出"}, {Href: "/console/routing/explain", Label: "分办试算"}}
	case accounts.RoleCustodian:
		p.Links = []web.MenuItem{{Href: "/console/custody", Label: "待审批的身份披露申请与重新加密任务"}}
	case accounts.RoleLiaison:
		p.Links = []web.MenuItem{{Href: "/console/ledger", Label: "捐赠台账：收入、物资、发放、项目支出、核验、月报公开"}}
	case accounts.RoleAdmin:
		p.Links = []web.MenuItem{{Href: "/console/admin/users", Label: "账号管理"}, {Href: "/console/admin/recipients", Label: "保密员与工作人员公钥"},
			{Href: "/console/admin/rules", Label: "分办规则"}, {Href: "/console/routing/explain", Label: "分办试算"}, {Href: "/console/admin/units", Label: "单位及别名"},
			{Href: "/console/admin/calendar", Label: "节假日"}, {Href: "/console/admin/import", Label: "社会组织与单位名录导入"},
			{Href: "/console/admin/audit", Label: "审计日志与校验"},
			{Href: "/console/stats", Label: "统计与导出"}}
	}
	return s.render(c, fiber.StatusOK, "console/home", p)
}
