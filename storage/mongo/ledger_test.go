package mongo

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// TestLedgerStoreConformance runs the ledger's shared scenarios (storage/storetest),
// which storage/sqlite runs too.
func TestLedgerStoreConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Ledger(t, func(t *testing.T, now func() time.Time) (storetest.LedgerStore, donations.Leases) {
			db := openTestDB(t, tg)
			s := NewLedgerStore(db)
			s.now = now
			return s, NewCaseStore(db)
		}, storetest.LedgerHooks{SetHead: setLedgerHead})
	})
}

// setLedgerHead overwrites (or, b nil, deletes) the cached head of code.
func setLedgerHead(t *testing.T, st storetest.LedgerStore, code string, b *donations.Balance) {
	s := st.(*LedgerStore)
	var err error
	if b == nil {
		_, err = s.db.coll(collLedgerHeads).DeleteOne(t.Context(), bson.M{"_id": code})
	} else {
		_, err = s.db.coll(collLedgerHeads).ReplaceOne(t.Context(), bson.M{"_id": code}, toHeadDoc(code, *b), options.Replace().SetUpsert(true))
	}
	if err != nil {
		t.Fatal(err)
	}
}
