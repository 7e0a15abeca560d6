// Package pow makes anonymous guessing cost the guesser, not the reporter: a client
// that looks up a receipt code, checks a donation or files a report solves a small
// proof of work whose difficulty rises with the service-wide failure rate of that
// purpose — for filing, the rate of anonymous filings, since a flood of reports does not
// fail (after GlobaLeaks' submission PoW and Tor's onion-service PoW). Nothing is
// locked: the holder of a right receipt always gets in after one solve, which takes
// seconds at the highest difficulty.
//
// A challenge is stateless and self-authenticating: an HMAC under a server key over a
// random nonce, the purpose, the difficulty and the expiry. The server keeps no record of
// who asked for it and keys nothing on a client's address or user agent. A solution is
// a decimal counter such that SHA-256(challenge || counter) — the challenge string's
// bytes followed by the counter's ASCII digits — starts with at least the challenge's
// difficulty in zero bits; a browser can find it with crypto.subtle.digest("SHA-256").
//
// A solved challenge is accepted once per instance: a bounded in-memory spent-set holds
// it until it expires. Several instances behind a load balancer share the key (so any of
// them verifies any challenge) but not the spent-set: a solution can then be used once
// per instance, so N instances divide an attacker's cost by at most N. The failure
// meters are per instance too; each instance raises its own difficulty.
//
// While failures are at their normal rate the difficulty is 0 and no proof is needed at
// all, so a client without JavaScript works in normal times.
//
// This package must not import Fiber or net/http.
package pow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Purpose is what a proof of work pays for; a challenge of one purpose is refused for
// another.
type Purpose string

const (
	Receipt    Purpose = "receipt"     // POST /v1/followup/session: a receipt code look-up
	DonorCheck Purpose = "donor_check" // the public donation-receipt check
	Report     Purpose = "report"      // filing an anonymous report
)

// Purposes lists every purpose.
var Purposes = []Purpose{Receipt, DonorCheck, Report}

// Valid reports whether p is a known purpose.
func (p Purpose) Valid() bool {
	for _, q := range Purposes {
		if p == q {
			return true
		}
	}
	return false
}

// Algorithm names the puzzle, for clients.
const Algorithm = "sha256-leading-zero-bits"

// Challenge is what a client solves.
type Challenge struct {
	Token      string // opaque to clients; contains no ':'
	Purpose    Purpose
	Difficulty int // leading zero bits required
	ExpiresAt  time.Time
}

// Errors Verify returns; handlers turn them into 428 pow_required with a fresh challenge.
var (
	ErrMissing      = errors.New("pow: proof of work required")
	ErrMalformed    = errors.New("pow: malformed solution")
	ErrForged       = errors.New("pow: challenge not issued by this service")
	ErrWrongPurpose = errors.New("pow: challenge issued for another purpose")
	ErrExpired      = errors.New("pow: challenge expired")
	ErrTooEasy      = errors.New("pow: challenge easier than the current difficulty")
	ErrInsufficient = errors.New("pow: hash has too few leading zero bits")
	ErrSpent        = errors.New("pow: challenge already used")
	ErrBusy         = errors.New("pow: too many challenges in use")
)

// Level is one step of the difficulty table: at Failures or more recorded events
// within the window, Bits leading zero bits are required.
type Level struct {
	Failures int
	Bits     int
}

// Config sets a Guard's policy. Zero fields take DefaultConfig's values.
type Config struct {
	// Window is the sliding window over which failures are counted.
	Window time.Duration
	// TTL is how long a challenge may be solved and used.
	TTL time.Duration
	// Levels is the difficulty table per purpose, ascending by Failures. Below the
	// first level the difficulty is 0.
	Levels map[Purpose][]Level
	// MaxSpent bounds the spent-set; when it is full, new solutions are refused
	// (ErrBusy) until old ones expire, and the difficulty is the highest level.
	MaxSpent int
}

// DefaultConfig is the documented policy (README, "Proof of work"). The normal rate is
// generous: a reporter mistyping a receipt is not an attack.
var DefaultConfig = Config{
	Window:   time.Minute,
	TTL:      5 * time.Minute,
	MaxSpent: 200_000,
	Levels:   Table(30),
}

// Table is the stepwise difficulty table for every purpose, for a normal rate of
// normal events a minute: each doubling of the rate adds two bits — four times the work
// per guess — up to 20 bits (about a million hashes: a fraction of a second for native
// code, seconds with crypto.subtle in a phone's browser).
//
//	events in the window   bits   expected hashes
//	< normal                 0    none: no proof needed
//	≥ normal                12    4 096
//	≥ 2 × normal            14    16 384
//	≥ 4 × normal            16    65 536
//	≥ 8 × normal            18    262 144
//	≥ 16 × normal           20    1 048 576
func Table(normal int) map[Purpose][]Level {
	normal = max(1, normal)
	levels := []Level{{normal, 12}, {2 * normal, 14}, {4 * normal, 16}, {8 * normal, 18}, {16 * normal, 20}}
	t := map[Purpose][]Level{}
	for _, p := range Purposes {
		t[p] = levels
	}
	return t
}

// Guard issues and verifies challenges and meters failures. The zero value is not
// usable; create it with New.
type Guard struct {
	key []byte
	cfg Config
	// Now is the clock (tests).
	Now func() time.Time

	mu     sync.Mutex
	meters map[Purpose]*meter
	spent  map[string]time.Time // challenge MAC → expiry
}

// New returns a Guard signing challenges with key (at least 32 bytes; instances that
// must verify each other's challenges share it).
func New(key []byte, cfg Config) (*Guard, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("pow: key of %d bytes, need at least 32", len(key))
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultConfig.Window
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultConfig.TTL
	}
	if cfg.MaxSpent <= 0 {
		cfg.MaxSpent = DefaultConfig.MaxSpent
	}
	if cfg.Levels == nil {
		cfg.Levels = DefaultConfig.Levels
	}
	g := &Guard{key: append([]byte(nil), key...), cfg: cfg, meters: map[Purpose]*meter{}, spent: map[string]time.Time{}}
	for _, p := range Purposes {
		g.meters[p] = newMeter(cfg.Window)
	}
	return g, nil
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Record counts one event the difficulty of p follows: a failed look-up (Receipt: an
// unknown receipt code; DonorCheck: a donation not found) or an anonymous filing (Report:
// a flood of reports succeeds, so every filing counts).
func (g *Guard) Record(p Purpose) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m := g.meters[p]; m != nil {
		m.add(g.now())
	}
}

// Difficulty is the number of leading zero bits currently required for p; 0 means no
// proof of work is needed.
func (g *Guard) Difficulty(p Purpose) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.difficulty(p, g.now())
}

func (g *Guard) difficulty(p Purpose, now time.Time) int {
	levels := g.cfg.Levels[p]
	if len(g.spent) >= g.cfg.MaxSpent && len(levels) > 0 {
		return levels[len(levels)-1].Bits
	}
	m := g.meters[p]
	if m == nil {
		return 0
	}
	return DifficultyFor(levels, m.count(now))
}

// DifficultyFor looks up failures (within one window) in a difficulty table.
func DifficultyFor(levels []Level, failures int) int {
	d := 0
	for _, l := range levels {
		if failures >= l.Failures {
			d = l.Bits
		}
	}
	return d
}

// Issue returns a fresh challenge for p at the current difficulty (which may be 0: the
// client may then solve it or send nothing).
func (g *Guard) Issue(p Purpose) Challenge {
	now := g.now()
	g.mu.Lock()
	d := g.difficulty(p, now)
	g.mu.Unlock()
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	exp := now.Add(g.cfg.TTL).Truncate(time.Second)
	body := fmt.Sprintf("v1.%s.%d.%d.%s", p, d, exp.Unix(), base64.RawURLEncoding.EncodeToString(nonce[:]))
	return Challenge{Token: body + "." + g.mac(body), Purpose: p, Difficulty: d, ExpiresAt: exp.UTC()}
}

func (g *Guard) mac(body string) string {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte("qingfeng-pow|"))
	h.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Verify admits a request of purpose p carrying solution ("<challenge>:<counter>", or
// "" for none). With difficulty 0 everything is admitted and nothing is spent. Otherwise
// the challenge must be this service's, for p, unexpired, at least as hard as the
// current difficulty, solved, and not used before; it is then spent.
func (g *Guard) Verify(p Purpose, solution string) error {
	now := g.now()
	g.mu.Lock()
	need := g.difficulty(p, now)
	g.mu.Unlock()
	if need == 0 {
		return nil
	}
	if solution == "" {
		return ErrMissing
	}
	token, counter, ok := cut(solution)
	if !ok {
		return ErrMalformed
	}
	parts := strings.Split(token, ".")
	if len(parts) != 6 || parts[0] != "v1" {
		return ErrMalformed
	}
	body := strings.Join(parts[:5], ".")
	if !hmac.Equal([]byte(parts[5]), []byte(g.mac(body))) {
		return ErrForged
	}
	if Purpose(parts[1]) != p {
		return ErrWrongPurpose
	}
	d, err1 := strconv.Atoi(parts[2])
	exp, err2 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil {
		return ErrMalformed // cannot happen for a challenge we signed
	}
	if !now.Before(time.Unix(exp, 0)) {
		return ErrExpired
	}
	if d < need {
		return ErrTooEasy
	}
	if LeadingZeroBits(token, counter) < d {
		return ErrInsufficient
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, used := g.spent[parts[5]]; used {
		return ErrSpent
	}
	if len(g.spent) >= g.cfg.MaxSpent {
		for k, e := range g.spent {
			if !now.Before(e) {
				delete(g.spent, k)
			}
		}
		if len(g.spent) >= g.cfg.MaxSpent {
			return ErrBusy
		}
	}
	g.spent[parts[5]] = time.Unix(exp, 0)
	return nil
}

// cut splits "<token>:<counter>" at the last colon; the counter is 1–20 decimal digits.
func cut(s string) (token, counter string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	token, counter = s[:i], s[i+1:]
	if len(counter) == 0 || len(counter) > 20 {
		return "", "", false
	}
	for _, r := range counter {
		if r < '0' || r > '9' {
			return "", "", false
		}
	}
	return token, counter, true
}

// LeadingZeroBits counts the leading zero bits of SHA-256(token || counter).
func LeadingZeroBits(token, counter string) int {
	h := sha256.New()
	h.Write([]byte(token))
	h.Write([]byte(counter))
	return leadingZeros(h.Sum(nil))
}

func leadingZeros(sum []byte) int {
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// Solve finds a counter for a challenge token of difficulty bits and returns the
// solution to send ("<token>:<counter>"). It is the reference client (tests, qfctl, the
// mobile apps' port); expected work is 2^difficulty hashes. A difficulty of 0 needs no
// work.
func Solve(token string, difficulty int) string {
	// Hash the token once and clone the state per counter.
	base := sha256.New()
	base.Write([]byte(token))
	buf := make([]byte, 0, 20)
	var sum [sha256.Size]byte
	for c := uint64(0); ; c++ {
		buf = strconv.AppendUint(buf[:0], c, 10)
		h, err := base.(hash.Cloner).Clone()
		if err != nil {
			panic("pow: sha256 clone: " + err.Error()) // crypto/sha256 always clones
		}
		h.Write(buf)
		if leadingZeros(h.Sum(sum[:0])) >= difficulty {
			return token + ":" + string(buf)
		}
	}
}

// meter counts events in a sliding window with one-second buckets.
type meter struct {
	buckets []int
	stamps  []int64 // the second each bucket holds
}

func newMeter(window time.Duration) *meter {
	n := max(1, int(window/time.Second))
	return &meter{buckets: make([]int, n), stamps: make([]int64, n)}
}

func (m *meter) add(now time.Time) {
	s := now.Unix()
	i := int(s % int64(len(m.buckets)))
	if m.stamps[i] != s {
		m.stamps[i], m.buckets[i] = s, 0
	}
	m.buckets[i]++
}

func (m *meter) count(now time.Time) int {
	s, n := now.Unix(), int64(len(m.buckets))
	total := 0
	for i, st := range m.stamps {
		if st > s-n && st <= s {
			total += m.buckets[i]
		}
	}
	return total
}
