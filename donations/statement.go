package donations

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
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
	Entry     string `json:"entry"` // the entry's id, which a later reversal line names
	Date      string `json:"date"`
	Kind      Kind   `json:"kind"`
	AmountFen int64  `json:"amount_fen"`
	Project   string `json:"project,omitempty"`
	Donor     string `json:"donor,omitempty"` // the public name, or 匿名/未公开
}

// ReversalLine is a reversal (冲销) dated in the statement's month, shown as its own
// line: reversing a November gift in December leaves November's income as published
// and puts a line of −60,000 yuan into December.
type ReversalLine struct {
	Entry        string     `json:"entry"`         // the reversal's id
	Date         string     `json:"date"`          // the reversal's date
	Reverses     string     `json:"reverses"`      // the reversed entry's id
	ReversedDate string     `json:"reversed_date"` // the reversed entry's date, when known
	ReversedKind Kind       `json:"reversed_kind"`
	IncomeType   IncomeType `json:"income_type,omitempty"`
	// FundsFen is the line's effect on the funds: negative for a reversed gift,
	// positive for reversed spending.
	FundsFen int64 `json:"funds_fen"`
	// Goods is the line's effect on the stock (negative quantity for reversed goods
	// income), if any.
	Goods *StockLine `json:"goods,omitempty"`
}

// Statement is an organization's monthly donation statement (月度公示): income,
// spending, reversals, stock and large flows, with no personal data. Its figures
// reconcile by construction:
//
//	OpeningFen + IncomeFen − ReversalsFen − SpendingFen = FundsEndFen
//
// where every entry counts in the month of its own date (a reversal in the month of
// the reversal, never in the month of what it reverses), and the opening is the funds
// of every entry dated before the month, as the ledger has them when the statement is
// computed.
type Statement struct {
	Org               string           `json:"org"`
	Month             string           `json:"month"`
	Entries           int              `json:"entries"`
	OpeningFen        int64            `json:"opening_fen"`         // funds at the start of the month
	IncomeFen         int64            `json:"income_fen"`          // cash and transfers received
	ServicesFen       int64            `json:"services_fen"`        // valuation of services received
	GoodsIn           []StockLine      `json:"goods_in"`            // goods received
	SpendingFen       int64            `json:"spending_fen"`        // disbursements from funds and project spending
	SpendingByProject map[string]int64 `json:"spending_by_project"` // "" is the unrestricted fund
	GoodsOut          []StockLine      `json:"goods_out"`           // goods handed out
	// ReversalsFen is the money the month's reversals took out of the funds (the
	// negated sum of the reversal lines' FundsFen).
	ReversalsFen int64          `json:"reversals_fen"`
	Reversals    []ReversalLine `json:"reversals"`
	FundsEndFen  int64          `json:"funds_end_fen"` // at the end of the month
	StockOpening []StockLine    `json:"stock_opening"`
	StockEnd     []StockLine    `json:"stock_end"`
	LargeFlows   []Flow         `json:"large_flows"`
}

func inMonth(date, month string) bool { return strings.HasPrefix(date, month+"-") }

// MonthlyStatement computes the statement of month (YYYY-MM) from recs, the records
// of one organization's ledger in sequence. Entries count in the month of their date;
// a reversal counts, as its own line, in its own month. Flows of at least largeFen
// are listed (whether or not they were reversed later: that is the reversal's line).
func MonthlyStatement(org string, recs []Record, month string, largeFen int64) Statement {
	st := Statement{Org: org, Month: month, SpendingByProject: map[string]int64{}, Reversals: []ReversalLine{}, LargeFlows: []Flow{}}
	in, out, open, end := map[StockKey]int64{}, map[StockKey]int64{}, map[StockKey]int64{}, map[StockKey]int64{}
	first, last := month+"-00", month+"-99" // every date of the month sorts between them
	dates := map[string]string{}
	for _, r := range recs {
		e := r.Entry
		dates[e.ID] = e.Date
		ef := EffectOf(e)
		if e.Date < first {
			st.OpeningFen += ef.FundsFen
			if ef.Quantity != 0 {
				open[ef.Stock] += ef.Quantity
			}
		}
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
		if e.Kind == KindReversal {
			l := ReversalLine{Entry: e.ID, Date: e.Date, Reverses: e.Reverses, ReversedDate: dates[e.Reverses], ReversedKind: e.ReversedKind,
				IncomeType: e.ReversedIncomeType, FundsFen: ef.FundsFen}
			if ef.Quantity != 0 {
				l.Goods = &StockLine{Item: ef.Stock.Item, Unit: ef.Stock.Unit, Quantity: ef.Quantity}
			}
			st.Reversals = append(st.Reversals, l)
			st.ReversalsFen -= ef.FundsFen
			continue
		}
		switch {
		case e.Kind == KindIncome && e.IncomeType == IncomeServices:
			st.ServicesFen += e.AmountFen
		case e.Kind == KindIncome && ef.FundsFen != 0:
			st.IncomeFen += ef.FundsFen
		case e.Kind == KindIncome && ef.Quantity != 0:
			in[ef.Stock] += ef.Quantity
		case ef.FundsFen != 0:
			st.SpendingFen -= ef.FundsFen
			st.SpendingByProject[ef.Project] -= ef.FundsFen
		case ef.Quantity != 0:
			out[ef.Stock] -= ef.Quantity
		}
		if largeFen > 0 && e.AmountFen >= largeFen {
			f := Flow{Entry: e.ID, Date: e.Date, Kind: e.Kind, AmountFen: e.AmountFen, Project: e.Project}
			if e.Donor != nil {
				f.Donor = e.Donor.PublicLabel()
			}
			st.LargeFlows = append(st.LargeFlows, f)
		}
	}
	st.GoodsIn, st.GoodsOut, st.StockOpening, st.StockEnd = stockLines(in), stockLines(out), stockLines(open), stockLines(end)
	return st
}

func stockLines(m map[StockKey]int64) []StockLine {
	out := []StockLine{}
	for k, q := range m {
		if q != 0 {
			out = append(out, StockLine{Item: k.Item, Unit: k.Unit, Quantity: q})
		}
	}
	slices.SortFunc(out, func(a, b StockLine) int { return cmp.Or(cmp.Compare(a.Item, b.Item), cmp.Compare(a.Unit, b.Unit)) })
	return out
}

// Canonical is the encoding of st that its content hash covers: encoding/json's
// output for Statement (fields in their declared order, map keys sorted, no
// whitespace). It is what a published statement is stored as, byte for byte.
func (st Statement) Canonical() []byte {
	b, err := json.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("encode statement: %v", err)) // plain data: cannot fail
	}
	return b
}

// ContentHash is the hex SHA-256 of the canonical encoding of content.
func ContentHash(canonical []byte) string {
	h := sha256.Sum256(canonical)
	return hex.EncodeToString(h[:])
}

// PublishedStatement is a statement as it was published (公示): its figures are
// stored, never recomputed, and ContentHash lets anyone holding a copy (the public
// page, the CSV export) check it did not move.
type PublishedStatement struct {
	Statement
	ContentHash string `json:"content_hash"`
	// ThroughSeq is the last ledger entry the statement includes. Entries after it
	// dated in the month are corrections (更正).
	ThroughSeq  int64     `json:"through_seq"`
	PublishedBy string    `json:"-"` // account id
	PublishedAt time.Time `json:"published_at"`
}

// ParsePublished decodes a stored published statement's canonical content and checks
// it against its hash: a stored statement whose figures were changed is an error, not
// a statement.
func ParsePublished(canonical []byte, hash string) (Statement, error) {
	if got := ContentHash(canonical); got != hash {
		return Statement{}, fmt.Errorf("published statement: content hash %s does not match the stored %s", got, hash)
	}
	var st Statement
	if err := json.Unmarshal(canonical, &st); err != nil {
		return Statement{}, fmt.Errorf("published statement: %w", err)
	}
	return st, nil
}

// CorrectionLabel is how a correction is labelled to the public.
const CorrectionLabel = "更正"

// Correction is an entry recorded after its month's statement was published (更正):
// shown beside the published statement, dated by when it was recorded, never folded
// into the published figures.
type Correction struct {
	Label      string     `json:"label"` // 更正
	Entry      string     `json:"entry"`
	RecordedAt time.Time  `json:"recorded_at"`
	Date       string     `json:"date"`
	Kind       Kind       `json:"kind"`
	IncomeType IncomeType `json:"income_type,omitempty"`
	From       Source     `json:"from,omitempty"`
	Reverses   string     `json:"reverses,omitempty"`
	// FundsFen and Goods are the entry's effect on the funds and the stock.
	FundsFen int64      `json:"funds_fen"`
	Goods    *StockLine `json:"goods,omitempty"`
}

// Corrections lists the entries of ps's month that came after it: entries is any
// list of the organization's entries (those after ps.ThroughSeq suffice), in sequence.
func Corrections(ps PublishedStatement, entries []Entry) []Correction {
	out := []Correction{}
	for _, e := range entries {
		if e.Seq <= ps.ThroughSeq || !inMonth(e.Date, ps.Month) {
			continue
		}
		ef := EffectOf(e)
		c := Correction{Label: CorrectionLabel, Entry: e.ID, RecordedAt: e.RecordedAt, Date: e.Date, Kind: e.Kind,
			IncomeType: e.IncomeType, From: e.From, Reverses: e.Reverses, FundsFen: ef.FundsFen}
		if ef.Quantity != 0 {
			c.Goods = &StockLine{Item: ef.Stock.Item, Unit: ef.Stock.Unit, Quantity: ef.Quantity}
		}
		out = append(out, c)
	}
	return out
}

// FindReceipt reports whether an income with this receipt number and amount (money, or
// the valuation of goods) is recorded and not reversed, and its date. A donor checks
// their gift this way. The number matches however it is typed (receiptKey).
func FindReceipt(recs []Record, receipt string, amountFen int64) (string, bool) {
	key := receiptKey(receipt)
	if key == "" {
		return "", false
	}
	for _, r := range recs {
		e := r.Entry
		if e.Kind != KindIncome || r.ReversedBy != "" || e.ReceiptNumber == "" || receiptKey(e.ReceiptNumber) != key {
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

// receiptKey is the one spelling of a receipt number for the donor's check: NFKC (a
// Chinese input method's full-width ＺＪ－００１ is ZJ-001), letters upper-cased, dashes
// made one, and spaces and invisible characters dropped. Without it a donor who typed
// their number differently would be told their gift was not recorded.
func receiptKey(s string) string {
	s = norm.NFKC.String(s)
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r) || unicode.Is(unicode.Cf, r):
			return -1
		case r >= 0x2010 && r <= 0x2015 || r == 0x2212:
			return '-'
		}
		return unicode.ToUpper(r)
	}, s)
}
