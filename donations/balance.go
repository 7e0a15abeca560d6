package donations

import (
	"fmt"
	"maps"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

// Balance is the state of one organization's ledger after its first Seq entries: money
// in fen by restricted project ("" is the unrestricted fund), goods in stock by item
// and unit, and which entries were reversed. Zero lines are dropped, so two balances
// of the same entries are equal (Equal) however they were reached.
type Balance struct {
	Seq      int64              `json:"seq"`
	Funds    map[string]int64   `json:"funds"`
	Stock    map[StockKey]int64 `json:"stock"`
	Reversed map[string]string  `json:"reversed,omitempty"` // entry id → id of its reversal
}

// NewBalance is the balance of an empty ledger.
func NewBalance() Balance {
	return Balance{Funds: map[string]int64{}, Stock: map[StockKey]int64{}, Reversed: map[string]string{}}
}

// Clone returns a copy that shares nothing with b.
func (b Balance) Clone() Balance {
	c := Balance{Seq: b.Seq, Funds: maps.Clone(b.Funds), Stock: maps.Clone(b.Stock), Reversed: maps.Clone(b.Reversed)}
	if c.Funds == nil {
		c.Funds = map[string]int64{}
	}
	if c.Stock == nil {
		c.Stock = map[StockKey]int64{}
	}
	if c.Reversed == nil {
		c.Reversed = map[string]string{}
	}
	return c
}

// Equal reports whether a and b are the same state.
func (b Balance) Equal(o Balance) bool {
	return b.Seq == o.Seq && maps.Equal(nz(b.Funds), nz(o.Funds)) && maps.Equal(nz(b.Stock), nz(o.Stock)) &&
		len(b.Reversed) == len(o.Reversed) && maps.Equal(b.Reversed, o.Reversed)
}

func nz[K comparable](m map[K]int64) map[K]int64 {
	out := make(map[K]int64, len(m))
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// TotalFunds is the money of all projects together, in fen.
func (b Balance) TotalFunds() int64 {
	var n int64
	for _, v := range b.Funds {
		n += v
	}
	return n
}

// Effect is what one entry does to a balance.
type Effect struct {
	Project  string   // the fund line of FundsFen
	FundsFen int64    // added to Funds[Project]
	Stock    StockKey // the stock line of Quantity
	Quantity int64    // added to Stock[Stock]
}

// EffectOf is what e adds to a balance (negative for an outflow). Services income and
// reversals of it change nothing.
func EffectOf(e Entry) Effect {
	kind, income, from, sign := e.Kind, e.IncomeType, e.From, int64(1)
	if kind == KindReversal {
		kind, income, from, sign = e.ReversedKind, e.ReversedIncomeType, e.ReversedFrom, -1
	}
	var ef Effect
	switch {
	case kind == KindIncome && (income == IncomeCash || income == IncomeTransfer):
		ef = Effect{Project: e.Project, FundsFen: e.AmountFen}
	case kind == KindIncome && income == IncomeGoods && e.Goods != nil:
		ef = Effect{Stock: e.Goods.Key(), Quantity: e.Goods.Quantity}
	case kind == KindDisbursement && from == FromFunds, kind == KindProjectSpending:
		ef = Effect{Project: e.Project, FundsFen: -e.AmountFen}
	case kind == KindDisbursement && from == FromStock && e.Goods != nil:
		ef = Effect{Stock: e.Goods.Key(), Quantity: -e.Goods.Quantity}
	}
	ef.FundsFen *= sign
	ef.Quantity *= sign
	return ef
}

// Errors of Apply: the entry does not fit the balance. All are 409s.
var (
	ErrInsufficientFunds = qingfeng.Errorf(qingfeng.ECONFLICT, "资金余额不足，不能发放或支出", "the fund balance is too low for this entry")
	ErrInsufficientStock = qingfeng.Errorf(qingfeng.ECONFLICT, "物资库存不足，不能发放", "there is not enough stock for this entry")
	// ErrReversalSpent refuses the reversal of an income whose money or goods went out
	// since (it Is ErrInsufficientFunds or ErrInsufficientStock).
	ErrReversalSpent   = qingfeng.Errorf(qingfeng.ECONFLICT, "这笔收入的资金或物资已被发放或支出，冲销后余额将为负数，不能冲销；请先冲销之后的支出或发放", "the income was spent since and cannot be reversed")
	ErrAlreadyReversed = qingfeng.Errorf(qingfeng.ECONFLICT, "该记录已被冲销，不能重复冲销", "the entry has already been reversed")
	ErrOutOfSequence   = qingfeng.Errorf(qingfeng.ECONFLICT, "台账已有新的记录，请刷新后重试", "the ledger changed; reload and try again")
)

// Apply adds e, the next entry (Seq = b.Seq+1), to b. It refuses, leaving b unchanged,
// an entry out of sequence, a second reversal of an entry, and anything that would take
// a fund or stock line below zero: money or goods cannot leave before they came in,
// and an income cannot be reversed once it has been spent.
func (b *Balance) Apply(e Entry) error {
	if e.Seq != b.Seq+1 {
		return ErrOutOfSequence
	}
	if e.Kind == KindReversal {
		if e.Reverses == "" || e.ReversedKind == "" || e.ReversedKind == KindReversal {
			return fmt.Errorf("apply entry %s: reversal without a prepared copy of the reversed entry", e.ID)
		}
		if by, done := b.Reversed[e.Reverses]; done {
			err := *ErrAlreadyReversed
			err.Err = fmt.Errorf("entry %s was reversed by %s", e.Reverses, by)
			return &err
		}
	}
	ef := EffectOf(e)
	if b.Funds == nil {
		b.Funds = map[string]int64{}
	}
	if b.Stock == nil {
		b.Stock = map[StockKey]int64{}
	}
	if b.Reversed == nil {
		b.Reversed = map[string]string{}
	}
	funds := b.Funds[ef.Project] + ef.FundsFen
	stock := b.Stock[ef.Stock] + ef.Quantity
	if (funds < 0 || stock < 0) && e.Kind == KindReversal {
		// Only an income's reversal takes a balance down: what it brought in is spent.
		err := *ErrReversalSpent
		err.Err = ErrInsufficientFunds
		if stock < 0 {
			err.Err = ErrInsufficientStock
		}
		return &err
	}
	if funds < 0 {
		return ErrInsufficientFunds
	}
	if stock < 0 {
		if e.Kind == KindDisbursement && e.Goods != nil {
			// The form's quantity field says what is there (the error still Is
			// ErrInsufficientStock).
			err := *ErrInsufficientStock
			err.Err = ErrInsufficientStock
			err.Fields = map[string]qingfeng.FieldError{"goods.quantity": {Code: "insufficient_stock",
				Message: fmt.Sprintf("%s 库存只有 %d %s，不能发放 %d %s", ef.Stock.Item, b.Stock[ef.Stock], ef.Stock.Unit, e.Goods.Quantity, ef.Stock.Unit),
				English: fmt.Sprintf("only %d in stock", b.Stock[ef.Stock])}}
			return &err
		}
		return ErrInsufficientStock
	}
	if ef.FundsFen != 0 {
		setOrDrop(b.Funds, ef.Project, funds)
	}
	if ef.Quantity != 0 {
		setOrDrop(b.Stock, ef.Stock, stock)
	}
	if e.Kind == KindReversal {
		b.Reversed[e.Reverses] = e.ID
	}
	b.Seq = e.Seq
	return nil
}

func setOrDrop[K comparable](m map[K]int64, k K, v int64) {
	if v == 0 {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// Fold is the balance after entries, which must be one organization's entries in
// sequence from the first. An entry that Apply refuses is an error: a stored ledger
// never contains one.
func Fold(entries []Entry) (Balance, error) {
	b := NewBalance()
	return b, b.FoldFrom(entries)
}

// FoldFrom applies entries, continuing b's sequence, stopping at the first refused one.
func (b *Balance) FoldFrom(entries []Entry) error {
	for _, e := range entries {
		if err := b.Apply(e); err != nil {
			return fmt.Errorf("fold ledger at %s: %w", e.ID, err)
		}
	}
	return nil
}
