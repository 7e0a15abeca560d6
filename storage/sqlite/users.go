package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

// UserStore keeps staff accounts and their refresh sessions.
type UserStore struct{ db *DB }

// NewUserStore returns a UserStore on db.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

// The same errors, in the same words, as storage/mongo's UserStore.
var (
	errUserNotFound    = qingfeng.Errorf(qingfeng.ENOTFOUND, "用户不存在", "user not found")
	errUsernameTaken   = qingfeng.Errorf(qingfeng.ECONFLICT, "用户名已被使用", "the username is taken")
	errSessionNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "登录会话不存在或已过期", "session not found or expired")
	errSessionExists   = qingfeng.Errorf(qingfeng.ECONFLICT, "登录会话已存在", "the session already exists")
	errSessionRotated  = qingfeng.Errorf(qingfeng.ECONFLICT, "登录会话已刷新", "the session was refreshed meanwhile")
	errTOTPChanged     = qingfeng.Errorf(qingfeng.ECONFLICT, "两步验证设置已变化", "the second factor changed meanwhile")
	errCodeUsed        = qingfeng.Errorf(qingfeng.ECONFLICT, "验证码已使用", "the code was already used")
)

const userColumns = `id, username, display_name, role, unit_id, division, password_hash, disabled,
	must_change_password, session_generation, totp_enabled, totp_secret_sealed, totp_pending_sealed,
	totp_last_step, totp_recovery_hashes, last_login_at, created_at, updated_at`

// userRow is one stored account.
type userRow struct {
	ID, Username, DisplayName, Role, UnitID, Division, PasswordHash string
	Disabled, MustChange                                            bool
	Generation                                                      int64
	TOTPEnabled                                                     bool
	TOTPSecret, TOTPPending                                         []byte
	TOTPLastStep                                                    int64
	RecoveryHashes                                                  string // JSON array
	LastLoginAt                                                     sql.NullInt64
	CreatedAt, UpdatedAt                                            int64
}

func (r *userRow) scan(s interface{ Scan(...any) error }) error {
	return s.Scan(&r.ID, &r.Username, &r.DisplayName, &r.Role, &r.UnitID, &r.Division, &r.PasswordHash, &r.Disabled,
		&r.MustChange, &r.Generation, &r.TOTPEnabled, &r.TOTPSecret, &r.TOTPPending,
		&r.TOTPLastStep, &r.RecoveryHashes, &r.LastLoginAt, &r.CreatedAt, &r.UpdatedAt)
}

func (r *userRow) user() (*accounts.User, error) {
	var hashes []string
	if err := json.Unmarshal([]byte(r.RecoveryHashes), &hashes); err != nil {
		return nil, fmt.Errorf("user %s: recovery codes: %w", r.ID, err)
	}
	if len(hashes) == 0 {
		hashes = nil
	}
	return &accounts.User{
		ID:           r.ID,
		Username:     r.Username,
		DisplayName:  r.DisplayName,
		Role:         accounts.Role(r.Role),
		UnitID:       r.UnitID,
		Division:     r.Division,
		PasswordHash: r.PasswordHash,
		Disabled:     r.Disabled,

		MustChangePassword: r.MustChange,
		SessionGeneration:  r.Generation,
		TOTP: accounts.TOTPState{Enabled: r.TOTPEnabled, Secret: nilIfEmpty(r.TOTPSecret), Pending: nilIfEmpty(r.TOTPPending),
			LastStep: r.TOTPLastStep, RecoveryHashes: hashes},
		LastLoginAt: fromMillis(r.LastLoginAt),
		CreatedAt:   time.UnixMilli(r.CreatedAt).UTC(),
		UpdatedAt:   time.UnixMilli(r.UpdatedAt).UTC(),
	}, nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// blob is b as stored: NULL when empty.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func recoveryJSON(hashes []string) string {
	if len(hashes) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(hashes) // a []string always marshals
	return string(b)
}

// CreateUser stores a new account; a taken username (or ID) is ECONFLICT. Usernames
// are compared exactly: normalizing them (case, width) is the accounts package's job.
func (s *UserStore) CreateUser(ctx context.Context, u *accounts.User) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO users ("+userColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			u.ID, u.Username, u.DisplayName, string(u.Role), u.UnitID, u.Division, u.PasswordHash, u.Disabled,
			u.MustChangePassword, u.SessionGeneration, u.TOTP.Enabled, blob(u.TOTP.Secret), blob(u.TOTP.Pending),
			u.TOTP.LastStep, recoveryJSON(u.TOTP.RecoveryHashes), millis(u.LastLoginAt), u.CreatedAt.UnixMilli(), u.UpdatedAt.UnixMilli())
		return err
	})
	return storeError("store user "+u.ID, err, nil, errUsernameTaken)
}

func (s *UserStore) findUser(ctx context.Context, q queryer, op, where string, arg any) (*accounts.User, error) {
	var r userRow
	if err := r.scan(q.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE "+where, arg)); err != nil {
		return nil, storeError(op, err, errUserNotFound, nil)
	}
	return r.user()
}

// queryer is a reader connection pool or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// UserByID returns the account with ID id.
func (s *UserStore) UserByID(ctx context.Context, id string) (*accounts.User, error) {
	return s.findUser(ctx, s.db.r, "find user "+id, "id = ?", id)
}

// UserByUsername returns the account named username.
func (s *UserStore) UserByUsername(ctx context.Context, username string) (*accounts.User, error) {
	return s.findUser(ctx, s.db.r, "find user by username", "username = ?", username)
}

// CountUsers returns the number of accounts, disabled ones included.
func (s *UserStore) CountUsers(ctx context.Context) (n int64, err error) {
	if err := s.db.r.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, storeError("count users", err, nil, nil)
	}
	return n, nil
}

// ListUsers returns up to limit accounts with usernames after after, by username
// (bytewise, as MongoDB orders strings).
func (s *UserStore) ListUsers(ctx context.Context, after string, limit int) ([]*accounts.User, error) {
	if limit <= 0 {
		limit = -1
	}
	return s.listUsers(ctx, "list users", "username > ? ORDER BY username LIMIT ?", after, limit)
}

// UsersOfUnit returns the accounts of unit unitID, disabled ones included, by username.
func (s *UserStore) UsersOfUnit(ctx context.Context, unitID string) ([]*accounts.User, error) {
	if unitID == "" {
		return []*accounts.User{}, nil
	}
	return s.listUsers(ctx, "list users of unit "+unitID, "unit_id = ? ORDER BY username", unitID)
}

func (s *UserStore) listUsers(ctx context.Context, op, where string, args ...any) ([]*accounts.User, error) {
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+userColumns+" FROM users WHERE "+where, args...)
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	out := []*accounts.User{}
	for rows.Next() {
		var r userRow
		if err := r.scan(rows); err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		u, err := r.user()
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, storeError(op, rows.Err(), nil, nil)
}

// updateUser runs change on account id inside one write transaction: change sees the
// account as stored and returns the columns to set, or an error (a condition not met)
// that is returned as it is. The account's updated_at is set with the change.
func (s *UserStore) updateUser(ctx context.Context, op, id string, change func(u *accounts.User) (map[string]any, error)) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := s.findUser(ctx, tx, op, "id = ?", id)
		if err != nil {
			return err
		}
		set, err := change(u)
		if err != nil {
			return err
		}
		set["updated_at"] = s.db.now().UnixMilli()
		cols := make([]string, 0, len(set))
		for c := range set {
			cols = append(cols, c)
		}
		slices.Sort(cols)
		q := "UPDATE users SET "
		args := make([]any, 0, len(set)+1)
		for i, c := range cols {
			if i > 0 {
				q += ", "
			}
			q += c + " = ?" // column names are constants of this file, never input
			args = append(args, set[c])
		}
		_, err = tx.ExecContext(ctx, q+" WHERE id = ?", append(args, id)...)
		return err
	})
	return storeError(op, err, nil, nil)
}

// SetUserDisabled disables or re-enables account id.
func (s *UserStore) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return s.updateUser(ctx, "set user disabled "+id, id, func(*accounts.User) (map[string]any, error) {
		return map[string]any{"disabled": disabled}, nil
	})
}

// SetPassword stores a new password hash and the must-change flag of account id.
func (s *UserStore) SetPassword(ctx context.Context, id, hash string, mustChange bool) error {
	return s.updateUser(ctx, "set password "+id, id, func(*accounts.User) (map[string]any, error) {
		return map[string]any{"password_hash": hash, "must_change_password": mustChange}, nil
	})
}

func totpColumns(t accounts.TOTPState) map[string]any {
	return map[string]any{"totp_enabled": t.Enabled, "totp_secret_sealed": blob(t.Secret), "totp_pending_sealed": blob(t.Pending),
		"totp_last_step": t.LastStep, "totp_recovery_hashes": recoveryJSON(t.RecoveryHashes)}
}

// SetTOTP replaces the second-factor state of account id.
func (s *UserStore) SetTOTP(ctx context.Context, id string, t accounts.TOTPState) error {
	return s.updateUser(ctx, "set totp "+id, id, func(*accounts.User) (map[string]any, error) {
		return totpColumns(t), nil
	})
}

// EnableTOTP sets the second-factor state of account id if pending is still its pending
// secret and no second factor is on: of two confirmations racing, one wins.
func (s *UserStore) EnableTOTP(ctx context.Context, id string, pending []byte, t accounts.TOTPState) error {
	op := "enable totp " + id
	return s.updateUser(ctx, op, id, func(u *accounts.User) (map[string]any, error) {
		if u.TOTP.Enabled || !slices.Equal(u.TOTP.Pending, nilIfEmpty(pending)) {
			return nil, domainError(errTOTPChanged, op+": condition not met")
		}
		return totpColumns(t), nil
	})
}

// UseTOTPStep records step as used if it is later than the last used one: of two
// logins racing with one code only one wins.
func (s *UserStore) UseTOTPStep(ctx context.Context, id string, step int64) error {
	op := "use totp step " + id
	return s.updateUser(ctx, op, id, func(u *accounts.User) (map[string]any, error) {
		if !u.TOTP.Enabled || u.TOTP.LastStep >= step {
			return nil, domainError(errCodeUsed, op+": condition not met")
		}
		return map[string]any{"totp_last_step": step}, nil
	})
}

// UseRecoveryCode removes hash from account id's recovery codes, if it is there.
func (s *UserStore) UseRecoveryCode(ctx context.Context, id, hash string) error {
	op := "use recovery code " + id
	return s.updateUser(ctx, op, id, func(u *accounts.User) (map[string]any, error) {
		if !u.TOTP.Enabled || !slices.Contains(u.TOTP.RecoveryHashes, hash) {
			return nil, domainError(errCodeUsed, op+": condition not met")
		}
		left := slices.DeleteFunc(u.TOTP.RecoveryHashes, func(h string) bool { return h == hash })
		return map[string]any{"totp_recovery_hashes": recoveryJSON(left)}, nil
	})
}

// RecordLogin sets the last login time of account id. Like storage/mongo's, it leaves
// updated_at alone and ignores an unknown account.
func (s *UserStore) RecordLogin(ctx context.Context, id string, at time.Time) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE users SET last_login_at = ? WHERE id = ?", millis(at), id)
		return err
	})
	return storeError("record login "+id, err, nil, nil)
}

// RevokeSessions ends every session of account userID: the generation bump and the
// deletion are one transaction, and a session opened concurrently from an account read
// before it carries the old generation, which accounts refuses.
func (s *UserStore) RevokeSessions(ctx context.Context, userID string) error {
	op := "revoke sessions of " + userID
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE users SET session_generation = session_generation + 1, updated_at = ? WHERE id = ?",
			s.db.now().UnixMilli(), userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, domainError(errUserNotFound, op+": no such user"))
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", userID)
		return err
	})
	return storeError(op, err, nil, nil)
}

// DeleteUserSessions deletes the sessions of account userID except session except.
func (s *UserStore) DeleteUserSessions(ctx context.Context, userID, except string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ? AND id <> ?", userID, except)
		return err
	})
	return storeError("delete sessions of "+userID, err, nil, nil)
}

// CreateSession stores a new refresh session.
func (s *UserStore) CreateSession(ctx context.Context, sess *accounts.Session) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, refresh_hash, generation, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, sess.ID, sess.UserID, sess.RefreshHash, sess.Generation, sess.CreatedAt.UnixMilli(), sess.ExpiresAt.UnixMilli())
		return err
	})
	return storeError("store session "+sess.ID, err, nil, errSessionExists)
}

// RotateSession replaces the refresh hash of live session id by newHash if it still
// equals oldHash, keeping oldHash as the previous hash rotated at at: one conditional
// UPDATE, so of two refreshes racing with one secret exactly one rotates; the other
// gets ECONFLICT (or ENOTFOUND for a session gone or expired).
func (s *UserStore) RotateSession(ctx context.Context, id, oldHash, newHash string, at, expires time.Time) error {
	op := "rotate session " + id
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.db.now().UnixMilli()
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET refresh_hash = ?, prev_hash = ?, rotated_at = ?, expires_at = ?
			WHERE id = ? AND refresh_hash = ? AND expires_at > ?`, newHash, oldHash, millis(at), expires.UnixMilli(), id, oldHash, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var live bool
		if err := tx.QueryRowContext(ctx, "SELECT expires_at > ? FROM sessions WHERE id = ?", now, id).Scan(&live); err != nil || !live {
			if err == nil || errors.Is(err, sql.ErrNoRows) {
				return domainError(errSessionNotFound, op+": no live session")
			}
			return err
		}
		return domainError(errSessionRotated, op+": the refresh hash changed")
	})
	return storeError(op, err, nil, nil)
}

// SessionByID returns live session id; an expired one is ENOTFOUND.
func (s *UserStore) SessionByID(ctx context.Context, id string) (*accounts.Session, error) {
	var (
		sess                 accounts.Session
		rotated              sql.NullInt64
		created, expiresAtMs int64
	)
	err := s.db.r.QueryRowContext(ctx, `SELECT id, user_id, refresh_hash, prev_hash, rotated_at, generation, created_at, expires_at
		FROM sessions WHERE id = ? AND expires_at > ?`, id, s.db.now().UnixMilli()).
		Scan(&sess.ID, &sess.UserID, &sess.RefreshHash, &sess.PrevHash, &rotated, &sess.Generation, &created, &expiresAtMs)
	if err != nil {
		return nil, storeError("find session "+id, err, errSessionNotFound, nil)
	}
	sess.RotatedAt = fromMillis(rotated)
	sess.CreatedAt = time.UnixMilli(created).UTC()
	sess.ExpiresAt = time.UnixMilli(expiresAtMs).UTC()
	return &sess, nil
}

// DeleteSession removes session id (logout); a missing session is not an error, so
// logging out twice is harmless.
func (s *UserStore) DeleteSession(ctx context.Context, id string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE id = ?", id)
		return err
	})
	return storeError("delete session "+id, err, nil, nil)
}

// PurgeExpired deletes expired sessions and idempotency records, returns how many, and
// truncates the WAL so that what was deleted is gone from it too (secure_delete zeroes
// the pages in the database file). Call it periodically, say hourly.
func (db *DB) PurgeExpired(ctx context.Context) (int64, error) {
	var n int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		now := db.now().UnixMilli()
		for _, table := range []string{"sessions", "idempotency"} {
			res, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE expires_at <= ?", now)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge expired: %w", err)
	}
	return n, db.Checkpoint(ctx)
}
