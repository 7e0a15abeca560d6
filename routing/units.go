package routing

import "github.com/qingfeng-zj/qingfeng/intake"

// UnitKind is the kind of a supervisory unit; it is the last part of a default unit's id.
type UnitKind string

const (
	KindDiscipline   UnitKind = "jw" // 纪委监委
	KindCivilAffairs UnitKind = "mz" // 民政厅/民政局 (registration authority)
	KindIntakeOffice UnitKind = "xf" // 纪委监委信访室 (intake office, manual triage)
)

// Unit is a supervisory unit a case can be routed to.
type Unit struct {
	ID       string   `json:"id"` // default units: "<division>-<kind>", e.g. 330782-mz
	Name     string   `json:"name"`
	Kind     UnitKind `json:"kind"`
	Division string   `json:"division"`
	Level    Level    `json:"level"`
}

// UnitID names the default unit of kind k for a 6-digit province, city or county code.
func UnitID(division string, k UnitKind) string { return division + "-" + string(k) }

// Reference answers intake's reference-data questions from the embedded tables.
type Reference struct{}

var _ intake.Reference = Reference{}

// ValidDivision implements intake.Reference.
func (Reference) ValidDivision(code string) (string, bool) {
	c := CountyLevel(code)
	return c, c != ""
}

// OutsideZhejiang implements intake.Reference: such a report is held under the province.
func (Reference) OutsideZhejiang(code string) (string, bool) {
	return ProvinceCode, OutsideZhejiang(code)
}

// CheckCreditCode implements intake.Reference.
func (Reference) CheckCreditCode(code string) (string, bool, bool) {
	cc, err := ParseCreditCode(code)
	if err != nil {
		return code, false, false
	}
	return cc.Code, true, cc.CheckValid
}
