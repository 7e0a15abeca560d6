package sqlite

import (
	"database/sql"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

func TestLedgerStoreConformance(t *testing.T) {
	storetest.Ledger(t, newLedgerStore(openTestDB), ledgerHooks)
}

func newLedgerStore(open func(testing.TB) *DB) storetest.NewLedgerStore {
	return func(t *testing.T, now func() time.Time) (storetest.LedgerStore, donations.Leases) {
		db := open(t)
		s := NewLedgerStore(db)
		s.now = now
		return s, NewLeaseStore(db)
	}
}

// ledgerHooks: the head is written with every append, in its transaction, so a stale
// one only exists if written here; the read path still folds forward from it.
var ledgerHooks = storetest.LedgerHooks{SetHead: func(t *testing.T, st storetest.LedgerStore, code string, b *donations.Balance) {
	s := st.(*LedgerStore)
	err := s.db.Tx(t.Context(), func(tx *sql.Tx) error {
		if b == nil {
			_, err := tx.ExecContext(t.Context(), "DELETE FROM ledger_heads WHERE org = ?", code)
			return err
		}
		_, err := tx.ExecContext(t.Context(), "UPDATE ledger_heads SET seq = ?, balance = ? WHERE org = ?", b.Seq, headJSON(*b), code)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}}
