package handlers

import (
	"io"
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's holiday calendar page: the years known, and the upload of one year's
// file in the holiday-cn format — the API's checks and audit entry.

func (s *Server) consoleCalendarView(c fiber.Ctx) web.CalendarPage {
	pg := web.CalendarPage{ConsolePage: s.consolePage(c, "节假日", "/console/admin/calendar")}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	for _, y := range s.d.Calendar.Years() {
		pg.Years = append(pg.Years, strconv.Itoa(y))
	}
	return pg
}

// consoleCalendar is GET /console/admin/calendar.
func (s *Server) consoleCalendar(c fiber.Ctx) error {
	pg := s.consoleCalendarView(c)
	if y := c.Query("done"); y != "" {
		if n, err := strconv.Atoi(y); err == nil {
			pg.Flash = strconv.Itoa(n) + "年的节假日安排已载入，期限即时按它计算。"
		}
	}
	return s.render(c, fiber.StatusOK, "console/calendar", pg)
}

// consoleCalendarUpload is POST /console/admin/calendar: multipart with _csrf and the
// file; the token is checked before anything is looked at.
func (s *Server) consoleCalendarUpload(c fiber.Ctx) error {
	csrf, body, err := s.calendarUploadParts(c)
	if err == nil {
		if err := s.checkCSRF(csrf, consolePurpose, consoleBinding(principalOf(c))); err != nil {
			return err
		}
		if len(body) == 0 {
			err = fieldInvalid("file", "required", "请选择节假日文件（JSON）", "choose the calendar file")
		}
	}
	var year int
	if err == nil {
		year, err = s.addCalendarYear(c, body, 0)
	}
	if err == nil {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/admin/calendar?done=" + strconv.Itoa(year))
	}
	if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" {
		return err
	}
	pg := s.consoleCalendarView(c)
	consoleFormErrors(&pg.Form, fileField(err))
	return s.render(c, statusForForm(err), "console/calendar", pg)
}

// calendarUploadParts reads the upload form: the token and the file, within the
// API's body limit.
func (s *Server) calendarUploadParts(c fiber.Ctx) (csrf string, file []byte, err error) {
	mr, err := multipartReader(c, int64(s.d.MaxJSONBytes)+4096)
	if err != nil {
		return "", nil, err
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return csrf, file, nil
		}
		if err != nil {
			return "", nil, multipartError(err)
		}
		b, err := io.ReadAll(io.LimitReader(part, int64(s.d.MaxJSONBytes)+1))
		if err != nil {
			return "", nil, multipartError(err)
		}
		if len(b) > s.d.MaxJSONBytes {
			return "", nil, errBodyTooLarge
		}
		switch part.FormName() {
		case "_csrf":
			csrf = string(b)
		case "file":
			file = b
		}
	}
}

// fileField puts the errors of a file's content under the file field, each message
// naming where in the file it is.
func fileField(err error) error {
	qe, ok := err.(*qingfeng.Error)
	if !ok {
		return err
	}
	out := *qe
	out.Fields = map[string]qingfeng.FieldError{}
	if len(qe.Fields) == 0 {
		out.Fields["file"] = qingfeng.FieldError{Code: qe.Code, Message: qe.Message, English: qe.English}
	}
	for k, fe := range qe.Fields {
		if k != "file" {
			fe.Message = k + "：" + fe.Message
		}
		if have, ok := out.Fields["file"]; ok {
			fe.Message = have.Message + "；" + fe.Message
		}
		out.Fields["file"] = fe
	}
	return &out
}
