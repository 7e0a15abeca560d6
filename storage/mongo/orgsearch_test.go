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

// TestFillEvidenceKeys: a case stored before evidence was stored once per file (no
// evidence_keys field) gets its keys when the store starts, so that a file it holds,
// sent again by its uploader, is answered with the entry held and not appended; a
// purged entry's bytes are appended.
func TestFillEvidenceKeys(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		s := NewCaseStore(db)
		at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
		c := storetest.NewCase(1, "330782-mz", "330782001", at)
		held := intake.Evidence{ID: "e1", ObjectKey: "evidence/x/e1", ContentType: "image/jpeg", Size: 10,
			SHA256Received: "aa", SHA256Stored: "bb", UploadedBy: intake.UploaderReporter, UploadedAt: at}
		purged := held
		purged.ID, purged.ObjectKey, purged.SHA256Received = "e0", "", "cc"
		c.Evidence, c.EvidenceBytes = []intake.Evidence{purged, held}, 20
		if err := s.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
		// As a release before evidence_keys stored it.
		if _, err := db.coll(collCases).UpdateMany(ctx, bson.M{}, bson.M{"$unset": bson.M{"evidence_keys": ""}}); err != nil {
			t.Fatal(err)
		}
		if err := db.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
		again, purgedAgain := held, purged
		again.ID, again.ObjectKey = "e2", "evidence/x/e2"
		purgedAgain.ID, purgedAgain.ObjectKey = "e3", "evidence/x/e3"
		kept, err := s.AddEvidence(ctx, c.ID, []intake.Evidence{again, purgedAgain}, 1<<20)
		if err != nil || len(kept) != 2 || kept[0].ID != "e1" || kept[1].ID != "e3" {
			t.Fatalf("answered %+v, %v; want e1 (held) and e3 (new)", kept, err)
		}
		got, err := s.CaseByID(ctx, c.ID)
		if err != nil || len(got.Evidence) != 3 || got.EvidenceBytes != 30 {
			t.Errorf("case after: %d entries, %d bytes (%v); want 3, 30", len(got.Evidence), got.EvidenceBytes, err)
		}
	})
}
