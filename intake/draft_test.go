package intake

import (
	"errors"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
)

// divisionRef knows one Zhejiang county and treats 31xxxx as Shanghai; intake cannot
// import routing, whose Reference the service runs with (tested there and end to end).
type divisionRef struct{}

func (divisionRef) ValidDivision(code string) (string, bool) { return code, code == "330782" }
func (divisionRef) OutsideZhejiang(code string) (string, bool) {
	return "330000", len(code) == 6 && code[:2] == "31"
}
func (divisionRef) CheckCreditCode(code string) (string, bool, bool) { return code, true, true }

func TestDraftDivision(t *testing.T) {
	draft := func(div string) Draft {
		return Draft{Category: "other", Description: "某事", Anonymous: true, Location: Location{Division: div},
			Subject: Subject{Kind: SubjectOrganization, Organization: &OrgSubject{Name: "某组织"}}}
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	d, warns, err := draft(" 310101 ").validate(divisionRef{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Location.Division != "330000" || d.Location.ReportedDivision != "310101" {
		t.Errorf("outside Zhejiang: %+v", d.Location)
	}
	if len(warns) != 1 || warns[0].Code != "outside_zhejiang" || warns[0].Field != "location.division" {
		t.Errorf("warnings %+v", warns)
	}

	// A client cannot set the reported division itself.
	in := draft("330782")
	in.Location.ReportedDivision = "310101"
	if d, _, err = in.validate(divisionRef{}, now); err != nil || d.Location.ReportedDivision != "" || d.Location.Division != "330782" {
		t.Errorf("Zhejiang: %+v %v", d.Location, err)
	}

	for _, div := range []string{"330799", "999999", "x"} {
		_, _, err := draft(div).validate(divisionRef{}, now)
		var qe *qingfeng.Error
		if !errors.As(err, &qe) || qe.Fields["location.division"].Code != "unknown_division" {
			t.Errorf("%q: %v", div, err)
		}
	}
}
