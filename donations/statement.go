package donations

import (
	"cmp"
	"slices"
	"strings"
)

// StockLine is a quantity of one item.
type StockLine struct {
	Item     string `json:"item"`
	Unit     string `json:"unit"`
	Quantity int64  `json:"quantity"`
}

// Flow is a large movement, as the public may see it: no beneficiary, no recorder,
// and a donor's name only with their consent.
type Flow struct {
	Date      string `json:"date"`
	Kind      Kind   `json:"kind"`
	AmountFen int64  `json:"amount_fen"`
	Project   string `json:"project,omitempty"`
	Donor     string `json:"donor,omitempty"` // the public name, or 匿名/未公开
}

// Statement is an organization's monthly donation statement (月度公示): income,
// spending, stock and large flows, with no personal data.
type Statement struct {
	Org               string           `json:"org"`
	Month             string           `json:"month"`
	Entries           int              `json:"entries"`
	IncomeFen         int64            `json:"income_fen"`          // cash and transfers
	ServicesFen       int64            `json:"services_fen"`        // valuation of services received
	GoodsIn           []StockLine      `json:"goods_in"`            // goods received
	SpendingFen       int64            `json:"spending_fen"`        // disbursements from funds and project spending
	SpendingByProject map[string]int64 `json:"spending_by_project"` // "" is the unrestricted fund
	GoodsOut          []StockLine      `json:"goods_out"`           // goods handed out
	FundsEndFen       int64            `json:"funds_end_fen"`       // at the end of the month
	StockEnd          []StockLine      `json:"stock_end"`
	LargeFlows        []Flow           `json:"large_flows"`
	// Published says whether the month's statement was published (by the 10th of the
	// next month, or a warning opens a case); set by the caller.
	Published   bool   `json:"published"`
	PublishedAt string `json:"published_at,omitempty"`
}

func inMonth(date, month string) bool { return strings.HasPrefix(date, month+"-") }

// MonthlyStatement computes the statement of month (YYYY-MM) from every record of the
// ledger. Entries count in the month of their date; a reversal counts, negated, in its
// own month. Flows of at least largeFen are listed.
func MonthlyStatement(org string, recs []Record, month string, largeFen int64) Statement {
	st := Statement{Org: org, Month: month, SpendingByProject: map[string]int64{}, GoodsIn: []StockLine{}, GoodsOut: []StockLine{},
		StockEnd: []StockLine{}, LargeFlows: []Flow{}}
	in, out, end := map[StockKey]int64{}, map[StockKey]int64{}, map[StockKey]int64{}
	last := month + "-99" // every date of the month sorts before it
	for _, r := range recs {
		e := r.Entry
		ef := EffectOf(e)
		if e.Date <= last {
			st.FundsEndFen += ef.FundsFen
			if ef.Quantity != 0 {
				end[ef.Stock] += ef.Quantity
			}
		}
		if !inMonth(e.Date, month) {
			continue
		}
		st.Entries++
		kind, income, sign := e.Kind, e.IncomeType, int64(1)
		if kind == KindReversal {
			kind, income, sign = e.ReversedKind, e.ReversedIncomeType, -1
		}
		switch {
		case kind == KindIncome && income == IncomeServices:
			st.ServicesFen += sign * e.AmountFen
		case kind == KindIncome && ef.FundsFen != 0:
			st.IncomeFen += ef.FundsFen
		case kind == KindIncome && ef.Quantity != 0:
			in[ef.Stock] += ef.Quantity
		case ef.FundsFen != 0:
			st.SpendingFen -= ef.FundsFen
			st.SpendingByProject[ef.Project] -= ef.FundsFen
		case ef.Quantity != 0:
			out[ef.Stock] -= ef.Quantity
		}
		if e.Kind != KindReversal && r.ReversedBy == "" && largeFen > 0 && e.AmountFen >= largeFen {
			f := Flow{Date: e.Date, Kind: e.Kind, AmountFen: e.AmountFen, Project: e.Project}
			if e.Donor != nil {
				f.Donor = e.Donor.PublicLabel()
			}
			st.LargeFlows = append(st.LargeFlows, f)
		}
	}
	lines := func(m map[StockKey]int64) []StockLine {
		out := []StockLine{}
		for k, q := range m {
			if q != 0 {
				out = append(out, StockLine{Item: k.Item, Unit: k.Unit, Quantity: q})
			}
		}
		slices.SortFunc(out, func(a, b StockLine) int { return cmp.Or(cmp.Compare(a.Item, b.Item), cmp.Compare(a.Unit, b.Unit)) })
		return out
	}
	st.GoodsIn, st.GoodsOut, st.StockEnd = lines(in), lines(out), lines(end)
	return st
}

// FindReceipt reports whether an income with this receipt number and amount (money, or
// the valuation of goods) is recorded and not reversed, and its date. A donor checks
// their gift this way.
func FindReceipt(recs []Record, receipt string, amountFen int64) (string, bool) {
	for _, r := range recs {
		e := r.Entry
		if e.Kind != KindIncome || r.ReversedBy != "" || e.ReceiptNumber == "" || e.ReceiptNumber != receipt {
			continue
		}
		amount := e.AmountFen
		if e.Goods != nil {
			amount = e.Goods.ValuationFen
		}
		if amount == amountFen {
			return e.Date, true
		}
	}
	return "", false
}
