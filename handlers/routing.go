package handlers

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// targetView is a rule's destination or informed unit.
type targetView struct {
	Relation routing.Relation `json:"relation"`
	Unit     string           `json:"unit,omitempty"`
	Kind     routing.UnitKind `json:"kind,omitempty"`
	Division string           `json:"division,omitempty"`
}

// ruleRequest is the body of POST /v1/routing/rules.
type ruleRequest struct {
	ID              string                `json:"id"`
	Name            string                `json:"name"`
	Categories      []intake.Category     `json:"categories"`
	SubjectKinds    []routing.SubjectRole `json:"subject_kinds"`
	OrgTypes        []string              `json:"org_types"`
	DivisionPrefix  string                `json:"division_prefix"`
	DivisionLevel   routing.Level         `json:"division_level"`
	SupervisoryUnit string                `json:"supervisory_unit"`
	EmployerUnit    string                `json:"employer_unit"`
	Primary         *targetView           `json:"primary"`
	Inform          []targetView          `json:"inform"`
	Priority        int                   `json:"priority"`
	ValidFrom       *time.Time            `json:"valid_from"`
	ValidTo         *time.Time            `json:"valid_to"`
}

type ruleView struct {
	ID              string                `json:"id"`
	Name            string                `json:"name"`
	Categories      []intake.Category     `json:"categories"`
	SubjectKinds    []routing.SubjectRole `json:"subject_kinds"`
	OrgTypes        []string              `json:"org_types"`
	DivisionPrefix  string                `json:"division_prefix,omitempty"`
	DivisionLevel   routing.Level         `json:"division_level,omitempty"`
	SupervisoryUnit string                `json:"supervisory_unit,omitempty"`
	EmployerUnit    string                `json:"employer_unit,omitempty"`
	Primary         targetView            `json:"primary"`
	Inform          []targetView          `json:"inform"`
	Priority        int                   `json:"priority"`
	ValidFrom       string                `json:"valid_from"`
	ValidTo         string                `json:"valid_to,omitempty"`
	Version         int                   `json:"version"`
	RetiredIn       int                   `json:"retired_in,omitempty"`
	RetiredAt       string                `json:"retired_at,omitempty"`
	RetiredBy       string                `json:"retired_by,omitempty"`
	CreatedBy       string                `json:"created_by,omitempty"`
}

func ruleOf(r routing.Rule) ruleView {
	v := ruleView{ID: r.ID, Name: r.Name, Categories: nonNil(r.Categories), SubjectKinds: nonNil(r.SubjectKinds), OrgTypes: nonNil(r.OrgTypes),
		DivisionPrefix: r.DivisionPrefix, DivisionLevel: r.DivisionLevel, SupervisoryUnit: r.SupervisoryUnit, EmployerUnit: r.EmployerUnit,
		Primary: targetView(r.Primary), Inform: []targetView{}, Priority: r.Priority, ValidFrom: wireTime(r.ValidFrom),
		Version: r.Version, RetiredIn: r.RetiredIn, RetiredBy: r.RetiredBy, CreatedBy: r.CreatedBy}
	for _, t := range r.Inform {
		v.Inform = append(v.Inform, targetView(t))
	}
	if r.ValidTo != nil {
		v.ValidTo = wireTime(*r.ValidTo)
	}
	if r.RetiredAt != nil {
		v.RetiredAt = wireTime(*r.RetiredAt)
	}
	return v
}

// listRules is GET /v1/routing/rules: the rules in force, or with ?all=true every
// rule ever added.
func (s *Server) listRules(c fiber.Ctx) error {
	all := false
	switch c.Query("all") {
	case "", "false":
	case "true":
		all = true
	default:
		return fieldInvalid("all", "invalid_value", "all 只能是 true 或 false", "must be true or false")
	}
	set, err := s.d.Routing.Rules(c.Context())
	if err != nil {
		return err
	}
	out := []ruleView{}
	for _, r := range set.Rules {
		if all || r.InForceAt(set.Version) {
			out = append(out, ruleOf(r))
		}
	}
	return c.JSON(fiber.Map{"version": set.Version, "rules": out})
}

// rule is the request as a routing rule, for routing.Admin.AddRule to validate: the
// API's and the console's rules form's one conversion.
func (req ruleRequest) rule() (routing.Rule, error) {
	if req.Primary == nil {
		return routing.Rule{}, fieldInvalid("primary", "required", "请填写承办单位去向", "primary is required")
	}
	r := routing.Rule{ID: req.ID, Name: req.Name, Categories: req.Categories, SubjectKinds: req.SubjectKinds, OrgTypes: req.OrgTypes,
		DivisionPrefix: req.DivisionPrefix, DivisionLevel: req.DivisionLevel, SupervisoryUnit: req.SupervisoryUnit,
		EmployerUnit: req.EmployerUnit, Primary: routing.Target(*req.Primary), Priority: req.Priority}
	for _, t := range req.Inform {
		r.Inform = append(r.Inform, routing.Target(t))
	}
	if req.ValidFrom != nil {
		r.ValidFrom = req.ValidFrom.UTC()
	}
	if req.ValidTo != nil {
		t := req.ValidTo.UTC()
		r.ValidTo = &t
	}
	return r, nil
}

// createRule is POST /v1/routing/rules.
func (s *Server) createRule(c fiber.Ctx) error {
	var req ruleRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	r, err := req.rule()
	if err != nil {
		return err
	}
	p := principalOf(c)
	stored, err := s.d.Routing.AddRule(c.Context(), r, p.user.ID)
	if err != nil {
		return err
	}
	s.recordChange(c, "routing.rule.create", "", map[string]string{"rule": stored.ID, "version": strconv.Itoa(stored.Version)})
	return c.Status(fiber.StatusCreated).JSON(ruleOf(stored))
}

// retireRule is POST /v1/routing/rules/{id}/retire.
func (s *Server) retireRule(c fiber.Ctx) error {
	p := principalOf(c)
	r, err := s.d.Routing.RetireRule(c.Context(), c.Params("id"), p.user.ID)
	if err != nil {
		return err
	}
	s.recordChange(c, "routing.rule.retire", "", map[string]string{"rule": r.ID, "version": strconv.Itoa(r.RetiredIn)})
	return c.JSON(ruleOf(r))
}

// explain is POST /v1/routing/explain: the decision a draft report would get, stored
// nowhere. It takes no identity.
func (s *Server) explain(c fiber.Ctx) error {
	var req reportRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Identity != nil || req.SealedIdentity != "" {
		return fieldInvalid("identity", "not_allowed", "路由预览不接收举报人身份信息", "explain takes no identity")
	}
	// A preview stores nothing: any source a real report could have may be previewed.
	d, err := req.draft(req.Source == "liaison")
	if err != nil {
		return err
	}
	dec, warns, err := s.d.Intake.Explain(c.Context(), d)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"decision": decisionOf(dec), "warnings": nonNil(warns)})
}

type caseRoutingView struct {
	Case             string         `json:"case"`
	Category         categoryRef    `json:"category"`
	Decision         decisionView   `json:"decision"`
	EarlierDecisions []decisionView `json:"earlier_decisions"`
}

func caseRoutingOf(cs *intake.Case) caseRoutingView {
	v := caseRoutingView{Case: cs.Number, Category: categoryOf(cs.Category), Decision: decisionOf(cs.Decision), EarlierDecisions: []decisionView{}}
	for _, d := range cs.EarlierDecisions {
		v.EarlierDecisions = append(v.EarlierDecisions, decisionOf(d))
	}
	return v
}

// caseRouting is GET /v1/routing/cases/{case}: the decision and the ones re-routings
// replaced, for staff of the owning unit and admins.
func (s *Server) caseRouting(c fiber.Ctx) error {
	cs, err := s.loadCase(c, accessRouting)
	if err != nil {
		return err
	}
	if err := s.record(c, "case.routing.read", cs.Number, nil); err != nil {
		return err
	}
	return c.JSON(caseRoutingOf(cs))
}

type rerouteRequest struct {
	Category *string         `json:"category"`
	Subject  *subjectRequest `json:"subject"`
	Reason   string          `json:"reason"`
}

// reroute is POST /v1/routing/cases/{case}/reroute: triage changed the category or the
// subject; the case is routed again and the new decision recorded beside the old.
func (s *Server) reroute(c fiber.Ctx) error {
	cs, err := s.loadCase(c, accessRouting)
	if err != nil {
		return err
	}
	var req rerouteRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Category == nil && req.Subject == nil {
		return &qingfeng.Error{Code: qingfeng.EINVALID, Message: "请填写新的举报类别或被举报对象", English: "give a new category or subject",
			Fields: map[string]qingfeng.FieldError{"category": {Code: "required", Message: "请填写新的举报类别或被举报对象", English: "category or subject required"}}}
	}
	p := principalOf(c)
	r := intake.RerouteRequest{Why: req.Reason, By: p.user.ID}
	if req.Category != nil {
		cat := intake.Category(*req.Category)
		r.Category = &cat
	}
	if req.Subject != nil {
		rr := reportRequest{Subject: req.Subject}
		d, err := rr.draft(false)
		if err != nil {
			return err
		}
		r.Subject = &d.Subject
	}
	updated, err := s.d.Intake.Reroute(c.Context(), cs, r)
	if err != nil {
		return err
	}
	s.recordChange(c, "case.reroute", cs.Number, map[string]string{"from": cs.UnitID, "to": updated.UnitID})
	return c.JSON(caseRoutingOf(updated))
}

// unitView is a registry unit as the admin API shows it.
type unitView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Division    string   `json:"division,omitempty"`
	Level       string   `json:"level,omitempty"`
	Parent      string   `json:"parent,omitempty"`
	StationedAt string   `json:"stationed_at,omitempty"`
	Active      bool     `json:"active"`
	Aliases     []string `json:"aliases"`
}

func unitOf(u routing.RegistryUnit) unitView {
	return unitView{ID: u.ID, Name: u.Name, Kind: string(u.Kind), Division: u.Division, Level: string(u.Level),
		Parent: u.Parent, StationedAt: u.StationedAt, Active: u.Active, Aliases: nonNil(u.Aliases)}
}

// getUnit is GET /v1/routing/units/{id}: a unit with its aliases.
func (s *Server) getUnit(c fiber.Ctx) error {
	u, ok := s.d.Routing.Engine.Units.Get(c.Params("id"))
	if !ok {
		return qingfeng.Errorf(qingfeng.ENOTFOUND, "单位不存在", "no such unit")
	}
	return c.JSON(unitOf(u))
}

// unitRequest is a unit as POST /v1/routing/units and PUT /v1/routing/units/{id} take
// it: the units import's fields but aliases, which have their own routes. Active is
// required: a missing one must not reactivate a dissolved unit.
type unitRequest struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Division    string `json:"division"`
	Level       string `json:"level"`
	Parent      string `json:"parent"`
	StationedAt string `json:"stationed_at"`
	Active      *bool  `json:"active"`
}

// createUnit is POST /v1/routing/units: a new unit (an id that exists is refused), as
// the console's form creates one.
func (s *Server) createUnit(c fiber.Ctx) error { return s.saveUnit(c, true) }

// updateUnit is PUT /v1/routing/units/{id}: the unit's fields replaced, its aliases kept.
func (s *Server) updateUnit(c fiber.Ctx) error { return s.saveUnit(c, false) }

// saveUnit stores one unit through routing.Admin.SaveUnit (a one-row units import) and
// records it as routing.unit.save.
func (s *Server) saveUnit(c fiber.Ctx, create bool) error {
	var req unitRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if !create {
		id := c.Params("id")
		if req.ID != "" && req.ID != id {
			return fieldInvalid("id", "immutable", "单位编号不能修改", "the id of a unit cannot change")
		}
		req.ID = id
	}
	if req.Active == nil {
		return fieldInvalid("active", "required", "请说明单位是否在用（active）", "active is required")
	}
	u, created, err := s.storeUnit(c, routing.RegistryUnit{Unit: routing.Unit{ID: req.ID, Name: req.Name,
		Kind: routing.UnitKind(req.Kind), Division: req.Division, Level: routing.Level(req.Level)},
		Parent: req.Parent, StationedAt: req.StationedAt, Active: *req.Active}, create)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(unitOf(u))
}

// storeUnit is routing.Admin.SaveUnit recorded as routing.unit.save: the API's and the
// console's one way to create or change a unit.
func (s *Server) storeUnit(c fiber.Ctx, in routing.RegistryUnit, create bool) (routing.RegistryUnit, bool, error) {
	u, created, err := s.d.Routing.SaveUnit(c.Context(), in, create)
	if err != nil {
		return u, false, err
	}
	result := "updated"
	if created {
		result = "created"
	}
	s.recordChange(c, "routing.unit.save", "", map[string]string{"unit": u.ID, "result": result, "active": strconv.FormatBool(u.Active)})
	return u, created, nil
}

type aliasRequest struct {
	Alias string `json:"alias"`
}

// addUnitAlias is POST /v1/routing/units/{id}/aliases: routing recognises the alias as
// the unit from now on (recusal included).
func (s *Server) addUnitAlias(c fiber.Ctx) error {
	var req aliasRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.d.Routing.AddUnitAlias(c.Context(), c.Params("id"), req.Alias)
	if err != nil {
		return err
	}
	s.recordChange(c, "routing.unit.alias.add", "", map[string]string{"unit": u.ID, "alias": strings.TrimSpace(req.Alias)})
	return c.JSON(unitOf(u))
}

// removeUnitAlias is DELETE /v1/routing/units/{id}/aliases/{alias}.
func (s *Server) removeUnitAlias(c fiber.Ctx) error {
	alias, err := url.PathUnescape(c.Params("alias"))
	if err != nil {
		return fieldInvalid("alias", "invalid", "别名编码无效", "the alias is not validly escaped")
	}
	u, err := s.d.Routing.RemoveUnitAlias(c.Context(), c.Params("id"), alias)
	if err != nil {
		return err
	}
	s.recordChange(c, "routing.unit.alias.remove", "", map[string]string{"unit": u.ID, "alias": alias})
	return c.JSON(unitOf(u))
}
