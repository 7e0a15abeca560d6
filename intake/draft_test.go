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

// TestInvisibleTextIsEmpty: a description, subject name or message of nothing but
// invisible characters (zero-width space, BOM, word joiner, ideographic space) is
// refused as missing, and such characters at the ends are trimmed.
func TestInvisibleTextIsEmpty(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	org := func(desc, name string) Draft {
		return Draft{Category: "other", Description: desc, Anonymous: true, Location: Location{Division: "330782"},
			Subject: Subject{Kind: SubjectOrganization, Organization: &OrgSubject{Name: name}}}
	}
	person := func(name string) Draft {
		return Draft{Category: "other", Description: "某事", Anonymous: true, Location: Location{Division: "330782"},
			Subject: Subject{Kind: SubjectPerson, Person: &PersonSubject{Name: name}}}
	}
	fieldCode := func(err error, field string) string {
		var qe *qingfeng.Error
		if !errors.As(err, &qe) {
			return ""
		}
		return qe.Fields[field].Code
	}
	for _, blank := range []string{"\u200b", " \u200b\ufeff ", "\u3000", "\u2060\u200d", "\u00ad"} {
		if _, _, err := org(blank, "某组织").validate(divisionRef{}, now); fieldCode(err, "description") != "required" {
			t.Errorf("description %q: %v", blank, err)
		}
		if _, _, err := org("某事", blank).validate(divisionRef{}, now); fieldCode(err, "subject.organization") != "required" {
			t.Errorf("organization name %q: %v", blank, err)
		}
		if _, _, err := person(blank).validate(divisionRef{}, now); fieldCode(err, "subject.person.name") != "required" {
			t.Errorf("person name %q: %v", blank, err)
		}
		// Refused before the store is touched: the service has none here.
		_, _, err := (&Service{}).PostNote(t.Context(), &Case{}, "reporter", "", "message", blank, "")
		if fieldCode(err, "body") != "required" {
			t.Errorf("message %q: %v", blank, err)
		}
	}
	d, _, err := org("\u200b协会乱收费\ufeff", "\u200b某组织").validate(divisionRef{}, now)
	if err != nil || d.Description != "协会乱收费" || d.Subject.Organization.Name != "某组织" {
		t.Errorf("trimmed: %q %q %v", d.Description, d.Subject.Organization.Name, err)
	}
}
