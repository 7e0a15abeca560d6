package pow

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{7}, 32)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }
func fails(g *Guard, p Purpose, n int) {
	for range n {
		g.Record(p)
	}
}
func guard(t testing.TB, cfg Config) (*Guard, *clock) {
	t.Helper()
	g, err := New(testKey, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	g.Now = c.now
	return g, c
}

// small is a table that reaches real difficulties with few failures, so tests are fast.
var small = Config{Levels: map[Purpose][]Level{Receipt: {{3, 4}, {6, 8}}, DonorCheck: {{3, 4}}, Report: {{3, 4}}}}

func TestNewRejectsShortKey(t *testing.T) {
	if _, err := New(make([]byte, 31), Config{}); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
}

func TestDifficultyZeroNeedsNothing(t *testing.T) {
	g, _ := guard(t, small)
	for _, p := range Purposes {
		if d := g.Difficulty(p); d != 0 {
			t.Errorf("%s: difficulty %d with no failures", p, d)
		}
		for _, sol := range []string{"", "garbage", "v1.x:1"} {
			if err := g.Verify(p, sol); err != nil {
				t.Errorf("%s with %q at difficulty 0: %v", p, sol, err)
			}
		}
	}
}

func TestDifficultyTable(t *testing.T) {
	levels := DefaultConfig.Levels[Receipt]
	for _, tt := range []struct{ failures, bits int }{
		{0, 0}, {29, 0}, {30, 12}, {59, 12}, {60, 14}, {119, 14}, {120, 16}, {240, 18}, {479, 18}, {480, 20}, {1_000_000, 20},
	} {
		if got := DifficultyFor(levels, tt.failures); got != tt.bits {
			t.Errorf("%d failures: %d bits, want %d", tt.failures, got, tt.bits)
		}
	}
}

// The difficulty follows the failures of the last window, per purpose, and returns to 0
// once the flood stops.
func TestDifficultyFollowsSlidingWindow(t *testing.T) {
	g, c := guard(t, small)
	fails(g, Receipt, 2)
	if d := g.Difficulty(Receipt); d != 0 {
		t.Fatalf("2 failures: %d", d)
	}
	c.add(30 * time.Second)
	fails(g, Receipt, 1)
	if d := g.Difficulty(Receipt); d != 4 {
		t.Fatalf("3 failures in a minute: %d, want 4", d)
	}
	if d := g.Difficulty(DonorCheck); d != 0 {
		t.Fatalf("another purpose rose to %d", d)
	}
	fails(g, Receipt, 3)
	if d := g.Difficulty(Receipt); d != 8 {
		t.Fatalf("6 failures: %d, want 8", d)
	}
	c.add(31 * time.Second) // the first two fall out of the window
	if d := g.Difficulty(Receipt); d != 4 {
		t.Fatalf("after the first two expired: %d, want 4", d)
	}
	c.add(time.Minute)
	if d := g.Difficulty(Receipt); d != 0 {
		t.Fatalf("a minute after the flood: %d, want 0", d)
	}
}

func TestVerify(t *testing.T) {
	g, c := guard(t, small)
	fails(g, Receipt, 3)
	fails(g, DonorCheck, 3)
	ch := g.Issue(Receipt)
	if ch.Difficulty != 4 || ch.Purpose != Receipt || strings.Contains(ch.Token, ":") {
		t.Fatalf("challenge %+v", ch)
	}
	good := Solve(ch.Token, ch.Difficulty)
	token, counter, _ := strings.Cut(good, ":")
	// A counter that does not solve it: search for one with too few bits.
	var bad string
	for i := 0; ; i++ {
		if LeadingZeroBits(token, fmt.Sprint(i)) < ch.Difficulty {
			bad = token + ":" + fmt.Sprint(i)
			break
		}
	}
	tamper := func(i int) string {
		p := strings.Split(token, ".")
		switch i {
		case 1:
			p[1] = string(DonorCheck)
		case 2:
			p[2] = "0"
		case 3:
			p[3] = fmt.Sprint(c.t.Add(time.Hour).Unix())
		case 4:
			p[4] = strings.Repeat("A", len(p[4]))
		case 5:
			p[5] = strings.Repeat("A", len(p[5]))
		}
		t := strings.Join(p, ".")
		return Solve(t, 4)
	}
	for _, tt := range []struct {
		name, sol string
		p         Purpose
		want      error
	}{
		{"missing", "", Receipt, ErrMissing},
		{"no counter", token, Receipt, ErrMalformed},
		{"non-digit counter", token + ":12a", Receipt, ErrMalformed},
		{"full-width digits", token + ":１２", Receipt, ErrMalformed},
		{"counter too long", token + ":" + strings.Repeat("1", 21), Receipt, ErrMalformed},
		{"not a token", "hello:1", Receipt, ErrMalformed},
		{"tampered purpose", tamper(1), Receipt, ErrForged},
		{"tampered difficulty", tamper(2), Receipt, ErrForged},
		{"tampered expiry", tamper(3), Receipt, ErrForged},
		{"tampered nonce", tamper(4), Receipt, ErrForged},
		{"tampered mac", tamper(5), Receipt, ErrForged},
		{"upper-cased", strings.ToUpper(token) + ":" + counter, Receipt, ErrMalformed},
		{"wrong purpose", good, DonorCheck, ErrWrongPurpose},
		{"insufficient bits", bad, Receipt, ErrInsufficient},
		{"right", good, Receipt, nil},
		{"replayed", good, Receipt, ErrSpent},
	} {
		if err := g.Verify(tt.p, tt.sol); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	other, err := New(bytes.Repeat([]byte{8}, 32), small)
	if err != nil {
		t.Fatal(err)
	}
	other.Now = c.now
	fails(other, Receipt, 3)
	if err := g.Verify(Receipt, Solve(other.Issue(Receipt).Token, 4)); !errors.Is(err, ErrForged) {
		t.Errorf("another key's challenge: %v", err)
	}

	late := g.Issue(Receipt)
	sol := Solve(late.Token, late.Difficulty)
	c.add(DefaultConfig.TTL + time.Second)
	fails(g, Receipt, 3)
	if err := g.Verify(Receipt, sol); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v", err)
	}
}

// A challenge issued at a lower difficulty is refused once the difficulty has risen;
// its holder solves the new one.
func TestVerifyRefusesEasierChallenge(t *testing.T) {
	g, _ := guard(t, small)
	fails(g, Receipt, 3)
	easy := g.Issue(Receipt)
	sol := Solve(easy.Token, easy.Difficulty)
	fails(g, Receipt, 3)
	if err := g.Verify(Receipt, sol); !errors.Is(err, ErrTooEasy) {
		t.Fatalf("got %v", err)
	}
	hard := g.Issue(Receipt)
	if hard.Difficulty != 8 {
		t.Fatalf("difficulty %d", hard.Difficulty)
	}
	if err := g.Verify(Receipt, Solve(hard.Token, hard.Difficulty)); err != nil {
		t.Fatal(err)
	}
}

// 32 requests racing with the same solution: exactly one is admitted, repeatedly.
func TestVerifyOnceUnderConcurrency(t *testing.T) {
	g, _ := guard(t, small)
	fails(g, Report, 3)
	for round := range 5 {
		ch := g.Issue(Report)
		sol := Solve(ch.Token, ch.Difficulty)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if g.Verify(Report, sol) == nil {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("round %d: %d admitted", round, ok.Load())
		}
	}
}

// A full spent-set refuses new solutions and raises the difficulty to the top level;
// expired entries make room again.
func TestSpentSetIsBounded(t *testing.T) {
	cfg := small
	cfg.MaxSpent = 4
	g, c := guard(t, cfg)
	fails(g, Receipt, 3)
	for range 4 {
		ch := g.Issue(Receipt)
		if err := g.Verify(Receipt, Solve(ch.Token, ch.Difficulty)); err != nil {
			t.Fatal(err)
		}
	}
	if d := g.Difficulty(DonorCheck); d != 4 {
		t.Errorf("full spent-set: donor-check difficulty %d, want the top level 4", d)
	}
	ch := g.Issue(Receipt)
	if ch.Difficulty != 8 {
		t.Errorf("full spent-set: difficulty %d, want 8", ch.Difficulty)
	}
	if err := g.Verify(Receipt, Solve(ch.Token, ch.Difficulty)); !errors.Is(err, ErrBusy) {
		t.Fatalf("full spent-set: %v", err)
	}
	c.add(DefaultConfig.TTL + time.Second)
	fails(g, Receipt, 3)
	ch = g.Issue(Receipt)
	if err := g.Verify(Receipt, Solve(ch.Token, ch.Difficulty)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// Seeded random sequences of failures, issues, solves, replays and clock steps: a
// solution is admitted at most once, only for its purpose, only while unexpired and at
// least as hard as required; and with no failure in the last window, nothing is needed.
func TestPropertyRandomSequences(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		g, c := guard(t, small)
		type sol struct {
			p    Purpose
			s    string
			d    int
			exp  time.Time
			used bool
		}
		var sols []*sol
		var last time.Time
		for step := range 300 {
			switch rng.IntN(5) {
			case 0:
				p := Purposes[rng.IntN(3)]
				g.Record(p)
				last = c.t
			case 1:
				p := Purposes[rng.IntN(3)]
				ch := g.Issue(p)
				sols = append(sols, &sol{p: p, s: Solve(ch.Token, ch.Difficulty), d: ch.Difficulty, exp: ch.ExpiresAt})
			case 2:
				c.add(time.Duration(rng.IntN(40)) * time.Second)
			default:
				if len(sols) == 0 {
					continue
				}
				s := sols[rng.IntN(len(sols))]
				p := s.p
				if rng.IntN(4) == 0 {
					p = Purposes[rng.IntN(3)]
				}
				need := g.Difficulty(p)
				err := g.Verify(p, s.s)
				valid := p == s.p && c.t.Before(s.exp) && s.d >= need && !s.used
				switch {
				case need == 0 && err != nil:
					t.Fatalf("seed %d step %d: difficulty 0 refused: %v", seed, step, err)
				case need > 0 && valid != (err == nil):
					t.Fatalf("seed %d step %d: valid=%v err=%v (sol %+v need %d)", seed, step, valid, err, s, need)
				case need > 0 && err == nil:
					s.used = true
				}
			}
			if c.t.Sub(last) > time.Minute {
				for _, p := range Purposes {
					if d := g.Difficulty(p); d != 0 {
						t.Fatalf("seed %d: difficulty %d a minute after the last failure", seed, d)
					}
				}
			}
		}
	}
}

// BenchmarkSolve reports the guesses per second one attacker core sustains at each
// difficulty: every guess needs one solved challenge. Run it once:
//
//	go test ./pow/ -run '^$' -bench Solve -benchtime 20x -cpu 1
func BenchmarkSolve(b *testing.B) {
	g, _ := guard(b, Config{})
	for _, bits := range []int{0, 12, 14, 16, 18, 20} {
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) {
			for b.Loop() {
				Solve(g.Issue(Receipt).Token, bits)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "guesses/s")
		})
	}
}
