package handlers

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's routing rules page: the rules in force (or all versions), a form for a
// new rule with one primary destination, and retiring a rule — the API's calls,
// checks and audit entries. Rules with informed units, subject kinds, organization
// types, units or validity windows are still created through the API.

var relationLabels = []web.Option{
	{Value: string(routing.RelRegistrationAuthority), Label: "登记管理机关"},
	{Value: string(routing.RelSupervisoryUnit), Label: "业务主管单位"},
	{Value: string(routing.RelDisciplineAtLevel), Label: "管理层级的纪委监委"},
	{Value: string(routing.RelStationedAtEmployer), Label: "所在单位的派驻纪检监察组"},
	{Value: string(routing.RelKindForDivision), Label: "某区划的某类单位"},
	{Value: string(routing.RelFixed), Label: "固定单位"},
}

var levelOptions = []web.Option{{Value: "", Label: "不限"}, {Value: string(routing.LevelProvince), Label: "省级"},
	{Value: string(routing.LevelCity), Label: "市级"}, {Value: string(routing.LevelCounty), Label: "县级"}, {Value: string(routing.LevelTownship), Label: "乡镇街道"}}

var unitKindOptions = []web.Option{{Value: "", Label: "（选择）"}}

func init() {
	for _, k := range []routing.UnitKind{routing.KindDiscipline, routing.KindCivilAffairs, routing.KindIntakeOffice, routing.KindSupervisor,
		routing.KindMarket, routing.KindPolice, routing.KindFinance, routing.KindAudit, routing.KindTax, routing.KindOther} {
		unitKindOptions = append(unitKindOptions, web.Option{Value: string(k), Label: routing.KindLabel(k)})
	}
}

func labelOf(opts []web.Option, v string) string {
	for _, o := range opts {
		if o.Value == v {
			return o.Label
		}
	}
	return v
}

func (s *Server) consoleRulesView(c fiber.Ctx, all bool) (web.RulesPage, error) {
	pg := web.RulesPage{ConsolePage: s.consolePage(c, "分办规则", "/console/admin/rules"), All: all,
		Relations: relationLabels, Levels: levelOptions, Kinds: unitKindOptions}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	pg.Checked = map[string]bool{}
	for _, k := range intake.Categories {
		pg.Categories = append(pg.Categories, web.Option{Value: string(k.Code), Label: k.Label})
	}
	set, err := s.d.Routing.Rules(c.Context())
	if err != nil {
		return pg, err
	}
	pg.Version = strconv.Itoa(set.Version)
	for _, r := range set.Rules {
		inForce := r.InForceAt(set.Version)
		if !all && !inForce {
			continue
		}
		row := web.RuleRow{ID: r.ID, Name: r.Name, Priority: strconv.Itoa(r.Priority), Version: strconv.Itoa(r.Version), InForce: inForce,
			Primary: labelOf(relationLabels, string(r.Primary.Relation)), ValidFrom: pageTime(r.ValidFrom)}
		switch r.Primary.Relation {
		case routing.RelFixed:
			n, _ := s.d.UnitName(r.Primary.Unit)
			row.Primary += "：" + n
		case routing.RelKindForDivision:
			row.Primary += "：" + routing.KindLabel(r.Primary.Kind) + "（" + r.Primary.Division + "）"
		}
		var cond []string
		for _, k := range r.Categories {
			cond = append(cond, categoryOf(k).Label)
		}
		if r.DivisionPrefix != "" {
			cond = append(cond, "区划 "+r.DivisionPrefix+"…")
		}
		if r.DivisionLevel != "" {
			cond = append(cond, labelOf(levelOptions, string(r.DivisionLevel)))
		}
		if len(r.SubjectKinds)+len(r.OrgTypes) > 0 || r.SupervisoryUnit != "" || r.EmployerUnit != "" {
			cond = append(cond, "另有条件（见接口）")
		}
		row.Conditions = strings.Join(cond, "；")
		if len(r.Inform) > 0 {
			row.Inform = strconv.Itoa(len(r.Inform)) + " 个知会单位"
		}
		if r.RetiredAt != nil {
			row.Retired = pageTime(*r.RetiredAt)
		}
		pg.Rules = append(pg.Rules, row)
	}
	return pg, nil
}

// consoleRules is GET /console/admin/rules[?all=true].
func (s *Server) consoleRules(c fiber.Ctx) error {
	pg, err := s.consoleRulesView(c, c.Query("all") == "true")
	if err != nil {
		return err
	}
	pg.Flash = map[string]string{"create": "规则已添加，即时生效。", "retire": "规则已停用，即时生效。"}[c.Query("done")]
	return s.render(c, fiber.StatusOK, "console/rules", pg)
}

// consoleRulesAct is POST /console/admin/rules: op=create or op=retire (id).
func (s *Server) consoleRulesAct(c fiber.Ctx) error {
	form, err := s.consoleFormValues(c)
	if err != nil {
		return err
	}
	op := form.Get("op")
	if err = s.consoleRulesApply(c, op, form); err == nil {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/admin/rules?done=" + op)
	}
	if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" {
		return err
	}
	pg, verr := s.consoleRulesView(c, false)
	if verr != nil {
		return verr
	}
	consoleFormErrors(&pg.Form, err)
	if op == "create" {
		for k := range form {
			pg.Values[k] = form.Get(k)
		}
		for _, k := range form["categories"] {
			pg.Checked[k] = true
		}
	}
	return s.render(c, statusForForm(err), "console/rules", pg)
}

func (s *Server) consoleRulesApply(c fiber.Ctx, op string, f map[string][]string) error {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	me := principalOf(c).user.ID
	switch op {
	case "create":
		r := routing.Rule{ID: get("id"), Name: get("name"), DivisionPrefix: get("division_prefix"), DivisionLevel: routing.Level(get("division_level")),
			Primary: routing.Target{Relation: routing.Relation(get("primary.relation")), Unit: get("primary.unit"),
				Kind: routing.UnitKind(get("primary.kind")), Division: get("primary.division")}}
		for _, k := range f["categories"] {
			r.Categories = append(r.Categories, intake.Category(k))
		}
		if v := get("priority"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < -1000 || n > 1000 {
				return fieldInvalid("priority", "invalid_value", "优先级须为 -1000 到 1000 的整数", "an integer from -1000 to 1000")
			}
			r.Priority = n
		}
		stored, err := s.d.Routing.AddRule(c.Context(), r, me)
		if err != nil {
			return categoriesField(err)
		}
		s.recordChange(c, "routing.rule.create", "", map[string]string{"rule": stored.ID, "version": strconv.Itoa(stored.Version)})
	case "retire":
		r, err := s.d.Routing.RetireRule(c.Context(), get("id"), me)
		if err != nil {
			return err
		}
		s.recordChange(c, "routing.rule.retire", "", map[string]string{"rule": r.ID, "version": strconv.Itoa(r.RetiredIn)})
	default:
		return fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	return nil
}

// categoriesField names the category checkboxes for an error of one of them.
func categoriesField(err error) error {
	qe, ok := err.(*qingfeng.Error)
	if !ok || len(qe.Fields) == 0 {
		return err
	}
	out := *qe
	out.Fields = map[string]qingfeng.FieldError{}
	for k, fe := range qe.Fields {
		if strings.HasPrefix(k, "categories[") {
			k = "categories"
		}
		out.Fields[k] = fe
	}
	return &out
}
