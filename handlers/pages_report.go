package handlers

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/web"
)

// reportFormFields are the report form's fields that are the API's own flat multipart
// fields (formFields): the page hands them to the same decoder, draft and intake
// service as POST /v1/reports, so there is one validation.
var reportFormFields = []string{"category", "subject.kind", "subject.organization.name", "subject.organization.credit_code",
	"subject.person.name", "subject.person.position", "subject.person.employer", "description", "location.address",
	"occurred_on", "anonymous", "identity.name", "identity.mobile", "identity.resident_id", "identity.preferred_contact"}

// reportPageFields are the page's own fields: the CSRF token, the idempotency key, a
// proof of work, the division picker's levels and the picker's "update" button.
var reportPageFields = []string{"_csrf", "_key", "_pow", "_province", "_city", "_county", "_town", "_action"}

const reportFormPurpose = "report"

// acceptedFiles is the file input's accept list (intake/media decides; this only
// helps the phone's picker).
const acceptedFiles = "image/jpeg,image/png,image/heic,image/heif,video/mp4,application/pdf"

// reportPage is GET /report; ?org=<credit code> fills in a registered organization
// (the organization page's "report a problem" link).
func (s *Server) reportPage(c fiber.Ctx) error {
	v := map[string]string{}
	if code := strings.TrimSpace(c.Query("org")); code != "" {
		if org, ok := s.d.Orgs(strings.ToUpper(code)); ok {
			v["subject.kind"] = "organization"
			v["subject.organization.name"] = org.Name
			v["subject.organization.credit_code"] = org.CreditCode
			if d, ok := routing.LookupDivision(org.Division); ok && d.Level != routing.LevelProvince {
				setDivisionPicker(v, d)
			}
		}
	}
	return s.render(c, fiber.StatusOK, "report", s.reportView(v, newFormKey()))
}

// setDivisionPicker selects d and the levels above it in the picker.
func setDivisionPicker(v map[string]string, d routing.Division) {
	for {
		switch d.Level {
		case routing.LevelCity:
			v["_city"] = d.Code
		case routing.LevelCounty:
			v["_county"] = d.Code
		case routing.LevelTownship:
			v["_town"] = d.Code
		}
		p, ok := routing.LookupDivision(d.Parent)
		if !ok || d.Parent == "" {
			return
		}
		d = p
	}
}

// reportView builds the form from what was typed.
func (s *Server) reportView(v map[string]string, key string) web.ReportPage {
	p := web.ReportPage{Page: web.Page{Title: "我要举报", Nav: "report"}, Form: web.Form{Key: key}, Accept: acceptedFiles, Limits: s.fileLimits()}
	p.Values = v
	p.Errors = map[string]string{}
	p.CSRF = s.csrfToken(reportFormPurpose, "")
	for _, k := range intake.Categories {
		p.Categories = append(p.Categories, web.Option{Value: string(k.Code), Label: k.Label, Hint: web.CategoryExamples[string(k.Code)],
			Selected: v["category"] == string(k.Code)})
	}
	for _, o := range [][2]string{{"", "不限"}, {"phone", "电话"}, {"sms", "短信"}, {"in_person", "当面"}, {"mail", "信件"}} {
		p.Contacts = append(p.Contacts, web.Option{Value: o[0], Label: o[1], Selected: v["identity.preferred_contact"] == o[0]})
	}
	outside, isOutside := pickedProvince(v)
	p.Outside = isOutside
	for _, d := range routing.Provinces() {
		p.Provinces = append(p.Provinces, web.Option{Value: d.Code, Label: d.Name, Selected: d.Code == outside || !isOutside && d.Code == "330000"})
	}
	p.Cities, p.Counties, p.Towns = divisionPicker(v)
	return p
}

// divisionPicker is the city → county → township picker's options for what v picked:
// every city, and the counties and townships under the ones picked.
func divisionPicker(v map[string]string) (cities, counties, towns []web.Option) {
	city, county, town := pickedDivisions(v)
	cities = divisionOptions("33", routing.LevelCity, city)
	if city != "" {
		counties = divisionOptions(city, routing.LevelCounty, county)
	}
	if county != "" {
		towns = divisionOptions(county, routing.LevelTownship, town)
	}
	return cities, counties, towns
}

// divisionChildren lists the divisions of level directly under parent ("33": the
// cities).
func divisionChildren(parent string, level routing.Level) []routing.Division {
	if d, ok := routing.LookupDivision(parent); ok {
		parent = d.Code
	}
	var out []routing.Division
	for _, d := range routing.Divisions() {
		if d.Level == level && d.Parent == parent {
			out = append(out, d)
		}
	}
	return out
}

func divisionOptions(parent string, level routing.Level, selected string) []web.Option {
	var out []web.Option
	for _, d := range divisionChildren(parent, level) {
		out = append(out, web.Option{Value: d.Code, Label: d.Name, Selected: d.Code == selected})
	}
	return out
}

// pickedProvince is the province picked when it is not Zhejiang (its six-digit code):
// a report about a place elsewhere is filed with it, held and triaged by the province,
// as the API does with such a code.
func pickedProvince(v map[string]string) (string, bool) {
	p := v["_province"]
	if p == "" || p == "330000" {
		return "", false
	}
	for _, d := range routing.Provinces() {
		if d.Code == p {
			return p, true
		}
	}
	return "", false
}

// pickedDivisions reads the picker: each level only if it lies under the one above
// (a county left over from another city is dropped).
func pickedDivisions(v map[string]string) (city, county, town string) {
	under := func(code, parent string, level routing.Level) bool {
		d, ok := routing.LookupDivision(code)
		return ok && d.RetiredFrom == "" && d.Level == level && (parent == "" || d.Parent == parent)
	}
	if c := v["_city"]; under(c, "330000", routing.LevelCity) {
		city = c
	} else {
		return "", "", ""
	}
	if c := v["_county"]; under(c, city, routing.LevelCounty) {
		county = c
	} else {
		return city, "", ""
	}
	if c := v["_town"]; under(c, county, routing.LevelTownship) {
		town = c
	}
	return city, county, town
}

// reportDivisions is GET /report/divisions?parent=: the picker's next level, for the
// script (without it, the form is re-rendered with the options).
func (s *Server) reportDivisions(c fiber.Ctx) error {
	parent := c.Query("parent")
	d, ok := routing.LookupDivision(parent)
	if !ok || d.RetiredFrom != "" || (d.Level != routing.LevelCity && d.Level != routing.LevelCounty) {
		return c.Status(fiber.StatusNotFound).JSON([]any{})
	}
	level := routing.LevelCounty
	if d.Level == routing.LevelCounty {
		level = routing.LevelTownship
	}
	type opt struct {
		Code string `json:"code"`
		Name string `json:"name"`
	}
	out := []opt{}
	for _, ch := range divisionChildren(d.Code, level) {
		out = append(out, opt{ch.Code, ch.Name})
	}
	return c.JSON(out)
}

func (s *Server) fileLimits() string {
	cfg := s.d.Intake.Config
	return fmt.Sprintf("可上传照片、视频或文档（JPEG、PNG、HEIC/HEIF、MP4、PDF），一次最多%d个，每个不超过%s，全部合计不超过%s。",
		cfg.MaxFilesPerReq, sizeLabel(cfg.MaxFileBytes), sizeLabel(cfg.MaxCaseBytes))
}

func sizeLabel(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d 字节", n)
}

// reportSubmit is POST /report: the form, then the files, streamed as on the API. A
// validation error re-renders the form with what was typed (files are never kept);
// the form's idempotency key makes a double tap or a reload file once.
func (s *Server) reportSubmit(c fiber.Ctx) error {
	mr, err := multipartReader(c, s.d.MaxUploadBody)
	if err != nil {
		return err
	}
	ctx := c.Context()
	values := map[string]string{}
	known := map[string]bool{}
	for _, k := range append(reportFormFields, reportPageFields...) {
		known[k] = true
	}
	var (
		prepared *intake.Prepared
		started  bool // the fields are complete and were checked
		counted  bool // a filing attempt, which the flood meter counts
		files    int
	)
	// Every public filing attempt counts towards the flood meter, as on the API, but
	// not a retry answered with the case it already filed: a phone on a bad network
	// must not raise the difficulty for everyone.
	defer func() {
		if counted && (prepared == nil || !prepared.Replayed()) {
			s.d.PoW.Record(pow.Report)
		}
	}()
	// start runs once, when the first file arrives or the form ends: CSRF, the
	// picker's update button, the proof of work, then the API's own decoding and
	// validation (Prepare).
	start := func() error {
		started = true
		if err := s.checkCSRF(values["_csrf"], reportFormPurpose, ""); err != nil {
			return err
		}
		if values["_action"] == "divisions" {
			return errRerender
		}
		counted = true
		if err := s.requirePoWSolution(pow.Report, values["_pow"]); err != nil {
			return err
		}
		draft, err := s.reportDraftOf(values)
		if err != nil {
			return err
		}
		key := values["_key"]
		if !strings.HasPrefix(key, "web-") || len(key) > 80 {
			key = "" // not a key this page issued: file without one rather than trust it
		}
		prepared, err = s.d.Intake.Prepare(ctx, intake.FileRequest{Draft: draft, IdempotencyKey: key})
		return err
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
				name := part.FormName()
				if started {
					return fieldInvalid("files", "field_after_file", "表单字段须在文件之前提交", "form fields must come before files")
				}
				if !known[name] {
					return fieldInvalid("(body)", "unknown_field", "表单包含不支持的字段", "unknown form field")
				}
				val, err := readField(part, s.d.MaxJSONBytes)
				if err != nil {
					return err
				}
				if _, dup := values[name]; !dup {
					values[name] = val
				}
				continue
			}
			if !started {
				if err := start(); err != nil {
					return err
				}
			}
			if part.FileName() == "" {
				// The browser sends an empty part for a file input left empty.
				if _, err := io.Copy(io.Discard, part); err != nil {
					return multipartError(err)
				}
				continue
			}
			if prepared.Replayed() {
				if _, err := io.Copy(io.Discard, part); err != nil {
					return multipartError(err)
				}
				continue
			}
			if err := prepared.Attach(ctx, &partReader{part}, "reporter"); err != nil {
				return err
			}
			files++
		}
	}()
	if err == nil && !started {
		err = start()
	}
	if err == nil {
		filed, cerr := prepared.Commit(ctx)
		if cerr == nil {
			return s.render(c, fiber.StatusOK, "receipt", s.receiptView(filed))
		}
		err = cerr
	} else if prepared != nil {
		prepared.Abort(ctx)
	}
	return s.reportFormError(c, values, files, err)
}

// errRerender is the picker's update button: the form comes back with the next level.
var errRerender = errors.New("re-render the form")

// reportFormError re-renders the form with everything typed and each field's message.
func (s *Server) reportFormError(c fiber.Ctx, values map[string]string, files int, err error) error {
	switch qingfeng.ErrorCode(err) {
	case qingfeng.EINVALID, qingfeng.ETOOLARGE, qingfeng.EUNSUPPORTED, qingfeng.EFORBIDDEN, qingfeng.ECONFLICT,
		qingfeng.EINPROGRESS, qingfeng.EPOWREQUIRED, qingfeng.ERATELIMIT:
	default:
		if !errors.Is(err, errRerender) {
			return err // a failure of ours: the error page, nothing filed
		}
	}
	key := values["_key"]
	if !strings.HasPrefix(key, "web-") || len(key) > 80 {
		key = newFormKey()
	}
	shown := map[string]string{}
	for _, k := range reportFormFields {
		shown[k] = values[k]
	}
	for _, k := range []string{"_province", "_city", "_county", "_town"} {
		shown[k] = values[k]
	}
	p := s.reportView(shown, key)
	status := fiber.StatusOK
	if !errors.Is(err, errRerender) {
		status = statusForForm(err)
		fallback := ""
		if code := qingfeng.ErrorCode(err); code == qingfeng.ETOOLARGE || code == qingfeng.EUNSUPPORTED {
			fallback = "files"
		}
		switch pw, ok := powOf(err); {
		case ok:
			p.PoW = pw
			p.Notice = powPageNotice
		case qingfeng.ErrorCode(err) == qingfeng.ECONFLICT:
			// The form's key already filed a different report (edited after filing):
			// a new form, so that nothing is filed twice or lost.
			p.Key = newFormKey()
			p.Notice = "这张表单已经提交过一份内容不同的举报。为避免重复登记，请核对后再次提交：本次将作为一份新的举报登记。"
		default:
			formErrors(&p.Form, err, fallback)
		}
		p.FilesLost = true
	}
	return s.render(c, status, "report", p)
}

// reportDraftOf decodes the form's fields with the API's form decoder (setFormFields),
// as an API client sends them.
func (s *Server) reportDraftOf(v map[string]string) (intake.Draft, error) {
	var f formFields
	if err := f.set("source", "web"); err != nil {
		return intake.Draft{}, err
	}
	if err := setFormFields(&f, v, reportFormFields); err != nil {
		return intake.Draft{}, err
	}
	if v["anonymous"] == "" {
		if err := f.set("anonymous", "true"); err != nil {
			return intake.Draft{}, err
		}
	}
	return reportDraft(&f.r, nil)
}

// setFormFields sets the page's fields (of names) on f: only those that apply (the
// identity of an anonymous report, the person when the subject is an organization and
// empty fields are left out), and the division picker's deepest level as
// location.division unless the page has a location.division field of its own that was
// filled in.
func setFormFields(f *formFields, v map[string]string, names []string) error {
	codeField := slices.Contains(names, "location.division") && strings.TrimSpace(v["location.division"]) != ""
	city, county, town := pickedDivisions(v)
	if outside, ok := pickedProvince(v); ok {
		city, county, town = outside, "", "" // the province: see intake's outside_zhejiang
	}
	division := town
	if division == "" {
		division = county
	}
	if division == "" {
		division = city
	}
	if division != "" && !codeField {
		if err := f.set("location.division", division); err != nil {
			return err
		}
	}
	kind, anonymous := v["subject.kind"], v["anonymous"] != "false"
	for _, k := range names {
		val := v[k]
		switch {
		case strings.TrimSpace(val) == "":
			continue
		case k == "location.division" && !codeField:
			continue
		case strings.HasPrefix(k, "identity.") && anonymous:
			continue
		case strings.HasPrefix(k, "subject.person.") && kind == string(intake.SubjectOrganization):
			continue
		case strings.HasPrefix(k, "subject.organization.") && kind == string(intake.SubjectPerson):
			continue
		case k == "anonymous":
			val = fmt.Sprint(anonymous)
		}
		if err := f.set(k, val); err != nil {
			return err
		}
	}
	return nil
}

// receiptView is the receipt page of a filed report.
func (s *Server) receiptView(f *intake.Filed) web.ReceiptPage {
	p := web.ReceiptPage{Page: web.Page{Title: "举报已提交", Nav: "report"}, ReceiptCode: f.ReceiptCode, CaseNumber: f.Case.Number,
		Unit: f.Case.Decision.UnitName, ReceivedAt: pageTime(f.Case.ReceivedAt), RealName: f.Case.RealName,
		AcceptanceDue: pageDate(f.AcceptanceDue), Files: len(f.Case.Evidence), Replayed: f.Replayed}
	if f.DueEstimated {
		p.AcceptanceNote = "按工作日估算，以承办单位通知为准"
	}
	for _, w := range f.Case.Warnings {
		p.Warnings = append(p.Warnings, w.Message)
	}
	return p
}

// pageTime and pageDate show times and dates as a Chinese reader writes them, in
// Beijing time.
func pageTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(qingfeng.Shanghai).Format("2006年1月2日 15:04")
}

func pageDate(d string) string {
	t, err := time.Parse("2006-01-02", d)
	if err != nil {
		return d
	}
	return t.Format("2006年1月2日")
}
