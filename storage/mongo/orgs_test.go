package mongo

import (
	"testing"

	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

func TestOrgStore(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Organizations(t, func(t *testing.T) storetest.OrgStore { return NewOrgStore(openTestDB(t, tg)) })
	})
}

func TestUnitStore(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Units(t, func(t *testing.T) storetest.UnitStore { return NewUnitStore(openTestDB(t, tg)) })
	})
}

// TestUpsertBulkPathOnFerretDB runs the upsert scenarios on the embedded FerretDB
// through upsertByID's MongoDB path (one bulk write), which the suites above only take
// on MongoDB: it works there too, only slowly. The handle takes no document locks, so
// the concurrent scenarios are not run this way.
func TestUpsertBulkPathOnFerretDB(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		if tg.name != "embedded" {
			t.Skip("the bulk path is this target's own: TestOrgStore and TestUnitStore take it")
		}
		t.Run("organizations", func(t *testing.T) {
			db := openTestDB(t, tg)
			db.ferret = false
			storetest.OrgUpsertAndRead(t, NewOrgStore(db))
		})
		t.Run("units", func(t *testing.T) {
			db := openTestDB(t, tg)
			db.ferret = false
			storetest.UnitSeedUpsertAliases(t, NewUnitStore(db))
		})
	})
}
