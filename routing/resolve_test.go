package routing

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"义乌市民政局":                   "义乌市民政局",
		" 义乌　市 民政局 ":               "义乌市民政局",
		"义乌\u200b市\ufeff民政\u2060局": "义乌市民政局",
		"義烏市民政局":                   "义乌市民政局",
		"中共義烏市紀律檢查委員會":             "中共义乌市纪律检查委员会",
		"义乌市民政局（社会组织管理科）":          "义乌市民政局(社会组织管理科)",
		"义乌市民政局【社会组织管理科】":          "义乌市民政局(社会组织管理科)",
		"ＡＢＣ协会":                    "abc协会",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolve(t *testing.T) {
	units, err := NewUnits(DefaultUnits())
	if err != nil {
		t.Fatal(err)
	}
	sure := map[string]string{
		"义乌市民政局": "330782-mz", "义乌民政局": "330782-mz", "浙江省义乌市民政局": "330782-mz", "金华市义乌市民政局": "330782-mz",
		"义乌市民政局办公室": "330782-mz", "义乌市民政局（社会组织管理科）": "330782-mz", "义乌市民政局社会组织管理科": "330782-mz",
		"义乌市民政局　": "330782-mz", "义乌\u200b市民政局": "330782-mz", "義烏市民政局": "330782-mz", "义乌市民政厅": "330782-mz",
		"义乌市纪委": "330782-jw", "中共义乌市纪律检查委员会": "330782-jw", "义乌市监察委员会": "330782-jw",
		"中共義烏市紀律檢查委員會": "330782-jw", "中共义乌市纪律检查委员会 义乌市监察委员会": "330782-jw", "義烏市監察委員會": "330782-jw",
		"义乌市纪委监委信访室": "330782-xf", "派驻义乌民政局纪检监察组": "330782-mz-pz", "派駐義烏市民政局紀檢監察組": "330782-mz-pz",
		"浙江省民政厅": "330000-mz", "浙江民政局": "330000-mz", "杭州市上城区纪委": "330102-jw", "上城区民政局": "330102-mz",
		"景宁民政局": "331127-mz", "义乌市公安局交警大队": "330782-ga", "义乌市市场监管局": "330782-scjg",
	}
	for name, want := range sure {
		m := units.Resolve(name, "")
		if !m.Sure || m.Unit.ID != want {
			t.Errorf("Resolve(%q) = %v %q, want sure %s", name, m.Sure, m.Unit.ID, want)
		}
	}
	resembles := map[string]string{
		"义乌民政":           "330782-mz",
		"义乌市民政服务":        "330782-mz",
		"某某协会（义乌市民政局主管）": "330782-mz",
		"原义乌市民政局干部":      "330782-mz",
		"民政局":            "330782-mz", // no division: the case's place
		"义乌纪检":           "330782-jw",
		"义乌市纪委监委信访室":     "330782-jw", // the body the office belongs to
		"市民政局":           "330782-mz", // where people say 市 for their own county-level city
		"本市民政局":          "330700-mz", // … or the city
		"县纪委":            "330782-jw",
		"省民政厅":           "330000-mz",
		"义乌市民正局":         "330782-mz", // one character wrong
		"义乌市民政居办公室":      "330782-mz",
		"义乌市市场监督管局":      "330782-scjg", // one missing
		"义务市民政局":         "330782-mz",   // the place misspelt
		"yiwu民政局":        "330782-mz",   // the place in pinyin
		"某某民政服务中心":       "330782-mz",   // no place: the case's
		"义乌市明政局社会组织管理科":  "330782-mz",
		"金化市民政局":         "330700-mz",
		"义务市纪委":          "330782-jw",
		"中共义务市纪律检查委员会":   "330782-jw",
		"义务市民政局社会组织管理科":  "330782-mz",
	}
	for name, want := range resembles {
		m := units.Resolve(name, "330782")
		found := false
		for _, r := range m.Resembles {
			found = found || r.Unit.ID == want
		}
		if !found || m.Sure && m.Unit.ID == want {
			t.Errorf("Resolve(%q): sure=%v %q, resembles %v; want it to resemble %s", name, m.Sure, m.Unit.ID, m.Resembles, want)
		}
	}
	for _, name := range []string{"义乌市某某小学", "义乌市稠城街道办事处", "浙江省爱心事业基金会", "上海市民政局", "某某科技有限公司",
		"义乌市人民政府办公室", "义乌市市民政务服务中心", "浙江省人民政府"} {
		if m := units.Resolve(name, "330782"); m.Sure || len(m.Resembles) > 0 {
			t.Errorf("Resolve(%q) = %v %q %v, want nothing", name, m.Sure, m.Unit.ID, m.Resembles)
		}
	}
}

func TestUnitAliases(t *testing.T) {
	us := DefaultUnits()
	us = append(us, RegistryUnit{Unit: Unit{ID: "330782-wl", Name: "义乌市文化和广电旅游体育局", Kind: KindSupervisor, Division: "330782", Level: LevelCounty},
		Aliases: []string{"文旅局", "义乌市文广旅体局"}, Active: true})
	units, err := NewUnits(us)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"义乌市文化和广电旅游体育局", "义乌文旅局", "義烏市文廣旅體局", "浙江省义乌市文旅局办公室"} {
		if m := units.Resolve(name, ""); !m.Sure || m.Unit.ID != "330782-wl" {
			t.Errorf("Resolve(%q) = %v %q %v, want the alias's unit", name, m.Sure, m.Unit.ID, m.Resembles)
		}
	}
	if m := units.Resolve("平阳文旅局", ""); m.Sure {
		t.Errorf("an alias without a division is the unit's own division's: %q", m.Unit.ID)
	}
	// The alias alone names no place: never the unit for sure, wherever the case is;
	// in the unit's own place it still resembles it (and so is never sent the case).
	for _, place := range []string{"", "330326", "330782"} {
		if m := units.Resolve("文旅局", place); m.Sure {
			t.Errorf("Resolve(文旅局, %q): sure %q from a place-less alias", place, m.Unit.ID)
		}
	}
	if m := units.Resolve("文旅局", "330782"); !slices.ContainsFunc(m.Resembles, func(r Resemblance) bool { return r.Unit.ID == "330782-wl" }) {
		t.Errorf("Resolve(文旅局, 330782) does not resemble 330782-wl: %+v", m)
	}
}

// s2t turns simplified characters into a traditional form with the same table,
// reversed: for the generated variants of the property test.
func s2t() map[rune]rune {
	out := map[rune]rune{}
	for t, s := range traditionalToSimplified() {
		if _, ok := out[s]; !ok || t < out[s] {
			out[s] = t
		}
	}
	return out
}

// nameVariants writes the name of default unit u in a way a reporter might: with or
// without 浙江省, the city, 中共, 市/县/区; the kind in another of its official forms; an
// internal office; spaces, invisible characters, full-width brackets, traditional script.
func nameVariants(rng *rand.Rand, u RegistryUnit, units *Units, n int) []string {
	trad := s2t()
	var out []string
	for range n {
		name := baseVariant(rng, u, units)
		if rng.IntN(3) == 0 {
			name = unsureVariant(rng, u, units, name)
		}
		out = append(out, decorate(rng, trad, name))
	}
	return out
}

// unsureVariant writes a name that only resembles u: inside a longer name, followed by
// something that is not an office, or with its kind cut short (义乌民政).
func unsureVariant(rng *rand.Rand, u RegistryUnit, units *Units, name string) string {
	short := map[UnitKind][]string{KindCivilAffairs: {"民政", "民政办"}, KindDiscipline: {"纪检", "纪检监察"}, KindMarket: {"市场监管", "市监"},
		KindPolice: {"公安"}, KindFinance: {"财政"}, KindIntakeOffice: {"纪委信访", "信访"}}
	switch rng.IntN(5) {
	case 0:
		return "原" + name
	case 1:
		return "某某协会（" + name + "主管）"
	case 2:
		return name + "下属单位"
	case 3:
		if w := short[u.Kind]; len(w) > 0 {
			return divisionWritings(rng, u.Division) + w[rng.IntN(len(w))]
		}
	}
	return "退休前在" + name + "工作"
}

func divisionWritings(rng *rand.Rand, code string) string {
	d, _ := LookupDivision(code)
	name := d.Name
	if rng.IntN(2) == 0 {
		for _, suf := range []string{"省", "市", "县", "区"} {
			if short, ok := strings.CutSuffix(name, suf); ok && utf8.RuneCountInString(short) >= 2 {
				name = short
			}
		}
		if short, ok := strings.CutSuffix(d.Name, "畲族自治县"); ok {
			name = short
		}
	}
	var prefix string
	if d.Level == LevelCounty && rng.IntN(2) == 0 {
		p, _ := LookupDivision(d.Parent)
		prefix = []string{p.Name, strings.TrimSuffix(p.Name, "市")}[rng.IntN(2)]
	}
	if d.Level != LevelProvince && rng.IntN(3) == 0 {
		prefix = []string{"浙江省", "浙江"}[rng.IntN(2)] + prefix
	}
	return prefix + name
}

func baseVariant(rng *rand.Rand, u RegistryUnit, units *Units) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	div := divisionWritings(rng, u.Division)
	var name string
	switch u.Kind {
	case KindDiscipline:
		name = pick("中共", "") + div + pick("纪委", "纪委监委", "纪律检查委员会", "监察委员会", "纪检监察委员会", "纪律检查委员会"+div+"监察委员会", "纪委 监委")
	case KindIntakeOffice:
		name = pick("中共", "") + div + pick("纪委", "纪委监委", "纪律检查委员会", "监察委员会") + "信访室"
	case KindCivilAffairs:
		name = div + pick("民政局", "民政厅")
	case KindMarket:
		name = div + pick("市场监督管理局", "市场监管局")
	case KindPolice:
		name = div + pick("公安局", "公安厅")
	case KindFinance:
		name = div + pick("财政局", "财政厅")
	case KindStationed:
		host, _ := units.Get(u.StationedAt)
		return pick("派驻", "驻", "中共"+div+"派驻") + baseVariant(rng, host, units) + "纪检监察组"
	default:
		name = u.Name
	}
	return name + pick("", "", "办公室", "科", "室", "所", "（社会组织管理科）", "(办公室)", "社会组织管理科", "综合科")
}

func decorate(rng *rand.Rand, trad map[rune]rune, s string) string {
	var b strings.Builder
	toTrad := rng.IntN(3) == 0
	for _, r := range s {
		if rng.IntN(8) == 0 {
			b.WriteString([]string{"\u3000", " ", "\u200b", "\ufeff", "\u2060", "\u00ad"}[rng.IntN(6)])
		}
		if t, ok := trad[r]; ok && toTrad {
			r = t
		}
		switch {
		case r == '(' && rng.IntN(2) == 0:
			r = '（'
		case r == ')' && rng.IntN(2) == 0:
			r = '）'
		}
		b.WriteRune(r)
	}
	return b.String()
}

var recusalSeed = flag.Uint64("recusal.seed", 20261201, "seed of TestRecusalProperty's generated spellings")

// TestRecusalProperty walks every default unit as the employer of a person reported
// (and as a reported "organization"), in every category, through generated spellings
// of its name, with the case placed in the unit's own division (where place-based rules
// would choose it): the case must never go to that unit, nor, for its principal leader,
// to its 派驻组.
func TestRecusalProperty(t *testing.T) {
	e := testEngine(t)
	seed := *recusalSeed
	rng := rand.New(rand.NewPCG(seed, seed))
	all := e.Units.All()
	variantsPer := 4
	if testing.Short() {
		variantsPer = 1
	}
	decisions, unsure := 0, 0
	for _, u := range all {
		pz, hasPZ := e.Units.StationedAt(u.ID)
		for _, name := range nameVariants(rng, u, e.Units, variantsPer) {
			m := e.Units.Resolve(name, "")
			isSure := m.Sure && m.Unit.ID == u.ID
			resembled := false
			for _, r := range m.Resembles {
				resembled = resembled || r.Unit.ID == u.ID
			}
			if !isSure && !resembled {
				t.Errorf("seed %d: %q (a spelling of %s %s) neither names nor resembles it: %v %q", seed, name, u.ID, u.Name, m.Sure, m.Unit.ID)
			}
			if !isSure {
				unsure++
			}
			place := u.Division
			if rng.IntN(4) == 0 {
				place = all[rng.IntN(len(all))].Division
			}
			for _, cat := range intake.Categories {
				position := []string{"科员", "副局长", "局长", "书记", "主任", ""}[rng.IntN(6)]
				cases := []*intake.Case{personCase(cat.Code, place, "张某", position, name)}
				if position == "" {
					cases = append(cases, orgCase(cat.Code, place, "", name))
				}
				for _, c := range cases {
					d := e.Decide(c)
					decisions++
					if d.UnitID == u.ID {
						t.Fatalf("seed %d: %s about %q (position %q) at %s went to %s itself:\n%s", seed, cat.Code, name, position, place, u.Name, explainDecision(d))
					}
					if hasPZ && IsPrincipalLeader(position) && d.UnitID == pz.ID && c.Subject.Kind == intake.SubjectPerson {
						t.Fatalf("seed %d: %s about the principal leader of %q went to its 派驻组 %s:\n%s", seed, cat.Code, name, pz.Name, explainDecision(d))
					}
					if d.UnitID == "" {
						t.Fatalf("seed %d: %s about %q left without an owner", seed, cat.Code, name)
					}
				}
			}
		}
	}
	t.Logf("%d units, %d decisions, %d spellings only resembled", len(all), decisions, unsure)
}

func explainDecision(d intake.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  → %s (%s) %s\n", d.UnitID, d.RuleID, d.Reason)
	for _, c := range d.Candidates {
		fmt.Fprintf(&b, "  %s %s chosen=%v %s %s\n", c.UnitID, c.RuleID, c.Chosen, c.Excluded, c.Detail)
	}
	return b.String()
}

// TestPossibleRecusal: an unsure match excludes the unit with possible_recusal, says so,
// and ordinary cases are not touched.
func TestPossibleRecusal(t *testing.T) {
	e := testEngine(t)
	d := e.Decide(personCase("arbitrary_fees", "330782", "张某", "科员", "义乌民政"))
	if d.UnitID == "330782-mz" {
		t.Fatalf("went to the unit the employer resembles:\n%s", explainDecision(d))
	}
	found := false
	for _, c := range d.Candidates {
		if c.UnitID == "330782-mz" && c.Excluded == "possible_recusal" {
			found = strings.Contains(c.Detail, "义乌民政") && strings.Contains(c.Detail, "义乌市民政局")
		}
	}
	if !found {
		t.Errorf("no possible_recusal naming what resembled what:\n%s", explainDecision(d))
	}
	if d.Inputs["employer_possible_units"] != "330782-mz" {
		t.Errorf("inputs %v", d.Inputs)
	}
	// Principal leader of a unit the employer resembles: not its 派驻组 either.
	d = e.Decide(personCase("official_discipline", "330782", "王某", "局长", "义乌民政"))
	if d.UnitID == "330782-mz" || d.UnitID == "330782-mz-pz" {
		t.Fatalf("principal leader:\n%s", explainDecision(d))
	}
	// A registered organization whose name has a kind word is not a suspect.
	e.Orgs.Put(Organization{CreditCode: "51330782MJ0000034C", Name: "义乌市民政服务协会", Type: "社会团体", RegDivision: "330782", Status: OrgNormal})
	d = e.Decide(personCase("arbitrary_fees", "330782", "李某", "会长", "义乌市民政服务协会"))
	if d.UnitID != "330782-mz" || countExcluded(d.Candidates, "possible_recusal") > 0 {
		t.Errorf("staff of a registered organization:\n%s", explainDecision(d))
	}
}

func TestOrgsByNameNormalized(t *testing.T) {
	orgs := NewOrgs()
	orgs.Put(Organization{CreditCode: "51330782MJ0000018J", Name: "义乌市某行业协会", Status: OrgNormal})
	for _, name := range []string{"义乌市某行业协会", " 義烏市某行業協會\u200b", "义乌市\u3000某行业协会"} {
		if o, ok := orgs.ByName(name); !ok || o.CreditCode != "51330782MJ0000018J" {
			t.Errorf("ByName(%q) = %v %v", name, o.CreditCode, ok)
		}
	}
	// Renamed: the old name no longer finds it; two organizations sharing a name, neither.
	orgs.Put(Organization{CreditCode: "51330782MJ0000018J", Name: "义乌市某商会", Status: OrgNormal})
	if _, ok := orgs.ByName("义乌市某行业协会"); ok {
		t.Error("old name still found")
	}
	orgs.Put(Organization{CreditCode: "51330782MJ0000026E", Name: "義烏市某商會", Status: OrgNormal})
	if o, ok := orgs.ByName("义乌市某商会"); ok {
		t.Errorf("a name two organizations share found %s", o.CreditCode)
	}
}

func TestImportedUnitAliases(t *testing.T) {
	in := `[{"id":"330782-wl","name":"义乌市文化和广电旅游体育局","kind":"zg","division":"330782","aliases":[" 义乌文旅局 ","義烏文旅局","义乌市文化和广电旅游体育局",""]}]`
	var got []RegistryUnit
	err := ReadUnitsJSON(strings.NewReader(in), func(_ int, u RegistryUnit, errs map[string]qingfeng.FieldError) error {
		if errs != nil {
			t.Fatalf("row errors %v", errs)
		}
		n, errs := NormalizeUnit(u)
		if errs != nil {
			t.Fatalf("normalize: %v", errs)
		}
		got = append(got, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Equal(got[0].Aliases, []string{"义乌文旅局"}) {
		t.Fatalf("aliases trimmed and deduplicated as normalised: %+v", got)
	}
	long := RegistryUnit{Unit: Unit{ID: "x", Name: "某单位", Kind: KindOther}, Aliases: []string{strings.Repeat("名", MaxAliasRunes+1)}}
	if _, errs := NormalizeUnit(long); errs["aliases"].Code != "too_long" {
		t.Errorf("too long: %v", errs)
	}
	many := RegistryUnit{Unit: Unit{ID: "x", Name: "某单位", Kind: KindOther}}
	for i := range MaxAliases + 1 {
		many.Aliases = append(many.Aliases, fmt.Sprintf("别名%d", i))
	}
	if _, errs := NormalizeUnit(many); errs["aliases"].Code != "too_many" {
		t.Errorf("too many: %v", errs)
	}
}

// TestRecusalMisspeltPlace: every default unit of a city or county, its name written
// with one character of its division wrong (义务市民政局, 中共义务市纪律检查委员会), as
// the employer of a person reported in the unit's own division: the case never goes to
// that unit. A misspelt division parses as none, so this is read against the place.
func TestRecusalMisspeltPlace(t *testing.T) {
	e := testEngine(t)
	seed := *recusalSeed
	rng := rand.New(rand.NewPCG(seed, seed+1))
	wrong := []rune("务吴午无舞武雾捂")
	tried := 0
	for _, u := range e.Units.All() {
		d, ok := LookupDivision(u.Division)
		if !ok || d.Level == LevelProvince {
			continue
		}
		for range 3 {
			v := baseVariant(rng, u, e.Units)
			if !strings.Contains(v, d.Name) {
				continue
			}
			name := []rune(d.Name)
			i := rng.IntN(len(name))
			r := wrong[rng.IntN(len(wrong))]
			if r == name[i] {
				continue
			}
			name[i] = r
			v = strings.Replace(v, d.Name, string(name), 1)
			for _, cat := range intake.Categories {
				tried++
				dec := e.Decide(personCase(cat.Code, u.Division, "张某", "科员", v))
				if dec.UnitID == u.ID {
					t.Fatalf("seed %d: %s about someone at %q (%s misspelt) went to %s itself:\n%s", seed, cat.Code, v, u.Name, u.ID, explainDecision(dec))
				}
			}
		}
	}
	if tried == 0 {
		t.Fatal("no spelling generated")
	}
	t.Logf("%d decisions", tried)
}
