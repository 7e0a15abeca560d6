package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

func testEngine(t testing.TB) *Engine {
	t.Helper()
	units, err := NewUnits(DefaultUnits())
	if err != nil {
		t.Fatal(err)
	}
	orgs := NewOrgs()
	orgs.Put(
		Organization{CreditCode: "51330782MJ0000018J", Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782", Status: OrgNormal},
		Organization{CreditCode: "53330000501874064B", Name: "浙江省爱心事业基金会", Type: "基金会", RegDivision: "330000", Status: OrgNormal},
		Organization{CreditCode: "52330326MJ0000026B", Name: "平阳县某培训中心", Type: "民办非企业单位/社会服务机构", RegDivision: "330326",
			Status: OrgNormal, SupervisoryUnit: "330326-cz"},
	)
	e := NewEngine(units, orgs, DefaultRules())
	e.Now = func() time.Time { return time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC) }
	return e
}

func orgCase(cat intake.Category, div, code, name string) *intake.Case {
	return &intake.Case{Category: cat, Location: intake.Location{Division: div},
		Subject: intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: code, Name: name}}}
}

func personCase(cat intake.Category, div, name, position, employer string) *intake.Case {
	return &intake.Case{Category: cat, Location: intake.Location{Division: div},
		Subject: intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: name, Position: position, Employer: employer}}}
}

func TestDefaultUnits(t *testing.T) {
	us := DefaultUnits()
	units, err := NewUnits(us)
	if err != nil {
		t.Fatal(err)
	}
	divs := 0
	for _, d := range Divisions() {
		if d.Level != LevelTownship {
			divs++
		}
	}
	if divs != 1+11+90 {
		t.Fatalf("%d province, city and county divisions, want 102", divs)
	}
	if len(us) != divs*7 {
		t.Errorf("%d units, want %d (6 kinds and a 派驻组 per division)", len(us), divs*7)
	}
	for id, want := range map[string]string{
		"330000-mz": "浙江省民政厅", "330782-mz": "义乌市民政局", "330326-ga": "平阳县公安局",
		"330102-jw": "杭州市上城区纪委监委", "330300-scjg": "温州市市场监督管理局", "330300-mz-pz": "派驻温州市民政局纪检监察组",
		"330000-xf": "浙江省纪委监委信访室",
	} {
		if u, ok := units.Get(id); !ok || u.Name != want {
			t.Errorf("unit %s = %q, want %q", id, u.Name, want)
		}
	}
	if u, _ := units.Get("330782-mz"); u.Parent != "330700-mz" {
		t.Errorf("义乌市民政局's parent = %q", u.Parent)
	}
	if u, _ := units.Get("330300-mz-pz"); u.Parent != "330300-jw" || u.StationedAt != "330300-mz" {
		t.Errorf("派驻组 = %+v", u)
	}
}

// TestSeedCases routes the realistic cases issue 3 names through the default rules.
func TestSeedCases(t *testing.T) {
	e := testEngine(t)
	tests := []struct {
		name     string
		c        *intake.Case
		unit     string
		informed []string
		recusal  bool
	}{
		{"a Yiwu trade association charging member firms",
			orgCase("arbitrary_fees", "330782", "51330782MJ0000018J", "义乌市某行业协会"), "330782-mz", []string{"330782-scjg"}, false},
		{"a county 民政局 official accepting gifts",
			personCase("official_discipline", "330326", "王某", "社会组织管理科科长", "平阳县民政局"), "330326-mz-pz", nil, false},
		{"a provincial foundation misusing donations",
			orgCase("donation_misuse", "330106", "53330000501874064B", ""), "330000-mz", nil, false},
		{"an unregistered association collecting fees in 平阳县",
			orgCase("illegal_org", "330326", "", "平阳县某某联谊会"), "330326-mz", []string{"330326-ga"}, false},
		{"the same, reported as arbitrary fees (no credit code)",
			orgCase("arbitrary_fees", "330326", "", "平阳县某某联谊会"), "330326-mz", nil, false},
		{"the principal leader of a city's 民政局",
			personCase("official_discipline", "330302", "李某", "局长", "温州市民政局"), "330300-jw", nil, true},
		{"a deputy head of the same bureau stays with the 派驻组",
			personCase("official_discipline", "330302", "赵某", "副局长", "温州市民政局"), "330300-mz-pz", nil, false},
		{"the department hosting a 派驻组 itself",
			orgCase("formalism", "330782", "", "义乌市民政局"), "330782-mz-pz", nil, false},
		{"an official whose employer is not in the registry",
			personCase("official_corruption", "330782001", "钱某", "所长", "义乌市某某所"), "330782-jw", nil, false},
		{"governance: to the business supervisory unit, registration authority informed",
			orgCase("governance_violation", "330326", "52330326MJ0000026B", ""), "330326-cz", []string{"330326-mz"}, false},
		{"staff of an organization, found by its name",
			personCase("donation_misuse", "330106", "孙某", "秘书长", "浙江省爱心事业基金会"), "330000-mz", nil, false},
		{"other: the intake office of the place",
			orgCase("other", "330782", "", "某单位"), "330782-xf", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Route(context.Background(), tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if d.UnitID != tt.unit || d.Fallback {
				t.Fatalf("routed to %s (%s), fallback %v: %s\n%+v", d.UnitID, d.UnitName, d.Fallback, d.Reason, d.Candidates)
			}
			if d.RuleID == "" || d.RuleVersion != 1 || d.Reason == "" || !d.Candidates[0].Chosen {
				t.Errorf("decision lacks its record: %+v", d)
			}
			var informed []string
			for _, u := range d.Informed {
				informed = append(informed, u.ID)
			}
			if fmt.Sprint(informed) != fmt.Sprint(tt.informed) {
				t.Errorf("informed %v, want %v", informed, tt.informed)
			}
			if got := countExcluded(d.Candidates, "recusal") > 0; got != tt.recusal {
				t.Errorf("recusal recorded %v, want %v: %+v", got, tt.recusal, d.Candidates)
			}
		})
	}
}

func TestRecusalNeverRoutesToTheSubjectsUnit(t *testing.T) {
	e := testEngine(t)
	// Every unit of the registry as the employer of a principal leader and of a staff
	// member, for a discipline category: the case never lands on the employer, nor on a
	// 派驻组 stationed at it when the subject leads it.
	for _, u := range e.Units.All() {
		for _, pos := range []string{"局长", "科员"} {
			c := personCase("official_discipline", u.Division, "某某", pos, u.Name)
			d := e.Decide(c)
			if d.UnitID == u.ID {
				t.Fatalf("%s of %s routed to their own unit", pos, u.Name)
			}
			owner, _ := e.Units.Get(d.UnitID)
			if pos == "局长" && owner.StationedAt == u.ID {
				t.Fatalf("principal leader of %s routed to its 派驻组", u.Name)
			}
			if d.UnitID == "" {
				t.Fatalf("%s of %s left without an owner", pos, u.Name)
			}
		}
	}
}

func TestFallback(t *testing.T) {
	e := testEngine(t)
	var alerts []string
	e.Alert = alertFunc(func(_ context.Context, c *intake.Case, reason string) { alerts = append(alerts, reason+"@"+c.Number) })

	// Outside Zhejiang: the provincial intake office.
	d, _ := e.Route(context.Background(), orgCase("arbitrary_fees", "110101", "", "北京某协会"))
	if !d.Fallback || d.FallbackReason != "outside_zhejiang" || d.UnitID != "330000-xf" {
		t.Errorf("outside Zhejiang: %+v", d)
	}
	// Outside Zhejiang as intake holds it: the province's code, the reporter's kept.
	c := personCase("other", ProvinceCode, "某人", "", "")
	c.Location.ReportedDivision = "310101"
	d = e.Decide(c)
	if !d.Fallback || d.FallbackReason != "outside_zhejiang" || d.UnitID != "330000-xf" ||
		!strings.Contains(d.Reason, "310101") || d.Inputs["reported_division"] != "310101" {
		t.Errorf("held under the province: %+v", d)
	}
	// An official of a Zhejiang unit, for something done elsewhere: management authority.
	c = personCase("official_discipline", ProvinceCode, "某人", "科员", "义乌市民政局")
	c.Location.ReportedDivision = "310101"
	if d = e.Decide(c); d.UnitID != "330782-mz-pz" || d.Fallback {
		t.Errorf("official of a Zhejiang unit, outside Zhejiang: %s %s", d.UnitID, d.Reason)
	}
	// An organization registered by 民政部 (100000): out of jurisdiction, then the
	// place's registration authority by the lower-priority rule.
	d, _ = e.Route(context.Background(), orgCase("donation_misuse", "330782", "53100000500000003W", ""))
	if d.UnitID != "330782-mz" || !hasExcluded(d, "out_of_jurisdiction") {
		t.Errorf("registered by 民政部: %s %+v", d.UnitID, d.Candidates)
	}

	// No rule: a rule set with none for the category.
	e.SetRules(RuleSet{Version: 2})
	d, _ = e.Route(context.Background(), orgCase("arbitrary_fees", "330782001", "", "某协会"))
	if !d.Fallback || d.FallbackReason != "no_rule" || d.UnitID != "330782-xf" || d.RuleVersion != 2 {
		t.Errorf("no rule: %+v", d)
	}
	// A new case is alerted on once stored (Placed), with its number: routing it
	// alerted nobody, since it has no number yet and its filing may still fail. A
	// stored case re-routed to the fallback is alerted on at once.
	if len(alerts) != 0 {
		t.Errorf("alerted before the case was stored: %v", alerts)
	}
	stored := orgCase("arbitrary_fees", "330782001", "", "某协会")
	stored.Number, stored.Decision = "QF-330782-2026-000009", d
	e.Placed(context.Background(), stored)
	rerouted := orgCase("arbitrary_fees", "330782001", "", "某协会")
	rerouted.Number = "QF-330782-2026-000010"
	e.Route(context.Background(), rerouted)
	if fmt.Sprint(alerts) != "[no_rule@QF-330782-2026-000009 no_rule@QF-330782-2026-000010]" {
		t.Errorf("alerts %v", alerts)
	}

	// An inactive destination: its parent takes the case.
	units := DefaultUnits()
	for i := range units {
		if units[i].ID == "330782-mz" {
			units[i].Active = false
		}
		if units[i].ID == "330782-xf" || units[i].ID == "330700-xf" {
			units[i].Active = false
		}
	}
	if err := e.Units.Replace(units); err != nil {
		t.Fatal(err)
	}
	e.SetRules(DefaultRules())
	d, _ = e.Route(context.Background(), orgCase("arbitrary_fees", "330782", "51330782MJ0000018J", ""))
	if d.UnitID != "330700-mz" || !hasExcluded(d, "inactive") {
		t.Errorf("inactive destination: %s %+v", d.UnitID, d.Candidates)
	}
	// No intake office at county or city level: the province's.
	e.SetRules(RuleSet{Version: 3})
	d, _ = e.Route(context.Background(), orgCase("other", "330782", "", "x"))
	if d.UnitID != "330000-xf" || !d.Fallback {
		t.Errorf("nearest intake office: %+v", d)
	}
}

func hasExcluded(d intake.Decision, code string) bool { return countExcluded(d.Candidates, code) > 0 }

type alertFunc func(context.Context, *intake.Case, string)

func (f alertFunc) Fallback(ctx context.Context, c *intake.Case, reason string) { f(ctx, c, reason) }

func TestRulePriorityAndVersions(t *testing.T) {
	e := testEngine(t)
	set := DefaultRules()
	// Version 2 adds a Yiwu-specific rule: arbitrary fees there go to 市场监管 first.
	set.Version = 2
	set.Rules = append(set.Rules, Rule{ID: "yiwu-fees", Name: "义乌涉企收费由市场监管牵头", Categories: []intake.Category{"arbitrary_fees"},
		DivisionPrefix: "330782", Primary: Target{Relation: RelKindForDivision, Kind: KindMarket}, Priority: 200, Version: 2,
		ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	e.SetRules(set)
	c := orgCase("arbitrary_fees", "330782", "51330782MJ0000018J", "")
	d := e.Decide(c)
	if d.UnitID != "330782-scjg" || d.RuleID != "yiwu-fees" || d.RuleVersion != 2 {
		t.Fatalf("version 2: %+v", d)
	}
	if !hasExcluded(d, "lower_priority") {
		t.Errorf("the default rule is not recorded as lower priority: %+v", d.Candidates)
	}
	// Elsewhere the Yiwu rule does not apply.
	if d := e.Decide(orgCase("arbitrary_fees", "330326", "51330782MJ0000018J", "")); d.RuleID != "default-arbitrary-fees" {
		t.Errorf("outside Yiwu: %s", d.RuleID)
	}
	// Version 3 retires it.
	set.Version = 3
	set.Rules[len(set.Rules)-1].RetiredIn = 3
	e.SetRules(set)
	if d := e.Decide(c); d.UnitID != "330782-mz" || d.RuleVersion != 3 {
		t.Errorf("after retiring: %+v", d)
	}
	// A case received before the rule's valid_from is not matched by it.
	set.Rules[len(set.Rules)-1].RetiredIn = 0
	e.SetRules(set)
	old := *c
	old.ReceivedAt = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if d := e.Decide(&old); d.RuleID == "yiwu-fees" {
		t.Error("a rule matched a case received before its valid_from")
	}
}

func TestRuleValidate(t *testing.T) {
	units, _ := NewUnits(DefaultUnits())
	good := Rule{Name: "x", Categories: []intake.Category{"other"}, Primary: Target{Relation: RelFixed, Unit: "330782-xf"}}
	if err := good.Validate(units); err != nil {
		t.Fatal(err)
	}
	bad := Rule{Categories: []intake.Category{"nope"}, SubjectKinds: []SubjectRole{"robot"}, OrgTypes: []string{"公司"},
		DivisionPrefix: "11", DivisionLevel: "galaxy", Primary: Target{Relation: RelFixed, Unit: "nowhere"},
		Inform: []Target{{Relation: "sideways"}, {Relation: RelKindForDivision, Kind: "zz", Division: "999999"}}}
	err := bad.Validate(units)
	if err == nil {
		t.Fatal("a bad rule validated")
	}
	var qe *qingfeng.Error
	if !errors.As(err, &qe) || qe.Code != qingfeng.EINVALID {
		t.Fatalf("error %v", err)
	}
	for _, f := range []string{"name", "categories[0]", "subject_kinds[0]", "org_types[0]", "division_prefix", "division_level",
		"primary.unit", "inform[0].relation", "inform[1].kind", "inform[1].division"} {
		if _, ok := qe.Fields[f]; !ok {
			t.Errorf("no error for %s", f)
		}
	}
}

// TestEveryMatchingRuleExplained: whatever rules the set holds and whatever the case,
// every rule whose conditions the case meets is among the decision's candidates (the
// chosen one, or excluded with a reason) — the explanation an admin reads never leaves
// out a rule that applied. A losing rule whose own target did not resolve used to be
// dropped: a rule just written in the console then seemed not to apply at all.
func TestEveryMatchingRuleExplained(t *testing.T) {
	e := testEngine(t)
	rng := rand.New(rand.NewPCG(14, 2))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	prefixes := []string{"", "33", "3309", "330922", "330782", "330326"}
	relations := []Relation{RelFixed, RelRegistrationAuthority, RelSupervisoryUnit, RelDisciplineAtLevel, RelStationedAtEmployer, RelKindForDivision}
	kinds := []UnitKind{KindDiscipline, KindCivilAffairs, KindMarket, KindFinance, KindSupervisor}
	var cats []string
	for _, c := range intake.Categories {
		cats = append(cats, string(c.Code))
	}
	for round := range 200 {
		set := DefaultRules()
		set.Version = 2
		for i := range 1 + rng.IntN(6) {
			r := Rule{ID: fmt.Sprintf("r%d-%d", round, i), Name: fmt.Sprintf("规则%d", i), DivisionPrefix: pick(prefixes),
				Primary: Target{Relation: relations[rng.IntN(len(relations))]}, Priority: rng.IntN(300) - 100, Version: 2,
				ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			if rng.IntN(3) > 0 {
				r.Categories = []intake.Category{intake.Category(pick(cats))}
			}
			switch r.Primary.Relation {
			case RelFixed:
				r.Primary.Unit = pick([]string{"330922-mz", "330782-jw", "330000-xf"})
			case RelKindForDivision:
				r.Primary.Kind = kinds[rng.IntN(len(kinds))]
				r.Primary.Division = pick([]string{"place", "registration", "employer", "330100"})
			}
			set.Rules = append(set.Rules, r)
		}
		e.SetRules(set)
		for range 10 {
			cat, div := intake.Category(pick(cats)), pick([]string{"330922", "330782", "330326", "330102"})
			var c *intake.Case
			if rng.IntN(2) == 0 {
				c = orgCase(cat, div, pick([]string{"", "51330782MJ0000018J", "52330326MJ0000026B"}), pick([]string{"", "嵊泗县某僵尸协会", "义乌市某行业协会"}))
			} else {
				c = personCase(cat, div, "张三", pick([]string{"", "局长", "会长"}), pick([]string{"", "义乌市民政局", "嵊泗县财政局"}))
			}
			d := e.Decide(c)
			listed := map[string]bool{}
			for _, cand := range d.Candidates {
				listed[cand.RuleID] = true
			}
			for _, r := range e.current.Load().candidates(e.facts(c)) {
				if !listed[r.ID] {
					t.Fatalf("round %d: rule %s (%+v) matched %+v but is not among the candidates %+v", round, r.ID, r, c, d.Candidates)
				}
			}
		}
	}
}
