package main

import (
	"bytes"
	"context"
	"encoding/base32"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Restriction  string `json:"restriction"`
}

// newAccount creates an account directly (as staffLogin does) and returns its name.
func newAccount(t *testing.T, role accounts.Role, unit, division, pw string) *accounts.User {
	t.Helper()
	u, err := srv.Accounts.CreateUser(context.Background(), accounts.NewUser{Username: fmt.Sprintf("acct%d", time.Now().UnixNano()),
		Password: pw, Role: role, UnitID: unit, Division: division}, func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func login(t *testing.T, body map[string]string, status int) tokenPair {
	t.Helper()
	r := postJSON(t, "/v1/auth/login", "", body)
	wantStatus(t, r, status)
	var tok tokenPair
	if status == 200 {
		r.json(t, &tok)
	}
	return tok
}

func refresh(t *testing.T, token string) response {
	t.Helper()
	return postJSON(t, "/v1/auth/refresh", "", map[string]string{"refresh_token": token})
}

func me(t *testing.T, token string) int {
	t.Helper()
	return do(t, req{method: "GET", path: "/v1/auth/me", token: token}).Status
}

// TestRefreshForgery: a session id is in every access token; presenting it with any
// other secret must be refused without ending the session.
func TestRefreshForgery(t *testing.T) {
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleStaff, "330782-mz", "", pw)
	tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	sid, secret, _ := strings.Cut(tok.RefreshToken, ".")
	other := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	otherSID, otherSecret, _ := strings.Cut(other.RefreshToken, ".")
	for _, forged := range []string{
		sid + ".anything",
		sid + ".",
		sid + "." + secret + "x",
		sid + "." + strings.ToUpper(secret),
		sid + "." + secret[:len(secret)-1],
		sid + ".." + secret,
		sid + "." + otherSecret, // a real secret of another session
		otherSID + "." + secret,
		strings.ToUpper(sid) + "." + secret,
		sid + "\u200b." + secret,
		" " + tok.RefreshToken,
		sid + "." + strings.Repeat("A", 300),
	} {
		r := refresh(t, forged)
		wantStatus(t, r, 401)
		if code := r.errorCode(t); code != "unauthorized" {
			t.Errorf("forged %q: code %q", forged, code)
		}
	}
	if me(t, tok.AccessToken) != 200 || me(t, other.AccessToken) != 200 {
		t.Fatal("a forged refresh ended a session")
	}
	wantStatus(t, refresh(t, tok.RefreshToken), 200)
	wantStatus(t, refresh(t, other.RefreshToken), 200)
}

// TestRefreshParallel: 32 refreshes with one token at once all succeed with the same
// next token, and the session goes on.
func TestRefreshParallel(t *testing.T) {
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleLiaison, "", "330782", pw)
	tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	for round := range 3 {
		const n = 32
		got := make([]tokenPair, n)
		status := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := refresh(t, tok.RefreshToken)
				status[i] = r.Status
				if r.Status == 200 {
					r.json(t, &got[i])
				}
			})
		}
		wg.Wait()
		for i := range n {
			if status[i] != 200 {
				t.Fatalf("round %d: refresh %d: status %d", round, i, status[i])
			}
			if got[i].RefreshToken != got[0].RefreshToken {
				t.Fatalf("round %d: refreshes disagree on the next token", round)
			}
			if me(t, got[i].AccessToken) != 200 {
				t.Fatalf("round %d: access token %d does not work", round, i)
			}
		}
		if got[0].RefreshToken == tok.RefreshToken {
			t.Fatal("the token did not rotate")
		}
		tok = got[0]
	}
}

// TestRefreshReuse: the previous secret after the reuse window is a replay (a stolen
// token): the session ends, for the thief and the owner.
func TestRefreshReuse(t *testing.T) {
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleStaff, "330782-mz", "", pw)
	tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	r := refresh(t, tok.RefreshToken)
	wantStatus(t, r, 200)
	var next tokenPair
	r.json(t, &next)

	// The same service a minute later: the stolen first token comes back.
	late := *srv.Accounts
	late.Now = func() time.Time { return time.Now().Add(time.Minute) }
	if _, err := late.Refresh(context.Background(), tok.RefreshToken); err == nil {
		t.Fatal("a previous refresh token was accepted after its reuse window")
	}
	wantStatus(t, refresh(t, next.RefreshToken), 401)
	if me(t, next.AccessToken) != 401 {
		t.Error("the session survived a replayed refresh token")
	}
	// An older secret than the previous one is just unknown: refused, nothing ended.
	tok = login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	var chain []string
	cur := tok.RefreshToken
	for range 3 {
		r := refresh(t, cur)
		wantStatus(t, r, 200)
		var p tokenPair
		r.json(t, &p)
		chain = append(chain, cur)
		cur = p.RefreshToken
	}
	wantStatus(t, refresh(t, chain[0]), 401)
	wantStatus(t, refresh(t, cur), 200)
}

// TestDisableEndsSessions: disabling an account ends its sessions; re-enabling it
// brings none back.
func TestDisableEndsSessions(t *testing.T) {
	const pw = "a long enough password"
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	u := newAccount(t, accounts.RoleStaff, "330782-mz", "", pw)
	tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	patch := func(disabled bool) {
		t.Helper()
		r := do(t, req{method: "PATCH", path: "/v1/admin/users/" + u.ID, body: strings.NewReader(fmt.Sprintf(`{"disabled":%v}`, disabled)), contentType: "application/json", token: admin})
		wantStatus(t, r, 200)
	}
	patch(true)
	if me(t, tok.AccessToken) != 401 {
		t.Error("access token works while disabled")
	}
	wantStatus(t, refresh(t, tok.RefreshToken), 401)
	login(t, map[string]string{"username": u.Username, "password": pw}, 403)
	patch(false)
	if me(t, tok.AccessToken) != 401 {
		t.Error("re-enabling revived an access token")
	}
	wantStatus(t, refresh(t, tok.RefreshToken), 401)
	fresh := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	if me(t, fresh.AccessToken) != 200 {
		t.Error("a new login after re-enabling does not work")
	}

	// Disabling while logins are under way: no session opened from a user read before
	// the disable survives it.
	var wg sync.WaitGroup
	tokens := make([]tokenPair, 8)
	for i := range tokens {
		wg.Go(func() {
			r := postJSON(t, "/v1/auth/login", "", map[string]string{"username": u.Username, "password": pw})
			if r.Status == 200 {
				r.json(t, &tokens[i])
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	patch(true)
	wg.Wait()
	patch(false)
	for i, tok := range tokens {
		if tok.AccessToken != "" && me(t, tok.AccessToken) != 401 {
			t.Errorf("login %d, racing the disable, kept a working session", i)
		}
	}
}

// TestMustChangePassword: an admin-created account, and one an admin reset, can only
// change its password until it does.
func TestMustChangePassword(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	name := fmt.Sprintf("mc%d", time.Now().UnixNano())
	r := postJSON(t, "/v1/admin/users", admin, map[string]string{"username": name, "password": "set by the admin", "role": "staff", "unit_id": "330782-mz"})
	wantStatus(t, r, 201)
	var created struct {
		ID         string `json:"id"`
		MustChange bool   `json:"must_change_password"`
	}
	r.json(t, &created)
	if !created.MustChange {
		t.Error("an admin-created account need not change its password")
	}
	tok := login(t, map[string]string{"username": name, "password": "set by the admin"}, 200)
	if tok.Restriction != "password_change_required" {
		t.Fatalf("restriction %q", tok.Restriction)
	}
	for _, rq := range []req{
		{method: "GET", path: "/v1/cases"},
		{method: "GET", path: "/v1/cases/counts"},
		{method: "POST", path: "/v1/auth/totp/enroll"},
	} {
		rq.token = tok.AccessToken
		r := do(t, rq)
		wantStatus(t, r, 403)
		if code := r.errorCode(t); code != "password_change_required" {
			t.Errorf("%s %s: code %q", rq.method, rq.path, code)
		}
	}
	if me(t, tok.AccessToken) != 200 {
		t.Error("a restricted account cannot see itself")
	}
	change := func(token, current, next string) response {
		return postJSON(t, "/v1/auth/password", token, map[string]string{"current_password": current, "new_password": next})
	}
	for _, tt := range []struct{ current, next, field string }{
		{"wrong password!", "my own new password", "current_password"},
		{"set by the admin", "short", "new_password"},
		{"set by the admin", "set by the admin", "new_password"},
	} {
		r := change(tok.AccessToken, tt.current, tt.next)
		wantStatus(t, r, 400)
		if !strings.Contains(string(r.Body), `"`+tt.field+`"`) {
			t.Errorf("error does not name %s: %s", tt.field, r.Body)
		}
	}
	wantStatus(t, postJSON(t, "/v1/auth/password", tok.AccessToken, `{"current_password":"set by the admin","new_password":"x","extra":1}`), 400)
	other := login(t, map[string]string{"username": name, "password": "set by the admin"}, 200)
	wantStatus(t, change(tok.AccessToken, "set by the admin", "my own new password"), 204)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases", token: tok.AccessToken}), 200)
	if me(t, other.AccessToken) != 401 {
		t.Error("a password change left another session open")
	}
	login(t, map[string]string{"username": name, "password": "set by the admin"}, 401)
	if tok := login(t, map[string]string{"username": name, "password": "my own new password"}, 200); tok.Restriction != "" {
		t.Errorf("restriction %q after the change", tok.Restriction)
	}

	// An admin reset: a one-time password, shown once; the old sessions end.
	r = postJSON(t, "/v1/admin/users/"+created.ID+"/password-reset", admin, "")
	wantStatus(t, r, 200)
	var reset struct {
		Password string `json:"password"`
	}
	r.json(t, &reset)
	if len(reset.Password) < 20 || strings.Contains(logBuf.String(), reset.Password) {
		t.Errorf("one-time password %q too short or in the log", reset.Password)
	}
	if me(t, tok.AccessToken) != 401 {
		t.Error("a password reset left a session open")
	}
	login(t, map[string]string{"username": name, "password": "my own new password"}, 401)
	if tok := login(t, map[string]string{"username": name, "password": reset.Password}, 200); tok.Restriction != "password_change_required" {
		t.Errorf("after a reset: restriction %q", tok.Restriction)
	}
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	wantStatus(t, postJSON(t, "/v1/admin/users/"+created.ID+"/password-reset", staff, ""), 403)
	wantStatus(t, postJSON(t, "/v1/admin/users/nobody/password-reset", admin, ""), 404)
	// One's own password is changed with the current one, not reset.
	adminUser, _, err := srv.Accounts.Authenticate(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, postJSON(t, "/v1/admin/users/"+adminUser.ID+"/password-reset", admin, ""), 409)
}

// TestTOTP: enrolment, login with a code or a recovery code, each usable once.
func TestTOTP(t *testing.T) {
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleStaff, "330782-mz", "", pw)
	tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	if tok.Restriction != "" {
		t.Fatalf("staff need no second factor by default, restriction %q", tok.Restriction)
	}
	r := postJSON(t, "/v1/auth/totp/confirm", tok.AccessToken, map[string]string{"code": "123456"})
	wantStatus(t, r, 409) // nothing pending
	wantStatus(t, postJSON(t, "/v1/auth/totp/enroll", tok.AccessToken, ""), 200)
	wantStatus(t, postJSON(t, "/v1/auth/totp/confirm", tok.AccessToken, map[string]string{"code": "000000"}), 400)
	secret, codes := enrolTOTP(t, tok.AccessToken) // a second enrolment replaces the first
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes", len(codes))
	}
	wantStatus(t, postJSON(t, "/v1/auth/totp/enroll", tok.AccessToken, ""), 409)

	// Neither the secret nor a recovery code is anywhere in the data directory.
	stored, _ := srv.Accounts.Users.UserByID(context.Background(), u.ID)
	if !stored.TOTP.Enabled || bytes.Contains(stored.TOTP.Secret, secret) {
		t.Fatalf("stored TOTP state %+v", stored.TOTP)
	}
	for _, f := range dataFiles(t) {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, secret) || bytes.Contains(b, []byte(strings.ReplaceAll(codes[0], "-", ""))) || bytes.Contains(b, []byte(codes[0])) {
			t.Errorf("%s holds the TOTP secret or a recovery code in plaintext", f)
		}
	}

	if logs := logBuf.String(); strings.Contains(logs, b32.EncodeToString(secret)) || strings.Contains(logs, codes[0]) {
		t.Error("the log holds the TOTP secret or a recovery code")
	}
	creds := func(extra ...string) map[string]string {
		m := map[string]string{"username": u.Username, "password": pw}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	// Signed in before the failures below: its argon2 hashing and second factor take
	// seconds on a loaded machine, longer than the backoff window they open.
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	r = postJSON(t, "/v1/auth/login", "", creds())
	wantStatus(t, r, 401)
	if code := r.errorCode(t); code != "totp_required" {
		t.Errorf("login without the code: %q", code)
	}
	login(t, creds("password", "wrong password!", "totp", accounts.TOTPCode(secret, accounts.TOTPStep(time.Now())+1)), 401)
	step := accounts.TOTPStep(time.Now()) + 1 // the confirm used the current step
	code := accounts.TOTPCode(secret, step)
	login(t, creds("totp", "12345"), 401)
	login(t, creds("totp", code), 200)
	full := ""
	for _, c := range code {
		full += string(c - '0' + '０')
	}
	login(t, creds("totp", full), 401)                              // the same code in full-width digits: a replay
	login(t, creds("totp", code[:3]+" "+code[3:]), 401)             // and with a space
	login(t, creds("totp", accounts.TOTPCode(secret, step-1)), 401) // an earlier step
	// Five failures throttle the account; an admin lifts that.
	login(t, creds("totp", accounts.TOTPCode(secret, step+1)), 429)
	wantStatus(t, postJSON(t, "/v1/admin/users/"+u.ID+"/unlock", admin, ""), 200)
	// Recovery codes: lower case, spaces, full-width dash; each once.
	rc := strings.ToLower(strings.Replace(codes[1], "-", "－", 1))
	login(t, creds("recovery_code", rc), 200)
	login(t, creds("recovery_code", codes[1]), 401)

	// An admin resets the second factor of a lost phone: sessions end, audited.
	after := login(t, map[string]string{"username": u.Username, "password": pw, "recovery_code": codes[2]}, 200)
	wantStatus(t, postJSON(t, "/v1/admin/users/"+u.ID+"/totp-reset", admin, ""), 200)
	if me(t, after.AccessToken) != 401 {
		t.Error("a second-factor reset left a session open")
	}
	login(t, creds(), 200)
	r = do(t, req{method: "GET", path: "/v1/admin/audit?limit=200", token: admin})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.Body), `"user.totp_reset"`) {
		t.Error("the reset was not audited")
	}
}

// TestRecoveryCodeRace: one recovery code presented by 32 logins at once opens one
// session.
func TestRecoveryCodeRace(t *testing.T) {
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleLiaison, "", "330782", pw)
	tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	_, codes := enrolTOTP(t, tok.AccessToken)
	// The service itself, without the HTTP login throttle, which would refuse some
	// of the 32 before they try.
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]int{}
	for range 32 {
		wg.Go(func() {
			_, err := srv.Accounts.Login(context.Background(), accounts.Credentials{Username: u.Username, Password: pw, RecoveryCode: codes[0]})
			mu.Lock()
			results[fmt.Sprint(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if results["<nil>"] != 1 || len(results) != 2 {
		t.Errorf("results %v: want exactly one success and otherwise one error", results)
	}
}

// TestRequiredSecondFactor: an admin without a second factor may only enrol.
func TestRequiredSecondFactor(t *testing.T) {
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleAdmin, "", "", pw)
	tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	if tok.Restriction != "totp_enrollment_required" {
		t.Fatalf("restriction %q", tok.Restriction)
	}
	for _, path := range []string{"/v1/admin/users", "/v1/admin/audit", "/v1/routing/rules"} {
		r := do(t, req{method: "GET", path: path, token: tok.AccessToken})
		wantStatus(t, r, 403)
		if code := r.errorCode(t); code != "totp_enrollment_required" {
			t.Errorf("%s: code %q", path, code)
		}
	}
	enrolTOTP(t, tok.AccessToken)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/admin/users", token: tok.AccessToken}), 200)
}

// TestAdminUserList pages through the accounts and unlocks a throttled one.
func TestAdminUserList(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleStaff, "330782-mz", "", pw)
	for range 3 { // more than one page of 3, whatever else the shared server holds
		newAccount(t, accounts.RoleStaff, "330782-mz", "", pw)
	}
	login(t, map[string]string{"username": u.Username, "password": pw}, 200)
	type page struct {
		Users []struct {
			ID          string `json:"id"`
			Username    string `json:"username"`
			Role        string `json:"role"`
			UnitID      string `json:"unit_id"`
			TOTPEnabled bool   `json:"totp_enabled"`
			MustChange  bool   `json:"must_change_password"`
			LastLoginAt string `json:"last_login_at"`
		} `json:"users"`
		NextAfter string `json:"next_after"`
	}
	found, prev, pages := false, "", 0
	for after := ""; ; pages++ {
		r := do(t, req{method: "GET", path: "/v1/admin/users?limit=3&after=" + after, token: admin})
		wantStatus(t, r, 200)
		var p page
		r.json(t, &p)
		for _, v := range p.Users {
			if v.Username <= prev {
				t.Fatalf("%q listed after %q", v.Username, prev)
			}
			prev = v.Username
			if v.ID == u.ID {
				found = true
				if v.Role != "staff" || v.UnitID != "330782-mz" || v.LastLoginAt == "" || v.TOTPEnabled || v.MustChange {
					t.Errorf("listed as %+v", v)
				}
			}
		}
		if p.NextAfter == "" {
			break
		}
		after = p.NextAfter
	}
	if !found || pages < 2 {
		t.Errorf("found %v in %d pages", found, pages)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "after=" + strings.Repeat("a", 65)} {
		wantStatus(t, do(t, req{method: "GET", path: "/v1/admin/users?" + q, token: admin}), 400)
	}

	// Past the backoff's free failures even the right password waits (no device
	// cookie here), until an admin unlocks the account.
	for range 3 {
		login(t, map[string]string{"username": u.Username, "password": "wrong password!"}, 401)
	}
	login(t, map[string]string{"username": u.Username, "password": pw}, 429)
	wantStatus(t, postJSON(t, "/v1/admin/users/"+u.ID+"/unlock", admin, ""), 200)
	login(t, map[string]string{"username": u.Username, "password": pw}, 200)
}

// BenchmarkAuthenticate measures what consulting the session and the account on every
// staff request costs (two primary-key reads on the embedded SQLite database) against
// verifying the access token's signature alone, which is all a stateless check would do.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	const pw = "a long enough password"
	u, err := srv.Accounts.CreateUser(ctx, accounts.NewUser{Username: fmt.Sprintf("bench%d", time.Now().UnixNano()), Password: pw,
		Role: accounts.RoleStaff, UnitID: "330782-mz"}, func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		b.Fatal(err)
	}
	tok, err := srv.Accounts.Login(ctx, accounts.Credentials{Username: u.Username, Password: pw})
	if err != nil {
		b.Fatal(err)
	}
	var full, sig time.Duration
	b.Run("session+account", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			if _, _, err := srv.Accounts.Authenticate(ctx, tok.AccessToken); err != nil {
				b.Fatal(err)
			}
		}
		full = time.Since(start) / time.Duration(b.N)
	})
	b.Run("signature-only", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			if _, err := srv.Accounts.Tokens.Verify(tok.AccessToken, accounts.AudienceStaff); err != nil {
				b.Fatal(err)
			}
		}
		sig = time.Since(start) / time.Duration(b.N)
	})
	if sig > 0 {
		b.Logf("per request: %v with the session and account reads, %v signature only (%.1f×)", full, sig, float64(full)/float64(sig))
	}
}

// TestBootstrapAdminMustChange: the first admin's printed password is one-time.
func TestBootstrapAdminMustChange(t *testing.T) {
	u, err := srv.Accounts.Users.UserByUsername(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !u.MustChangePassword || u.Role != accounts.RoleAdmin {
		t.Errorf("bootstrap admin: must change %v, role %s", u.MustChangePassword, u.Role)
	}
}

// TestRefreshSequences runs seeded random sequences of refreshes — with the current
// token, the one just replaced (within and after the reuse window), older ones, forged
// ones, and logins — against a model of what must happen, checking after every step
// that exactly the sessions the model says are open work.
func TestRefreshSequences(t *testing.T) {
	const pw = "a long enough password"
	u := newAccount(t, accounts.RoleStaff, "330782-mz", "", pw)
	late := *srv.Accounts
	late.Now = func() time.Time { return time.Now().Add(time.Minute) }
	type session struct {
		current, prev string
		old           []string
		access        string
		open          bool
	}
	for seed := int64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 0))
		var sessions []*session
		open := func() {
			tok := login(t, map[string]string{"username": u.Username, "password": pw}, 200)
			sessions = append(sessions, &session{current: tok.RefreshToken, access: tok.AccessToken, open: true})
		}
		open()
		for step := range 30 {
			s := sessions[rng.IntN(len(sessions))]
			var op string
			switch n := rng.IntN(10); {
			case n < 4:
				op = "current"
				r := refresh(t, s.current)
				if !s.open {
					wantStatus(t, r, 401)
					break
				}
				wantStatus(t, r, 200)
				var p tokenPair
				r.json(t, &p)
				if s.prev != "" {
					s.old = append(s.old, s.prev)
				}
				s.prev, s.current, s.access = s.current, p.RefreshToken, p.AccessToken
			case n < 6 && s.prev != "":
				op = "previous, within the window"
				r := refresh(t, s.prev)
				if !s.open {
					wantStatus(t, r, 401)
					break
				}
				wantStatus(t, r, 200)
				var p tokenPair
				r.json(t, &p)
				if p.RefreshToken != s.current {
					t.Fatalf("seed %d step %d: the previous token got a different next token", seed, step)
				}
			case n < 7 && s.prev != "":
				op = "previous, after the window"
				if _, err := late.Refresh(context.Background(), s.prev); err == nil {
					t.Fatalf("seed %d step %d: accepted", seed, step)
				}
				s.open = false
			case n < 8 && len(s.old) > 0:
				op = "older"
				wantStatus(t, refresh(t, s.old[rng.IntN(len(s.old))]), 401)
			case n < 9:
				op = "forged"
				sid, _, _ := strings.Cut(s.current, ".")
				wantStatus(t, refresh(t, sid+"."+fmt.Sprint(rng.Uint64())), 401)
			default:
				op = "login"
				open()
			}
			for i, x := range sessions {
				want := 401
				if x.open {
					want = 200
				}
				if got := me(t, x.access); got != want {
					t.Fatalf("seed %d step %d (%s): session %d answers %d, want %d", seed, step, op, i, got, want)
				}
			}
		}
	}
}
