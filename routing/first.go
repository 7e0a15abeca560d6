package routing

import (
	"context"
	"fmt"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// UnitKind is the kind of a supervisory unit. The first version knows three per
// division; the registry (a later issue) adds the rest.
type UnitKind string

const (
	KindDiscipline   UnitKind = "jw" // 纪委监委
	KindCivilAffairs UnitKind = "mz" // 民政厅/民政局 (registration authority)
	KindIntakeOffice UnitKind = "xf" // 纪委监委信访室 (intake office, manual triage)
)

// Unit is a supervisory unit a case can be routed to.
type Unit struct {
	ID       string   `json:"id"` // "<division>-<kind>", e.g. 330782-mz
	Name     string   `json:"name"`
	Kind     UnitKind `json:"kind"`
	Division string   `json:"division"`
	Level    Level    `json:"level"`
}

// UnitID names the unit of kind k for a 6-digit province, city or county code.
func UnitID(division string, k UnitKind) string { return division + "-" + string(k) }

// LookupUnit finds a unit of the built-in set by id.
func LookupUnit(id string) (Unit, bool) {
	if len(id) != 9 || id[6] != '-' {
		return Unit{}, false
	}
	d, ok := LookupDivision(id[:6])
	if !ok || d.RetiredFrom != "" || d.Level == LevelTownship {
		return Unit{}, false
	}
	k := UnitKind(id[7:])
	var name string
	switch k {
	case KindDiscipline:
		name = d.Name + "纪委监委"
	case KindCivilAffairs:
		name = d.Name + "民政局"
		if d.Level == LevelProvince {
			name = d.Name + "民政厅"
		}
	case KindIntakeOffice:
		name = d.Name + "纪委监委信访室"
	default:
		return Unit{}, false
	}
	return Unit{ID: id, Name: name, Kind: k, Division: d.Code, Level: d.Level}, true
}

// Reference answers intake's reference-data questions from the embedded tables.
type Reference struct{}

var _ intake.Reference = Reference{}

// ValidDivision implements intake.Reference.
func (Reference) ValidDivision(code string) (string, bool) {
	c := CountyLevel(code)
	return c, c != ""
}

// CheckCreditCode implements intake.Reference.
func (Reference) CheckCreditCode(code string) (string, bool, bool) {
	cc, err := ParseCreditCode(code)
	if err != nil {
		return code, false, false
	}
	return cc.Code, true, cc.CheckValid
}

// FirstVersion is the foundation's router: it assigns a unit from the subject
// organization's registering region or the report's division, and says why. The rule
// engine replaces it behind intake.Router.
type FirstVersion struct {
	Now func() time.Time
}

var _ intake.Router = FirstVersion{}

const firstVersionName = "first-version/1"

var disciplineCategories = map[intake.Category]bool{
	"official_discipline": true, "official_corruption": true, "formalism": true,
}

// Route implements intake.Router. It never fails to name a unit: anything it cannot
// place goes to the provincial intake office, marked as a fallback.
func (r FirstVersion) Route(_ context.Context, c *intake.Case) (intake.Decision, error) {
	now := time.Now().UTC()
	if r.Now != nil {
		now = r.Now().UTC()
	}
	place := CountyLevel(c.Location.Division)
	placeDiv, _ := LookupDivision(place)
	inputs := map[string]string{"category": string(c.Category), "division": c.Location.Division}
	decide := func(unitID, reason string, fallback bool) (intake.Decision, error) {
		u, ok := LookupUnit(unitID)
		if !ok {
			u, _ = LookupUnit(UnitID("330000", KindIntakeOffice))
			reason, fallback = fmt.Sprintf("未找到单位 %s，转省纪委监委信访室人工分办", unitID), true
		}
		return intake.Decision{UnitID: u.ID, UnitName: u.Name, Reason: reason, Router: firstVersionName,
			Inputs: inputs, Fallback: fallback, DecidedAt: now}, nil
	}
	if place == "" {
		return decide(UnitID("330000", KindIntakeOffice), "举报地点不在浙江省行政区划内，转省纪委监委信访室人工分办", true)
	}
	switch {
	case disciplineCategories[c.Category]:
		return decide(UnitID(place, KindDiscipline),
			fmt.Sprintf("党员干部、公职人员问题由纪委监委受理；按举报地点（%s）交同级纪委监委", placeDiv.FullName), false)
	case c.Category == "illegal_org":
		return decide(UnitID(place, KindCivilAffairs),
			fmt.Sprintf("非法社会组织由活动所在地（%s）的登记管理机关查处", placeDiv.FullName), false)
	case c.Category == "other":
		return decide(UnitID(place, KindIntakeOffice),
			fmt.Sprintf("“其他”类举报由举报地点（%s）的信访室分办", placeDiv.FullName), false)
	}
	if o := c.Subject.Organization; o != nil && o.CreditCode != "" {
		inputs["credit_code"] = o.CreditCode
		if cc, err := ParseCreditCode(o.CreditCode); err == nil && cc.IsCivilAffairs() {
			if reg, ok := LookupDivision(cc.Division); ok && reg.Level != LevelTownship {
				reason := fmt.Sprintf("统一社会信用代码显示该组织由%s民政部门登记（代码第3–8位 %s），按管理权限交其登记管理机关", reg.FullName, cc.Division)
				if reg.RetiredFrom != "" {
					reason += fmt.Sprintf("；原区划代码 %s 已撤销，由 %s 承继", reg.RetiredFrom, reg.Code)
				}
				return decide(UnitID(reg.Code, KindCivilAffairs), reason, false)
			}
		}
	}
	return decide(UnitID(place, KindCivilAffairs),
		fmt.Sprintf("未能从信用代码确定登记机关，按举报地点（%s）交当地登记管理机关", placeDiv.FullName), false)
}
