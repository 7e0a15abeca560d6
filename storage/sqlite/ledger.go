package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// LedgerStore keeps the donation ledgers (捐赠台账) of organizations: entries, the
// cached balance (head) of each organization, goods verifications, photos,
// idempotency records, published statements, correction notes and alerts (migration
// 0008_ledger.sql).
//
// An append is one write transaction (BEGIN IMMEDIATE on the one writer connection):
// read the head, let the caller's check and Balance.Apply judge the entry against it,
// insert the entry and update the head. Writers are serialized, so an entry is only
// ever stored after being checked against exactly the entries before it, and the head
// never lags behind the entries (it is still folded forward on read, should it).
type LedgerStore struct {
	db  *DB
	now func() time.Time
}

// NewLedgerStore returns the ledger store of db.
func NewLedgerStore(db *DB) *LedgerStore { return &LedgerStore{db: db, now: time.Now} }

// The errors are storage/mongo's, word for word: the two stores answer alike.
var (
	errLedgerEntryNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "台账记录不存在", "no such ledger entry")
	errAlreadyVerified     = qingfeng.Errorf(qingfeng.ECONFLICT, "该批物资已验收，不能重复验收", "the goods have already been verified")
	errBadLedgerOrg        = qingfeng.Errorf(qingfeng.EINVALID, "组织统一社会信用代码无效", "invalid organization credit code")
	errBadLedgerMonth      = qingfeng.Errorf(qingfeng.EINVALID, "月份格式应为 YYYY-MM", "month must be YYYY-MM")
	errAlreadyPublished    = qingfeng.Errorf(qingfeng.ECONFLICT, "该月公示已发布，发布后不能更改；之后登记的记录将作为更正列出", "the month's statement is already published")
	errIdemOtherRequest    = qingfeng.Errorf(qingfeng.ECONFLICT, "该幂等键已用于另一条记录", "this Idempotency-Key was used for a different entry")
	errAlertNotFound       = qingfeng.Errorf(qingfeng.ENOTFOUND, "预警记录不存在", "no such alert")
	errPhotoNotFound       = qingfeng.Errorf(qingfeng.ENOTFOUND, "照片不存在", "no such photo")
)

// LedgerEntryID is the id of entry seq of organization code (as storage/mongo's).
func LedgerEntryID(code string, seq int64) string { return fmt.Sprintf("%s:%010d", code, seq) }

// entrySeq is the sequence number of id if it is an entry id of code.
func entrySeq(code, id string) (int64, bool) {
	rest, ok := strings.CutPrefix(id, code+":")
	if !ok || len(rest) != 10 {
		return 0, false
	}
	seq, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || seq <= 0 || LedgerEntryID(code, seq) != id {
		return 0, false
	}
	return seq, true
}

func checkLedgerOrg(code string) error {
	if code == "" || len(code) > 64 || strings.ContainsAny(code, ":; \t\n") {
		return errBadLedgerOrg
	}
	return nil
}

func checkMonth(month string) error {
	if t, err := time.Parse("2006-01", month); err != nil || t.Format("2006-01") != month {
		return errBadLedgerMonth
	}
	return nil
}

// querier is a read transaction, the write transaction or the reader pool.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Stored forms. entryBody is the part of an entry no query looks at, kept as JSON.

type goodsRow struct {
	Item         string `json:"item"`
	Quantity     int64  `json:"quantity"`
	Unit         string `json:"unit"`
	ValuationFen int64  `json:"valuation_fen"`
}

type donorRow struct {
	Anonymous   bool   `json:"anonymous"`
	Name        string `json:"name,omitempty"`
	NameConsent bool   `json:"name_consent,omitempty"`
	Foreign     bool   `json:"foreign,omitempty"`
}

type signOffsRow struct {
	Handler          string `json:"handler"`
	ProjectLead      string `json:"project_lead"`
	FinanceLead      string `json:"finance_lead"`
	SecretaryGeneral string `json:"secretary_general"`
}

type entryBody struct {
	From               string       `json:"from,omitempty"`
	AmountFen          int64        `json:"amount_fen,omitempty"`
	Goods              *goodsRow    `json:"goods,omitempty"`
	Donor              *donorRow    `json:"donor,omitempty"`
	ReceiptNumber      string       `json:"receipt_number,omitempty"`
	Purpose            string       `json:"purpose,omitempty"`
	Project            string       `json:"project,omitempty"`
	Photos             []string     `json:"photos,omitempty"`
	SignOffs           *signOffsRow `json:"sign_offs,omitempty"`
	Reverses           string       `json:"reverses,omitempty"`
	Reason             string       `json:"reason,omitempty"`
	ReversedKind       string       `json:"reversed_kind,omitempty"`
	ReversedIncomeType string       `json:"reversed_income_type,omitempty"`
	ReversedFrom       string       `json:"reversed_from,omitempty"`
	RecordedBy         string       `json:"recorded_by"`
}

func toEntryBody(e donations.Entry) entryBody {
	b := entryBody{From: string(e.From), AmountFen: e.AmountFen, ReceiptNumber: e.ReceiptNumber, Purpose: e.Purpose,
		Project: e.Project, Photos: e.Photos, Reverses: e.Reverses, Reason: e.Reason, ReversedKind: string(e.ReversedKind),
		ReversedIncomeType: string(e.ReversedIncomeType), ReversedFrom: string(e.ReversedFrom), RecordedBy: e.RecordedBy}
	if g := e.Goods; g != nil {
		b.Goods = &goodsRow{Item: g.Item, Quantity: g.Quantity, Unit: g.Unit, ValuationFen: g.ValuationFen}
	}
	if p := e.Donor; p != nil {
		b.Donor = &donorRow{Anonymous: p.Anonymous, Name: p.Name, NameConsent: p.NameConsent, Foreign: p.Foreign}
	}
	if so := e.SignOffs; so != nil {
		b.SignOffs = &signOffsRow{Handler: so.Handler, ProjectLead: so.ProjectLead, FinanceLead: so.FinanceLead, SecretaryGeneral: so.SecretaryGeneral}
	}
	return b
}

const entryColumns = "org, seq, kind, income_type, date, idem, alerts_pending, recorded_at, beneficiary, body"

func scanEntry(sc interface{ Scan(...any) error }) (donations.Entry, error) {
	var e donations.Entry
	var kind, incomeType, body string
	var idem sql.NullString
	var pending int
	var recorded int64
	var beneficiary []byte
	if err := sc.Scan(&e.Org, &e.Seq, &kind, &incomeType, &e.Date, &idem, &pending, &recorded, &beneficiary, &body); err != nil {
		return e, err
	}
	var b entryBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return e, fmt.Errorf("ledger entry %s: %w", LedgerEntryID(e.Org, e.Seq), err)
	}
	e.ID = LedgerEntryID(e.Org, e.Seq)
	e.Kind, e.IncomeType, e.From = donations.Kind(kind), donations.IncomeType(incomeType), donations.Source(b.From)
	e.AmountFen, e.ReceiptNumber, e.Purpose, e.Project = b.AmountFen, b.ReceiptNumber, b.Purpose, b.Project
	e.Reverses, e.Reason, e.RecordedBy = b.Reverses, b.Reason, b.RecordedBy
	e.ReversedKind, e.ReversedIncomeType, e.ReversedFrom = donations.Kind(b.ReversedKind), donations.IncomeType(b.ReversedIncomeType), donations.Source(b.ReversedFrom)
	e.RecordedAt = time.UnixMilli(recorded).UTC()
	e.IdempotencyKey, e.AlertsPending = idem.String, pending != 0
	if len(b.Photos) > 0 {
		e.Photos = b.Photos
	}
	if len(beneficiary) > 0 {
		e.Beneficiary = beneficiary
	}
	if g := b.Goods; g != nil {
		e.Goods = &donations.Goods{Item: g.Item, Quantity: g.Quantity, Unit: g.Unit, ValuationFen: g.ValuationFen}
	}
	if p := b.Donor; p != nil {
		e.Donor = &donations.Donor{Anonymous: p.Anonymous, Name: p.Name, NameConsent: p.NameConsent, Foreign: p.Foreign}
	}
	if so := b.SignOffs; so != nil {
		e.SignOffs = &donations.SignOffs{Handler: so.Handler, ProjectLead: so.ProjectLead, FinanceLead: so.FinanceLead, SecretaryGeneral: so.SecretaryGeneral}
	}
	return e, nil
}

func scanEntries(rows *sql.Rows, err error) ([]donations.Entry, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []donations.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// headBody is a balance as stored: maps as arrays, since stock keys are structs.
type headBody struct {
	Funds    []fundLine  `json:"funds"`
	Stock    []stockLine `json:"stock"`
	Reversed [][2]string `json:"reversed"` // entry id, id of its reversal
}

type fundLine struct {
	Project string `json:"project"`
	Fen     int64  `json:"fen"`
}

type stockLine struct {
	Item     string `json:"item"`
	Unit     string `json:"unit"`
	Quantity int64  `json:"quantity"`
}

func headJSON(b donations.Balance) string {
	h := headBody{Funds: []fundLine{}, Stock: []stockLine{}, Reversed: [][2]string{}}
	for p, v := range b.Funds {
		h.Funds = append(h.Funds, fundLine{p, v})
	}
	for k, v := range b.Stock {
		h.Stock = append(h.Stock, stockLine{k.Item, k.Unit, v})
	}
	for e, r := range b.Reversed {
		h.Reversed = append(h.Reversed, [2]string{e, r})
	}
	out, _ := json.Marshal(h)
	return string(out)
}

// entriesAfter lists code's entries after seq, dated in month ("" for any), in
// sequence.
func entriesAfter(ctx context.Context, q querier, code string, after int64, month string) ([]donations.Entry, error) {
	if month == "" {
		return scanEntries(q.QueryContext(ctx, "SELECT "+entryColumns+" FROM ledger_entries WHERE org = ? AND seq > ? ORDER BY seq", code, after))
	}
	return scanEntries(q.QueryContext(ctx, "SELECT "+entryColumns+" FROM ledger_entries WHERE org = ? AND month = ? AND seq > ? ORDER BY seq",
		code, month, after))
}

// head is code's current balance: the stored head, folded forward over any entry after
// it (none, as appends keep it, but a fold costs nothing when there is nothing).
func head(ctx context.Context, q querier, code string) (donations.Balance, error) {
	b := donations.NewBalance()
	var body string
	err := q.QueryRowContext(ctx, "SELECT seq, balance FROM ledger_heads WHERE org = ?", code).Scan(&b.Seq, &body)
	switch {
	case err == nil:
		var h headBody
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			return b, fmt.Errorf("ledger head of %s: %w", code, err)
		}
		for _, f := range h.Funds {
			b.Funds[f.Project] = f.Fen
		}
		for _, s := range h.Stock {
			b.Stock[donations.StockKey{Item: s.Item, Unit: s.Unit}] = s.Quantity
		}
		for _, r := range h.Reversed {
			b.Reversed[r[0]] = r[1]
		}
	case !errors.Is(err, sql.ErrNoRows):
		return b, err
	}
	newer, err := entriesAfter(ctx, q, code, b.Seq, "")
	if err != nil {
		return b, err
	}
	if err := b.FoldFrom(newer); err != nil {
		// A stored entry the fold refuses means the stored ledger is corrupt.
		return b, fmt.Errorf("ledger of %s: %w", code, err)
	}
	return b, nil
}

// read runs fn in a read transaction: one snapshot of the database.
func (s *LedgerStore) read(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.db.r.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(tx)
}

// Balance returns code's current balance (an empty one for an organization with no
// entries).
func (s *LedgerStore) Balance(ctx context.Context, code string) (donations.Balance, error) {
	if err := checkLedgerOrg(code); err != nil {
		return donations.Balance{}, err
	}
	var b donations.Balance
	err := s.read(ctx, func(q querier) (err error) {
		b, err = head(ctx, q, code)
		return err
	})
	if err != nil {
		return donations.Balance{}, storeError("read ledger balance", err, nil, nil)
	}
	return b, nil
}

// Entry returns one entry of code.
func (s *LedgerStore) Entry(ctx context.Context, code, id string) (donations.Entry, error) {
	if err := checkLedgerOrg(code); err != nil {
		return donations.Entry{}, err
	}
	seq, ok := entrySeq(code, id)
	if !ok {
		return donations.Entry{}, errLedgerEntryNotFound
	}
	e, err := scanEntry(s.db.r.QueryRowContext(ctx, "SELECT "+entryColumns+" FROM ledger_entries WHERE org = ? AND seq = ?", code, seq))
	if err != nil {
		return donations.Entry{}, storeError("read ledger entry", err, errLedgerEntryNotFound, nil)
	}
	return e, nil
}

// Append appends e as code's next entry, returning it with its ID, Seq and Org set.
// check, if not nil, sees the balance before the entry and may refuse it; Append
// itself refuses, with ECONFLICT, what Balance.Apply refuses. check runs inside the
// write transaction and must only read through the store's read methods (which, on
// other connections, see exactly the state the transaction started from: no other
// write can commit in between).
func (s *LedgerStore) Append(ctx context.Context, code string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, error) {
	if err := checkLedgerOrg(code); err != nil {
		return donations.Entry{}, err
	}
	var got donations.Entry
	err := s.db.Tx(ctx, func(tx *sql.Tx) (err error) {
		got, err = appendTx(ctx, tx, code, e, check)
		return err
	})
	if err != nil {
		return donations.Entry{}, storeError("append ledger entry", err, nil, nil)
	}
	return got, nil
}

func appendTx(ctx context.Context, tx *sql.Tx, code string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, error) {
	e.Org = code
	e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Millisecond)
	if len(e.Date) < 7 {
		return donations.Entry{}, fmt.Errorf("append ledger entry: date %q", e.Date)
	}
	b, err := head(ctx, tx, code)
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
		return donations.Entry{}, err
	}
	body, err := json.Marshal(toEntryBody(e))
	if err != nil {
		return donations.Entry{}, err
	}
	var idem any
	if e.IdempotencyKey != "" {
		idem = e.IdempotencyKey
	}
	pending := 0
	if e.AlertsPending {
		pending = 1
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO ledger_entries (org, seq, kind, income_type, date, month, idem, alerts_pending, recorded_at, beneficiary, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		code, e.Seq, string(e.Kind), string(e.IncomeType), e.Date, e.Date[:7], idem, pending, e.RecordedAt.UnixMilli(), e.Beneficiary, string(body)); err != nil {
		return donations.Entry{}, err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO ledger_heads (org, seq, balance) VALUES (?, ?, ?) ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, balance = excluded.balance",
		code, next.Seq, headJSON(next)); err != nil {
		return donations.Entry{}, err
	}
	return e, nil
}

// AppendOnce is Append under an idempotency key (keyHash, a hash of the client's key;
// reqHash, a hash of the request): a retry returns the entry the first attempt
// appended (replayed true); the same key with another request is ECONFLICT. The record
// and the entry are written in one transaction, so there is no attempt "in flight"
// that a retry could catch half-way: a concurrent retry waits for the writer and then
// finds the entry.
func (s *LedgerStore) AppendOnce(ctx context.Context, code, keyHash, reqHash string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, bool, error) {
	if err := checkLedgerOrg(code); err != nil {
		return donations.Entry{}, false, err
	}
	var got donations.Entry
	var replayed bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		replayed = false
		var hash string
		var seq int64
		err := tx.QueryRowContext(ctx, "SELECT request_hash, entry_seq FROM ledger_idempotency WHERE org = ? AND key_hash = ?", code, keyHash).Scan(&hash, &seq)
		switch {
		case err == nil:
			if hash != reqHash {
				return domainError(errIdemOtherRequest, "ledger idempotency key of "+code+" reused for another request")
			}
			got, err = scanEntry(tx.QueryRowContext(ctx, "SELECT "+entryColumns+" FROM ledger_entries WHERE org = ? AND seq = ?", code, seq))
			if err != nil {
				return fmt.Errorf("entry of idempotency record: %w", err)
			}
			replayed = true
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		e.IdempotencyKey = keyHash
		got, err = appendTx(ctx, tx, code, e, check)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO ledger_idempotency (org, key_hash, request_hash, entry_seq, created_at) VALUES (?, ?, ?, ?, ?)",
			code, keyHash, reqHash, got.Seq, s.now().UnixMilli())
		return err
	})
	if err != nil {
		return donations.Entry{}, false, storeError("append ledger entry once", err, nil, nil)
	}
	return got, replayed, nil
}

// KeyUsed reports whether code's idempotency key keyHash has its record (written with
// the entry, in one transaction).
func (s *LedgerStore) KeyUsed(ctx context.Context, code, keyHash string) (bool, error) {
	var one int
	err := s.db.r.QueryRowContext(ctx, "SELECT 1 FROM ledger_idempotency WHERE org = ? AND key_hash = ?", code, keyHash).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, storeError("read ledger idempotency record", err, nil, nil)
	}
	return true, nil
}

// EntriesAfter returns code's entries after seq dated in month ("" for any), in
// sequence.
func (s *LedgerStore) EntriesAfter(ctx context.Context, code string, after int64, month string) ([]donations.Entry, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	if month != "" {
		if err := checkMonth(month); err != nil {
			return nil, err
		}
	}
	out, err := entriesAfter(ctx, s.db.r, code, after, month)
	return out, storeError("list ledger entries", err, nil, nil)
}

// List returns code's entries dated in month ("YYYY-MM"; "" for all), in sequence,
// each with its verification and the id of its reversal if it has them: one snapshot.
func (s *LedgerStore) List(ctx context.Context, code, month string) ([]donations.Record, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	if month != "" {
		if err := checkMonth(month); err != nil {
			return nil, err
		}
	}
	var out []donations.Record
	err := s.read(ctx, func(q querier) error {
		entries, err := entriesAfter(ctx, q, code, 0, month)
		if err != nil {
			return err
		}
		b, err := head(ctx, q, code)
		if err != nil {
			return err
		}
		out, err = withVerifications(ctx, q, code, entries, b.Reversed)
		return err
	})
	if err != nil {
		return nil, storeError("list ledger", err, nil, nil)
	}
	return out, nil
}

// GoodsIncome returns code's goods income entries, in sequence, with their
// verifications.
func (s *LedgerStore) GoodsIncome(ctx context.Context, code string) ([]donations.Record, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	var out []donations.Record
	err := s.read(ctx, func(q querier) error {
		entries, err := scanEntries(q.QueryContext(ctx, "SELECT "+entryColumns+" FROM ledger_entries WHERE org = ? AND kind = ? AND income_type = ? ORDER BY seq",
			code, string(donations.KindIncome), string(donations.IncomeGoods)))
		if err != nil {
			return err
		}
		out, err = withVerifications(ctx, q, code, entries, nil)
		return err
	})
	if err != nil {
		return nil, storeError("list goods income", err, nil, nil)
	}
	return out, nil
}

func withVerifications(ctx context.Context, q querier, code string, entries []donations.Entry, reversed map[string]string) ([]donations.Record, error) {
	verified := map[string]donations.Verification{}
	if len(entries) > 0 {
		rows, err := q.QueryContext(ctx, "SELECT entry_id, verified_by, verified_at, note FROM ledger_verifications WHERE org = ?", code)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var v donations.Verification
			var at int64
			if err := rows.Scan(&v.EntryID, &v.VerifiedBy, &at, &v.Note); err != nil {
				return nil, err
			}
			v.VerifiedAt = time.UnixMilli(at).UTC()
			verified[v.EntryID] = v
		}
		if err := rows.Err(); err != nil {
			return nil, err
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

// SaveVerification stores v, checked by donations.Ledger; a second verification of an
// entry is ECONFLICT. The entry itself is never changed.
func (s *LedgerStore) SaveVerification(ctx context.Context, code string, v donations.Verification) error {
	if err := checkLedgerOrg(code); err != nil {
		return err
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO ledger_verifications (entry_id, org, verified_by, verified_at, note) VALUES (?, ?, ?, ?, ?)",
			v.EntryID, code, v.VerifiedBy, v.VerifiedAt.UnixMilli(), v.Note)
		return err
	})
	return storeError("verify ledger entry", err, nil, errAlreadyVerified)
}

// UnevaluatedEntries lists entries still marked alerts_pending, recorded before the
// given time, oldest first (a partial index holds only those).
func (s *LedgerStore) UnevaluatedEntries(ctx context.Context, before time.Time, limit int) ([]donations.Entry, error) {
	out, err := scanEntries(s.db.r.QueryContext(ctx, "SELECT "+entryColumns+" FROM ledger_entries WHERE alerts_pending = 1 AND recorded_at < ? ORDER BY recorded_at, org, seq LIMIT ?",
		before.UnixMilli(), limit))
	return out, storeError("list unevaluated ledger entries", err, nil, nil)
}

// MarkAlertsEvaluated clears entry id's alerts_pending.
func (s *LedgerStore) MarkAlertsEvaluated(ctx context.Context, code, id string) error {
	seq, ok := entrySeq(code, id)
	if !ok {
		return errLedgerEntryNotFound
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE ledger_entries SET alerts_pending = 0 WHERE org = ? AND seq = ? AND alerts_pending = 1", code, seq)
		return err
	})
	return storeError("mark ledger entry evaluated", err, nil, nil)
}

// AddPhotos records an upload of photos (already in the object store) for org and
// returns their references, "<batch>/<evidence id>", for ledger entries to cite.
func (s *LedgerStore) AddPhotos(ctx context.Context, org, batch string, evs []intake.Evidence) ([]string, error) {
	refs := make([]string, 0, len(evs))
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		refs = refs[:0]
		if _, err := tx.ExecContext(ctx, "INSERT INTO ledger_photo_batches (id, org, at) VALUES (?, ?, ?)", batch, org, s.now().UnixMilli()); err != nil {
			return err
		}
		for _, ev := range evs {
			if _, err := tx.ExecContext(ctx, "INSERT INTO ledger_photos (batch, id, object_key, content_type, size, sha256_received, sha256_stored, metadata_removed, original_key, uploaded_by, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				batch, ev.ID, ev.ObjectKey, ev.ContentType, ev.Size, ev.SHA256Received, ev.SHA256Stored, ev.MetadataRemoved, ev.OriginalKey, ev.UploadedBy, millis(ev.UploadedAt)); err != nil {
				return err
			}
			refs = append(refs, batch+"/"+ev.ID)
		}
		return nil
	})
	if err != nil {
		return nil, storeError("store ledger photos", err, nil, nil)
	}
	return refs, nil
}

// Photo finds a photo reference of org.
func (s *LedgerStore) Photo(ctx context.Context, org, ref string) (intake.Evidence, error) {
	batch, id, ok := strings.Cut(ref, "/")
	if !ok || batch == "" || id == "" {
		return intake.Evidence{}, errPhotoNotFound
	}
	var ev intake.Evidence
	var at sql.NullInt64
	err := s.db.r.QueryRowContext(ctx, `SELECT p.id, p.object_key, p.content_type, p.size, p.sha256_received, p.sha256_stored, p.metadata_removed, p.original_key, p.uploaded_by, p.uploaded_at
		FROM ledger_photos p JOIN ledger_photo_batches b ON b.id = p.batch WHERE p.batch = ? AND p.id = ? AND b.org = ?`, batch, id, org).
		Scan(&ev.ID, &ev.ObjectKey, &ev.ContentType, &ev.Size, &ev.SHA256Received, &ev.SHA256Stored, &ev.MetadataRemoved, &ev.OriginalKey, &ev.UploadedBy, &at)
	if err != nil {
		return intake.Evidence{}, storeError("read ledger photo", err, errPhotoNotFound, nil)
	}
	ev.UploadedAt = fromMillis(at)
	return ev, nil
}

// RemovePhotos removes org's photo batch and its files' records (the batch of an entry
// that was not appended); a missing batch, or another organization's, is no error and
// changes nothing.
func (s *LedgerStore) RemovePhotos(ctx context.Context, org, batch string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		// The files first: they refer to their batch (foreign_keys is on).
		if _, err := tx.ExecContext(ctx, "DELETE FROM ledger_photos WHERE batch = ? AND EXISTS (SELECT 1 FROM ledger_photo_batches b WHERE b.id = ? AND b.org = ?)",
			batch, batch, org); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM ledger_photo_batches WHERE id = ? AND org = ?", batch, org)
		return err
	})
	return storeError("remove ledger photos", err, nil, nil)
}

// SavePublished stores a published statement as the canonical bytes its hash covers;
// publishing a month twice is ECONFLICT.
func (s *LedgerStore) SavePublished(ctx context.Context, ps donations.PublishedStatement) error {
	if err := checkLedgerOrg(ps.Org); err != nil {
		return err
	}
	content := ps.Statement.Canonical()
	if donations.ContentHash(content) != ps.ContentHash {
		return fmt.Errorf("publish statement %s %s: content hash does not match the figures", ps.Org, ps.Month)
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO ledger_statements (org, month, content, content_hash, through_seq, published_by, published_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			ps.Org, ps.Month, content, ps.ContentHash, ps.ThroughSeq, ps.PublishedBy, ps.PublishedAt.UnixMilli())
		return err
	})
	return storeError("publish statement", err, nil, errAlreadyPublished)
}

// Published reads a published statement back; one whose content does not match its
// hash is an error.
func (s *LedgerStore) Published(ctx context.Context, org, month string) (donations.PublishedStatement, bool, error) {
	if err := checkLedgerOrg(org); err != nil {
		return donations.PublishedStatement{}, false, err
	}
	var content []byte
	var ps donations.PublishedStatement
	var at int64
	err := s.db.r.QueryRowContext(ctx, "SELECT content, content_hash, through_seq, published_by, published_at FROM ledger_statements WHERE org = ? AND month = ?", org, month).
		Scan(&content, &ps.ContentHash, &ps.ThroughSeq, &ps.PublishedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return donations.PublishedStatement{}, false, nil
	}
	if err != nil {
		return donations.PublishedStatement{}, false, storeError("read statement", err, nil, nil)
	}
	st, err := donations.ParsePublished(content, ps.ContentHash)
	if err != nil {
		return donations.PublishedStatement{}, false, fmt.Errorf("statement %s:%s: %w", org, month, err)
	}
	ps.Statement, ps.PublishedAt = st, time.UnixMilli(at).UTC()
	return ps, true, nil
}

// PublishedMonths lists the months of org with a published statement.
func (s *LedgerStore) PublishedMonths(ctx context.Context, org string) (map[string]bool, error) {
	rows, err := s.db.r.QueryContext(ctx, "SELECT month FROM ledger_statements WHERE org = ?", org)
	if err != nil {
		return nil, storeError("list statements", err, nil, nil)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, storeError("list statements", err, nil, nil)
		}
		out[m] = true
	}
	return out, storeError("list statements", rows.Err(), nil, nil)
}

// SaveCorrection notes e as recorded after month's statement; noting it twice is a
// no-op.
func (s *LedgerStore) SaveCorrection(ctx context.Context, org, month string, e donations.Entry) error {
	if err := checkLedgerOrg(org); err != nil {
		return err
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO ledger_corrections (org, month, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", org, month, e.Seq)
		return err
	})
	return storeError("note correction", err, nil, nil)
}

// CorrectionEntries lists the entries noted as corrections of month, in sequence.
func (s *LedgerStore) CorrectionEntries(ctx context.Context, org, month string) ([]donations.Entry, error) {
	if err := checkLedgerOrg(org); err != nil {
		return nil, err
	}
	out, err := scanEntries(s.db.r.QueryContext(ctx, `SELECT e.org, e.seq, e.kind, e.income_type, e.date, e.idem, e.alerts_pending, e.recorded_at, e.beneficiary, e.body
		FROM ledger_corrections c JOIN ledger_entries e ON e.org = c.org AND e.seq = c.seq WHERE c.org = ? AND c.month = ? ORDER BY c.seq`, org, month))
	return out, storeError("list corrections", err, nil, nil)
}

// Alerts. A hit is recorded once (its id is org:rule:period); see donations/alertjob.go
// for how its case is filed exactly once.

const alertColumns = "id, rule, org, period, entry_id, detail, org_name, division, date, status, case_number, created_at, filed_at"

func scanAlert(sc interface{ Scan(...any) error }) (donations.Alert, error) {
	var a donations.Alert
	var created int64
	var filed sql.NullInt64
	err := sc.Scan(&a.ID, &a.Rule, &a.Org, &a.Period, &a.EntryID, &a.Detail, &a.OrgName, &a.Division, &a.Date, &a.Status, &a.CaseNumber, &created, &filed)
	a.CreatedAt, a.FiledAt = time.UnixMilli(created).UTC(), fromMillis(filed)
	return a, err
}

func recordAlert(ctx context.Context, tx *sql.Tx, h donations.Hit, caseNumber string, at time.Time) (bool, error) {
	status, filed := donations.AlertFiling, any(nil)
	if caseNumber != "" {
		status, filed = donations.AlertFiled, at.UnixMilli()
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO ledger_alerts ("+alertColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		h.ID(), h.Rule, h.Org, h.Period, h.EntryID, h.Detail, h.OrgName, h.Division, h.Date, status, caseNumber, at.UnixMilli(), filed)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecordAlert inserts hit h, filed as caseNumber ("" for not yet: status "filing"),
// and reports whether it was new; a hit recorded before is false with no error and
// leaves the stored record as it was.
func (s *LedgerStore) RecordAlert(ctx context.Context, h donations.Hit, caseNumber string, at time.Time) (bool, error) {
	if err := checkLedgerOrg(h.Org); err != nil {
		return false, err
	}
	var created bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) (err error) {
		created, err = recordAlert(ctx, tx, h, caseNumber, at)
		return err
	})
	return created, storeError("record alert", err, nil, nil)
}

// ClaimAlert records h as "filing" and returns the stored alert and whether this call
// created it; an existing alert is returned as it is.
func (s *LedgerStore) ClaimAlert(ctx context.Context, h donations.Hit, at time.Time) (donations.Alert, bool, error) {
	if err := checkLedgerOrg(h.Org); err != nil {
		return donations.Alert{}, false, err
	}
	var a donations.Alert
	var created bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) (err error) {
		if created, err = recordAlert(ctx, tx, h, "", at); err != nil {
			return err
		}
		a, err = scanAlert(tx.QueryRowContext(ctx, "SELECT "+alertColumns+" FROM ledger_alerts WHERE id = ?", h.ID()))
		return err
	})
	if err != nil {
		return donations.Alert{}, false, storeError("claim alert", err, nil, nil)
	}
	return a, created, nil
}

// MarkAlertFiled sets the case number of alert id and makes it "filed"; an alert
// filed already keeps its first case number.
func (s *LedgerStore) MarkAlertFiled(ctx context.Context, id, caseNumber string, at time.Time) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE ledger_alerts SET status = ?, case_number = ?, filed_at = ? WHERE id = ? AND status = ?",
			donations.AlertFiled, caseNumber, at.UnixMilli(), id, donations.AlertFiling)
		return err
	})
	return storeError("mark alert filed", err, nil, nil)
}

// Alert returns the stored alert id (org:rule:period).
func (s *LedgerStore) Alert(ctx context.Context, id string) (donations.Alert, error) {
	a, err := scanAlert(s.db.r.QueryRowContext(ctx, "SELECT "+alertColumns+" FROM ledger_alerts WHERE id = ?", id))
	if err != nil {
		return donations.Alert{}, storeError("read alert", err, errAlertNotFound, nil)
	}
	return a, nil
}

func (s *LedgerStore) alerts(ctx context.Context, op, q string, args ...any) ([]donations.Alert, error) {
	rows, err := s.db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	var out []donations.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		out = append(out, a)
	}
	return out, storeError(op, rows.Err(), nil, nil)
}

// PendingAlerts lists up to limit alerts left "filing", oldest first: those whose
// filing a crash interrupted. The status is a literal so that the partial index
// serves the query.
func (s *LedgerStore) PendingAlerts(ctx context.Context, limit int) ([]donations.Alert, error) {
	return s.alerts(ctx, "list pending alerts", "SELECT "+alertColumns+" FROM ledger_alerts WHERE status = '"+donations.AlertFiling+"' ORDER BY created_at, id LIMIT ?", limit)
}

// OrgAlerts lists the alerts of organization code.
func (s *LedgerStore) OrgAlerts(ctx context.Context, code string) ([]donations.Alert, error) {
	if err := checkLedgerOrg(code); err != nil {
		return nil, err
	}
	return s.alerts(ctx, "list alerts", "SELECT "+alertColumns+" FROM ledger_alerts WHERE org = ? ORDER BY id", code)
}
