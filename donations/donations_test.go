package donations

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/crypto"
)

var now = time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC) // 2026-12-01 04:00 in China

var (
	sealedOnce sync.Once
	sealed     []byte
)

// sealedBeneficiary is a real age file sealed to a throwaway custodian.
func sealedBeneficiary(t testing.TB) []byte {
	t.Helper()
	sealedOnce.Do(func() {
		_, rcpt, err := crypto.GenerateCustodianKey()
		if err != nil {
			t.Fatal(err)
		}
		s, err := crypto.NewSealer(map[string][]string{"*": {rcpt}})
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.Seal(t.Context(), "330782", []byte("张三 330782199001011234"))
		if err != nil {
			t.Fatal(err)
		}
		sealed = id.Ciphertext
	})
	return sealed
}

func cash(fen int64) Entry {
	return Entry{Kind: KindIncome, IncomeType: IncomeCash, AmountFen: fen, Donor: &Donor{Anonymous: true},
		ReceiptNumber: "浙财0012345", Date: "2026-11-30", RecordedBy: "u1"}
}

func goodsIn(item string, qty int64) Entry {
	return Entry{Kind: KindIncome, IncomeType: IncomeGoods, Goods: &Goods{Item: item, Quantity: qty, Unit: "箱", ValuationFen: 5000 * qty},
		Donor: &Donor{Name: "某某公司", NameConsent: true}, Date: "2026-11-30", RecordedBy: "u1"}
}

func TestValidate(t *testing.T) {
	ben := sealedBeneficiary(t)
	mod := func(e Entry, f func(*Entry)) Entry { f(&e); return e }
	valid := map[string]Entry{
		"cash":               cash(100),
		"cash no receipt":    mod(cash(100), func(e *Entry) { e.ReceiptNumber = "" }),
		"transfer named":     mod(cash(1), func(e *Entry) { e.IncomeType = IncomeTransfer; e.Donor = &Donor{Name: "李四"}; e.Project = "助学" }),
		"goods":              goodsIn("大米", 10),
		"services":           {Kind: KindIncome, IncomeType: IncomeServices, AmountFen: 30000, Purpose: "义诊一次", Donor: &Donor{Anonymous: true}, Date: "2026-12-01", RecordedBy: "u1"},
		"disburse funds":     {Kind: KindDisbursement, From: FromFunds, AmountFen: 50, Beneficiary: ben, Photos: []string{"p/1.jpg"}, Date: "2026-11-01", RecordedBy: "u1"},
		"disburse stock":     {Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: "大米", Quantity: 1, Unit: "箱"}, Beneficiary: ben, Date: "2026-11-01", RecordedBy: "u1"},
		"project spending":   {Kind: KindProjectSpending, AmountFen: 50, Project: "助学", SignOffs: &SignOffs{"甲", "乙", "丙", "丁"}, Date: "2026-11-01", RecordedBy: "u1"},
		"reversal":           {Kind: KindReversal, Reverses: "91330782MA2XXXXX0X:0000000001", Reason: "金额录错", Date: "2026-11-30", RecordedBy: "u1"},
		"today in China":     mod(cash(1), func(e *Entry) { e.Date = "2026-12-01" }),
		"receipt is loose":   mod(cash(1), func(e *Entry) { e.ReceiptNumber = "No.2026/33-001" }),
		"photos up to max":   mod(cash(1), func(e *Entry) { e.Photos = make([]string, MaxPhotos); fill(e.Photos, "x.jpg") }),
		"stock no valuation": {Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: "油", Quantity: 2, Unit: "桶"}, Beneficiary: ben, Date: "2026-11-01", RecordedBy: "u1"},
	}
	for name, e := range valid {
		t.Run("valid/"+name, func(t *testing.T) {
			if err := Validate(e, now); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}

	invalid := []struct {
		name  string
		e     Entry
		field string
	}{
		{"no kind", mod(cash(1), func(e *Entry) { e.Kind = "" }), "kind"},
		{"bad kind", mod(cash(1), func(e *Entry) { e.Kind = "gift" }), "kind"},
		{"zero amount", cash(0), "amount_fen"},
		{"negative amount", cash(-5), "amount_fen"},
		{"huge amount", cash(MaxAmountFen + 1), "amount_fen"},
		{"no income type", mod(cash(1), func(e *Entry) { e.IncomeType = "" }), "income_type"},
		{"bad income type", mod(cash(1), func(e *Entry) { e.IncomeType = "crypto" }), "income_type"},
		{"cash with goods", mod(cash(1), func(e *Entry) { e.Goods = &Goods{Item: "x", Quantity: 1, Unit: "个", ValuationFen: 1} }), "goods"},
		{"no donor", mod(cash(1), func(e *Entry) { e.Donor = nil }), "donor"},
		{"anonymous with name", mod(cash(1), func(e *Entry) { e.Donor = &Donor{Anonymous: true, Name: "王五"} }), "donor.name"},
		{"named without name", mod(cash(1), func(e *Entry) { e.Donor = &Donor{NameConsent: true} }), "donor.name"},
		{"receipt with space", mod(cash(1), func(e *Entry) { e.ReceiptNumber = "12 34" }), "receipt_number"},
		{"receipt too long", mod(cash(1), func(e *Entry) { e.ReceiptNumber = strings.Repeat("1", 65) }), "receipt_number"},
		{"no date", mod(cash(1), func(e *Entry) { e.Date = "" }), "date"},
		{"bad date", mod(cash(1), func(e *Entry) { e.Date = "2026/11/30" }), "date"},
		{"impossible date", mod(cash(1), func(e *Entry) { e.Date = "2026-02-30" }), "date"},
		{"future date", mod(cash(1), func(e *Entry) { e.Date = "2026-12-02" }), "date"},
		{"no recorder", mod(cash(1), func(e *Entry) { e.RecordedBy = "" }), "recorded_by"},
		{"too many photos", mod(cash(1), func(e *Entry) { e.Photos = make([]string, MaxPhotos+1); fill(e.Photos, "x") }), "photos"},
		{"empty photo", mod(cash(1), func(e *Entry) { e.Photos = []string{""} }), "photos[0]"},
		{"goods missing", mod(goodsIn("米", 1), func(e *Entry) { e.Goods = nil }), "goods"},
		{"goods no item", mod(goodsIn("", 1), func(e *Entry) {}), "goods.item"},
		{"goods zero qty", goodsIn("米", 0), "goods.quantity"},
		{"goods no unit", mod(goodsIn("米", 1), func(e *Entry) { e.Goods.Unit = "" }), "goods.unit"},
		{"goods no valuation", mod(goodsIn("米", 1), func(e *Entry) { e.Goods.ValuationFen = 0 }), "goods.valuation_fen"},
		{"goods with amount", mod(goodsIn("米", 1), func(e *Entry) { e.AmountFen = 5 }), "amount_fen"},
		{"goods with project", mod(goodsIn("米", 1), func(e *Entry) { e.Project = "助学" }), "project"},
		{"services no purpose", Entry{Kind: KindIncome, IncomeType: IncomeServices, AmountFen: 1, Donor: &Donor{Anonymous: true}, Date: "2026-11-01", RecordedBy: "u"}, "purpose"},
		{"income with beneficiary", mod(cash(1), func(e *Entry) { e.Beneficiary = ben }), "beneficiary"},
		{"income with sign-offs", mod(cash(1), func(e *Entry) { e.SignOffs = &SignOffs{} }), "sign_offs"},
		{"income with reverses", mod(cash(1), func(e *Entry) { e.Reverses = "x" }), "reverses"},
		{"disburse no from", Entry{Kind: KindDisbursement, AmountFen: 1, Beneficiary: ben, Date: "2026-11-01", RecordedBy: "u"}, "from"},
		{"disburse bad from", Entry{Kind: KindDisbursement, From: "bank", AmountFen: 1, Beneficiary: ben, Date: "2026-11-01", RecordedBy: "u"}, "from"},
		{"disburse no beneficiary", Entry{Kind: KindDisbursement, From: FromFunds, AmountFen: 1, Date: "2026-11-01", RecordedBy: "u"}, "beneficiary"},
		{"disburse plaintext beneficiary", Entry{Kind: KindDisbursement, From: FromFunds, AmountFen: 1, Beneficiary: []byte("张三"), Date: "2026-11-01", RecordedBy: "u"}, "beneficiary"},
		{"disburse truncated beneficiary", Entry{Kind: KindDisbursement, From: FromFunds, AmountFen: 1, Beneficiary: ben[:len(ben)/2], Date: "2026-11-01", RecordedBy: "u"}, "beneficiary"},
		{"disburse zero", Entry{Kind: KindDisbursement, From: FromFunds, Beneficiary: ben, Date: "2026-11-01", RecordedBy: "u"}, "amount_fen"},
		{"disburse with donor", Entry{Kind: KindDisbursement, From: FromFunds, AmountFen: 1, Beneficiary: ben, Donor: &Donor{Anonymous: true}, Date: "2026-11-01", RecordedBy: "u"}, "donor"},
		{"stock no goods", Entry{Kind: KindDisbursement, From: FromStock, Beneficiary: ben, Date: "2026-11-01", RecordedBy: "u"}, "goods"},
		{"stock negative valuation", Entry{Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: "米", Quantity: 1, Unit: "箱", ValuationFen: -1}, Beneficiary: ben, Date: "2026-11-01", RecordedBy: "u"}, "goods.valuation_fen"},
		{"spending no sign-offs", Entry{Kind: KindProjectSpending, AmountFen: 1, Project: "p", Date: "2026-11-01", RecordedBy: "u"}, "sign_offs"},
		{"spending missing secretary", Entry{Kind: KindProjectSpending, AmountFen: 1, Project: "p", SignOffs: &SignOffs{"甲", "乙", "丙", ""}, Date: "2026-11-01", RecordedBy: "u"}, "sign_offs.secretary_general"},
		{"spending missing finance", Entry{Kind: KindProjectSpending, AmountFen: 1, Project: "p", SignOffs: &SignOffs{"甲", "乙", " ", "丁"}, Date: "2026-11-01", RecordedBy: "u"}, "sign_offs.finance_lead"},
		{"spending no project", Entry{Kind: KindProjectSpending, AmountFen: 1, SignOffs: &SignOffs{"甲", "乙", "丙", "丁"}, Date: "2026-11-01", RecordedBy: "u"}, "project"},
		{"reversal no target", Entry{Kind: KindReversal, Reason: "r", Date: "2026-11-01", RecordedBy: "u"}, "reverses"},
		{"reversal no reason", Entry{Kind: KindReversal, Reverses: "x:1", Date: "2026-11-01", RecordedBy: "u"}, "reason"},
		{"control chars", mod(cash(1), func(e *Entry) { e.Purpose = "a\x00b" }), "purpose"},
		{"padded project", mod(cash(1), func(e *Entry) { e.Project = " 助学" }), "project"},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			err := Validate(tt.e, now)
			var qe *qingfeng.Error
			if !errors.As(err, &qe) || qe.Code != qingfeng.EINVALID {
				t.Fatalf("Validate = %v, want EINVALID", err)
			}
			fe, ok := qe.Fields[tt.field]
			if !ok {
				t.Fatalf("fields = %v, want %q", qe.Fields, tt.field)
			}
			if fe.Message == "" || fe.English == "" || !hasHan(fe.Message) {
				t.Errorf("field error %q = %+v, want a Chinese and an English message", tt.field, fe)
			}
		})
	}
}

func fill(s []string, v string) {
	for i := range s {
		s[i] = v
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

func TestDonorPublicName(t *testing.T) {
	for _, tt := range []struct {
		d    Donor
		want string
		ok   bool
	}{
		{Donor{Anonymous: true}, "", false},
		{Donor{Name: "李四"}, "", false},
		{Donor{Name: "李四", NameConsent: true}, "李四", true},
	} {
		if got, ok := tt.d.PublicName(); got != tt.want || ok != tt.ok {
			t.Errorf("%+v.PublicName() = %q, %v; want %q, %v", tt.d, got, ok, tt.want, tt.ok)
		}
	}
}

// seq numbers entries and gives them ids, as the store does.
func seq(entries ...Entry) []Entry {
	for i := range entries {
		entries[i].Seq = int64(i + 1)
		entries[i].ID = "org:" + string(rune('a'+i))
		entries[i].Org = "org"
	}
	return entries
}

func reversalOf(t *testing.T, orig Entry) Entry {
	t.Helper()
	r := Entry{Kind: KindReversal, Reverses: orig.ID, Reason: "录错", Date: "2026-11-30", RecordedBy: "u2", Org: orig.Org}
	if err := PrepareReversal(orig, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFoldAndReversal(t *testing.T) {
	ben := sealedBeneficiary(t)
	es := seq(
		cash(1000),
		func() Entry { e := cash(500); e.Project = "助学"; return e }(),
		goodsIn("大米", 10),
		Entry{Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: "大米", Quantity: 4, Unit: "箱"}, Beneficiary: ben},
		Entry{Kind: KindProjectSpending, AmountFen: 200, Project: "助学"},
		Entry{Kind: KindIncome, IncomeType: IncomeServices, AmountFen: 99999},
	)
	b, err := Fold(es)
	if err != nil {
		t.Fatal(err)
	}
	if b.Funds[""] != 1000 || b.Funds["助学"] != 300 || b.Stock[StockKey{"大米", "箱"}] != 6 || b.Seq != 6 || b.TotalFunds() != 1300 {
		t.Fatalf("balance = %+v", b)
	}

	// Reversing the disbursement puts the rice back.
	r := reversalOf(t, es[3])
	r.Seq, r.ID = 7, "org:r1"
	if err := b.Apply(r); err != nil {
		t.Fatal(err)
	}
	if b.Stock[StockKey{"大米", "箱"}] != 10 || b.Reversed[es[3].ID] != "org:r1" {
		t.Fatalf("after reversal: %+v", b)
	}
	// Only once.
	r2 := reversalOf(t, es[3])
	r2.Seq, r2.ID = 8, "org:r2"
	if err := b.Apply(r2); !errors.Is(err, ErrAlreadyReversed) && qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("second reversal: %v", err)
	}
	// A reversal cannot be reversed.
	if err := PrepareReversal(r, &Entry{Kind: KindReversal, Reverses: r.ID}); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Fatalf("reversal of a reversal: %v", err)
	}
	// Nor another organization's entry.
	if err := PrepareReversal(es[0], &Entry{Kind: KindReversal, Reverses: es[0].ID, Org: "other"}); qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Fatalf("reversal across organizations: %v", err)
	}
	// An income already spent cannot be reversed: the 助学 fund holds 300 of its 500.
	r3 := reversalOf(t, es[1])
	r3.Seq, r3.ID = 8, "org:r3"
	before := b.Clone()
	if err := b.Apply(r3); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("reversal of spent income: %v", err)
	}
	if !b.Equal(before) {
		t.Fatal("a refused entry changed the balance")
	}
	// Out of sequence.
	if err := b.Apply(es[0]); !errors.Is(err, ErrOutOfSequence) {
		t.Fatalf("out of sequence: %v", err)
	}
}

func TestApplyRefusesOverdraw(t *testing.T) {
	ben := sealedBeneficiary(t)
	b := NewBalance()
	for _, e := range []Entry{
		{Seq: 1, Kind: KindDisbursement, From: FromFunds, AmountFen: 1, Beneficiary: ben},
		{Seq: 1, Kind: KindProjectSpending, AmountFen: 1, Project: "p"},
		{Seq: 1, Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: "米", Quantity: 1, Unit: "箱"}},
	} {
		if err := b.Apply(e); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			t.Errorf("%s from an empty ledger: %v, want ECONFLICT", e.Kind, err)
		}
	}
	// Money of one project cannot pay for another.
	if err := b.Apply(Entry{Seq: 1, Kind: KindIncome, IncomeType: IncomeCash, AmountFen: 100, Project: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(Entry{Seq: 2, Kind: KindProjectSpending, AmountFen: 1, Project: "b"}); !errors.Is(err, ErrInsufficientFunds) {
		t.Errorf("spending another project's money: %v", err)
	}
	if err := b.Apply(Entry{Seq: 2, Kind: KindDisbursement, From: FromFunds, AmountFen: 100, Project: "a"}); err != nil {
		t.Errorf("spending all of it: %v", err)
	}
	if len(b.Funds) != 0 {
		t.Errorf("zero lines kept: %v", b.Funds)
	}
}

func TestCheckVerification(t *testing.T) {
	g := seq(goodsIn("米", 1))[0]
	if err := CheckVerification(g, Verification{EntryID: g.ID, VerifiedBy: "u2"}); err != nil {
		t.Fatal(err)
	}
	if err := CheckVerification(g, Verification{EntryID: g.ID, VerifiedBy: g.RecordedBy}); qingfeng.ErrorCode(err) != qingfeng.EFORBIDDEN {
		t.Errorf("self-verification: %v", err)
	}
	if err := CheckVerification(g, Verification{EntryID: g.ID}); qingfeng.ErrorCode(err) != qingfeng.EINVALID {
		t.Errorf("no verifier: %v", err)
	}
	c := seq(cash(1))[0]
	if err := CheckVerification(c, Verification{EntryID: c.ID, VerifiedBy: "u2"}); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
		t.Errorf("verifying cash: %v", err)
	}
}

// TestFoldRandom checks, over random sequences, that the fold never goes negative,
// refuses exactly what a simple model refuses, and equals the model's balance.
func TestFoldRandom(t *testing.T) {
	ben := sealedBeneficiary(t)
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 7))
		b := NewBalance()
		model := map[string]int64{} // "f:<project>" or "s:<item>"
		var applied []Entry
		reversed := map[string]bool{}
		for i := 0; i < 200; i++ {
			e := randomEntry(r, ben, applied, reversed, t)
			e.Seq = b.Seq + 1
			e.ID = "org:" + string(rune(0x4e00+i))
			ef := EffectOf(e)
			fk, sk := "f:"+ef.Project, "s:"+ef.Stock.Item
			wantOK := model[fk]+ef.FundsFen >= 0 && model[sk]+ef.Quantity >= 0 && !(e.Kind == KindReversal && reversed[e.Reverses])
			err := b.Apply(e)
			if (err == nil) != wantOK {
				t.Fatalf("seed %d step %d: Apply(%+v) = %v, model says ok=%v", seed, i, e, err, wantOK)
			}
			if err != nil {
				continue
			}
			model[fk] += ef.FundsFen
			model[sk] += ef.Quantity
			if e.Kind == KindReversal {
				reversed[e.Reverses] = true
			}
			applied = append(applied, e)
		}
		folded, err := Fold(applied)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !folded.Equal(b) {
			t.Fatalf("seed %d: fold %+v != incremental %+v", seed, folded, b)
		}
		for k, v := range model {
			var got int64
			if k[0] == 'f' {
				got = b.Funds[k[2:]]
			} else if k != "s:" {
				got = b.Stock[StockKey{k[2:], "箱"}]
			}
			if v < 0 || (k != "s:" && got != v) {
				t.Fatalf("seed %d: %s = %d, model %d", seed, k, got, v)
			}
		}
	}
}

func randomEntry(r *rand.Rand, ben []byte, applied []Entry, reversed map[string]bool, t *testing.T) Entry {
	projects := []string{"", "助学", "助残"}
	items := []string{"大米", "食用油"}
	switch n := r.IntN(10); {
	case n < 3:
		e := cash(r.Int64N(1000) + 1)
		e.Project = projects[r.IntN(3)]
		return e
	case n < 5:
		return goodsIn(items[r.IntN(2)], r.Int64N(10)+1)
	case n < 6:
		return Entry{Kind: KindProjectSpending, AmountFen: r.Int64N(800) + 1, Project: projects[1+r.IntN(2)], SignOffs: &SignOffs{"甲", "乙", "丙", "丁"}}
	case n < 7:
		return Entry{Kind: KindDisbursement, From: FromFunds, AmountFen: r.Int64N(800) + 1, Project: projects[r.IntN(3)], Beneficiary: ben}
	case n < 8:
		return Entry{Kind: KindDisbursement, From: FromStock, Goods: &Goods{Item: items[r.IntN(2)], Quantity: r.Int64N(12) + 1, Unit: "箱"}, Beneficiary: ben}
	default:
		var candidates []Entry
		for _, e := range applied {
			if e.Kind != KindReversal {
				candidates = append(candidates, e)
			}
		}
		if len(candidates) == 0 {
			return cash(1)
		}
		return reversalOf(t, candidates[r.IntN(len(candidates))])
	}
}

func TestParseYuan(t *testing.T) {
	for _, tt := range []struct {
		in   string
		fen  int64
		fail bool
	}{
		{"1234.50", 123450, false}, {"1234.5", 123450, false}, {"1234", 123400, false}, {"0.01", 1, false}, {"0.1", 10, false},
		{"0", 0, false}, {"88000", 8_800_000, false}, {"1000000000000", MaxAmountFen, false},
		{"1000000000000.01", 0, true}, {"9223372036854775807", 0, true}, {"99999999999999999999999", 0, true},
		{"1e3", 0, true}, {"1E3", 0, true}, {"0.001", 0, true}, {"1,234.50", 0, true}, {"１２３", 0, true}, {"12３", 0, true},
		{" 12", 0, true}, {"12 ", 0, true}, {"12.", 0, true}, {".5", 0, true}, {"-5", 0, true}, {"+5", 0, true},
		{"", 0, true}, {"012", 0, true}, {"1.2.3", 0, true}, {"0x10", 0, true}, {"NaN", 0, true}, {"Inf", 0, true},
		{"12\u200b", 0, true}, {"１２.５", 0, true}, {"1_000", 0, true}, {"12.5\n", 0, true}, {"١٢", 0, true},
	} {
		fen, err := ParseYuan(tt.in)
		if tt.fail != (err != nil) || (!tt.fail && fen != tt.fen) {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d (fail %v)", tt.in, fen, err, tt.fen, tt.fail)
		}
	}
}
