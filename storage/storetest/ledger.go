package storetest

// The donation ledger's scenarios (donations.Store), run through the donations.Ledger
// service in front of the store: appends and listing, reversals, a stale head cache,
// concurrent writers against the balance, goods verification before hand-out, seeded
// random sequences with published statements, publishing racing appends, and the
// alerts evaluated on append, by the job, under its lease and after a crash.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

const ledgerOrg = "91330782MA2LEDGER1"

var (
	ledgerSealOnce sync.Once
	ledgerSealed   []byte
	ledgerSealErr  error
)

func ledgerBeneficiary(t testing.TB) []byte {
	t.Helper()
	ledgerSealOnce.Do(func() {
		_, rcpt, err := crypto.GenerateCustodianKey()
		if err != nil {
			ledgerSealErr = err
			return
		}
		s, err := crypto.NewSealer(map[string][]string{"*": {rcpt}})
		if err != nil {
			ledgerSealErr = err
			return
		}
		id, err := s.Seal(context.Background(), "330782", []byte("受益人 甲"))
		if err != nil {
			ledgerSealErr = err
			return
		}
		ledgerSealed = id.Ciphertext
	})
	if ledgerSealErr != nil {
		t.Fatal(ledgerSealErr)
	}
	return ledgerSealed
}

// ledgerNow is the clock of the ledger tests.
var ledgerNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// testLedger is the store under test with the donations.Ledger service in front of
// it, called the way the store's tests used to call the store: entries go through the
// service's rules (validation, sealing, photo references, the prior entries), and an
// entry with a caller's check goes straight to the store.
type testLedger struct {
	LedgerStore
	L      *donations.Ledger
	leases donations.Leases
	clk    *clock
	hooks  LedgerHooks
}

// LedgerStore is the ledger store under test: donations.Store and the reads of the
// alert records.
type LedgerStore interface {
	donations.Store
	RecordAlert(ctx context.Context, h donations.Hit, caseNumber string, at time.Time) (bool, error)
	Alert(ctx context.Context, id string) (donations.Alert, error)
	OrgAlerts(ctx context.Context, code string) ([]donations.Alert, error)
}

// NewLedgerStore returns a fresh, empty ledger store whose clock (photo and
// idempotency record times) is now, and the lease store of the same database.
type NewLedgerStore func(t *testing.T, now func() time.Time) (LedgerStore, donations.Leases)

// LedgerHooks reach into a store's own tables, for the scenarios that simulate what
// no method does.
type LedgerHooks struct {
	// SetHead overwrites the stored head (cached balance) of code with b, or deletes
	// it when b is nil: an append that stopped between its insert and its head update.
	SetHead func(t *testing.T, s LedgerStore, code string, b *donations.Balance)
}

type newTestLedger func(t *testing.T, clk *clock) testLedger

// Ledger runs the ledger scenarios against the stores newStore makes.
func Ledger(t *testing.T, newStore NewLedgerStore, hooks LedgerHooks) {
	mk := func(t *testing.T, clk *clock) testLedger { return newLedgerStore(t, newStore, hooks, clk) }
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, mk newTestLedger)
	}{
		{"AppendAndList", ledgerAppendAndList},
		{"Reversal", ledgerReversals},
		{"StaleHead", ledgerStaleHead},
		{"ConcurrentDisbursements", ledgerConcurrentDisbursements},
		{"GoodsOutNeedVerification", ledgerGoodsOutNeedVerification},
		{"RandomSequences", ledgerRandomSequences},
		{"PublishRacesAppends", ledgerPublishRacesAppends},
		{"Idempotency", ledgerIdempotency},
		{"KeysAsAnAttackerSpellsThem", ledgerKeyVariants},
		{"ClaimAlertRace", ledgerClaimAlertRace},
		{"AlertsOnAppend", ledgerAlertsOnAppend},
		{"AlertsConcurrent", ledgerAlertsConcurrent},
		{"AlertLease", ledgerAlertLease},
		{"AlertsCrashRecovery", ledgerAlertsCrashRecovery},
		{"PhotosWithEntry", ledgerPhotosWithEntry},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, mk)
		})
	}
}

func entryID(code string, seq int64) string { return fmt.Sprintf("%s:%010d", code, seq) }

func testSealer(t testing.TB) *crypto.Sealer {
	_, rcpt, err := crypto.GenerateCustodianKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := crypto.NewSealer(map[string][]string{"*": {rcpt}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newLedgerStore(t *testing.T, newStore NewLedgerStore, hooks LedgerHooks, clk *clock) testLedger {
	if clk == nil {
		clk = &clock{}
		clk.set(ledgerNow)
	}
	s, leases := newStore(t, clk.now)
	l := &donations.Ledger{Store: s, Sealer: testSealer(t), Now: clk.now,
		Orgs: func(code string) (routing.Organization, bool) {
			return routing.Organization{CreditCode: code, Name: "测试组织", Division: "330782", Status: routing.OrgNormal}, true
		}}
	// The photo the test entries cite.
	for _, code := range []string{ledgerOrg, "91330782MA2OTHER01"} {
		if _, err := s.AddPhotos(t.Context(), code, "photos-"+code, []intake.Evidence{{ID: "1.jpg"}}); err != nil {
			t.Fatal(err)
		}
	}
	return testLedger{LedgerStore: s, L: l, leases: leases, clk: clk, hooks: hooks}
}

func (s testLedger) Append(ctx context.Context, code string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, error) {
	if check != nil {
		return s.LedgerStore.Append(ctx, code, e, check)
	}
	if e.Kind == donations.KindReversal {
		got, _, err := s.L.Reverse(ctx, code, e.Reverses, e.Reason, e.Date, e.RecordedBy, "")
		return got, err
	}
	sub := donations.Submission{Entry: e}
	if len(e.Beneficiary) > 0 {
		sub.Beneficiary = &donations.Beneficiary{Name: "受益人 甲"}
	}
	for i, p := range sub.Photos {
		if p == "photos/1.jpg" {
			sub.Photos = slices.Clone(sub.Photos)
			sub.Photos[i] = "photos-" + code + "/1.jpg"
		}
	}
	got, _, err := s.L.Append(ctx, code, sub)
	return got, err
}

func (s testLedger) Verify(ctx context.Context, code string, v donations.Verification) (donations.Verification, error) {
	return s.L.Verify(ctx, code, v.EntryID, v.VerifiedBy, v.Note)
}

func ledgerCash(fen int64, project string) donations.Entry {
	return donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeCash, AmountFen: fen, Project: project,
		Donor: &donations.Donor{Anonymous: true}, ReceiptNumber: "浙0001", Date: "2026-11-30", RecordedBy: "liaison-1"}
}

func ledgerGoods(item string, qty int64) donations.Entry {
	return donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeGoods,
		Goods: &donations.Goods{Item: item, Quantity: qty, Unit: "箱", ValuationFen: 3000 * qty},
		Donor: &donations.Donor{Name: "某公司", NameConsent: true}, Date: "2026-11-02", RecordedBy: "liaison-1"}
}

func ledgerPayout(t testing.TB, fen int64, project string) donations.Entry {
	return donations.Entry{Kind: donations.KindDisbursement, From: donations.FromFunds, AmountFen: fen, Project: project,
		Beneficiary: ledgerBeneficiary(t), Photos: []string{"photos/1.jpg"}, Date: "2026-11-30", RecordedBy: "liaison-1"}
}

func ledgerHandout(t testing.TB, item string, qty int64) donations.Entry {
	return donations.Entry{Kind: donations.KindDisbursement, From: donations.FromStock,
		Goods: &donations.Goods{Item: item, Quantity: qty, Unit: "箱"}, Beneficiary: ledgerBeneficiary(t), Date: "2026-11-30", RecordedBy: "liaison-1"}
}

func ledgerReversal(id string) donations.Entry {
	return donations.Entry{Kind: donations.KindReversal, Reverses: id, Reason: "录入错误", Date: "2026-11-30", RecordedBy: "liaison-2"}
}

func mustAppend(t *testing.T, s testLedger, e donations.Entry) donations.Entry {
	t.Helper()
	got, err := s.Append(t.Context(), ledgerOrg, e, nil)
	if err != nil {
		t.Fatalf("Append %s: %v", e.Kind, err)
	}
	return got
}

// checkReconciles checks that the stored balance equals a fold over the stored
// entries, and has no negative line.
func checkReconciles(t *testing.T, s testLedger) donations.Balance {
	t.Helper()
	b, err := s.Balance(t.Context(), ledgerOrg)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.List(t.Context(), ledgerOrg, "")
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]donations.Entry, len(recs))
	for i, r := range recs {
		entries[i] = r.Entry
		if r.Seq != int64(i+1) || r.ID != entryID(ledgerOrg, r.Seq) {
			t.Fatalf("entry %d has seq %d, id %s", i, r.Seq, r.ID)
		}
	}
	folded, err := donations.Fold(entries)
	if err != nil {
		t.Fatalf("fold of stored entries: %v", err)
	}
	if !folded.Equal(b) {
		t.Fatalf("stored balance %+v != fold of stored entries %+v", b, folded)
	}
	for p, v := range b.Funds {
		if v < 0 {
			t.Fatalf("fund %q is negative: %d", p, v)
		}
	}
	for k, v := range b.Stock {
		if v < 0 {
			t.Fatalf("stock %v is negative: %d", k, v)
		}
	}
	return b
}

func ledgerAppendAndList(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	b, err := s.Balance(ctx, ledgerOrg)
	if err != nil || b.Seq != 0 || len(b.Funds) != 0 {
		t.Fatalf("empty ledger: %+v, %v", b, err)
	}
	in := mustAppend(t, s, ledgerCash(10000, "助学"))
	if in.ID != ledgerOrg+":0000000001" || in.Seq != 1 || in.Org != ledgerOrg || in.RecordedAt.IsZero() {
		t.Fatalf("appended %+v", in)
	}
	g := mustAppend(t, s, ledgerGoods("大米", 5))
	out := mustAppend(t, s, ledgerPayout(t, 2500, "助学"))
	mustAppend(t, s, donations.Entry{Kind: donations.KindProjectSpending, AmountFen: 500, Project: "助学",
		SignOffs: &donations.SignOffs{Handler: "甲", ProjectLead: "乙", FinanceLead: "丙", SecretaryGeneral: "丁"},
		Date:     "2026-10-15", RecordedBy: "liaison-1"})

	// Overdrawing is a conflict, and nothing is stored.
	_, err = s.Append(ctx, ledgerOrg, ledgerPayout(t, 7001, "助学"), nil)
	if qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("overdraw: %v", err)
	}
	_, err = s.Append(ctx, ledgerOrg, ledgerHandout(t, "大米", 6), nil)
	if qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("over stock: %v", err)
	}
	// Invalid input is refused before anything is read.
	_, err = s.Append(ctx, ledgerOrg, ledgerCash(0, ""), nil)
	if qingfeng.ErrorCode(err) != qingfeng.EINVALID {
		t.Fatalf("zero amount: %v", err)
	}
	_, err = s.Append(ctx, "bad:code", ledgerCash(1, ""), nil)
	if qingfeng.ErrorCode(err) != qingfeng.EINVALID {
		t.Fatalf("bad org: %v", err)
	}
	// The caller's check sees the balance before the entry and can refuse it.
	refuse := qingfeng.Errorf(qingfeng.EFORBIDDEN, "不允许", "no")
	_, err = s.Append(ctx, ledgerOrg, ledgerCash(1, ""), func(b donations.Balance) error {
		if b.Seq != 4 || b.Funds["助学"] != 7000 {
			t.Errorf("check saw %+v", b)
		}
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("check: %v", err)
	}

	b = checkReconciles(t, s)
	if b.Seq != 4 || b.Funds["助学"] != 7000 || b.Stock[donations.StockKey{Item: "大米", Unit: "箱"}] != 5 {
		t.Fatalf("balance %+v", b)
	}

	// Round trip of every field.
	got, err := s.Entry(ctx, ledgerOrg, out.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", out) {
		t.Errorf("stored\n%+v\nwant\n%+v", got, out)
	}
	if _, err := s.Entry(ctx, "91330782MA2OTHER01", out.ID); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Errorf("entry of another organization: %v", err)
	}

	// Monthly listing by date.
	recs, err := s.List(ctx, ledgerOrg, "2026-11")
	if err != nil || len(recs) != 3 {
		t.Fatalf("List 2026-11 = %d records, %v", len(recs), err)
	}
	if recs, _ := s.List(ctx, ledgerOrg, "2026-10"); len(recs) != 1 || recs[0].Kind != donations.KindProjectSpending {
		t.Fatalf("List 2026-10 = %+v", recs)
	}
	if _, err := s.List(ctx, ledgerOrg, "2026-13"); qingfeng.ErrorCode(err) != qingfeng.EINVALID {
		t.Errorf("bad month: %v", err)
	}

	// Verification by a second person, once.
	if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: g.ID, VerifiedBy: "liaison-1"}); qingfeng.ErrorCode(err) != qingfeng.EFORBIDDEN {
		t.Errorf("self-verification: %v", err)
	}
	if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: in.ID, VerifiedBy: "liaison-2"}); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Errorf("verifying cash: %v", err)
	}
	v, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: g.ID, VerifiedBy: "liaison-2", Note: "已清点"})
	if err != nil || v.VerifiedAt.IsZero() {
		t.Fatalf("Verify: %+v, %v", v, err)
	}
	if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: g.ID, VerifiedBy: "liaison-3"}); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Errorf("second verification: %v", err)
	}
	recs, _ = s.List(ctx, ledgerOrg, "")
	if recs[1].Verification == nil || recs[1].Verification.VerifiedBy != "liaison-2" || recs[0].Verification != nil {
		t.Errorf("verification not listed: %+v", recs[1])
	}
}

func ledgerReversals(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	wrong := mustAppend(t, s, ledgerCash(1000, ""))
	rev := mustAppend(t, s, ledgerReversal(wrong.ID))
	if rev.AmountFen != 1000 || rev.ReversedKind != donations.KindIncome || rev.ReversedIncomeType != donations.IncomeCash {
		t.Fatalf("reversal %+v", rev)
	}
	mustAppend(t, s, ledgerCash(100, ""))
	if b := checkReconciles(t, s); b.Funds[""] != 100 {
		t.Fatalf("balance after correction %+v", b)
	}
	// Once only; never a reversal; never another organization's or a missing entry.
	if _, err := s.Append(ctx, ledgerOrg, ledgerReversal(wrong.ID), nil); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Errorf("second reversal: %v", err)
	}
	if _, err := s.Append(ctx, ledgerOrg, ledgerReversal(rev.ID), nil); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Errorf("reversal of a reversal: %v", err)
	}
	if _, err := s.Append(ctx, ledgerOrg, ledgerReversal(entryID(ledgerOrg, 99)), nil); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Errorf("reversal of a missing entry: %v", err)
	}
	other := "91330782MA2OTHER01"
	o, err := s.Append(ctx, other, ledgerCash(5, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, ledgerOrg, ledgerReversal(o.ID), nil); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Errorf("reversal of another organization's entry: %v", err)
	}
	// An income already paid out cannot be reversed.
	mustAppend(t, s, ledgerPayout(t, 100, ""))
	in := mustAppend(t, s, ledgerCash(50, ""))
	mustAppend(t, s, ledgerPayout(t, 30, ""))
	if _, err := s.Append(ctx, ledgerOrg, ledgerReversal(in.ID), nil); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Errorf("reversal of spent income: %v", err)
	}
	recs, _ := s.List(ctx, ledgerOrg, "")
	if recs[0].ReversedBy != rev.ID {
		t.Errorf("listed reversed_by = %q, want %q", recs[0].ReversedBy, rev.ID)
	}
	checkReconciles(t, s)
	// The other organization's ledger is separate.
	if b, _ := s.Balance(ctx, other); b.Seq != 1 || b.Funds[""] != 5 {
		t.Errorf("other ledger %+v", b)
	}
}

// ledgerStaleHead checks that a head cache behind the entries (an append that
// stopped between its insert and the head update) is folded forward on read, and that
// appends after it still check against all entries.
func ledgerStaleHead(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	mustAppend(t, s, ledgerCash(100, ""))
	head := mustBalance(t, s)
	mustAppend(t, s, ledgerPayout(t, 100, ""))
	// Roll the head back to before the payout.
	s.hooks.SetHead(t, s.LedgerStore, ledgerOrg, &head)
	if _, err := s.Append(ctx, ledgerOrg, ledgerPayout(t, 1, ""), nil); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("payout checked against a stale head: %v", err)
	}
	if b := checkReconciles(t, s); b.Seq != 2 || len(b.Funds) != 0 {
		t.Fatalf("balance %+v", b)
	}
	// No head at all: everything is folded from the entries.
	s.hooks.SetHead(t, s.LedgerStore, ledgerOrg, nil)
	mustAppend(t, s, ledgerCash(7, ""))
	if b := checkReconciles(t, s); b.Seq != 3 || b.Funds[""] != 7 {
		t.Fatalf("balance %+v", b)
	}
}

func mustBalance(t *testing.T, s testLedger) donations.Balance {
	t.Helper()
	b, err := s.Balance(t.Context(), ledgerOrg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ledgerConcurrentDisbursements races 16 disbursements against a balance that
// allows only some of them: exactly that many succeed, the rest are conflicts, and
// nothing is ever overdrawn.
func ledgerConcurrentDisbursements(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	mustAppend(t, s, ledgerCash(700, ""))
	g := mustAppend(t, s, ledgerGoods("大米", 5))
	if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: g.ID, VerifiedBy: "liaison-2"}); err != nil {
		t.Fatal(err)
	}
	const writers = 16
	var ok, conflict atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			e := ledgerPayout(t, 100, "")
			if i%2 == 1 {
				e = ledgerHandout(t, "大米", 1)
			}
			_, err := s.Append(ctx, ledgerOrg, e, nil)
			switch qingfeng.ErrorCode(err) {
			case "":
				ok.Add(1)
			case qingfeng.ECONFLICT:
				conflict.Add(1)
			default:
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	// 8 payouts of 100 from 700 (7 fit), 8 hand-outs of 1 from 5 (5 fit).
	if ok.Load() != 12 || conflict.Load() != 4 {
		t.Errorf("%d succeeded, %d conflicts; want 12 and 4", ok.Load(), conflict.Load())
	}
	b := checkReconciles(t, s)
	if b.Seq != 14 || len(b.Funds) != 0 || len(b.Stock) != 0 {
		t.Errorf("balance %+v", b)
	}
}

// ledgerGoodsOutNeedVerification: goods are handed out only once a second person
// signed for them (seed 003: 受赠物资须至少两人签收), counted per stock line, also
// when 32 hand-outs race the verification.
func ledgerGoodsOutNeedVerification(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	g := mustAppend(t, s, ledgerGoods("大米", 5))
	_, err := s.Append(ctx, ledgerOrg, ledgerHandout(t, "大米", 1), nil)
	var qe *qingfeng.Error
	if !errors.As(err, &qe) || qe.Code != qingfeng.ECONFLICT || qe.Fields["goods.quantity"].Code != "goods_unverified" ||
		!strings.Contains(qe.Message, "两人签收") {
		t.Fatalf("hand-out of unverified goods: %v", err)
	}
	if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: g.ID, VerifiedBy: "liaison-2"}); err != nil {
		t.Fatal(err)
	}
	g2 := mustAppend(t, s, ledgerGoods("大米", 3)) // 8 in stock, 3 of them unverified
	mustAppend(t, s, ledgerGoods("食用油", 2))      // another line, unverified
	mustAppend(t, s, ledgerHandout(t, "大米", 4))
	if _, err := s.Append(ctx, ledgerOrg, ledgerHandout(t, "大米", 2), nil); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("hand-out beyond the verified stock: %v", err)
	}
	mustAppend(t, s, ledgerHandout(t, "大米", 1))
	// A reversed unverified income no longer holds anything back.
	mustAppend(t, s, ledgerReversal(g2.ID))
	if b := checkReconciles(t, s); b.Stock[donations.StockKey{Item: "大米", Unit: "箱"}] != 0 {
		t.Fatalf("balance %+v", b)
	}

	// 32 hand-outs of 1 race the verification of 10.
	g3 := mustAppend(t, s, ledgerGoods("大米", 10))
	var ok atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 32 {
		wg.Go(func() {
			<-start
			_, err := s.Append(ctx, ledgerOrg, ledgerHandout(t, "大米", 1), nil)
			switch qingfeng.ErrorCode(err) {
			case "":
				ok.Add(1)
			case qingfeng.ECONFLICT:
			default:
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	var verifiedAt int64
	wg.Go(func() {
		<-start
		b, _ := s.Balance(ctx, ledgerOrg)
		verifiedAt = b.Seq // no hand-out at or before this seq may have taken g3's goods
		if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: g3.ID, VerifiedBy: "liaison-2"}); err != nil {
			t.Error(err)
		}
	})
	close(start)
	wg.Wait()
	if ok.Load() > 10 {
		t.Fatalf("%d hand-outs of 10 goods", ok.Load())
	}
	recs, _ := s.List(ctx, ledgerOrg, "")
	for _, r := range recs {
		if r.Seq > g3.Seq && r.Seq <= verifiedAt && r.Kind == donations.KindDisbursement {
			t.Errorf("hand-out %s appended before the goods were verified", r.ID)
		}
	}
	checkReconciles(t, s)
}

// ledgerRandomSequences applies random, seeded sequences of incomes,
// disbursements, project spending, reversals, verifications and publishing of monthly
// statements through the ledger, dated over four months, concurrently from a few
// writers, and checks that the stored balance equals the fold of the stored entries
// and an independent model's balance, and is never negative; and that every month's
// statement reconciles with the ledger (checkStatements).
func ledgerRandomSequences(t *testing.T, mk newTestLedger) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := mk(t, nil)
			ctx := t.Context()
			r := rand.New(rand.NewPCG(seed, 2026))
			projects := []string{"", "助学", "助残"}
			items := []string{"大米", "食用油"}
			var ids []string
			months := []string{"2026-08", "2026-09", "2026-10", "2026-11"}
			for step := range 120 {
				var e donations.Entry
				switch n := r.IntN(13); {
				case n == 12:
					// Publish a month that is over (the clock is 2026-11-30),
					// sometimes twice at once: exactly one succeeds.
					m := months[r.IntN(3)]
					var wg sync.WaitGroup
					var okN atomic.Int32
					for range 1 + r.IntN(2) {
						wg.Go(func() {
							_, err := s.L.Publish(ctx, ledgerOrg, m, "liaison-1")
							if err == nil {
								okN.Add(1)
							} else if qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
								t.Errorf("step %d: Publish %s: %v", step, m, err)
							}
						})
					}
					wg.Wait()
					if okN.Load() > 1 {
						t.Fatalf("step %d: %s published %d times", step, m, okN.Load())
					}
					continue
				case n < 3:
					e = ledgerCash(r.Int64N(500)+1, projects[r.IntN(3)])
				case n < 5:
					e = ledgerGoods(items[r.IntN(2)], r.Int64N(8)+1)
				case n < 6:
					e = donations.Entry{Kind: donations.KindProjectSpending, AmountFen: r.Int64N(400) + 1, Project: projects[1+r.IntN(2)],
						SignOffs: &donations.SignOffs{Handler: "甲", ProjectLead: "乙", FinanceLead: "丙", SecretaryGeneral: "丁"},
						Date:     "2026-11-30", RecordedBy: "liaison-1"}
				case n < 7:
					e = ledgerPayout(t, r.Int64N(400)+1, projects[r.IntN(3)])
				case n < 8:
					e = ledgerHandout(t, items[r.IntN(2)], r.Int64N(10)+1)
				case n < 10 && len(ids) > 0:
					e = ledgerReversal(ids[r.IntN(len(ids))])
				case len(ids) > 0:
					id := ids[r.IntN(len(ids))]
					_, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: id, VerifiedBy: fmt.Sprint("liaison-", r.IntN(3))})
					if c := qingfeng.ErrorCode(err); c != "" && c != qingfeng.ECONFLICT && c != qingfeng.EFORBIDDEN {
						t.Fatalf("step %d: Verify: %v", step, err)
					}
					continue
				default:
					e = ledgerCash(1, "")
				}
				e.Date = fmt.Sprintf("%s-%02d", months[r.IntN(4)], 1+r.IntN(28))
				// Some steps race a second writer doing the same.
				var wg sync.WaitGroup
				n := 1 + r.IntN(2)
				for range n {
					wg.Go(func() {
						got, err := s.Append(ctx, ledgerOrg, e, nil)
						if c := qingfeng.ErrorCode(err); c != "" && c != qingfeng.ECONFLICT && c != qingfeng.ENOTFOUND {
							t.Errorf("step %d: Append: %v", step, err)
						}
						if err == nil && got.Kind != donations.KindReversal {
							// ids is only read between steps.
							idsMu.Lock()
							ids = append(ids, got.ID)
							idsMu.Unlock()
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					t.FailNow()
				}
			}
			b := checkReconciles(t, s)
			recs, err := s.List(ctx, ledgerOrg, "")
			if err != nil {
				t.Fatal(err)
			}
			// The independent model: sums of amounts by line, without Apply.
			funds := map[string]int64{}
			stock := map[string]int64{}
			reversedBy := map[string]string{}
			byID := map[string]donations.Entry{}
			for _, rec := range recs {
				e := rec.Entry
				byID[e.ID] = e
				sign := int64(1)
				kind, from, inc := e.Kind, e.From, e.IncomeType
				if e.Kind == donations.KindReversal {
					if _, dup := reversedBy[e.Reverses]; dup {
						t.Fatalf("%s reversed twice", e.Reverses)
					}
					o, ok := byID[e.Reverses]
					if !ok || o.Kind == donations.KindReversal {
						t.Fatalf("reversal %s of %s, which is not an earlier entry", e.ID, e.Reverses)
					}
					reversedBy[e.Reverses] = e.ID
					e = o
					sign, kind, from, inc = -1, o.Kind, o.From, o.IncomeType
				}
				switch {
				case kind == donations.KindIncome && inc == donations.IncomeGoods:
					stock[e.Goods.Item] += sign * e.Goods.Quantity
				case kind == donations.KindIncome:
					funds[e.Project] += sign * e.AmountFen
				case kind == donations.KindProjectSpending || from == donations.FromFunds:
					funds[e.Project] -= sign * e.AmountFen
				default:
					stock[e.Goods.Item] -= sign * e.Goods.Quantity
				}
				for p, v := range funds {
					if v < 0 {
						t.Fatalf("after %s fund %q = %d", rec.ID, p, v)
					}
				}
				for i, v := range stock {
					if v < 0 {
						t.Fatalf("after %s stock %q = %d", rec.ID, i, v)
					}
				}
			}
			for p, v := range funds {
				if b.Funds[p] != v {
					t.Errorf("fund %q: store %d, model %d", p, b.Funds[p], v)
				}
			}
			for i, v := range stock {
				if b.Stock[donations.StockKey{Item: i, Unit: "箱"}] != v {
					t.Errorf("stock %q: store %d, model %d", i, b.Stock[donations.StockKey{Item: i, Unit: "箱"}], v)
				}
			}
			if len(reversedBy) != len(b.Reversed) {
				t.Errorf("%d reversals stored, head has %d", len(reversedBy), len(b.Reversed))
			}
			verified := 0
			for _, rec := range recs {
				if v := rec.Verification; v != nil {
					verified++
					if !rec.NeedsVerification() || v.VerifiedBy == rec.RecordedBy {
						t.Errorf("bad verification %+v of %+v", v, rec.Entry)
					}
				}
			}
			checkStatements(t, s, recs, b, months)
			t.Logf("%d entries, %d reversals, %d verified, balance %+v", len(recs), len(reversedBy), verified, b)
		})
	}
}

var idsMu sync.Mutex

// checkStatements checks every month's statement against recs, the whole ledger, and
// b, its balance: each reconciles (opening + income − reversals − spending = closing,
// and the same for every stock line), each month opens with the previous month's
// closing, the last closes with the balance, the figures equal an independent sum of
// the entries of the month; and each published month is exactly the statement of the
// entries up to its ThroughSeq, its hash checks, and the corrections listed beside it
// are exactly the later entries of the month and account for the whole difference
// from the live figures.
func checkStatements(t *testing.T, s testLedger, recs []donations.Record, b donations.Balance, months []string) {
	t.Helper()
	ctx := t.Context()
	var prev *donations.Statement
	published := 0
	for _, m := range months {
		live := donations.MonthlyStatement(ledgerOrg, recs, m, donations.DefaultLargeFlowFen)
		if live.OpeningFen+live.IncomeFen-live.ReversalsFen-live.SpendingFen != live.FundsEndFen {
			t.Errorf("%s: funds do not reconcile: %+v", m, live)
		}
		stock := map[donations.StockKey]int64{}
		for _, l := range live.StockOpening {
			stock[donations.StockKey{Item: l.Item, Unit: l.Unit}] += l.Quantity
		}
		for _, l := range live.GoodsIn {
			stock[donations.StockKey{Item: l.Item, Unit: l.Unit}] += l.Quantity
		}
		for _, l := range live.GoodsOut {
			stock[donations.StockKey{Item: l.Item, Unit: l.Unit}] -= l.Quantity
		}
		for _, l := range live.Reversals {
			if l.Goods != nil {
				stock[donations.StockKey{Item: l.Goods.Item, Unit: l.Goods.Unit}] += l.Goods.Quantity
			}
		}
		for _, l := range live.StockEnd {
			stock[donations.StockKey{Item: l.Item, Unit: l.Unit}] -= l.Quantity
		}
		for k, q := range stock {
			if q != 0 {
				t.Errorf("%s: stock %v does not reconcile (off by %d)", m, k, q)
			}
		}
		if prev != nil && prev.FundsEndFen != live.OpeningFen {
			t.Errorf("%s opens with %d, %s closed with %d", m, live.OpeningFen, prev.Month, prev.FundsEndFen)
		}
		// The independent sums, from the entries' own fields.
		var income, spending, reversals int64
		for _, r := range recs {
			e := r.Entry
			if !strings.HasPrefix(e.Date, m+"-") {
				continue
			}
			switch {
			case e.Kind == donations.KindIncome && (e.IncomeType == donations.IncomeCash || e.IncomeType == donations.IncomeTransfer):
				income += e.AmountFen
			case e.Kind == donations.KindProjectSpending || (e.Kind == donations.KindDisbursement && e.From == donations.FromFunds):
				spending += e.AmountFen
			case e.Kind == donations.KindReversal && e.ReversedKind == donations.KindIncome && e.ReversedIncomeType != donations.IncomeGoods &&
				e.ReversedIncomeType != donations.IncomeServices:
				reversals += e.AmountFen
			case e.Kind == donations.KindReversal && (e.ReversedKind == donations.KindProjectSpending || e.ReversedFrom == donations.FromFunds):
				reversals -= e.AmountFen
			}
		}
		if income != live.IncomeFen || spending != live.SpendingFen || reversals != live.ReversalsFen {
			t.Errorf("%s: income %d, spending %d, reversals %d; the entries sum to %d, %d, %d", m, live.IncomeFen, live.SpendingFen,
				live.ReversalsFen, income, spending, reversals)
		}
		prev = &live

		ps, corrections, err := s.L.PublicStatement(ctx, ledgerOrg, m)
		if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		published++
		if ps.ContentHash != donations.ContentHash(ps.Canonical()) {
			t.Errorf("%s: the content hash does not match the figures", m)
		}
		var upTo []donations.Record
		for _, r := range recs {
			if r.Seq <= ps.ThroughSeq {
				upTo = append(upTo, r)
			}
		}
		if then := donations.MonthlyStatement(ledgerOrg, upTo, m, donations.DefaultLargeFlowFen); string(then.Canonical()) != string(ps.Canonical()) {
			t.Errorf("%s: published\n%s\nbut the entries up to %d give\n%s", m, ps.Canonical(), ps.ThroughSeq, then.Canonical())
		}
		var want []string
		var delta int64
		for _, r := range recs {
			if r.Seq > ps.ThroughSeq && strings.HasPrefix(r.Date, m+"-") {
				want = append(want, r.ID)
				delta += donations.EffectOf(r.Entry).FundsFen
			}
		}
		var got []string
		var sum int64
		for _, c := range corrections {
			got = append(got, c.Entry)
			sum += c.FundsFen
			if c.Label != "更正" || c.RecordedAt.IsZero() {
				t.Errorf("%s: correction %+v", m, c)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: corrections %v, want %v", m, got, want)
		}
		liveFlow := live.IncomeFen - live.ReversalsFen - live.SpendingFen
		psFlow := ps.IncomeFen - ps.ReversalsFen - ps.SpendingFen
		if liveFlow-psFlow != sum || sum != delta {
			t.Errorf("%s: live flow %d, published %d, corrections sum to %d (entries %d)", m, liveFlow, psFlow, sum, delta)
		}
	}
	if prev.FundsEndFen != b.TotalFunds() {
		t.Errorf("the last month closes with %d, the ledger holds %d", prev.FundsEndFen, b.TotalFunds())
	}
	t.Logf("%d of %d months published", published, len(months))
}

// ledgerPublishRacesAppends publishes a month while 32 entries dated into it are
// appended at once: whatever the interleaving, the published figures are exactly the
// entries up to its ThroughSeq and every later one is listed as a correction, once.
func ledgerPublishRacesAppends(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	for range 3 {
		e := ledgerCash(100, "")
		e.Date = "2026-10-05"
		mustAppend(t, s, e)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 32 {
		wg.Go(func() {
			<-start
			e := ledgerCash(int64(1000+i), "")
			e.Date = "2026-10-20"
			if _, err := s.Append(ctx, ledgerOrg, e, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		<-start
		// Publish in the middle of the burst.
		for b, _ := s.Balance(ctx, ledgerOrg); b.Seq < 3+8; b, _ = s.Balance(ctx, ledgerOrg) {
			time.Sleep(time.Millisecond)
		}
		if _, err := s.L.Publish(ctx, ledgerOrg, "2026-10", "liaison-1"); err != nil {
			t.Error(err)
		}
	})
	close(start)
	wg.Wait()
	ps, corrections, err := s.L.PublicStatement(ctx, ledgerOrg, "2026-10")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.List(ctx, ledgerOrg, "")
	if err != nil || len(recs) != 35 {
		t.Fatalf("%d entries, %v", len(recs), err)
	}
	var want []string
	for _, r := range recs {
		if r.Seq > ps.ThroughSeq {
			want = append(want, r.ID)
		}
	}
	var got []string
	for _, c := range corrections {
		got = append(got, c.Entry)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("corrections %v, want %v (published through %d)", got, want, ps.ThroughSeq)
	}
	if then := donations.MonthlyStatement(ledgerOrg, recs[:ps.ThroughSeq], "2026-10", donations.DefaultLargeFlowFen); string(then.Canonical()) != string(ps.Canonical()) {
		t.Fatalf("published %s, entries up to %d give %s", ps.Canonical(), ps.ThroughSeq, then.Canonical())
	}
	t.Logf("published through %d, %d corrections", ps.ThroughSeq, len(corrections))
}

const listedOrg = "91330782MA2LISTED1"

// fakeIntake files cases like intake does with idempotency keys: the same key and
// report return the same case; the same key with another report is a conflict.
type fakeIntake struct {
	mu    sync.Mutex
	calls int
	byKey map[string]struct {
		hit    donations.Hit
		number string
	}
	cases []string
}

func (f *fakeIntake) File(_ context.Context, h donations.Hit, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.byKey == nil {
		f.byKey = map[string]struct {
			hit    donations.Hit
			number string
		}{}
	}
	if prev, ok := f.byKey[key]; ok {
		if prev.hit != h {
			return "", fmt.Errorf("idempotency key %s reused for a different report", key)
		}
		return prev.number, nil
	}
	n := fmt.Sprintf("QF-330782-2026-%05d", len(f.cases)+1)
	f.cases = append(f.cases, n)
	f.byKey[key] = struct {
		hit    donations.Hit
		number string
	}{h, n}
	return n, nil
}

func alertOrgs() []routing.Organization {
	return []routing.Organization{
		{CreditCode: ledgerOrg, Name: "某某慈善会", Status: routing.OrgNormal, Division: "330782"},
		{CreditCode: listedOrg, Name: "某某协会", Status: routing.OrgAbnormal, Division: "330782001"},
	}
}

// clock is a test clock that several goroutines read.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// alertLedger is the test ledger with alerts filed through f, the organizations of
// alertOrgs, the real lease store, and clk as the clock.
func alertLedger(t *testing.T, mk newTestLedger, f *fakeIntake, clk *clock) testLedger {
	s := mk(t, clk)
	s.L.File = f.File
	s.L.Leases = s.leases
	// The statement rule has its own test (cmd/qingfeng TestStatementPublishing).
	s.L.Rules = donations.AlertRules{Enabled: map[string]bool{donations.RuleStatementNotPublished: false}}
	s.L.Orgs = func(code string) (routing.Organization, bool) {
		for _, o := range alertOrgs() {
			if o.CreditCode == code {
				return o, true
			}
		}
		return routing.Organization{}, false
	}
	s.L.EachOrg = func(ctx context.Context, fn func(routing.Organization) error) error {
		for _, o := range alertOrgs() {
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	}
	return s
}

// insertRawEntry stores e as the next entry of code without the ledger's rules, still
// marked alerts_pending: an append whose process died before its alerts were evaluated.
func insertRawEntry(t *testing.T, s testLedger, code string, e donations.Entry) {
	t.Helper()
	b, err := s.Balance(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	e.RecordedAt, e.AlertsPending = s.clk.now(), true
	got, err := s.LedgerStore.Append(t.Context(), code, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != b.Seq+1 || !got.AlertsPending {
		t.Fatalf("raw entry stored as %+v", got)
	}
}

func alertIDs(t *testing.T, s testLedger) []string {
	t.Helper()
	var ids []string
	for _, code := range []string{ledgerOrg, listedOrg} {
		as, err := s.OrgAlerts(t.Context(), code)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Status != donations.AlertFiled || a.CaseNumber == "" || a.Detail == "" || a.OrgName == "" {
				t.Errorf("alert not filed: %+v", a)
			}
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// ledgerAlertsOnAppend: the rules about an entry are evaluated as it is appended,
// before any job runs, and a reversal a moment later undoes nothing; the time-based
// rules and the recovery of interrupted evaluations are the job's.
func ledgerAlertsOnAppend(t *testing.T, mk newTestLedger) {
	clk := &clock{}
	clk.set(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	f := &fakeIntake{}
	s := alertLedger(t, mk, f, clk)
	ctx := t.Context()

	// The dodge: a 60,000-yuan foreign gift reversed before any job ran.
	gift := ledgerCash(60_000_00, "")
	gift.ReceiptNumber = "浙0002"
	gift.Donor = &donations.Donor{Name: "Overseas Friend Ltd", Foreign: true}
	g := mustAppend(t, s, gift) // 1
	if len(f.cases) != 2 {
		t.Fatalf("%d cases on append, want 2 (large amount, foreign donor)", len(f.cases))
	}
	mustAppend(t, s, ledgerReversal(g.ID)) // 2
	noReceipt := ledgerCash(100_00, "")
	noReceipt.ReceiptNumber = ""
	mustAppend(t, s, noReceipt)                // 3: cash without receipt
	mustAppend(t, s, ledgerGoods("大米", 5))     // 4: goods, unverified until the job finds it overdue
	v := mustAppend(t, s, ledgerGoods("油", 2)) // 5: verified
	if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: v.ID, VerifiedBy: "liaison-2"}); err != nil {
		t.Fatal(err)
	}
	r := mustAppend(t, s, ledgerGoods("面粉", 1)) // 6: reversed before it was due
	mustAppend(t, s, ledgerReversal(r.ID))      // 7
	if _, err := s.Append(ctx, listedOrg, donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeTransfer,
		AmountFen: 300_00, Donor: &donations.Donor{Anonymous: true}, ReceiptNumber: "浙9", Date: "2026-11-29", RecordedBy: "l"}, nil); err != nil {
		t.Fatal(err)
	}
	// A disbursement without beneficiary whose process died before evaluating it.
	insertRawEntry(t, s, ledgerOrg, donations.Entry{Kind: donations.KindDisbursement, From: donations.FromFunds, AmountFen: 50_00,
		Date: "2026-11-30", RecordedBy: "liaison-1"}) // 8
	onAppend := []string{
		ledgerOrg + ":cash_without_receipt:0000000003",
		ledgerOrg + ":foreign_donor:0000000001",
		ledgerOrg + ":large_amount:0000000001",
		listedOrg + ":income_for_listed_org:2026-11",
	}
	if got := alertIDs(t, s); !slices.Equal(got, onAppend) {
		t.Fatalf("alerts on append %v, want %v", got, onAppend)
	}

	// Eight days later the job recovers entry 8 and finds entry 4 overdue.
	clk.add(8 * 24 * time.Hour)
	n, err := s.L.RunAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		ledgerOrg + ":cash_without_receipt:0000000003",
		ledgerOrg + ":disbursement_without_beneficiary:0000000008",
		ledgerOrg + ":foreign_donor:0000000001",
		ledgerOrg + ":goods_unverified:0000000004",
		ledgerOrg + ":large_amount:0000000001",
		listedOrg + ":income_for_listed_org:2026-11",
	}
	if got := alertIDs(t, s); !slices.Equal(got, want) {
		t.Fatalf("alerts %v, want %v", got, want)
	}
	if n != 1 || len(f.cases) != 6 {
		t.Fatalf("job filed %d, %d cases; want 1 by the job (8 was filed by its recovery's evaluation), 6 in all", n, len(f.cases))
	}
	if left, err := s.UnevaluatedEntries(ctx, clk.now(), 10); err != nil || len(left) != 0 {
		t.Fatalf("entries left unevaluated: %+v, %v", left, err)
	}
	a, err := s.Alert(ctx, want[0])
	if err != nil || a.CaseNumber == "" || a.EntryID != entryID(ledgerOrg, 3) || a.Division != "330782" {
		t.Fatalf("Alert: %+v, %v", a, err)
	}

	// A second run files nothing new; the listed org's month is open already.
	calls := f.calls
	if n, err := s.L.RunAlerts(ctx); err != nil || n != 0 || f.calls != calls {
		t.Fatalf("second run: %d, %v, %d calls", n, err, f.calls)
	}
	if _, err := s.Append(ctx, listedOrg, donations.Entry{Kind: donations.KindIncome, IncomeType: donations.IncomeTransfer,
		AmountFen: 100_00, Donor: &donations.Donor{Anonymous: true}, Date: "2026-11-30", RecordedBy: "l"}, nil); err != nil {
		t.Fatal(err)
	}
	if len(f.cases) != 6 {
		t.Fatalf("%d cases: a second income in an open month opened another", len(f.cases))
	}

	// RecordAlert deduplicates by org + rule + period.
	h := donations.Hit{Rule: donations.RuleLargeAmount, Org: ledgerOrg, Period: "0000000001", Detail: "x"}
	a1, err := s.Alert(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RecordAlert(ctx, h, "QF-other", clk.now()); err != nil || ok {
		t.Fatalf("RecordAlert of a recorded hit: %v, %v", ok, err)
	}
	if a2, _ := s.Alert(ctx, h.ID()); a2.CaseNumber != a1.CaseNumber || a2.Detail == "x" {
		t.Fatalf("a duplicate changed the record: %+v", a2)
	}
	if _, err := s.Alert(ctx, "nope"); err == nil {
		t.Fatal("Alert of an unknown id succeeded")
	}
}

// ledgerAlertsConcurrent appends 32 large gifts at once while job runs race them:
// every gift gets its one alert, filed, and no entry is left unevaluated.
func ledgerAlertsConcurrent(t *testing.T, mk newTestLedger) {
	clk := &clock{}
	clk.set(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	f := &fakeIntake{}
	s := alertLedger(t, mk, f, clk)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			e := ledgerCash(50_000_00+int64(i), "")
			if _, err := s.Append(ctx, ledgerOrg, e, nil); err != nil {
				t.Errorf("append %d: %v", i, err)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 3 {
				if _, err := s.L.RunAlerts(ctx); err != nil {
					t.Errorf("RunAlerts: %v", err)
				}
			}
		})
	}
	wg.Wait()
	clk.add(2 * time.Minute)
	if _, err := s.L.RunAlerts(ctx); err != nil {
		t.Fatal(err)
	}
	ids := alertIDs(t, s)
	if len(ids) != 32 {
		t.Fatalf("%d alerts for 32 large gifts: %v", len(ids), ids)
	}
	cases := map[string]bool{}
	for _, id := range ids {
		a, _ := s.Alert(ctx, id)
		cases[a.CaseNumber] = true
	}
	if len(cases) != 32 || len(f.cases) != 32 {
		t.Fatalf("%d distinct cases recorded, %d filed; want 32", len(cases), len(f.cases))
	}
	// Nothing was filed twice, even by a job run racing the appends: exactly once
	// does not lean on intake's idempotency.
	if f.calls != 32 {
		t.Errorf("%d filing calls for 32 alerts", f.calls)
	}
	if left, err := s.UnevaluatedEntries(ctx, clk.now().Add(time.Hour), 100); err != nil || len(left) != 0 {
		t.Fatalf("unevaluated: %d, %v", len(left), err)
	}
}

// ledgerAlertLease: a run releases its lease when it ends, so another instance
// runs at once; a crashed holder's lease blocks runs for at most its two minutes.
func ledgerAlertLease(t *testing.T, mk newTestLedger) {
	clk := &clock{}
	clk.set(time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC))
	f := &fakeIntake{}
	s := alertLedger(t, mk, f, clk)
	ctx := t.Context()
	leases := s.leases
	if _, err := s.L.RunAlerts(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := leases.AcquireLease(ctx, donations.AlertLease, "other", clk.now(), clk.now().Add(time.Minute)); err != nil || !ok {
		t.Fatalf("lease not released after a run: %v, %v", ok, err)
	}
	if err := leases.ReleaseLease(ctx, donations.AlertLease, "other"); err != nil {
		t.Fatal(err)
	}
	// A crashed holder: took the lease as the job does, then vanished.
	if ok, err := leases.AcquireLease(ctx, donations.AlertLease, "crashed", clk.now(), clk.now().Add(donations.DefaultAlertLease)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if donations.DefaultAlertLease > 2*time.Minute {
		t.Fatalf("lease of %v: a crashed holder blocks alerts longer than two minutes", donations.DefaultAlertLease)
	}
	noReceipt := ledgerCash(100_00, "")
	noReceipt.ReceiptNumber = ""
	insertRawEntry(t, s, ledgerOrg, noReceipt)
	clk.add(90 * time.Second)
	if n, err := s.L.RunAlerts(ctx); err != nil || n != 0 || len(f.cases) != 0 {
		t.Fatalf("ran under another's lease: %d, %v, %d cases", n, err, len(f.cases))
	}
	clk.add(31 * time.Second)
	if _, err := s.L.RunAlerts(ctx); err != nil || len(f.cases) != 1 {
		t.Fatalf("after the crashed lease lapsed: %v, %d cases", err, len(f.cases))
	}
}

func ledgerAlertsCrashRecovery(t *testing.T, mk newTestLedger) {
	for _, filedBeforeCrash := range []bool{false, true} {
		t.Run(fmt.Sprintf("filedBeforeCrash=%v", filedBeforeCrash), func(t *testing.T) {
			clk := &clock{}
			clk.set(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
			f := &fakeIntake{}
			s := alertLedger(t, mk, f, clk)
			ctx := t.Context()
			e := ledgerCash(100_00, "")
			e.ReceiptNumber = ""
			insertRawEntry(t, s, ledgerOrg, e)
			recs, err := s.List(ctx, ledgerOrg, "")
			if err != nil {
				t.Fatal(err)
			}
			hits := donations.EntryHits(alertOrgs()[0], recs[0].Entry, clk.now(), donations.AlertRules{})
			if len(hits) != 1 {
				t.Fatalf("hits %+v", hits)
			}
			// The crashed append: claimed, maybe filed, never marked.
			a, created, err := s.ClaimAlert(ctx, hits[0], clk.now())
			if err != nil || !created || a.Status != donations.AlertFiling {
				t.Fatalf("ClaimAlert: %+v, %v, %v", a, created, err)
			}
			if filedBeforeCrash {
				if _, err := f.File(ctx, a.Hit, donations.AlertIdempotencyKey(a.ID)); err != nil {
					t.Fatal(err)
				}
			}
			if _, created, err := s.ClaimAlert(ctx, hits[0], clk.now()); err != nil || created {
				t.Fatalf("second claim: %v, %v", created, err)
			}
			pending, err := s.PendingAlerts(ctx, 10)
			if err != nil || len(pending) != 1 || pending[0].ID != a.ID {
				t.Fatalf("pending %+v, %v", pending, err)
			}

			clk.add(2 * time.Minute)
			if _, err := s.L.RunAlerts(ctx); err != nil {
				t.Fatalf("retry run: %v", err)
			}
			if len(f.cases) != 1 {
				t.Fatalf("%d cases filed, want exactly 1", len(f.cases))
			}
			got, err := s.Alert(ctx, a.ID)
			if err != nil || got.Status != donations.AlertFiled || got.CaseNumber != f.cases[0] {
				t.Fatalf("alert after retry: %+v, %v", got, err)
			}
			if pending, _ := s.PendingAlerts(ctx, 10); len(pending) != 0 {
				t.Fatalf("still pending: %+v", pending)
			}
			calls := f.calls
			if n, err := s.L.RunAlerts(ctx); err != nil || n != 0 || f.calls != calls || len(f.cases) != 1 {
				t.Fatalf("run after recovery: %d, %v, %d calls, %d cases", n, err, f.calls, len(f.cases))
			}
		})
	}
}

// ledgerIdempotency: a submission under an Idempotency-Key is appended once, also
// when 32 copies race; a retry replays the first entry; the key with another request
// is a conflict that stores nothing; a refused entry does not use the key up; and the
// key is the organization's own.
func ledgerIdempotency(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	sub := donations.Submission{Entry: ledgerCash(300, "助学"), IdempotencyKey: "key-1"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	fresh := 0
	start := make(chan struct{})
	for i := range 32 {
		wg.Go(func() {
			<-start
			got, replayed, err := s.L.Append(ctx, ledgerOrg, sub)
			if err != nil {
				// storage/mongo answers a retry racing its first attempt with a
				// conflict ("being processed"); nothing else is acceptable.
				if qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
					t.Errorf("attempt %d: %v", i, err)
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[got.ID]++
			if !replayed {
				fresh++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(ids) != 1 || fresh != 1 {
		t.Fatalf("32 attempts with one key: entries %v, %d not replayed; want one entry appended once", ids, fresh)
	}
	if b := checkReconciles(t, s); b.Seq != 1 || b.Funds["助学"] != 300 {
		t.Fatalf("balance %+v", b)
	}
	first := entryID(ledgerOrg, 1)
	got, replayed, err := s.L.Append(ctx, ledgerOrg, sub)
	if err != nil || !replayed || got.ID != first || got.AmountFen != 300 {
		t.Fatalf("retry: %+v, replayed %v, %v", got, replayed, err)
	}
	other := sub
	other.Entry = ledgerCash(301, "助学")
	if _, _, err := s.L.Append(ctx, ledgerOrg, other); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("the key with another request: %v", err)
	}
	// A refused entry leaves its key free for the same request once it can pass.
	payout := donations.Submission{Entry: ledgerPayout(t, 500, ""), Beneficiary: &donations.Beneficiary{Name: "受益人 甲"}, IdempotencyKey: "key-2"}
	payout.Photos = []string{"photos-" + ledgerOrg + "/1.jpg"}
	if _, _, err := s.L.Append(ctx, ledgerOrg, payout); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("overdraw: %v", err)
	}
	mustAppend(t, s, ledgerCash(500, ""))
	if got, replayed, err := s.L.Append(ctx, ledgerOrg, payout); err != nil || replayed || got.Seq != 3 {
		t.Fatalf("the refused request again, now covered: %+v, %v, %v", got, replayed, err)
	}
	// Check, which a form runs before uploading photos, passes a retry of an entry the
	// balance no longer covers (Append replays it) but not the same entry under a new key.
	if err := s.L.Check(ctx, ledgerOrg, payout); err != nil {
		t.Errorf("Check of a retry of an appended payout the funds no longer cover: %v", err)
	}
	fresh2 := payout
	fresh2.IdempotencyKey = "key-3"
	if err := s.L.Check(ctx, ledgerOrg, fresh2); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Errorf("Check of the payout under a new key: %v", err)
	}
	hashOf := func(k string) string { h := sha256.Sum256([]byte(k)); return hex.EncodeToString(h[:]) }
	for org, keys := range map[string]map[string]bool{
		ledgerOrg:            {"key-1": true, "key-2": true, "key-3": false, "KEY-2": false, "key-2 ": false},
		"91330782MA2OTHER01": {"key-1": false, "key-2": false},
	} {
		for k, want := range keys {
			if used, err := s.KeyUsed(ctx, org, hashOf(k)); err != nil || used != want {
				t.Errorf("KeyUsed(%s, %q): %v, %v; want %v", org, k, used, err, want)
			}
		}
	}
	// Another organization's key space is its own.
	if got, replayed, err := s.L.Append(ctx, "91330782MA2OTHER01", sub); err != nil || replayed || got.Seq != 1 {
		t.Fatalf("the same key at another organization: %+v, %v, %v", got, replayed, err)
	}
	if b := checkReconciles(t, s); b.Seq != 3 || b.Funds[""] != 0 || b.Funds["助学"] != 300 {
		t.Fatalf("balance %+v", b)
	}
}

// ledgerKeyVariants: an entry, a photo or a statement is found only by its exact key
// and only for its own organization; other spellings of an entry id (no padding, a
// sign, spaces, a full-width colon, an invisible character, another organization's
// code or a prefix of it) find nothing and change nothing.
func ledgerKeyVariants(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	in := mustAppend(t, s, ledgerCash(100, ""))
	other := "91330782MA2OTHER01"
	for _, id := range []string{
		ledgerOrg + ":1", ledgerOrg + ":+000000001", ledgerOrg + ":0000000001 ", " " + in.ID, ledgerOrg + "：0000000001",
		ledgerOrg + ":\u200b0000000001", ledgerOrg + ":00000000001", ledgerOrg + ":0000000000", ledgerOrg + ":-000000001",
		strings.ToLower(ledgerOrg) + ":0000000001", ledgerOrg[:len(ledgerOrg)-1] + ":0000000001", other + ":0000000001", "",
	} {
		if _, err := s.Entry(ctx, ledgerOrg, id); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
			t.Errorf("Entry(%q): %v, want not found", id, err)
		}
		// Not found, or refused by validation before the store is asked.
		if _, _, err := s.L.Reverse(ctx, ledgerOrg, id, "录入错误", "", "liaison-2", ""); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND &&
			qingfeng.ErrorCode(err) != qingfeng.EINVALID {
			t.Errorf("Reverse(%q): %v, want not found or invalid", id, err)
		}
	}
	if _, err := s.Entry(ctx, other, in.ID); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Errorf("another organization's entry: %v", err)
	}
	if b := checkReconciles(t, s); b.Seq != 1 || len(b.Reversed) != 0 {
		t.Fatalf("balance %+v after refused reversals", b)
	}
	for _, ref := range []string{"photos-" + other + "/1.jpg", "photos-" + ledgerOrg + "/2.jpg", "photos-" + ledgerOrg + "/1.JPG",
		"photos-" + ledgerOrg + "/", "/1.jpg", "photos-" + ledgerOrg, "photos-" + ledgerOrg + "/1.jpg/", ""} {
		if _, err := s.Photo(ctx, ledgerOrg, ref); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
			t.Errorf("Photo(%q): %v, want not found", ref, err)
		}
	}
	if _, err := s.Photo(ctx, ledgerOrg, "photos-"+ledgerOrg+"/1.jpg"); err != nil {
		t.Errorf("own photo: %v", err)
	}
	for _, code := range []string{"", "a:b", "a;b", "a b", strings.Repeat("9", 65)} {
		if _, err := s.Balance(ctx, code); qingfeng.ErrorCode(err) != qingfeng.EINVALID {
			t.Errorf("Balance(%q): %v, want invalid", code, err)
		}
		if _, err := s.LedgerStore.Append(ctx, code, ledgerCash(1, ""), nil); qingfeng.ErrorCode(err) != qingfeng.EINVALID {
			t.Errorf("Append(%q): %v, want invalid", code, err)
		}
	}
	for _, m := range []string{"2026-1", "2026-13", "26-10", "2026-10-01", "2026/10", "２０２６-10"} {
		if _, err := s.LedgerStore.List(ctx, ledgerOrg, m); qingfeng.ErrorCode(err) != qingfeng.EINVALID {
			t.Errorf("List(%q): %v, want invalid", m, err)
		}
	}
}

// ledgerClaimAlertRace: 32 claims of one hit at once create one alert; every caller
// gets that alert.
func ledgerClaimAlertRace(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	h := donations.Hit{Rule: donations.RuleLargeAmount, Org: ledgerOrg, Period: "0000000001", EntryID: entryID(ledgerOrg, 1),
		Detail: "大额捐赠", OrgName: "测试组织", Division: "330782", Date: "2026-11-30"}
	var created atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 32 {
		wg.Go(func() {
			<-start
			a, ok, err := s.ClaimAlert(ctx, h, ledgerNow)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				created.Add(1)
			}
			if a.ID != h.ID() || a.Status != donations.AlertFiling || a.Hit != h || !a.CreatedAt.Equal(ledgerNow) {
				t.Errorf("claimed %+v", a)
			}
		})
	}
	close(start)
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d of 32 claims created the alert", created.Load())
	}
	if err := s.MarkAlertFiled(ctx, h.ID(), "QF-330782-2026-00001", ledgerNow.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAlertFiled(ctx, h.ID(), "QF-330782-2026-00002", ledgerNow.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	a, err := s.Alert(ctx, h.ID())
	if err != nil || a.Status != donations.AlertFiled || a.CaseNumber != "QF-330782-2026-00001" || !a.FiledAt.Equal(ledgerNow.Add(time.Second)) {
		t.Fatalf("filed alert %+v, %v", a, err)
	}
	if pending, err := s.PendingAlerts(ctx, 10); err != nil || len(pending) != 0 {
		t.Fatalf("pending %+v, %v", pending, err)
	}
}

// ledgerPhotosWithEntry: photos uploaded with an entry (a console form) are cited by it
// when it is appended; when it is refused — by validation, by the stock, or as a retry
// of an appended form — their records are gone again, and Check refuses what Append
// would refuse without appending anything. Removing another organization's batch
// changes nothing.
func ledgerPhotosWithEntry(t *testing.T, mk newTestLedger) {
	s := mk(t, nil)
	ctx := t.Context()
	photos := func(batch string, n int) []intake.Evidence {
		evs := make([]intake.Evidence, n)
		for i := range evs {
			evs[i] = intake.Evidence{ID: fmt.Sprintf("%d.jpg", i+1), ObjectKey: "ledger/" + batch + fmt.Sprintf("/%d.jpg", i+1), ContentType: "image/jpeg",
				Size: 10, SHA256Received: fmt.Sprintf("r%d", i), SHA256Stored: fmt.Sprintf("s%d", i), UploadedBy: "liaison:liaison-1", UploadedAt: ledgerNow}
		}
		return evs
	}
	gone := func(batch string, n int) {
		t.Helper()
		for i := range n {
			if _, err := s.Photo(ctx, ledgerOrg, fmt.Sprintf("%s/%d.jpg", batch, i+1)); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
				t.Errorf("photo %d of the refused batch %s: %v, want not found", i+1, batch, err)
			}
		}
	}
	goods := donations.Submission{Entry: ledgerGoods("棉被", 4), IdempotencyKey: "form-1"}
	if err := s.L.Check(ctx, ledgerOrg, goods); err != nil {
		t.Fatalf("Check of good goods: %v", err)
	}
	if b := checkReconciles(t, s); b.Seq != 0 {
		t.Fatalf("Check appended: %+v", b)
	}
	in, replayed, err := s.L.AppendWithPhotos(ctx, ledgerOrg, goods, "b1", photos("b1", 2))
	if err != nil || replayed || len(in.Photos) != 2 || in.Photos[0] != "b1/1.jpg" || in.Photos[1] != "b1/2.jpg" {
		t.Fatalf("goods with photos: %+v, %v, %v", in, replayed, err)
	}
	for _, ref := range in.Photos {
		if ev, err := s.Photo(ctx, ledgerOrg, ref); err != nil || ev.ContentType != "image/jpeg" {
			t.Errorf("cited photo %s: %+v, %v", ref, ev, err)
		}
	}
	// The same form again (a double tap): the first entry, the second upload removed.
	again, replayed, err := s.L.AppendWithPhotos(ctx, ledgerOrg, goods, "b2", photos("b2", 2))
	if err != nil || !replayed || again.ID != in.ID {
		t.Fatalf("retry of the form: %+v, %v, %v", again, replayed, err)
	}
	gone("b2", 2)
	if _, err := s.Verify(ctx, ledgerOrg, donations.Verification{EntryID: in.ID, VerifiedBy: "liaison-2"}); err != nil {
		t.Fatal(err)
	}
	// More than in stock: Check and AppendWithPhotos refuse it; nothing stays.
	over := donations.Submission{Entry: ledgerHandout(t, "棉被", 5), Beneficiary: &donations.Beneficiary{Name: "受益人 乙"}}
	over.Beneficiary, over.Entry.Beneficiary = &donations.Beneficiary{Name: "受益人 乙"}, nil
	if err := s.L.Check(ctx, ledgerOrg, over); !errors.Is(err, donations.ErrInsufficientStock) {
		t.Errorf("Check of a hand-out beyond the stock: %v", err)
	}
	if _, _, err := s.L.AppendWithPhotos(ctx, ledgerOrg, over, "b3", photos("b3", 1)); !errors.Is(err, donations.ErrInsufficientStock) {
		t.Errorf("hand-out beyond the stock with a photo: %v", err)
	}
	gone("b3", 1)
	// Invalid: no beneficiary.
	bad := over
	bad.Beneficiary, bad.Goods = nil, &donations.Goods{Item: "棉被", Quantity: 1, Unit: "箱"}
	if err := s.L.Check(ctx, ledgerOrg, bad); qingfeng.ErrorCode(err) != qingfeng.EINVALID {
		t.Errorf("Check without a beneficiary: %v", err)
	}
	if _, _, err := s.L.AppendWithPhotos(ctx, ledgerOrg, bad, "b4", photos("b4", 1)); qingfeng.ErrorCode(err) != qingfeng.EINVALID {
		t.Errorf("without a beneficiary, with a photo: %v", err)
	}
	gone("b4", 1)
	ok := over
	ok.Goods = &donations.Goods{Item: "棉被", Quantity: 4, Unit: "箱"}
	if err := s.L.Check(ctx, ledgerOrg, ok); err != nil {
		t.Errorf("Check of the whole stock: %v", err)
	}
	out, _, err := s.L.AppendWithPhotos(ctx, ledgerOrg, ok, "b5", photos("b5", 1))
	if err != nil || len(out.Photos) != 1 {
		t.Fatalf("hand-out of the whole stock: %+v, %v", out, err)
	}
	if b := checkReconciles(t, s); b.Seq != 2 || len(b.Stock) != 0 {
		t.Fatalf("balance %+v", b)
	}
	// Another organization's batch is not removed by this one's code; a missing batch
	// is no error.
	if err := s.RemovePhotos(ctx, ledgerOrg, "photos-91330782MA2OTHER01"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Photo(ctx, "91330782MA2OTHER01", "photos-91330782MA2OTHER01/1.jpg"); err != nil {
		t.Errorf("the other organization's photo after a removal under this code: %v", err)
	}
	if err := s.RemovePhotos(ctx, ledgerOrg, "no-such-batch"); err != nil {
		t.Errorf("removing a missing batch: %v", err)
	}
}
