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
	if oct.Entries != 4 || oct.IncomeFen != 100000 || oct.SpendingFen != 0 || oct.FundsEndFen != 100000 ||
		fmt.Sprint(oct.GoodsIn) != "[{大米 袋 10}]" || fmt.Sprint(oct.StockEnd) != "[{大米 袋 10}]" {
		t.Errorf("October: %+v", oct)
	}
	if len(oct.LargeFlows) != 1 || oct.LargeFlows[0].Donor != "李先生" || oct.LargeFlows[0].AmountFen != 100000 {
		t.Errorf("large flows: %+v (the reversed disbursement must not be listed)", oct.LargeFlows)
	}
	nov := MonthlyStatement("o", recs, "2026-11", 50000)
	if nov.IncomeFen != 0 || nov.SpendingFen != 20000 || nov.SpendingByProject[""] != 20000 || nov.FundsEndFen != 80000 ||
		fmt.Sprint(nov.GoodsOut) != "[{大米 袋 4}]" || fmt.Sprint(nov.StockEnd) != "[{大米 袋 6}]" {
		t.Errorf("November: %+v", nov)
	}
	if d, ok := FindReceipt(recs, "ZJ-2", 50000); !ok || d != "2026-10-06" {
		t.Errorf("goods receipt: %s %v", d, ok)
	}
	if _, ok := FindReceipt(recs, "ZJ-1", 99999); ok {
		t.Error("a wrong amount matched")
	}
}
