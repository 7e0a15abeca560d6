package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
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

// DefaultReuseWindow is how long a refresh secret just replaced still gets the same
// next secret: two refreshes one client sends in parallel (two tabs, a retry after a
// timeout) must not log it out.
const DefaultReuseWindow = 30 * time.Second

// Service logs staff in and out and authenticates their requests.
type Service struct {
	Users     UserStore
	Tokens    TokenSigner
	Passwords Passwords
	// RefreshHash is a keyed hash for refresh tokens, so a database copy cannot replay them.
	RefreshHash func(token string) string
	// RefreshNext derives the next refresh secret from the one presented, under a
	// server key. Deterministic, so that parallel refreshes with one token all get the
	// same next token and none of them invalidates the others.
	RefreshNext func(token string) string
	// SecretHash is a keyed hash for recovery codes (prefixed by purpose and account).
	SecretHash func(s string) string
	// Secrets seals TOTP secrets.
	Secrets     SecretBox
	ReuseWindow time.Duration // 0: DefaultReuseWindow
	// Require2FA lists the roles that must enrol a second factor before doing anything.
	Require2FA map[Role]bool
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Log        *slog.Logger
	Now        func() time.Time
	NewID      func() string
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
	// Restriction, if not nil, is what the account must do before anything else
	// (ErrPasswordChangeRequired or ErrTOTPEnrollmentRequired).
	Restriction *qingfeng.Error
}

var (
	errBadLogin = qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "用户名或密码错误", "wrong username or password")
	errBadCode  = qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "验证码错误或已使用", "the code is wrong or was already used")

	// ErrTOTPRequired answers a right password without the second factor it needs.
	ErrTOTPRequired = qingfeng.Errorf(qingfeng.ETOTPREQUIRED, "请输入动态验证码或恢复码", "enter the authenticator code or a recovery code")
	// ErrPasswordChangeRequired refuses every request but a password change from an
	// account whose password someone else chose.
	ErrPasswordChangeRequired = qingfeng.Errorf(qingfeng.EPASSWORDCHANGE, "请先修改初始密码或重置后的密码", "change your one-time password first")
	// ErrTOTPEnrollmentRequired refuses every request but enrolment from an account
	// whose role requires a second factor it has not set up.
	ErrTOTPEnrollmentRequired = qingfeng.Errorf(qingfeng.ETOTPENROLL, "请先设置两步验证（动态验证码）", "set up two-step verification first")
)

// Credentials are what a login presents: a password, and a TOTP code or a recovery
// code when the account has a second factor.
type Credentials struct {
	Username, Password string
	TOTP, RecoveryCode string
}

// Login checks credentials and opens a session. An account with a second factor needs
// it in the same request (ErrTOTPRequired without it): one request, no half-logged-in
// state on the server.
func (s *Service) Login(ctx context.Context, cr Credentials) (*Tokens, error) {
	u, err := s.Users.UserByUsername(ctx, NormalizeUsername(cr.Username))
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		s.Passwords.Dummy()
		return nil, errBadLogin
	}
	if err != nil {
		return nil, err
	}
	ok, err := s.Passwords.Check(u.PasswordHash, cr.Password)
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
	if u.TOTP.Enabled {
		if err := s.secondFactor(ctx, u, cr); err != nil {
			return nil, err
		}
	}
	now := s.now()
	if err := s.Users.RecordLogin(ctx, u.ID, now); err != nil {
		return nil, err
	}
	u.LastLoginAt = now
	secret := randomToken()
	sess := &Session{ID: s.NewID(), UserID: u.ID, RefreshHash: s.RefreshHash(secret), Generation: u.SessionGeneration,
		CreatedAt: now, ExpiresAt: now.Add(s.RefreshTTL)}
	if err := s.Users.CreateSession(ctx, sess); err != nil {
		return nil, fmt.Errorf("open session for %s: %w", u.ID, err)
	}
	s.Log.InfoContext(ctx, "login", "user", u.ID, "role", string(u.Role))
	return s.issue(u, sess.ID, secret)
}

// secondFactor checks a TOTP code (usable once: a code seen is refused for the rest of
// its window) or a recovery code (usable once).
func (s *Service) secondFactor(ctx context.Context, u *User, cr Credentials) error {
	switch {
	case cr.TOTP != "":
		code, ok := normalizeCode(cr.TOTP, TOTPDigits)
		if !ok || len(code) != TOTPDigits {
			return errBadCode
		}
		secret, err := s.Secrets.Open(u.ID, u.TOTP.Secret)
		if err != nil {
			return fmt.Errorf("open TOTP secret of %s: %w", u.ID, err)
		}
		step, ok := matchTOTP(secret, code, s.now())
		if !ok {
			s.Log.InfoContext(ctx, "login failed: wrong TOTP code", "user", u.ID)
			return errBadCode
		}
		if err := s.Users.UseTOTPStep(ctx, u.ID, step); err != nil {
			if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
				s.Log.WarnContext(ctx, "login refused: TOTP code replayed", "user", u.ID)
				return errBadCode
			}
			return err
		}
		return nil
	case cr.RecoveryCode != "":
		code, ok := normalizeCode(cr.RecoveryCode, 10)
		if !ok {
			return errBadCode
		}
		if err := s.Users.UseRecoveryCode(ctx, u.ID, s.recoveryHash(u.ID, code)); err != nil {
			if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
				s.Log.InfoContext(ctx, "login failed: wrong recovery code", "user", u.ID)
				return errBadCode
			}
			return err
		}
		s.Log.WarnContext(ctx, "recovery code used", "user", u.ID, "left", len(u.TOTP.RecoveryHashes)-1)
		return nil
	}
	return ErrTOTPRequired
}

func (s *Service) recoveryHash(userID, code string) string {
	return s.SecretHash("recovery-code:" + userID + ":" + code)
}

// Restriction is what u must do before anything else, or nil.
func (s *Service) Restriction(u *User) *qingfeng.Error {
	switch {
	case u.MustChangePassword:
		return ErrPasswordChangeRequired
	case s.Require2FA[u.Role] && !u.TOTP.Enabled:
		return ErrTOTPEnrollmentRequired
	}
	return nil
}

func (s *Service) issue(u *User, sessionID, secret string) (*Tokens, error) {
	exp := s.now().Add(s.AccessTTL)
	tok, err := s.Tokens.Sign(Claims{Subject: u.ID, Audience: AudienceStaff, Role: u.Role, UnitID: u.UnitID,
		Division: u.Division, SessionID: sessionID, ID: s.NewID(), ExpiresAt: exp})
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: tok, RefreshToken: sessionID + "." + secret, ExpiresAt: exp, User: u, Restriction: s.Restriction(u)}, nil
}

func (s *Service) reuseWindow() time.Duration {
	if s.ReuseWindow > 0 {
		return s.ReuseWindow
	}
	return DefaultReuseWindow
}

func equalHash(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Refresh exchanges a refresh token <session id>.<secret> for new tokens.
//
//   - The current secret rotates the session to the next secret.
//   - The secret just replaced, presented again within the reuse window, gets the same
//     next secret (RefreshNext is deterministic): parallel refreshes all succeed.
//   - The secret just replaced, presented after the window, is a stolen token being
//     replayed (or a client that kept an old one): the session is ended.
//   - Anything else — a forged <sid>.anything, an older secret — is refused and the
//     session is left alone: knowing a session id (it is in every access token) must
//     not let anyone log its owner out.
func (s *Service) Refresh(ctx context.Context, refresh string) (*Tokens, error) {
	id, secret, ok := strings.Cut(refresh, ".")
	if !ok || id == "" || secret == "" || len(refresh) > 256 {
		return nil, qingfeng.ErrUnauthorized
	}
	sess, err := s.session(ctx, id)
	if err != nil {
		return nil, err
	}
	h, now := s.RefreshHash(secret), s.now()
	next := s.RefreshNext(refresh)
	nextHash := s.RefreshHash(next)
	if equalHash(h, sess.RefreshHash) {
		err := s.Users.RotateSession(ctx, id, h, nextHash, now, now.Add(s.RefreshTTL))
		switch qingfeng.ErrorCode(err) {
		case "":
			return s.refreshed(ctx, sess, next)
		case qingfeng.ECONFLICT: // another refresh with this token won: judge by what it left
			if sess, err = s.session(ctx, id); err != nil {
				return nil, err
			}
		case qingfeng.ENOTFOUND:
			return nil, qingfeng.ErrUnauthorized
		default:
			return nil, err
		}
	}
	if equalHash(h, sess.PrevHash) {
		if now.Sub(sess.RotatedAt) <= s.reuseWindow() {
			if equalHash(nextHash, sess.RefreshHash) {
				return s.refreshed(ctx, sess, next)
			}
			return nil, qingfeng.ErrUnauthorized
		}
		_ = s.Users.DeleteSession(ctx, id)
		s.Log.WarnContext(ctx, "refresh token reused after its reuse window; session ended", "user", sess.UserID)
		return nil, qingfeng.ErrUnauthorized
	}
	s.Log.InfoContext(ctx, "refresh refused: not the session's secret; session kept", "user", sess.UserID)
	return nil, qingfeng.ErrUnauthorized
}

func (s *Service) refreshed(ctx context.Context, sess *Session, next string) (*Tokens, error) {
	u, err := s.sessionUser(ctx, sess)
	if err != nil {
		return nil, err
	}
	return s.issue(u, sess.ID, next)
}

func (s *Service) session(ctx context.Context, id string) (*Session, error) {
	sess, err := s.Users.SessionByID(ctx, id)
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		return nil, qingfeng.ErrUnauthorized
	}
	return sess, err
}

// sessionUser is the enabled account of sess, if sess belongs to its current generation.
func (s *Service) sessionUser(ctx context.Context, sess *Session) (*User, error) {
	u, err := s.activeUser(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	if sess.Generation != u.SessionGeneration {
		return nil, qingfeng.ErrUnauthorized
	}
	return u, nil
}

// Logout ends the session of an access token: it and its refresh token stop working.
func (s *Service) Logout(ctx context.Context, c Claims) error {
	if err := s.Users.DeleteSession(ctx, c.SessionID); err != nil && qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		return err
	}
	s.Log.InfoContext(ctx, "logout", "user", c.Subject)
	return nil
}

// Authenticate verifies a staff access token and that its session is open, of the
// account's current generation, and the account enabled: logging out, disabling an
// account or resetting its credentials takes effect at once, at the cost of two
// primary-key reads per request (measured in BenchmarkAuthenticate).
func (s *Service) Authenticate(ctx context.Context, token string) (*User, Claims, error) {
	c, err := s.Tokens.Verify(token, AudienceStaff)
	if err != nil {
		return nil, Claims{}, err
	}
	sess, err := s.session(ctx, c.SessionID)
	if err != nil {
		return nil, Claims{}, err
	}
	if sess.UserID != c.Subject {
		return nil, Claims{}, qingfeng.ErrUnauthorized
	}
	u, err := s.sessionUser(ctx, sess)
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
	// MustChangePassword: the password was chosen by someone else (an admin, the
	// bootstrap) and must be changed at first use.
	MustChangePassword bool
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
	if e := passwordPolicy(n.Password); e != nil {
		bad["password"] = *e
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
		Division: n.Division, PasswordHash: hash, MustChangePassword: n.MustChangePassword, CreatedAt: s.now(), UpdatedAt: s.now()}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
			return nil, qingfeng.Invalid(map[string]qingfeng.FieldError{"username": {Code: "taken", Message: "用户名已被使用", English: "username taken"}})
		}
		return nil, err
	}
	s.Log.InfoContext(ctx, "user created", "user", u.ID, "role", string(u.Role))
	return u, nil
}

// passwordPolicy is the one password rule: 12–256 characters.
func passwordPolicy(pw string) *qingfeng.FieldError {
	if l := utf8.RuneCountInString(pw); l < 12 || l > 256 {
		return &qingfeng.FieldError{Code: "weak_password", Message: "密码长度须为12–256位", English: "password must be 12–256 characters"}
	}
	return nil
}

// ListUsers returns up to limit accounts (1–200) after username after, by username.
func (s *Service) ListUsers(ctx context.Context, after string, limit int) ([]*User, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	return s.Users.ListUsers(ctx, after, limit)
}

// ChangePassword replaces u's password after checking the current one, clears the
// must-change flag and ends every other session of u (keepSession stays open).
func (s *Service) ChangePassword(ctx context.Context, u *User, keepSession, current, next string) error {
	ok, err := s.Passwords.Check(u.PasswordHash, current)
	if err != nil {
		return fmt.Errorf("check password of %s: %w", u.ID, err)
	}
	if !ok {
		s.Log.InfoContext(ctx, "password change refused: wrong current password", "user", u.ID)
		return qingfeng.Invalid(map[string]qingfeng.FieldError{"current_password": {Code: "wrong_password", Message: "当前密码不正确", English: "the current password is wrong"}})
	}
	if e := passwordPolicy(next); e != nil {
		return qingfeng.Invalid(map[string]qingfeng.FieldError{"new_password": *e})
	}
	if next == current {
		return qingfeng.Invalid(map[string]qingfeng.FieldError{"new_password": {Code: "same_password", Message: "新密码不能与当前密码相同", English: "the new password must differ from the current one"}})
	}
	hash, err := s.Passwords.Hash(next)
	if err != nil {
		return err
	}
	if err := s.Users.SetPassword(ctx, u.ID, hash, false); err != nil {
		return err
	}
	if err := s.Users.DeleteUserSessions(ctx, u.ID, keepSession); err != nil {
		return err
	}
	s.Log.InfoContext(ctx, "password changed", "user", u.ID)
	return nil
}

// ResetPassword gives account id a new random one-time password, which it must change
// at first use, and ends its sessions. The password is returned once and never stored.
func (s *Service) ResetPassword(ctx context.Context, id string) (string, error) {
	pw := rand.Text() // 26 base32 characters, 128 bits
	hash, err := s.Passwords.Hash(pw)
	if err != nil {
		return "", err
	}
	if err := s.Users.SetPassword(ctx, id, hash, true); err != nil {
		return "", err
	}
	if err := s.Users.RevokeSessions(ctx, id); err != nil {
		return "", err
	}
	s.Log.InfoContext(ctx, "password reset", "user", id)
	return pw, nil
}

// SetDisabled disables or re-enables account id. Disabling ends its sessions, so
// re-enabling it later revives none of its old tokens.
func (s *Service) SetDisabled(ctx context.Context, id string, disabled bool) (*User, error) {
	if err := s.Users.SetUserDisabled(ctx, id, disabled); err != nil {
		return nil, err
	}
	if disabled {
		if err := s.Users.RevokeSessions(ctx, id); err != nil {
			return nil, err
		}
	}
	s.Log.InfoContext(ctx, "user disabled flag set", "user", id, "disabled", disabled)
	return s.Users.UserByID(ctx, id)
}

// TOTPEnrolment is a second factor being set up: shown once.
type TOTPEnrolment struct {
	Secret string // base32, for typing into an app
	URI    string // otpauth://, for a QR code
}

// EnrollTOTP starts setting up a second factor for u: a new secret, stored sealed as
// pending until ConfirmTOTP proves the app has it. Starting again replaces the pending
// secret. An account that has one already must have it reset by an admin first.
func (s *Service) EnrollTOTP(ctx context.Context, u *User) (*TOTPEnrolment, error) {
	if u.TOTP.Enabled {
		return nil, qingfeng.Errorf(qingfeng.ECONFLICT, "已启用两步验证；如需更换，请管理员重置", "two-step verification is already on; an admin must reset it to change it")
	}
	secret := newTOTPSecret()
	st := u.TOTP
	st.Pending = s.Secrets.Seal(u.ID, secret)
	if err := s.Users.SetTOTP(ctx, u.ID, st); err != nil {
		return nil, err
	}
	s.Log.InfoContext(ctx, "TOTP enrolment started", "user", u.ID)
	return &TOTPEnrolment{Secret: b32.EncodeToString(secret), URI: totpURI("Qingfeng", u.Username, secret)}, nil
}

// ConfirmTOTP turns the pending second factor on if code is its current code, and
// returns recoveryCodeCount single-use recovery codes, shown once and stored hashed.
func (s *Service) ConfirmTOTP(ctx context.Context, u *User, code string) ([]string, error) {
	if u.TOTP.Enabled {
		return nil, qingfeng.Errorf(qingfeng.ECONFLICT, "已启用两步验证", "two-step verification is already on")
	}
	if len(u.TOTP.Pending) == 0 {
		return nil, qingfeng.Errorf(qingfeng.ECONFLICT, "请先开始设置两步验证", "start the enrolment first")
	}
	secret, err := s.Secrets.Open(u.ID, u.TOTP.Pending)
	if err != nil {
		return nil, fmt.Errorf("open pending TOTP secret of %s: %w", u.ID, err)
	}
	c, ok := normalizeCode(code, TOTPDigits)
	step, match := matchTOTP(secret, c, s.now())
	if !ok || !match {
		return nil, qingfeng.Invalid(map[string]qingfeng.FieldError{"code": {Code: "wrong_code", Message: "验证码不正确，请核对手机时间后重试", English: "wrong code; check the phone's clock"}})
	}
	codes := make([]string, recoveryCodeCount)
	hashes := make([]string, recoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
		norm, _ := normalizeCode(codes[i], 10)
		hashes[i] = s.recoveryHash(u.ID, norm)
	}
	if err := s.Users.EnableTOTP(ctx, u.ID, u.TOTP.Pending, TOTPState{Enabled: true, Secret: u.TOTP.Pending, LastStep: step, RecoveryHashes: hashes}); err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
			return nil, qingfeng.Errorf(qingfeng.ECONFLICT, "两步验证已由另一请求启用或重新开始设置", "another request enabled or restarted the enrolment")
		}
		return nil, err
	}
	s.Log.InfoContext(ctx, "TOTP enabled", "user", u.ID)
	return codes, nil
}

// ResetTOTP removes account id's second factor and ends its sessions; if its role
// requires one, its next login may only enrol again.
func (s *Service) ResetTOTP(ctx context.Context, id string) (*User, error) {
	if err := s.Users.SetTOTP(ctx, id, TOTPState{}); err != nil {
		return nil, err
	}
	if err := s.Users.RevokeSessions(ctx, id); err != nil {
		return nil, err
	}
	s.Log.InfoContext(ctx, "TOTP reset", "user", id)
	return s.Users.UserByID(ctx, id)
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
