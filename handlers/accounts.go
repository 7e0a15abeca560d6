package handlers

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// TOTP or RecoveryCode: required, in the same request, when the account has a
	// second factor (401 totp_required without).
	TOTP         string `json:"totp"`
	RecoveryCode string `json:"recovery_code"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type tokenResponse struct {
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token"`
	TokenType    string   `json:"token_type"`
	ExpiresAt    string   `json:"expires_at"`
	User         userView `json:"user"`
	// Restriction is what the account must do before anything else:
	// password_change_required or totp_enrollment_required.
	Restriction string `json:"restriction,omitempty"`
}

type userView struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	UnitID      string `json:"unit_id,omitempty"`
	UnitName    string `json:"unit_name,omitempty"`
	Division    string `json:"division,omitempty"`
	Disabled    bool   `json:"disabled"`
	MustChange  bool   `json:"must_change_password"`
	TOTPEnabled bool   `json:"totp_enabled"`
	LastLoginAt string `json:"last_login_at,omitempty"`
}

func (s *Server) userView(u *accounts.User) userView {
	v := userView{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: string(u.Role), UnitID: u.UnitID, Division: u.Division, Disabled: u.Disabled,
		MustChange: u.MustChangePassword, TOTPEnabled: u.TOTP.Enabled}
	if !u.LastLoginAt.IsZero() {
		v.LastLoginAt = wireTime(u.LastLoginAt)
	}
	if u.UnitID != "" {
		v.UnitName, _ = s.d.UnitName(u.UnitID)
	}
	return v
}

func (s *Server) tokens(c fiber.Ctx, t *accounts.Tokens) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	out := tokenResponse{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "Bearer",
		ExpiresAt: wireTime(t.ExpiresAt), User: s.userView(t.User)}
	if t.Restriction != nil {
		out.Restriction = t.Restriction.Code
	}
	return c.JSON(out)
}

// login is POST /v1/auth/login.
func (s *Server) login(c fiber.Ctx) error {
	var req loginRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" || len(req.Password) > 1024 || len(req.Username) > 64 || len(req.TOTP) > 64 || len(req.RecoveryCode) > 64 {
		return qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "用户名或密码错误", "wrong username or password")
	}
	// Password guessing backs off per account, except on a device that signed in
	// before (accounts.Backoff); nothing about the client is kept.
	attempt, err := s.d.Backoff.Admit(req.Username, deviceCookie(c))
	if err != nil {
		return err
	}
	t, err := s.d.Accounts.Login(c.Context(), accounts.Credentials{Username: req.Username, Password: req.Password,
		TOTP: req.TOTP, RecoveryCode: req.RecoveryCode})
	attempt.Done(err)
	if err != nil {
		return err
	}
	s.setDeviceCookie(c, t.User.Username)
	return s.tokens(c, t)
}

// refresh is POST /v1/auth/refresh.
func (s *Server) refresh(c fiber.Ctx) error {
	var req refreshRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.d.Accounts.Refresh(c.Context(), req.RefreshToken)
	if err != nil {
		return err
	}
	return s.tokens(c, t)
}

// logout is POST /v1/auth/logout: the session's access and refresh tokens stop working.
func (s *Server) logout(c fiber.Ctx) error {
	if err := s.d.Accounts.Logout(c.Context(), principalOf(c).claims); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// me is GET /v1/auth/me.
func (s *Server) me(c fiber.Ctx) error {
	return c.JSON(s.userView(principalOf(c).user))
}

type createUserRequest struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Password    string `json:"password"`
	Role        string `json:"role"`
	UnitID      string `json:"unit_id"`
	Division    string `json:"division"`
	// MustChangePassword defaults to true: the admin chose (and so knows) the password.
	MustChangePassword *bool `json:"must_change_password"`
}

// createUser is POST /v1/admin/users.
func (s *Server) createUser(c fiber.Ctx) error {
	var req createUserRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	mustChange := req.MustChangePassword == nil || *req.MustChangePassword
	u, err := s.d.Accounts.CreateUser(c.Context(), accounts.NewUser{Username: req.Username, DisplayName: req.DisplayName,
		Password: req.Password, Role: accounts.Role(req.Role), UnitID: req.UnitID, Division: req.Division, MustChangePassword: mustChange},
		func(id string) bool { _, ok := s.d.UnitName(id); return ok }, s.d.ValidDivision)
	if err != nil {
		return err
	}
	s.recordChange(c, "user.create", "", map[string]string{"user": u.ID, "role": string(u.Role), "must_change_password": strconv.FormatBool(mustChange)})
	return c.Status(fiber.StatusCreated).JSON(s.userView(u))
}

type updateUserRequest struct {
	Disabled *bool `json:"disabled"`
}

// updateUser is PATCH /v1/admin/users/{id}: enable or disable an account. Disabling
// ends its sessions at once; re-enabling revives none of them.
func (s *Server) updateUser(c fiber.Ctx) error {
	var req updateUserRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Disabled == nil {
		return fieldInvalid("disabled", "required", "必填", "required")
	}
	id := c.Params("id")
	if id == principalOf(c).user.ID && *req.Disabled {
		return qingfeng.Errorf(qingfeng.ECONFLICT, "不能停用自己的账号", "you cannot disable your own account")
	}
	u, err := s.d.Accounts.SetDisabled(c.Context(), id, *req.Disabled)
	if err != nil {
		return err
	}
	s.recordChange(c, "user.update", "", map[string]string{"user": id, "disabled": strconv.FormatBool(*req.Disabled)})
	return c.JSON(s.userView(u))
}

// listUsers is GET /v1/admin/users?after=<username>&limit=<1–200>, by username.
func (s *Server) listUsers(c fiber.Ctx) error {
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return fieldInvalid("limit", "out_of_range", "limit 须为1–200的整数", "limit must be an integer from 1 to 200")
		}
		limit = n
	}
	after := c.Query("after")
	if len(after) > 64 {
		return fieldInvalid("after", "too_long", "不能超过64个字符", "at most 64 characters")
	}
	users, err := s.d.Accounts.ListUsers(c.Context(), after, limit)
	if err != nil {
		return err
	}
	out := struct {
		Users     []userView `json:"users"`
		NextAfter string     `json:"next_after,omitempty"`
	}{Users: make([]userView, 0, len(users))}
	for _, u := range users {
		out.Users = append(out.Users, s.userView(u))
	}
	if len(users) == limit {
		out.NextAfter = users[len(users)-1].Username
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

var errSelf = qingfeng.Errorf(qingfeng.ECONFLICT, "不能对自己的账号执行此操作，请使用个人设置", "not on your own account; use your own settings")

// adminTarget loads the account named in the path, refusing the admin's own.
func (s *Server) adminTarget(c fiber.Ctx) (*accounts.User, error) {
	id := c.Params("id")
	if id == principalOf(c).user.ID {
		return nil, errSelf
	}
	return s.d.Accounts.Users.UserByID(c.Context(), id)
}

// resetPassword is POST /v1/admin/users/{id}/password-reset: a new one-time password,
// shown once, which must be changed at first use; the account's sessions end.
func (s *Server) resetPassword(c fiber.Ctx) error {
	u, err := s.adminTarget(c)
	if err != nil {
		return err
	}
	pw, err := s.d.Accounts.ResetPassword(c.Context(), u.ID)
	if err != nil {
		return err
	}
	s.recordChange(c, "user.password_reset", "", map[string]string{"user": u.ID})
	u.MustChangePassword = true
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(struct {
		Password string   `json:"password"`
		User     userView `json:"user"`
	}{pw, s.userView(u)})
}

// resetTOTP is POST /v1/admin/users/{id}/totp-reset: removes the account's second
// factor (a lost phone) and ends its sessions.
func (s *Server) resetTOTP(c fiber.Ctx) error {
	u, err := s.adminTarget(c)
	if err != nil {
		return err
	}
	if u, err = s.d.Accounts.ResetTOTP(c.Context(), u.ID); err != nil {
		return err
	}
	s.recordChange(c, "user.totp_reset", "", map[string]string{"user": u.ID})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(s.userView(u))
}

// unlockUser is POST /v1/admin/users/{id}/unlock: clears the account's failed-login
// throttle, so its owner may try again at once.
func (s *Server) unlockUser(c fiber.Ctx) error {
	u, err := s.d.Accounts.Users.UserByID(c.Context(), c.Params("id"))
	if err != nil {
		return err
	}
	s.d.Backoff.Reset(u.Username)
	s.recordChange(c, "user.unlock", "", map[string]string{"user": u.ID})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(s.userView(u))
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword is POST /v1/auth/password: the signed-in account changes its own
// password. The only route open to an account that must change its password. Other
// sessions of the account end; this one stays.
func (s *Server) changePassword(c fiber.Ctx) error {
	var req changePasswordRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.CurrentPassword) > 1024 || len(req.NewPassword) > 1024 {
		return fieldInvalid("new_password", "weak_password", "密码长度须为12–256位", "password must be 12–256 characters")
	}
	p := principalOf(c)
	// Guesses at the current password (with a stolen access token) count against the
	// same backoff as login guesses.
	attempt, err := s.d.Backoff.Admit(p.user.Username, deviceCookie(c))
	if err != nil {
		return err
	}
	err = s.d.Accounts.ChangePassword(c.Context(), p.user, p.claims.SessionID, req.CurrentPassword, req.NewPassword)
	outcome := err // a weak new password, say, counts as neither right nor wrong
	if qe := (*qingfeng.Error)(nil); errors.As(err, &qe) && qe.Fields["current_password"].Code == "wrong_password" {
		outcome = qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "当前密码错误", "wrong current password")
	}
	attempt.Done(outcome)
	if err != nil {
		return err
	}
	s.recordChange(c, "account.password_change", "", map[string]string{"user": p.user.ID})
	return c.SendStatus(fiber.StatusNoContent)
}

// enrollTOTP is POST /v1/auth/totp/enroll: a new second-factor secret for the
// signed-in account, shown once, pending until confirmed.
func (s *Server) enrollTOTP(c fiber.Ctx) error {
	e, err := s.d.Accounts.EnrollTOTP(c.Context(), principalOf(c).user)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(struct {
		Secret string `json:"secret"`
		URI    string `json:"otpauth_uri"`
	}{e.Secret, e.URI})
}

type confirmTOTPRequest struct {
	Code string `json:"code"`
}

// confirmTOTP is POST /v1/auth/totp/confirm: the code from the app turns the second
// factor on; the recovery codes are returned once.
func (s *Server) confirmTOTP(c fiber.Ctx) error {
	var req confirmTOTPRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	codes, err := s.d.Accounts.ConfirmTOTP(c.Context(), p.user, req.Code)
	if err != nil {
		return err
	}
	s.recordChange(c, "account.totp_enable", "", map[string]string{"user": p.user.ID})
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}{codes})
}

// deviceCookie is the staff device cookie a request carries: the qf_device cookie of a
// browser, or the X-Qingfeng-Device header of an API client.
func deviceCookie(c fiber.Ctx) string {
	if v := c.Cookies(accounts.DeviceCookieName); v != "" {
		return v
	}
	return c.Get(headerDevice)
}

// setDeviceCookie hands a device cookie to a browser that just signed in (HttpOnly,
// SameSite=Strict, Secure over TLS, only sent to /v1/auth) and, for API clients, in the
// X-Qingfeng-Device response header.
func (s *Server) setDeviceCookie(c fiber.Ctx, username string) {
	v, exp := s.d.Backoff.IssueDevice(username)
	c.Cookie(&fiber.Cookie{Name: accounts.DeviceCookieName, Value: v, Path: "/v1/auth", Expires: exp,
		HTTPOnly: true, Secure: c.Secure(), SameSite: fiber.CookieSameSiteStrictMode})
	c.Set(headerDevice, v)
}
