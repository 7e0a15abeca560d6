package storetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// orgKey is the search key of what staff typed (routing.ParseOrgQuery).
func orgKey(t *testing.T, q string) string {
	t.Helper()
	oq, err := routing.ParseOrgQuery(q)
	if err != nil {
		t.Fatalf("ParseOrgQuery(%q): %v", q, err)
	}
	return oq.Key
}

func orgCase(i int, unit string, received time.Time, code, name string) *intake.Case {
	c := NewCase(i, unit, "330782001", received)
	c.Subject = intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: code, Name: name}}
	return c
}

// testListByOrganization: the queue searched by the reported organization finds a
// unit's cases by every spelling of a credit code and of the start of a name, by the
// registry's code and name routing resolved, never another unit's, in both sorts and
// across cursor pages; it follows a transfer to another unit and a re-routing that
// changes the subject; 32 cases of one organization created at once are each listed
// once.
func testListByOrganization(t *testing.T, s CaseStore) {
	ctx := context.Background()
	base := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
	const u1, u2 = "330782-scjg", "330326-mz"
	charity := "某某（义乌）慈善会"
	// Newest last, so that newest-first is the reverse order of creation.
	a := orgCase(1, u1, base, "51330782MJ0000018J", "义乌市某行业协会")
	b := orgCase(2, u1, base.Add(time.Hour), "", charity)
	c := orgCase(3, u2, base.Add(2*time.Hour), "", charity) // another unit, the same name
	d := orgCase(4, u1, base.Add(3*time.Hour), "５３３３００００５０１８７４０６４ｂ", "")
	d.Decision.Inputs[routing.InputOrgCreditCode], d.Decision.Inputs[routing.InputOrgName] = "53330000501874064B", "浙江省爱心事业基金会"
	e := orgCase(5, u1, base.Add(4*time.Hour), "", "某某（义乌）慈善会第二分会")
	person := NewCase(6, u1, "330782001", base.Add(5*time.Hour))
	person.Subject = intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某", Position: "会长", Employer: charity}}
	for i, x := range []*intake.Case{a, b, c, d, e, person} {
		x.AcceptanceDue = fmt.Sprintf("2026-03-%02d", 10+i) // by due: the reverse of newest first
	}
	mustCreate(t, s, a, b, c, d, e, person)

	list := func(f intake.CaseFilter) []string {
		t.Helper()
		got, _ := pageAll(t, s, f)
		return got
	}
	for _, tt := range []struct {
		name, unit, q string
		want          []string // newest first
	}{
		{"name", u1, charity, []string{"case-0005", "case-0002"}},
		{"name with ASCII brackets", u1, "某某(义乌)慈善会", []string{"case-0005", "case-0002"}},
		{"name in traditional script", u1, "某某（義烏）慈善會", []string{"case-0005", "case-0002"}},
		{"name with invisible characters", u1, "某某\u200b（义乌）\ufeff慈善 会", []string{"case-0005", "case-0002"}},
		{"prefix", u1, "某某", []string{"case-0005", "case-0002"}},
		{"longer name", u1, "某某（义乌）慈善会第二", []string{"case-0005"}},
		{"the other unit", u2, charity, []string{"case-0003"}},
		{"every unit", "", "某某(义乌)慈善会", []string{"case-0005", "case-0003", "case-0002"}},
		{"not a substring", u1, "慈善会", nil},
		{"code", u1, "51330782MJ0000018J", []string{"case-0001"}},
		{"code in lower case", u1, "51330782mj0000018j", []string{"case-0001"}},
		{"code in full width", u1, "５１３３０７８２ＭＪ００００01８Ｊ", []string{"case-0001"}},
		{"code with a zero-width space", u1, "513307\u200b82MJ0000018J", []string{"case-0001"}},
		{"code with spaces", u1, " 5133 0782 MJ00 0001 8J ", []string{"case-0001"}},
		{"code in another unit", u2, "51330782MJ0000018J", nil},
		{"registered name of a case filed by code", u1, "浙江省愛心事業基金會", []string{"case-0004"}},
		{"reported code, full width when filed", u1, "53330000501874064B", []string{"case-0004"}},
		{"a name that is not the code's", u1, "义乌市某行业协会", []string{"case-0001"}},
		{"nobody", u1, "杭州某某", nil},
		{"without the city", u1, "某行业协会", []string{"case-0001"}},
		{"without the province, traditional", u1, "愛心事業", []string{"case-0004"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := orgKey(t, tt.q)
			if got := list(intake.CaseFilter{UnitID: tt.unit, Organization: key, Limit: 1}); !slices.Equal(got, tt.want) {
				t.Errorf("newest first, one per page: %v, want %v", got, tt.want)
			}
			rev := slices.Clone(tt.want)
			slices.Reverse(rev)
			if got := list(intake.CaseFilter{UnitID: tt.unit, Organization: key, SortByDue: true, Limit: 1}); !slices.Equal(got, rev) {
				t.Errorf("by due, one per page: %v, want %v", got, rev)
			}
			// Combined with the queue's other filters.
			if got := list(intake.CaseFilter{UnitID: tt.unit, Organization: key, Status: intake.StatusAccepted}); len(got) != 0 {
				t.Errorf("status accepted: %v", got)
			}
			if got := list(intake.CaseFilter{UnitID: tt.unit, Organization: key, Category: "arbitrary_fees", DueBefore: "2026-03-31"}); !slices.Equal(got, tt.want) {
				t.Errorf("category and due window: %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("transferred to another unit", func(t *testing.T) {
		got := loadCase(t, s, b.ID)
		pending := &intake.PendingTransfer{From: u1, To: u2, By: "lead", At: base, Reason: "属地", Due: "2026-03-05"}
		if err := s.Hand(ctx, got, intake.Decision{UnitID: u2, UnitName: "平阳县民政局", DecidedAt: base}, pending,
			intake.Transition{Action: "transfer", By: "lead", At: base}); err != nil {
			t.Fatal(err)
		}
		key := orgKey(t, charity)
		if got := list(intake.CaseFilter{UnitID: u1, Organization: key}); !slices.Equal(got, []string{"case-0005"}) {
			t.Errorf("the unit it left still lists it: %v", got)
		}
		if got := list(intake.CaseFilter{UnitID: u2, Organization: key}); !slices.Equal(got, []string{"case-0003", "case-0002"}) {
			t.Errorf("the unit it went to: %v", got)
		}
		// By due: the transfer's deadline (5 March) is the case's now.
		if got := list(intake.CaseFilter{UnitID: u2, Organization: key, SortByDue: true}); !slices.Equal(got, []string{"case-0002", "case-0003"}) {
			t.Errorf("the unit it went to, by due: %v", got)
		}
		// A cursor from the unit it left is outside the filter.
		if _, err := s.ListCases(ctx, intake.CaseFilter{UnitID: u1, Organization: key, After: b.ID}); err == nil {
			t.Error("a cursor case of another unit was accepted")
		}
		// The registry's name survives a transfer, whose decision has no inputs.
		dd := loadCase(t, s, d.ID)
		if err := s.Hand(ctx, dd, intake.Decision{UnitID: u2, DecidedAt: base}, nil, intake.Transition{Action: "transfer", By: "lead", At: base}); err != nil {
			t.Fatal(err)
		}
		if got := list(intake.CaseFilter{UnitID: u2, Organization: orgKey(t, "浙江省爱心事业基金会")}); !slices.Equal(got, []string{"case-0004"}) {
			t.Errorf("by the registered name after a transfer: %v", got)
		}
	})

	t.Run("rerouted to another subject", func(t *testing.T) {
		got := loadCase(t, s, a.ID)
		subject := intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{Name: "義烏市另一商會"}}
		next := intake.Decision{UnitID: u1, UnitName: "义乌市市场监督管理局", Router: "rules@v1", Inputs: map[string]string{"division": "330782"}, DecidedAt: base}
		if err := s.Reroute(ctx, got, "arbitrary_fees", subject, next); err != nil {
			t.Fatal(err)
		}
		for q, want := range map[string][]string{
			"51330782MJ0000018J": nil, "义乌市某行业": nil, "义乌市另一商会": {"case-0001"}, "义乌市另一": {"case-0001"},
		} {
			if got := list(intake.CaseFilter{UnitID: u1, Organization: orgKey(t, q)}); !slices.Equal(got, want) {
				t.Errorf("after the reroute, %q: %v, want %v", q, got, want)
			}
		}
		// A reroute to a person: no organization finds it.
		got = loadCase(t, s, a.ID)
		if err := s.Reroute(ctx, got, "official_discipline", person.Subject, next); err != nil {
			t.Fatal(err)
		}
		if got := list(intake.CaseFilter{UnitID: u1, Organization: orgKey(t, "义乌市另一商会")}); len(got) != 0 {
			t.Errorf("rerouted to a person, still found: %v", got)
		}
	})

	t.Run("32 at once", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		var want []string
		for i := range 32 {
			c := orgCase(100+i, u1, base.Add(time.Duration(i)*time.Minute), "", "同一（某）基金会")
			want = append(want, c.ID)
			wg.Go(func() { errs <- s.CreateCase(ctx, c) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := list(intake.CaseFilter{UnitID: u1, Organization: orgKey(t, "同一(某)基金会"), Limit: 5})
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("listed %v, want %v", got, want)
		}
	})
	t.Run("a liaison's own filings", func(t *testing.T) {
		filed := orgCase(7, u1, base.Add(6*time.Hour), "", charity)
		filed.FiledBy = "liaison-7"
		mustCreate(t, s, filed)
		key := orgKey(t, "某某(义乌)")
		if got := list(intake.CaseFilter{FiledBy: "liaison-7", DivisionPrefix: "330782", Organization: key}); !slices.Equal(got, []string{"case-0007"}) {
			t.Errorf("filed by the liaison: %v", got)
		}
		if got := list(intake.CaseFilter{FiledBy: "liaison-7", DivisionPrefix: "330326", Organization: key}); len(got) != 0 {
			t.Errorf("filed by the liaison, another division: %v", got)
		}
		if got := list(intake.CaseFilter{FiledBy: "liaison-8", Organization: key}); len(got) != 0 {
			t.Errorf("filed by another liaison: %v", got)
		}
	})
}
