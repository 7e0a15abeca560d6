package accounts

import (
	"strings"
	"testing"
	"time"
)

// TestTOTPVectors checks the RFC 6238 appendix B vectors for SHA-1 (the RFC's 8-digit
// values, of which a 6-digit code is the last six digits).
func TestTOTPVectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tt := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		if got := TOTPCode(secret, TOTPStep(time.Unix(tt.unix, 0))); got != tt.want[2:] {
			t.Errorf("T=%d: %s, want %s", tt.unix, got, tt.want[2:])
		}
	}
}

func TestMatchTOTPWindow(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1234567890, 0)
	step := TOTPStep(now)
	for d, ok := range map[int64]bool{-2: false, -1: true, 0: true, 1: true, 2: false} {
		got, match := matchTOTP(secret, TOTPCode(secret, step+d), now)
		if match != ok || (ok && got != step+d) {
			t.Errorf("offset %d: step %d, match %v; want match %v", d, got, match, ok)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		"123456":       "123456",
		" 123 456 ":    "123456",
		"１２３４５６":       "123456",
		"123\u200b456": "123456",
		"abcde-fghij":  "ABCDEFGHIJ",
		"ＡＢＣＤＥ－ＦＧＨＩＪ":  "ABCDEFGHIJ",
		"12345\u3000６": "123456",
	} {
		if got, ok := normalizeCode(in, 10); !ok || got != want {
			t.Errorf("normalizeCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "12345６７８９０1", "12345!", "١٢٣٤٥٦", strings.Repeat("1", 100), "12\n34"} {
		if got, ok := normalizeCode(in, 10); ok {
			t.Errorf("normalizeCode(%q) = %q, accepted", in, got)
		}
	}
}

func TestRecoveryCodesAndURI(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		c := newRecoveryCode()
		n, ok := normalizeCode(c, 10)
		if !ok || len(n) != 10 || seen[n] {
			t.Fatalf("recovery code %q: normalized %q, %v (seen: %v)", c, n, ok, seen[n])
		}
		seen[n] = true
	}
	u := totpURI("Qingfeng", "li.si", []byte("12345678901234567890"))
	if !strings.HasPrefix(u, "otpauth://totp/Qingfeng:li.si?") || !strings.Contains(u, "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") {
		t.Errorf("URI %s", u)
	}
}
