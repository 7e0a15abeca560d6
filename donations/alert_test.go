package donations

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/routing"
)

const testOrg = "91330782MA2ALERT01"

// evaluate is what the ledger does over recs: EntryHits as each entry is appended,
// then the periodic OverdueHits, deduplicated by hit id as the stored claims are.
func evaluate(org routing.Organization, recs []Record, now time.Time, rules AlertRules) []Hit {
	var out []Hit
	seen := map[string]bool{}
	add := func(hs []Hit) {
		for _, h := range hs {
			if !seen[h.ID()] {
				seen[h.ID()] = true
				out = append(out, h)
			}
		}
	}
	for _, r := range recs {
		add(EntryHits(org, r.Entry, now, rules))
	}
	add(OverdueHits(org, recs, now, rules))
	return out
}

func TestAlertRules(t *testing.T) {
	evalNow := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	recorded := evalNow.Add(-10 * 24 * time.Hour) // 10 days ago
	fresh := evalNow.Add(-24 * time.Hour)
	rec := func(seq int64, e Entry) Record {
		e.Seq, e.Org = seq, testOrg
		e.ID = testOrg + ":" + seqOfEntry(seq)
		if e.Date == "" {
			e.Date = "2026-11-20"
		}
		if e.RecordedAt.IsZero() {
			e.RecordedAt = recorded
		}
		return Record{Entry: e}
	}
	cash := func(fen int64, receipt string) Entry {
		return Entry{Kind: KindIncome, IncomeType: IncomeCash, AmountFen: fen, ReceiptNumber: receipt,
			Donor: &Donor{Name: "张三", NameConsent: true}}
	}
	goods := func(valFen int64) Entry {
		return Entry{Kind: KindIncome, IncomeType: IncomeGoods, Goods: &Goods{Item: "大米", Quantity: 10, Unit: "袋", ValuationFen: valFen},
			Donor: &Donor{Anonymous: true}}
	}
	payout := func(ben []byte) Entry {
		return Entry{Kind: KindDisbursement, From: FromFunds, AmountFen: 1000, Beneficiary: ben, Photos: []string{"batch/photo"}}
	}
	normal := routing.Organization{CreditCode: testOrg, Name: "某某慈善会", Status: routing.OrgNormal, Division: "330782"}
	listed := normal
	listed.Status = routing.OrgAbnormal

	type want struct{ rule, period string }
	tests := []struct {
		name  string
		org   routing.Organization
		recs  []Record
		rules AlertRules
		want  []want
	}{
		{"clean", normal, []Record{rec(1, cash(100_00, "浙A1"))}, AlertRules{}, nil},
		{"large cash", normal, []Record{rec(1, cash(50_000_00, "浙A1"))}, AlertRules{},
			[]want{{RuleLargeAmount, "0000000001"}}},
		{"just below large", normal, []Record{rec(1, cash(49_999_99, "浙A1"))}, AlertRules{}, nil},
		{"custom threshold", normal, []Record{rec(1, cash(1_000_00, "浙A1"))}, AlertRules{LargeAmountFen: 1_000_00},
			[]want{{RuleLargeAmount, "0000000001"}}},
		{"large goods valuation", normal, func() []Record {
			r := rec(1, goods(60_000_00))
			r.Verification = &Verification{EntryID: r.ID}
			return []Record{r}
		}(), AlertRules{}, []want{{RuleLargeAmount, "0000000001"}}},
		{"cash without receipt", normal, []Record{rec(1, cash(100_00, "")), rec(2, cash(100_00, "  "))}, AlertRules{},
			[]want{{RuleCashWithoutReceipt, "0000000001"}, {RuleCashWithoutReceipt, "0000000002"}}},
		{"transfer without receipt is not cash", normal, []Record{rec(1, Entry{Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 100})},
			AlertRules{}, nil},
		{"large cash without receipt hits twice", normal, []Record{rec(1, cash(80_000_00, ""))}, AlertRules{},
			[]want{{RuleLargeAmount, "0000000001"}, {RuleCashWithoutReceipt, "0000000001"}}},
		{"goods unverified", normal, []Record{rec(1, goods(100_00))}, AlertRules{},
			[]want{{RuleGoodsUnverified, "0000000001"}}},
		{"goods unverified but fresh", normal, func() []Record {
			e := goods(100_00)
			e.RecordedAt = fresh
			return []Record{rec(1, e)}
		}(), AlertRules{}, nil},
		{"goods unverified, longer limit", normal, []Record{rec(1, goods(100_00))}, AlertRules{UnverifiedGoodsDays: 30}, nil},
		{"goods verified", normal, func() []Record {
			r := rec(1, goods(100_00))
			r.Verification = &Verification{EntryID: r.ID, VerifiedBy: "b"}
			return []Record{r}
		}(), AlertRules{}, nil},
		{"disbursement without beneficiary", normal, []Record{rec(1, cash(100_00, "浙A1")), rec(2, payout(nil)),
			rec(3, Entry{Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: "大米", Quantity: 1, Unit: "袋"}})},
			AlertRules{}, []want{{RuleDisbursementWithoutBeneficiary, "0000000002"}, {RuleDisbursementWithoutBeneficiary, "0000000003"}}},
		{"disbursement with beneficiary", normal, []Record{rec(1, payout([]byte("age")))}, AlertRules{}, nil},
		// Reversing an entry does not undo its hits (they were found on append);
		// goods reversed before they were due for verification need none.
		{"a reversal does not undo a hit", normal, func() []Record {
			a := rec(1, cash(90_000_00, ""))
			a.ReversedBy = testOrg + ":0000000002"
			b := rec(2, Entry{Kind: KindReversal, Reverses: a.ID, ReversedKind: KindIncome, ReversedIncomeType: IncomeCash, AmountFen: 90_000_00})
			c := rec(3, goods(100_00))
			c.ReversedBy = testOrg + ":0000000004"
			return []Record{a, b, c}
		}(), AlertRules{}, []want{{RuleLargeAmount, "0000000001"}, {RuleCashWithoutReceipt, "0000000001"}}},
		{"income for listed org, grouped by month", listed, []Record{
			rec(1, Entry{Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 100_00, Date: "2026-10-03"}),
			rec(2, Entry{Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 200_00, Date: "2026-11-03"}),
			rec(3, Entry{Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 300_00, Date: "2026-11-04"}),
			rec(4, Entry{Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 300_00, Date: "2026-01-04"}), // older than 90 days
			rec(5, payout([]byte("age"))),
		}, AlertRules{}, []want{{RuleIncomeForListedOrg, "2026-10"}, {RuleIncomeForListedOrg, "2026-11"}}},
		{"income for normal org", normal, []Record{rec(1, Entry{Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 100_00})}, AlertRules{}, nil},
		{"disabled rule", normal, []Record{rec(1, cash(80_000_00, ""))}, AlertRules{Enabled: map[string]bool{RuleLargeAmount: false, RuleCashWithoutReceipt: true}},
			[]want{{RuleCashWithoutReceipt, "0000000001"}}},
	}
	for _, st := range []routing.OrgStatus{routing.OrgDishonest, routing.OrgRevoked, routing.OrgDeregistered} {
		o := normal
		o.Status = st
		tests = append(tests, struct {
			name  string
			org   routing.Organization
			recs  []Record
			rules AlertRules
			want  []want
		}{"listed " + string(st), o, []Record{rec(1, Entry{Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 100_00})}, AlertRules{},
			[]want{{RuleIncomeForListedOrg, "2026-11"}}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits := evaluate(tc.org, tc.recs, evalNow, tc.rules)
			var got []want
			for _, h := range hits {
				got = append(got, want{h.Rule, h.Period})
				if h.Org != testOrg || h.OrgName != "某某慈善会" || h.Division != "330782" || h.EntryID == "" || h.Date == "" {
					t.Errorf("hit %+v lacks its organization or entry", h)
				}
				if h.ID() != testOrg+":"+h.Rule+":"+h.Period {
					t.Errorf("ID %q", h.ID())
				}
				if h.Detail == "" || strings.Contains(h.Detail, "张三") || len([]rune(h.Detail)) > 5000 {
					t.Errorf("bad detail %q", h.Detail)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("hits %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAlertDetail(t *testing.T) {
	org := routing.Organization{CreditCode: testOrg, Name: "某某慈善会", Status: routing.OrgDishonest, RegDivision: "330700"}
	e := Entry{ID: testOrg + ":0000000007", Seq: 7, Org: testOrg, Kind: KindIncome, IncomeType: IncomeCash, AmountFen: 5_000_050,
		Date: "2026-11-20", Donor: &Donor{Name: "李四", NameConsent: true}, Purpose: "李四的心意"}
	hits := evaluate(org, []Record{{Entry: e}}, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), AlertRules{})
	if len(hits) != 3 {
		t.Fatalf("hits %+v", hits)
	}
	for _, h := range hits {
		if strings.Contains(h.Detail, "李四") {
			t.Errorf("detail leaks the donor: %s", h.Detail)
		}
		if h.Division != "330700" {
			t.Errorf("division %q, want the registration division when there is no address", h.Division)
		}
	}
	if !strings.Contains(hits[0].Detail, "50000.50 元") || !strings.Contains(hits[0].Detail, "第 7 条") {
		t.Errorf("large amount detail %q", hits[0].Detail)
	}
	if !strings.Contains(hits[2].Detail, "严重违法失信名单") {
		t.Errorf("listed detail %q", hits[2].Detail)
	}
}

func seqOfEntry(seq int64) string { return seqOf(Entry{Seq: seq}) }

func TestForeignDonor(t *testing.T) {
	org := routing.Organization{CreditCode: testOrg, Name: "某某慈善会", Status: routing.OrgNormal, Division: "330782"}
	e := Entry{ID: testOrg + ":0000000001", Seq: 1, Kind: KindIncome, IncomeType: IncomeTransfer, AmountFen: 1000, Date: "2026-11-01",
		ReceiptNumber: "R", Donor: &Donor{Name: "Foreign Friend Ltd", Foreign: true}}
	hits := evaluate(org, []Record{{Entry: e}}, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), DefaultAlertRules)
	if len(hits) != 1 || hits[0].Rule != RuleForeignDonor || strings.Contains(hits[0].Detail, "Foreign Friend") {
		t.Fatalf("hits %+v", hits)
	}
	e.Donor.Foreign = false
	if hits := evaluate(org, []Record{{Entry: e}}, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), DefaultAlertRules); len(hits) != 0 {
		t.Fatalf("a domestic donor hit: %+v", hits)
	}
}

func TestDisbursementWithoutPhoto(t *testing.T) {
	org := routing.Organization{CreditCode: testOrg, Name: "某某慈善会", Status: routing.OrgNormal, Division: "330782"}
	e := Entry{ID: testOrg + ":0000000001", Seq: 1, Kind: KindDisbursement, From: FromFunds, AmountFen: 1000, Date: "2026-11-01", Beneficiary: []byte("age")}
	hits := evaluate(org, []Record{{Entry: e}}, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), DefaultAlertRules)
	if len(hits) != 1 || hits[0].Rule != RuleDisbursementWithoutBeneficiary || !strings.Contains(hits[0].Detail, "发放照片") {
		t.Fatalf("hits %+v", hits)
	}
}
