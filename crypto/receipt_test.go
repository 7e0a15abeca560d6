package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestLuhn(t *testing.T) {
	// Known Luhn-valid numbers: the textbook example and a card-network test number.
	for _, s := range []string{"79927398713", "4111111111111111", "0000000000000000"} {
		if !luhnValid(s) {
			t.Errorf("luhnValid(%s) = false", s)
		}
		if got := luhnCheckDigit([]byte(s[:len(s)-1])); got != s[len(s)-1] {
			t.Errorf("luhnCheckDigit(%s) = %c, want %c", s[:len(s)-1], got, s[len(s)-1])
		}
	}
	for _, s := range []string{"79927398710", "4111111111111112", "1000000000000000"} {
		if luhnValid(s) {
			t.Errorf("luhnValid(%s) = true", s)
		}
	}
}

func TestNewReceiptCode(t *testing.T) {
	const n = 5000
	seen := make(map[string]bool, n)
	var counts [ReceiptDigits - 1][10]int
	for range n {
		c := NewReceiptCode()
		if len(c) != ReceiptDigits || !isDigits(c) {
			t.Fatalf("code %q is not %d digits", c, ReceiptDigits)
		}
		if !luhnValid(c) {
			t.Fatalf("code %q fails its check digit", c)
		}
		if norm, ok := NormalizeReceipt(c); !ok || norm != c {
			t.Fatalf("NormalizeReceipt(%q) = %q, %v", c, norm, ok)
		}
		if seen[c] {
			t.Fatalf("code %q issued twice", c)
		}
		seen[c] = true
		for i := range ReceiptDigits - 1 {
			counts[i][c[i]-'0']++
		}
	}
	// Every random position uses every digit about equally: n/10 = 500 expected, and
	// a standard deviation of ~21, so 350..650 fails only for a broken generator
	// (a constant position, a modulo bias of 2x, a digit never drawn).
	for i, pos := range counts {
		for d, c := range pos {
			if c < 350 || c > 650 {
				t.Errorf("position %d: digit %d drawn %d times of %d", i, d, c, n)
			}
		}
	}
}

func TestReceiptCheckDigitCatchesTypos(t *testing.T) {
	for range 200 {
		c := []byte(NewReceiptCode())
		for i := range c {
			orig := c[i]
			for d := byte('0'); d <= '9'; d++ {
				if d == orig {
					continue
				}
				c[i] = d
				if _, ok := NormalizeReceipt(string(c)); ok {
					t.Fatalf("single-digit typo at %d accepted: %s", i, c)
				}
			}
			c[i] = orig
		}
		// Adjacent transpositions are caught except 09 <-> 90, Luhn's one blind spot.
		for i := 0; i+1 < len(c); i++ {
			a, b := c[i], c[i+1]
			if a == b || (a == '0' && b == '9') || (a == '9' && b == '0') {
				continue
			}
			c[i], c[i+1] = b, a
			if _, ok := NormalizeReceipt(string(c)); ok {
				t.Fatalf("transposition at %d accepted: %s", i, c)
			}
			c[i], c[i+1] = a, b
		}
	}
}

func TestNormalizeReceipt(t *testing.T) {
	const code = "4111111111111111"
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{code, code, true},
		{"4111 1111 1111 1111", code, true},
		{"4111-1111-1111-1111", code, true},
		{" 4111-1111 1111\t1111\n", code, true},
		{"４１１１　１１１１　１１１１　１１１１", code, true},                           // full-width digits and ideographic spaces
		{"4111－1111—1111–1111", code, true},                           // dashes from Chinese input methods
		{"\ufeff4111\u200b1111\u200b1111\u2060" + "1111", code, true}, // invisible characters copied from a page
		{"4111111111111112", "", false},                               // check digit wrong
		{"411111111111111", "", false},                                // 15 digits
		{"41111111111111110", "", false},                              // 17 digits
		{"4111 1111 1111 111O", "", false},                            // letter O for zero
		{"", "", false},
		{"----", "", false},
		{"4111.1111.1111.1111", "", false},
		{"٤١١١١١١١١١١١١١١١", "", false}, // Arabic-Indic digits are not accepted
		{strings.Repeat(" ", 1000) + code, "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeReceipt(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeReceipt(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFormatReceipt(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4111111111111111", "4111 1111 1111 1111"},
		{"4111-1111-1111-1111", "4111 1111 1111 1111"},
		{"not a code", "not a code"},
		{"4111111111111112", "4111111111111112"},
	}
	for _, tt := range tests {
		if got := FormatReceipt(tt.in); got != tt.want {
			t.Errorf("FormatReceipt(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	c := NewReceiptCode()
	if back, ok := NormalizeReceipt(FormatReceipt(c)); !ok || back != c {
		t.Errorf("FormatReceipt does not round-trip through NormalizeReceipt: %q", FormatReceipt(c))
	}
}

func testSecret(b byte) []byte { return bytes.Repeat([]byte{b}, MinPepperBytes) }

func mustPepper(t testing.TB, secret []byte) *Pepper {
	t.Helper()
	p, err := NewPepper(secret)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPepperRejectsWeakSecrets(t *testing.T) {
	for _, secret := range [][]byte{nil, testSecret(7)[:31], make([]byte, 64)} {
		if _, err := NewPepper(secret); err == nil {
			t.Errorf("NewPepper accepted a %d-byte weak secret", len(secret))
		}
	}
	if _, err := NewPepper(testSecret(7)); err != nil {
		t.Errorf("NewPepper refused a 32-byte secret: %v", err)
	}
}

func TestParsePepper(t *testing.T) {
	secret := testSecret(0x5a)
	want := mustPepper(t, secret).HashReceipt("4111111111111111")
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(secret),
		base64.RawStdEncoding.EncodeToString(secret),
		"  " + base64.StdEncoding.EncodeToString(secret) + "\n",
	} {
		p, err := ParsePepper(s)
		if err != nil {
			t.Fatalf("ParsePepper(%q): %v", s, err)
		}
		if !bytes.Equal(p.HashReceipt("4111111111111111"), want) {
			t.Errorf("ParsePepper(%q) gives another key", s)
		}
	}
	const notB64 = "this-is-my-secret-pepper-value-not-base64!!"
	_, err := ParsePepper(notB64)
	if err == nil {
		t.Fatal("ParsePepper accepted non-base64")
	}
	if strings.Contains(err.Error(), "secret-pepper") {
		t.Errorf("error quotes the secret: %v", err)
	}
	if _, err := ParsePepper(base64.StdEncoding.EncodeToString(secret[:16])); err == nil {
		t.Error("ParsePepper accepted a 16-byte secret")
	}
}

// A copy of the database holds HashReceipt(code). Without the pepper it must not be
// possible to test a guessed code against it, with or without the obvious shortcuts.
func TestReceiptHashNeedsThePepper(t *testing.T) {
	secret := testSecret(0x42)
	p := mustPepper(t, secret)
	other := mustPepper(t, testSecret(0x43))
	code := NewReceiptCode()
	stored := p.HashReceipt(code)

	if len(stored) != sha256.Size {
		t.Fatalf("hash is %d bytes", len(stored))
	}
	if !bytes.Equal(stored, p.HashReceipt(code)) {
		t.Fatal("HashReceipt is not deterministic: stored cases could not be found")
	}
	if !bytes.Equal(stored, p.HashReceipt(FormatReceipt(code))) {
		t.Error("the formatted code hashes differently")
	}
	if bytes.Equal(stored, p.HashReceipt(NewReceiptCode())) {
		t.Error("two codes hash alike")
	}
	plain := sha256.Sum256([]byte(code))
	guesses := map[string][]byte{
		"another pepper":             other.HashReceipt(code),
		"SHA-256(code)":              plain[:],
		"HMAC(empty key, code)":      hmacSHA256(nil, code),
		"HMAC(raw pepper, code)":     hmacSHA256(secret, code),
		"HMAC(label, code)":          hmacSHA256([]byte(labelReceiptHash), code),
		"SHA-256(pepper || code)":    sha256Of(append(bytes.Clone(secret), code...)),
		"idempotency key derivation": mustHex(t, p.HashIdempotencyKey(code)),
		"refresh token derivation":   mustHex(t, p.HashRefreshToken(code)),
		"generic keyed hash":         mustHex(t, p.KeyedHash(code)),
	}
	for name, g := range guesses {
		if bytes.Equal(g, stored) {
			t.Errorf("stored hash equals %s", name)
		}
	}
}

func hmacSHA256(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		t.Fatalf("%q is not a hex SHA-256: %v", s, err)
	}
	return b
}

func TestKeyedHashesAreSeparated(t *testing.T) {
	p := mustPepper(t, testSecret(1))
	q := mustPepper(t, testSecret(2))
	const v = "0b1c5d0e-7f5e-4a55-9a4e-5b0f1d2c3e4f"
	hashes := []string{p.HashIdempotencyKey(v), p.HashRefreshToken(v), p.KeyedHash(v), hex.EncodeToString(p.HashReceipt(v))}
	for i := range hashes {
		for j := range i {
			if hashes[i] == hashes[j] {
				t.Errorf("hash %d equals hash %d: purposes are not separated", i, j)
			}
		}
	}
	if p.HashIdempotencyKey(v) != p.HashIdempotencyKey(v) || p.HashIdempotencyKey(v) == q.HashIdempotencyKey(v) {
		t.Error("HashIdempotencyKey is not a deterministic function of the pepper")
	}
	if p.HashRefreshToken(v) == q.HashRefreshToken(v) || p.KeyedHash(v) == q.KeyedHash(v) {
		t.Error("hash does not depend on the pepper")
	}
	if p.HashIdempotencyKey(v) == p.HashIdempotencyKey(v+"x") {
		t.Error("different keys hash alike")
	}
}

func TestSealReceipt(t *testing.T) {
	p := mustPepper(t, testSecret(9))
	code := NewReceiptCode()
	sealed := p.SealReceipt(code, "key-1")
	if bytes.Contains(sealed, []byte(code)) {
		t.Fatal("sealed receipt contains the code")
	}
	got, err := p.OpenReceipt(sealed, "key-1")
	if err != nil || got != code {
		t.Fatalf("OpenReceipt = %q, %v; want %q", got, err, code)
	}
	if bytes.Equal(sealed, p.SealReceipt(code, "key-1")) {
		t.Error("two seals of one code are equal: the nonce is not random")
	}
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if _, err := p.OpenReceipt(tampered, "key-1"); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	bad := [][]byte{nil, sealed[:1+gcmNonceSize+15], sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)}
	for _, b := range bad {
		if _, err := p.OpenReceipt(b, "key-1"); err == nil {
			t.Errorf("malformed %d-byte input accepted", len(b))
		}
	}
	if _, err := mustPepper(t, testSecret(10)).OpenReceipt(sealed, "key-1"); err == nil {
		t.Error("another pepper opened the receipt")
	}
	// The record opens only with the request's own Idempotency-Key, in any variant
	// of spelling: the pepper alone does not open it.
	for _, other := range []string{"", "key-2", "Key-1", "key-1 ", "ｋｅｙ-1", "key\u200b-1"} {
		if _, err := p.OpenReceipt(sealed, other); err == nil {
			t.Errorf("opened with the request key %q", other)
		}
	}
	// A v1 record, sealed under the pepper alone before request keys were used,
	// still opens for its retry.
	v1 := make([]byte, 1+gcmNonceSize)
	v1[0] = receiptSealV1
	v1 = p.receiptAEAD(receiptSealV1, "").Seal(v1, v1[1:], []byte(code), []byte(labelReceiptSeal))
	if got, err := p.OpenReceipt(v1, "whatever"); err != nil || got != code {
		t.Errorf("v1 record: %q, %v", got, err)
	}
	// Authentic but not a receipt code: refused, so a bug elsewhere cannot hand a
	// reporter garbage as their code.
	if _, err := p.OpenReceipt(p.SealReceipt("hello", "key-1"), "key-1"); err == nil {
		t.Error("OpenReceipt returned a non-code")
	}
}

func TestZeroPepperPanics(t *testing.T) {
	for name, f := range map[string]func(p *Pepper){
		"HashReceipt":        func(p *Pepper) { p.HashReceipt("4111111111111111") },
		"HashIdempotencyKey": func(p *Pepper) { p.HashIdempotencyKey("k") },
		"HashRefreshToken":   func(p *Pepper) { p.HashRefreshToken("k") },
		"KeyedHash":          func(p *Pepper) { p.KeyedHash("k") },
		"SealReceipt":        func(p *Pepper) { p.SealReceipt("4111111111111111", "k") },
	} {
		for _, p := range []*Pepper{nil, {}} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s on an unset Pepper did not panic", name)
					}
				}()
				f(p)
			}()
		}
	}
}

func TestLoadOrCreatePepper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "pepper")
	p1, err := LoadOrCreatePepper(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("pepper file mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != 32 {
		t.Fatalf("pepper file is not 32 base64 bytes: %v", err)
	}
	p2, err := LoadOrCreatePepper(path)
	if err != nil {
		t.Fatal(err)
	}
	code := NewReceiptCode()
	if !bytes.Equal(p1.HashReceipt(code), p2.HashReceipt(code)) {
		t.Fatal("reloading the pepper changed it: every receipt would be lost on restart")
	}
	if _, err := p2.OpenReceipt(p1.SealReceipt(code, "key-1"), "key-1"); err != nil {
		t.Errorf("reloaded pepper cannot open a sealed receipt: %v", err)
	}
	other, err := LoadOrCreatePepper(filepath.Join(t.TempDir(), "pepper"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.HashReceipt(code), p1.HashReceipt(code)) {
		t.Error("two new peppers are equal")
	}

	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreatePepper(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("a world-readable pepper file was accepted: %v", err)
		}
	}

	garbled := filepath.Join(t.TempDir(), "pepper")
	os.WriteFile(garbled, []byte("c2hvcnQ=\n"), 0o600)
	if _, err := LoadOrCreatePepper(garbled); err == nil {
		t.Error("a short pepper file was accepted")
	}
	if _, err := LoadOrCreatePepper(t.TempDir()); err == nil {
		t.Error("a directory was accepted as the pepper file")
	}
}

// Two processes (here goroutines) starting on a fresh data directory must agree on one
// pepper; a lost race must never overwrite a pepper already in use.
func TestLoadOrCreatePepperConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pepper")
	const n = 16
	hashes := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := LoadOrCreatePepper(path)
			if err != nil {
				t.Error(err)
				return
			}
			hashes[i] = p.HashReceipt("4111111111111111")
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(hashes[i], hashes[0]) {
			t.Fatalf("start %d got a different pepper", i)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %d entries", len(entries))
	}
}
