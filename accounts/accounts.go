// Package accounts is the domain of staff accounts: users with roles and scopes, login,
// refresh and logout. Reporters have no accounts; they follow up with a receipt code.
//
// It must not import Fiber or the MongoDB driver. Passwords are only ever held hashed
// (argon2id); tokens are signed by an implementation of TokenSigner; refresh secrets and
// recovery codes are held only as keyed hashes, TOTP secrets only sealed (SecretBox).
// TOTP (RFC 6238) is implemented here over crypto/hmac rather than taken from a
// library: it is a few lines, and the RFC's vectors test it.
package accounts

import (
	"context"
	"time"
)

// Role is what an account may do.
type Role string

const (
	RoleAdmin     Role = "admin"     // 系统管理员
	RoleStaff     Role = "staff"     // 纪检监察干部、民政执法人员: bound to a unit
	RoleLiaison   Role = "liaison"   // 联络员: bound to a division
	RoleCustodian Role = "custodian" // 保密员: bound to a jurisdiction (division)
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleStaff, RoleLiaison, RoleCustodian:
		return true
	}
	return false
}

// User is a staff account.
type User struct {
	ID           string
	Username     string
	DisplayName  string
	Role         Role
	UnitID       string // staff
	Division     string // liaison, custodian: the division code of their jurisdiction
	PasswordHash string // argon2id, PHC string format
	Disabled     bool
	// MustChangePassword is set for a password someone else chose or saw (the first
	// admin's, one set by an admin, a reset): until it is changed, the account may only
	// change it.
	MustChangePassword bool
	// SessionGeneration is copied into every session opened; bumping it (disable,
	// password reset, second-factor reset) ends every session at once, including one
	// being opened concurrently, and re-enabling the account does not revive them.
	SessionGeneration int64
	TOTP              TOTPState
	LastLoginAt       time.Time // zero: never
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// TOTPState is an account's second factor (RFC 6238). Secrets are held only sealed
// (see SecretBox); recovery codes only as keyed hashes.
type TOTPState struct {
	Enabled bool
	Secret  []byte // sealed; set once enrolment is confirmed
	Pending []byte // sealed; an enrolment not yet confirmed
	// LastStep is the last time step whose code was accepted: a code is usable once.
	LastStep       int64
	RecoveryHashes []string
}

// Session is a refresh session: the refresh token is stored only as a hash.
type Session struct {
	ID          string
	UserID      string
	RefreshHash string
	// PrevHash is the hash of the refresh secret RefreshHash replaced, at RotatedAt: the
	// same secret presented again shortly after (two parallel refreshes of one client)
	// gets the same next secret instead of ending the session.
	PrevHash   string
	RotatedAt  time.Time
	Generation int64 // the user's SessionGeneration when the session was opened
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// Claims is what an access token says about its bearer.
type Claims struct {
	Subject   string // user id, or case id for a reporter's follow-up token
	Audience  string
	Role      Role
	UnitID    string
	Division  string
	SessionID string
	ID        string // jti
	ExpiresAt time.Time
	IssuedAt  time.Time // set by Verify (to the millisecond); ignored by Sign, which uses now
}

// Token audiences keep staff and reporter tokens from being used for each other.
const (
	AudienceStaff    = "qingfeng-staff"
	AudienceFollowUp = "qingfeng-followup"
)

// UserStore keeps accounts and refresh sessions.
type UserStore interface {
	CreateUser(ctx context.Context, u *User) error // ECONFLICT on a taken username
	UserByID(ctx context.Context, id string) (*User, error)
	UserByUsername(ctx context.Context, username string) (*User, error)
	CountUsers(ctx context.Context) (int64, error)
	SetUserDisabled(ctx context.Context, id string, disabled bool) error
	// ListUsers returns up to limit accounts with usernames after after, by username.
	ListUsers(ctx context.Context, after string, limit int) ([]*User, error)
	// UsersOfUnit returns the accounts of unit unitID (disabled ones included), by
	// username: whom a case can be assigned to. unitID "" is no unit: an empty list.
	UsersOfUnit(ctx context.Context, unitID string) ([]*User, error)
	// SetPassword stores a new password hash and the must-change flag.
	SetPassword(ctx context.Context, id, hash string, mustChange bool) error
	// SetTOTP replaces an account's second-factor state.
	SetTOTP(ctx context.Context, id string, t TOTPState) error
	// EnableTOTP sets t if the account's pending secret is still pending and no second
	// factor is on: ECONFLICT otherwise (another confirmation or enrolment won).
	EnableTOTP(ctx context.Context, id string, pending []byte, t TOTPState) error
	// UseTOTPStep records that the code of step was used, if no code of step or a later
	// one was: ECONFLICT otherwise (a replay).
	UseTOTPStep(ctx context.Context, id string, step int64) error
	// UseRecoveryCode removes hash from the account's recovery codes: ECONFLICT if it
	// is not (or no longer) there.
	UseRecoveryCode(ctx context.Context, id, hash string) error
	RecordLogin(ctx context.Context, id string, at time.Time) error
	// RevokeSessions bumps the account's session generation and deletes its sessions.
	RevokeSessions(ctx context.Context, userID string) error
	// DeleteUserSessions deletes the account's sessions except one (none if except is "").
	DeleteUserSessions(ctx context.Context, userID, except string) error

	CreateSession(ctx context.Context, s *Session) error
	// RotateSession replaces the refresh hash of session id by newHash if it still
	// equals oldHash, keeping oldHash as the previous one rotated at at; ECONFLICT if
	// it no longer equals oldHash (another refresh won).
	RotateSession(ctx context.Context, id, oldHash, newHash string, at, expires time.Time) error
	SessionByID(ctx context.Context, id string) (*Session, error)
	DeleteSession(ctx context.Context, id string) error
}

// SecretBox seals secrets the server must be able to use again but a copy of the
// database must not reveal (TOTP secrets), bound to the account they belong to.
type SecretBox interface {
	Seal(userID string, secret []byte) []byte
	Open(userID string, sealed []byte) ([]byte, error)
}

// TokenSigner issues and verifies access tokens.
type TokenSigner interface {
	Sign(c Claims) (string, error)
	// Verify checks signature, algorithm, audience and expiry.
	Verify(token, audience string) (Claims, error)
}
