package donations

import (
	"fmt"
	"testing"
)

func TestMonthlyStatement(t *testing.T) {
	cash := Entry{ID: "o:1", Seq: 1, Kind: KindIncome, IncomeType: IncomeCash, AmountFen: 100000, Date: "2026-10-05",
		ReceiptNumber: "ZJ-1", Donor: &Donor{Name: "李先生", NameConsent: true}}
	goods := Entry{ID: "o:2", Seq: 2, Kind: KindIncome, IncomeType: IncomeGoods, Date: "2026-10-06", ReceiptNumber: "ZJ-2",
		Goods: &Goods{Item: "大米", Quantity: 10, Unit: "袋", ValuationFen: 50000}, Donor: &Donor{Anonymous: true}}
	paid := Entry{ID: "o:3", Seq: 3, Kind: KindDisbursement, From: FromFunds, AmountFen: 60000, Date: "2026-10-10"}
	rev := Entry{ID: "o:4", Seq: 4, Kind: KindReversal, Reverses: "o:3", ReversedKind: KindDisbursement, ReversedFrom: FromFunds, AmountFen: 60000, Date: "2026-10-12"}
	out := Entry{ID: "o:5", Seq: 5, Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: "大米", Quantity: 4, Unit: "袋"}, Date: "2026-11-02"}
	spend := Entry{ID: "o:6", Seq: 6, Kind: KindProjectSpending, AmountFen: 20000, Project: "", Date: "2026-11-03"}
	recs := []Record{{Entry: cash}, {Entry: goods}, {Entry: paid, ReversedBy: "o:4"}, {Entry: rev}, {Entry: out}, {Entry: spend}}

	oct := MonthlyStatement("o", recs, "2026-10", 50000)
	// The reversed disbursement stays spending, and its reversal is its own line.
	if oct.Entries != 4 || oct.OpeningFen != 0 || oct.IncomeFen != 100000 || oct.SpendingFen != 60000 || oct.ReversalsFen != -60000 ||
		oct.FundsEndFen != 100000 || fmt.Sprint(oct.GoodsIn) != "[{大米 袋 10}]" || fmt.Sprint(oct.StockEnd) != "[{大米 袋 10}]" {
		t.Errorf("October: %+v", oct)
	}
	if len(oct.Reversals) != 1 || oct.Reversals[0].Reverses != "o:3" || oct.Reversals[0].FundsFen != 60000 || oct.Reversals[0].ReversedDate != "2026-10-10" {
		t.Errorf("October reversals: %+v", oct.Reversals)
	}
	if len(oct.LargeFlows) != 2 || oct.LargeFlows[0].Donor != "李先生" || oct.LargeFlows[0].AmountFen != 100000 || oct.LargeFlows[1].Entry != "o:3" {
		t.Errorf("large flows: %+v", oct.LargeFlows)
	}
	nov := MonthlyStatement("o", recs, "2026-11", 50000)
	if nov.OpeningFen != 100000 || nov.IncomeFen != 0 || nov.SpendingFen != 20000 || nov.SpendingByProject[""] != 20000 || nov.FundsEndFen != 80000 ||
		fmt.Sprint(nov.GoodsOut) != "[{大米 袋 4}]" || fmt.Sprint(nov.StockOpening) != "[{大米 袋 10}]" || fmt.Sprint(nov.StockEnd) != "[{大米 袋 6}]" {
		t.Errorf("November: %+v", nov)
	}
	for _, st := range []Statement{oct, nov} {
		if st.OpeningFen+st.IncomeFen-st.ReversalsFen-st.SpendingFen != st.FundsEndFen {
			t.Errorf("%s does not reconcile: %+v", st.Month, st)
		}
	}
	if d, ok := FindReceipt(recs, "ZJ-2", 50000); !ok || d != "2026-10-06" {
		t.Errorf("goods receipt: %s %v", d, ok)
	}
	if _, ok := FindReceipt(recs, "ZJ-1", 99999); ok {
		t.Error("a wrong amount matched")
	}
}

// TestReversalInALaterMonth is the case: a 60,000-yuan November gift reversed in
// December. November keeps the gift; December shows a reversal line of −60,000 yuan and
// its own income only, never a negative income.
func TestReversalInALaterMonth(t *testing.T) {
	gift := Entry{ID: "o:1", Seq: 1, Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 6_000_000, Date: "2026-11-20", Donor: &Donor{Anonymous: true}}
	small := Entry{ID: "o:2", Seq: 2, Kind: KindIncome, IncomeType: IncomeCash, AmountFen: 10_000, Date: "2026-12-01", Donor: &Donor{Anonymous: true}}
	rev := Entry{ID: "o:3", Seq: 3, Kind: KindReversal, Reverses: "o:1", ReversedKind: KindIncome, ReversedIncomeType: IncomeTransfer, AmountFen: 6_000_000, Date: "2026-12-02"}
	recs := []Record{{Entry: gift, ReversedBy: "o:3"}, {Entry: small}, {Entry: rev}}
	nov := MonthlyStatement("o", recs, "2026-11", DefaultLargeFlowFen)
	dec := MonthlyStatement("o", recs, "2026-12", DefaultLargeFlowFen)
	if nov.IncomeFen != 6_000_000 || len(nov.LargeFlows) != 1 || nov.FundsEndFen != 6_000_000 {
		t.Errorf("November: %+v", nov)
	}
	if dec.IncomeFen != 10_000 || dec.ReversalsFen != 6_000_000 || len(dec.Reversals) != 1 || dec.Reversals[0].FundsFen != -6_000_000 ||
		dec.Reversals[0].ReversedDate != "2026-11-20" || dec.OpeningFen != 6_000_000 || dec.FundsEndFen != 10_000 {
		t.Errorf("December: %+v", dec)
	}
}

func TestContentHash(t *testing.T) {
	st := Statement{Org: "o", Month: "2026-11", IncomeFen: 8_800_000, SpendingByProject: map[string]int64{"b": 1, "a": 2}}
	c := st.Canonical()
	if string(c) != string(st.Canonical()) {
		t.Fatal("canonical encoding is not deterministic")
	}
	got, err := ParsePublished(c, ContentHash(c))
	if err != nil || got.IncomeFen != 8_800_000 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	moved := st
	moved.IncomeFen = 10_300_000
	if _, err := ParsePublished(moved.Canonical(), ContentHash(c)); err == nil {
		t.Fatal("changed figures passed the stored hash")
	}
}

// TestFindReceiptSpellings: a donor's check finds their gift however the receipt number
// is typed (case, full-width, dashes, spaces, invisible characters), and only with the
// right amount; a reversed gift is not found.
func TestFindReceiptSpellings(t *testing.T) {
	recs := []Record{
		{Entry: Entry{ID: "o:1", Seq: 1, Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 880000, ReceiptNumber: "ZJ-2026-001", Date: "2026-10-05"}},
		{Entry: Entry{ID: "o:2", Seq: 2, Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 5000, ReceiptNumber: "ZJ-2026-002", Date: "2026-10-06"}, ReversedBy: "o:3"},
	}
	for _, typed := range []string{"ZJ-2026-001", "zj-2026-001", "ＺＪ－２０２６－００１", "ZJ—2026—001", "ZJ–2026-001", " ZJ-2026 -001 ", "ZJ-\u200b2026-001", "Zj-2026-001\ufeff"} {
		if d, ok := FindReceipt(recs, typed, 880000); !ok || d != "2026-10-05" {
			t.Errorf("%q: not found (%q %v)", typed, d, ok)
		}
	}
	for _, typed := range []string{"ZJ-2026-0011", "ZJ2026001X", "", "\u200b"} {
		if _, ok := FindReceipt(recs, typed, 880000); ok {
			t.Errorf("%q matched", typed)
		}
	}
	if _, ok := FindReceipt(recs, "zj-2026-001", 880001); ok {
		t.Error("a wrong amount matched")
	}
	if _, ok := FindReceipt(recs, "ZJ-2026-002", 5000); ok {
		t.Error("a reversed gift was found")
	}
}
