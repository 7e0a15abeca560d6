package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/requestid"
	"github.com/gofiber/fiber/v3/middleware/static"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The public web pages (package web renders them). They are not API operations: each
// route is named with pageRoutePrefix, which the OpenAPI route walk leaves out, and
// every one is served through page(), which sets the security headers in one place and
// renders any error as a Chinese HTML page instead of the API's JSON.
const pageRoutePrefix = "web."

// pageCSP allows nothing but this origin's own stylesheet, script and images, and no
// inline code at all; no page may be framed.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// csrfTTL is how long a rendered form may be submitted.
const csrfTTL = 2 * time.Hour

// followUpCookie holds a reporter's follow-up token (a signed token naming one case and
// an expiry; nothing about the reporter), HttpOnly, SameSite=Strict, on /followup only.
const followUpCookie = "qf_followup"

func (s *Server) registerPages() {
	s.pages = web.MustParse()
	if len(s.d.FormKey) == 0 {
		s.d.FormKey = make([]byte, 32)
		_, _ = rand.Read(s.d.FormKey)
	}
	s.page(fiber.MethodGet, "/", "home", s.homePage)
	s.page(fiber.MethodGet, "/about", "about", s.aboutPage)
	s.page(fiber.MethodGet, "/report", "report", s.reportPage)
	s.page(fiber.MethodPost, "/report", "report.submit", s.reportSubmit)
	s.page(fiber.MethodGet, "/report/divisions", "report.divisions", s.reportDivisions)
	s.page(fiber.MethodGet, "/followup", "followup", s.followUpPage)
	s.page(fiber.MethodPost, "/followup", "followup.login", s.followUpLogin)
	s.page(fiber.MethodPost, "/followup/messages", "followup.message", s.followUpReply)
	s.page(fiber.MethodPost, "/followup/evidence", "followup.evidence", s.followUpEvidence)
	s.page(fiber.MethodPost, "/followup/logout", "followup.logout", s.followUpLogout)
	s.page(fiber.MethodGet, "/orgs", "orgs.lookup", s.orgLookup)
	s.page(fiber.MethodGet, "/orgs/:code", "org", s.orgPage)
	s.page(fiber.MethodPost, "/orgs/:code/check", "org.check", s.orgCheck)
	s.registerConsole()
	s.App.Get("/static/*", pageHeaders(false), static.New("", static.Config{FS: web.Static(), MaxAge: 3600})).Name(pageRoutePrefix + "static")
}

// isPagePath says whether an unknown path is answered as a page: anything outside the
// API's namespace.
func isPagePath(p string) bool {
	switch {
	case p == "/v1" || strings.HasPrefix(p, "/v1/"), p == "/healthz", p == "/readyz", p == "/metrics":
		return false
	}
	return true
}

// IsPageRoute says whether a registered route is one of the web pages, not an API
// operation: the OpenAPI contract describes the API only.
func IsPageRoute(name string) bool { return strings.HasPrefix(name, pageRoutePrefix) }

// page registers a page route: security headers, then the handler, whose error (if
// any) becomes an HTML page.
func (s *Server) page(method, path, name string, h fiber.Handler) {
	wrapped := func(c fiber.Ctx) error {
		if err := h(c); err != nil {
			return s.pageError(c, err)
		}
		return nil
	}
	s.App.Add([]string{method}, path, pageHeaders(true), wrapped).Name(pageRoutePrefix + name)
}

// pageHeaders sets the headers every page carries (setPageHeaders).
func pageHeaders(noStore bool) fiber.Handler {
	return func(c fiber.Ctx) error {
		setPageHeaders(c, noStore)
		return c.Next()
	}
}

// setPageHeaders is the one place the pages' security headers are set. Pages are never
// cached: what a reporter sees must not stay in a shared device's cache or history.
func setPageHeaders(c fiber.Ctx, noStore bool) {
	h := &c.Response().Header
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
	if noStore {
		h.Set(fiber.HeaderCacheControl, "no-store")
		h.Set("Pragma", "no-cache")
	}
}

// render writes a page with a status.
func (s *Server) render(c fiber.Ctx, status int, name string, data any) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Status(status)
	return s.pages.Render(c.Response().BodyWriter(), name, data)
}

// pageError renders an error a page handler returned: a Chinese page with the status
// of its code. Internal details are logged with the request id, never shown.
func (s *Server) pageError(c fiber.Ctx, err error) error {
	var qe *qingfeng.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &qe):
	case errors.As(err, &fe) && fe.Code < 500:
		qe = qingfeng.Errorf(qingfeng.EINVALID, "请求有误", "bad request")
		if m, ok := fiberErrors[fe.Code]; ok {
			qe = m
		}
	default:
		qe = internal
	}
	if qe.Code == qingfeng.EINTERNAL || qe.Code == qingfeng.EUNAVAILABLE {
		s.d.Log.Error("page failed", "route", c.Route().Path, "request_id", requestid.FromContext(c), "err", err)
	}
	status, ok := statusOf[qe.Code]
	if !ok {
		status = fiber.StatusInternalServerError
	}
	c.Response().ResetBody()
	if status == fiber.StatusNotFound {
		return s.render(c, status, "notfound", web.NotFoundPage{Page: web.Page{Title: "页面不存在"}, Heading: "页面不存在", Text: qe.Message})
	}
	text := qe.Message
	if status >= 500 {
		text = "服务暂时出现问题，您填写的内容没有提交。请稍后重试。"
	}
	return s.render(c, status, "error", web.ErrorPage{Page: web.Page{Title: "出错了"}, Heading: "无法完成请求", Text: text})
}

func (s *Server) homePage(c fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, "home", struct{ web.Page }{web.Page{Title: "首页", Nav: "home"}})
}

func (s *Server) aboutPage(c fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, "about", struct{ web.Page }{web.Page{Title: "关于", Nav: "about"}})
}

// csrfToken signs a form: purpose names the form, binding ties it to a session ("" on
// public pages, which carry no cookie), and the expiry bounds replay.
func (s *Server) csrfToken(purpose, binding string) string {
	exp := strconv.FormatInt(time.Now().Add(csrfTTL).Unix(), 10)
	return exp + "." + s.csrfMAC(purpose, binding, exp)
}

func (s *Server) csrfMAC(purpose, binding, exp string) string {
	m := hmac.New(sha256.New, s.d.FormKey)
	m.Write([]byte("qingfeng/web-form/v1\x00" + purpose + "\x00" + binding + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

var errFormExpired = qingfeng.Errorf(qingfeng.EFORBIDDEN, "页面已过期或来源不明，内容没有提交。请核对后重新提交。", "the form expired or did not come from this site; nothing was submitted")

// checkCSRF accepts a token csrfToken issued for purpose and binding that has not
// expired.
func (s *Server) checkCSRF(tok, purpose, binding string) error {
	exp, mac, ok := strings.Cut(tok, ".")
	if !ok {
		return errFormExpired
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > n {
		return errFormExpired
	}
	if !hmac.Equal([]byte(mac), []byte(s.csrfMAC(purpose, binding, exp))) {
		return errFormExpired
	}
	return nil
}

// sessionBinding ties follow-up forms to the session token, without the token itself.
func sessionBinding(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:8])
}

// newFormKey is an idempotency key for a rendered report form.
func newFormKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "web-" + hex.EncodeToString(b)
}

// publicURL is the service's public base URL from configuration, never the Host header.
func (s *Server) publicURL(path string) string {
	return strings.TrimRight(s.d.PublicURL, "/") + path
}

// secureCookies says whether cookies are marked Secure: when the public URL is HTTPS
// or the request came over TLS.
func (s *Server) secureCookies(c fiber.Ctx) bool {
	return strings.HasPrefix(s.d.PublicURL, "https://") || c.Protocol() == "https"
}

// fieldLabels names the form fields in error summaries.
var fieldLabels = map[string]string{
	"category": "举报类别", "subject.kind": "被举报对象", "subject.organization": "被举报组织",
	"subject.organization.name": "组织名称", "subject.organization.credit_code": "统一社会信用代码",
	"subject.person": "被举报人", "subject.person.name": "被举报人姓名", "description": "举报内容",
	"location.division": "发生地点", "location.address": "详细地址", "occurred_on": "发生时间",
	"anonymous": "匿名还是实名", "identity": "实名信息", "identity.name": "您的姓名", "identity.mobile": "手机号码",
	"identity.resident_id": "身份证号码", "identity.preferred_contact": "联系方式", "files": "证据材料",
	"receipt_code": "回执码", "body": "留言", "receipt": "捐赠票据号", "amount": "捐赠金额",
}

// fieldIDs is the element each field's summary entry links to.
var fieldIDs = map[string]string{
	"category": "f-category", "subject.kind": "f-subject-kind", "subject.organization": "f-org-name",
	"subject.organization.name": "f-org-name", "subject.organization.credit_code": "f-org-code",
	"subject.person": "f-person-name", "subject.person.name": "f-person-name", "description": "f-description",
	"location.division": "f-city", "location.address": "f-address", "occurred_on": "f-occurred",
	"anonymous": "f-anon-yes", "identity": "f-id-name", "identity.name": "f-id-name", "identity.mobile": "f-id-mobile",
	"identity.resident_id": "f-id-resident", "identity.preferred_contact": "f-id-contact", "files": "f-files",
	"receipt_code": "f-receipt", "body": "f-reply", "receipt": "f-receipt", "amount": "f-amount",
}

// fieldOrder is the order of fields on the forms, for the error summary.
var fieldOrder = []string{"category", "subject.kind", "subject.organization", "subject.organization.name",
	"subject.organization.credit_code", "subject.person", "subject.person.name", "description", "location.division",
	"location.address", "occurred_on", "anonymous", "identity", "identity.name", "identity.mobile",
	"identity.resident_id", "identity.preferred_contact", "files", "receipt_code", "body", "receipt", "amount"}

// formErrors maps the API's error onto a form: each field's message (the same
// validation, the same words), and a summary naming each field. An error without
// fields lands on fallback, or in the notice when fallback is "".
func formErrors(f *web.Form, err error, fallback string) {
	var qe *qingfeng.Error
	if !errors.As(err, &qe) {
		qe = internal
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if len(qe.Fields) == 0 {
		if fallback == "" {
			f.Notice = qe.Message
			return
		}
		f.Errors[fallback] = qe.Message
	}
	for k, fe := range qe.Fields {
		if _, known := fieldLabels[k]; !known {
			// A field the form does not show (e.g. the idempotency key): say it at the top.
			f.Notice = qe.Message + "：" + fe.Message
			continue
		}
		f.Errors[k] = fe.Message
	}
	f.Summary = nil
	for _, k := range fieldOrder {
		if m, ok := f.Errors[k]; ok {
			f.Summary = append(f.Summary, web.FieldError{ID: fieldIDs[k], Label: fieldLabels[k], Message: m})
		}
	}
}

// statusForForm is the status a re-rendered form answers with.
func statusForForm(err error) int {
	if st, ok := statusOf[qingfeng.ErrorCode(err)]; ok && st != http.StatusInternalServerError {
		return st
	}
	return http.StatusInternalServerError
}

// powOf is the challenge of a proof-of-work request, for a form's script to solve;
// with JavaScript off, powPageNotice tells the reporter to wait.
func powOf(err error) (web.PoW, bool) {
	var pr *powRequired
	if !errors.As(err, &pr) {
		return web.PoW{}, false
	}
	return web.PoW{Challenge: pr.challenge.Token, Difficulty: pr.challenge.Difficulty}, true
}

const powPageNotice = "当前服务正受到大量猜测尝试。为保护举报人，提交前需要由您的浏览器完成一次计算验证（通常几秒钟），完成后请再次点击提交。" +
	"如果您关闭了 JavaScript，请稍等几分钟再试。这不是封禁，也不会记录您的任何信息。"
