package sqlite

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
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

// TestLedgerBeneficiaryNeverOnDisk: a disbursement's beneficiary reaches the database
// file only sealed. The scan is proved able to see what it looks for by finding the
// sealed bytes themselves.
func TestLedgerBeneficiaryNeverOnDisk(t *testing.T) {
	ctx := t.Context()
	db := openTestDB(t)
	s := NewLedgerStore(db)
	_, rcpt, err := crypto.GenerateCustodianKey()
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.NewSealer(map[string][]string{"*": {rcpt}})
	if err != nil {
		t.Fatal(err)
	}
	const code = "91330782MA2LEDGER1"
	l := &donations.Ledger{Store: s, Sealer: sealer, Orgs: func(c string) (routing.Organization, bool) {
		return routing.Organization{CreditCode: c, Name: "测试组织", Division: "330782", Status: routing.OrgNormal}, c == code
	}}
	refs, err := s.AddPhotos(ctx, code, "batch-1", []intake.Evidence{{ID: "1.jpg", ObjectKey: "ledger/batch-1/1.jpg"}})
	if err != nil {
		t.Fatal(err)
	}
	today := donations.Today(time.Now())
	if _, _, err := l.Append(ctx, code, donations.Submission{Entry: donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeCash,
		AmountFen: 10_000, Donor: &donations.Donor{Anonymous: true}, ReceiptNumber: "浙0001", Date: today, RecordedBy: "liaison-1"}}); err != nil {
		t.Fatal(err)
	}
	const name, residentID, note = "受益人MARKER张三丰", "330782199001011234", "家庭困难MARKER备注"
	got, _, err := l.Append(ctx, code, donations.Submission{
		Entry:          donations.Entry{Kind: donations.KindDisbursement, From: donations.FromFunds, AmountFen: 5_000, Photos: refs, Date: today, RecordedBy: "liaison-1"},
		Beneficiary:    &donations.Beneficiary{Name: name, ResidentID: residentID, Note: note},
		IdempotencyKey: "payout-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Beneficiary) == 0 {
		t.Fatal("no sealed beneficiary stored")
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	all := readDir(t, filepath.Dir(db.Path()))
	if !bytes.Contains(all, got.Beneficiary[len(got.Beneficiary)-64:]) {
		t.Fatal("the sealed beneficiary is not found in the files: the scan proves nothing")
	}
	for _, m := range []string{name, residentID, note} {
		if bytes.Contains(all, []byte(m)) {
			t.Errorf("%q is in the database files in plaintext", m)
		}
	}
}
