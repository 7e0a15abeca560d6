package routing

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// EngineName names the rule engine in decisions (with the rule-set version).
const EngineName = "rules/1"

// Alerter is told of every fallback, so that someone looks at the case: a metric and
// an event. A nil Alerter is allowed.
type Alerter interface {
	Fallback(ctx context.Context, c *intake.Case, reason string)
}

// Engine routes cases by the rule set: the competent unit, the units informed, and
// why — with recusal, and a fallback that never leaves a case without an owner.
// It is the intake.Router the service runs with. Safe for concurrent use; SetRules
// swaps the rule set at once.
type Engine struct {
	Units   *Units
	Orgs    *Orgs
	Alert   Alerter
	Now     func() time.Time
	current atomic.Pointer[compiled]
}

var (
	_ intake.Router         = (*Engine)(nil)
	_ intake.PlacedNotifier = (*Engine)(nil)
)

// NewEngine returns an engine for the units, organizations and rule set.
func NewEngine(units *Units, orgs *Orgs, set RuleSet) *Engine {
	e := &Engine{Units: units, Orgs: orgs}
	e.SetRules(set)
	return e
}

// SetRules replaces the rule set the engine decides by.
func (e *Engine) SetRules(set RuleSet) { e.current.Store(compile(set)) }

// Version is the rule-set version the engine decides by.
func (e *Engine) Version() int { return e.current.Load().version }

// facts are what the engine knows about a case before it looks at rules.
type facts struct {
	at         time.Time
	category   intake.Category
	place      string // county-level code where it happened; "" outside Zhejiang
	placeFull  string // the code as given (6 or 9 digits)
	placeLevel Level
	role       SubjectRole
	creditCode CreditCode // zero when none or malformed
	hasCode    bool
	org        Organization // from the registry; zero when unknown
	orgKnown   bool
	orgType    string
	employer   *RegistryUnit // a person's employer, or the department reported, when in the registry
	principal  bool          // the subject is the principal leader (主要负责人) of employer
	// suspects are units the employer (or the reported "organization") may be without
	// being surely: each is recused as possible_recusal. employerName is the name as given.
	suspects     []Resemblance
	employerName string
	inputs       map[string]string
}

// principalTitles are positions of a body's principal leader; a deputy (副) is not.
var principalTitles = []string{"局长", "厅长", "主任", "书记", "院长", "部长", "市长", "县长", "区长", "主席", "会长", "理事长", "秘书长", "组长", "负责人"}

// IsPrincipalLeader reports whether a position names a unit's principal leader.
func IsPrincipalLeader(position string) bool {
	if position == "" || strings.Contains(position, "副") {
		return false
	}
	for _, t := range principalTitles {
		if strings.Contains(position, t) {
			return true
		}
	}
	return false
}

func (e *Engine) facts(c *intake.Case) *facts {
	f := &facts{at: c.ReceivedAt, category: c.Category, placeFull: c.Location.Division,
		inputs: map[string]string{"category": string(c.Category), "division": c.Location.Division}}
	if f.at.IsZero() {
		f.at = e.now()
	}
	if c.Location.ReportedDivision != "" {
		// Outside Zhejiang: no place-based rule applies; the province holds the case.
		f.inputs["reported_division"] = c.Location.ReportedDivision
	} else if d, ok := LookupDivision(c.Location.Division); ok {
		f.place, f.placeLevel = CountyLevel(d.Code), d.Level
		if d.Level == LevelTownship {
			f.placeFull = d.Code
		}
	}
	switch c.Subject.Kind {
	case intake.SubjectOrganization:
		f.role = RoleOrganization
		if o := c.Subject.Organization; o != nil {
			if o.CreditCode != "" {
				if cc, err := ParseCreditCode(o.CreditCode); err == nil {
					f.creditCode, f.hasCode = cc, true
					f.inputs["credit_code"] = cc.Code
					f.orgType = cc.OrgType()
					if e.Orgs != nil {
						f.org, f.orgKnown = e.Orgs.Get(cc.Code)
					}
				}
			}
			if !f.orgKnown && o.Name != "" && !f.hasCode {
				m := e.Units.Resolve(o.Name, f.place)
				f.employerName = o.Name
				if m.Sure {
					// The "organization" is a public body: a department.
					f.role, f.employer = RoleDepartment, &m.Unit
				} else if e.Orgs != nil {
					if org, ok := e.Orgs.ByName(o.Name); ok {
						f.org, f.orgKnown = org, true
						f.creditCode, _ = ParseCreditCode(org.CreditCode)
						f.hasCode = f.creditCode.Code != ""
						f.orgType = f.creditCode.OrgType()
					}
				}
				f.suspect(m)
			}
		}
	case intake.SubjectPerson:
		f.role = RolePerson
		if p := c.Subject.Person; p != nil && p.Employer != "" {
			m := e.Units.Resolve(p.Employer, f.place)
			f.employerName = p.Employer
			f.principal = IsPrincipalLeader(p.Position)
			if m.Sure {
				f.role, f.employer = RoleOfficial, &m.Unit
			} else if e.Orgs != nil {
				if org, ok := e.Orgs.ByName(p.Employer); ok {
					f.role = RoleOrgStaff
					f.org, f.orgKnown = org, true
					f.creditCode, _ = ParseCreditCode(org.CreditCode)
					f.hasCode = f.creditCode.Code != ""
					f.orgType = f.creditCode.OrgType()
				}
			}
			f.suspect(m)
		}
		if f.role == RolePerson && officialCategories[c.Category] {
			f.role = RoleOfficial // reported for official misconduct, employer not in the registry
		}
	}
	f.inputs["subject_kind"] = string(f.role)
	if f.orgKnown {
		f.inputs["org_status"] = string(f.org.Status)
		f.inputs[InputOrgCreditCode], f.inputs[InputOrgName] = f.org.CreditCode, f.org.Name
		if f.org.SupervisoryUnit != "" {
			f.inputs["supervisory_unit"] = f.org.SupervisoryUnit
		}
	}
	if f.orgType != "" {
		f.inputs["org_type"] = f.orgType
	}
	if f.employer != nil {
		f.inputs["employer_unit"] = f.employer.ID
	}
	if f.principal && (f.employer != nil || len(f.suspects) > 0) {
		f.inputs["principal_leader"] = "true"
	}
	if len(f.suspects) > 0 {
		ids := make([]string, len(f.suspects))
		for i, s := range f.suspects {
			ids[i] = s.Unit.ID
		}
		f.inputs["employer_possible_units"] = strings.Join(ids, ",")
	}
	return f
}

// suspect records the units m resembles. When the name is a registered organization's,
// a likeness by kind alone (a 民政 word in 某某民政服务协会) is not suspicious.
func (f *facts) suspect(m NameMatch) {
	for _, r := range m.Resembles {
		if r.ByKind && f.orgKnown {
			continue
		}
		f.suspects = append(f.suspects, r)
	}
}

// suspected returns the resemblance of u to the employer, if u is a suspect.
func (f *facts) suspected(u RegistryUnit) (Resemblance, bool) {
	for _, s := range f.suspects {
		if s.Unit.ID == u.ID {
			return s, true
		}
	}
	return Resemblance{}, false
}

var officialCategories = map[intake.Category]bool{
	"official_discipline": true, "official_corruption": true, "formalism": true,
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// resolution is a target resolved to a unit, or why it could not be.
type resolution struct {
	unit     RegistryUnit
	ok       bool
	excluded string // out_of_jurisdiction, unresolved
	detail   string
}

func (e *Engine) resolve(t Target, f *facts) resolution {
	unit := func(u RegistryUnit, ok bool, missing string) resolution {
		if !ok {
			return resolution{excluded: "unresolved", detail: missing}
		}
		return resolution{unit: u, ok: true}
	}
	switch t.Relation {
	case RelFixed:
		u, ok := e.Units.Get(t.Unit)
		return unit(u, ok, "单位 "+t.Unit+" 不在单位名录中")
	case RelRegistrationAuthority:
		if f.orgKnown && f.org.RegistrationAuthority != "" {
			u, ok := e.Units.Get(f.org.RegistrationAuthority)
			return unit(u, ok, "登记管理机关 "+f.org.RegistrationAuthority+" 不在单位名录中")
		}
		if !f.hasCode || !f.creditCode.IsCivilAffairs() {
			return resolution{excluded: "unresolved", detail: "没有民政部门登记的统一社会信用代码，无法确定登记管理机关"}
		}
		d, ok := f.creditCode.RegisteringDivision()
		if !ok {
			return resolution{excluded: "out_of_jurisdiction", detail: "信用代码显示登记机关区划 " + f.creditCode.Division + " 不在浙江省"}
		}
		u, ok := e.Units.OfKind(KindCivilAffairs, CountyLevel(d.Code))
		return unit(u, ok, "区划 "+d.Code+" 没有民政部门")
	case RelSupervisoryUnit:
		if !f.orgKnown || f.org.SupervisoryUnit == "" {
			return resolution{excluded: "unresolved", detail: "登记信息中没有业务主管单位"}
		}
		u, ok := e.Units.Get(f.org.SupervisoryUnit)
		return unit(u, ok, "业务主管单位 "+f.org.SupervisoryUnit+" 不在单位名录中")
	case RelDisciplineAtLevel:
		div := f.place
		if f.employer != nil {
			div = f.employer.Division
		}
		if div == "" {
			return resolution{excluded: "out_of_jurisdiction", detail: "被举报人的管理层级不在浙江省"}
		}
		u, ok := e.Units.OfKind(KindDiscipline, div)
		return unit(u, ok, "区划 "+div+" 没有纪委监委")
	case RelStationedAtEmployer:
		if f.employer == nil {
			return resolution{excluded: "unresolved", detail: "被举报人的工作单位不在单位名录中"}
		}
		u, ok := e.Units.StationedAt(f.employer.ID)
		return unit(u, ok, f.employer.Name+"没有派驻纪检监察组")
	case RelKindForDivision:
		div := t.Division
		switch div {
		case "", "place":
			div = f.place
		case "registration":
			div = ""
			if f.hasCode {
				if d, ok := f.creditCode.RegisteringDivision(); ok {
					div = CountyLevel(d.Code)
				}
			}
		case "employer":
			div = ""
			if f.employer != nil {
				div = f.employer.Division
			}
		}
		if div == "" {
			return resolution{excluded: "out_of_jurisdiction", detail: "无法确定浙江省内的区划"}
		}
		u, ok := e.Units.OfKind(t.Kind, div)
		return unit(u, ok, "区划 "+div+" 没有"+KindLabel(t.Kind))
	}
	return resolution{excluded: "unresolved", detail: "未知的去向关系 " + string(t.Relation)}
}

// recused reports why u must not handle the case and the exclusion code (recusal, or
// possible_recusal for a unit the employer only resembles), or "" when it may.
func (e *Engine) recused(u RegistryUnit, f *facts) (why, code string) {
	if emp := f.employer; emp != nil {
		switch {
		case u.ID == emp.ID && f.role == RoleDepartment:
			return "被举报的正是该单位，应回避", "recusal"
		case u.ID == emp.ID:
			return "被举报人在该单位工作，应回避", "recusal"
		case f.principal && u.StationedAt == emp.ID:
			return "被举报人是" + emp.Name + "主要负责人，其派驻纪检监察组应回避，交上一级", "recusal"
		}
	}
	what := "被举报人的工作单位"
	if f.role == RoleDepartment || f.role == RoleOrganization {
		what = "被举报的单位"
	}
	if s, ok := f.suspected(u); ok {
		return fmt.Sprintf("%s“%s”可能就是%s（%s），无法确认不是该单位，应回避", what, f.employerName, u.Name, s.Why), "possible_recusal"
	}
	if f.principal && u.StationedAt != "" {
		for _, s := range f.suspects {
			if u.StationedAt == s.Unit.ID {
				return fmt.Sprintf("%s“%s”可能就是%s（%s），被举报人是其主要负责人，其派驻纪检监察组应回避，交上一级", what, f.employerName, s.Unit.Name, s.Why), "possible_recusal"
			}
		}
	}
	return "", ""
}

// accused reports whether u is the employer or one it may be.
func (f *facts) accused(u RegistryUnit) bool {
	if f.employer != nil && u.ID == f.employer.ID {
		return true
	}
	_, ok := f.suspected(u)
	return ok
}

// escalate is where a case goes when u must not or cannot take it: a department's
// 派驻组 (unless the subject leads the department) or the 纪委监委 of its division; a
// 派驻组's 纪委监委; a 纪委监委's one a level up; any other unit's parent.
func (e *Engine) escalate(u RegistryUnit, f *facts) (RegistryUnit, bool) {
	switch u.Kind {
	case KindStationed, KindDiscipline, KindIntakeOffice:
		if u.Parent == "" {
			return RegistryUnit{}, false
		}
		return e.Units.Get(u.Parent)
	}
	if f.accused(u) {
		if !f.principal {
			if pz, ok := e.Units.StationedAt(u.ID); ok {
				return pz, true
			}
		}
		return e.Units.OfKind(KindDiscipline, u.Division)
	}
	if u.Parent == "" {
		return RegistryUnit{}, false
	}
	return e.Units.Get(u.Parent)
}

// settle follows recusal and inactivity upwards from u, recording each unit passed
// over. It returns the unit that can take the case.
func (e *Engine) settle(u RegistryUnit, ruleID string, cands *[]intake.Candidate, f *facts) (RegistryUnit, bool) {
	for range 8 {
		why, code := e.recused(u, f)
		if why == "" && !u.Active {
			why, code = "该单位已停用", "inactive"
		}
		if why == "" {
			return u, true
		}
		*cands = append(*cands, intake.Candidate{UnitID: u.ID, UnitName: u.Name, RuleID: ruleID, Excluded: code, Detail: why})
		next, ok := e.escalate(u, f)
		if !ok {
			return RegistryUnit{}, false
		}
		u = next
	}
	return RegistryUnit{}, false
}

// Route implements intake.Router. It never fails and never leaves a case without an
// owner: when no rule places it, the nearest intake office takes it for manual triage.
// A stored case (one being re-routed) that falls back is alerted on here; a new one
// only once it is stored (Placed), since it has no number before and may never be.
func (e *Engine) Route(ctx context.Context, c *intake.Case) (intake.Decision, error) {
	d := e.Decide(c)
	if d.Fallback && e.Alert != nil && c.Number != "" {
		e.Alert.Fallback(ctx, c, d.FallbackReason)
	}
	return d, nil
}

// Placed implements intake.PlacedNotifier: the alert for a newly stored case that no
// rule could place, naming its number.
func (e *Engine) Placed(ctx context.Context, c *intake.Case) {
	if c.Decision.Fallback && e.Alert != nil {
		e.Alert.Fallback(ctx, c, c.Decision.FallbackReason)
	}
}

// Decide is Route without the alert: the decision for c, stored nowhere. It is what
// POST /v1/routing/explain shows.
func (e *Engine) Decide(c *intake.Case) intake.Decision {
	rs := e.current.Load()
	f := e.facts(c)
	d := intake.Decision{Router: fmt.Sprintf("%s@v%d", EngineName, rs.version), RuleVersion: rs.version, Inputs: f.inputs, DecidedAt: e.now()}
	var (
		winner  *Rule
		owner   RegistryUnit
		matched = rs.candidates(f)
	)
	for _, r := range matched {
		if winner != nil {
			// Record every loser, with what it would have chosen: an explanation that
			// leaves out a matching rule because its own target did not resolve hides
			// from an admin why the rule they just wrote did not apply.
			c := intake.Candidate{RuleID: r.ID, Excluded: "lower_priority", Detail: fmt.Sprintf("规则“%s”优先级较低（%d）", r.Name, r.Priority)}
			if res := e.resolve(r.Primary, f); res.ok {
				c.UnitID, c.UnitName = res.unit.ID, res.unit.Name
			} else {
				c.Detail += "，且" + res.detail
			}
			d.Candidates = append(d.Candidates, c)
			continue
		}
		res := e.resolve(r.Primary, f)
		if !res.ok {
			d.Candidates = append(d.Candidates, intake.Candidate{RuleID: r.ID, Excluded: res.excluded, Detail: fmt.Sprintf("规则“%s”：%s", r.Name, res.detail)})
			continue
		}
		u, ok := e.settle(res.unit, r.ID, &d.Candidates, f)
		if !ok {
			d.Candidates = append(d.Candidates, intake.Candidate{RuleID: r.ID, Excluded: "unresolved", Detail: fmt.Sprintf("规则“%s”：回避后没有可接收的上级单位", r.Name)})
			continue
		}
		winner, owner = r, u
	}
	if winner == nil {
		return e.fallback(d, f, matched)
	}
	d.UnitID, d.UnitName, d.RuleID = owner.ID, owner.Name, winner.ID
	d.Candidates = append([]intake.Candidate{{UnitID: owner.ID, UnitName: owner.Name, RuleID: winner.ID, Chosen: true,
		Detail: fmt.Sprintf("适用规则“%s”", winner.Name)}}, d.Candidates...)
	d.Reason = fmt.Sprintf("按规则“%s”（规则集第%d版）交%s", winner.Name, rs.version, owner.Name)
	if recusals := countExcluded(d.Candidates, "recusal") + countExcluded(d.Candidates, "possible_recusal"); recusals > 0 {
		d.Reason += "（经回避调整）"
	}
	seen := map[string]bool{owner.ID: true}
	for _, t := range winner.Inform {
		res := e.resolve(t, f)
		if why, _ := e.recused(res.unit, f); !res.ok || seen[res.unit.ID] || !res.unit.Active || why != "" {
			continue
		}
		seen[res.unit.ID] = true
		d.Informed = append(d.Informed, intake.UnitRef{ID: res.unit.ID, Name: res.unit.Name})
	}
	return d
}

func countExcluded(cs []intake.Candidate, code string) int {
	n := 0
	for _, c := range cs {
		if c.Excluded == code {
			n++
		}
	}
	return n
}

// fallback hands the case to the intake office of the nearest level that has one.
func (e *Engine) fallback(d intake.Decision, f *facts, matched []*Rule) intake.Decision {
	reason, why := "unresolved", "适用的规则都无法确定承办单位"
	switch {
	case f.place == "":
		reason, why = "outside_zhejiang", "举报地点不在浙江省行政区划内"
		if given := cmp.Or(f.inputs["reported_division"], f.placeFull); given != "" {
			why = "举报地点（区划代码 " + given + "）不在浙江省行政区划内"
		}
	case len(matched) == 0:
		reason, why = "no_rule", "没有适用的路由规则"
	}
	var office RegistryUnit
	found := false
	for div := f.place; div != "" && !found; {
		office, found = e.Units.OfKind(KindIntakeOffice, div)
		found = found && office.Active
		if recusal, code := e.recused(office, f); found && code != "" {
			// Someone at the intake office itself: the one a level up triages.
			d.Candidates = append(d.Candidates, intake.Candidate{UnitID: office.ID, UnitName: office.Name, Excluded: code, Detail: recusal})
			found = false
		}
		if dv, ok := LookupDivision(div); ok {
			div = dv.Parent
		} else {
			div = ""
		}
	}
	if !found {
		office, found = e.Units.OfKind(KindIntakeOffice, "330000")
		found = found && !f.accused(office)
	}
	// With the provincial intake office itself accused, the provincial 纪委监委 is the
	// last level there is.
	if !found {
		// The registry has no intake office at all: keep the case with the first
		// active discipline unit of the province rather than drop it.
		office, _ = e.Units.OfKind(KindDiscipline, "330000")
	}
	d.UnitID, d.UnitName = office.ID, office.Name
	d.Fallback, d.FallbackReason = true, reason
	d.Reason = why + "，转" + office.Name + "人工分办"
	d.Candidates = append([]intake.Candidate{{UnitID: office.ID, UnitName: office.Name, Chosen: true, Detail: "兜底：" + why}}, d.Candidates...)
	return d
}
