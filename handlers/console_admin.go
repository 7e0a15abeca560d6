package handlers

import (
	"net/url"
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's accounts page: list, create, disable or enable, reset the password or
// the second factor, unlock — the API's calls, checks and audit entries. The other
// admin pages: console_recipients.go, console_rules.go, console_units.go,
// console_calendar.go, console_imports.go, console_audit.go.

func (s *Server) consoleUsersView(c fiber.Ctx) (web.UsersPage, error) {
	pg := web.UsersPage{ConsolePage: s.consolePage(c, "账号管理", "/console/admin/users"), After: c.Query("after")}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	if len(pg.After) > 64 {
		pg.After = ""
	}
	const limit = 50
	users, err := s.d.Accounts.ListUsers(c.Context(), pg.After, limit)
	if err != nil {
		return pg, err
	}
	me := principalOf(c).user.ID
	for _, u := range users {
		row := web.UserRow{ID: u.ID, Username: u.Username, Name: u.DisplayName, Role: roleLabels[u.Role], Disabled: u.Disabled,
			TOTP: u.TOTP.Enabled, MustChange: u.MustChangePassword, LastLogin: pageTime(u.LastLoginAt), Self: u.ID == me}
		switch {
		case u.UnitID != "":
			row.Scope, _ = s.d.UnitName(u.UnitID)
		case u.Division != "":
			row.Scope = divisionName(u.Division)
		}
		pg.Users = append(pg.Users, row)
	}
	if len(users) == limit {
		pg.NextHref = "/console/admin/users?after=" + url.QueryEscape(users[len(users)-1].Username)
	}
	return pg, nil
}

// consoleUsers is GET /console/admin/users.
func (s *Server) consoleUsers(c fiber.Ctx) error {
	pg, err := s.consoleUsersView(c)
	if err != nil {
		return err
	}
	pg.Flash = map[string]string{"create": "账号已创建；首次登录须修改密码。", "disable": "账号已停用，其会话已全部结束。", "enable": "账号已启用。",
		"totp_reset": "两步验证已重置，该账号的会话已结束。", "unlock": "已解除登录限制。"}[c.Query("done")]
	return s.render(c, fiber.StatusOK, "console/users", pg)
}

// consoleUsersAct is POST /console/admin/users.
func (s *Server) consoleUsersAct(c fiber.Ctx) error {
	form, err := s.consoleForm(c)
	var once string // a reset password, shown once
	op := form["op"]
	if err == nil {
		once, err = s.consoleUsersApply(c, op, form)
	}
	if err == nil && once == "" {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/admin/users?done=" + url.QueryEscape(op))
	}
	if err != nil {
		if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" {
			return err
		}
	}
	pg, verr := s.consoleUsersView(c)
	if verr != nil {
		return verr
	}
	if err != nil {
		consoleFormErrors(&pg.Form, err)
		if op == "create" {
			pg.Values = form
			delete(pg.Values, "password")
		}
		return s.render(c, statusForForm(err), "console/users", pg)
	}
	pg.OneTimePassword, pg.OneTimeFor = once, form["username"]
	return s.render(c, fiber.StatusOK, "console/users", pg)
}

func (s *Server) consoleUsersApply(c fiber.Ctx, op string, f map[string]string) (string, error) {
	me := principalOf(c).user.ID
	if op == "create" {
		u, err := s.d.Accounts.CreateUser(c.Context(), accounts.NewUser{Username: f["username"], DisplayName: f["display_name"],
			Password: f["password"], Role: accounts.Role(f["role"]), UnitID: f["unit_id"], Division: f["division"], MustChangePassword: true},
			func(id string) bool { _, ok := s.d.UnitName(id); return ok }, s.d.ValidDivision)
		if err != nil {
			return "", err
		}
		s.recordChange(c, "user.create", "", map[string]string{"user": u.ID, "role": string(u.Role), "must_change_password": "true"})
		return "", nil
	}
	id := f["id"]
	if id == me {
		return "", errSelf
	}
	u, err := s.d.Accounts.Users.UserByID(c.Context(), id)
	if err != nil {
		return "", err
	}
	switch op {
	case "disable", "enable":
		if _, err := s.d.Accounts.SetDisabled(c.Context(), u.ID, op == "disable"); err != nil {
			return "", err
		}
		s.recordChange(c, "user.update", "", map[string]string{"user": u.ID, "disabled": strconv.FormatBool(op == "disable")})
	case "password_reset":
		pw, err := s.d.Accounts.ResetPassword(c.Context(), u.ID)
		if err != nil {
			return "", err
		}
		s.recordChange(c, "user.password_reset", "", map[string]string{"user": u.ID})
		f["username"] = u.Username
		return pw, nil
	case "totp_reset":
		if _, err := s.d.Accounts.ResetTOTP(c.Context(), u.ID); err != nil {
			return "", err
		}
		s.recordChange(c, "user.totp_reset", "", map[string]string{"user": u.ID})
	case "unlock":
		s.d.Backoff.Reset(u.Username)
		s.recordChange(c, "user.unlock", "", map[string]string{"user": u.ID})
	default:
		return "", fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	return "", nil
}
