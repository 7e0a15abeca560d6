package routing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Unit kinds beyond the first three (jw, mz, xf, in first.go).
const (
	KindStationed  UnitKind = "pz"   // 派驻纪检监察组, stationed at a department (StationedAt)
	KindSupervisor UnitKind = "zg"   // 业务主管单位
	KindMarket     UnitKind = "scjg" // 市场监督管理局
	KindPolice     UnitKind = "ga"   // 公安厅/公安局
	KindFinance    UnitKind = "cz"   // 财政厅/财政局
	KindAudit      UnitKind = "sj"   // 审计厅/审计局
	KindTax        UnitKind = "sw"   // 税务局
	KindOther      UnitKind = "qt"   // other
)

// KindLabel is the Chinese name of a unit kind.
func KindLabel(k UnitKind) string {
	switch k {
	case KindDiscipline:
		return "纪委监委"
	case KindStationed:
		return "派驻纪检监察组"
	case KindCivilAffairs:
		return "民政部门"
	case KindSupervisor:
		return "业务主管单位"
	case KindMarket:
		return "市场监管部门"
	case KindPolice:
		return "公安机关"
	case KindFinance:
		return "财政部门"
	case KindAudit:
		return "审计机关"
	case KindTax:
		return "税务部门"
	case KindIntakeOffice:
		return "信访室"
	case KindOther:
		return "其他"
	}
	return ""
}

// ValidKind reports whether k is a known unit kind.
func ValidKind(k UnitKind) bool { return KindLabel(k) != "" }

// RegistryUnit is a supervisory unit in the registry: Unit plus what routing needs to
// climb levels and recuse.
type RegistryUnit struct {
	Unit
	Parent      string `json:"parent,omitempty"`       // the unit one level up (same line of work)
	StationedAt string `json:"stationed_at,omitempty"` // for a 派驻组: the department it is stationed at
	Active      bool   `json:"active"`
	// Aliases are other names the unit is known by (简称, former names, how exports write
	// it), added by admins; each is matched like the name (NormalizeName, canonicalName).
	Aliases []string `json:"aliases,omitempty"`
	// Deadlines overrides the working days a step may take at this unit, by kind
	// (acceptance, transfer, feedback, rectification); absent kinds use the defaults.
	Deadlines map[string]int `json:"deadlines,omitempty"`
}

// DeadlineKinds are the steps with a deadline.
var DeadlineKinds = []string{"acceptance", "transfer", "feedback", "rectification"}

// DefaultDeadlineDays are the working days of the discipline rules and seed 003.
var DefaultDeadlineDays = map[string]int{"acceptance": 15, "transfer": 5, "feedback": 15, "rectification": 15}

// DeadlineDays is the working days unit id allows for a step of kind: the unit's own
// setting, or the default.
func (r *Units) DeadlineDays(id, kind string) int {
	if u, ok := r.Get(id); ok {
		if d := u.Deadlines[kind]; d > 0 {
			return d
		}
	}
	return DefaultDeadlineDays[kind]
}

// defaultKinds are the units every province, city and county-level division has in the
// default data, with how each is named at province level and below.
var defaultKinds = []struct {
	kind           UnitKind
	province, rest string
}{
	{KindDiscipline, "纪委监委", "纪委监委"},
	{KindCivilAffairs, "民政厅", "民政局"},
	{KindMarket, "市场监督管理局", "市场监督管理局"},
	{KindPolice, "公安厅", "公安局"},
	{KindFinance, "财政厅", "财政局"},
	{KindIntakeOffice, "纪委监委信访室", "纪委监委信访室"},
}

// unitPrefix is how a division is written at the start of its units' names: 浙江省,
// 杭州市, 义乌市, 平阳县, and a city district with its city: 杭州市上城区.
func unitPrefix(d Division) string {
	if d.Level == LevelCounty && strings.HasSuffix(d.Name, "区") {
		if p, ok := LookupDivision(d.Parent); ok {
			return p.Name + d.Name
		}
	}
	return d.Name
}

// DefaultUnits generates the default registry from the embedded divisions: for the
// province, its 11 cities and its 90 county-level divisions, a 纪委监委, 民政, 市场监管,
// 公安, 财政 unit and an intake office (信访室) each, and a 派驻纪检监察组 stationed at each
// 民政 unit. Each unit's parent is the unit of the same kind one level up.
func DefaultUnits() []RegistryUnit {
	var out []RegistryUnit
	for _, d := range Divisions() {
		if d.Level == LevelTownship {
			continue
		}
		prefix := unitPrefix(d)
		for _, k := range defaultKinds {
			name := prefix + k.rest
			if d.Level == LevelProvince {
				name = prefix + k.province
			}
			u := RegistryUnit{Unit: Unit{ID: UnitID(d.Code, k.kind), Name: name, Kind: k.kind, Division: d.Code, Level: d.Level}, Active: true}
			if d.Parent != "" {
				u.Parent = UnitID(d.Parent, k.kind)
			}
			out = append(out, u)
		}
		mz := UnitID(d.Code, KindCivilAffairs)
		mzName := prefix + "民政局"
		if d.Level == LevelProvince {
			mzName = prefix + "民政厅"
		}
		out = append(out, RegistryUnit{
			Unit:        Unit{ID: mz + "-pz", Name: "派驻" + mzName + "纪检监察组", Kind: KindStationed, Division: d.Code, Level: d.Level},
			Parent:      UnitID(d.Code, KindDiscipline),
			StationedAt: mz,
			Active:      true,
		})
	}
	return out
}

// Units is the in-memory registry of supervisory units that the router consults. It is
// safe for concurrent use; Replace swaps the whole set at once.
type Units struct {
	mu        sync.RWMutex
	byID      map[string]RegistryUnit
	byKindDiv map[string]string    // kind|division → unit id (the first active one)
	stationed map[string][]string  // host unit id → 派驻组 ids
	byName    map[string]string    // NormalizeName(name or alias) → unit id; "" when shared
	byDiv     map[string][]nameKey // division → canonical names of the units named in it
}

// nameKey is one canonical name (canonicalName) of a unit.
type nameKey struct {
	id, rest string
}

// NewUnits indexes units. Ids must be unique.
func NewUnits(units []RegistryUnit) (*Units, error) {
	u := &Units{}
	if err := u.Replace(units); err != nil {
		return nil, err
	}
	return u, nil
}

// Replace swaps the registry's units for units.
func (r *Units) Replace(units []RegistryUnit) error {
	byID := make(map[string]RegistryUnit, len(units))
	byKindDiv := map[string]string{}
	stationed := map[string][]string{}
	byName := map[string]string{}
	byDiv := map[string][]nameKey{}
	for _, u := range units {
		if u.ID == "" || u.Name == "" || !ValidKind(u.Kind) {
			return fmt.Errorf("routing: unit %q: id, name and a known kind are required", u.ID)
		}
		if _, dup := byID[u.ID]; dup {
			return fmt.Errorf("routing: unit %q listed twice", u.ID)
		}
		byID[u.ID] = u
		for _, name := range append([]string{u.Name}, u.Aliases...) {
			n := NormalizeName(name)
			if n == "" {
				continue
			}
			div, rest, hasDiv := canonicalName(n)
			// A Chinese alias that names no place (文旅局) is the unit's only within its
			// own division, through byDiv below: as a name on its own it would make the
			// unit the sure match for that kind of unit everywhere.
			if hasDiv || name == u.Name || !strings.ContainsFunc(n, isHan) {
				if id, taken := byName[n]; taken && id != u.ID {
					byName[n] = "" // two units share it: a name alone cannot say which
				} else {
					byName[n] = u.ID
				}
			}
			if _, exact, ok := stationedName(n); ok && exact {
				continue // found through the unit it is stationed at
			}
			if !hasDiv {
				div = u.Division // an alias without a division: the unit's own
			}
			if rest != "" && !slices.Contains(byDiv[div], nameKey{u.ID, rest}) {
				byDiv[div] = append(byDiv[div], nameKey{u.ID, rest})
			}
		}
	}
	// Deterministic: the lowest id wins a kind and division shared by several units.
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		u := byID[id]
		if u.Parent != "" {
			if _, ok := byID[u.Parent]; !ok {
				return fmt.Errorf("routing: unit %q: parent %q is not in the registry", u.ID, u.Parent)
			}
		}
		if u.StationedAt != "" {
			stationed[u.StationedAt] = append(stationed[u.StationedAt], u.ID)
		}
		if u.Kind == KindStationed {
			continue
		}
		// An active unit wins over an inactive one; the inactive one is still found,
		// so that routing can say it passed over it and go to its parent.
		k := string(u.Kind) + "|" + u.Division
		if prev, taken := byKindDiv[k]; !taken || (!byID[prev].Active && u.Active) {
			byKindDiv[k] = u.ID
		}
	}
	r.mu.Lock()
	r.byID, r.byKindDiv, r.stationed, r.byName, r.byDiv = byID, byKindDiv, stationed, byName, byDiv
	r.mu.Unlock()
	return nil
}

// Get returns a unit by id, active or not.
func (r *Units) Get(id string) (RegistryUnit, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u, ok := r.byID[id]
	return u, ok
}

// OfKind returns the unit of kind k for a 6-digit division code: an active one if
// there is one.
func (r *Units) OfKind(k UnitKind, division string) (RegistryUnit, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.byKindDiv[string(k)+"|"+division]
	if !ok {
		return RegistryUnit{}, false
	}
	return r.byID[id], true
}

// StationedAt returns the 派驻组 stationed at host, if any.
func (r *Units) StationedAt(host string) (RegistryUnit, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, id := range r.stationed[host] {
		if u := r.byID[id]; u.Active {
			return u, true
		}
	}
	return RegistryUnit{}, false
}

// FindByName returns the unit that name surely names (Resolve's Sure match), for an
// import that gives a unit by name.
func (r *Units) FindByName(name string) (RegistryUnit, bool) {
	m := r.Resolve(name, "")
	return m.Unit, m.Sure
}

// All lists the units in id order.
func (r *Units) All() []RegistryUnit {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]RegistryUnit, 0, len(r.byID))
	for _, u := range r.byID {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b RegistryUnit) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// OrgStatus is a social organization's registration status.
type OrgStatus string

const (
	OrgNormal       OrgStatus = "normal"       // 正常
	OrgRevoked      OrgStatus = "revoked"      // 撤销 (registration revoked)
	OrgDeregistered OrgStatus = "deregistered" // 注销
	OrgAbnormal     OrgStatus = "abnormal"     // 活动异常名录
	OrgDishonest    OrgStatus = "dishonest"    // 严重违法失信名单
)

// OrgStatusLabel is the Chinese label of a status; "" for an unknown one.
func OrgStatusLabel(s OrgStatus) string {
	switch s {
	case OrgNormal:
		return "正常"
	case OrgRevoked:
		return "撤销"
	case OrgDeregistered:
		return "注销"
	case OrgAbnormal:
		return "活动异常名录"
	case OrgDishonest:
		return "严重违法失信名单"
	}
	return ""
}

// ParseOrgStatus accepts a status code or its Chinese label.
func ParseOrgStatus(s string) (OrgStatus, bool) {
	s = strings.TrimSpace(s)
	for _, st := range []OrgStatus{OrgNormal, OrgRevoked, OrgDeregistered, OrgAbnormal, OrgDishonest} {
		if s == string(st) || s == OrgStatusLabel(st) {
			return st, true
		}
	}
	return "", false
}

// Organization is a registered social organization.
type Organization struct {
	CreditCode string `json:"credit_code"`
	Name       string `json:"name"`
	// Type (社会团体, 民办非企业单位/社会服务机构, 基金会, 其他) and RegDivision (the
	// registering authority's division, a retired code given as its successor) are
	// derived from the credit code.
	Type        string    `json:"type"`
	RegDivision string    `json:"reg_division"`
	Status      OrgStatus `json:"status"`
	// RegistrationAuthority is the unit id of the 民政 unit that registered it; empty means
	// the one of RegDivision.
	RegistrationAuthority string `json:"registration_authority,omitempty"`
	// SupervisoryUnit is the unit id of its 业务主管单位, if it has one.
	SupervisoryUnit string    `json:"supervisory_unit,omitempty"`
	Industry        string    `json:"industry,omitempty"`
	Grade           string    `json:"grade,omitempty"`    // 评估等级, e.g. 4A
	Division        string    `json:"division,omitempty"` // address division
	UpdatedAt       time.Time `json:"updated_at"`
}

// Orgs is an in-memory index of organizations by credit code, so that routing a case
// never waits on the database. Safe for concurrent use.
type Orgs struct {
	mu     sync.RWMutex
	m      map[string]Organization
	byName map[string]string // name → credit code; a name several organizations share maps to ""
}

// NewOrgs returns an empty index.
func NewOrgs() *Orgs { return &Orgs{m: map[string]Organization{}, byName: map[string]string{}} }

// Put adds or replaces organizations.
func (o *Orgs) Put(orgs ...Organization) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, org := range orgs {
		name := NormalizeName(org.Name)
		if old, ok := o.m[org.CreditCode]; ok {
			if oldName := NormalizeName(old.Name); oldName != name && o.byName[oldName] == org.CreditCode {
				delete(o.byName, oldName)
			}
		}
		o.m[org.CreditCode] = org
		if code, taken := o.byName[name]; taken && code != org.CreditCode {
			o.byName[name] = "" // ambiguous: a name alone cannot say which
		} else {
			o.byName[name] = org.CreditCode
		}
	}
}

// ByName finds the one organization registered under name, compared as NormalizeName
// writes both.
func (o *Orgs) ByName(name string) (Organization, bool) {
	name = NormalizeName(name)
	if name == "" {
		return Organization{}, false
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	code := o.byName[name]
	if code == "" {
		return Organization{}, false
	}
	org, ok := o.m[code]
	return org, ok
}

// Get finds an organization by its normalized credit code.
func (o *Orgs) Get(code string) (Organization, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	org, ok := o.m[code]
	return org, ok
}

// Len is the number of organizations indexed.
func (o *Orgs) Len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.m)
}

func isHan(r rune) bool { return unicode.Is(unicode.Han, r) }
