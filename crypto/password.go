package crypto

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

// Password hashing parameters for new hashes: argon2id with 64 MiB, 3 passes, 2 lanes —
// the second recommended setting of RFC 9106 §4 with 2 lanes instead of 4 — on the order
// of 100-200 ms on an idle server core pair (BenchmarkHashPassword measures it). Staff
// log in a few times a day, so this costs them nothing and an attacker with a dumped
// user table a great deal.
// Hashes record their parameters, so these can be raised later; NeedsRehash tells the
// login code when to re-hash.
const (
	argonMemoryKiB = 64 << 10
	argonTime      = 3
	argonThreads   = 2
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Bounds on parameters read back from a stored hash. A hash comes from our database,
// but one altered to m=4 GiB would make each login attempt allocate 4 GiB: cap the work
// a stored string can ask for at a few times the current setting.
const (
	maxArgonMemoryKiB = 256 << 10
	maxArgonTime      = 10
	maxArgonThreads   = 16
	maxArgonWork      = 4 * argonMemoryKiB * argonTime // memory × passes
	maxPasswordBytes  = 1024
)

// argonSlots bounds how many argon2 computations run at once, so memory stays bounded
// (4 × 64 MiB) however many login requests arrive together; the rest wait their turn.
// Rate limiting the login endpoint is still the handler's job.
var argonSlots = make(chan struct{}, 4)

func argonKey(pw, salt []byte, p argonParams) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return argon2.IDKey(pw, salt, p.time, p.memory, p.threads, uint32(p.keyLen))
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	keyLen  int
}

var currentParams = argonParams{memory: argonMemoryKiB, time: argonTime, threads: argonThreads, keyLen: argonKeyLen}

// HashPassword returns an argon2id hash of pw in the PHC string format,
// "$argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>" (unpadded standard base64), which other
// tools (libsodium, Python's argon2-cffi) read too.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", qingfeng.Errorf(qingfeng.EINVALID, "密码不能为空", "the password is empty")
	}
	if len(pw) > maxPasswordBytes {
		return "", qingfeng.Errorf(qingfeng.EINVALID, "密码过长", "the password is too long")
	}
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argonKey([]byte(pw), salt, currentParams)
	return encodePHC(currentParams, salt, key), nil
}

func encodePHC(p argonParams, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// errMalformedHash is returned for a stored hash this package cannot (or will not)
// verify. It is an internal error: stored hashes are ours, so it means corruption.
var errMalformedHash = errors.New("malformed argon2id password hash")

func parsePHC(hash string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not a $argon2id$ PHC string", errMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", errMalformedHash, parts[2])
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want m,t,p parameters", errMalformedHash)
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') || !isDigits(v) {
			return p, nil, nil, fmt.Errorf("%w: bad parameter %q", errMalformedHash, params[i])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: bad parameter %q", errMalformedHash, params[i])
		}
		vals[i] = n
	}
	m, t, th := vals[0], vals[1], vals[2]
	switch {
	case th < 1 || th > maxArgonThreads:
		return p, nil, nil, fmt.Errorf("%w: p=%d out of range", errMalformedHash, th)
	case t < 1 || t > maxArgonTime:
		return p, nil, nil, fmt.Errorf("%w: t=%d out of range", errMalformedHash, t)
	case m < 8*th || m > maxArgonMemoryKiB: // argon2 needs 8 KiB per lane
		return p, nil, nil, fmt.Errorf("%w: m=%d out of range", errMalformedHash, m)
	case m*t > maxArgonWork:
		return p, nil, nil, fmt.Errorf("%w: m=%d,t=%d is more work than allowed", errMalformedHash, m, t)
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, fmt.Errorf("%w: bad salt", errMalformedHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, fmt.Errorf("%w: bad hash", errMalformedHash)
	}
	p = argonParams{memory: uint32(m), time: uint32(t), threads: uint8(th), keyLen: len(key)}
	return p, salt, key, nil
}

// CheckPassword reports whether pw matches hash, comparing in constant time. The
// parameters come from hash itself, within bounds that keep a tampered hash from
// turning a login into a denial of service. An error means the hash is malformed.
func CheckPassword(hash, pw string) (bool, error) {
	p, salt, key, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	if len(pw) > maxPasswordBytes {
		// Still spend the time, so the length limit is not a timing oracle.
		DummyCheck(pw[:maxPasswordBytes])
		return false, nil
	}
	got := argonKey([]byte(pw), salt, p)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// dummyHash has the current parameters and a hash no password produces (it was never
// computed: 32 zero bytes). Checking against it costs exactly what a real check does.
var dummyHash = encodePHC(currentParams, make([]byte, argonSaltLen), make([]byte, argonKeyLen))

// DummyCheck spends the time of a password check and always fails. Call it when the
// username is unknown (or the account disabled) so that login time does not tell an
// attacker which usernames exist.
func DummyCheck(pw string) {
	_, _ = CheckPassword(dummyHash, pw)
}

// NeedsRehash reports whether hash was made with other parameters than HashPassword
// uses now; after a successful login the caller can store a fresh hash.
func NeedsRehash(hash string) bool {
	p, salt, _, err := parsePHC(hash)
	return err != nil || p != currentParams || len(salt) != argonSaltLen
}
