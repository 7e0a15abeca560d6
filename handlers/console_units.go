package handlers

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's unit page: a unit looked up by its code, with its aliases, and the
// forms that add or remove one — the API's calls, checks and audit entries.

func (s *Server) consoleUnitView(c fiber.Ctx, id string) (web.UnitPage, error) {
	pg := web.UnitPage{ConsolePage: s.consolePage(c, "单位及别名", "/console/admin/units"), ID: id}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{"id": id}
	if id == "" {
		return pg, nil
	}
	u, ok := s.d.Routing.Engine.Units.Get(id)
	if !ok {
		return pg, fieldInvalid("id", "unknown_unit", "单位不存在", "no such unit")
	}
	pg.Found = true
	pg.Name, pg.Kind, pg.Aliases = u.Name, routing.KindLabel(u.Kind), u.Aliases
	if u.Division != "" {
		pg.Division = divisionName(u.Division) + "（" + u.Division + "）"
	}
	pg.Active = u.Active
	return pg, nil
}

// consoleUnit is GET /console/admin/units?id=.
func (s *Server) consoleUnit(c fiber.Ctx) error {
	id := strings.TrimSpace(c.Query("id"))
	pg, err := s.consoleUnitView(c, id)
	if err != nil {
		consoleFormErrors(&pg.Form, err)
		return s.render(c, statusForForm(err), "console/units", pg)
	}
	pg.Flash = map[string]string{"add": "别名已添加，分办与回避即时按它识别。", "remove": "别名已删除。"}[c.Query("done")]
	return s.render(c, fiber.StatusOK, "console/units", pg)
}

// consoleUnitAct is POST /console/admin/units: op=add or op=remove (id, alias).
func (s *Server) consoleUnitAct(c fiber.Ctx) error {
	form, err := s.consoleForm(c)
	if err != nil {
		return err
	}
	op, id, alias := form["op"], form["id"], strings.TrimSpace(form["alias"])
	var u routing.RegistryUnit
	switch op {
	case "add":
		if u, err = s.d.Routing.AddUnitAlias(c.Context(), id, alias); err == nil {
			s.recordChange(c, "routing.unit.alias.add", "", map[string]string{"unit": u.ID, "alias": alias})
		}
	case "remove":
		if u, err = s.d.Routing.RemoveUnitAlias(c.Context(), id, alias); err == nil {
			s.recordChange(c, "routing.unit.alias.remove", "", map[string]string{"unit": u.ID, "alias": alias})
		}
	default:
		err = fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	if err == nil {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/admin/units?" + url.Values{"id": {u.ID}, "done": {op}}.Encode())
	}
	if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" {
		return err
	}
	pg, verr := s.consoleUnitView(c, id)
	if verr != nil && !pg.Found {
		consoleFormErrors(&pg.Form, verr)
		return s.render(c, statusForForm(verr), "console/units", pg)
	}
	consoleFormErrors(&pg.Form, err)
	if op == "add" {
		pg.Values["alias"] = alias
	}
	return s.render(c, statusForForm(err), "console/units", pg)
}
