package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"reflect"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
)

// mediaType is the request's Content-Type without parameters, lowercased.
func mediaType(c fiber.Ctx) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil {
		return "", nil
	}
	return mt, params
}

var errWantJSON = qingfeng.Errorf(qingfeng.EUNSUPPORTED, "请求内容类型须为 application/json", "Content-Type must be application/json")

// readBody reads at most limit bytes of the request body, whether Fiber buffered it or
// streams it.
func readBody(c fiber.Ctx, limit int) ([]byte, error) {
	req := c.Request()
	if req.IsBodyStream() {
		b, err := io.ReadAll(io.LimitReader(req.BodyStream(), int64(limit)+1))
		if err != nil {
			return nil, qingfeng.Errorf(qingfeng.EINVALID, "请求内容读取失败", "could not read the request body")
		}
		if len(b) > limit {
			return nil, errBodyTooLarge
		}
		return b, nil
	}
	b := req.Body()
	if len(b) > limit {
		return nil, errBodyTooLarge
	}
	return b, nil
}

var errBodyTooLarge = qingfeng.Errorf(qingfeng.ETOOLARGE, "请求内容过大", "request body too large")

// decodeJSON decodes a JSON request body into v with decodeJSONBytes, refusing wrong
// types (e.g. {"$gt": ""} where a string belongs) with field-named errors.
func (s *Server) decodeJSON(c fiber.Ctx, v any) error {
	if mt, _ := mediaType(c); mt != fiber.MIMEApplicationJSON {
		return errWantJSON
	}
	body, err := readBody(c, s.d.MaxJSONBytes)
	if err != nil {
		return err
	}
	return decodeJSONBytes(body, v)
}

// decodeJSONBytes is the one strict JSON decoder of the API: exact keys, no duplicates,
// valid UTF-8 without NUL, no null for a non-pointer field, no unknown fields, no
// trailing data (see checkStrictJSON). v is a pointer.
func decodeJSONBytes(body []byte, v any) error {
	if err := checkStrictJSON(body, reflect.TypeOf(v).Elem()); err != nil {
		return err
	}
	// Decode into a fresh value so that a refused body leaves v as it was.
	fresh := reflect.New(reflect.TypeOf(v).Elem())
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(fresh.Interface()); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return qingfeng.Errorf(qingfeng.EINVALID, "JSON 之后有多余内容", "trailing data after the JSON value")
	}
	reflect.ValueOf(v).Elem().Set(fresh.Elem())
	return nil
}

func jsonError(err error) error {
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return qingfeng.Invalid(map[string]qingfeng.FieldError{field: {Code: "wrong_type",
			Message: fmt.Sprintf("类型错误，应为%s", typeName(typeErr.Type.Kind().String())),
			English: "wrong type, want " + typeErr.Type.String()}})
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return qingfeng.Errorf(qingfeng.EINVALID, "JSON 格式错误", "malformed JSON")
	case errors.Is(err, io.EOF):
		return qingfeng.Errorf(qingfeng.EINVALID, "请求内容为空", "empty request body")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return qingfeng.Invalid(map[string]qingfeng.FieldError{field: {Code: "unknown_field", Message: "不支持的字段", English: "unknown field"}})
	}
	return qingfeng.Errorf(qingfeng.EINVALID, "JSON 格式错误", "malformed JSON")
}

func typeName(kind string) string {
	switch kind {
	case "string":
		return "字符串"
	case "bool":
		return "布尔值"
	case "float64", "int", "int64":
		return "数字"
	case "struct", "map":
		return "对象"
	case "slice":
		return "数组"
	}
	return kind
}

// multipartReader opens the request body as a multipart stream, limited to max bytes.
func multipartReader(c fiber.Ctx, max int64) (*multipart.Reader, error) {
	mt, params := mediaType(c)
	if mt != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return nil, qingfeng.Errorf(qingfeng.EUNSUPPORTED, "请求内容类型须为 multipart/form-data", "Content-Type must be multipart/form-data")
	}
	var body io.Reader
	if c.Request().IsBodyStream() {
		body = c.Request().BodyStream()
	} else {
		body = bytes.NewReader(c.Request().Body())
	}
	return multipart.NewReader(&limitedReader{r: body, n: max}, params["boundary"]), nil
}

// limitedReader fails with ETOOLARGE once more than n bytes are read, so an oversized
// upload is refused rather than silently truncated.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errBodyTooLarge
	}
	return n, err
}

// multipartError turns a multipart parsing failure into a client error, keeping our
// own errors (size limits) as they are.
func multipartError(err error) error {
	var qe *qingfeng.Error
	if errors.As(err, &qe) {
		return qe
	}
	return qingfeng.Errorf(qingfeng.EINVALID, "multipart 表单格式错误或上传中断", "malformed or interrupted multipart body")
}

// answerStored sets the status of the answer to a submission that may carry an
// Idempotency-Key: 201 for one stored now, 200 with Idempotent-Replayed for a retry
// answered with what its first attempt stored.
func answerStored(c fiber.Ctx, replayed bool) fiber.Ctx {
	if replayed {
		c.Set("Idempotent-Replayed", "true")
		return c.Status(fiber.StatusOK)
	}
	return c.Status(fiber.StatusCreated)
}
