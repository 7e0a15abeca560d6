package mongo

import (
	"context"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// TestListCasesQueryShapes sends every query GET /v1/cases can make of ListCases (each
// caller's scope, each optional filter, both orders, first page and a later one), so
// that the index check after the tests sees them all; only that the query runs is
// checked here, what it returns is testListFilters' and testListPagination's.
func TestListCasesQueryShapes(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := openTestDB(t, tg)
		s := NewCaseStore(db)
		c := storetest.NewCase(1, "unit-a", "330782001", base)
		c.FiledBy = "liaison-1"
		mustCreate(t, s, c)
		scopes := map[string]intake.CaseFilter{
			"staff":               {UnitID: "unit-a"},
			"staff in a division": {UnitID: "unit-a", DivisionPrefix: "330782"},
			"liaison":             {FiledBy: "liaison-1", DivisionPrefix: "330782"},
			"admin":               {},
			"admin in a division": {DivisionPrefix: "330782"},
		}
		filters := map[string]func(*intake.CaseFilter){
			"no filter":    func(*intake.CaseFilter) {},
			"status":       func(f *intake.CaseFilter) { f.Status = intake.StatusRegistered },
			"category":     func(f *intake.CaseFilter) { f.Category = "arbitrary_fees" },
			"assignee":     func(f *intake.CaseFilter) { f.Assignee = "staff-1" },
			"new activity": func(f *intake.CaseFilter) { f.NewActivity = true },
			"due before":   func(f *intake.CaseFilter) { f.DueBefore = "2026-04-01" },
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for sn, scope := range scopes {
			for fn, set := range filters {
				for _, byDue := range []bool{false, true} {
					for _, after := range []string{"", c.ID} {
						f := scope
						set(&f)
						f.SortByDue = byDue
						f.After = after
						if _, err := s.ListCases(ctx, f); err != nil {
							t.Errorf("%s, %s, by due %v, after %q: %v", sn, fn, byDue, after, err)
						}
					}
				}
			}
		}
	})
}
