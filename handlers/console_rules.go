package handlers

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's routing rules page: the rules in force (or all versions), each with a
// 试算 link to the explain page, a form for a new rule with every field POST
// /v1/routing/rules takes (conditions, the primary destination, up to informRows
// informed units, priority, validity window), and retiring a rule — the API's
// conversion (ruleRequest.rule), checks (routing.Rule.Validate) and audit entries.

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

// subjectRoleOptions are what routing makes of a report's subject, in words.
var subjectRoleOptions = []web.Option{{Value: string(routing.RoleOrganization), Label: "社会组织"},
	{Value: string(routing.RoleOfficial), Label: "党员干部、公职人员"}, {Value: string(routing.RoleOrgStaff), Label: "社会组织从业人员"},
	{Value: string(routing.RoleDepartment), Label: "机关、部门本身"}, {Value: string(routing.RolePerson), Label: "其他个人"}}

// orgTypeOptions are the organization types under 民政 (the credit code's second
// character), as routing.Rule.Validate accepts them.
var orgTypeOptions = []web.Option{{Value: "社会团体", Label: "社会团体"}, {Value: "民办非企业单位/社会服务机构", Label: "民办非企业单位/社会服务机构"},
	{Value: "基金会", Label: "基金会"}, {Value: "其他", Label: "其他"}}

// targetRelationOptions are relationLabels with "none" first, for the optional rows.
var targetRelationOptions = append([]web.Option{{Value: "", Label: "（不抄送）"}}, relationLabels...)

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
		Relations: relationLabels, InformRelations: targetRelationOptions, Levels: levelOptions, Kinds: unitKindOptions,
		SubjectKinds: subjectRoleOptions, OrgTypes: orgTypeOptions}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	pg.Checked = map[string]bool{}
	for i := range informRows {
		pg.InformRows = append(pg.InformRows, web.InformRow{Name: fmt.Sprintf("inform.%d", i), ID: fmt.Sprintf("inform-%d", i), Label: fmt.Sprintf("抄送单位 %d", i+1)})
	}
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
			Primary: s.targetWords(r.Primary), ValidFrom: pageTime(r.ValidFrom)}
		if r.ValidTo != nil {
			row.ValidTo = pageTime(*r.ValidTo)
		}
		row.Conditions = strings.Join(s.ruleConditions(r), "；")
		var inform []string
		for _, t := range r.Inform {
			inform = append(inform, s.targetWords(t))
		}
		row.Inform = strings.Join(inform, "；")
		if r.RetiredAt != nil {
			row.Retired = pageTime(*r.RetiredAt)
		}
		pg.Rules = append(pg.Rules, row)
	}
	return pg, nil
}

// targetWords is a rule's destination in words.
func (s *Server) targetWords(t routing.Target) string {
	w := labelOf(relationLabels, string(t.Relation))
	switch t.Relation {
	case routing.RelFixed:
		n, _ := s.d.UnitName(t.Unit)
		w += "：" + n
	case routing.RelKindForDivision:
		w += "：" + routing.KindLabel(t.Kind) + "（" + t.Division + "）"
	}
	return w
}

// ruleConditions are a rule's conditions in words; none is "不限".
func (s *Server) ruleConditions(r routing.Rule) []string {
	var cond []string
	var cats []string
	for _, k := range r.Categories {
		cats = append(cats, categoryOf(k).Label)
	}
	if len(cats) > 0 {
		cond = append(cond, strings.Join(cats, "、"))
	}
	var kinds []string
	for _, k := range r.SubjectKinds {
		kinds = append(kinds, labelOf(subjectRoleOptions, string(k)))
	}
	if len(kinds) > 0 {
		cond = append(cond, "被举报对象："+strings.Join(kinds, "、"))
	}
	if len(r.OrgTypes) > 0 {
		cond = append(cond, "组织类型："+strings.Join(r.OrgTypes, "、"))
	}
	if r.DivisionPrefix != "" {
		// A prefix of 2 or 4 digits is a province or city: its code is the prefix padded.
		code := r.DivisionPrefix
		if len(code) < 6 {
			code += strings.Repeat("0", 6-len(code))
		}
		cond = append(cond, "发生地在"+divisionName(code)+"（"+r.DivisionPrefix+"）及其下辖区域")
	}
	if r.DivisionLevel != "" {
		cond = append(cond, labelOf(levelOptions, string(r.DivisionLevel)))
	}
	if r.SupervisoryUnit != "" {
		n, _ := s.d.UnitName(r.SupervisoryUnit)
		cond = append(cond, "业务主管单位："+n)
	}
	if r.EmployerUnit != "" {
		n, _ := s.d.UnitName(r.EmployerUnit)
		cond = append(cond, "被举报人所在单位："+n)
	}
	if len(cond) == 0 {
		cond = append(cond, "不限")
	}
	return cond
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
		for k, vals := range form {
			if slices.Contains(ruleFormLists, k) {
				for _, v := range vals {
					pg.Checked[k+"="+v] = true
				}
				continue
			}
			pg.Values[k] = vals[0]
		}
	}
	return s.render(c, statusForForm(err), "console/rules", pg)
}

func (s *Server) consoleRulesApply(c fiber.Ctx, op string, f url.Values) error {
	me := principalOf(c).user.ID
	switch op {
	case "create":
		req, rows, err := ruleRequestOf(f)
		if err != nil {
			return err
		}
		r, err := req.rule()
		if err != nil {
			return err
		}
		stored, err := s.d.Routing.AddRule(c.Context(), r, me)
		if err != nil {
			return ruleFormError(err, rows)
		}
		s.recordChange(c, "routing.rule.create", "", map[string]string{"rule": stored.ID, "version": strconv.Itoa(stored.Version)})
	case "retire":
		r, err := s.d.Routing.RetireRule(c.Context(), strings.TrimSpace(f.Get("id")), me)
		if err != nil {
			return err
		}
		s.recordChange(c, "routing.rule.retire", "", map[string]string{"rule": r.ID, "version": strconv.Itoa(r.RetiredIn)})
	default:
		return fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	return nil
}

// informRows is how many informed units (抄送) the form offers at once.
const informRows = 3

// ruleFormSingle are the form's one-value fields; ruleFormLists its checkbox lists.
var (
	ruleFormSingle = []string{"_csrf", "op", "id", "name", "division_prefix", "division_level", "supervisory_unit", "employer_unit",
		"primary.relation", "primary.unit", "primary.kind", "primary.division", "priority", "valid_from", "valid_to"}
	ruleFormLists = []string{"categories", "subject_kinds", "org_types"}
	targetParts   = []string{"relation", "unit", "kind", "division"}
)

func init() {
	partLabels := map[string]string{"relation": "去向", "unit": "固定单位", "kind": "单位类型", "division": "区划"}
	for i := range informRows {
		for _, part := range targetParts {
			ruleFormSingle = append(ruleFormSingle, fmt.Sprintf("inform.%d.%s", i, part))
			consoleFieldLabels[fmt.Sprintf("inform.%d.%s", i, part)] = fmt.Sprintf("抄送单位 %d 的%s", i+1, partLabels[part])
		}
	}
	for k, l := range map[string]string{"subject_kinds": "被举报对象类型", "org_types": "组织类型", "supervisory_unit": "业务主管单位",
		"employer_unit": "被举报人所在单位", "valid_from": "生效时间", "valid_to": "失效时间", "primary": "承办单位", "op": "操作"} {
		consoleFieldLabels[k] = l
	}
}

// ruleRequestOf reads the new rule form as the body of POST /v1/routing/rules: each
// field at most once (a list's checkboxes once each; a repeated value is the API's
// to refuse), no field the form does not have, the informed units' rows that were
// filled in. rows maps the request's inform[i] to the form's row.
func ruleRequestOf(f url.Values) (req ruleRequest, rows []int, err error) {
	for k, vals := range f {
		switch {
		case slices.Contains(ruleFormLists, k):
		case !slices.Contains(ruleFormSingle, k):
			return req, nil, fieldProblem(k, problemUnknown)
		case len(vals) > 1:
			return req, nil, fieldProblem(k, problemDuplicate)
		}
	}
	get := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	target := func(prefix string) targetView {
		return targetView{Relation: routing.Relation(get(prefix + "relation")), Unit: get(prefix + "unit"),
			Kind: routing.UnitKind(get(prefix + "kind")), Division: get(prefix + "division")}
	}
	primary := target("primary.")
	req = ruleRequest{ID: get("id"), Name: f.Get("name"), DivisionPrefix: get("division_prefix"), DivisionLevel: routing.Level(get("division_level")),
		SupervisoryUnit: get("supervisory_unit"), EmployerUnit: get("employer_unit"), Primary: &primary}
	for _, k := range f["categories"] {
		req.Categories = append(req.Categories, intake.Category(k))
	}
	for _, k := range f["subject_kinds"] {
		req.SubjectKinds = append(req.SubjectKinds, routing.SubjectRole(k))
	}
	req.OrgTypes = append(req.OrgTypes, f["org_types"]...)
	for i := range informRows {
		t := target(fmt.Sprintf("inform.%d.", i))
		if t != (targetView{}) {
			req.Inform = append(req.Inform, t)
			rows = append(rows, i)
		}
	}
	if v := get("priority"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return req, rows, fieldInvalid("priority", "invalid_value", "优先级须为 -1000 到 1000 的整数", "an integer from -1000 to 1000")
		}
		req.Priority = n
	}
	for field, to := range map[string]**time.Time{"valid_from": &req.ValidFrom, "valid_to": &req.ValidTo} {
		if v := get(field); v != "" {
			t, ok := formTime(v)
			if !ok {
				return req, rows, fieldInvalid(field, "invalid_time", "时间应写成 2026-12-01 或 2026-12-01T08:00（北京时间）", "a date or a date and time (Asia/Shanghai)")
			}
			*to = &t
		}
	}
	return req, rows, nil
}

// formTime reads a date or a datetime-local value as Asia/Shanghai time.
func formTime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, qingfeng.Shanghai); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// ruleFormError names the form's fields for an error of the API's: a list's entries
// are its checkboxes, inform[i] is the form's row for the i-th informed unit.
func ruleFormError(err error, rows []int) error {
	var qe *qingfeng.Error
	if !errors.As(err, &qe) || len(qe.Fields) == 0 {
		return err
	}
	out := *qe
	out.Fields = map[string]qingfeng.FieldError{}
	for k, fe := range qe.Fields {
		for _, list := range ruleFormLists {
			if strings.HasPrefix(k, list+"[") {
				k = list
			}
		}
		var i int
		var part string
		if n, _ := fmt.Sscanf(strings.Replace(k, "].", "] ", 1), "inform[%d] %s", &i, &part); n == 2 && i >= 0 && i < len(rows) {
			k = fmt.Sprintf("inform.%d.%s", rows[i], part)
		}
		out.Fields[k] = fe
	}
	return &out
}
