package handlers

import (
	"errors"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/web"
)

const (
	followUpLoginPurpose = "followup-login"
	followUpPurpose      = "followup" // the forms of a session, bound to it
)

// pageForm reads a URL-encoded form body within the JSON limit.
func (s *Server) pageForm(c fiber.Ctx) (url.Values, error) {
	if mt, _ := mediaType(c); mt != fiber.MIMEApplicationForm {
		return nil, qingfeng.Errorf(qingfeng.EUNSUPPORTED, "请通过页面上的表单提交", "Content-Type must be application/x-www-form-urlencoded")
	}
	b, err := readBody(c, s.d.MaxJSONBytes)
	if err != nil {
		return nil, err
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, qingfeng.Errorf(qingfeng.EINVALID, "表单内容有误", "malformed form")
	}
	return v, nil
}

// followUpSessionOf is the reporter's follow-up session from its cookie: the token, its
// claims, and the case it names as read when the token was checked; ok=false without a
// valid one.
func (s *Server) followUpSessionOf(c fiber.Ctx) (tok string, claims accounts.Claims, cs *intake.Case, ok bool) {
	tok = c.Cookies(followUpCookie)
	if tok == "" {
		return "", claims, nil, false
	}
	claims, cs, err := s.followUpClaims(c, tok)
	if err != nil {
		return "", claims, nil, false
	}
	return tok, claims, cs, true
}

func (s *Server) setFollowUpCookie(c fiber.Ctx, tok string, exp time.Time) {
	c.Cookie(&fiber.Cookie{Name: followUpCookie, Value: tok, Path: "/followup", Expires: exp, MaxAge: int(time.Until(exp).Seconds()),
		HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Secure: s.secureCookies(c)})
}

func (s *Server) clearFollowUpCookie(c fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: followUpCookie, Value: "", Path: "/followup", Expires: time.Unix(0, 0), MaxAge: -1,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Secure: s.secureCookies(c)})
}

func (s *Server) followUpLoginView() web.FollowUpLoginPage {
	p := web.FollowUpLoginPage{Page: web.Page{Title: "查询进展", Nav: "followup"}}
	p.CSRF = s.csrfToken(followUpLoginPurpose, "")
	p.Errors = map[string]string{}
	return p
}

// followUpPage is GET /followup: the case of the session, or the receipt form.
func (s *Server) followUpPage(c fiber.Ctx) error {
	tok, claims, cs, ok := s.followUpSessionOf(c)
	if !ok {
		p := s.followUpLoginView()
		p.LoggedOut = c.Query("out") == "1"
		if c.Cookies(followUpCookie) != "" {
			s.clearFollowUpCookie(c)
			p.Expired = true
		}
		return s.render(c, fiber.StatusOK, "followup_login", p)
	}
	p, err := s.followUpCaseView(c, tok, claims, cs)
	if err != nil {
		return err
	}
	p.Sent = c.Query("sent") == "1"
	p.Uploaded, _ = strconv.Atoi(c.Query("uploaded"))
	if again, _ := strconv.Atoi(c.Query("again")); again > 0 && again <= p.Uploaded {
		p.UploadedAgain = again
	}
	return s.render(c, fiber.StatusOK, "followup_case", p)
}

// followUpLogin is POST /followup: a receipt code opens a session for its case.
func (s *Server) followUpLogin(c fiber.Ctx) error {
	form, err := s.pageForm(c)
	if err != nil {
		return err
	}
	p := s.followUpLoginView()
	fail := func(err error) error {
		if pw, ok := powOf(err); ok {
			p.PoW, p.Notice = pw, powPageNotice
		} else {
			formErrors(&p.Form, err, "receipt_code")
		}
		return s.render(c, statusForForm(err), "followup_login", p)
	}
	if err := s.checkCSRF(form.Get("_csrf"), followUpLoginPurpose, ""); err != nil {
		return fail(err)
	}
	if err := s.requirePoWSolution(pow.Receipt, form.Get("_pow")); err != nil {
		return fail(err)
	}
	cs, err := s.d.Intake.FollowUp(c.Context(), form.Get("receipt_code"))
	if err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.EUNAUTHORIZED {
			s.d.PoW.Record(pow.Receipt)
			err = qingfeng.Invalid(map[string]qingfeng.FieldError{"receipt_code": {Code: "invalid_receipt",
				Message: "回执码无效，请核对后重新输入", English: "invalid receipt code"}})
		}
		return fail(err)
	}
	tok, exp, err := s.followUpToken(cs)
	if err != nil {
		return err
	}
	s.setFollowUpCookie(c, tok, exp)
	return c.Redirect().Status(fiber.StatusSeeOther).To("/followup")
}

// followUpCaseView is the reporter's case page.
func (s *Server) followUpCaseView(c fiber.Ctx, tok string, claims accounts.Claims, cs *intake.Case) (web.FollowUpCasePage, error) {
	rc, err := s.reporterCase(c.Context(), cs)
	if err != nil {
		return web.FollowUpCasePage{}, err
	}
	cs, progress := rc.c, rc.progress
	csrf := s.csrfToken(followUpPurpose, sessionBinding(tok))
	p := web.FollowUpCasePage{Page: web.Page{Title: "举报进展", Nav: "followup"},
		CaseNumber: cs.Number, Status: statusLabel(progress.Status), StatusText: web.StatusText[string(progress.Status)],
		Category: categoryOf(cs.Category).Label, Unit: cs.Decision.UnitName, ReceivedAt: pageTime(cs.ReceivedAt),
		RealName: cs.RealName, Limits: s.fileLimits(), Accept: acceptedFiles}
	if cs.RealName && progress.Status == intake.StatusRegistered {
		p.Due = pageDate(cs.AcceptanceDue)
	}
	if claims.ExpiresAt.After(time.Now()) {
		p.ExpiresAt = claims.ExpiresAt.In(qingfeng.Shanghai).Format("15:04")
	}
	p.Reply = web.Form{CSRF: csrf, Key: newFormKey(), Values: map[string]string{}, Errors: map[string]string{}}
	p.Upload = web.Form{CSRF: csrf, Values: map[string]string{}, Errors: map[string]string{}}
	switch progress.Status {
	case intake.StatusConcluded, intake.StatusFeedbackGiven, intake.StatusClosed:
		if o := progress.Outcome; o != nil {
			if t := web.OutcomeText[o.Result]; t != "" {
				p.Outcome = append(p.Outcome, t)
			}
			if o.NameCleared {
				p.Outcome = append(p.Outcome, web.NameClearedText)
			}
		}
	}
	for _, m := range rc.messages {
		msg := web.Message{Body: m.Body, At: pageTime(m.CreatedAt), Mine: m.From == intake.UploaderReporter}
		switch {
		case m.Kind == "public_note":
			p.Notes = append(p.Notes, msg)
			continue
		case msg.Mine:
			msg.From = "我"
		default:
			msg.From = "承办单位"
		}
		p.Messages = append(p.Messages, msg)
	}
	for i, e := range cs.Evidence {
		who := "我提交的"
		if e.UploadedBy != intake.UploaderReporter {
			who = "代为提交的"
		}
		p.Files = append(p.Files, "文件 "+strconv.Itoa(i+1)+"（"+fileKind(e.ContentType)+"，"+sizeLabel(e.Size)+"，"+who+"，"+pageTime(e.UploadedAt)+"）")
	}
	return p, nil
}

func fileKind(ct string) string {
	switch ct {
	case "image/jpeg", "image/png", "image/heif", "image/heic":
		return "照片"
	case "video/mp4":
		return "视频"
	case "application/pdf":
		return "PDF 文档"
	}
	return "文件"
}

// followUpReply is POST /followup/messages: the reporter writes to the unit.
func (s *Server) followUpReply(c fiber.Ctx) error {
	tok, claims, cs, ok := s.followUpSessionOf(c)
	if !ok {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/followup")
	}
	form, err := s.pageForm(c)
	if err != nil {
		return err
	}
	err = s.checkCSRF(form.Get("_csrf"), followUpPurpose, sessionBinding(tok))
	if err == nil {
		// The form's key: a second tap, or the form sent again from the browser's
		// history, stores no second message.
		_, _, err = s.d.Intake.PostMessage(c.Context(), cs, intake.UploaderReporter, "", form.Get("body"), form.Get("_key"))
	}
	if err == nil {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/followup?sent=1#conversation")
	}
	if !isFormError(err) {
		return err
	}
	p, verr := s.followUpCaseView(c, tok, claims, cs)
	if verr != nil {
		return verr
	}
	p.Reply.Values["body"] = form.Get("body")
	formErrors(&p.Reply, err, "body")
	return s.render(c, statusForForm(err), "followup_case", p)
}

// isFormError says whether err is the client's to fix (re-render the form), not ours.
func isFormError(err error) bool {
	st, ok := statusOf[qingfeng.ErrorCode(err)]
	return ok && st < 500 && st != fiber.StatusNotFound
}

// followUpEvidence is POST /followup/evidence: files for the session's case, through
// the same AddEvidence as the API.
func (s *Server) followUpEvidence(c fiber.Ctx) error {
	tok, claims, cs, ok := s.followUpSessionOf(c)
	if !ok {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/followup")
	}
	mr, err := multipartReader(c, s.d.MaxUploadBody)
	if err != nil {
		return err
	}
	ctx := c.Context()
	var evs []intake.AddedEvidence
	err = func() error {
		// The CSRF token comes first, before any file is read.
		part, err := mr.NextPart()
		if err != nil || isFilePart(part) || part.FormName() != "_csrf" {
			return errFormExpired
		}
		v, err := readField(part, 256)
		if err != nil {
			return err
		}
		if err := s.checkCSRF(v, followUpPurpose, sessionBinding(tok)); err != nil {
			return err
		}
		next := func() (io.Reader, error) {
			for {
				part, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					return nil, io.EOF
				}
				if err != nil {
					return nil, multipartError(err)
				}
				if !isFilePart(part) {
					return nil, fieldInvalid("files", "unknown_field", "只接受文件", "only file parts are accepted")
				}
				if part.FileName() == "" {
					if _, err := io.Copy(io.Discard, part); err != nil {
						return nil, multipartError(err)
					}
					continue
				}
				return &partReader{part}, nil
			}
		}
		evs, err = s.d.Intake.AddEvidence(ctx, cs, intake.UploaderReporter, next)
		return err
	}()
	if err == nil {
		if len(evs) == 0 {
			err = fieldInvalid("files", "required", "请选择要上传的文件", "choose a file")
		} else {
			again := 0
			for _, e := range evs {
				if e.AlreadyStored {
					again++
				}
			}
			return c.Redirect().Status(fiber.StatusSeeOther).To("/followup?uploaded=" + strconv.Itoa(len(evs)) + "&again=" + strconv.Itoa(again) + "#evidence")
		}
	}
	if !isFormError(err) {
		return err
	}
	p, verr := s.followUpCaseView(c, tok, claims, cs)
	if verr != nil {
		return verr
	}
	formErrors(&p.Upload, err, "files")
	return s.render(c, statusForForm(err), "followup_case", p)
}

// followUpLogout is POST /followup/logout: the session ends on the server (every
// follow-up token of the case issued until now stops working, see followUpClaims), the
// cookie goes, and the browser is told to drop what it kept of the site.
func (s *Server) followUpLogout(c fiber.Ctx) error {
	if _, _, cs, ok := s.followUpSessionOf(c); ok {
		if err := s.d.Intake.Cases.EndFollowUp(c.Context(), cs.ID, time.Now()); err != nil {
			return err
		}
	}
	s.clearFollowUpCookie(c)
	c.Set("Clear-Site-Data", `"cookies", "storage"`)
	return c.Redirect().Status(fiber.StatusSeeOther).To("/followup?out=1")
}
