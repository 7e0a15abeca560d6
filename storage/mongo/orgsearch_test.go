package mongo

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// TestFillOrgKeys: cases stored before the organization search (no org_keys field)
// get their keys when the store starts (EnsureIndexes), are then found by the search,
// and a second start finds nothing left to fill.
func TestFillOrgKeys(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		s := NewCaseStore(db)
		at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
		org := storetest.NewCase(1, "330782-mz", "330782001", at)
		org.Subject.Organization = &intake.OrgSubject{Name: "義烏市某行業協會"}
		person := storetest.NewCase(2, "330782-mz", "330782001", at.Add(time.Hour))
		person.Subject = intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某"}}
		for _, c := range []*intake.Case{org, person} {
			if err := s.CreateCase(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		// As a release before the search stored them.
		if _, err := db.coll(collCases).UpdateMany(ctx, bson.M{}, bson.M{"$unset": bson.M{"org_keys": ""}}); err != nil {
			t.Fatal(err)
		}
		oq, _ := routing.ParseOrgQuery("某行业")
		search := func() int {
			t.Helper()
			list, err := s.ListCases(ctx, intake.CaseFilter{UnitID: "330782-mz", Organization: oq.Key})
			if err != nil {
				t.Fatal(err)
			}
			return len(list)
		}
		if n := search(); n != 0 {
			t.Fatalf("found %d before the fill", n)
		}
		if err := db.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
		if n := search(); n != 1 {
			t.Errorf("found %d after the fill, want 1", n)
		}
		left, err := db.coll(collCases).CountDocuments(ctx, bson.M{"org_keys": bson.M{"$exists": false}})
		if err != nil || left != 0 {
			t.Errorf("%d cases left without org_keys (%v)", left, err)
		}
	})
}
