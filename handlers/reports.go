package handlers

import (
	"encoding/base64"
	"errors"
	"io"
	"mime/multipart"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age/armor"
	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// reportRequest is the body of POST /v1/reports (JSON, or the "report" field of a
// multipart form, or the same names as flat form fields).
type reportRequest struct {
	Category       string           `json:"category"`
	Subject        *subjectRequest  `json:"subject"`
	Description    string           `json:"description"`
	Location       *locationRequest `json:"location"`
	OccurredOn     string           `json:"occurred_on"`
	Anonymous      bool             `json:"anonymous"`
	Identity       *identityRequest `json:"identity"`
	SealedIdentity string           `json:"sealed_identity"`
	Source         string           `json:"source"`
}

type subjectRequest struct {
	Kind         string         `json:"kind"`
	Organization *orgRequest    `json:"organization"`
	Person       *personRequest `json:"person"`
}

type orgRequest struct {
	CreditCode string `json:"credit_code"`
	Name       string `json:"name"`
}

type personRequest struct {
	Name     string `json:"name"`
	Position string `json:"position"`
	Employer string `json:"employer"`
}

type locationRequest struct {
	Division string   `json:"division"`
	Address  string   `json:"address"`
	Lat      *float64 `json:"lat"`
	Lng      *float64 `json:"lng"`
}

type identityRequest struct {
	Name             string `json:"name"`
	Mobile           string `json:"mobile"`
	ResidentID       string `json:"resident_id"`
	PreferredContact string `json:"preferred_contact"`
}

// reporterSources are the channels a reporter without an account may name; "app" when
// none is named.
var reporterSources = map[string]bool{"": true, "app": true, "wechat": true, "web": true}

// sourceOf decides a report's source by who is authenticated, never by the body alone:
// a liaison's token makes it "liaison" (the body may say so, or nothing), and without
// one the body may only name a reporter's channel.
func sourceOf(claimed string, byLiaison bool) (string, error) {
	switch {
	case byLiaison && (claimed == "" || claimed == "liaison"):
		return "liaison", nil
	case byLiaison:
		return "", fieldInvalid("source", "source_mismatch", "联络员代为提交的举报，来源只能是 liaison", "a report filed by a liaison has source liaison")
	case claimed == "liaison":
		return "", fieldInvalid("source", "liaison_requires_login", "来源为 liaison 的举报须由登录的联络员提交", "source liaison needs a liaison's token")
	case !reporterSources[claimed]:
		return "", fieldInvalid("source", "unknown_value", "来源只能是 app、wechat 或 web", "one of app, wechat, web")
	case claimed == "":
		return "app", nil
	}
	return claimed, nil
}

func (r *reportRequest) draft(byLiaison bool) (intake.Draft, error) {
	d := intake.Draft{Category: r.Category, Description: r.Description, OccurredOn: r.OccurredOn, Anonymous: r.Anonymous}
	var err error
	if d.Source, err = sourceOf(r.Source, byLiaison); err != nil {
		return d, err
	}
	if r.Subject != nil {
		d.Subject.Kind = intake.SubjectKind(r.Subject.Kind)
		if o := r.Subject.Organization; o != nil {
			d.Subject.Organization = &intake.OrgSubject{CreditCode: o.CreditCode, Name: o.Name}
		}
		if p := r.Subject.Person; p != nil {
			d.Subject.Person = &intake.PersonSubject{Name: p.Name, Position: p.Position, Employer: p.Employer}
		}
	}
	if r.Location != nil {
		d.Location = intake.Location{Division: r.Location.Division, Address: r.Location.Address, Lat: r.Location.Lat, Lng: r.Location.Lng}
	}
	if r.Identity != nil {
		d.Identity = &intake.Identity{Name: r.Identity.Name, Mobile: r.Identity.Mobile, ResidentID: r.Identity.ResidentID, PreferredContact: r.Identity.PreferredContact}
	}
	if s := strings.TrimSpace(r.SealedIdentity); s != "" {
		b, err := decodeSealed(s)
		if err != nil {
			return d, err
		}
		d.Sealed = b
	}
	return d, nil
}

// decodeSealed accepts an age file sealed on the device, ASCII-armored or base64.
func decodeSealed(s string) ([]byte, error) {
	if len(s) > 128<<10 {
		return nil, fieldInvalid("sealed_identity", "too_long", "已加密身份过大", "sealed identity too large")
	}
	if strings.HasPrefix(s, "-----BEGIN AGE ENCRYPTED FILE-----") {
		b, err := io.ReadAll(armor.NewReader(strings.NewReader(s)))
		if err != nil {
			return nil, fieldInvalid("sealed_identity", "invalid_armor", "已加密身份的 ASCII 封装无效", "invalid age armor")
		}
		return b, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fieldInvalid("sealed_identity", "invalid_base64", "已加密身份须为 age 文件的 base64 或 ASCII 封装", "must be a base64 or armored age file")
	}
	return b, nil
}

func fieldInvalid(field, code, zh, en string) error {
	return qingfeng.Invalid(map[string]qingfeng.FieldError{field: {Code: code, Message: zh, English: en}})
}

// formFields collects flat multipart fields into a reportRequest, with the strict JSON
// decoder's rules: exact names, each at most once, valid UTF-8 without NUL.
type formFields struct {
	r       reportRequest
	asJSON  bool
	anyFlat bool
	seen    map[string]bool
}

func (f *formFields) set(name, value string) error {
	if f.seen[name] {
		return fieldProblem(name, problemDuplicate)
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	f.seen[name] = true
	if !utf8.ValidString(name) {
		return fieldProblem("(body)", problemUTF8)
	}
	if !utf8.ValidString(value) {
		return fieldProblem(name, problemUTF8)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return fieldProblem(name, problemNUL)
	}
	if name == "report" {
		if f.asJSON || f.anyFlat {
			return fieldInvalid("report", "conflict", "report 字段不能与其他表单字段同时使用", "report cannot be combined with other fields")
		}
		f.asJSON = true
		return decodeJSONBytes([]byte(value), &f.r)
	}
	if f.asJSON {
		return fieldInvalid(name, "conflict", "report 字段不能与其他表单字段同时使用", "report cannot be combined with other fields")
	}
	f.anyFlat = true
	r := &f.r
	subj := func() *subjectRequest {
		if r.Subject == nil {
			r.Subject = &subjectRequest{}
		}
		return r.Subject
	}
	org := func() *orgRequest {
		if s := subj(); s.Organization == nil {
			s.Organization = &orgRequest{}
		}
		return r.Subject.Organization
	}
	person := func() *personRequest {
		if s := subj(); s.Person == nil {
			s.Person = &personRequest{}
		}
		return r.Subject.Person
	}
	loc := func() *locationRequest {
		if r.Location == nil {
			r.Location = &locationRequest{}
		}
		return r.Location
	}
	ident := func() *identityRequest {
		if r.Identity == nil {
			r.Identity = &identityRequest{}
		}
		return r.Identity
	}
	float := func(dst **float64) error {
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return fieldInvalid(name, "wrong_type", "须为数字", "must be a number")
		}
		*dst = &v
		return nil
	}
	switch name {
	case "category":
		r.Category = value
	case "description":
		r.Description = value
	case "occurred_on":
		r.OccurredOn = value
	case "source":
		r.Source = value
	case "sealed_identity":
		r.SealedIdentity = value
	case "anonymous":
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return fieldInvalid(name, "wrong_type", "须为 true 或 false", "must be true or false")
		}
		r.Anonymous = b
	case "subject.kind":
		subj().Kind = value
	case "subject.organization.credit_code":
		org().CreditCode = value
	case "subject.organization.name":
		org().Name = value
	case "subject.person.name":
		person().Name = value
	case "subject.person.position":
		person().Position = value
	case "subject.person.employer":
		person().Employer = value
	case "location.division":
		loc().Division = value
	case "location.address":
		loc().Address = value
	case "location.lat":
		return float(&loc().Lat)
	case "location.lng":
		return float(&loc().Lng)
	case "identity.name":
		ident().Name = value
	case "identity.mobile":
		ident().Mobile = value
	case "identity.resident_id":
		ident().ResidentID = value
	case "identity.preferred_contact":
		ident().PreferredContact = value
	default:
		return fieldInvalid(name, "unknown_field", "不支持的字段", "unknown field")
	}
	return nil
}

// isFilePart says whether a multipart part is an uploaded file. The client's file name
// is never used: not in keys, not in storage, not in logs.
func isFilePart(p *multipart.Part) bool {
	return p.FileName() != "" || p.FormName() == "file" || p.FormName() == "files"
}

func readField(p *multipart.Part, limit int) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, int64(limit)+1))
	if err != nil {
		return "", multipartError(err)
	}
	if len(b) > limit {
		return "", fieldInvalid(p.FormName(), "too_long", "字段内容过长", "field too long")
	}
	return string(b), nil
}

// fileReport is POST /v1/reports: a tip-off as JSON, or as a multipart form with files.
// Anyone may file; a liaison filing for a visitor sends their token.
func (s *Server) fileReport(c fiber.Ctx) error {
	liaison, err := s.optionalLiaison(c)
	if err != nil {
		return err
	}
	filedBy := ""
	if liaison != nil {
		filedBy = liaison.ID
	}
	var prepared *intake.Prepared
	if filedBy == "" {
		if err := s.requirePoW(c, pow.Report); err != nil {
			return err
		}
		// An anonymous flood of reports succeeds, so every public filing is counted,
		// but not a retry answered with the case it already filed: a phone on a bad
		// network must not raise the difficulty for everyone.
		defer func() {
			if prepared == nil || !prepared.Replayed() {
				s.d.PoW.Record(pow.Report)
			}
		}()
	}
	req := intake.FileRequest{IdempotencyKey: strings.TrimSpace(c.Get("Idempotency-Key")), FiledBy: filedBy}
	ctx := c.Context()

	switch mt, _ := mediaType(c); mt {
	case fiber.MIMEApplicationJSON:
		var body reportRequest
		if err := s.decodeJSON(c, &body); err != nil {
			return err
		}
		if req.Draft, err = reportDraft(&body, liaison); err != nil {
			return err
		}
		if prepared, err = s.d.Intake.Prepare(ctx, req); err != nil {
			return err
		}
	case fiber.MIMEMultipartForm:
		mr, err := multipartReader(c, s.d.MaxUploadBody)
		if err != nil {
			return err
		}
		var form formFields
		prepare := func() error {
			if req.Draft, err = reportDraft(&form.r, liaison); err != nil {
				return err
			}
			prepared, err = s.d.Intake.Prepare(ctx, req)
			return err
		}
		uploader := "reporter"
		if filedBy != "" {
			uploader = "liaison:" + filedBy
		}
		err = func() error {
			for {
				part, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return multipartError(err)
				}
				if !isFilePart(part) {
					if prepared != nil {
						return fieldInvalid(part.FormName(), "field_after_file", "表单字段须在文件之前提交", "form fields must come before files")
					}
					v, err := readField(part, s.d.MaxJSONBytes)
					if err != nil {
						return err
					}
					if err := form.set(part.FormName(), v); err != nil {
						return err
					}
					continue
				}
				if prepared == nil {
					if err := prepare(); err != nil {
						return err
					}
				}
				if prepared.Replayed() {
					if _, err := io.Copy(io.Discard, part); err != nil {
						return multipartError(err)
					}
					continue
				}
				if err := prepared.Attach(ctx, &partReader{part}, uploader); err != nil {
					return err
				}
			}
		}()
		if err == nil && prepared == nil {
			err = prepare()
		}
		if err != nil {
			if prepared != nil {
				prepared.Abort(ctx)
			}
			return err
		}
	default:
		return qingfeng.Errorf(qingfeng.EUNSUPPORTED, "请求内容类型须为 application/json 或 multipart/form-data", "Content-Type must be application/json or multipart/form-data")
	}

	filed, err := prepared.Commit(ctx)
	if err != nil {
		return err
	}
	tok, exp, err := s.followUpToken(filed.Case)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return answerStored(c, filed.Replayed).JSON(filedResponse{
		CaseNumber: filed.Case.Number, ReceiptCode: filed.ReceiptCode, Status: string(filed.Case.Status),
		StatusLabel: statusLabel(filed.Case.Status), RealName: filed.Case.RealName,
		Unit: unitRef{Name: filed.Case.Decision.UnitName}, ReceivedAt: wireTime(filed.Case.ReceivedAt),
		AcceptanceDue: filed.AcceptanceDue, AcceptanceDueEstimated: filed.DueEstimated,
		Warnings: nonNil(filed.Case.Warnings), Evidence: evidenceViews(filed.Case.Evidence),
		FollowUpToken: tok, FollowUpExpiresAt: wireTime(exp),
		Notice: "请抄写并妥善保存回执码：它只显示这一次，凭它可查询进展、补充材料。工作人员无法找回回执码。",
	})
}

// optionalLiaison returns the liaison filing a report, if the request carries a token.
func (s *Server) optionalLiaison(c fiber.Ctx) (*accounts.User, error) {
	tok := bearer(c)
	if tok == "" {
		return nil, nil
	}
	u, _, err := s.d.Accounts.Authenticate(c.Context(), tok)
	if err != nil {
		return nil, err
	}
	if u.Role != accounts.RoleLiaison {
		return nil, qingfeng.Errorf(qingfeng.EFORBIDDEN, "只有联络员可以代为提交举报", "only liaisons file reports for others")
	}
	return u, nil
}

// reportDraft turns a decoded report into a draft for whoever files it: a liaison files
// only in their own region, where they can then read what they filed.
func reportDraft(r *reportRequest, liaison *accounts.User) (intake.Draft, error) {
	d, err := r.draft(liaison != nil)
	if err != nil {
		return d, err
	}
	if div := strings.TrimSpace(d.Location.Division); liaison != nil && div != "" && !inLiaisonScope(liaison, div) {
		return d, &qingfeng.Error{Code: qingfeng.EFORBIDDEN, Message: "联络员只能代为提交本辖区（" + liaison.Division + "）的举报",
			English: "a liaison files reports only in their own division (" + liaison.Division + ")",
			Fields: map[string]qingfeng.FieldError{"location.division": {Code: "outside_liaison_division",
				Message: "不在您的联络辖区内", English: "outside your division"}}}
	}
	return d, nil
}

// followUpToken signs a reporter's follow-up token for case cs, and its expiry.
// A token counts only if issued after the case's last logout, both to the millisecond
// (reporterCase): one issued in the millisecond of a logout cannot be told from one
// issued just before it, so a login in that millisecond waits for the next one rather
// than be handed a token that is refused at once.
func (s *Server) followUpToken(cs *intake.Case) (string, time.Time, error) {
	if end := cs.FollowUpEndedAt; !end.IsZero() {
		if wait := time.Until(end.Truncate(time.Millisecond).Add(time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
	}
	exp := time.Now().Add(s.d.FollowUpTTL)
	tok, err := s.d.Tokens.Sign(accounts.Claims{Subject: cs.ID, Audience: accounts.AudienceFollowUp, ID: intake.NewID(), ExpiresAt: exp})
	return tok, exp, err
}

type filedResponse struct {
	CaseNumber             string           `json:"case_number"`
	ReceiptCode            string           `json:"receipt_code"`
	Status                 string           `json:"status"`
	StatusLabel            string           `json:"status_label"`
	RealName               bool             `json:"real_name"`
	Unit                   unitRef          `json:"unit"`
	ReceivedAt             string           `json:"received_at"`
	AcceptanceDue          string           `json:"acceptance_due,omitempty"`
	AcceptanceDueEstimated bool             `json:"acceptance_due_estimated,omitempty"`
	Warnings               []intake.Warning `json:"warnings"`
	Evidence               []evidenceView   `json:"evidence"`
	FollowUpToken          string           `json:"followup_token"`
	FollowUpExpiresAt      string           `json:"followup_expires_at"`
	Notice                 string           `json:"notice"`
}

type unitRef struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

type evidenceView struct {
	ID              string `json:"id"`
	ContentType     string `json:"content_type"`
	Size            int64  `json:"size"`
	SHA256Received  string `json:"sha256_received"`
	SHA256Stored    string `json:"sha256_stored"`
	MetadataRemoved bool   `json:"metadata_removed"`
	UploadedBy      string `json:"uploaded_by"`
	UploadedAt      string `json:"uploaded_at"`
	// AlreadyStored is only in an upload's answer: the uploader had given the case
	// these bytes before, and this is that entry (intake.AddedEvidence).
	AlreadyStored bool `json:"already_stored,omitempty"`
}

func evidenceViews(evs []intake.Evidence) []evidenceView {
	out := make([]evidenceView, 0, len(evs))
	for _, e := range evs {
		out = append(out, evidenceViewOf(e))
	}
	return out
}

func evidenceViewOf(e intake.Evidence) evidenceView {
	by, _, _ := strings.Cut(e.UploadedBy, ":") // the role, never an account id
	return evidenceView{ID: e.ID, ContentType: e.ContentType, Size: e.Size, SHA256Received: e.SHA256Received,
		SHA256Stored: e.SHA256Stored, MetadataRemoved: e.MetadataRemoved, UploadedBy: by, UploadedAt: wireTime(e.UploadedAt)}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// wireTime renders a time as on the wire: qingfeng.WireTime, the one rule.
func wireTime(t time.Time) string { return qingfeng.WireTime(t) }

func statusLabel(s intake.Status) string { return triage.StatusLabel(s) }

// addEvidence is POST /v1/reports/{case}/evidence: files for a registered case, from the
// reporter (follow-up token), a liaison of the division, or staff of the owning unit.
func (s *Server) addEvidence(c fiber.Ctx) error {
	cs, err := s.loadCase(c, accessAddEvidence)
	if err != nil {
		return err
	}
	mr, err := multipartReader(c, s.d.MaxUploadBody)
	if err != nil {
		return err
	}
	p := principalOf(c)
	uploader := "reporter"
	if p.user != nil {
		uploader = string(p.user.Role) + ":" + p.user.ID
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
			if isFilePart(part) {
				return &partReader{part}, nil
			}
			return nil, fieldInvalid(part.FormName(), "unknown_field", "只接受文件字段 file", "only file parts are accepted")
		}
	}
	evs, err := s.d.Intake.AddEvidence(c.Context(), cs, uploader, next)
	if err != nil {
		return err
	}
	views := make([]evidenceView, 0, len(evs))
	for _, e := range evs {
		v := evidenceViewOf(e.Evidence)
		v.AlreadyStored = e.AlreadyStored
		views = append(views, v)
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"case_number": cs.Number, "evidence": views})
}

// partReader maps a broken multipart stream to a client error.
type partReader struct{ p *multipart.Part }

func (r *partReader) Read(b []byte) (int, error) {
	n, err := r.p.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, multipartError(err)
	}
	return n, err
}
