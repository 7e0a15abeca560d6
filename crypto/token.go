package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

const (
	// TokenIssuer is the iss of every access token.
	TokenIssuer = "qingfeng"
	// TokenLeeway tolerates clock skew between replicas (and a phone's clock does not
	// matter: tokens are checked only by the server).
	TokenLeeway = 30 * time.Second
	// maxTokenBytes refuses oversized input before any base64 or JSON work. Our tokens
	// are about 400 bytes.
	maxTokenBytes = 4096
)

func init() {
	// Tokens say when they were issued to the millisecond (RFC 7519's NumericDate may
	// be fractional): a reporter's logout refuses the follow-up tokens issued before it
	// (handlers' followUpClaims), and must not refuse one issued in the same second
	// after it. This is golang-jwt's one precision setting, for every time it writes
	// and compares.
	jwt.TimePrecision = time.Millisecond
}

// TokenSigner issues and verifies access tokens: JWTs signed with Ed25519 ("EdDSA").
// Verification accepts nothing else — no "none", no HMAC, no RSA — so an attacker cannot
// pick the algorithm (the classic confusion: HS256 with the public key as the secret).
// A TokenSigner is immutable and safe for concurrent use.
type TokenSigner struct {
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	kid  string
	now  func() time.Time
	opts []jwt.ParserOption
}

var _ accounts.TokenSigner = (*TokenSigner)(nil)

// NewTokenSigner returns a TokenSigner for key. now is the clock (time.Now if nil).
func NewTokenSigner(key ed25519.PrivateKey, now func() time.Time) (*TokenSigner, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("token signer: Ed25519 private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if now == nil {
		now = time.Now
	}
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	s := &TokenSigner{
		key: key,
		pub: pub,
		// kid lets a later version verify with several keys during a rotation; today
		// it is informational.
		kid: base64.RawURLEncoding.EncodeToString(sum[:8]),
		now: now,
	}
	s.opts = []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(TokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(TokenLeeway),
		jwt.WithTimeFunc(func() time.Time { return s.now() }),
		jwt.WithStrictDecoding(),
	}
	return s, nil
}

// PublicKey returns the verification key, e.g. for a future JWKS endpoint.
func (s *TokenSigner) PublicKey() ed25519.PublicKey { return s.pub }

// tokenClaims is the JWT payload. It implements jwt.Claims itself instead of embedding
// jwt.RegisteredClaims so that aud is a single string (RegisteredClaims writes an
// array unless a package-global switch is flipped) and a token with an array aud — not
// one we issued — fails to decode.
type tokenClaims struct {
	Issuer    string  `json:"iss"`
	Subject   string  `json:"sub"`
	Audience  string  `json:"aud"`
	ExpiresAt *msDate `json:"exp,omitempty"`
	NotBefore *msDate `json:"nbf,omitempty"`
	IssuedAt  *msDate `json:"iat,omitempty"`
	ID        string  `json:"jti"`
	Role      string  `json:"role,omitempty"`
	Unit      string  `json:"unit,omitempty"`
	Division  string  `json:"division,omitempty"`
	SessionID string  `json:"sid,omitempty"`
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return c.ExpiresAt.numeric(), nil
}
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)  { return c.IssuedAt.numeric(), nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.NotBefore.numeric(), nil }
func (c *tokenClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *tokenClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

// Validate is called by the parser after the registered claims pass.
func (c *tokenClaims) Validate() error {
	if c.Subject == "" {
		return errors.New("sub is empty")
	}
	if c.ID == "" {
		return errors.New("jti is empty")
	}
	if c.Role != "" && !accounts.Role(c.Role).Valid() {
		return fmt.Errorf("unknown role %q", c.Role)
	}
	return nil
}

// msDate is a NumericDate read back to the exact millisecond it was written with.
// golang-jwt reads one through a float64 and truncates: 1733000000.123 is the float
// 1733000000.12299990654, read as .122 — a millisecond early, which made a token issued
// just after a reporter's logout look issued in the logout's millisecond, and refused.
type msDate struct{ jwt.NumericDate }

func newMSDate(t time.Time) *msDate { return &msDate{*jwt.NewNumericDate(t)} }

func (d *msDate) numeric() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

// UnmarshalJSON reads seconds with up to three decimals exactly (what Sign writes);
// any other JSON number is read as golang-jwt reads it, rounded to the millisecond.
func (d *msDate) UnmarshalJSON(b []byte) error {
	s := string(b)
	whole, frac, dotted := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err == nil && (!dotted || len(frac) >= 1 && len(frac) <= 3 && strings.Trim(frac, "0123456789") == "") {
		msec := 0
		if dotted {
			msec, _ = strconv.Atoi((frac + "00")[:3])
		}
		d.Time = time.Unix(sec, int64(msec)*int64(time.Millisecond))
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("a NumericDate is a number: %w", err)
	}
	i, fr := math.Modf(f)
	d.Time = time.Unix(int64(i), int64(math.Round(fr*1e3))*int64(time.Millisecond))
	return nil
}

// Sign issues a token for c. Audience, Subject and a future ExpiresAt are required;
// iat and nbf are now; a random jti is generated when c.ID is empty (set it yourself if
// you need to know it, e.g. to revoke). Times are whole seconds in a JWT, so ExpiresAt
// is truncated to the second.
func (s *TokenSigner) Sign(c accounts.Claims) (string, error) {
	now := s.now()
	switch {
	case c.Audience == "":
		return "", errors.New("sign token: no audience")
	case c.Subject == "":
		return "", errors.New("sign token: no subject")
	case c.ExpiresAt.IsZero():
		return "", errors.New("sign token: no expiry")
	case !c.ExpiresAt.After(now):
		return "", fmt.Errorf("sign token: expiry %s is not after now %s", c.ExpiresAt.Format(time.RFC3339), now.Format(time.RFC3339))
	case c.Role != "" && !c.Role.Valid():
		return "", fmt.Errorf("sign token: unknown role %q", c.Role)
	}
	if c.ID == "" {
		c.ID = rand.Text()
	}
	claims := &tokenClaims{
		Issuer:    TokenIssuer,
		Subject:   c.Subject,
		Audience:  c.Audience,
		ExpiresAt: newMSDate(c.ExpiresAt),
		NotBefore: newMSDate(now),
		IssuedAt:  newMSDate(now),
		ID:        c.ID,
		Role:      string(c.Role),
		Unit:      c.UnitID,
		Division:  c.Division,
		SessionID: c.SessionID,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// errUnauthorized wraps cause in an EUNAUTHORIZED error with the shared message; the
// cause (expired, bad signature, ...) is for logs and errors.Is (e.g. jwt.ErrTokenExpired).
func errUnauthorized(cause error) *qingfeng.Error {
	return &qingfeng.Error{
		Code:    qingfeng.EUNAUTHORIZED,
		Message: qingfeng.ErrUnauthorized.Message,
		English: qingfeng.ErrUnauthorized.English,
		Err:     cause,
	}
}

// Verify checks token's algorithm (EdDSA only), signature, issuer, audience (exactly
// audience), expiry (required), not-before and issued-at, with TokenLeeway of clock
// skew. Every failure is an EUNAUTHORIZED *qingfeng.Error wrapping the cause.
func (s *TokenSigner) Verify(token, audience string) (accounts.Claims, error) {
	if audience == "" {
		return accounts.Claims{}, errUnauthorized(errors.New("verify token: no audience given"))
	}
	if len(token) > maxTokenBytes {
		return accounts.Claims{}, errUnauthorized(fmt.Errorf("verify token: %d bytes, longer than %d", len(token), maxTokenBytes))
	}
	// A parser per call: the expected audience is a parser option. It is a small struct.
	parser := jwt.NewParser(append(s.opts[:len(s.opts):len(s.opts)], jwt.WithAudience(audience))...)
	var c tokenClaims
	_, err := parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) {
		// Only ever the Ed25519 public key: WithValidMethods has already refused any
		// other alg, and this key type makes every other verifier fail anyway.
		return s.pub, nil
	})
	if err != nil {
		return accounts.Claims{}, errUnauthorized(fmt.Errorf("verify token: %w", err))
	}
	if c.IssuedAt == nil {
		return accounts.Claims{}, errUnauthorized(errors.New("verify token: no iat"))
	}
	return accounts.Claims{
		Subject:   c.Subject,
		Audience:  c.Audience,
		Role:      accounts.Role(c.Role),
		UnitID:    c.Unit,
		Division:  c.Division,
		SessionID: c.SessionID,
		ID:        c.ID,
		ExpiresAt: c.ExpiresAt.UTC(),
		IssuedAt:  c.IssuedAt.UTC(),
	}, nil
}

// GenerateSigningKey returns a new Ed25519 token signing key.
func GenerateSigningKey() (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return key, nil
}

// MarshalSigningKey encodes key as a PKCS#8 "PRIVATE KEY" PEM block (what
// `openssl genpkey -algorithm ed25519` writes).
func MarshalSigningKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseSigningKey parses a PKCS#8 PEM Ed25519 private key. Any other key type is refused.
func ParseSigningKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("parse signing key: no PEM block found")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("parse signing key: PEM block %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse signing key: %T, want an Ed25519 key", k)
	}
	return key, nil
}

// LoadOrCreateSigningKey reads the PKCS#8 PEM Ed25519 key at path, or creates one with
// mode 0600 if the file does not exist. A file readable by group or others is refused.
// Replacing the key logs out every session (access tokens stop verifying).
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	data, err := loadOrCreateSecret(path, func() ([]byte, error) {
		key, err := GenerateSigningKey()
		if err != nil {
			return nil, err
		}
		return MarshalSigningKey(key)
	})
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	key, err := ParseSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("load signing key from %s: %w", path, err)
	}
	return key, nil
}
