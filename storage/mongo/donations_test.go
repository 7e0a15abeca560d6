package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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
	*LedgerStore
	L *donations.Ledger
}

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

func newLedgerStore(t *testing.T, tg target) testLedger {
	s := NewLedgerStore(openTestDB(t, tg))
	s.now = func() time.Time { return ledgerNow }
	l := &donations.Ledger{Store: s, Sealer: testSealer(t), Now: s.now,
		Orgs: func(code string) (routing.Organization, bool) {
			return routing.Organization{CreditCode: code, Name: "测试组织", Division: "330782", Status: routing.OrgNormal}, true
		}}
	// The photo the test entries cite.
	for _, code := range []string{ledgerOrg, "91330782MA2OTHER01"} {
		if _, err := s.AddPhotos(t.Context(), code, "photos-"+code, []intake.Evidence{{ID: "1.jpg"}}); err != nil {
			t.Fatal(err)
		}
	}
	return testLedger{LedgerStore: s, L: l}
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
		if r.Seq != int64(i+1) || r.ID != LedgerEntryID(ledgerOrg, r.Seq) {
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

func TestLedgerAppendAndList(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := newLedgerStore(t, tg)
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
	})
}

func TestLedgerReversal(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := newLedgerStore(t, tg)
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
		if _, err := s.Append(ctx, ledgerOrg, ledgerReversal(LedgerEntryID(ledgerOrg, 99)), nil); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
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
	})
}

// TestLedgerStaleHead checks that a head cache behind the entries (an append that
// stopped between its insert and the head update) is repaired on read, and that
// appends after it still check against all entries.
func TestLedgerStaleHead(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := newLedgerStore(t, tg)
		ctx := t.Context()
		mustAppend(t, s, ledgerCash(100, ""))
		head := toHeadDoc(ledgerOrg, mustBalance(t, s))
		mustAppend(t, s, ledgerPayout(t, 100, ""))
		// Roll the head back to before the payout.
		if _, err := s.db.coll(collLedgerHeads).ReplaceOne(ctx, bson.M{"_id": ledgerOrg}, head); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, ledgerOrg, ledgerPayout(t, 1, ""), nil); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			t.Fatalf("payout checked against a stale head: %v", err)
		}
		if b := checkReconciles(t, s); b.Seq != 2 || len(b.Funds) != 0 {
			t.Fatalf("balance %+v", b)
		}
		var h ledgerHeadDoc
		if err := s.db.coll(collLedgerHeads).FindOne(ctx, bson.M{"_id": ledgerOrg}).Decode(&h); err != nil || h.Seq != 2 {
			t.Fatalf("head not repaired: %+v, %v", h, err)
		}
		// No head at all: everything is folded from the entries.
		if _, err := s.db.coll(collLedgerHeads).DeleteOne(ctx, bson.M{"_id": ledgerOrg}); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, ledgerCash(7, ""))
		if b := checkReconciles(t, s); b.Seq != 3 || b.Funds[""] != 7 {
			t.Fatalf("balance %+v", b)
		}
	})
}

func mustBalance(t *testing.T, s testLedger) donations.Balance {
	t.Helper()
	b, err := s.Balance(t.Context(), ledgerOrg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLedgerConcurrentDisbursements races 16 disbursements against a balance that
// allows only some of them: exactly that many succeed, the rest are conflicts, and
// nothing is ever overdrawn.
func TestLedgerConcurrentDisbursements(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := newLedgerStore(t, tg)
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
	})
}

// TestLedgerGoodsOutNeedVerification: goods are handed out only once a second person
// signed for them (seed 003: 受赠物资须至少两人签收), counted per stock line, also
// when 32 hand-outs race the verification.
func TestLedgerGoodsOutNeedVerification(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := newLedgerStore(t, tg)
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
	})
}

// TestLedgerRandomSequences applies random, seeded sequences of incomes,
// disbursements, project spending, reversals, verifications and publishing of monthly
// statements through the ledger, dated over four months, concurrently from a few
// writers, and checks that the stored balance equals the fold of the stored entries
// and an independent model's balance, and is never negative; and that every month's
// statement reconciles with the ledger (checkStatements).
func TestLedgerRandomSequences(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		for seed := range uint64(3) {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				s := newLedgerStore(t, tg)
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
	})
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

// TestLedgerPublishRacesAppends publishes a month while 32 entries dated into it are
// appended at once: whatever the interleaving, the published figures are exactly the
// entries up to its ThroughSeq and every later one is listed as a correction, once.
func TestLedgerPublishRacesAppends(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		s := newLedgerStore(t, tg)
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
	})
}
