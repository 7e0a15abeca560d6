package routing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// SubjectRole is what the engine makes of a report's subject.
type SubjectRole string

const (
	RoleOrganization SubjectRole = "organization" // a social organization
	RoleOfficial     SubjectRole = "official"     // a person working for a public body (or reported for official misconduct)
	RoleOrgStaff     SubjectRole = "org_staff"    // a person working for a social organization
	RoleDepartment   SubjectRole = "department"   // a public body itself (its name is a unit in the registry)
	RolePerson       SubjectRole = "person"       // any other person
)

func validRole(r SubjectRole) bool {
	switch r {
	case RoleOrganization, RoleOfficial, RoleOrgStaff, RoleDepartment, RolePerson:
		return true
	}
	return false
}

// Relation is how a rule names its destination.
type Relation string

const (
	// RelFixed is a fixed unit (Target.Unit).
	RelFixed Relation = "fixed"
	// RelRegistrationAuthority is the organization's registration authority (登记管理机关):
	// from the registry, or the 民政 unit of the credit code's registering division.
	RelRegistrationAuthority Relation = "registration_authority"
	// RelSupervisoryUnit is the organization's business supervisory unit (业务主管单位).
	RelSupervisoryUnit Relation = "supervisory_unit"
	// RelDisciplineAtLevel is the 纪委监委 at the subject's management level: of the
	// employer's division when the employer is a registered unit, else of the place.
	RelDisciplineAtLevel Relation = "discipline_at_management_level"
	// RelStationedAtEmployer is the 派驻纪检监察组 stationed at the subject's employer.
	RelStationedAtEmployer Relation = "stationed_at_employer"
	// RelKindForDivision is the unit of Target.Kind for Target.Division.
	RelKindForDivision Relation = "kind_for_division"
)

// Target is a destination or an informed unit of a rule.
type Target struct {
	Relation Relation `json:"relation"`
	Unit     string   `json:"unit,omitempty"` // RelFixed
	Kind     UnitKind `json:"kind,omitempty"` // RelKindForDivision
	// Division for RelKindForDivision: "place" (the county-level division where it
	// happened; the default), "registration" (the organization's registering
	// division), "employer" (the employer unit's division) or a 6-digit code.
	Division string `json:"division,omitempty"`
}

// Rule says where cases matching it go. Empty conditions match anything.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name"` // Chinese, quoted in decisions' reasons

	Categories      []intake.Category `json:"categories,omitempty"`
	SubjectKinds    []SubjectRole     `json:"subject_kinds,omitempty"`
	OrgTypes        []string          `json:"org_types,omitempty"`       // e.g. 基金会
	DivisionPrefix  string            `json:"division_prefix,omitempty"` // of the place: 33, 3307, 330782, or a township code
	DivisionLevel   Level             `json:"division_level,omitempty"`  // the place's level
	SupervisoryUnit string            `json:"supervisory_unit,omitempty"`
	EmployerUnit    string            `json:"employer_unit,omitempty"`

	Primary  Target   `json:"primary"`
	Inform   []Target `json:"inform,omitempty"`
	Priority int      `json:"priority"`

	ValidFrom time.Time  `json:"valid_from"`
	ValidTo   *time.Time `json:"valid_to,omitempty"`

	// Version is the rule-set version that added the rule; RetiredIn the one that
	// retired it (0: in force).
	Version   int        `json:"version"`
	RetiredIn int        `json:"retired_in,omitempty"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	RetiredBy string     `json:"retired_by,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
}

// InForceAt reports whether the rule belongs to rule-set version v.
func (r *Rule) InForceAt(v int) bool {
	return r.Version <= v && (r.RetiredIn == 0 || r.RetiredIn > v)
}

func (r *Rule) validAt(t time.Time) bool {
	return !t.Before(r.ValidFrom) && (r.ValidTo == nil || t.Before(*r.ValidTo))
}

// specificity ranks rules of equal priority: the more a rule says, the earlier it wins.
func (r *Rule) specificity() int {
	n := len(r.DivisionPrefix)
	for _, set := range []bool{len(r.Categories) > 0, len(r.SubjectKinds) > 0, len(r.OrgTypes) > 0,
		r.DivisionLevel != "", r.SupervisoryUnit != "", r.EmployerUnit != ""} {
		if set {
			n += 10
		}
	}
	return n
}

// MaxPriority bounds a rule's priority either way.
const MaxPriority = 1000

// Validate checks a rule an admin submits against the unit registry. It returns an
// EINVALID *qingfeng.Error naming every bad field.
func (r *Rule) Validate(units *Units) error {
	bad := map[string]qingfeng.FieldError{}
	fe := func(field, code, zh, en string) {
		bad[field] = qingfeng.FieldError{Code: code, Message: zh, English: en}
	}
	if qingfeng.TrimText(r.Name) == "" || len([]rune(r.Name)) > 200 {
		fe("name", "required", "请填写规则名称（不超过200字）", "a name of at most 200 characters is required")
	}
	// repeated says whether the i-th of a list repeats an earlier one: a list is a set.
	repeated := func(field string, i int, seen map[string]bool, v string) bool {
		if seen[v] {
			fe(fmt.Sprintf("%s[%d]", field, i), "duplicate_value", "同一项选了两次", "listed twice")
			return true
		}
		seen[v] = true
		return false
	}
	seen := map[string]bool{}
	for i, c := range r.Categories {
		if !c.Valid() {
			fe(fmt.Sprintf("categories[%d]", i), "unknown_category", "未知的举报类别", "unknown category")
		} else {
			repeated("categories", i, seen, string(c))
		}
	}
	seen = map[string]bool{}
	for i, k := range r.SubjectKinds {
		if !validRole(k) {
			fe(fmt.Sprintf("subject_kinds[%d]", i), "unknown_subject_kind", "被举报对象类型只能是 organization、official、org_staff、department 或 person", "unknown subject kind")
		} else {
			repeated("subject_kinds", i, seen, string(k))
		}
	}
	seen = map[string]bool{}
	for i, t := range r.OrgTypes {
		switch t {
		case "社会团体", "民办非企业单位/社会服务机构", "基金会", "其他":
			repeated("org_types", i, seen, t)
		default:
			fe(fmt.Sprintf("org_types[%d]", i), "unknown_org_type", "组织类型只能是 社会团体、民办非企业单位/社会服务机构、基金会 或 其他", "unknown organization type")
		}
	}
	if r.Priority < -MaxPriority || r.Priority > MaxPriority {
		fe("priority", "invalid_value", "优先级须为 -1000 到 1000 的整数", "an integer from -1000 to 1000")
	}
	if p := r.DivisionPrefix; p != "" {
		if !isDigits(p, len(p)) || (len(p) != 2 && len(p) != 4 && len(p) != 6 && len(p) != 9) || !strings.HasPrefix(p, "33") {
			fe("division_prefix", "invalid_division_prefix", "区划前缀应为浙江省区划代码的前2、4、6或9位", "a 2, 4, 6 or 9 digit prefix of a Zhejiang division code")
		}
	}
	switch r.DivisionLevel {
	case "", LevelProvince, LevelCity, LevelCounty, LevelTownship:
	default:
		fe("division_level", "invalid_level", "层级只能是 province、city、county 或 township", "unknown level")
	}
	for field, id := range map[string]string{"supervisory_unit": r.SupervisoryUnit, "employer_unit": r.EmployerUnit} {
		if id != "" {
			if _, ok := units.Get(id); !ok {
				fe(field, "unknown_unit", "单位不存在", "no such unit")
			}
		}
	}
	checkTarget := func(field string, t Target) {
		switch t.Relation {
		case RelFixed:
			if _, ok := units.Get(t.Unit); !ok {
				fe(field+".unit", "unknown_unit", "单位不存在", "no such unit")
			}
		case RelKindForDivision:
			if !ValidKind(t.Kind) || t.Kind == KindStationed {
				fe(field+".kind", "unknown_kind", "单位类型不正确", "unknown unit kind")
			}
			switch t.Division {
			case "", "place", "registration", "employer":
			default:
				if d, ok := LookupDivision(t.Division); !ok || d.Level == LevelTownship || len(t.Division) != 6 {
					fe(field+".division", "unknown_division", "应为 place、registration、employer 或浙江省县级以上区划代码", "place, registration, employer or a Zhejiang county-level or higher code")
				}
			}
		case RelRegistrationAuthority, RelSupervisoryUnit, RelDisciplineAtLevel, RelStationedAtEmployer:
		default:
			fe(field+".relation", "unknown_relation", "去向关系不正确", "unknown relation")
		}
	}
	checkTarget("primary", r.Primary)
	for i, t := range r.Inform {
		checkTarget(fmt.Sprintf("inform[%d]", i), t)
	}
	if r.ValidTo != nil && !r.ValidTo.After(r.ValidFrom) {
		fe("valid_to", "invalid_range", "失效时间应晚于生效时间", "valid_to must be after valid_from")
	}
	if len(bad) > 0 {
		return &qingfeng.Error{Code: qingfeng.EINVALID, Message: "路由规则有误", English: "invalid routing rule", Fields: bad}
	}
	return nil
}

// RuleSet is a version of the routing rules: every rule ever added, each saying in
// which version it came and went.
type RuleSet struct {
	Version int
	Rules   []Rule
}

// compiled is a rule set indexed for one version: rules by category and by the prefix
// of the place's division, so a decision looks at a handful of rules, not all of them.
type compiled struct {
	version int
	buckets map[string][]*Rule // "category|prefix"; "" for any
}

func compile(set RuleSet) *compiled {
	c := &compiled{version: set.Version, buckets: map[string][]*Rule{}}
	for i := range set.Rules {
		r := &set.Rules[i]
		if !r.InForceAt(set.Version) {
			continue
		}
		cats := r.Categories
		if len(cats) == 0 {
			cats = []intake.Category{""}
		}
		for _, cat := range cats {
			k := string(cat) + "|" + r.DivisionPrefix
			c.buckets[k] = append(c.buckets[k], r)
		}
	}
	for _, rs := range c.buckets {
		slices.SortFunc(rs, ruleOrder)
	}
	return c
}

func ruleOrder(a, b *Rule) int {
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	if c := cmp.Compare(b.specificity(), a.specificity()); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// candidates returns the rules whose conditions f meets, in the order they win.
func (c *compiled) candidates(f *facts) []*Rule {
	prefixes := [...]string{"", "", "", "", ""}
	n := 1
	if d := f.place; d != "" {
		prefixes[1], prefixes[2], prefixes[3] = d[:2], d[:4], d[:6]
		n = 4
		if len(f.placeFull) == 9 {
			prefixes[4] = f.placeFull
			n = 5
		}
	}
	var out []*Rule
	for _, cat := range [2]string{string(f.category), ""} {
		for _, p := range prefixes[:n] {
			for _, r := range c.buckets[cat+"|"+p] {
				if r.matches(f) {
					out = append(out, r)
				}
			}
		}
	}
	slices.SortFunc(out, ruleOrder)
	return slices.CompactFunc(out, func(a, b *Rule) bool { return a == b })
}

func (r *Rule) matches(f *facts) bool {
	if !r.validAt(f.at) {
		return false
	}
	if len(r.SubjectKinds) > 0 && !slices.Contains(r.SubjectKinds, f.role) {
		return false
	}
	if len(r.OrgTypes) > 0 && !slices.Contains(r.OrgTypes, f.orgType) {
		return false
	}
	if r.DivisionLevel != "" && r.DivisionLevel != f.placeLevel {
		return false
	}
	if r.SupervisoryUnit != "" && r.SupervisoryUnit != f.org.SupervisoryUnit {
		return false
	}
	if r.EmployerUnit != "" && (f.employer == nil || r.EmployerUnit != f.employer.ID) {
		return false
	}
	return true
}
