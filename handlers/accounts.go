package handlers

import (
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
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
}

func (s *Server) userView(u *accounts.User) userView {
	v := userView{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: string(u.Role), UnitID: u.UnitID, Division: u.Division, Disabled: u.Disabled}
	if u.UnitID != "" {
		v.UnitName, _ = s.d.UnitName(u.UnitID)
	}
	return v
}

func (s *Server) tokens(c fiber.Ctx, t *accounts.Tokens) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(tokenResponse{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "Bearer",
		ExpiresAt: wireTime(t.ExpiresAt), User: s.userView(t.User)})
}

// login is POST /v1/auth/login.
func (s *Server) login(c fiber.Ctx) error {
	var req loginRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" || len(req.Password) > 1024 || len(req.Username) > 64 {
		return qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "用户名或密码错误", "wrong username or password")
	}
	// Password guessing backs off per account, except on a device that signed in
	// before (accounts.Backoff); nothing about the client is kept.
	attempt, err := s.d.Backoff.Admit(req.Username, deviceCookie(c))
	if err != nil {
		return err
	}
	t, err := s.d.Accounts.Login(c.Context(), req.Username, req.Password)
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
}

// createUser is POST /v1/admin/users.
func (s *Server) createUser(c fiber.Ctx) error {
	var req createUserRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.d.Accounts.CreateUser(c.Context(), accounts.NewUser{Username: req.Username, DisplayName: req.DisplayName,
		Password: req.Password, Role: accounts.Role(req.Role), UnitID: req.UnitID, Division: req.Division},
		func(id string) bool { _, ok := s.d.UnitName(id); return ok }, s.d.ValidDivision)
	if err != nil {
		return err
	}
	s.recordChange(c, "user.create", "", map[string]string{"user": u.ID, "role": string(u.Role)})
	return c.Status(fiber.StatusCreated).JSON(s.userView(u))
}

type updateUserRequest struct {
	Disabled *bool `json:"disabled"`
}

// updateUser is PATCH /v1/admin/users/{id}: enable or disable an account. A disabled
// account's tokens stop working at once.
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
	if err := s.d.Accounts.Users.SetUserDisabled(c.Context(), id, *req.Disabled); err != nil {
		return err
	}
	u, err := s.d.Accounts.Users.UserByID(c.Context(), id)
	if err != nil {
		return err
	}
	s.recordChange(c, "user.update", "", map[string]string{"user": id, "disabled": strconv.FormatBool(*req.Disabled)})
	return c.JSON(s.userView(u))
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
