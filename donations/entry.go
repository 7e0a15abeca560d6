// Package donations is an organization's donation ledger (捐赠台账): income, disbursements
// (发放), project spending and reversals, recorded by liaisons for the organizations of
// their division. The ledger is append-only: a correction is a reversal of the wrong
// entry plus a new entry, never an edit, so that what was published once stays
// traceable. Balances (funds in fen by restricted project, stock by item and unit) are
// a pure fold over the entries (Fold, Balance.Apply); the store keeps a cached head
// and refuses any entry that would take a balance below zero.
//
// Identities of beneficiaries are never stored in the clear: Entry.Beneficiary is an age
// ciphertext sealed to the custodians of the organization's division, like a
// reporter's identity (crypto.Sealer).
//
// Ledger is the one service that owns the ledger's rules: validation against the prior
// entries (funds, stock, goods verified by a second person before they go out),
// sealing beneficiaries, photo references, idempotency, the clock, monthly statements
// and their publishing (a published statement is stored, hashed and never
// recomputed; later entries of its month are corrections), and the alert rules (预警),
// evaluated on every entry as it is appended and, for the rules about time passing, by
// a periodic job. Handlers decode, call it and respond; a Store (storage/mongo) stores.
// This package must not import Fiber, a database driver or net/http.
package donations

import (
	"time"
)

// Kind is what an entry records.
type Kind string

const (
	// KindIncome is a donation received: cash, a bank transfer, goods or services.
	KindIncome Kind = "income"
	// KindDisbursement is a hand-out (发放) to a beneficiary, from funds or from stock.
	KindDisbursement Kind = "disbursement"
	// KindProjectSpending is spending of project funds, with the four sign-offs
	// (经办人, 项目负责人, 财务负责人, 秘书长).
	KindProjectSpending Kind = "project_spending"
	// KindReversal cancels one earlier entry (冲销). It carries a copy of the reversed
	// entry's amounts so that folding never needs to look anything up.
	KindReversal Kind = "reversal"
)

// IncomeType is the form of a donation.
type IncomeType string

const (
	IncomeCash     IncomeType = "cash"
	IncomeTransfer IncomeType = "transfer"
	IncomeGoods    IncomeType = "goods"
	IncomeServices IncomeType = "services" // valued, but adds nothing to funds or stock
)

// Source is what a disbursement draws on.
type Source string

const (
	FromFunds Source = "funds"
	FromStock Source = "stock"
)

// Limits. Amounts are in fen (分); the largest amount keeps sums far from overflow.
const (
	MaxAmountFen   = 1_000_000_000_000_00 // 1 trillion yuan
	MaxQuantity    = 1_000_000_000
	MaxTextRunes   = 200  // item, unit, donor name, project, receipt number, sign-off names
	MaxNoteRunes   = 2000 // purpose, reason
	MaxPhotos      = 20
	MaxPhotoRunes  = 300 // an object key or URL of a stored photo
	MaxReceiptRune = 64
)

// Goods are donated or handed-out items.
type Goods struct {
	Item     string `json:"item"`
	Quantity int64  `json:"quantity"`
	Unit     string `json:"unit"` // 件, 箱, 公斤 …
	// ValuationFen is the total value of the goods in fen: required for income (it goes
	// on the donation receipt), optional for a hand-out.
	ValuationFen int64 `json:"valuation_fen"`
}

// StockKey names one stock line: goods of the same item and unit.
type StockKey struct {
	Item string `json:"item"`
	Unit string `json:"unit"`
}

// Key is the stock line of g.
func (g Goods) Key() StockKey { return StockKey{Item: g.Item, Unit: g.Unit} }

// Donor is who gave. An anonymous donor is recorded without a name; a named donor's
// name is public only with their recorded consent.
type Donor struct {
	Anonymous bool   `json:"anonymous"`
	Name      string `json:"name,omitempty"`
	// NameConsent records that the donor agreed to have their name published.
	NameConsent bool `json:"name_consent,omitempty"`
	// Foreign marks a donor from outside the mainland (境外捐赠), which the alert
	// rules flag for review.
	Foreign bool `json:"foreign,omitempty"`
}

// PublicName is the donor's name as it may be published, and false when it may not be.
func (d Donor) PublicName() (string, bool) {
	if d.Anonymous || !d.NameConsent || d.Name == "" {
		return "", false
	}
	return d.Name, true
}

// PublicLabel is how a donor is shown to the public: their name with consent, else
// 匿名 (anonymous) or 未公开 (not published).
func (d Donor) PublicLabel() string {
	if name, ok := d.PublicName(); ok {
		return name
	}
	if d.Anonymous {
		return "匿名"
	}
	return "未公开"
}

// SignOffs are the four signatures project spending needs (四级联签), as names.
type SignOffs struct {
	Handler          string `json:"handler"`           // 经办人
	ProjectLead      string `json:"project_lead"`      // 项目负责人
	FinanceLead      string `json:"finance_lead"`      // 财务负责人
	SecretaryGeneral string `json:"secretary_general"` // 秘书长
}

// Entry is one ledger line. Seq, ID, Org and RecordedAt are set by the store.
type Entry struct {
	ID  string `json:"id"`  // "<credit code>:<seq, 10 digits>"
	Seq int64  `json:"seq"` // 1, 2, … per organization, no gaps
	Org string `json:"org"` // the organization's unified social credit code

	Kind       Kind       `json:"kind"`
	IncomeType IncomeType `json:"income_type,omitempty"` // income
	From       Source     `json:"from,omitempty"`        // disbursement

	// AmountFen is the money of cash and transfer income, of a disbursement from funds
	// and of project spending; for services income it is their valuation.
	AmountFen int64  `json:"amount_fen,omitempty"`
	Goods     *Goods `json:"goods,omitempty"` // goods income, disbursement from stock

	Donor *Donor `json:"donor,omitempty"` // income
	// ReceiptNumber is the number of the 公益事业捐赠票据. It may be missing (the alert
	// rules flag cash income without one), but is recorded whenever there is one.
	ReceiptNumber string `json:"receipt_number,omitempty"`

	Date    string `json:"date"`              // YYYY-MM-DD, the day it happened (China time)
	Purpose string `json:"purpose,omitempty"` // what it is for, or what the service was
	// Project is the restricted project (定向项目) the money belongs to; empty is the
	// unrestricted fund. Goods stock is not split by project.
	Project string   `json:"project,omitempty"`
	Photos  []string `json:"photos,omitempty"` // stored photo keys (影像资料)

	// Beneficiary is the sealed identity of a disbursement's beneficiary: a binary age
	// file sealed to the custodians of the organization's division.
	Beneficiary []byte `json:"beneficiary,omitempty"`

	SignOffs *SignOffs `json:"sign_offs,omitempty"` // project spending

	// Reversal: the entry reversed, why, and a copy of its effect (ReversedKind,
	// ReversedIncomeType, ReversedFrom with AmountFen, Goods and Project above).
	Reverses           string     `json:"reverses,omitempty"`
	Reason             string     `json:"reason,omitempty"`
	ReversedKind       Kind       `json:"reversed_kind,omitempty"`
	ReversedIncomeType IncomeType `json:"reversed_income_type,omitempty"`
	ReversedFrom       Source     `json:"reversed_from,omitempty"`

	RecordedBy string    `json:"recorded_by"` // account id of the liaison
	RecordedAt time.Time `json:"recorded_at"`
	// IdempotencyKey is the hash of the client's Idempotency-Key, so that a retried
	// request finds the entry its first attempt appended.
	IdempotencyKey string `json:"-"`
	// AlertsPending is set on an entry as it is appended and cleared once its alert
	// rules were evaluated (Ledger.Append, or the recovery in RunAlerts after a crash
	// in between): no entry escapes the rules.
	AlertsPending bool `json:"-"`
}

// Verification is the second person's confirmation that goods were received (2人以上
// 签字验收). Goods count as verified only when a different account than the recorder
// confirmed them; an entry is verified once.
type Verification struct {
	EntryID    string    `json:"entry_id"`
	VerifiedBy string    `json:"verified_by"` // account id
	VerifiedAt time.Time `json:"verified_at"`
	Note       string    `json:"note,omitempty"`
}

// Record is an entry as listed: the entry plus what later happened to it.
type Record struct {
	Entry
	Verification *Verification `json:"verification,omitempty"` // goods income only
	ReversedBy   string        `json:"reversed_by,omitempty"`  // id of the reversal, if any
}

// NeedsVerification reports whether e is goods income, which a second person confirms.
func (e Entry) NeedsVerification() bool {
	return e.Kind == KindIncome && e.IncomeType == IncomeGoods
}
