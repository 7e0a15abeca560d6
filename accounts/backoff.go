package accounts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/qingfeng-zj/qingfeng"
)

// NormalizeUsername is the one spelling of an account name: surrounding space trimmed,
// NFKC (full-width letters become ASCII), invisible format characters (zero-width
// spaces, joiners, BOM) removed, and case folded. Login, account creation and the
// login backoff all use it, so " Alice", "ＡＬＩＣＥ" and "ali\u200bce" are one account.
func NormalizeUsername(s string) string {
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(cases.Fold().String(s))
}

// Backoff slows password guessing per account without locking its owner out (issue 10,
// replacing the lockout after five failures). After FreeFailures wrong passwords for an
// account, each further attempt must wait a window that starts at BaseDelay and doubles
// with every failure up to MaxDelay; an attempt inside the window is refused with
// ERATELIMIT and a Retry-After before any password is checked, and past the free
// failures only one attempt at a time is let through, so a burst of concurrent guesses
// cannot slip in before the first failure is counted.
//
// A browser or app that signed in before carries a device cookie (OWASP "device
// cookies"): an HMAC-signed nonce bound to the account name. With a valid one, the
// account's backoff does not apply; instead that cookie has its own budget of
// DeviceFailures wrong passwords, after which it is revoked and its bearer is under the
// account's backoff like anyone else. So a flood of guesses against a name never keeps
// its owner out of a device they used before.
//
// All state is in memory per instance and keyed by the normalized account name and the
// cookie nonce: nothing about the client (address, user agent) is seen or kept. Several
// instances each keep their own backoff, so N instances allow N times the guesses; the
// device-cookie key is shared (derived from the pepper) so a cookie works on all.
type Backoff struct {
	Key            []byte        // device-cookie HMAC key, at least 32 bytes
	FreeFailures   int           // default 3
	BaseDelay      time.Duration // default 1s
	MaxDelay       time.Duration // default 15m
	DeviceFailures int           // default 5
	DeviceTTL      time.Duration // default 90 days
	MaxEntries     int           // default 100,000 accounts tracked
	Now            func() time.Time

	mu       sync.Mutex
	accounts map[string]*attempts
	devices  map[string]*attempts // by cookie nonce
}

type attempts struct {
	failures int
	inflight int
	until    time.Time // no attempt before this
	last     time.Time
}

func (b *Backoff) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Backoff) free() int { return orDefault(b.FreeFailures, 3) }
func (b *Backoff) deviceBudget() int {
	return orDefault(b.DeviceFailures, 5)
}
func (b *Backoff) maxDelay() time.Duration { return orDefaultD(b.MaxDelay, 15*time.Minute) }
func (b *Backoff) baseDelay() time.Duration {
	return orDefaultD(b.BaseDelay, time.Second)
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func orDefaultD(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// Reset forgets an account's failed logins (an admin's unlock), so its owner may try
// again at once. It acts on this instance's backoff only.
func (b *Backoff) Reset(username string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.accounts, NormalizeUsername(username))
}

// Attempt is one admitted login attempt; report its outcome with Done exactly once.
type Attempt struct {
	b      *Backoff
	key    string
	device bool
}

// Admit decides whether a login attempt for username, carrying deviceCookie ("" for
// none), may check the password now. A refusal is ERATELIMIT with RetryAfter set.
func (b *Backoff) Admit(username, deviceCookie string) (*Attempt, error) {
	name := NormalizeUsername(username)
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.accounts == nil {
		b.accounts, b.devices = map[string]*attempts{}, map[string]*attempts{}
	}
	if nonce, ok := b.verifyDevice(name, deviceCookie, now); ok {
		d := b.devices[nonce]
		if d == nil {
			d = &attempts{}
			b.devices[nonce] = d
		}
		if d.failures+d.inflight < b.deviceBudget() {
			d.inflight++
			d.last = now
			return &Attempt{b: b, key: nonce, device: true}, nil
		}
		// A spent cookie is revoked: its bearer falls under the account's backoff.
	}
	a := b.accounts[name]
	if a == nil {
		b.makeRoom(now)
		a = &attempts{}
		b.accounts[name] = a
	}
	if wait := a.until.Sub(now); wait > 0 {
		return nil, rateLimited(wait)
	}
	if a.failures+a.inflight >= b.free() && a.inflight > 0 {
		return nil, rateLimited(time.Second)
	}
	a.inflight++
	a.last = now
	return &Attempt{b: b, key: name}, nil
}

// Done records how the attempt ended: err nil is a right password (the failures are
// forgotten), EUNAUTHORIZED a wrong one; anything else (a disabled account, a
// database error) counts as neither.
func (a *Attempt) Done(err error) {
	b := a.b
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.accounts
	if a.device {
		m = b.devices
	}
	st := m[a.key]
	if st == nil {
		return
	}
	st.inflight = max(0, st.inflight-1)
	switch {
	case err == nil && a.device:
		// The account's own backoff is left as it is; the cookie's nonce is held only
		// while it has failures or attempts in flight.
		st.failures = 0
		if st.inflight == 0 {
			delete(m, a.key)
		}
	case err == nil:
		delete(m, a.key)
	case qingfeng.ErrorCode(err) == qingfeng.EUNAUTHORIZED:
		st.failures++
		st.last = now
		if !a.device && st.failures >= b.free() {
			st.until = now.Add(b.delay(st.failures - b.free()))
		}
	}
}

func (b *Backoff) delay(extra int) time.Duration {
	d := b.baseDelay()
	for range min(extra, 40) {
		d *= 2
		if d >= b.maxDelay() {
			return b.maxDelay()
		}
	}
	return d
}

// makeRoom keeps the map bounded when a flood of names fills it: entries no longer in a
// backoff window and idle go first; accounts still backing off are kept, so flooding
// other names cannot reset a target's backoff.
func (b *Backoff) makeRoom(now time.Time) {
	limit := orDefault(b.MaxEntries, 100_000)
	if len(b.accounts) < limit {
		return
	}
	for k, a := range b.accounts {
		if a.inflight == 0 && !now.Before(a.until) && (a.failures < b.free() || now.Sub(a.last) > b.maxDelay()) {
			delete(b.accounts, k)
		}
	}
	for k, d := range b.devices {
		if d.inflight == 0 && now.Sub(d.last) > b.maxDelay() && d.failures < b.deviceBudget() {
			delete(b.devices, k)
		}
	}
}

func rateLimited(wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	return &qingfeng.Error{Code: qingfeng.ERATELIMIT,
		Message:    fmt.Sprintf("该账号近期登录失败次数较多，请 %d 秒后再试；在曾经登录过的设备上可直接登录", secs),
		English:    fmt.Sprintf("too many failed logins for this account; try again in %d s, or sign in from a device you used before", secs),
		RetryAfter: time.Duration(secs) * time.Second}
}

// DeviceCookieName is the cookie (and, for API clients, the X-Qingfeng-Device header)
// carrying a device cookie.
const DeviceCookieName = "qf_device"

// IssueDevice returns a device cookie for username and when it expires, for a
// successful login.
func (b *Backoff) IssueDevice(username string) (string, time.Time) {
	var n [16]byte
	_, _ = rand.Read(n[:])
	exp := b.now().Add(orDefaultD(b.DeviceTTL, 90*24*time.Hour)).Truncate(time.Second)
	body := base64.RawURLEncoding.EncodeToString(n[:]) + "." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + b.deviceMAC(NormalizeUsername(username), body), exp.UTC()
}

func (b *Backoff) deviceMAC(name, body string) string {
	h := hmac.New(sha256.New, b.Key)
	h.Write([]byte("qingfeng-device|" + name + "|" + body))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// verifyDevice returns the cookie's nonce if it was issued for name and is unexpired.
func (b *Backoff) verifyDevice(name, cookie string, now time.Time) (string, bool) {
	if cookie == "" || len(cookie) > 200 || len(b.Key) < 32 {
		return "", false
	}
	parts := strings.Split(cookie, ".")
	if len(parts) != 3 {
		return "", false
	}
	body := parts[0] + "." + parts[1]
	if !hmac.Equal([]byte(parts[2]), []byte(b.deviceMAC(name, body))) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", false
	}
	return parts[0], true
}
