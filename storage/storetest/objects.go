package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// ObjectsEnv is one fresh, empty database as the referenced-objects suite needs it.
type ObjectsEnv struct {
	Cases  RetentionStore
	Ledger donations.Store
	// Referenced is the database's ReferencedObjects.
	Referenced func(ctx context.Context) (map[string]bool, error)
}

// ReferencedObjects is the suite of what the orphan sweeper (retention.Sweeper) keeps:
// every object key a case's evidence names (stored files and kept originals, those
// filed with the case and those added later) and every ledger photo and its original —
// and nothing else; a purged case names none. A key missing from the set is evidence
// the sweeper destroys.
func ReferencedObjects(t *testing.T, newEnv func(t *testing.T) ObjectsEnv) {
	run(t, newEnv, []scenario[ObjectsEnv]{
		{"Referenced", testReferencedObjects},
	})
}

func testReferencedObjects(t *testing.T, env ObjectsEnv) {
	ctx := context.Background()
	refs, err := env.Referenced(ctx)
	if err != nil || refs == nil || len(refs) != 0 {
		t.Fatalf("empty database: %v, %v", refs, err)
	}
	want := map[string]bool{}
	evidence := func(id, key, orig string) intake.Evidence {
		return intake.Evidence{ID: id, ObjectKey: key, OriginalKey: orig, ContentType: "image/jpeg", Size: 10,
			SHA256Received: "r-" + id, SHA256Stored: "s-" + id, UploadedBy: "staff", UploadedAt: base}
	}
	// Filed with evidence, one kept original.
	c1 := NewCase(1, "330782-mz", "330782", base)
	c1.Evidence = []intake.Evidence{evidence("e1", "cases/case-0001/e1", "originals/case-0001/e1"), evidence("e2", "cases/case-0001/e2", "")}
	// Filed without, evidence added later.
	c2 := NewCase(2, "330782-mz", "330782", base)
	for _, c := range []*intake.Case{c1, c2} {
		if err := env.Cases.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.Cases.AddEvidence(ctx, c2.ID, []intake.Evidence{evidence("e3", "cases/case-0002/e3", "originals/case-0002/e3")}, 1<<30); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cases/case-0001/e1", "originals/case-0001/e1", "cases/case-0001/e2", "cases/case-0002/e3", "originals/case-0002/e3"} {
		want[k] = true
	}
	// Ledger photos of two organizations.
	for i, org := range []string{"53330782MJ0000001X", "53330782MJ0000002X"} {
		batch := fmt.Sprintf("batch-%d", i)
		evs := []intake.Evidence{evidence("p1.jpg", "ledger/"+batch+"/p1.jpg", "ledger-originals/"+batch+"/p1.jpg"), evidence("p2.jpg", "ledger/"+batch+"/p2.jpg", "")}
		if _, err := env.Ledger.AddPhotos(ctx, org, batch, evs); err != nil {
			t.Fatal(err)
		}
		want["ledger/"+batch+"/p1.jpg"], want["ledger-originals/"+batch+"/p1.jpg"], want["ledger/"+batch+"/p2.jpg"] = true, true, true
	}
	check := func(when string) {
		t.Helper()
		got, err := env.Referenced(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: referenced\n%v\nwant\n%v", when, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
	check("cases and photos")

	// A purged case names no object any more.
	c3 := NewCase(3, "330782-mz", "330782", base)
	c3.Status = intake.StatusClosed
	c3.Transitions = []intake.Transition{{Action: "close", From: intake.StatusFeedbackGiven, To: intake.StatusClosed, By: "staff-1", At: base}}
	c3.Evidence = []intake.Evidence{evidence("e4", "cases/case-0003/e4", "originals/case-0003/e4")}
	if err := env.Cases.CreateCase(ctx, c3); err != nil {
		t.Fatal(err)
	}
	want["cases/case-0003/e4"], want["originals/case-0003/e4"] = true, true
	check("with a closed case")
	stored, err := env.Cases.CaseByID(ctx, c3.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Cases.Anonymise(ctx, c3.ID, stored.Version, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	delete(want, "cases/case-0003/e4")
	delete(want, "originals/case-0003/e4")
	check("after the closed case's purge")
}
