package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
)

// Collections of the donation ledger. Entries and verifications are only ever
// inserted; the head is a cache of the fold of the entries and may lag behind them.
const (
	collLedger              = "ledger_entries"       // _id "<credit code>:<seq, 10 digits>"
	collLedgerHeads         = "ledger_heads"         // _id "<credit code>"
	collLedgerVerifications = "ledger_verifications" // _id = the verified entry's id
)

// ledgerAppendAttempts bounds the optimistic retries of one Append: each lost race
// means another entry of the same organization was appended, so this many losses in a
// row only happen under a burst of that many concurrent writers.
const ledgerAppendAttempts = 64

// LedgerStore keeps the donation ledgers (捐赠台账) of organizations.
//
// Appends need no transactions (FerretDB has none): an entry's _id is its
// organization's credit code and its sequence number, so two appends computed from the
// same state race for the same _id and the unique _id lets only one in. The loser
// reloads the state, which now includes the winner's entry, re-checks and tries the
// next number. An entry is therefore only ever inserted after being checked against
// exactly the entries before it, and the balances can never go below zero.
type LedgerStore struct {
	db  *DB
	now func() time.Time
}

// NewLedgerStore returns the ledger store of db.
func NewLedgerStore(db *DB) *LedgerStore { return &LedgerStore{db: db, now: time.Now} }

var (
	errLedgerEntryNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "台账记录不存在", "no such ledger entry")
	errLedgerBusy          = qingfeng.Errorf(qingfeng.ECONFLICT, "台账正在被频繁修改，请稍后重试", "the ledger is too busy, try again")
	errAlreadyVerified     = qingfeng.Errorf(qingfeng.ECONFLICT, "该批物资已验收，不能重复验收", "the goods have already been verified")
	errBadLedgerOrg        = qingfeng.Errorf(qingfeng.EINVALID, "组织统一社会信用代码无效", "invalid organization credit code")
	errBadLedgerMonth      = qingfeng.Errorf(qingfeng.EINVALID, "月份格式应为 YYYY-MM", "month must be YYYY-MM")
)

// LedgerEntryID is the id of entry seq of organization code.
func LedgerEntryID(code string, seq int64) string { return fmt.Sprintf("%s:%010d", code, seq) }

// ledgerRange is the _id filter of all entries of code after seq. ';' follows ':' in
// ASCII, so every "<code>:…" id sorts before "<code>;".
func ledgerRange(code string, after int64) bson.M {
	return bson.M{"_id": bson.M{"$gt": LedgerEntryID(code, after), "$lt": code + ";"}}
}

func checkLedgerOrg(code string) error {
	if code == "" || len(code) > 64 || strings.ContainsAny(code, ":; \t\n") {
		return errBadLedgerOrg
	}
	return nil
}

// Stored forms.

type goodsDoc struct {
	Item         string `bson:"item"`
	Quantity     int64  `bson:"quantity"`
	Unit         string `bson:"unit"`
	ValuationFen int64  `bson:"valuation_fen"`
}

type donorDoc struct {
	Anonymous   bool   `bson:"anonymous"`
	Name        string `bson:"name,omitempty"`
	NameConsent bool   `bson:"name_consent,omitempty"`
	Foreign     bool   `bson:"foreign,omitempty"`
}

type signOffsDoc struct {
	Handler          string `bson:"handler"`
	ProjectLead      string `bson:"project_lead"`
	FinanceLead      string `bson:"finance_lead"`
	SecretaryGeneral string `bson:"secretary_general"`
}

type ledgerEntryDoc struct {
	ID                 string       `bson:"_id"`
	Org                string       `bson:"org"`
	Seq                int64        `bson:"seq"`
	Kind               string       `bson:"kind"`
	IncomeType         string       `bson:"income_type,omitempty"`
	From               string       `bson:"from,omitempty"`
	AmountFen          int64        `bson:"amount_fen,omitempty"`
	Goods              *goodsDoc    `bson:"goods,omitempty"`
	Donor              *donorDoc    `bson:"donor,omitempty"`
	ReceiptNumber      string       `bson:"receipt_number,omitempty"`
	Date               string       `bson:"date"`
	Purpose            string       `bson:"purpose,omitempty"`
	Project            string       `bson:"project,omitempty"`
	Photos             []string     `bson:"photos,omitempty"`
	Beneficiary        []byte       `bson:"beneficiary,omitempty"`
	SignOffs           *signOffsDoc `bson:"sign_offs,omitempty"`
	Reverses           string       `bson:"reverses,omitempty"`
	Reason             string       `bson:"reason,omitempty"`
	ReversedKind       string       `bson:"reversed_kind,omitempty"`
	ReversedIncomeType string       `bson:"reversed_income_type,omitempty"`
	ReversedFrom       string       `bson:"reversed_from,omitempty"`
	RecordedBy         string       `bson:"recorded_by"`
	RecordedAt         time.Time    `bson:"recorded_at"`
	Idem               string       `bson:"idem,omitempty"`
	// AlertsPending is true from the insert until the entry's alert rules were
	// evaluated; the only field of an entry that is ever changed (unset).
	AlertsPending bool `bson:"alerts_pending,omitempty"`
}

func toLedgerDoc(e donations.Entry) ledgerEntryDoc {
	d := ledgerEntryDoc{
		ID: e.ID, Org: e.Org, Seq: e.Seq, Kind: string(e.Kind), IncomeType: string(e.IncomeType), From: string(e.From),
		AmountFen: e.AmountFen, ReceiptNumber: e.ReceiptNumber, Date: e.Date, Purpose: e.Purpose, Project: e.Project,
		Photos: e.Photos, Beneficiary: e.Beneficiary, Reverses: e.Reverses, Reason: e.Reason,
		ReversedKind: string(e.ReversedKind), ReversedIncomeType: string(e.ReversedIncomeType), ReversedFrom: string(e.ReversedFrom),
		RecordedBy: e.RecordedBy, RecordedAt: e.RecordedAt.UTC(), Idem: e.IdempotencyKey, AlertsPending: e.AlertsPending,
	}
	if g := e.Goods; g != nil {
		d.Goods = &goodsDoc{Item: g.Item, Quantity: g.Quantity, Unit: g.Unit, ValuationFen: g.ValuationFen}
	}
	if p := e.Donor; p != nil {
		d.Donor = &donorDoc{Anonymous: p.Anonymous, Name: p.Name, NameConsent: p.NameConsent, Foreign: p.Foreign}
	}
	if s := e.SignOffs; s != nil {
		d.SignOffs = &signOffsDoc{Handler: s.Handler, ProjectLead: s.ProjectLead, FinanceLead: s.FinanceLead, SecretaryGeneral: s.SecretaryGeneral}
	}
	return d
}

func (d ledgerEntryDoc) entry() donations.Entry {
	e := donations.Entry{
		ID: d.ID, Org: d.Org, Seq: d.Seq, Kind: donations.Kind(d.Kind), IncomeType: donations.IncomeType(d.IncomeType),
		From: donations.Source(d.From), AmountFen: d.AmountFen, ReceiptNumber: d.ReceiptNumber, Date: d.Date,
		Purpose: d.Purpose, Project: d.Project, Photos: d.Photos, Beneficiary: d.Beneficiary, Reverses: d.Reverses,
		Reason: d.Reason, ReversedKind: donations.Kind(d.ReversedKind), ReversedIncomeType: donations.IncomeType(d.ReversedIncomeType),
		ReversedFrom: donations.Source(d.ReversedFrom), RecordedBy: d.RecordedBy, RecordedAt: d.RecordedAt, IdempotencyKey: d.Idem, AlertsPending: d.AlertsPending,
	}
	if len(e.Photos) == 0 {
		e.Photos = nil
	}
	if len(e.Beneficiary) == 0 {
		e.Beneficiary = nil
	}
	if g := d.Goods; g != nil {
		e.Goods = &donations.Goods{Item: g.Item, Quantity: g.Quantity, Unit: g.Unit, ValuationFen: g.ValuationFen}
	}
	if p := d.Donor; p != nil {
		e.Donor = &donations.Donor{Anonymous: p.Anonymous, Name: p.Name, NameConsent: p.NameConsent, Foreign: p.Foreign}
	}
	if s := d.SignOffs; s != nil {
		e.SignOffs = &donations.SignOffs{Handler: s.Handler, ProjectLead: s.ProjectLead, FinanceLead: s.FinanceLead, SecretaryGeneral: s.SecretaryGeneral}
	}
	return e
}

// ledgerHeadDoc caches the balance after entry Seq. Maps are stored as arrays: map keys
// would become field names, and project and item names may contain '.' or '$'.
type ledgerHeadDoc struct {
	ID       string          `bson:"_id"`
	Seq      int64           `bson:"seq"`
	Funds    []fundLineDoc   `bson:"funds"`
	Stock    []stockLineDoc  `bson:"stock"`
	Reversed []reversalPairs `bson:"reversed"`
}

type fundLineDoc struct {
	Project string `bson:"project"`
	Fen     int64  `bson:"fen"`
}

type stockLineDoc struct {
	Item     string `bson:"item"`
	Unit     string `bson:"unit"`
	Quantity int64  `bson:"quantity"`
}

type reversalPairs struct {
	Entry    string `bson:"entry"`
	Reversal string `bson:"reversal"`
}

func toHeadDoc(code string, b donations.Balance) ledgerHeadDoc {
	h := ledgerHeadDoc{ID: code, Seq: b.Seq, Funds: []fundLineDoc{}, Stock: []stockLineDoc{}, Reversed: []reversalPairs{}}
	for p, v := range b.Funds {
		h.Funds = append(h.Funds, fundLineDoc{p, v})
	}
	for k, v := range b.Stock {
		h.Stock = append(h.Stock, stockLineDoc{k.Item, k.Unit, v})
	}
	for e, r := range b.Reversed {
		h.Reversed = append(h.Reversed, reversalPairs{e, r})
	}
	return h
}

func (h ledgerHeadDoc) balance() donations.Balance {
	b := donations.NewBalance()
	b.Seq = h.Seq
	for _, f := range h.Funds {
		b.Funds[f.Project] = f.Fen
	}
	for _, s := range h.Stock {
		b.Stock[donations.StockKey{Item: s.Item, Unit: s.Unit}] = s.Quantity
	}
	for _, r := range h.Reversed {
		b.Reversed[r.Entry] = r.Reversal
	}
	return b
}

type verificationDoc struct {
	EntryID    string    `bson:"_id"`
	Org        string    `bson:"org"`
	VerifiedBy string    `bson:"verified_by"`
	VerifiedAt time.Time `bson:"verified_at"`
	Note       string    `bson:"note,omitempty"`
}

func (d verificationDoc) verification() donations.Verification {
	return donations.Verification{EntryID: d.EntryID, VerifiedBy: d.VerifiedBy, VerifiedAt: d.VerifiedAt, Note: d.Note}
}

// entriesAfter returns code's entries after seq, in sequence.
func (s *LedgerStore) entriesAfter(ctx context.Context, code string, after int64, extra bson.M) ([]donations.Entry, error) {
	filter := ledgerRange(code, after)
	for k, v := range extra {
		filter[k] = v
	}
	docs, err := findAll[ledgerEntryDoc](ctx, s.db, collLedger, "list ledger entries", filter, options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return nil, err
	}
	out := make([]donations.Entry, len(docs))
	for i, d := range docs {
		out[i] = d.entry()
	}
	return out, nil
}

// head returns code's current balance: the cached head, brought up to date by folding
// the entries appended after it (the head lags when an append stopped between its
// insert and the head update, or lost the race to update it). The second result tells
// whether the cache was behind.
func (s *LedgerStore) head(ctx context.Context, code string) (donations.Balance, bool, error) {
	var h ledgerHeadDoc
	b := donations.NewBalance()
	err := s.db.coll(collLedgerHeads).FindOne(ctx, bson.M{"_id": code}).Decode(&h)
	switch {
	case err == nil:
		b = h.balance()
	case !errors.Is(err, mongodrv.ErrNoDocuments):
		return b, false, storeError("read ledger head", err, nil, nil)
	}
	newer, err := s.entriesAfter(ctx, code, b.Seq, nil)
	if err != nil {
		return b, false, err
	}
	if err := b.FoldFrom(newer); err != nil {
		// A stored entry the fold refuses means the stored ledger is corrupt: not a
		// client's error.
		return b, false, fmt.Errorf("ledger of %s: %w", code, err)
	}
	return b, len(newer) > 0, nil
}

// saveHead stores b as code's head unless a later one is stored already.
func (s *LedgerStore) saveHead(ctx context.Context, code string, b donations.Balance) error {
	doc := toHeadDoc(code, b)
	_, err := s.db.coll(collLedgerHeads).InsertOne(ctx, doc)
	if err == nil {
		return nil
	}
	if !mongodrv.IsDuplicateKeyError(err) {
		return storeError("save ledger head", err, nil, nil)
	}
	_, err = s.db.updateOne(ctx, collLedgerHeads, code, bson.M{"seq": bson.M{"$lt": b.Seq}},
		bson.M{"$set": bson.M{"seq": doc.Seq, "funds": doc.Funds, "stock": doc.Stock, "reversed": doc.Reversed}})
	return storeError("save ledger head", err, nil, nil)
}

// Balance returns code's current balance (an empty one for an organization with no
// entries), repairing the cached head if it was behind.
func (s *LedgerStore) Balance(ctx context.Context, code string) (donations.Balance, error) {
	if err := checkLedgerOrg(code); err != nil {
		return donations.Balance{}, err
	}
	b, behind, err := s.head(ctx, code)
	if err != nil {
		return donations.Balance{}, err
	}
	if behind {
		// Best effort: the next read folds the same entries again if this fails.
		_ = s.saveHead(ctx, code, b)
	}
	return b, nil
}

// Entry returns one entry of code.
func (s *LedgerStore) Entry(ctx context.Context, code, id string) (donations.Entry, error) {
	if err := checkLedgerOrg(code); err != nil {
		return donations.Entry{}, err
	}
	if !strings.HasPrefix(id, code+":") {
		return donations.Entry{}, errLedgerEntryNotFound
	}
	var d ledgerEntryDoc
	err := s.db.coll(collLedger).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if err != nil {
		return donations.Entry{}, storeError("read ledger entry", err, errLedgerEntryNotFound, nil)
	}
	return d.entry(), nil
}

// Append appends e, checked by donations.Ledger, as code's next entry, returning it
// with its ID, Seq and Org set. check, if not nil, sees the balance before the entry
// and may refuse it (a rule of the ledger's); Append itself refuses, with ECONFLICT,
// what Balance.Apply refuses: an entry that would take funds or stock below zero and
// a second reversal of an entry. A reversal must carry its prepared copy
// (donations.PrepareReversal).
func (s *LedgerStore) Append(ctx context.Context, code string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, error) {
	if err := checkLedgerOrg(code); err != nil {
		return donations.Entry{}, err
	}
	e.Org = code
	e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Millisecond) // what BSON keeps
	for attempt := range ledgerAppendAttempts {
		b, behind, err := s.head(ctx, code)
		if err != nil {
			return donations.Entry{}, err
		}
		if check != nil {
			if err := check(b.Clone()); err != nil {
				return donations.Entry{}, err
			}
		}
		e.Seq = b.Seq + 1
		e.ID = LedgerEntryID(code, e.Seq)
		next := b.Clone()
		if err := next.Apply(e); err != nil {
			if behind {
				_ = s.saveHead(ctx, code, b)
			}
			return donations.Entry{}, err
		}
		_, err = s.db.coll(collLedger).InsertOne(ctx, toLedgerDoc(e))
		if mongodrv.IsDuplicateKeyError(err) {
			// Another append took this number: reload and try the next one, after a
			// short random pause so that a crowd of writers spreads out.
			pause := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt+1, 10))))
			select {
			case <-ctx.Done():
				return donations.Entry{}, ctx.Err()
			case <-time.After(pause):
			}
			continue
		}
		if err != nil {
			return donations.Entry{}, storeError("append ledger entry", err, nil, nil)
		}
		// The entry is in; the head is only a cache, repaired on the next read if
		// this fails.
		_ = s.saveHead(ctx, code, next)
		return e, nil
	}
	return donations.Entry{}, errLedgerBusy
}

// SaveVerification stores v, checked by donations.Ledger. An entry is verified once;
// a second verification is ECONFLICT. Verifications live in their own collection,
// keyed by the entry id, so the entry itself is never changed.
func (s *LedgerStore) SaveVerification(ctx context.Context, code string, v donations.Verification) error {
	if err := checkLedgerOrg(code); err != nil {
		return err
	}
	doc := verificationDoc{EntryID: v.EntryID, Org: code, VerifiedBy: v.VerifiedBy, VerifiedAt: v.VerifiedAt.UTC(), Note: v.Note}
	_, err := s.db.coll(collLedgerVerifications).InsertOne(ctx, doc)
	return storeError("verify ledger entry", err, nil, errAlreadyVerified)
}

// EntriesAfter returns code's entries after seq dated in month ("" for any), in
// sequence: an _id range, so only the entries after seq are read.
func (s *LedgerStore) EntriesAfter(ctx context.Context, code string, after int64, month string) ([]donations.Entry, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	extra, err := monthFilter(month)
	if err != nil {
		return nil, err
	}
	return s.entriesAfter(ctx, code, after, extra)
}

// monthFilter selects the entries dated in month ("YYYY-MM"); "" selects all.
func monthFilter(month string) (bson.M, error) {
	if month == "" {
		return nil, nil
	}
	if t, err := time.Parse("2006-01", month); err != nil || t.Format("2006-01") != month {
		return nil, errBadLedgerMonth
	}
	return bson.M{"date": bson.M{"$gte": month + "-01", "$lte": month + "-31"}}, nil
}

// GoodsIncome returns code's goods income entries, in sequence, with their
// verifications.
func (s *LedgerStore) GoodsIncome(ctx context.Context, code string) ([]donations.Record, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	entries, err := s.entriesAfter(ctx, code, 0, bson.M{"kind": string(donations.KindIncome), "income_type": string(donations.IncomeGoods)})
	if err != nil {
		return nil, err
	}
	return s.withVerifications(ctx, code, entries, nil)
}

func (s *LedgerStore) withVerifications(ctx context.Context, code string, entries []donations.Entry, reversed map[string]string) ([]donations.Record, error) {
	verified := map[string]donations.Verification{}
	if len(entries) > 0 {
		docs, err := findAll[verificationDoc](ctx, s.db, collLedgerVerifications, "list ledger verifications", bson.M{"org": code})
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			verified[d.EntryID] = d.verification()
		}
	}
	out := make([]donations.Record, len(entries))
	for i, e := range entries {
		out[i] = donations.Record{Entry: e, ReversedBy: reversed[e.ID]}
		if v, ok := verified[e.ID]; ok {
			out[i].Verification = &v
		}
	}
	return out, nil
}

// UnevaluatedEntries implements donations.Store: entries still marked alerts_pending,
// recorded before the given time. (A scan on FerretDB, which only pushes _id filters
// down; it runs once per alert job run.)
func (s *LedgerStore) UnevaluatedEntries(ctx context.Context, before time.Time, limit int) ([]donations.Entry, error) {
	docs, err := findAll[ledgerEntryDoc](ctx, s.db, collLedger, "list unevaluated ledger entries",
		bson.M{"alerts_pending": true, "recorded_at": bson.M{"$lt": before.UTC()}},
		options.Find().SetSort(bson.D{asc("recorded_at"), asc("_id")}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	out := make([]donations.Entry, len(docs))
	for i, d := range docs {
		out[i] = d.entry()
	}
	return out, nil
}

// MarkAlertsEvaluated clears entry id's alerts_pending.
func (s *LedgerStore) MarkAlertsEvaluated(ctx context.Context, code, id string) error {
	if !strings.HasPrefix(id, code+":") {
		return errLedgerEntryNotFound
	}
	_, err := s.db.updateOne(ctx, collLedger, id, nil, bson.M{"$unset": bson.M{"alerts_pending": ""}})
	return storeError("mark ledger entry evaluated", err, nil, nil)
}

// List returns code's entries dated in month ("YYYY-MM"; "" for all), in sequence, each
// with its verification and the id of its reversal if it has them.
func (s *LedgerStore) List(ctx context.Context, code, month string) ([]donations.Record, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	extra, err := monthFilter(month)
	if err != nil {
		return nil, err
	}
	entries, err := s.entriesAfter(ctx, code, 0, extra)
	if err != nil {
		return nil, err
	}
	b, _, err := s.head(ctx, code)
	if err != nil {
		return nil, err
	}
	return s.withVerifications(ctx, code, entries, b.Reversed)
}
