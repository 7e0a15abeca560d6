// Package accounts is the domain of staff accounts: users with roles and scopes, login,
// refresh and logout. Reporters have no accounts; they follow up with a receipt code.
//
// It must not import Fiber or the MongoDB driver. Passwords are only ever held hashed
// (argon2id); tokens are signed by an implementation of TokenSigner.
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
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Session is a refresh session: the refresh token is stored only as a hash.
type Session struct {
	ID          string
	UserID      string
	RefreshHash string
	CreatedAt   time.Time
	ExpiresAt   time.Time
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

	CreateSession(ctx context.Context, s *Session) error
	// RotateSession replaces the refresh hash of session id if it still equals oldHash;
	// a refresh token can be used once.
	RotateSession(ctx context.Context, id, oldHash, newHash string, expires time.Time) error
	SessionByID(ctx context.Context, id string) (*Session, error)
	DeleteSession(ctx context.Context, id string) error
}

// TokenSigner issues and verifies access tokens.
type TokenSigner interface {
	Sign(c Claims) (string, error)
	// Verify checks signature, algorithm, audience and expiry.
	Verify(token, audience string) (Claims, error)
}
