package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/pow"
)

// exchange is one HTTP exchange made from any goroutine (the test helpers fail the test,
// which only the test goroutine may do); check it against the spec afterwards.
type exchange struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

func (e exchange) check(t *testing.T) {
	t.Helper()
	p, _, _ := strings.Cut(e.path, "?")
	loadSpec(t).CheckResponse(t, e.method, p, e.status, e.header.Get("Content-Type"), e.body)
}

var powHTTP = &http.Client{Timeout: 30 * time.Second}

func send(base, method, path string, body []byte, hdr map[string]string) (exchange, error) {
	r, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return exchange{}, err
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := powHTTP.Do(r)
	if err != nil {
		return exchange{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return exchange{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}, err
}

// sendSolving is what a client does: send; on 428 pow_required solve the challenge in
// the answer and send again. It returns the last exchange and the difficulties solved.
func sendSolving(base, method, path string, body []byte) (exchange, []int, error) {
	var solved []int
	hdr := map[string]string{}
	for range 6 {
		e, err := send(base, method, path, body, hdr)
		if err != nil || e.status != 428 {
			return e, solved, err
		}
		var eb struct {
			Error struct {
				PoW *struct {
					Challenge  string `json:"challenge"`
					Difficulty int    `json:"difficulty"`
				} `json:"pow"`
			} `json:"error"`
		}
		if err := json.Unmarshal(e.body, &eb); err != nil || eb.Error.PoW == nil {
			return e, solved, fmt.Errorf("428 without a challenge: %s", e.body)
		}
		hdr["X-Qingfeng-PoW"] = pow.Solve(eb.Error.PoW.Challenge, eb.Error.PoW.Difficulty)
		solved = append(solved, eb.Error.PoW.Difficulty)
	}
	return exchange{}, solved, fmt.Errorf("%s %s: still 428 after 6 solves", method, path)
}

// floodJSON marshals a value that always marshals.
func floodJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestPoWChallengeRoute: in normal times the difficulty is 0 and nothing is required.
func TestPoWChallengeRoute(t *testing.T) {
	for _, p := range pow.Purposes {
		r := do(t, req{method: "GET", path: "/v1/pow/challenge?purpose=" + string(p)})
		wantStatus(t, r, 200)
		var ch struct {
			Difficulty int    `json:"difficulty"`
			Algorithm  string `json:"algorithm"`
		}
		r.json(t, &ch)
		if ch.Difficulty != 0 || ch.Algorithm != pow.Algorithm {
			t.Errorf("%s: %+v in normal times", p, ch)
		}
	}
	r := do(t, req{method: "GET", path: "/v1/pow/challenge?purpose=login"})
	wantStatus(t, r, 400)
}

// TestLoginBackoff: three wrong passwords are free; then the right password is refused
// for a while (429, Retry-After) under every spelling of the name — but not from a device
// that signed in before — and succeeds after the wait. 32 concurrent guesses check at
// most three passwords.
func TestLoginBackoff(t *testing.T) {
	_, u := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	const right = "correct horse battery staple"
	login := func(name, pw string, hdr map[string]string) response {
		t.Helper()
		return do(t, req{method: "POST", path: "/v1/auth/login", body: bytes.NewReader(floodJSON(map[string]string{"username": name, "password": pw})),
			contentType: "application/json", header: hdr})
	}
	r := login(u.Username, right, nil)
	wantStatus(t, r, 200)
	device := r.Header.Get("X-Qingfeng-Device")
	cookie := r.Header.Get("Set-Cookie")
	if device == "" || !strings.Contains(cookie, "qf_device="+device) || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(strings.ToLower(cookie), "samesite=strict") {
		t.Fatalf("device cookie %q / %q", device, cookie)
	}

	upper := strings.ToUpper(u.Username)
	fullWidth := strings.Map(func(r rune) rune {
		if r >= '!' && r <= '~' {
			return r + 0xFEE0
		}
		return r
	}, u.Username)
	for _, name := range []string{" " + u.Username, upper, fullWidth} {
		wantStatus(t, login(name, "wrong password!", nil), 401)
	}
	retry := func(r response) int {
		t.Helper()
		n, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || n < 1 || n > 900 {
			t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
		}
		return n
	}
	// Two more failures after waiting out the window: it doubles (1 s, 2 s, then 4 s —
	// long enough for the checks below on a slow machine).
	for _, want := range []int{1, 2} {
		r := login(u.Username, "wrong password!", nil)
		wantStatus(t, r, 429)
		if n := retry(r); n > want {
			t.Fatalf("window %d s, want ≤ %d", n, want)
		}
		time.Sleep(time.Duration(retry(r)) * time.Second)
		wantStatus(t, login(u.Username, "wrong password!", nil), 401)
	}
	var wait int
	for _, name := range []string{u.Username, " " + u.Username, upper + "\t", fullWidth, "\u200b" + u.Username} {
		r := login(name, right, nil)
		wantStatus(t, r, 429)
		if r.errorCode(t) != "rate_limited" {
			t.Errorf("code %s", r.Body)
		}
		wait = retry(r)
	}
	if wait < 3 {
		t.Errorf("after 5 failures the window is %d s, want 4", wait)
	}
	wantStatus(t, login(" "+upper, right, map[string]string{"X-Qingfeng-Device": device}), 200)
	wantStatus(t, login(u.Username, right, map[string]string{"Cookie": "qf_device=" + device}), 200)
	wantStatus(t, login(u.Username, right, map[string]string{"X-Qingfeng-Device": device + "x"}), 429)
	time.Sleep(time.Duration(wait) * time.Second)
	wantStatus(t, login(u.Username, right, nil), 200)

	_, v := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	var wrong, limited atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			e, err := send(baseURL, "POST", "/v1/auth/login", floodJSON(map[string]string{"username": v.Username, "password": "guess guess guess"}), nil)
			switch {
			case err != nil:
			case e.status == 401:
				wrong.Add(1)
			case e.status == 429:
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if wrong.Load() > 3 || wrong.Load()+limited.Load() != 32 {
		t.Errorf("32 concurrent guesses: %d checked (want ≤ 3), %d refused", wrong.Load(), limited.Load())
	}
}

// TestGuessingFlood: a bounded flood on loopback — attackers guessing receipts as fast
// as they can solve the proof of work, and guessing one staff password under several
// spellings — during which the holder of the right receipt and the staff member on
// their own device both get in within seconds. It reports the guesses per second the
// attackers sustained and the difficulty they were driven to.
func TestGuessingFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10-second flood")
	}
	cfg := testConfig(t, t.TempDir(), map[string]string{"QF_POW_NORMAL_PER_MINUTE": "30"})
	m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()

	e, err := send(base, "POST", "/v1/reports", floodJSON(anonymousReport()), nil)
	if err != nil || e.status != 201 {
		t.Fatalf("file: %v %d %s", err, e.status, e.body)
	}
	var f filed
	if err := json.Unmarshal(e.body, &f); err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery staple"
	if _, err := m.Accounts.CreateUser(context.Background(), accounts.NewUser{Username: "flood.target", Password: pw, Role: accounts.RoleStaff, UnitID: "330782-mz"},
		func(string) bool { return true }, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	loginBody := func(name, p string) []byte { return floodJSON(map[string]string{"username": name, "password": p}) }
	e, err = send(base, "POST", "/v1/auth/login", loginBody("flood.target", pw), nil)
	if err != nil || e.status != 200 {
		t.Fatalf("first login: %v %d", err, e.status)
	}
	device := e.header.Get("X-Qingfeng-Device")

	const (
		attackers   = 3
		maxGuesses  = 2000
		floodFor    = 10 * time.Second
		loginFlood  = 4 * time.Second
		legitAfter  = 2 * time.Second
		withinLimit = 10 * time.Second
	)
	start := time.Now()
	deadline := start.Add(floodFor)
	var (
		guesses, solves atomic.Int64
		maxBits         atomic.Int64
		samples         sync.Map // status → exchange
		wg              sync.WaitGroup
		loginChecked    atomic.Int64
		loginRefused    atomic.Int64
	)
	for range attackers {
		wg.Go(func() {
			for time.Now().Before(deadline) && guesses.Load() < maxGuesses {
				e, solved, err := sendSolving(base, "POST", "/v1/followup/session", floodJSON(map[string]string{"receipt_code": qfcrypto.NewReceiptCode()}))
				if err != nil {
					continue
				}
				samples.LoadOrStore(e.status, e)
				for _, b := range solved {
					solves.Add(1)
					for cur := maxBits.Load(); int64(b) > cur && !maxBits.CompareAndSwap(cur, int64(b)); cur = maxBits.Load() {
					}
				}
				if e.status == 401 {
					guesses.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		names := []string{"flood.target", " flood.target", "FLOOD.TARGET", "ｆｌｏｏｄ.ｔａｒｇｅｔ", "flood\u200b.target"}
		for i := 0; time.Since(start) < loginFlood; i++ {
			e, err := send(base, "POST", "/v1/auth/login", loginBody(names[i%len(names)], fmt.Sprint("guess-", i)), nil)
			if err != nil {
				continue
			}
			switch e.status {
			case 401:
				loginChecked.Add(1)
			case 429:
				loginRefused.Add(1)
				samples.LoadOrStore(1429, e)
				time.Sleep(5 * time.Millisecond)
			}
		}
	})

	time.Sleep(legitAfter)
	// The reporter with the right receipt, in the middle of the flood.
	t0 := time.Now()
	e, solved, err := sendSolving(base, "POST", "/v1/followup/session", floodJSON(map[string]string{"receipt_code": f.ReceiptCode}))
	receiptTook := time.Since(t0)
	if err != nil || e.status != 200 {
		t.Errorf("right receipt during the flood: %v %d %s", err, e.status, e.body)
	}
	if len(solved) == 0 {
		t.Errorf("the flood never raised the difficulty: no proof of work was asked")
	}
	if receiptTook > withinLimit {
		t.Errorf("right receipt took %v", receiptTook)
	}
	e.check(t)
	// The staff member on their own device, in the middle of the password flood.
	t0 = time.Now()
	e, err = send(base, "POST", "/v1/auth/login", loginBody("flood.target", pw), map[string]string{"X-Qingfeng-Device": device})
	deviceTook := time.Since(t0)
	if err != nil || e.status != 200 {
		t.Errorf("right password with the device cookie during the flood: %v %d %s", err, e.status, e.body)
	}
	// Without the device cookie the right password waits like a guess.
	e, err = send(base, "POST", "/v1/auth/login", loginBody("flood.target", pw), nil)
	if err != nil || e.status != 429 {
		t.Errorf("right password without a device cookie during the flood: %v %d (want 429)", err, e.status)
	}
	wg.Wait()
	took := time.Since(start)

	// After the flood: without the cookie, the right password gets in once the last
	// window has passed.
	t0 = time.Now()
	for {
		e, err = send(base, "POST", "/v1/auth/login", loginBody("flood.target", pw), nil)
		if err != nil || e.status != 429 {
			break
		}
		n, _ := strconv.Atoi(e.header.Get("Retry-After"))
		if time.Since(t0)+time.Duration(n)*time.Second > 30*time.Second {
			t.Fatalf("still backing off after the flood: Retry-After %d", n)
		}
		time.Sleep(time.Duration(n) * time.Second)
	}
	if err != nil || e.status != 200 {
		t.Errorf("right password after the flood: %v %d", err, e.status)
	}
	afterTook := time.Since(t0)

	samples.Range(func(_, v any) bool { v.(exchange).check(t); return true })
	if _, ok := samples.Load(401); !ok {
		t.Error("no wrong receipt was answered 401")
	}
	if loginChecked.Load() > 3+int64(loginFlood/time.Second) {
		t.Errorf("%d password guesses checked in %v", loginChecked.Load(), loginFlood)
	}
	t.Logf("flood: %d wrong receipts from %d attackers in %v (%.1f guesses/s), %d proofs solved, difficulty reached %d bits",
		guesses.Load(), attackers, took.Round(time.Millisecond), float64(guesses.Load())/took.Seconds(), solves.Load(), maxBits.Load())
	t.Logf("flood: right receipt in %v (solved %v bits); right password on a known device in %v; password guesses checked %d, refused %d; without the device after the flood: %v",
		receiptTook.Round(time.Millisecond), solved, deviceTook.Round(time.Millisecond), loginChecked.Load(), loginRefused.Load(), afterTook.Round(time.Millisecond))
}

// TestFilingRetriesDoNotRaiseDifficulty: a phone retrying one filing (same
// Idempotency-Key) is answered with the case it filed and does not count towards the
// service-wide rate, so it cannot raise the difficulty for everyone; distinct filings
// still do.
func TestFilingRetriesDoNotRaiseDifficulty(t *testing.T) {
	const normal = 5
	cfg := testConfig(t, t.TempDir(), map[string]string{"QF_POW_NORMAL_PER_MINUTE": strconv.Itoa(normal)})
	m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()
	body := floodJSON(anonymousReport())
	hdr := map[string]string{"Idempotency-Key": "retry-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	var number string
	for i := range 4 * normal {
		e, err := send(base, "POST", "/v1/reports", body, hdr)
		if err != nil || e.status/100 != 2 {
			t.Fatalf("attempt %d: %v %d %s", i, err, e.status, e.body)
		}
		e.check(t)
		var f filed
		if err := json.Unmarshal(e.body, &f); err != nil {
			t.Fatal(err)
		}
		if number == "" {
			number = f.CaseNumber
		} else if f.CaseNumber != number {
			t.Fatalf("retry %d filed %s, want %s", i, f.CaseNumber, number)
		}
	}
	if d := m.pow.Difficulty(pow.Report); d != 0 {
		t.Errorf("after one filing and its retries the difficulty is %d, want 0", d)
	}
	for i := range normal {
		if e, _, err := sendSolving(base, "POST", "/v1/reports", body); err != nil || e.status != 201 {
			t.Fatalf("distinct filing %d: %v %d %s", i, err, e.status, e.body)
		}
	}
	if d := m.pow.Difficulty(pow.Report); d == 0 {
		t.Error("distinct filings at the normal rate left the difficulty at 0")
	}
}
