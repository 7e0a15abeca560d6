package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

// Users is the suite every accounts.UserStore passes: lookups, exact usernames,
// conflicts, paging, credentials, second factor used once under 32 goroutines, session
// expiry and rotation with one winner of 16, and a seeded random sequence of session
// and second-factor operations checked against a model. newStore returns an empty
// store.
func Users(t *testing.T, newStore func(t *testing.T) accounts.UserStore) {
	run(t, newStore, []scenario[accounts.UserStore]{
		{"Users", testUsers},
		{"UserDisabled", testUserDisabled},
		{"Sessions", testSessions},
		{"SessionRotateConcurrent", testSessionRotateConcurrent},
		{"UserCredentials", testUserCredentials},
		{"SecondFactorOnce", testSecondFactorOnce},
		{"Property", testUsersProperty},
	})
}

func newUser(id, username string) *accounts.User {
	now := base.Add(time.Hour)
	return &accounts.User{ID: id, Username: username, DisplayName: "王五", Role: accounts.RoleLiaison,
		Division: "330782", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", CreatedAt: now, UpdatedAt: now}
}

func testUsers(t *testing.T, s accounts.UserStore) {
	ctx := context.Background()
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on empty = %d, %v", n, err)
	}
	u := newUser("u1", "wangwu")
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	want := *u
	want.CreatedAt, want.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	tests := []struct {
		name     string
		get      func() (*accounts.User, error)
		wantCode string
	}{
		{"by ID", func() (*accounts.User, error) { return s.UserByID(ctx, "u1") }, ""},
		{"by username", func() (*accounts.User, error) { return s.UserByUsername(ctx, "wangwu") }, ""},
		{"unknown ID", func() (*accounts.User, error) { return s.UserByID(ctx, "u9") }, qingfeng.ENOTFOUND},
		{"unknown username", func() (*accounts.User, error) { return s.UserByUsername(ctx, "nobody") }, qingfeng.ENOTFOUND},
		{"username is exact", func() (*accounts.User, error) { return s.UserByUsername(ctx, "WangWu") }, qingfeng.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			wantCode(t, err, tt.wantCode)
			if err == nil && !reflect.DeepEqual(*got, want) {
				t.Errorf("got %+v, want %+v", *got, want)
			}
		})
	}
	t.Run("duplicates", func(t *testing.T) {
		wantCode(t, s.CreateUser(ctx, newUser("u2", "wangwu")), qingfeng.ECONFLICT)
		wantCode(t, s.CreateUser(ctx, newUser("u1", "other")), qingfeng.ECONFLICT)
	})
	if err := s.CreateUser(ctx, newUser("u2", "zhaoliu")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 2 {
		t.Errorf("CountUsers = %d, %v; want 2", n, err)
	}
}

func testUserDisabled(t *testing.T, s accounts.UserStore) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, newUser("u1", "wangwu")); err != nil {
		t.Fatal(err)
	}
	for _, disabled := range []bool{true, true, false} {
		if err := s.SetUserDisabled(ctx, "u1", disabled); err != nil {
			t.Fatal(err)
		}
		got, err := s.UserByID(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Disabled != disabled {
			t.Errorf("Disabled = %v, want %v", got.Disabled, disabled)
		}
		if !got.UpdatedAt.After(base.Add(time.Hour)) {
			t.Errorf("UpdatedAt %v not advanced", got.UpdatedAt)
		}
	}
	wantCode(t, s.SetUserDisabled(ctx, "u9", true), qingfeng.ENOTFOUND)
}

func testUserCredentials(t *testing.T, s accounts.UserStore) {
	ctx := context.Background()
	for i, name := range []string{"zhaoliu", "wangwu", "lisi", "sunqi", "zhouba"} {
		if err := s.CreateUser(ctx, newUser(fmt.Sprint("u", i), name)); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for after := ""; ; {
		page, err := s.ListUsers(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			names = append(names, u.Username)
		}
		after = page[len(page)-1].Username
	}
	if want := []string{"lisi", "sunqi", "wangwu", "zhaoliu", "zhouba"}; !reflect.DeepEqual(names, want) {
		t.Errorf("paged listing %v, want %v", names, want)
	}

	// UsersOfUnit: a unit's accounts by username, disabled ones included, never
	// another unit's (one whose id extends this one, or differs in case) or a
	// unitless account's.
	for i, m := range []struct{ username, unit string }{{"zz", "330782-mz"}, {"aaa", "330782-mz"}, {"mm", "330782-mz"},
		{"bbb", "330782-mzj"}, {"ccc", "330782-MZ"}, {"ddd", "330326-mz"}} {
		u := newUser(fmt.Sprint("unit", i), m.username)
		u.Role, u.UnitID, u.Division = accounts.RoleStaff, m.unit, ""
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetUserDisabled(ctx, "unit2", true); err != nil {
		t.Fatal(err)
	}
	for unit, want := range map[string][]string{"330782-mz": {"aaa", "mm", "zz"}, "330782-m": nil, "": nil, "330326-mz": {"ddd"}, "330782-mzj": {"bbb"}} {
		got, err := s.UsersOfUnit(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range got {
			names = append(names, u.Username)
			if u.Disabled != (u.ID == "unit2") {
				t.Errorf("UsersOfUnit(%q): %s disabled = %v", unit, u.Username, u.Disabled)
			}
		}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("UsersOfUnit(%q) = %v, want %v", unit, names, want)
		}
	}

	if err := s.SetPassword(ctx, "u1", "hash2", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(ctx, "u1"); got.PasswordHash != "hash2" || !got.MustChangePassword {
		t.Errorf("after SetPassword: hash %q, must change %v", got.PasswordHash, got.MustChangePassword)
	}
	wantCode(t, s.SetPassword(ctx, "u9", "h", false), qingfeng.ENOTFOUND)

	now := time.Now().UTC()
	for _, id := range []string{"a", "b", "c"} {
		if err := s.CreateSession(ctx, &accounts.Session{ID: id, UserID: "u1", RefreshHash: id, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, &accounts.Session{ID: "other", UserID: "u2", RefreshHash: "o", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUserSessions(ctx, "u1", "b"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"a": qingfeng.ENOTFOUND, "b": "", "c": qingfeng.ENOTFOUND, "other": ""} {
		_, err := s.SessionByID(ctx, id)
		wantCode(t, err, want)
	}
	if err := s.RevokeSessions(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	_, err := s.SessionByID(ctx, "b")
	wantCode(t, err, qingfeng.ENOTFOUND)
	if _, err := s.SessionByID(ctx, "other"); err != nil {
		t.Errorf("another account's session: %v", err)
	}
	if got, _ := s.UserByID(ctx, "u1"); got.SessionGeneration != 1 {
		t.Errorf("generation %d after one revocation, want 1", got.SessionGeneration)
	}
	wantCode(t, s.RevokeSessions(ctx, "u9"), qingfeng.ENOTFOUND)
}

// testSecondFactorOnce presents one TOTP step and one recovery code from 32 goroutines
// at once: each is accepted exactly once.
func testSecondFactorOnce(t *testing.T, s accounts.UserStore) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, newUser("u1", "wangwu")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.UseTOTPStep(ctx, "u1", 5), qingfeng.ECONFLICT) // not enabled
	pending := accounts.TOTPState{Pending: []byte("pending")}
	if err := s.SetTOTP(ctx, "u1", pending); err != nil {
		t.Fatal(err)
	}
	var enabled atomic.Int32
	var wg0 sync.WaitGroup
	for range 8 {
		wg0.Go(func() {
			switch err := s.EnableTOTP(ctx, "u1", []byte("pending"), accounts.TOTPState{Enabled: true, Secret: []byte("pending")}); qingfeng.ErrorCode(err) {
			case "":
				enabled.Add(1)
			case qingfeng.ECONFLICT:
			default:
				t.Error(err)
			}
		})
	}
	wg0.Wait()
	if enabled.Load() != 1 {
		t.Errorf("%d confirmations won, want 1", enabled.Load())
	}
	wantCode(t, s.EnableTOTP(ctx, "u1", []byte("other"), accounts.TOTPState{Enabled: true}), qingfeng.ECONFLICT)
	wantCode(t, s.EnableTOTP(ctx, "u9", []byte("pending"), accounts.TOTPState{Enabled: true}), qingfeng.ENOTFOUND)
	st := accounts.TOTPState{Enabled: true, Secret: []byte("sealed"), LastStep: 10, RecoveryHashes: []string{"r1", "r2"}}
	if err := s.SetTOTP(ctx, "u1", st); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(ctx, "u1"); !reflect.DeepEqual(got.TOTP, st) {
		t.Errorf("TOTP state %+v, want %+v", got.TOTP, st)
	}
	wantCode(t, s.UseTOTPStep(ctx, "u1", 10), qingfeng.ECONFLICT)
	wantCode(t, s.UseTOTPStep(ctx, "u1", 9), qingfeng.ECONFLICT)
	wantCode(t, s.UseTOTPStep(ctx, "u9", 11), qingfeng.ENOTFOUND)
	const n = 32
	var totpWins, codeWins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			switch err := s.UseTOTPStep(ctx, "u1", 11); qingfeng.ErrorCode(err) {
			case "":
				totpWins.Add(1)
			case qingfeng.ECONFLICT:
			default:
				t.Error(err)
			}
			switch err := s.UseRecoveryCode(ctx, "u1", "r2"); qingfeng.ErrorCode(err) {
			case "":
				codeWins.Add(1)
			case qingfeng.ECONFLICT:
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if totpWins.Load() != 1 || codeWins.Load() != 1 {
		t.Errorf("%d TOTP and %d recovery-code uses won, want 1 each", totpWins.Load(), codeWins.Load())
	}
	got, _ := s.UserByID(ctx, "u1")
	if got.TOTP.LastStep != 11 || !reflect.DeepEqual(got.TOTP.RecoveryHashes, []string{"r1"}) {
		t.Errorf("after use: %+v", got.TOTP)
	}
	wantCode(t, s.UseRecoveryCode(ctx, "u1", "r9"), qingfeng.ECONFLICT)
}

func testSessions(t *testing.T, s accounts.UserStore) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	live := &accounts.Session{ID: "s1", UserID: "u1", RefreshHash: "h0", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	expired := &accounts.Session{ID: "s2", UserID: "u1", RefreshHash: "x0", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	for _, sess := range []*accounts.Session{live, expired} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(2 * time.Hour)
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"create again", func() error { return s.CreateSession(ctx, live) }, qingfeng.ECONFLICT},
		{"get", func() error {
			got, err := s.SessionByID(ctx, "s1")
			if err == nil && !reflect.DeepEqual(got, live) {
				return fmt.Errorf("got %+v, want %+v", got, live)
			}
			return err
		}, ""},
		{"rotate", func() error { return s.RotateSession(ctx, "s1", "h0", "h1", now, later) }, ""},
		{"rotate with the used hash", func() error { return s.RotateSession(ctx, "s1", "h0", "h2", now, later) }, qingfeng.ECONFLICT},
		{"rotated", func() error {
			got, err := s.SessionByID(ctx, "s1")
			if err == nil && (got.RefreshHash != "h1" || got.PrevHash != "h0" || !got.RotatedAt.Equal(now) || !got.ExpiresAt.Equal(later)) {
				return fmt.Errorf("after rotation: hash %q, prev %q at %v, expires %v", got.RefreshHash, got.PrevHash, got.RotatedAt, got.ExpiresAt)
			}
			return err
		}, ""},
		{"rotate again", func() error { return s.RotateSession(ctx, "s1", "h1", "h2", now, later) }, ""},
		{"rotate unknown", func() error { return s.RotateSession(ctx, "s9", "h0", "h1", now, later) }, qingfeng.ENOTFOUND},
		{"get expired", func() error { _, err := s.SessionByID(ctx, "s2"); return err }, qingfeng.ENOTFOUND},
		{"rotate expired", func() error { return s.RotateSession(ctx, "s2", "x0", "x1", now, later) }, qingfeng.ENOTFOUND},
		{"delete", func() error { return s.DeleteSession(ctx, "s1") }, ""},
		{"get deleted", func() error { _, err := s.SessionByID(ctx, "s1"); return err }, qingfeng.ENOTFOUND},
		{"rotate deleted", func() error { return s.RotateSession(ctx, "s1", "h2", "h3", now, later) }, qingfeng.ENOTFOUND},
		{"delete again", func() error { return s.DeleteSession(ctx, "s1") }, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := st.do()
			if st.want == "" && err != nil {
				t.Fatal(err)
			}
			wantCode(t, err, st.want)
		})
	}
}

// testSessionRotateConcurrent presents one refresh token from many goroutines at once:
// exactly one may win.
func testSessionRotateConcurrent(t *testing.T, s accounts.UserStore) {
	ctx := context.Background()
	now := time.Now().UTC()
	if err := s.CreateSession(ctx, &accounts.Session{ID: "s1", UserID: "u1", RefreshHash: "h0", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.RotateSession(ctx, "s1", "h0", fmt.Sprintf("h1-%d", i), now, now.Add(2*time.Hour)) })
	}
	wg.Wait()
	var won []int
	for i, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			won = append(won, i)
		case qingfeng.ECONFLICT:
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d rotations won, want 1", len(won))
	}
	got, err := s.SessionByID(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("h1-%d", won[0]); got.RefreshHash != want {
		t.Errorf("refresh hash %q, want the winner's %q", got.RefreshHash, want)
	}
}
