package routing

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// BenchmarkDecide is one routing decision with 10,000 rules and 100,000 organizations
// loaded, in process. It reports the median and p99 of single decisions over b.N cases
// of random categories, places and subjects.
//
//	go test -run '^$' -bench Decide -benchtime 200000x ./routing/
func BenchmarkDecide(b *testing.B) {
	units, err := NewUnits(DefaultUnits())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var counties []string
	for _, d := range Divisions() {
		if d.Level == LevelCounty {
			counties = append(counties, d.Code)
		}
	}
	orgs := NewOrgs()
	codes := make([]string, 0, 100_000)
	for i := range 100_000 {
		div := counties[rng.IntN(len(counties))]
		code := benchCreditCode(div, i)
		codes = append(codes, code)
		orgs.Put(Organization{CreditCode: code, Name: fmt.Sprintf("测试组织%06d", i), Type: "社会团体", RegDivision: div, Status: OrgNormal})
	}
	set := DefaultRules()
	kinds := []UnitKind{KindCivilAffairs, KindMarket, KindPolice, KindFinance, KindDiscipline, KindIntakeOffice}
	for i := range 10_000 - len(set.Rules) {
		cat := intake.Categories[rng.IntN(len(intake.Categories))].Code
		set.Rules = append(set.Rules, Rule{ID: fmt.Sprintf("bench-%05d", i), Name: "bench", Categories: []intake.Category{cat},
			DivisionPrefix: counties[rng.IntN(len(counties))], SubjectKinds: []SubjectRole{[]SubjectRole{RoleOrganization, RoleOfficial, RoleOrgStaff}[rng.IntN(3)]},
			Primary: Target{Relation: RelKindForDivision, Kind: kinds[rng.IntN(len(kinds))]}, Priority: rng.IntN(300), Version: 1})
	}
	e := NewEngine(units, orgs, set)
	cases := make([]*intake.Case, 1024)
	for i := range cases {
		cat := intake.Categories[rng.IntN(len(intake.Categories))].Code
		div := counties[rng.IntN(len(counties))]
		if i%3 == 0 {
			cases[i] = personCase(cat, div, "某某", []string{"局长", "科员"}[i%2], div[:6]+"不存在的单位")
			if u, ok := units.OfKind(KindCivilAffairs, div); ok {
				cases[i].Subject.Person.Employer = u.Name
			}
		} else {
			cases[i] = orgCase(cat, div, codes[rng.IntN(len(codes))], "")
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		d := e.Decide(cases[i%len(cases)])
		lat = append(lat, time.Since(start))
		if d.UnitID == "" {
			b.Fatal("no owner")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "median-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// benchCreditCode makes a well-formed 民政 credit code registered at div.
func benchCreditCode(div string, i int) string {
	body := fmt.Sprintf("51%sMJ%06d", div, i%1_000_000)
	body += string(orgCodeCheckChar(body[8:16]))
	return body + string(creditCheckChar(body))
}
