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
			return s, NewLeaseStore(db)
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

// TestLedgerHeadRepaired: on this store the head is a cache that may lag the entries
// (an append that stopped between its insert and its head update); a read folds the
// entries after it (storetest's StaleHead) and writes the repaired head back.
func TestLedgerHeadRepaired(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := NewLedgerStore(openTestDB(t, tg))
		const code = "91330782MA2LEDGER1"
		cash := donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeCash, AmountFen: 100,
			Donor: &donations.Donor{Anonymous: true}, Date: "2026-11-30", RecordedBy: "liaison-1", RecordedAt: time.Now()}
		if _, err := s.Append(ctx, code, cash, nil); err != nil {
			t.Fatal(err)
		}
		stale, err := s.Balance(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, code, cash, nil); err != nil {
			t.Fatal(err)
		}
		setLedgerHead(t, s, code, &stale)
		if b, err := s.Balance(ctx, code); err != nil || b.Seq != 2 || b.Funds[""] != 200 {
			t.Fatalf("balance over a stale head: %+v, %v", b, err)
		}
		var h ledgerHeadDoc
		if err := s.db.coll(collLedgerHeads).FindOne(ctx, bson.M{"_id": code}).Decode(&h); err != nil || h.Seq != 2 {
			t.Fatalf("head not repaired: %+v, %v", h, err)
		}
	})
}
