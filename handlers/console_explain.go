package handlers

import (
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The explain tool as a console page (分办试算): the fields a report carries that
// routing reads, decoded by the report form's decoder and decided by the same
// intake.Service.Explain as POST /v1/routing/explain, for the same roles (admins and
// staff). Nothing is stored, no case number is used and nothing is audited — as
// through the API. The answer is in the case page's words (routingViewOf).

// explainFormFields are the report fields the page sends, by the API's names.
var explainFormFields = []string{"category", "subject.kind", "subject.organization.name", "subject.organization.credit_code",
	"subject.person.name", "subject.person.position", "subject.person.employer", "description", "location.division"}

// explainPageFields are the page's own: the token, the division picker and its update
// button, and the rule whose 试算 link opened the page.
var explainPageFields = []string{"_csrf", "_city", "_county", "_town", "_action", "rule"}

// explainDescription fills the description a report must have (the API refuses an
// explain without one); routing never reads it.
const explainDescription = "（分办试算）"

// routingViewOf is a routing decision in words: the case page's 分办依据 and the
// explain page's answer, so that both say the same thing for the same decision.
func routingViewOf(d intake.Decision) web.RoutingView {
	v := web.RoutingView{Unit: d.UnitName, Reason: d.Reason, Router: routerLabel(d.Router), Decided: pageTime(d.DecidedAt)}
	if d.Fallback {
		v.Fallback = fallbackLabels[d.FallbackReason]
		if v.Fallback == "" {
			v.Fallback = "进入兜底受理队列"
		}
	}
	if d.RuleID != "" {
		v.Rule = d.RuleID + "（规则版本 " + strconv.Itoa(d.RuleVersion) + "）"
	}
	for _, cand := range d.Candidates {
		why := cand.Detail
		if cand.Excluded != "" {
			label := excludedLabels[cand.Excluded]
			if label == "" {
				label = "未选用" // a reason newer than these words: never an empty label
			}
			why = label + "：" + cand.Detail
		}
		name := cand.UnitName
		if name == "" {
			name = "（未能确定）"
		}
		v.Candidates = append(v.Candidates, web.Candidate{Unit: name, Why: why, Rule: cand.RuleID, Chosen: cand.Chosen})
	}
	for _, u := range d.Informed {
		v.Informed = append(v.Informed, u.Name)
	}
	return v
}

func (s *Server) explainView(c fiber.Ctx, v map[string]string) web.ExplainPage {
	pg := web.ExplainPage{ConsolePage: s.consolePage(c, "分办试算", "/console/routing/explain")}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Values, pg.Errors = v, map[string]string{}
	for _, k := range intake.Categories {
		pg.Categories = append(pg.Categories, web.Option{Value: string(k.Code), Label: k.Label, Selected: v["category"] == string(k.Code)})
	}
	for _, o := range [][2]string{{string(intake.SubjectOrganization), "社会组织"}, {string(intake.SubjectPerson), "个人（党员干部、公职人员、组织从业人员等）"}} {
		pg.SubjectKinds = append(pg.SubjectKinds, web.Option{Value: o[0], Label: o[1], Selected: v["subject.kind"] == o[0]})
	}
	pg.Cities, pg.Counties, pg.Towns = divisionPicker(v)
	pg.Rule = v["rule"]
	return pg
}

// consoleExplainPage is GET /console/routing/explain[?rule=]: the empty form, or with a
// rule's categories and division filled in (the rules page's 试算 link; admins only, who
// alone may list the rules).
func (s *Server) consoleExplainPage(c fiber.Ctx) error {
	v := map[string]string{"description": explainDescription}
	if id := c.Query("rule"); id != "" && principalOf(c).user.Role == accounts.RoleAdmin {
		set, err := s.d.Routing.Rules(c.Context())
		if err != nil {
			return err
		}
		for _, r := range set.Rules {
			if r.ID != id || !r.InForceAt(set.Version) {
				continue
			}
			v["rule"] = r.ID
			if len(r.Categories) > 0 {
				v["category"] = string(r.Categories[0])
			}
			if d, ok := routing.LookupDivision(r.DivisionPrefix); ok && d.Level != routing.LevelProvince {
				setDivisionPicker(v, d)
			}
			if slices.Contains(r.SubjectKinds, routing.RoleOrganization) || len(r.OrgTypes) > 0 {
				v["subject.kind"] = string(intake.SubjectOrganization)
			} else if len(r.SubjectKinds) > 0 {
				v["subject.kind"] = string(intake.SubjectPerson)
			}
		}
	}
	return s.render(c, fiber.StatusOK, "console/explain", s.explainView(c, v))
}

// consoleExplain is POST /console/routing/explain: the decision the form's report
// would get, or the form again with each field's error (400). The division picker's
// update button only re-renders.
func (s *Server) consoleExplain(c fiber.Ctx) error {
	form, err := s.consoleFormValues(c)
	if err != nil {
		return err
	}
	v := map[string]string{}
	var bad error
	for k, vals := range form {
		switch {
		case !slices.Contains(explainFormFields, k) && !slices.Contains(explainPageFields, k):
			bad = fieldProblem(k, problemUnknown)
			continue
		case len(vals) > 1:
			bad = fieldProblem(k, problemDuplicate)
		}
		v[k] = vals[0]
	}
	pg := s.explainView(c, v)
	if bad == nil && v["_action"] == "divisions" {
		return s.render(c, fiber.StatusOK, "console/explain", pg)
	}
	if bad == nil {
		var dec intake.Decision
		var warns []intake.Warning
		if dec, warns, bad = s.explainForm(c, v); bad == nil {
			pg.Result = &web.ExplainResult{Routing: routingViewOf(dec)}
			for _, w := range warns {
				pg.Result.Warnings = append(pg.Result.Warnings, w.Message)
			}
			return s.render(c, fiber.StatusOK, "console/explain", pg)
		}
	}
	if code := qingfeng.ErrorCode(bad); code == qingfeng.EINTERNAL || code == "" {
		return bad
	}
	consoleFormErrors(&pg.Form, bad)
	return s.render(c, statusForForm(bad), "console/explain", pg)
}

// explainForm decides the form's report as POST /v1/routing/explain decides its body:
// the report form's decoder, the API's draft, the intake service's Explain.
func (s *Server) explainForm(c fiber.Ctx, v map[string]string) (intake.Decision, []intake.Warning, error) {
	var f formFields
	if err := setFormFields(&f, v, explainFormFields); err != nil {
		return intake.Decision{}, nil, err
	}
	d, err := f.r.draft(false)
	if err != nil {
		return intake.Decision{}, nil, err
	}
	return s.d.Intake.Explain(c.Context(), d)
}

// explainFieldLabels name the explain form's fields in its error summary.
var explainFieldLabels = map[string]string{"category": "举报类别", "subject.kind": "被举报对象类型", "subject.organization": "被举报组织",
	"subject.organization.name": "组织名称", "subject.organization.credit_code": "统一社会信用代码", "subject.person": "被举报人",
	"subject.person.name": "被举报人姓名", "subject.person.position": "职务", "subject.person.employer": "工作单位",
	"description": "举报内容", "location.division": "发生地区划"}

func init() {
	for k, l := range explainFieldLabels {
		if _, ok := consoleFieldLabels[k]; !ok {
			consoleFieldLabels[k] = l
		}
	}
}
