package routing

import (
	"context"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/intake"
)

func TestFirstVersionRoutes(t *testing.T) {
	org := func(code string) intake.Subject {
		return intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: code}}
	}
	person := intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "某某", Employer: "平阳县民政局"}}
	tests := []struct {
		name     string
		c        intake.Case
		unit     string
		unitName string
		fallback bool
		reason   string
	}{
		{"Yiwu trade association charging fees: its registering authority",
			intake.Case{Category: "arbitrary_fees", Subject: org("51330782MJ0000018J"), Location: intake.Location{Division: "330782"}},
			"330782-mz", "义乌市民政局", false, "义乌市"},
		{"provincial foundation misusing donations, reported from Yiwu: the province registered it",
			intake.Case{Category: "donation_misuse", Subject: org("53330000501874064B"), Location: intake.Location{Division: "330782001"}},
			"330000-mz", "浙江省民政厅", false, "浙江省"},
		{"official accepting gifts in Pingyang: county discipline commission",
			intake.Case{Category: "official_discipline", Subject: person, Location: intake.Location{Division: "330326"}},
			"330326-jw", "平阳县纪委监委", false, "平阳县"},
		{"unregistered association in Pingyang: where it acts",
			intake.Case{Category: "illegal_org", Subject: org(""), Location: intake.Location{Division: "330326"}},
			"330326-mz", "平阳县民政局", false, "活动所在地"},
		{"other: the intake office",
			intake.Case{Category: "other", Subject: person, Location: intake.Location{Division: "330102001"}},
			"330102-xf", "上城区纪委监委信访室", false, "信访室"},
		{"credit code of a retired division: its successor",
			intake.Case{Category: "dormant_org", Subject: org(withChecks("51330104", "MJ000003")), Location: intake.Location{Division: "330102"}},
			"330102-mz", "上城区民政局", false, "330104"},
		{"non-civil-affairs credit code: the report's division",
			intake.Case{Category: "arbitrary_fees", Subject: org("91330782MA28A1B2C3"), Location: intake.Location{Division: "330782"}},
			"330782-mz", "义乌市民政局", false, "按举报地点"},
		{"outside Zhejiang: provincial intake office, fallback",
			intake.Case{Category: "arbitrary_fees", Subject: org(""), Location: intake.Location{Division: "110101"}},
			"330000-xf", "浙江省纪委监委信访室", true, "不在浙江省"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := FirstVersion{}.Route(context.Background(), &tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if d.UnitID != tt.unit || d.UnitName != tt.unitName || d.Fallback != tt.fallback {
				t.Fatalf("got %s %s fallback=%v, want %s %s fallback=%v (%s)", d.UnitID, d.UnitName, d.Fallback, tt.unit, tt.unitName, tt.fallback, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.reason)
			}
			if d.Router == "" || d.DecidedAt.IsZero() {
				t.Errorf("decision lacks router or time: %+v", d)
			}
		})
	}
}

// withChecks appends both check characters to an 8-char prefix and 8-char org body.
func withChecks(prefix, body string) string {
	w := []int{3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, c := range body {
		v := int(c - '0')
		if c >= 'A' {
			v = int(c-'A') + 10
		}
		sum += v * w[i]
	}
	c17 := "0123456789X0"[11-sum%11 : 11-sum%11+1]
	s17 := prefix + body + c17
	const alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	total, pow := 0, 1
	for _, c := range s17 {
		total += strings.IndexRune(alphabet, c) * pow
		pow = pow * 3 % 31
	}
	c18 := (31 - total%31) % 31
	return s17 + string(alphabet[c18])
}

func TestLookupUnit(t *testing.T) {
	for id, want := range map[string]string{"330782-mz": "义乌市民政局", "330000-mz": "浙江省民政厅", "330700-jw": "金华市纪委监委", "330000-xf": "浙江省纪委监委信访室"} {
		if u, ok := LookupUnit(id); !ok || u.Name != want {
			t.Errorf("%s: %v %q, want %q", id, ok, u.Name, want)
		}
	}
	for _, bad := range []string{"", "330782", "330782-zz", "110101-mz", "330104-mz", "330102001-mz", "330782_mz"} {
		if _, ok := LookupUnit(bad); ok {
			t.Errorf("%q found", bad)
		}
	}
}

func TestReference(t *testing.T) {
	if c, ok := (Reference{}).ValidDivision("330782001"); !ok || c != "330782" {
		t.Errorf("township: %q %v", c, ok)
	}
	if _, ok := (Reference{}).ValidDivision("110101"); ok {
		t.Error("Beijing accepted")
	}
	if n, ok, valid := (Reference{}).CheckCreditCode(" 53330000501874064b "); !ok || !valid || n != "53330000501874064B" {
		t.Errorf("good code: %q %v %v", n, ok, valid)
	}
	if _, ok, valid := (Reference{}).CheckCreditCode("53330000501874064C"); !ok || valid {
		t.Errorf("check failure must be well-formed but invalid: %v %v", ok, valid)
	}
	if _, ok, _ := (Reference{}).CheckCreditCode("5333000050187406"); ok {
		t.Error("short code accepted")
	}
}
