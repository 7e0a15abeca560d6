package accounts

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
)

var (
	wrongPassword = qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "用户名或密码错误", "wrong username or password")
	otherFailure  = qingfeng.Errorf(qingfeng.EINTERNAL, "x", "database down")
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }

func newBackoff() (*Backoff, *fakeClock) {
	c := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	return &Backoff{Key: bytes.Repeat([]byte{3}, 32), Now: c.now}, c
}

func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	e, ok := err.(*qingfeng.Error)
	if !ok || e.Code != qingfeng.ERATELIMIT || e.RetryAfter <= 0 || e.Message == "" {
		t.Fatalf("want a rate limit with Retry-After, got %v", err)
	}
	return e.RetryAfter
}

func try(t *testing.T, b *Backoff, user, cookie string, outcome error) error {
	t.Helper()
	a, err := b.Admit(user, cookie)
	if err != nil {
		return err
	}
	a.Done(outcome)
	return nil
}

func TestNormalizeUsername(t *testing.T) {
	for _, in := range []string{"alice", " alice", "alice\t", "ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ", "ali\u200bce", "\ufeffalice", "al\u200dice ", "\u3000alice"} {
		if got := NormalizeUsername(in); got != "alice" {
			t.Errorf("%q → %q", in, got)
		}
	}
}

// Three wrong passwords are free; then each attempt waits a window that doubles up to
// the cap, is refused inside it without a password check, and every spelling of the
// name shares one backoff.
func TestBackoffDoublesAndSharesSpellings(t *testing.T) {
	b, c := newBackoff()
	spellings := []string{"alice", " alice", "ALICE", "ａｌｉｃｅ", "ali\u200bce"}
	for i := range 3 {
		if err := try(t, b, spellings[i], "", wrongPassword); err != nil {
			t.Fatalf("free failure %d refused: %v", i, err)
		}
	}
	want := time.Second
	for i := range 14 {
		for _, s := range spellings {
			if got := retryAfter(t, try(t, b, s, "", nil)); got != want {
				t.Fatalf("step %d, %q: retry after %v, want %v", i, s, got, want)
			}
		}
		if err := try(t, b, "bob", "", nil); err != nil {
			t.Fatalf("another account is affected: %v", err)
		}
		c.add(want)
		if err := try(t, b, spellings[i%len(spellings)], "", wrongPassword); err != nil {
			t.Fatalf("step %d: refused after the window: %v", i, err)
		}
		want = min(2*want, 15*time.Minute)
	}
	if want != 15*time.Minute {
		t.Fatalf("window did not reach the cap: %v", want)
	}
	c.add(want)
	if err := try(t, b, "Alice", "", nil); err != nil { // the right password, after the wait
		t.Fatal(err)
	}
	for range 3 { // and the failures are forgotten
		if err := try(t, b, "alice", "", wrongPassword); err != nil {
			t.Fatal(err)
		}
	}
}

// Errors that are not a wrong password cost nothing.
func TestBackoffIgnoresOtherErrors(t *testing.T) {
	b, _ := newBackoff()
	for range 10 {
		if err := try(t, b, "alice", "", otherFailure); err != nil {
			t.Fatal(err)
		}
	}
}

// 32 concurrent wrong guesses at once: only the three free ones check a password.
func TestBackoffConcurrentBurst(t *testing.T) {
	b, c := newBackoff()
	for round := range 4 {
		var admitted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		var mu sync.Mutex
		var held []*Attempt
		for range 32 {
			wg.Go(func() {
				<-start
				if a, err := b.Admit(" Alice", ""); err == nil {
					admitted.Add(1)
					mu.Lock()
					held = append(held, a)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		want := int32(3)
		if round > 0 {
			want = 1
		}
		if admitted.Load() != want {
			t.Fatalf("round %d: %d admitted at once, want %d", round, admitted.Load(), want)
		}
		for _, a := range held {
			a.Done(wrongPassword)
		}
		c.add(time.Hour)
	}
}

// A device that signed in before gets in during a flood against its account; a stolen
// or guessed cookie has a small budget, then is revoked; a cookie of another account,
// a tampered or an expired one does not help.
func TestDeviceCookie(t *testing.T) {
	b, c := newBackoff()
	cookie, exp := b.IssueDevice("Alice")
	if !exp.After(c.t.Add(89 * 24 * time.Hour)) {
		t.Fatalf("expires %v", exp)
	}
	for range 3 {
		_ = try(t, b, "alice", "", wrongPassword)
	}
	for range 100 { // the flood goes on
		_ = try(t, b, "alice", "", wrongPassword)
	}
	retryAfter(t, try(t, b, "alice", "", nil))
	if err := try(t, b, " ALICE", cookie, nil); err != nil {
		t.Fatalf("the right password on a known device during a flood: %v", err)
	}
	retryAfter(t, try(t, b, "alice", "", nil)) // the account's backoff is unchanged

	other, _ := b.IssueDevice("bob")
	tampered := cookie[:len(cookie)-2] + "AA"
	for _, bad := range []string{other, tampered, "x.y.z", cookie + "."} {
		retryAfter(t, try(t, b, "alice", bad, nil))
	}

	// Five wrong passwords with the cookie revoke it.
	for i := range 5 {
		if err := try(t, b, "alice", cookie, wrongPassword); err != nil {
			t.Fatalf("device failure %d refused: %v", i, err)
		}
	}
	retryAfter(t, try(t, b, "alice", cookie, nil))

	fresh, _ := b.IssueDevice("alice")
	c.add(91 * 24 * time.Hour)
	for range 3 {
		_ = try(t, b, "alice", "", wrongPassword)
	}
	retryAfter(t, try(t, b, "alice", fresh, nil)) // expired
}

// Flooding other names fills the table without resetting an account in backoff.
func TestBackoffBoundedWithoutReset(t *testing.T) {
	b, _ := newBackoff()
	b.MaxEntries = 50
	for range 4 {
		_ = try(t, b, "alice", "", wrongPassword)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		_ = try(t, b, "u"+string(rune('a'+rng.IntN(26)))+string(rune('a'+i%26))+string(rune('a'+i/26%26)), "", wrongPassword)
	}
	retryAfter(t, try(t, b, "alice", "", nil))
	if n := len(b.accounts); n > 60 {
		t.Errorf("%d entries tracked, bound 50", n)
	}
}

// Seeded random sequences of guesses (under random spellings), right passwords with and
// without a device cookie, other errors and clock steps. Invariants: past the free
// failures, two password checks without a cookie are at least the doubling window
// apart; a cookie that has not used up its budget always gets in; a right password is
// never refused once the window has passed.
func TestBackoffPropertyRandomSequences(t *testing.T) {
	spell := []string{"alice", " alice", "ALICE", "ａｌｉｃｅ", "al\u200bice", "Alice\t"}
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 7))
		b, c := newBackoff()
		cookie, _ := b.IssueDevice("alice")
		var (
			failures   int       // consecutive wrong passwords checked without a cookie
			lastFail   time.Time // when the last one was checked
			cookieFail int
		)
		for step := range 400 {
			name := spell[rng.IntN(len(spell))]
			switch k := rng.IntN(10); {
			case k < 5: // a guess without a cookie
				a, err := b.Admit(name, "")
				if err != nil {
					continue
				}
				if failures >= 3 {
					window := min(time.Second<<(failures-3), 15*time.Minute)
					if gap := c.t.Sub(lastFail); gap < window {
						t.Fatalf("seed %d step %d: failure %d checked %v after the last, window %v", seed, step, failures+1, gap, window)
					}
				}
				a.Done(wrongPassword)
				failures++
				lastFail = c.t
			case k == 5: // the owner, on their device
				a, err := b.Admit(name, cookie)
				if cookieFail < 5 && err != nil {
					t.Fatalf("seed %d step %d: the device cookie was refused after %d failures: %v", seed, step, cookieFail, err)
				}
				if err == nil {
					if rng.IntN(3) == 0 && cookieFail < 5 {
						a.Done(wrongPassword)
						cookieFail++
					} else {
						a.Done(nil)
						if cookieFail < 5 {
							cookieFail = 0
						} else { // a revoked cookie: this was an ordinary attempt
							failures = 0
						}
					}
				}
			case k == 6: // the owner without a cookie
				a, err := b.Admit(name, "")
				window := time.Duration(0)
				if failures >= 3 {
					window = min(time.Second<<(failures-3), 15*time.Minute)
				}
				if err == nil {
					a.Done(nil)
					failures = 0
				} else if c.t.Sub(lastFail) >= window {
					t.Fatalf("seed %d step %d: right password refused %v after the last failure (window %v): %v", seed, step, c.t.Sub(lastFail), window, err)
				}
			case k == 7:
				if a, err := b.Admit(name, ""); err == nil {
					a.Done(otherFailure)
				}
			default:
				c.add(time.Duration(rng.IntN(5000)) * time.Millisecond)
			}
		}
	}
}
