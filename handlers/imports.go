package handlers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// maxListedRejections bounds the rejected rows listed in an import's answer: a file of
// a million bad rows must not become a million-entry response held in memory. The
// counts are always complete; rejected_rows_omitted says how many were not listed.
const maxListedRejections = 10000

type importFieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type importRejection struct {
	Row    int                `json:"row"`
	Errors []importFieldError `json:"errors"`
}

// importView is the answer of an import: routing.ImportStats and the rejected rows, in
// the CLI's words (row numbers count data rows from 1; a CSV header is not counted).
type importView struct {
	Read                int               `json:"read"`
	Inserted            int               `json:"inserted"`
	Updated             int               `json:"updated"`
	Rejected            int               `json:"rejected"`
	CheckWarnings       int               `json:"check_warnings"`
	SeededDefaults      int               `json:"seeded_defaults"`
	RejectedRows        []importRejection `json:"rejected_rows"`
	RejectedRowsOmitted int               `json:"rejected_rows_omitted"`
}

// importRegistry is POST /v1/admin/import/orgs and /v1/admin/import/units: the file as
// the body (text/csv, application/json, application/x-ndjson) or as the multipart part
// `file`. The body is spooled to an unlinked temporary file (limited to MaxImportBody),
// so that the importer can check the whole file before storing anything and nothing
// large is held in memory; the running registry is refreshed at once.
func (s *Server) importRegistry(what string) fiber.Handler {
	return func(c fiber.Ctx) error {
		f, format, err := s.spoolImport(c, what)
		if err != nil {
			return err
		}
		defer f.Close()
		view, err := s.runImport(c, what, f, format, prefersEnglish(c.Get(fiber.HeaderAcceptLanguage)))
		if err != nil {
			return err
		}
		return c.JSON(view)
	}
}

// runImport imports a spooled file, lists the rejected rows and records what it did
// (the API's import and the console's upload).
func (s *Server) runImport(c fiber.Ctx, what string, f io.ReadSeeker, format string, english bool) (importView, error) {
	view := importView{RejectedRows: []importRejection{}}
	reject := func(row int, errs map[string]qingfeng.FieldError) error {
		if len(view.RejectedRows) >= maxListedRejections {
			view.RejectedRowsOmitted++
			return nil
		}
		r := importRejection{Row: row}
		for _, field := range routing.SortFields(errs) {
			e := errs[field]
			msg := e.Message
			if english && e.English != "" {
				msg = e.English
			}
			r.Errors = append(r.Errors, importFieldError{Field: field, Code: e.Code, Message: msg})
		}
		view.RejectedRows = append(view.RejectedRows, r)
		return nil
	}
	var (
		st  routing.ImportStats
		err error
	)
	if what == "orgs" {
		st, err = s.d.Routing.ImportOrganizations(c.Context(), f, format, reject)
	} else {
		st, err = s.d.Routing.ImportUnits(c.Context(), f, format, reject)
	}
	detail := map[string]string{"format": format, "read": strconv.Itoa(st.Read), "inserted": strconv.Itoa(st.Inserted),
		"updated": strconv.Itoa(st.Updated), "rejected": strconv.Itoa(st.Rejected)}
	if st.Seeded > 0 {
		detail["seeded_defaults"] = strconv.Itoa(st.Seeded)
	}
	if err != nil {
		if st.Inserted+st.Updated+st.Seeded > 0 {
			// Part of the file is stored: the audit log must say so.
			detail["failed"] = "true"
			s.recordChange(c, "registry.import."+what, "", detail)
		}
		return view, err
	}
	s.recordChange(c, "registry.import."+what, "", detail)
	view.Read, view.Inserted, view.Updated, view.Rejected = st.Read, st.Inserted, st.Updated, st.Rejected
	view.CheckWarnings, view.SeededDefaults = st.CheckWarnings, st.Seeded
	return view, nil
}

// importFormats maps the accepted media types to the importer's formats.
var importFormats = map[string]string{
	"text/csv":             "csv",
	"application/json":     "json",
	"application/x-ndjson": "jsonl",
}

var (
	errImportType = &qingfeng.Error{Code: qingfeng.EUNSUPPORTED,
		Message: "请求内容类型须为 text/csv、application/json、application/x-ndjson，或 multipart/form-data 的 file 字段",
		English: "Content-Type must be text/csv, application/json, application/x-ndjson, or multipart/form-data with a file part",
		Allowed: []string{"text/csv", "application/json", "application/x-ndjson", "multipart/form-data"}}
	errUnitsNotCSV = &qingfeng.Error{Code: qingfeng.EUNSUPPORTED, Message: "单位名录须为 JSON（application/json 或 application/x-ndjson）",
		English: "units are imported from JSON (application/json or application/x-ndjson)",
		Allowed: []string{"application/json", "application/x-ndjson", "multipart/form-data"}}
	errImportEmpty       = qingfeng.Errorf(qingfeng.EINVALID, "导入文件为空", "the file is empty")
	errImportInterrupted = qingfeng.Errorf(qingfeng.EINVALID, "上传中断或格式错误，未导入任何记录", "the upload was interrupted or malformed; nothing imported")
)

// spoolImport copies the uploaded file to an unlinked temporary file and returns it,
// rewound, with its format.
func (s *Server) spoolImport(c fiber.Ctx, what string) (*os.File, string, error) {
	mt, _ := mediaType(c)
	var (
		src    io.Reader
		format string
	)
	if mt == fiber.MIMEMultipartForm {
		mr, err := multipartReader(c, s.d.MaxImportBody)
		if err != nil {
			return nil, "", err
		}
		return spoolFilePart(mr, what)
	}
	format = importFormats[mt]
	if format == "" {
		return nil, "", errImportType
	}
	if c.Request().IsBodyStream() {
		src = c.Request().BodyStream()
	} else {
		src = bytes.NewReader(c.Request().Body())
	}
	f, err := spool(&limitedReader{r: src, n: s.d.MaxImportBody}, what, format)
	return f, format, err
}

// spoolFilePart spools the next part of mr, which must be the only one left and the
// file part.
func spoolFilePart(mr *multipart.Reader, what string) (*os.File, string, error) {
	part, err := mr.NextPart()
	if errors.Is(err, io.EOF) {
		return nil, "", fieldInvalid("file", "required", "请上传文件字段 file", "the file part is required")
	}
	if err != nil {
		return nil, "", multipartError(err)
	}
	if part.FormName() != "file" || !isFilePart(part) {
		return nil, "", fieldInvalid(part.FormName(), "unknown_field", "只接受文件字段 file", "only the file part is accepted")
	}
	format := partFormat(part.Header.Get(fiber.HeaderContentType), part.FileName())
	if format == "" {
		return nil, "", errImportType
	}
	f, err := spool(&partReader{part}, what, format)
	if err != nil {
		return nil, "", err
	}
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		f.Close()
		if err != nil {
			return nil, "", multipartError(err)
		}
		return nil, "", fieldInvalid("file", "too_many", "只接受一个文件字段 file", "exactly one file part is accepted")
	}
	return f, format, nil
}

// partFormat is the format of a multipart file part: by its Content-Type when that is
// one of the accepted types, else by the file name's extension.
func partFormat(contentType, fileName string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		if f := importFormats[strings.ToLower(mt)]; f != "" {
			return f
		}
	}
	switch strings.ToLower(filepath.Ext(fileName)) {
	case ".csv":
		return "csv"
	case ".json":
		return "json"
	case ".jsonl", ".ndjson":
		return "jsonl"
	}
	return ""
}

// spool writes r to a temporary file that is unlinked at once (it vanishes with its
// last descriptor) and returns it rewound. The registry is public data, but the file
// is still made readable by this process only.
func spool(r io.Reader, what, format string) (*os.File, error) {
	if what == "units" && format == "csv" {
		return nil, errUnitsNotCSV
	}
	f, err := os.CreateTemp("", "qingfeng-import-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	src := &readErrReader{r: r}
	n, err := io.Copy(f, src)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		var qe *qingfeng.Error
		switch {
		case errors.As(err, &qe):
			return nil, qe
		case src.err != nil: // the client's side: a broken or interrupted upload
			return nil, errImportInterrupted
		}
		return nil, fmt.Errorf("spool the import: %w", err) // the disk: ours
	}
	if n == 0 {
		f.Close()
		return nil, errImportEmpty
	}
	return f, nil
}

// readErrReader remembers the error of the reader it wraps, to tell a failed upload
// (the client's) from a failed write to the temporary file (ours).
type readErrReader struct {
	r   io.Reader
	err error
}

func (r *readErrReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
