package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ReceiptDigits is the length of a receipt code (回执码): 15 random digits and a Luhn
// check digit. 15 digits are about 50 bits: far beyond online guessing under a rate
// limit, and offline guessing needs the pepper (see Pepper). Digits, because a reporter
// may have to read the code over the phone or type it on a feature-phone keypad.
const ReceiptDigits = 16

// NewReceiptCode returns a fresh receipt code, 16 decimal digits of which the last is a
// Luhn check digit, so that a mistyped code is refused before any lookup (and before it
// counts against the reporter's rate limit as a wrong guess).
func NewReceiptCode() string {
	var code [ReceiptDigits]byte
	var buf [32]byte
	n := 0
	for n < ReceiptDigits-1 {
		rand.Read(buf[:]) // never fails (crypto/rand since Go 1.24)
		for _, b := range buf {
			// Rejection sampling: 250 is the largest multiple of 10 ≤ 256, so every
			// digit is exactly equally likely.
			if b < 250 && n < ReceiptDigits-1 {
				code[n] = '0' + b%10
				n++
			}
		}
	}
	code[ReceiptDigits-1] = luhnCheckDigit(code[:ReceiptDigits-1])
	return string(code[:])
}

// luhnCheckDigit returns the digit that makes payload+digit pass the Luhn check.
func luhnCheckDigit(payload []byte) byte {
	sum := 0
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		// The check digit will be the rightmost, undoubled; so the payload's rightmost
		// digit is doubled, and every second one to its left.
		if (len(payload)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

func luhnValid(digits string) bool {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// NormalizeReceipt returns the canonical 16-digit form of a receipt code as a reporter
// typed or pasted it: spaces and dashes (ASCII or full-width, as Chinese input methods
// produce) are removed and full-width digits become ASCII. It reports false unless the
// result is 16 digits passing the Luhn check.
func NormalizeReceipt(s string) (string, bool) {
	if len(s) > 4*ReceiptDigits*3 { // generous for separators and 3-byte full-width runes
		return "", false
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= '０' && r <= '９':
			b.WriteRune('0' + (r - '０'))
		case unicode.IsSpace(r), r == '-', r == '－', r == '—', r == '–', r == '‐', r == '−', unicode.Is(unicode.Cf, r):
			// separators, and the invisible characters a copy from a page can carry: ignore
		default:
			return "", false
		}
	}
	code := b.String()
	if len(code) != ReceiptDigits || !luhnValid(code) {
		return "", false
	}
	return code, true
}

// FormatReceipt groups a receipt code 4-4-4-4 with spaces, as Chinese bank card numbers
// are shown, so that it is easy to read back and copy by hand. Anything that is not a
// valid code is returned unchanged.
func FormatReceipt(code string) string {
	c, ok := NormalizeReceipt(code)
	if !ok {
		return code
	}
	return c[0:4] + " " + c[4:8] + " " + c[8:12] + " " + c[12:16]
}

// HKDF labels: one key per use, so that a value computed for one purpose can never be
// replayed as another (an idempotency key hash as a receipt hash, say).
const (
	labelReceiptHash = "qingfeng receipt v1"
	labelIdempotency = "qingfeng idempotency-key v1"
	labelRefresh     = "qingfeng refresh-token v1"
	labelKeyedHash   = "qingfeng keyed-hash v1"
	labelReceiptSeal = "qingfeng receipt-seal v1"
	labelRefreshNext = "qingfeng refresh-next v1"
	labelTOTPSeal    = "qingfeng totp-seal v1"
)

// MinPepperBytes is the minimum length of a pepper secret.
const MinPepperBytes = 32

// Pepper is the server-held secret (not stored in the database) under which receipt
// codes, idempotency keys and refresh tokens are hashed and receipts are encrypted for
// idempotent replay. A copy of the database alone then can neither recover a receipt
// code nor test guesses against the stored hashes: 10^15 candidate codes would be an
// afternoon's work against a plain SHA-256.
//
// Losing the pepper makes every receipt code unusable; back it up with the database
// but not in it. A Pepper is immutable and safe for concurrent use. Use one from
// NewPepper, ParsePepper or LoadOrCreatePepper: methods panic on a zero Pepper, since
// hashing under an empty key would silently remove the protection.
type Pepper struct {
	receiptKey, idemKey, refreshKey, keyedKey, sealKey, nextKey, totpKey []byte
}

// NewPepper derives a Pepper's keys from secret, which must be at least 32 bytes.
func NewPepper(secret []byte) (*Pepper, error) {
	if len(secret) < MinPepperBytes {
		return nil, fmt.Errorf("pepper: %d bytes, need at least %d random bytes", len(secret), MinPepperBytes)
	}
	if len(bytes.Trim(secret, "\x00")) == 0 {
		return nil, errors.New("pepper: all zero bytes; generate it with `openssl rand -base64 32`")
	}
	derive := func(label string) []byte {
		// HKDF-SHA256 with a fixed label per use; no salt is needed for a uniformly
		// random secret. It cannot fail for a 32-byte output.
		k, err := hkdf.Key(sha256.New, secret, nil, label, 32)
		if err != nil {
			panic("qfcrypto: hkdf: " + err.Error())
		}
		return k
	}
	return &Pepper{
		receiptKey: derive(labelReceiptHash),
		idemKey:    derive(labelIdempotency),
		refreshKey: derive(labelRefresh),
		keyedKey:   derive(labelKeyedHash),
		sealKey:    derive(labelReceiptSeal),
		nextKey:    derive(labelRefreshNext),
		totpKey:    derive(labelTOTPSeal),
	}, nil
}

// ParsePepper parses a base64 pepper (standard alphabet, padded or not), as kept in a
// secret file or a QINGFENG_*_FILE variable. Surrounding whitespace is ignored.
func ParsePepper(b64 string) (*Pepper, error) {
	s := strings.TrimSpace(b64)
	secret, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		secret, err = base64.RawStdEncoding.Strict().DecodeString(s)
	}
	if err != nil {
		// Never quote the input: it is a secret, and errors are logged.
		return nil, errors.New("pepper: not valid base64")
	}
	return NewPepper(secret)
}

// LoadOrCreatePepper reads the base64 pepper file at path, or creates it with 32 random
// bytes and mode 0600 if it does not exist (the zero-configuration default). A file
// readable by group or others is refused.
func LoadOrCreatePepper(path string) (*Pepper, error) {
	data, err := loadOrCreateSecret(path, func() ([]byte, error) {
		secret := make([]byte, MinPepperBytes)
		rand.Read(secret)
		return []byte(base64.StdEncoding.EncodeToString(secret) + "\n"), nil
	})
	if err != nil {
		return nil, fmt.Errorf("load pepper: %w", err)
	}
	p, err := ParsePepper(string(data))
	if err != nil {
		return nil, fmt.Errorf("load pepper from %s: %w", path, err)
	}
	return p, nil
}

func (p *Pepper) mustBeSet() {
	if p == nil || p.receiptKey == nil {
		panic("qfcrypto: Pepper used before it was created with NewPepper, ParsePepper or LoadOrCreatePepper")
	}
}

func mac(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

// HashReceipt returns the keyed hash of a receipt code under which its case is stored
// and looked up. Formatting is ignored ("1234 5678 ..." hashes like "12345678...").
func (p *Pepper) HashReceipt(code string) []byte {
	p.mustBeSet()
	if c, ok := NormalizeReceipt(code); ok {
		code = c
	}
	return mac(p.receiptKey, code)
}

// HashIdempotencyKey returns the keyed hash (hex) under which an Idempotency-Key is
// stored: the key is client-chosen and may be guessable, and its record leads to a case.
func (p *Pepper) HashIdempotencyKey(key string) string {
	p.mustBeSet()
	return hex.EncodeToString(mac(p.idemKey, key))
}

// HashRefreshToken returns the keyed hash (hex) under which a refresh token is stored,
// so that a database reader cannot use the stored value as a token.
func (p *Pepper) HashRefreshToken(tok string) string {
	p.mustBeSet()
	return hex.EncodeToString(mac(p.refreshKey, tok))
}

// KeyedHash returns a keyed hash (hex) of s for any other fingerprint that must not be
// brute-forceable from a database copy (e.g. a request body fingerprint). Callers
// should prefix s with their purpose to keep fingerprints of different uses apart.
func (p *Pepper) KeyedHash(s string) string {
	p.mustBeSet()
	return hex.EncodeToString(mac(p.keyedKey, s))
}

const (
	receiptSealV1 = 1 // under the pepper-derived key alone (records written before v2)
	receiptSealV2 = 2 // under a key derived from the pepper and the request's key
	gcmNonceSize  = 12
)

func (p *Pepper) receiptAEAD(version byte, requestKey string) cipher.AEAD {
	key := p.sealKey
	if version == receiptSealV2 {
		var err error
		if key, err = hkdf.Key(sha256.New, p.sealKey, nil, labelReceiptSeal+" v2\x00"+requestKey, 32); err != nil {
			panic("qfcrypto: hkdf: " + err.Error())
		}
	}
	return aead(key)
}

func aead(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("qfcrypto: aes: " + err.Error()) // the key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("qfcrypto: gcm: " + err.Error())
	}
	return aead
}

// SealReceipt encrypts a receipt code with AES-256-GCM, for the idempotency record
// that lets a retried submission be told the same code, under a key derived (HKDF)
// from the pepper and requestKey, the client's Idempotency-Key, which is stored only
// as a keyed hash. So the record opens only for a request that carries the key:
// neither a copy of the database, nor one with the pepper, can read the receipt. The
// output is version(1) || nonce(12) || ciphertext+tag; the nonce is random, which is
// safe far beyond the number of receipts this service will ever issue.
func (p *Pepper) SealReceipt(code, requestKey string) []byte {
	p.mustBeSet()
	out := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(code)+16)
	out[0] = receiptSealV2
	rand.Read(out[1:])
	return p.receiptAEAD(receiptSealV2, requestKey).Seal(out, out[1:1+gcmNonceSize], []byte(code), []byte(labelReceiptSeal))
}

// OpenReceipt decrypts the output of SealReceipt given the same requestKey, and checks
// that it is a receipt code. A failure means another key, tampering, a changed pepper
// or a bug: it is an internal error. A v1 record (sealed under the pepper alone, before
// the request key was used) still opens, whatever requestKey is.
func (p *Pepper) OpenReceipt(sealed []byte, requestKey string) (string, error) {
	p.mustBeSet()
	if len(sealed) < 1+gcmNonceSize+16 || (sealed[0] != receiptSealV1 && sealed[0] != receiptSealV2) {
		return "", errors.New("open receipt: malformed sealed receipt")
	}
	plain, err := p.receiptAEAD(sealed[0], requestKey).Open(nil, sealed[1:1+gcmNonceSize], sealed[1+gcmNonceSize:], []byte(labelReceiptSeal))
	if err != nil {
		return "", fmt.Errorf("open receipt: %w (was the pepper changed?)", err)
	}
	code, ok := NormalizeReceipt(string(plain))
	if !ok {
		return "", errors.New("open receipt: decrypted value is not a receipt code")
	}
	return code, nil
}

// NextRefreshToken derives the secret that replaces refresh token tok: HMAC-SHA256 under
// a pepper-derived key, base64url. Deterministic, so that parallel refreshes with one
// token agree on the next one; unpredictable without the pepper, so that a database
// reader who sees the stored hashes learns nothing.
func (p *Pepper) NextRefreshToken(tok string) string {
	p.mustBeSet()
	return base64.RawURLEncoding.EncodeToString(mac(p.nextKey, tok))
}

const totpSealVersion = 1

// SealTOTPSecret encrypts an account's TOTP secret with AES-256-GCM under a
// pepper-derived key, bound to the account id (so a database writer cannot move one
// account's second factor onto another). A database copy without the pepper cannot
// compute anyone's codes; a database writer can still remove a second factor (clear the
// field), which is why resets are audited and the state is shown to admins.
func (p *Pepper) SealTOTPSecret(userID string, secret []byte) []byte {
	p.mustBeSet()
	out := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(secret)+16)
	out[0] = totpSealVersion
	rand.Read(out[1:])
	return aead(p.totpKey).Seal(out, out[1:1+gcmNonceSize], secret, []byte(labelTOTPSeal+"\x00"+userID))
}

// OpenTOTPSecret decrypts the output of SealTOTPSecret for the same account.
func (p *Pepper) OpenTOTPSecret(userID string, sealed []byte) ([]byte, error) {
	p.mustBeSet()
	if len(sealed) < 1+gcmNonceSize+16 || sealed[0] != totpSealVersion {
		return nil, errors.New("open TOTP secret: malformed")
	}
	plain, err := aead(p.totpKey).Open(nil, sealed[1:1+gcmNonceSize], sealed[1+gcmNonceSize:], []byte(labelTOTPSeal+"\x00"+userID))
	if err != nil {
		return nil, fmt.Errorf("open TOTP secret: %w (was the pepper changed, or the value moved?)", err)
	}
	return plain, nil
}
