// Package qingfeng holds what every layer of the service shares: the one error type
// and its small code vocabulary. Domain packages return *Error for anything a client
// caused; handlers turn it into {"error":{...}} with a status from one table.
package qingfeng

import (
	"errors"
	"fmt"
	"time"
)

// Error codes: the machine-readable vocabulary clients program against.
const (
	EINVALID      = "invalid_input"  // 400/422: the request is malformed or fails validation
	EUNAUTHORIZED = "unauthorized"   // 401: no or bad credentials
	EFORBIDDEN    = "forbidden"      // 403: authenticated but not allowed
	ENOTFOUND     = "not_found"      // 404
	ECONFLICT     = "conflict"       // 409: state changed underneath, duplicate, invalid transition
	ETOOLARGE     = "too_large"      // 413: body, file or case over its limit
	EUNSUPPORTED  = "unsupported"    // 415: content type or file type not accepted
	ERATELIMIT    = "rate_limited"   // 429
	EPOWREQUIRED  = "pow_required"   // 428: solve a proof of work first (see package pow)
	EUNAVAILABLE  = "unavailable"    // 503: a backend is down
	EINTERNAL     = "internal_error" // 500: never carries details to the client

	// Account states a client must act on (see package accounts).
	ETOTPREQUIRED   = "totp_required"            // 401: right password, second factor missing
	EPASSWORDCHANGE = "password_change_required" // 403: change the one-time password first
	ETOTPENROLL     = "totp_enrollment_required" // 403: set up the second factor first
)

// FieldError names what is wrong with one request field.
type FieldError struct {
	Code    string `json:"code"`
	Message string `json:"message"`    // Chinese
	English string `json:"message_en"` // English, chosen by Accept-Language
}

// Error is the one error type clients see. Message is Chinese (the default language of
// every user of this service); English is used when the client asks for it.
type Error struct {
	Code    string
	Message string // Chinese, shown to users
	English string
	Fields  map[string]FieldError
	// Allowed lists permitted next states or values where that helps the client (e.g. 409).
	Allowed []string
	// RetryAfter, for ERATELIMIT, is how long the client should wait (Retry-After).
	RetryAfter time.Duration
	// Err is an underlying cause, logged, never sent.
	Err error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.English
	if len(e.Fields) > 0 {
		s += fmt.Sprintf(" %v", e.Fields)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a Chinese and an English message.
func Errorf(code, zh, en string) *Error { return &Error{Code: code, Message: zh, English: en} }

// Invalid builds a validation error from field errors.
func Invalid(fields map[string]FieldError) *Error {
	return &Error{Code: EINVALID, Message: "提交的内容有误，请检查标注的字段", English: "the request has invalid fields", Fields: fields}
}

// ErrorCode returns the code of err, EINTERNAL for anything that is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// Common errors.
var (
	ErrNotFound     = Errorf(ENOTFOUND, "未找到", "not found")
	ErrUnauthorized = Errorf(EUNAUTHORIZED, "未登录或登录已失效", "not authenticated or the session has expired")
	ErrForbidden    = Errorf(EFORBIDDEN, "无权执行此操作", "not allowed")
)
