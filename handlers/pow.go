package handlers

import (
	"crypto/rand"
	"errors"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/pow"
)

// HeaderPoW carries a solved proof of work: "<challenge>:<counter>".
const HeaderPoW = "X-Qingfeng-PoW"

// headerDevice carries a staff device cookie for API clients that keep no cookie jar.
const headerDevice = "X-Qingfeng-Device"

type powChallengeView struct {
	Challenge  string `json:"challenge"`
	Purpose    string `json:"purpose"`
	Difficulty int    `json:"difficulty"`
	ExpiresAt  string `json:"expires_at"`
	Algorithm  string `json:"algorithm"`
}

func challengeView(ch pow.Challenge) *powChallengeView {
	return &powChallengeView{Challenge: ch.Token, Purpose: string(ch.Purpose), Difficulty: ch.Difficulty,
		ExpiresAt: wireTime(ch.ExpiresAt), Algorithm: pow.Algorithm}
}

// powChallenge is GET /v1/pow/challenge?purpose=receipt|donor_check|report.
func (s *Server) powChallenge(c fiber.Ctx) error {
	p := pow.Purpose(c.Query("purpose"))
	if !p.Valid() {
		return fieldInvalid("purpose", "invalid_value", "purpose 只能是 receipt、donor_check 或 report", "one of receipt, donor_check, report")
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(challengeView(s.d.PoW.Issue(p)))
}

// powRequired is a 428 pow_required: the error body carries a fresh challenge, so a
// client solves it and retries without another round trip.
type powRequired struct {
	err       *qingfeng.Error
	challenge pow.Challenge
}

func (e *powRequired) Error() string { return e.err.Error() }
func (e *powRequired) Unwrap() error { return e.err }

// requirePoW admits a request of purpose p if it carries a valid solution or none is
// needed now. It reads one header and nothing about the client.
func (s *Server) requirePoW(c fiber.Ctx, p pow.Purpose) error {
	return s.requirePoWSolution(p, c.Get(HeaderPoW))
}

// requirePoWSolution is requirePoW for a solution carried elsewhere (a web form's field).
func (s *Server) requirePoWSolution(p pow.Purpose, solution string) error {
	err := s.d.PoW.Verify(p, solution)
	if err == nil {
		return nil
	}
	ch := s.d.PoW.Issue(p)
	qe := &qingfeng.Error{Code: qingfeng.EPOWREQUIRED, Err: err,
		Message: "当前服务正受到大量猜测尝试，为保护举报人，每次查询或提交前需由您的设备完成一次计算验证（通常几秒钟）。" +
			"应用会自动完成；如果您使用的网页无法自动完成，请开启 JavaScript 后重试，或稍等几分钟再试。这不是封禁，也不会记录您的任何信息。",
		English: "the service is under a guessing flood: to protect reporters, your device must solve a proof of work (usually a few seconds) before each look-up or submission. " +
			"Apps do this automatically; a page that cannot must enable JavaScript, or wait a few minutes and retry. Nothing about you is recorded, and nobody is locked out.",
		RetryAfter: time.Second}
	if errors.Is(err, pow.ErrBusy) {
		qe.RetryAfter = 30 * time.Second
	}
	return &powRequired{err: qe, challenge: ch}
}

func newRandomGuard() *pow.Guard {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	g, err := pow.New(key, pow.DefaultConfig)
	if err != nil {
		panic(err) // a 32-byte key is always accepted
	}
	return g
}
