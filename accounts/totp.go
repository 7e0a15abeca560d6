package accounts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP (RFC 6238) as every authenticator app implements it: HMAC-SHA-1, 6 digits,
// 30-second steps. It is a few lines over crypto/hmac, so no dependency is taken for it;
// the RFC's test vectors are in totp_test.go.
const (
	TOTPDigits = 6
	TOTPPeriod = 30 * time.Second
	// totpSkew is how many steps either side of now are accepted, for phone clocks
	// that drift and codes typed near the end of their step.
	totpSkew = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTPStep is the RFC 6238 time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// TOTPCode is the code of secret at time step step (RFC 4226 HOTP of the step).
func TOTPCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

// matchTOTP returns the step, within totpSkew of now's, whose code is code.
func matchTOTP(secret []byte, code string, now time.Time) (int64, bool) {
	step := TOTPStep(now)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		if subtle.ConstantTimeCompare([]byte(TOTPCode(secret, step+d)), []byte(code)) == 1 {
			return step + d, true
		}
	}
	return 0, false
}

// normalizeCode turns a code as typed (spaces, dashes, full-width digits or letters from
// a Chinese input method, lower case) into its canonical form: ASCII digits and upper
// case letters only. It reports false for any other character.
func normalizeCode(s string, max int) (string, bool) {
	if len(s) > 4*max {
		return "", false
	}
	var b strings.Builder
	for _, r := range s {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
			r -= 0xFEE0
		}
		switch {
		case r >= '0' && r <= '9', r >= 'A' && r <= 'Z':
			b.WriteRune(r)
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r == ' ', r == '-', r == '\u3000', r == '\u200b', r == '\ufeff':
		default:
			return "", false
		}
	}
	if b.Len() == 0 || b.Len() > max {
		return "", false
	}
	return b.String(), true
}

// newTOTPSecret is 160 random bits, the size RFC 4226 recommends.
func newTOTPSecret() []byte {
	b := make([]byte, 20)
	rand.Read(b)
	return b
}

// totpURI is the otpauth:// URI authenticator apps read from a QR code.
func totpURI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer + ":" + account)
	q := url.Values{"secret": {b32.EncodeToString(secret)}, "issuer": {issuer}, "algorithm": {"SHA1"},
		"digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// recoveryCodeCount recovery codes are issued at enrolment, each usable once.
const recoveryCodeCount = 10

// newRecoveryCode is 10 base32 characters (50 bits) shown as XXXXX-XXXXX.
func newRecoveryCode() string {
	b := make([]byte, 7)
	rand.Read(b)
	s := b32.EncodeToString(b)[:10]
	return s[:5] + "-" + s[5:]
}
