package handlers

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/requestid"

	"github.com/qingfeng-zj/qingfeng"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[string]int{
	qingfeng.EINVALID:      fiber.StatusBadRequest,
	qingfeng.EUNAUTHORIZED: fiber.StatusUnauthorized,
	qingfeng.EFORBIDDEN:    fiber.StatusForbidden,
	qingfeng.ENOTFOUND:     fiber.StatusNotFound,
	qingfeng.ECONFLICT:     fiber.StatusConflict,
	qingfeng.EINPROGRESS:   fiber.StatusConflict,
	qingfeng.ETOOLARGE:     fiber.StatusRequestEntityTooLarge,
	qingfeng.EUNSUPPORTED:  fiber.StatusUnsupportedMediaType,
	qingfeng.ERATELIMIT:    fiber.StatusTooManyRequests,
	qingfeng.EPOWREQUIRED:  fiber.StatusPreconditionRequired,
	qingfeng.EUNAVAILABLE:  fiber.StatusServiceUnavailable,
	qingfeng.EINTERNAL:     fiber.StatusInternalServerError,
	codeMethodNotAllowed:   fiber.StatusMethodNotAllowed,

	qingfeng.ETOTPREQUIRED:   fiber.StatusUnauthorized,
	qingfeng.EPASSWORDCHANGE: fiber.StatusForbidden,
	qingfeng.ETOTPENROLL:     fiber.StatusForbidden,
}

// fiberErrors maps Fiber's own errors (unknown route, wrong method, oversized body)
// into our vocabulary, so every error a client sees has the same shape.
var fiberErrors = map[int]*qingfeng.Error{
	fiber.StatusNotFound:              qingfeng.Errorf(qingfeng.ENOTFOUND, "接口不存在", "no such endpoint"),
	fiber.StatusMethodNotAllowed:      errMethodNotAllowed,
	fiber.StatusRequestEntityTooLarge: qingfeng.Errorf(qingfeng.ETOOLARGE, "请求内容过大", "request body too large"),
	fiber.StatusRequestTimeout:        qingfeng.Errorf(qingfeng.EINVALID, "请求超时", "request timed out"),
	fiber.StatusUnsupportedMediaType:  qingfeng.Errorf(qingfeng.EUNSUPPORTED, "不支持的内容类型", "unsupported content type"),
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string                `json:"code"`
	Message string                `json:"message"`
	Fields  map[string]fieldError `json:"fields,omitempty"`
	Allowed []string              `json:"allowed,omitempty"`
	// PoW is a fresh challenge with a 428 pow_required.
	PoW *powChallengeView `json:"pow,omitempty"`
}

type fieldError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handleError turns any error into {"error":{code,message,fields}} with the status for
// its code. Messages are Chinese unless the client prefers English; internal details
// are logged with the request id and never sent.
func (s *Server) handleError(c fiber.Ctx, err error) error {
	var (
		qe *qingfeng.Error
		fe *fiber.Error
	)
	if errors.As(err, &fe) && fe.Code == fiber.StatusNotFound && s.pages != nil && isPagePath(c.Path()) {
		// A mistyped page address (a QR code cut short, /reprot) gets the pages' own
		// Chinese 404 page with their headers, not the API's JSON.
		setPageHeaders(c, true)
		return s.pageError(c, qingfeng.Errorf(qingfeng.ENOTFOUND, "您要找的页面不存在，请检查地址是否输入正确。", "no such page"))
	}
	switch {
	case errors.As(err, &qe):
	case errors.As(err, &fe):
		if m, ok := fiberErrors[fe.Code]; ok {
			qe = m
		} else if fe.Code >= 500 {
			qe = internal
		} else {
			qe = qingfeng.Errorf(qingfeng.EINVALID, "请求有误", "bad request")
		}
	default:
		qe = internal
	}
	if qe.Code == qingfeng.EINTERNAL || qe.Code == qingfeng.EUNAVAILABLE {
		s.d.Log.Error("request failed", "route", c.Route().Path, "request_id", requestid.FromContext(c), "err", err)
	}
	english := prefersEnglish(c.Get(fiber.HeaderAcceptLanguage))
	body := errorBody{Error: errorDetail{Code: qe.Code, Message: qe.Message, Allowed: qe.Allowed}}
	if english {
		body.Error.Message = qe.English
	}
	if len(qe.Fields) > 0 {
		body.Error.Fields = make(map[string]fieldError, len(qe.Fields))
		for k, f := range qe.Fields {
			m := f.Message
			if english {
				m = f.English
			}
			body.Error.Fields[k] = fieldError{Code: f.Code, Message: m}
		}
	}
	status, ok := statusOf[qe.Code]
	if !ok {
		status = fiber.StatusInternalServerError
	}
	var pr *powRequired
	if errors.As(err, &pr) {
		body.Error.PoW = challengeView(pr.challenge)
	}
	if qe.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int((qe.RetryAfter+time.Second-1)/time.Second)))
	} else if secs, ok := retryAfter[qe.Code]; ok {
		c.Set(fiber.HeaderRetryAfter, secs)
	}
	return c.Status(status).JSON(body)
}

// retryAfter is the Retry-After (seconds) sent with the errors a client should retry:
// the same request, unchanged, is expected to succeed later.
var retryAfter = map[string]string{
	qingfeng.ERATELIMIT:   "60",
	qingfeng.EUNAVAILABLE: "30",
	qingfeng.EINPROGRESS:  "2",
}

var internal = qingfeng.Errorf(qingfeng.EINTERNAL, "服务器内部错误，请稍后重试", "internal error; please retry later")

// prefersEnglish reads Accept-Language: English only when it ranks above Chinese.
func prefersEnglish(h string) bool {
	for _, part := range strings.Split(h, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return false
		case strings.HasPrefix(tag, "en"):
			return true
		}
	}
	return false
}
