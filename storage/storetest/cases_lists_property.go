package storetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// testListFilterCombinations stores seeded random cases over two units, statuses,
// categories, assignees, townships, deadlines and new reporter activity, then lists
// them with random combinations of every CaseFilter field (the organization searched
// for among subjects spelt several ways, some changed by a re-routing or transferred
// to the other unit, in either order), both sorts and small pages
// followed by cursor to the end, and compares each listing with the same filter
// applied to the stored cases in Go: same cases, same order, nothing skipped or
// repeated across pages. It is what keeps a store's choice of index per filter honest.
// orgSubjects are the subjects of testListFilterCombinations' cases: organizations
// spelt several ways, sharing prefixes, by code and by name, and a person.
var orgSubjects = func() []intake.Subject {
	org := func(code, name string) intake.Subject {
		return intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{CreditCode: code, Name: name}}
	}
	return []intake.Subject{
		org("51330782MJ0000018J", "义乌市某行业协会"), org("", "義烏市某行業協會"), org("51330782mj0000018j", ""),
		org("", "义乌市某行业协会（分会）"), org("", "义乌市某商会"), org("５３３３００００５０１８７４０６４Ｂ", "浙江省爱心事业基金会"),
		org("", "浙江省​爱心事业基金会"),
		{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某", Employer: "义乌市某商会"}},
	}
}()

// orgQueries are what staff type in testListFilterCombinations.
var orgQueries = []string{"义乌市某行业协会", "某行业", "爱心事业", "义乌市某", "義烏", "义乌市某行业协会(分会)", "51330782MJ0000018J", "53330000501874064b", "浙江省爱心", "义乌市某商会", "杭州"}

func testListFilterCombinations(t *testing.T, s CaseStore) {
	ctx := context.Background()
	const seed = 20261202
	rng := rand.New(rand.NewPCG(seed, seed))
	units := []string{"330782-mz", "330783-mz"}
	statuses := []intake.Status{intake.StatusRegistered, intake.StatusAccepted, intake.StatusDisposed, intake.StatusConcluded, intake.StatusClosed}
	categories := []intake.Category{"arbitrary_fees", "donation_misuse", "other"}
	assignees := []string{"", "", "staff-a", "staff-b"}
	townships := []string{"330782001", "330782002", "330783001"}
	base := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	var all []*intake.Case
	for i := range 160 {
		unit := units[rng.IntN(len(units))]
		c := NewCase(10_000+i, unit, townships[rng.IntN(len(townships))], base.Add(time.Duration(rng.IntN(400))*time.Hour))
		c.Status = statuses[rng.IntN(len(statuses))]
		c.Category = categories[rng.IntN(len(categories))]
		c.Assignee = assignees[rng.IntN(len(assignees))]
		c.AcceptanceDue, c.FeedbackDue = "", ""
		due := base.AddDate(0, 0, rng.IntN(40)).Format(time.DateOnly)
		switch c.Status {
		case intake.StatusRegistered:
			c.AcceptanceDue = due
		case intake.StatusConcluded:
			c.FeedbackDue = due
		}
		c.Subject = orgSubjects[rng.IntN(len(orgSubjects))]
		if o := c.Subject.Organization; o != nil && o.Name == "" {
			// Routing found the code in the registry: its registered name.
			c.Decision.Inputs[routing.InputOrgName] = "义乌市某行业协会"
		}
		if err := s.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
		// Then, in a random order, a transfer to the other unit (a decision with no
		// inputs), a re-routing that changes the subject, or both, or neither.
		for step := range 2 {
			switch r := rng.IntN(6); {
			case r == 0 || step == 1 && r == 1: // transferred
				to := units[0]
				if c.UnitID == to {
					to = units[1]
				}
				d := intake.Decision{UnitID: to, Reason: "转办", By: "lead", DecidedAt: c.ReceivedAt}
				if err := s.Hand(ctx, c, d, nil, intake.Transition{Action: "transfer", By: "lead", At: c.ReceivedAt}); err != nil {
					t.Fatal(err)
				}
				c.EarlierDecisions = append(c.EarlierDecisions, c.Decision)
				c.Decision, c.UnitID = d, to
				c.Transitions = append(c.Transitions, intake.Transition{Action: "transfer", By: "lead", At: c.ReceivedAt})
				c.Version++
			case r == 1: // triage changed the subject
				subject := orgSubjects[rng.IntN(len(orgSubjects))]
				next := intake.Decision{UnitID: c.UnitID, Router: "rules@v1", Inputs: map[string]string{"division": c.Location.Division}, DecidedAt: c.ReceivedAt}
				if err := s.Reroute(ctx, c, c.Category, subject, next); err != nil {
					t.Fatal(err)
				}
				c.EarlierDecisions = append(c.EarlierDecisions, c.Decision)
				c.Subject, c.Decision = subject, next
				c.Version++
			}
		}
		if rng.IntN(4) == 0 { // the reporter wrote since staff last read the case
			if err := s.AddMessage(ctx, &intake.Message{ID: intake.NewID(), CaseID: c.ID, From: intake.UploaderReporter, Kind: "message",
				Body: "补充", CreatedAt: c.ReceivedAt.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			c.NewActivity = true
		}
		all = append(all, c)
	}
	nextDue := func(c *intake.Case) string {
		switch c.Status {
		case intake.StatusRegistered:
			return c.AcceptanceDue
		case intake.StatusConcluded:
			return c.FeedbackDue
		}
		return ""
	}
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	for round := range 120 {
		f := intake.CaseFilter{UnitID: pick(units[0], units[0], units[1], ""), Assignee: pick("", "", "staff-a", "nobody"),
			Status:   intake.Status(pick("", "", string(intake.StatusRegistered), string(intake.StatusAccepted), string(intake.StatusConcluded))),
			Category: intake.Category(pick("", "", "donation_misuse", "other")), NewActivity: rng.IntN(3) == 0,
			SortByDue: rng.IntN(2) == 0, DivisionPrefix: pick("", "", "330782", "330782002"), Limit: 1 + rng.IntN(7)}
		if rng.IntN(3) == 0 {
			f.DueBefore = base.AddDate(0, 0, rng.IntN(40)).Format(time.DateOnly)
		}
		if rng.IntN(3) == 0 {
			f.Organization = orgKey(t, orgQueries[rng.IntN(len(orgQueries))])
		}
		var want []*intake.Case
		for _, c := range all {
			nd := nextDue(c)
			if f.Organization != "" && !slices.Contains(routing.OrgSearchKeys(c), f.Organization) {
				continue
			}
			if f.UnitID != "" && c.UnitID != f.UnitID || f.Assignee != "" && c.Assignee != f.Assignee ||
				f.Status != "" && c.Status != f.Status || f.Category != "" && c.Category != f.Category ||
				f.NewActivity && !c.NewActivity || !strings.HasPrefix(c.Location.Division, f.DivisionPrefix) ||
				(f.SortByDue || f.DueBefore != "") && nd == "" || f.DueBefore != "" && nd > f.DueBefore {
				continue
			}
			want = append(want, c)
		}
		slices.SortFunc(want, func(a, b *intake.Case) int {
			if f.SortByDue {
				if x := strings.Compare(nextDue(a), nextDue(b)); x != 0 {
					return x
				}
				return strings.Compare(a.ID, b.ID)
			}
			if x := b.ReceivedAt.Compare(a.ReceivedAt); x != 0 {
				return x
			}
			return strings.Compare(a.ID, b.ID)
		})
		var got []string
		for page := 0; ; page++ {
			list, err := s.ListCases(ctx, f)
			if err != nil {
				t.Fatalf("round %d, filter %+v: %v", round, f, err)
			}
			for _, c := range list {
				got = append(got, c.ID)
			}
			if len(list) < f.Limit || page > len(all) {
				break
			}
			f.After = list[len(list)-1].ID
		}
		wantIDs := make([]string, len(want))
		for i, c := range want {
			wantIDs[i] = c.ID
		}
		if !slices.Equal(got, wantIDs) {
			t.Fatalf("round %d, filter %+v:\ngot  %v\nwant %v", round, f, got, wantIDs)
		}
	}
}
