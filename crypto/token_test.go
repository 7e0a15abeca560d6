package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

var tokenNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newTestSigner(t testing.TB) (*TokenSigner, ed25519.PrivateKey) {
	t.Helper()
	key, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewTokenSigner(key, func() time.Time { return tokenNow })
	if err != nil {
		t.Fatal(err)
	}
	return s, key
}

func staffClaims() accounts.Claims {
	return accounts.Claims{
		Subject:   "u-7f3a",
		Audience:  accounts.AudienceStaff,
		Role:      accounts.RoleStaff,
		UnitID:    "unit-330782-jw",
		Division:  "330782",
		SessionID: "s-91c2",
		ID:        "jti-1",
		ExpiresAt: tokenNow.Add(15 * time.Minute),
	}
}

// payload is the JSON claims of a hand-made token, starting from what Sign writes.
func payload(mod func(m map[string]any)) map[string]any {
	m := map[string]any{
		"iss": TokenIssuer, "sub": "u-7f3a", "aud": accounts.AudienceStaff,
		"exp": tokenNow.Add(15 * time.Minute).Unix(), "nbf": tokenNow.Unix(), "iat": tokenNow.Unix(),
		"jti": "jti-x", "role": "admin", "unit": "unit-1", "division": "33",
	}
	if mod != nil {
		mod(m)
	}
	return m
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signWith signs claims with an arbitrary method and key, as an attacker or a buggy
// issuer would.
func signWith(t testing.TB, method jwt.SigningMethod, key any, claims map[string]any) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, jwt.MapClaims(claims)).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenRoundtrip(t *testing.T) {
	s, _ := newTestSigner(t)
	in := staffClaims()
	in.ExpiresAt = in.ExpiresAt.Add(700*time.Millisecond + 400*time.Microsecond) // truncated to the millisecond
	tok, err := s.Sign(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(tok, accounts.AudienceStaff)
	if err != nil {
		t.Fatal(err)
	}
	want := staffClaims()
	if w := want.ExpiresAt.Add(700 * time.Millisecond); !got.ExpiresAt.Equal(w) {
		t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, w)
	}
	if !got.IssuedAt.Equal(tokenNow) {
		t.Errorf("IssuedAt = %v, want %v", got.IssuedAt, tokenNow)
	}
	got.ExpiresAt, want.ExpiresAt, got.IssuedAt = time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("Verify = %+v, want %+v", got, want)
	}

	// The wire format is what other services and the lead's docs expect.
	parts := strings.Split(tok, ".")
	var hdr, body map[string]any
	decodePart(t, parts[0], &hdr)
	decodePart(t, parts[1], &body)
	if hdr["alg"] != "EdDSA" || hdr["kid"] == "" {
		t.Errorf("header = %v", hdr)
	}
	for k, v := range map[string]any{
		"iss": "qingfeng", "sub": "u-7f3a", "aud": "qingfeng-staff", "role": "staff",
		"unit": "unit-330782-jw", "division": "330782", "sid": "s-91c2", "jti": "jti-1",
		"iat": float64(tokenNow.Unix()), "nbf": float64(tokenNow.Unix()),
		"exp": float64(tokenNow.Add(15*time.Minute).Unix()) + 0.7,
	} {
		if body[k] != v {
			t.Errorf("claim %s = %#v, want %#v", k, body[k], v)
		}
	}
}

func decodePart(t *testing.T, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestTokenFollowUp(t *testing.T) {
	s, _ := newTestSigner(t)
	tok, err := s.Sign(accounts.Claims{Subject: "case-x1", Audience: accounts.AudienceFollowUp, ExpiresAt: tokenNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Verify(tok, accounts.AudienceFollowUp)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "case-x1" || c.Role != "" || c.ID == "" {
		t.Errorf("Verify = %+v; want the case, no role, a generated jti", c)
	}
	tok2, _ := s.Sign(accounts.Claims{Subject: "case-x1", Audience: accounts.AudienceFollowUp, ExpiresAt: tokenNow.Add(time.Hour)})
	c2, _ := s.Verify(tok2, accounts.AudienceFollowUp)
	if c2.ID == c.ID {
		t.Error("generated jti repeats")
	}
}

func TestSignRefusesIncompleteClaims(t *testing.T) {
	s, _ := newTestSigner(t)
	tests := map[string]func(c *accounts.Claims){
		"no audience":  func(c *accounts.Claims) { c.Audience = "" },
		"no subject":   func(c *accounts.Claims) { c.Subject = "" },
		"no expiry":    func(c *accounts.Claims) { c.ExpiresAt = time.Time{} },
		"expired":      func(c *accounts.Claims) { c.ExpiresAt = tokenNow.Add(-time.Second) },
		"unknown role": func(c *accounts.Claims) { c.Role = "root" },
	}
	for name, mod := range tests {
		c := staffClaims()
		mod(&c)
		if tok, err := s.Sign(c); err == nil {
			t.Errorf("%s: signed %s", name, tok)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	s, key := newTestSigner(t)
	pub := key.Public().(ed25519.PublicKey)
	good, err := s.Sign(staffClaims())
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	followUp, err := s.Sign(accounts.Claims{Subject: "case-x1", Audience: accounts.AudienceFollowUp, ExpiresAt: tokenNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	tests := []struct {
		name     string
		token    string
		audience string
		now      time.Time
		cause    error // when set, errors.Is(err, cause) must hold
	}{
		{name: "alg none", token: b64json(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64json(t, payload(nil)) + "."},
		{name: "alg none, mixed case", token: b64json(t, map[string]string{"alg": "nOnE", "typ": "JWT"}) + "." + b64json(t, payload(nil)) + "."},
		{name: "HS256 keyed with the public key", token: signWith(t, jwt.SigningMethodHS256, []byte(pub), payload(nil)), cause: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the base64 public key", token: signWith(t, jwt.SigningMethodHS256, []byte(base64.StdEncoding.EncodeToString(pub)), payload(nil))},
		{name: "RS256", token: signWith(t, jwt.SigningMethodRS256, rsaKey, payload(nil)), cause: jwt.ErrTokenSignatureInvalid},
		{name: "another Ed25519 key", token: signWith(t, jwt.SigningMethodEdDSA, otherKey, payload(nil)), cause: jwt.ErrTokenSignatureInvalid},
		{name: "follow-up token presented for staff", token: followUp, audience: accounts.AudienceStaff, cause: jwt.ErrTokenInvalidAudience},
		{name: "staff token presented for follow-up", token: good, audience: accounts.AudienceFollowUp, cause: jwt.ErrTokenInvalidAudience},
		{name: "no audience expected", token: good, audience: ""},
		{name: "expired beyond leeway", token: good, now: tokenNow.Add(15*time.Minute + TokenLeeway + time.Second), cause: jwt.ErrTokenExpired},
		{name: "not yet valid", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { m["nbf"] = tokenNow.Add(5 * time.Minute).Unix() })), cause: jwt.ErrTokenNotValidYet},
		{name: "issued in the future", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { m["iat"] = tokenNow.Add(5 * time.Minute).Unix() })), cause: jwt.ErrTokenUsedBeforeIssued},
		{name: "tampered payload", token: parts[0] + "." + b64json(t, payload(func(m map[string]any) { m["role"] = "admin"; m["sub"] = "u-7f3a" })) + "." + parts[2], cause: jwt.ErrTokenSignatureInvalid},
		{name: "tampered signature", token: parts[0] + "." + parts[1] + "." + flipLast(parts[2])},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + "."},
		{name: "missing exp", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { delete(m, "exp") })), cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong issuer", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { m["iss"] = "evil" })), cause: jwt.ErrTokenInvalidIssuer},
		{name: "missing issuer", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { delete(m, "iss") })), cause: jwt.ErrTokenRequiredClaimMissing},
		{name: "audience as array", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { m["aud"] = []string{accounts.AudienceStaff} }))},
		{name: "missing subject", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { delete(m, "sub") }))},
		{name: "missing jti", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { delete(m, "jti") }))},
		{name: "unknown role", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { m["role"] = "root" }))},
		{name: "exp as string", token: signWith(t, jwt.SigningMethodEdDSA, key, payload(func(m map[string]any) { m["exp"] = "never" }))},
		{name: "empty", token: ""},
		{name: "garbage", token: "not.a.token"},
		{name: "oversized", token: good + strings.Repeat("A", maxTokenBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.now.IsZero() {
				now := tt.now
				s.now = func() time.Time { return now }
				defer func() { s.now = func() time.Time { return tokenNow } }()
			}
			aud := accounts.AudienceStaff
			if tt.audience != "" || tt.name == "no audience expected" {
				aud = tt.audience
			}
			c, err := s.Verify(tt.token, aud)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if c != (accounts.Claims{}) {
				t.Errorf("claims returned with the error: %+v", c)
			}
			var e *qingfeng.Error
			if !errors.As(err, &e) || e.Code != qingfeng.EUNAUTHORIZED || e.Message != qingfeng.ErrUnauthorized.Message {
				t.Fatalf("error %v is not an EUNAUTHORIZED *qingfeng.Error", err)
			}
			if e.Err == nil {
				t.Error("the cause is not wrapped")
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %v does not wrap %v", err, tt.cause)
			}
		})
	}
}

func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-2] == 'A' {
		b[len(b)-2] = 'B'
	} else {
		b[len(b)-2] = 'A'
	}
	return string(b)
}

func TestVerifyLeeway(t *testing.T) {
	s, _ := newTestSigner(t)
	tok, err := s.Sign(staffClaims())
	if err != nil {
		t.Fatal(err)
	}
	// A replica whose clock is 20 s ahead still accepts a token just past exp, and
	// one 20 s behind accepts a token issued "in the future".
	for _, now := range []time.Time{tokenNow.Add(15*time.Minute + 20*time.Second), tokenNow.Add(-20 * time.Second)} {
		s.now = func() time.Time { return now }
		if _, err := s.Verify(tok, accounts.AudienceStaff); err != nil {
			t.Errorf("at %v: %v", now.Sub(tokenNow), err)
		}
	}
	s.now = func() time.Time { return tokenNow.Add(-TokenLeeway - time.Second) }
	if _, err := s.Verify(tok, accounts.AudienceStaff); !errors.Is(err, jwt.ErrTokenUsedBeforeIssued) && !errors.Is(err, jwt.ErrTokenNotValidYet) {
		t.Errorf("token used %v before issue: %v", TokenLeeway+time.Second, err)
	}
}

func TestNewTokenSignerRejectsBadKey(t *testing.T) {
	if _, err := NewTokenSigner(make(ed25519.PrivateKey, 31), nil); err == nil {
		t.Error("accepted a short key")
	}
	key, _ := GenerateSigningKey()
	s, err := NewTokenSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	// With the real clock.
	tok, err := s.Sign(accounts.Claims{Subject: "u", Audience: accounts.AudienceStaff, ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(tok, accounts.AudienceStaff); err != nil {
		t.Error(err)
	}
	if !s.PublicKey().Equal(key.Public()) {
		t.Error("PublicKey is not the key's")
	}
}

func TestSigningKeyPEM(t *testing.T) {
	key, _ := GenerateSigningKey()
	pemBytes, err := MarshalSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("not a PKCS#8 PEM: %.40q", pemBytes)
	}
	back, err := ParseSigningKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(key) {
		t.Error("PEM round trip changed the key")
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPEM, _ := marshalPKCS8PEM(rsaKey)
	for name, in := range map[string][]byte{
		"empty":      nil,
		"not PEM":    []byte("hello"),
		"RSA key":    rsaPEM,
		"wrong type": []byte(strings.Replace(string(pemBytes), "PRIVATE KEY", "PUBLIC KEY", 2)),
		"corrupt":    []byte(strings.Replace(string(pemBytes), "MC4CAQAw", "MC4CAQBw", 1)),
	} {
		if _, err := ParseSigningKey(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadOrCreateSigningKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "token.pem")
	k1, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("reloading the key changed it: every session would end on restart")
	}
	// Tokens survive a restart.
	s1, _ := NewTokenSigner(k1, func() time.Time { return tokenNow })
	s2, _ := NewTokenSigner(k2, func() time.Time { return tokenNow })
	tok, _ := s1.Sign(staffClaims())
	if _, err := s2.Verify(tok, accounts.AudienceStaff); err != nil {
		t.Errorf("token from before the restart refused: %v", err)
	}
	if runtime.GOOS != "windows" {
		os.Chmod(path, 0o640)
		if _, err := LoadOrCreateSigningKey(path); err == nil {
			t.Error("a group-readable key file was accepted")
		}
	}
	bad := filepath.Join(t.TempDir(), "token.pem")
	os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	if _, err := LoadOrCreateSigningKey(bad); err == nil {
		t.Error("a corrupt key file was accepted")
	}
}

func marshalPKCS8PEM(key any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// TestTokenTimesExactToTheMillisecond: a token read back says the millisecond it was
// issued in, for every millisecond of a second (golang-jwt's float reading gave some a
// millisecond early: a login just after a reporter's logout then looked issued before it).
func TestTokenTimesExactToTheMillisecond(t *testing.T) {
	key, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 2, 3, 40, 0, 0, time.UTC)
	early := 0
	for ms := range 1000 {
		at := base.Add(time.Duration(ms)*time.Millisecond + 456*time.Microsecond)
		s, err := NewTokenSigner(key, func() time.Time { return at })
		if err != nil {
			t.Fatal(err)
		}
		c := accounts.Claims{Subject: "case-1", Audience: accounts.AudienceFollowUp, ExpiresAt: at.Add(time.Hour)}
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Verify(tok, accounts.AudienceFollowUp)
		if err != nil {
			t.Fatal(err)
		}
		if want := at.Truncate(time.Millisecond); !got.IssuedAt.Equal(want) {
			early++
			if early < 4 {
				t.Errorf("issued at %s, read back as %s", want.Format(time.RFC3339Nano), got.IssuedAt.Format(time.RFC3339Nano))
			}
		}
	}
	if early > 0 {
		t.Errorf("%d of 1000 milliseconds read back otherwise", early)
	}
	// A NumericDate written otherwise (no decimals, an exponent) still reads.
	for in, want := range map[string]time.Time{"1733000000": time.Unix(1733000000, 0), "1733000000.5": time.Unix(1733000000, 5e8),
		"1.733000000123e9": time.Unix(1733000000, 123e6)} {
		var d msDate
		if err := d.UnmarshalJSON([]byte(in)); err != nil || !d.Time.Equal(want) {
			t.Errorf("%s: %v, %v; want %v", in, d.Time, err, want)
		}
	}
	var d msDate
	if err := d.UnmarshalJSON([]byte(`"soon"`)); err == nil {
		t.Error("a string read as a NumericDate")
	}
}
