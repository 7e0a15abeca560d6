package crypto

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashAndCheckPassword(t *testing.T) {
	const pw = "清风-Qingfeng 2026!"
	hash, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !phcPattern.MatchString(hash) {
		t.Fatalf("hash %q is not in the expected PHC format", hash)
	}
	if strings.Contains(hash, pw) {
		t.Fatal("hash contains the password")
	}
	tests := []struct {
		pw   string
		want bool
	}{
		{pw, true},
		{pw + " ", false},
		{"清风-qingfeng 2026!", false},
		{"", false},
	}
	for _, tt := range tests {
		ok, err := CheckPassword(hash, tt.pw)
		if err != nil || ok != tt.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tt.pw, ok, err, tt.want)
		}
	}
	if NeedsRehash(hash) {
		t.Error("a fresh hash needs rehashing")
	}
	again, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if again == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

// A hash made by another implementation (argon2-cffi's documented example, p=4)
// verifies: our format and parameters parsing interoperate, and older parameters are
// still accepted, just flagged for rehashing.
func TestCheckPasswordInterop(t *testing.T) {
	const hash = "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	ok, err := CheckPassword(hash, "correct horse battery staple")
	if err != nil || !ok {
		t.Fatalf("CheckPassword(argon2-cffi hash) = %v, %v", ok, err)
	}
	if ok, _ := CheckPassword(hash, "Tr0ub4dor&3"); ok {
		t.Error("wrong password accepted")
	}
	if !NeedsRehash(hash) {
		t.Error("a p=4 hash does not need rehashing to the current parameters")
	}
}

func TestCheckPasswordRejectsMalformedHashes(t *testing.T) {
	const salt, key = "MIIRqgvgQbgj220jfp0MPA", "YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	phc := func(alg, v, params, s, k string) string {
		return "$" + alg + "$" + v + "$" + params + "$" + s + "$" + k
	}
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", phc("argon2i", "v=19", "m=65536,t=3,p=4", salt, key)},
		{"argon2d", phc("argon2d", "v=19", "m=65536,t=3,p=4", salt, key)},
		{"version 16", phc("argon2id", "v=16", "m=65536,t=3,p=4", salt, key)},
		{"no version", "$argon2id$m=65536,t=3,p=4$" + salt + "$" + key},
		{"memory 4 GiB", phc("argon2id", "v=19", "m=4194304,t=3,p=4", salt, key)},
		{"memory just over cap", phc("argon2id", "v=19", "m=262145,t=1,p=4", salt, key)},
		{"work over cap", phc("argon2id", "v=19", "m=262144,t=4,p=4", salt, key)},
		{"time 1000", phc("argon2id", "v=19", "m=65536,t=1000,p=4", salt, key)},
		{"threads 255", phc("argon2id", "v=19", "m=65536,t=3,p=255", salt, key)},
		{"zero threads", phc("argon2id", "v=19", "m=65536,t=3,p=0", salt, key)},
		{"zero time", phc("argon2id", "v=19", "m=65536,t=0,p=4", salt, key)},
		{"memory below 8p", phc("argon2id", "v=19", "m=31,t=3,p=4", salt, key)},
		{"params reordered", phc("argon2id", "v=19", "t=3,m=65536,p=4", salt, key)},
		{"param missing", phc("argon2id", "v=19", "m=65536,t=3", salt, key)},
		{"extra param", phc("argon2id", "v=19", "m=65536,t=3,p=4,keyid=1", salt, key)},
		{"signed param", phc("argon2id", "v=19", "m=+65536,t=3,p=4", salt, key)},
		{"leading zero", phc("argon2id", "v=19", "m=065536,t=3,p=4", salt, key)},
		{"overflow", phc("argon2id", "v=19", "m=18446744073709551617,t=3,p=4", salt, key)},
		{"padded salt", phc("argon2id", "v=19", "m=65536,t=3,p=4", salt+"==", key)},
		{"salt not base64", phc("argon2id", "v=19", "m=65536,t=3,p=4", "!!!!!!!!!!!!", key)},
		{"salt too short", phc("argon2id", "v=19", "m=65536,t=3,p=4", "AAAAAA", key)},
		{"hash too short", phc("argon2id", "v=19", "m=65536,t=3,p=4", salt, "AAAAAAAAAA")},
		{"hash too long", phc("argon2id", "v=19", "m=65536,t=3,p=4", salt, strings.Repeat("A", 100))},
		{"trailing field", phc("argon2id", "v=19", "m=65536,t=3,p=4", salt, key) + "$x"},
		{"no leading $", "argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := CheckPassword(tt.hash, "correct horse battery staple")
			if ok || err == nil {
				t.Fatalf("CheckPassword = %v, %v; want an error", ok, err)
			}
			if !errors.Is(err, errMalformedHash) {
				t.Errorf("error %v does not wrap errMalformedHash", err)
			}
			if !NeedsRehash(tt.hash) {
				t.Error("NeedsRehash(malformed) = false")
			}
		})
	}
}

func TestHashPasswordRejects(t *testing.T) {
	for _, pw := range []string{"", strings.Repeat("a", maxPasswordBytes+1)} {
		_, err := HashPassword(pw)
		var e *qingfeng.Error
		if !errors.As(err, &e) || e.Code != qingfeng.EINVALID || !hasHan(e.Message) {
			t.Errorf("HashPassword(%d bytes) = %v, want EINVALID with a Chinese message", len(pw), err)
		}
	}
	hash, err := HashPassword(strings.Repeat("a", maxPasswordBytes))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := CheckPassword(hash, strings.Repeat("a", maxPasswordBytes+1)); ok || err != nil {
		t.Errorf("CheckPassword(over-long password) = %v, %v; want false, nil", ok, err)
	}
}

// DummyCheck must cost what a real check costs: it does if it runs argon2 with the
// current parameters (timing itself is too noisy to assert in a unit test).
func TestDummyCheckCostsARealCheck(t *testing.T) {
	p, salt, key, err := parsePHC(dummyHash)
	if err != nil {
		t.Fatalf("dummy hash does not parse: %v", err)
	}
	if p != currentParams || len(salt) != argonSaltLen || len(key) != argonKeyLen {
		t.Errorf("dummy hash parameters %+v differ from the current %+v", p, currentParams)
	}
	if NeedsRehash(dummyHash) {
		t.Error("dummy hash is not at the current parameters")
	}
	DummyCheck("anything") // must not panic or block
}

// BenchmarkHashPassword measures one argon2id hash at the current parameters: the CPU
// (and 64 MiB of memory) each login attempt costs the server.
func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
