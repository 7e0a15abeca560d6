package handlers

import (
	"io"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's registry import page: an organization or unit file uploaded as a form,
// the counts and each rejected row with its errors as a table — the API's importer,
// limits and audit entry. The form's parts come in order: _csrf, what, file; the token
// is checked before the file is read.

func (s *Server) consoleImportView(c fiber.Ctx) web.ImportPage {
	pg := web.ImportPage{ConsolePage: s.consolePage(c, "名录导入", "/console/admin/import")}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	return pg
}

// consoleImport is GET /console/admin/import.
func (s *Server) consoleImport(c fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, "console/import", s.consoleImportView(c))
}

// consoleImportUpload is POST /console/admin/import.
func (s *Server) consoleImportUpload(c fiber.Ctx) error {
	pg := s.consoleImportView(c)
	view, what, err := s.consoleImportRun(c)
	if err != nil {
		if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" || code == qingfeng.EFORBIDDEN {
			return err
		}
		pg.Values["what"] = what
		consoleFormErrors(&pg.Form, fileField(err))
		return s.render(c, statusForForm(err), "console/import", pg)
	}
	pg.Values["what"] = what
	pg.Done = true
	pg.Counts = []web.KV{{Label: "读取", Value: strconv.Itoa(view.Read)}, {Label: "新增", Value: strconv.Itoa(view.Inserted)},
		{Label: "更新", Value: strconv.Itoa(view.Updated)}, {Label: "拒收", Value: strconv.Itoa(view.Rejected)}}
	if view.CheckWarnings > 0 {
		pg.Counts = append(pg.Counts, web.KV{Label: "校验提醒", Value: strconv.Itoa(view.CheckWarnings)})
	}
	for _, r := range view.RejectedRows {
		for _, e := range r.Errors {
			pg.Rejected = append(pg.Rejected, web.ImportRejection{Row: strconv.Itoa(r.Row), Field: e.Field, Message: e.Message})
		}
	}
	if view.RejectedRowsOmitted > 0 {
		pg.Omitted = strconv.Itoa(view.RejectedRowsOmitted)
	}
	return s.render(c, fiber.StatusOK, "console/import", pg)
}

func (s *Server) consoleImportRun(c fiber.Ctx) (importView, string, error) {
	mr, err := multipartReader(c, s.d.MaxImportBody)
	if err != nil {
		return importView{}, "", err
	}
	small := func(name string) (string, error) {
		part, err := mr.NextPart()
		if err != nil {
			return "", multipartError(err)
		}
		if part.FormName() != name {
			return "", fieldInvalid("file", "unknown_field", "表单内容有误，请从本页提交", "parts out of order")
		}
		b, err := io.ReadAll(io.LimitReader(part, 1024))
		return strings.TrimSpace(string(b)), err
	}
	// The token comes first (the page's form sends it so): without it the form is not
	// the page's, and is refused before the file is read.
	csrf, err := small("_csrf")
	if err != nil {
		return importView{}, "", errFormExpired
	}
	if err := s.checkCSRF(csrf, consolePurpose, consoleBinding(principalOf(c))); err != nil {
		return importView{}, "", err
	}
	what, err := small("what")
	if err != nil {
		return importView{}, "", err
	}
	if what != "orgs" && what != "units" {
		return importView{}, what, fieldInvalid("what", "invalid_value", "请选择导入社会组织名录还是单位名录", "orgs or units")
	}
	f, format, err := spoolFilePart(mr, what)
	if err != nil {
		return importView{}, what, err
	}
	defer f.Close()
	view, err := s.runImport(c, what, f, format, false)
	return view, what, err
}
