package handlers

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's unit pages: a search over the in-memory registry (routing.SearchUnits);
// one unit with its aliases and the forms that add or remove one (the API's calls,
// checks and audit entries); and one form that creates a unit or changes one, saved as
// a one-row units import (routing.Admin.SaveUnit) so that it and an uploaded file can
// never disagree.

// unitFormKinds are every unit kind, the 派驻组 included (rules cannot target that
// kind by division, units can be of it).
var unitFormKinds = []web.Option{{Value: "", Label: "（选择）"}}

var unitFormLevels = []web.Option{{Value: "", Label: "按区划自动确定"}, {Value: string(routing.LevelProvince), Label: "省级"},
	{Value: string(routing.LevelCity), Label: "市级"}, {Value: string(routing.LevelCounty), Label: "县级"}, {Value: string(routing.LevelTownship), Label: "乡镇街道"}}

func init() {
	for _, k := range []routing.UnitKind{routing.KindDiscipline, routing.KindStationed, routing.KindIntakeOffice, routing.KindCivilAffairs,
		routing.KindSupervisor, routing.KindMarket, routing.KindPolice, routing.KindFinance, routing.KindAudit, routing.KindTax, routing.KindOther} {
		unitFormKinds = append(unitFormKinds, web.Option{Value: string(k), Label: routing.KindLabel(k)})
	}
}

// unitFieldLabels name the unit form's fields in the error summary (the import's field
// names; consoleFieldLabels names some of them otherwise for other pages).
var unitFieldLabels = map[string]string{"f-id": "单位编码", "f-name": "单位名称", "f-kind": "单位类别", "f-division": "所在区划",
	"f-level": "层级", "f-parent": "上级单位", "f-stationed_at": "派驻单位", "f-active": "状态", "f-aliases": "别名", "f-q": "查找", "f-row": "单位"}

// maxUnitQuery bounds a search, in characters.
const maxUnitQuery = 100

func (s *Server) consoleUnitPage(c fiber.Ctx) web.UnitPage {
	pg := web.UnitPage{ConsolePage: s.consolePage(c, "单位", "/console/admin/units"), Kinds: unitFormKinds, Levels: unitFormLevels}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	return pg
}

// consoleUnitSearch is the page with q searched for: at most routing.UnitSearchMax
// units, and how many more matched. An empty q is the page with its hint.
func (s *Server) consoleUnitSearch(c fiber.Ctx, q string) (web.UnitPage, error) {
	pg := s.consoleUnitPage(c)
	pg.Query = strings.TrimSpace(q)
	pg.Values["q"] = pg.Query
	if routing.NormalizeName(pg.Query) == "" { // nothing but spaces and invisible characters
		pg.Query = ""
		return pg, nil
	}
	if utf8.RuneCountInString(pg.Query) > maxUnitQuery {
		return pg, fieldInvalid("q", "too_long", fmt.Sprintf("查找内容不能超过%d字", maxUnitQuery), fmt.Sprintf("at most %d characters", maxUnitQuery))
	}
	list, total := s.d.Routing.Engine.Units.SearchUnits(pg.Query, routing.UnitSearchMax)
	pg.Searched, pg.More = true, total-len(list)
	for _, u := range list {
		pg.Results = append(pg.Results, web.UnitRow{ID: u.ID, Name: u.Name, Kind: routing.KindLabel(u.Kind), Division: unitDivisionWords(u.Division), Active: u.Active})
	}
	return pg, nil
}

func unitDivisionWords(code string) string {
	if code == "" {
		return ""
	}
	return divisionName(code) + "（" + code + "）"
}

// consoleUnitView is unit id's page: its details, its aliases and the form that
// changes it, filled in as stored. An unknown id is the search page with the error.
func (s *Server) consoleUnitView(c fiber.Ctx, id string) (web.UnitPage, error) {
	u, ok := s.d.Routing.Engine.Units.Get(id)
	if !ok {
		pg, _ := s.consoleUnitSearch(c, "")
		pg.Values["q"] = id
		return pg, &qingfeng.Error{Code: qingfeng.ENOTFOUND, Message: "单位不存在", English: "no such unit",
			Fields: map[string]qingfeng.FieldError{"q": {Code: "unknown_unit", Message: "没有编码为“" + id + "”的单位，请按名称或区划查找", English: "no unit has this id"}}}
	}
	pg := s.consoleUnitPage(c)
	pg.Found, pg.ID = true, u.ID
	pg.Name, pg.Kind, pg.Aliases, pg.Active = u.Name, routing.KindLabel(u.Kind), u.Aliases, u.Active
	pg.Division, pg.Level = unitDivisionWords(u.Division), u.Level.Label()
	pg.Parent, pg.StationedAt = s.unitWords(u.Parent), s.unitWords(u.StationedAt)
	pg.Values = map[string]string{"id": u.ID, "name": u.Name, "kind": string(u.Kind), "division": u.Division, "level": string(u.Level),
		"parent": u.Parent, "stationed_at": u.StationedAt, "active": strconv.FormatBool(u.Active)}
	// What stays with the unit if it is deactivated: counts only, no case.
	var err error
	if pg.OpenCases, pg.OpenTotal, err = s.openCases(c, u.ID); err != nil {
		return pg, err
	}
	staff, err := s.d.Accounts.Users.UsersOfUnit(c.Context(), u.ID)
	if err != nil {
		return pg, err
	}
	for _, a := range staff {
		if worksCases(a) {
			pg.Staff++
		}
	}
	return pg, nil
}

// openCases counts unit id's cases that are not closed (nor linked as duplicates),
// per status in the queue's order, and their sum.
func (s *Server) openCases(c fiber.Ctx, id string) ([]web.Tab, int64, error) {
	counts, err := s.d.Counts(c.Context(), id)
	if err != nil {
		return nil, 0, err
	}
	var tabs []web.Tab
	var total int64
	for _, st := range queueStatuses {
		if n := counts[st]; n > 0 && st != intake.StatusClosed && st != intake.StatusDuplicate {
			tabs = append(tabs, web.Tab{Label: statusLabel(st), Count: n})
			total += n
		}
	}
	return tabs, total, nil
}

// worksCases says whether account a can work its unit's cases: an enabled staff
// account.
func worksCases(a *accounts.User) bool { return !a.Disabled && a.Role == accounts.RoleStaff }

// consoleUnstaffed is the page listing every unit that holds cases not closed and has
// no enabled staff account — cases no one can open until an account is created or
// they are transferred. It counts each unstaffed unit's cases (one indexed count per
// unit), so it runs when asked, not on every visit.
func (s *Server) consoleUnstaffed(c fiber.Ctx) (web.UnitPage, error) {
	pg := s.consoleUnitPage(c)
	pg.UnstaffedShown = true
	staffed := map[string]bool{}
	for after := ""; ; {
		list, err := s.d.Accounts.Users.ListUsers(c.Context(), after, 500)
		if err != nil {
			return pg, err
		}
		for _, a := range list {
			if worksCases(a) {
				staffed[a.UnitID] = true
			}
		}
		if len(list) < 500 {
			break
		}
		after = list[len(list)-1].Username
	}
	for _, u := range s.d.Routing.Engine.Units.All() {
		if staffed[u.ID] {
			continue
		}
		tabs, total, err := s.openCases(c, u.ID)
		if err != nil {
			return pg, err
		}
		if total > 0 {
			pg.Unstaffed = append(pg.Unstaffed, web.UnstaffedRow{ID: u.ID, Name: u.Name, Active: u.Active, Open: total, ByStatus: tabs})
		}
	}
	slices.SortStableFunc(pg.Unstaffed, func(a, b web.UnstaffedRow) int { return cmp.Or(cmp.Compare(b.Open, a.Open), cmp.Compare(a.ID, b.ID)) })
	return pg, nil
}

// unitWords names unit id with its id; "" for none.
func (s *Server) unitWords(id string) string {
	if id == "" {
		return ""
	}
	if n, ok := s.d.UnitName(id); ok {
		return n + "（" + id + "）"
	}
	return id
}

// consoleUnit is GET /console/admin/units: ?q= searches, ?id= shows a unit, ?new=1
// the form for a new one.
func (s *Server) consoleUnit(c fiber.Ctx) error {
	var (
		pg  web.UnitPage
		err error
	)
	switch id := strings.TrimSpace(c.Query("id")); {
	case id != "":
		pg, err = s.consoleUnitView(c, id)
	case c.Query("unstaffed") != "":
		pg, err = s.consoleUnstaffed(c)
	case c.Query("new") != "":
		pg = s.consoleUnitPage(c)
		pg.New = true
		pg.Values["active"] = "true"
	default:
		pg, err = s.consoleUnitSearch(c, c.Query("q"))
	}
	if err != nil {
		unitFormErrors(&pg.Form, err)
		return s.render(c, statusForForm(err), "console/units", pg)
	}
	pg.Flash = map[string]string{"add": "别名已添加，分办与回避即时按它识别。", "remove": "别名已删除。",
		"create": "单位已新建，分办即时可用。", "update": "单位已保存，分办即时按新的信息办理。"}[c.Query("done")]
	if c.Query("done") == "update" && !pg.Active {
		pg.Flash = "单位已保存，现为已撤销：新的举报不再分给它；已在办的案件仍由它办理。"
	}
	return s.render(c, fiber.StatusOK, "console/units", pg)
}

// unitFormErrors is consoleFormErrors with the unit form's own field labels.
func unitFormErrors(f *web.Form, err error) {
	consoleFormErrors(f, err)
	for i, e := range f.Summary {
		if l, ok := unitFieldLabels[e.ID]; ok {
			f.Summary[i].Label = l
		}
	}
}

// consoleUnitAct is POST /console/admin/units: op=add or op=remove (id, alias);
// op=create or op=update (the unit's fields).
func (s *Server) consoleUnitAct(c fiber.Ctx) error {
	form, err := s.consoleForm(c)
	if err != nil {
		return err
	}
	op, id, alias := form["op"], strings.TrimSpace(form["id"]), strings.TrimSpace(form["alias"])
	var u routing.RegistryUnit
	switch op {
	case "create", "update":
		return s.consoleUnitSave(c, form, op == "create")
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
	if verr != nil {
		unitFormErrors(&pg.Form, verr)
		return s.render(c, statusForForm(verr), "console/units", pg)
	}
	unitFormErrors(&pg.Form, err)
	if op == "add" {
		pg.Values["alias"] = alias
	}
	return s.render(c, statusForForm(err), "console/units", pg)
}

// unitFormFields are the unit form's fields, as the units import names them.
var unitFormFields = []string{"id", "name", "kind", "division", "level", "parent", "stationed_at", "active"}

// consoleUnitSave creates a unit (create) or changes the one the form's fixed id
// names, and records it as routing.unit.save. A refused form is shown again as typed,
// each error on its field; nothing is stored.
func (s *Server) consoleUnitSave(c fiber.Ctx, form map[string]string, create bool) error {
	in := routing.RegistryUnit{Unit: routing.Unit{ID: form["id"], Name: form["name"], Kind: routing.UnitKind(strings.TrimSpace(form["kind"])),
		Division: form["division"], Level: routing.Level(strings.TrimSpace(form["level"]))}, Parent: form["parent"], StationedAt: form["stationed_at"]}
	var err error
	switch form["active"] {
	case "true":
		in.Active = true
	case "false":
	default:
		err = fieldInvalid("active", "required", "请选择单位状态：在用或已撤销", "active must be true or false")
	}
	var (
		u       routing.RegistryUnit
		created bool
	)
	if err == nil {
		u, created, err = s.storeUnit(c, in, create)
	}
	if err == nil {
		done := "update"
		if created {
			done = "create"
		}
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/admin/units?" + url.Values{"id": {u.ID}, "done": {done}}.Encode())
	}
	code := qingfeng.ErrorCode(err)
	if code == qingfeng.EINTERNAL || code == "" {
		return err
	}
	var pg web.UnitPage
	if create {
		pg = s.consoleUnitPage(c)
		pg.New = true
	} else {
		var verr error
		if pg, verr = s.consoleUnitView(c, strings.TrimSpace(form["id"])); verr != nil {
			unitFormErrors(&pg.Form, verr)
			return s.render(c, statusForForm(verr), "console/units", pg)
		}
	}
	for _, k := range unitFormFields {
		if v, ok := form[k]; ok || create {
			pg.Values[k] = v
		}
	}
	if !create {
		pg.Values["id"] = pg.ID
	}
	if code == qingfeng.ECONFLICT {
		// Another import or save holds the registry for a moment: the same form sent
		// again will go through.
		c.Set(fiber.HeaderRetryAfter, "2")
	}
	unitFormErrors(&pg.Form, err)
	return s.render(c, statusForForm(err), "console/units", pg)
}
