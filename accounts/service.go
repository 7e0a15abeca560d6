package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
)

// Passwords hashes and checks passwords (argon2id in production).
type Passwords interface {
	Hash(pw string) (string, error)
	Check(hash, pw string) (bool, error)
	// Dummy spends the time of a check, so an unknown username costs what a known one does.
	Dummy()
}

// Service logs staff in and out and authenticates their requests.
type Service struct {
	Users     UserStore
	Tokens    TokenSigner
	Passwords Passwords
	// RefreshHash is a keyed hash for refresh tokens, so a database copy cannot replay them.
	RefreshHash func(token string) string
	AccessTTL   time.Duration
	RefreshTTL  time.Duration
	Log         *slog.Logger
	Now         func() time.Time
	NewID       func() string
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Tokens is what a login or refresh returns.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time
	User         *User
}

var errBadLogin = qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "用户名或密码错误", "wrong username or password")

// Login checks a username and password and opens a session.
func (s *Service) Login(ctx context.Context, username, password string) (*Tokens, error) {
	u, err := s.Users.UserByUsername(ctx, NormalizeUsername(username))
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		s.Passwords.Dummy()
		return nil, errBadLogin
	}
	if err != nil {
		return nil, err
	}
	ok, err := s.Passwords.Check(u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("check password of %s: %w", u.ID, err)
	}
	if !ok {
		s.Log.InfoContext(ctx, "login failed", "user", u.ID)
		return nil, errBadLogin
	}
	if u.Disabled {
		return nil, qingfeng.Errorf(qingfeng.EFORBIDDEN, "账号已停用", "the account is disabled")
	}
	secret := randomToken()
	sess := &Session{ID: s.NewID(), UserID: u.ID, RefreshHash: s.RefreshHash(secret), CreatedAt: s.now(), ExpiresAt: s.now().Add(s.RefreshTTL)}
	if err := s.Users.CreateSession(ctx, sess); err != nil {
		return nil, fmt.Errorf("open session for %s: %w", u.ID, err)
	}
	s.Log.InfoContext(ctx, "login", "user", u.ID, "role", string(u.Role))
	return s.issue(u, sess.ID, secret)
}

func (s *Service) issue(u *User, sessionID, secret string) (*Tokens, error) {
	exp := s.now().Add(s.AccessTTL)
	tok, err := s.Tokens.Sign(Claims{Subject: u.ID, Audience: AudienceStaff, Role: u.Role, UnitID: u.UnitID,
		Division: u.Division, SessionID: sessionID, ID: s.NewID(), ExpiresAt: exp})
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: tok, RefreshToken: sessionID + "." + secret, ExpiresAt: exp, User: u}, nil
}

// Refresh exchanges a refresh token for new tokens; each refresh token works once.
func (s *Service) Refresh(ctx context.Context, refresh string) (*Tokens, error) {
	id, secret, ok := strings.Cut(refresh, ".")
	if !ok || id == "" || secret == "" {
		return nil, qingfeng.ErrUnauthorized
	}
	sess, err := s.Users.SessionByID(ctx, id)
	if err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
			return nil, qingfeng.ErrUnauthorized
		}
		return nil, err
	}
	u, err := s.activeUser(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	next := randomToken()
	if err := s.Users.RotateSession(ctx, id, s.RefreshHash(secret), s.RefreshHash(next), s.now().Add(s.RefreshTTL)); err != nil {
		if code := qingfeng.ErrorCode(err); code == qingfeng.EUNAUTHORIZED || code == qingfeng.ENOTFOUND {
			// A refresh token used twice may have been stolen: end the session.
			_ = s.Users.DeleteSession(ctx, id)
			s.Log.WarnContext(ctx, "refresh token reused; session ended", "user", u.ID)
			return nil, qingfeng.ErrUnauthorized
		}
		return nil, err
	}
	return s.issue(u, id, next)
}

// Logout ends the session of an access token: it and its refresh token stop working.
func (s *Service) Logout(ctx context.Context, c Claims) error {
	if err := s.Users.DeleteSession(ctx, c.SessionID); err != nil && qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		return err
	}
	s.Log.InfoContext(ctx, "logout", "user", c.Subject)
	return nil
}

// Authenticate verifies a staff access token and that its session is open and its user
// still enabled: logging out or disabling an account takes effect at once.
func (s *Service) Authenticate(ctx context.Context, token string) (*User, Claims, error) {
	c, err := s.Tokens.Verify(token, AudienceStaff)
	if err != nil {
		return nil, Claims{}, err
	}
	if _, err := s.Users.SessionByID(ctx, c.SessionID); err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
			return nil, Claims{}, qingfeng.ErrUnauthorized
		}
		return nil, Claims{}, err
	}
	u, err := s.activeUser(ctx, c.Subject)
	if err != nil {
		return nil, Claims{}, err
	}
	return u, c, nil
}

// ActiveUser returns the account id if it exists and is not disabled
// (EUNAUTHORIZED otherwise).
func (s *Service) ActiveUser(ctx context.Context, id string) (*User, error) {
	return s.activeUser(ctx, id)
}

func (s *Service) activeUser(ctx context.Context, id string) (*User, error) {
	u, err := s.Users.UserByID(ctx, id)
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		return nil, qingfeng.ErrUnauthorized
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "账号已停用", "the account is disabled")
	}
	return u, nil
}

// NewUser is an account to create.
type NewUser struct {
	Username    string
	DisplayName string
	Password    string
	Role        Role
	UnitID      string
	Division    string
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{2,63}$`)

// CreateUser validates and stores a new account. checkUnit and checkDivision say
// whether a unit id or division code exists.
func (s *Service) CreateUser(ctx context.Context, n NewUser, checkUnit, checkDivision func(string) bool) (*User, error) {
	bad := map[string]qingfeng.FieldError{}
	fe := func(f, code, zh, en string) { bad[f] = qingfeng.FieldError{Code: code, Message: zh, English: en} }
	n.Username = NormalizeUsername(n.Username)
	if !usernameRE.MatchString(n.Username) {
		fe("username", "invalid_username", "用户名须为3–64位小写字母、数字或 . _ -", "3–64 lowercase letters, digits, . _ -")
	}
	if l := utf8.RuneCountInString(n.Password); l < 12 || l > 256 {
		fe("password", "weak_password", "密码长度须为12–256位", "password must be 12–256 characters")
	}
	if utf8.RuneCountInString(n.DisplayName) > 100 {
		fe("display_name", "too_long", "不能超过100字", "at most 100 characters")
	}
	switch n.Role {
	case RoleAdmin:
		n.UnitID, n.Division = "", ""
	case RoleStaff:
		if !checkUnit(n.UnitID) {
			fe("unit_id", "unknown_unit", "单位不存在", "unknown unit")
		}
		n.Division = ""
	case RoleLiaison, RoleCustodian:
		if !checkDivision(n.Division) {
			fe("division", "unknown_division", "不是浙江省的行政区划代码", "not a Zhejiang division code")
		}
		n.UnitID = ""
	default:
		fe("role", "unknown_role", "角色只能是 admin、staff、liaison 或 custodian", "one of admin, staff, liaison, custodian")
	}
	if len(bad) > 0 {
		return nil, qingfeng.Invalid(bad)
	}
	hash, err := s.Passwords.Hash(n.Password)
	if err != nil {
		return nil, err
	}
	u := &User{ID: s.NewID(), Username: n.Username, DisplayName: n.DisplayName, Role: n.Role, UnitID: n.UnitID,
		Division: n.Division, PasswordHash: hash, CreatedAt: s.now(), UpdatedAt: s.now()}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
			return nil, qingfeng.Invalid(map[string]qingfeng.FieldError{"username": {Code: "taken", Message: "用户名已被使用", English: "username taken"}})
		}
		return nil, err
	}
	s.Log.InfoContext(ctx, "user created", "user", u.ID, "role", string(u.Role))
	return u, nil
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
