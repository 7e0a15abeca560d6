package storetest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

// userModel is what a UserStore must hold after a sequence of session and
// second-factor operations, computed without a store.
type userModel struct {
	sessions map[string]modelSession
	gen      map[string]int64 // by user
	enabled  bool
	lastStep int64
	codes    []string
}

type modelSession struct{ user, hash, prev string }

// testUsersProperty runs seeded random sequences of session and second-factor
// operations against the store and a model, comparing every result and, every few
// steps, the whole state: every order of operations, not only the ones written out.
func testUsersProperty(t *testing.T, s accounts.UserStore) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, u := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, newUser(u, "name-"+u)); err != nil {
			t.Fatal(err)
		}
	}
	const seed, steps = 20261201, 400
	rng := rand.New(rand.NewPCG(seed, seed))
	m := &userModel{sessions: map[string]modelSession{}, gen: map[string]int64{"u1": 0, "u2": 0}}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	sessionIDs := []string{"s0", "s1", "s2", "s3"}
	hashN := 0
	for step := range steps {
		var (
			desc    string
			err     error
			want    string
			applied func()
		)
		switch rng.IntN(8) {
		case 0, 1:
			id, user := pick(sessionIDs...), pick("u1", "u2")
			desc = fmt.Sprintf("CreateSession(%s, %s)", id, user)
			hashN++
			h := fmt.Sprint("h", hashN)
			err = s.CreateSession(ctx, &accounts.Session{ID: id, UserID: user, RefreshHash: h, Generation: m.gen[user], CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			if _, ok := m.sessions[id]; ok {
				want = qingfeng.ECONFLICT
			} else {
				applied = func() { m.sessions[id] = modelSession{user: user, hash: h} }
			}
		case 2, 3:
			id := pick(sessionIDs...)
			old := fmt.Sprint("h", rng.IntN(hashN+1))
			if cur, ok := m.sessions[id]; ok && rng.IntN(2) == 0 {
				old = cur.hash
			}
			hashN++
			next := fmt.Sprint("h", hashN)
			desc = fmt.Sprintf("RotateSession(%s, %s → %s)", id, old, next)
			err = s.RotateSession(ctx, id, old, next, now, now.Add(time.Hour))
			switch cur, ok := m.sessions[id]; {
			case !ok:
				want = qingfeng.ENOTFOUND
			case cur.hash != old:
				want = qingfeng.ECONFLICT
			default:
				applied = func() { m.sessions[id] = modelSession{user: cur.user, hash: next, prev: old} }
			}
		case 4:
			id := pick(sessionIDs...)
			desc = "DeleteSession(" + id + ")"
			err = s.DeleteSession(ctx, id)
			applied = func() { delete(m.sessions, id) }
		case 5:
			user, except := pick("u1", "u2"), pick(append(sessionIDs, "")...)
			if rng.IntN(2) == 0 {
				desc = fmt.Sprintf("DeleteUserSessions(%s, except %q)", user, except)
				err = s.DeleteUserSessions(ctx, user, except)
			} else {
				user = pick("u1", "u2", "u9")
				except = ""
				desc = "RevokeSessions(" + user + ")"
				err = s.RevokeSessions(ctx, user)
				if user == "u9" {
					want = qingfeng.ENOTFOUND
					break
				}
			}
			applied = func() {
				if desc[0] == 'R' {
					m.gen[user]++
				}
				maps.DeleteFunc(m.sessions, func(id string, ms modelSession) bool { return ms.user == user && id != except })
			}
		case 6:
			st := accounts.TOTPState{Enabled: rng.IntN(3) > 0, Secret: []byte("sealed"), LastStep: int64(rng.IntN(10))}
			for _, c := range []string{"r0", "r1", "r2", "r3"} {
				if rng.IntN(2) == 0 {
					st.RecoveryHashes = append(st.RecoveryHashes, c)
				}
			}
			desc = fmt.Sprintf("SetTOTP(%+v)", st)
			err = s.SetTOTP(ctx, "u1", st)
			applied = func() { m.enabled, m.lastStep, m.codes = st.Enabled, st.LastStep, slices.Clone(st.RecoveryHashes) }
		case 7:
			if rng.IntN(2) == 0 {
				stepN := int64(rng.IntN(20))
				desc = fmt.Sprintf("UseTOTPStep(%d)", stepN)
				err = s.UseTOTPStep(ctx, "u1", stepN)
				if !m.enabled || m.lastStep >= stepN {
					want = qingfeng.ECONFLICT
				} else {
					applied = func() { m.lastStep = stepN }
				}
			} else {
				code := pick("r0", "r1", "r2", "r3", "r4")
				desc = "UseRecoveryCode(" + code + ")"
				err = s.UseRecoveryCode(ctx, "u1", code)
				if !m.enabled || !slices.Contains(m.codes, code) {
					want = qingfeng.ECONFLICT
				} else {
					applied = func() { m.codes = slices.DeleteFunc(m.codes, func(c string) bool { return c == code }) }
				}
			}
		}
		if got := qingfeng.ErrorCode(err); got != want || (want == "" && err != nil) {
			t.Fatalf("seed %d step %d: %s = %v (code %q), want code %q", seed, step, desc, err, got, want)
		}
		if applied != nil && want == "" {
			applied()
		}
		if step%10 == 9 || step == steps-1 {
			m.check(t, ctx, s, fmt.Sprintf("seed %d after step %d (%s)", seed, step, desc), sessionIDs)
		}
	}
}

func (m *userModel) check(t *testing.T, ctx context.Context, s accounts.UserStore, where string, ids []string) {
	t.Helper()
	for _, id := range ids {
		got, err := s.SessionByID(ctx, id)
		want, ok := m.sessions[id]
		switch {
		case !ok && qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND:
			t.Fatalf("%s: session %s: %+v, %v; want none", where, id, got, err)
		case ok && err != nil:
			t.Fatalf("%s: session %s: %v; want %+v", where, id, err, want)
		case ok && (got.UserID != want.user || got.RefreshHash != want.hash || got.PrevHash != want.prev):
			t.Fatalf("%s: session %s = user %s hash %s prev %s; want %+v", where, id, got.UserID, got.RefreshHash, got.PrevHash, want)
		}
	}
	for _, u := range []string{"u1", "u2"} {
		got, err := s.UserByID(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if got.SessionGeneration != m.gen[u] {
			t.Fatalf("%s: %s generation %d, want %d", where, u, got.SessionGeneration, m.gen[u])
		}
		if u == "u1" && (got.TOTP.Enabled != m.enabled || got.TOTP.LastStep != m.lastStep || !slices.Equal(got.TOTP.RecoveryHashes, m.codes)) {
			t.Fatalf("%s: TOTP %+v, want enabled %v step %d codes %v", where, got.TOTP, m.enabled, m.lastStep, m.codes)
		}
	}
}
