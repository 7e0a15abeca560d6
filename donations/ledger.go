package donations

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Store keeps ledgers (storage/mongo's LedgerStore). It stores and reads; every rule
// about what may be stored is the Ledger's. Append and AppendOnce assign the sequence
// number and guarantee, against concurrent writers, that an entry is only stored
// after check and Balance.Apply accepted it against exactly the entries before it.
type Store interface {
	Entry(ctx context.Context, code, id string) (Entry, error)
	Append(ctx context.Context, code string, e Entry, check func(Balance) error) (Entry, error)
	// AppendOnce is Append under an idempotency key: a retry returns the first entry
	// (replayed true); the same key with another request hash is ECONFLICT.
	AppendOnce(ctx context.Context, code, keyHash, reqHash string, e Entry, check func(Balance) error) (Entry, bool, error)
	// KeyUsed reports whether code's idempotency key keyHash is taken: an attempt under
	// it appended (or, on storage/mongo, may be appending).
	KeyUsed(ctx context.Context, code, keyHash string) (bool, error)
	List(ctx context.Context, code, month string) ([]Record, error)
	// EntriesAfter lists code's entries after seq dated in month ("" for any), in sequence.
	EntriesAfter(ctx context.Context, code string, after int64, month string) ([]Entry, error)
	// GoodsIncome lists code's goods income entries with their verifications.
	GoodsIncome(ctx context.Context, code string) ([]Record, error)
	Balance(ctx context.Context, code string) (Balance, error)
	// SaveVerification stores v once per entry (a second one is ECONFLICT).
	SaveVerification(ctx context.Context, code string, v Verification) error
	AddPhotos(ctx context.Context, org, batch string, evs []intake.Evidence) ([]string, error)
	Photo(ctx context.Context, org, ref string) (intake.Evidence, error)
	// RemovePhotos removes org's photo batch (a missing one is no error). Only
	// AppendWithPhotos calls it, for the batch of an entry that was not appended: no
	// entry cites it.
	RemovePhotos(ctx context.Context, org, batch string) error

	// SavePublished stores a published statement once per organization and month (a
	// second one is ECONFLICT); Published reads it back, checked against its hash.
	SavePublished(ctx context.Context, ps PublishedStatement) error
	Published(ctx context.Context, org, month string) (PublishedStatement, bool, error)
	PublishedMonths(ctx context.Context, org string) (map[string]bool, error)
	// SaveCorrection notes that entry e, dated in month, came after month's published
	// statement (once per entry); CorrectionEntries lists the noted entries of month
	// in sequence. The notes make reading a published month independent of the size
	// of the ledger.
	SaveCorrection(ctx context.Context, org, month string, e Entry) error
	CorrectionEntries(ctx context.Context, org, month string) ([]Entry, error)

	// Alerts: see alertjob.go.
	ClaimAlert(ctx context.Context, h Hit, at time.Time) (Alert, bool, error)
	MarkAlertFiled(ctx context.Context, id, caseNumber string, at time.Time) error
	PendingAlerts(ctx context.Context, limit int) ([]Alert, error)
	// UnevaluatedEntries lists entries appended with AlertsPending and not yet marked
	// evaluated, recorded before the given time, oldest first.
	UnevaluatedEntries(ctx context.Context, before time.Time, limit int) ([]Entry, error)
	MarkAlertsEvaluated(ctx context.Context, code, id string) error
}

// Sealer seals a beneficiary's identity to the custodians of a division (crypto.Sealer).
type Sealer interface {
	Seal(ctx context.Context, division string, plaintext []byte) (*intake.SealedIdentity, error)
}

// Ledger is the donation ledger service: everything a liaison, a reader or the public
// does with an organization's ledger goes through it. It owns the rules (validation
// against the prior entries, sealing beneficiaries, photo references, idempotency,
// verification by a second person, statements and their publishing, and the alert
// rules evaluated on append); the Store only stores.
type Ledger struct {
	Store  Store
	Sealer Sealer
	// Orgs finds a registered organization by credit code (for alerts and sealing).
	Orgs func(code string) (routing.Organization, bool)
	// File files the case of an alert hit under idemKey and returns its number; filing
	// twice with the same key and hit must return the same case. Nil: alerts are
	// recorded but not filed.
	File  func(ctx context.Context, h Hit, idemKey string) (caseNumber string, err error)
	Rules AlertRules
	// LargeFlowFen is the amount from which a statement lists a flow by itself
	// (default 10,000 yuan).
	LargeFlowFen int64
	Now          func() time.Time
	Log          *slog.Logger

	// The periodic alert job (alertjob.go).
	EachOrg       func(ctx context.Context, fn func(routing.Organization) error) error
	Leases        Leases
	Holder        string
	LeaseDuration time.Duration
}

// DefaultLargeFlowFen is the default Ledger.LargeFlowFen: 10,000 yuan.
const DefaultLargeFlowFen = 1_000_000

func (l *Ledger) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC()
	}
	return time.Now().UTC()
}

func (l *Ledger) largeFlow() int64 {
	if l.LargeFlowFen > 0 {
		return l.LargeFlowFen
	}
	return DefaultLargeFlowFen
}

func (l *Ledger) log() *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return slog.Default()
}

// Beneficiary is a disbursement's beneficiary in plaintext: sealed at once to the
// custodians of the organization's division, never stored or logged.
type Beneficiary struct {
	Name       string `json:"name"`
	ResidentID string `json:"resident_id"`
	Note       string `json:"note"`
}

// Submission is an entry as a liaison submits it: the entry's own fields, the amount
// in yuan as an alternative to AmountFen, the beneficiary in plaintext, and the
// client's Idempotency-Key ("" for none).
type Submission struct {
	Entry
	AmountYuan     string
	Beneficiary    *Beneficiary
	IdempotencyKey string
	// photoDigests are the received SHA-256s of the last photos of Entry.Photos, just
	// uploaded (AppendWithPhotos): a retry uploads them again under new references,
	// so the idempotency hash covers their content instead.
	photoDigests []string
}

var (
	errUseReversal  = qingfeng.Invalid(map[string]qingfeng.FieldError{"kind": {Code: "invalid_value", Message: "冲销请使用冲销接口", English: "use the reversal route"}})
	errKeyTooLong   = qingfeng.Invalid(map[string]qingfeng.FieldError{"Idempotency-Key": {Code: "too_long", Message: "幂等键过长", English: "the Idempotency-Key is too long"}})
	errMonthNotOver = qingfeng.Invalid(map[string]qingfeng.FieldError{"month": {Code: "not_over", Message: "该月尚未结束，不能发布公示", English: "the month is not over yet"}})
	errBadMonth     = qingfeng.Invalid(map[string]qingfeng.FieldError{"month": {Code: "invalid_month", Message: "月份格式应为YYYY-MM", English: "a YYYY-MM month"}})
	// ErrNotPublished is the public's answer for a month whose statement is not
	// published: unpublished figures are not public.
	ErrNotPublished = qingfeng.Errorf(qingfeng.ENOTFOUND, "该月捐赠收支公示尚未发布", "the statement of this month is not published")
)

// ErrGoodsUnverified refuses a hand-out of goods that a second person has not yet
// signed for (seed 003: 受赠物资须至少两人签收).
var ErrGoodsUnverified = qingfeng.Errorf(qingfeng.ECONFLICT, "受赠物资须至少两人签收：该物资尚未经登记人以外的第二人验收，不能发放", "the goods have not been verified by a second person and cannot be handed out yet")

// ParseMonth checks a YYYY-MM month.
func ParseMonth(month string) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01", month, china)
	if err != nil || t.Format("2006-01") != month {
		return time.Time{}, errBadMonth
	}
	return t, nil
}

func (l *Ledger) org(code string) (routing.Organization, error) {
	if l.Orgs != nil {
		if org, ok := l.Orgs(code); ok {
			return org, nil
		}
	}
	return routing.Organization{}, qingfeng.Errorf(qingfeng.ENOTFOUND, "组织未登记", "no such registered organization")
}

func divisionOf(org routing.Organization) string {
	if org.Division != "" {
		return org.Division
	}
	return org.RegDivision
}

// Append records income, a disbursement or project spending for organization code,
// recorded by s.RecordedBy: validated, its beneficiary sealed, its photos checked, and
// appended once per idempotency key. The alert rules are evaluated on the appended
// entry before Append returns (a failure there is logged and left to the periodic
// recovery, never lost). replayed is true when a retry found its first attempt's entry.
func (l *Ledger) Append(ctx context.Context, code string, s Submission) (e Entry, replayed bool, err error) {
	org, e, hashed, err := l.prepare(ctx, code, s)
	if err != nil {
		return Entry{}, false, err
	}
	return l.append(ctx, org, e, s.IdempotencyKey, hashed)
}

// Check runs every check of Append on s against the ledger as it is now, and appends
// nothing: a form checks its entry this way before its photos are uploaded. The
// balance may still change before the entry is appended; Append checks again. A
// submission whose idempotency key is taken passes the balance checks: it is a retry
// (a double tap of a hand-out that emptied the stock must not be told 库存不足), and
// Append answers it with the first attempt's entry, or refuses it if it is another
// request under the same key.
func (l *Ledger) Check(ctx context.Context, code string, s Submission) error {
	org, e, _, err := l.prepare(ctx, code, s)
	if err != nil {
		return err
	}
	if s.IdempotencyKey != "" {
		if used, err := l.Store.KeyUsed(ctx, org.CreditCode, keyHash(s.IdempotencyKey)); err != nil || used {
			return err
		}
	}
	b, err := l.Store.Balance(ctx, org.CreditCode)
	if err != nil {
		return err
	}
	prior := b.Clone()
	e.Seq, e.Org = b.Seq+1, org.CreditCode
	if err := b.Apply(e); err != nil {
		return err
	}
	if check := l.checkFor(ctx, org.CreditCode, e); check != nil {
		return check(prior)
	}
	return nil
}

// AppendWithPhotos is Append of s with photos just stored in the object store (evs,
// uploaded as one batch): the photos are recorded and cited by the entry, or — when
// the entry is refused, or a retry found its first attempt's entry (replayed) — their
// record is removed again, so that the caller removes the objects and a refused form
// leaves nothing behind.
func (l *Ledger) AppendWithPhotos(ctx context.Context, code string, s Submission, batch string, evs []intake.Evidence) (Entry, bool, error) {
	if len(s.Photos)+len(evs) > MaxPhotos {
		return Entry{}, false, qingfeng.Invalid(map[string]qingfeng.FieldError{"photos": {Code: qingfeng.EINVALID,
			Message: fmt.Sprintf("照片不能超过 %d 张", MaxPhotos), English: fmt.Sprintf("at most %d photos", MaxPhotos)}})
	}
	refs, err := l.Store.AddPhotos(ctx, code, batch, evs)
	if err != nil {
		return Entry{}, false, err
	}
	s.Photos = append(slices.Clip(s.Photos), refs...)
	for _, ev := range evs {
		s.photoDigests = append(s.photoDigests, "sha256:"+ev.SHA256Received)
	}
	e, replayed, err := l.Append(ctx, code, s)
	if err != nil || replayed {
		if rerr := l.Store.RemovePhotos(context.WithoutCancel(ctx), code, batch); rerr != nil {
			l.log().ErrorContext(ctx, "remove the photos of a refused ledger entry", "event", "donations.photos", "batch", batch, "err", rerr)
		}
	}
	return e, replayed, err
}

// prepare is Append's checks of s: the entry as it will be appended (its beneficiary
// sealed) and what its idempotency hash covers.
func (l *Ledger) prepare(ctx context.Context, code string, s Submission) (routing.Organization, Entry, any, error) {
	org, err := l.org(code)
	if err != nil {
		return org, Entry{}, nil, err
	}
	if s.Kind == KindReversal {
		return org, Entry{}, nil, errUseReversal
	}
	now := l.now()
	e := s.Entry
	e.Beneficiary, e.Org, e.ID, e.Seq = nil, "", "", 0
	f := fieldErrs{}
	f.amountFromYuan(&e, s.AmountYuan)
	if b := s.Beneficiary; b != nil {
		f.text("beneficiary.name", "受益人姓名", strings.TrimSpace(b.Name), 100, true)
		f.text("beneficiary.resident_id", "受益人身份证号", b.ResidentID, 18, false)
		f.text("beneficiary.note", "受益人备注", b.Note, 200, false)
	}
	if len(s.Photos) > MaxPhotos {
		f.add("photos", fmt.Sprintf("照片不能超过 %d 张", MaxPhotos), fmt.Sprintf("at most %d photos", MaxPhotos))
	}
	if len(s.IdempotencyKey) > 200 {
		return org, Entry{}, nil, errKeyTooLong
	}
	if err := f.err(); err != nil {
		return org, Entry{}, nil, err
	}
	for i, ref := range s.Photos {
		if _, err := l.Store.Photo(ctx, code, ref); err != nil {
			if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
				return org, Entry{}, nil, qingfeng.Invalid(map[string]qingfeng.FieldError{"photos[" + strconv.Itoa(i) + "]": {Code: "not_found",
					Message: "照片不存在，请先上传", English: "no such photo of this organization"}})
			}
			return org, Entry{}, nil, err
		}
	}
	if b := s.Beneficiary; b != nil {
		plain, _ := json.Marshal(map[string]any{"v": 1, "name": strings.TrimSpace(b.Name), "resident_id": b.ResidentID, "note": b.Note})
		sealed, err := l.Sealer.Seal(ctx, divisionOf(org), plain)
		clear(plain)
		if err != nil {
			return org, Entry{}, nil, err
		}
		e.Beneficiary = sealed.Ciphertext
	}
	e.RecordedAt = now.Truncate(time.Millisecond) // what BSON keeps
	if err := Validate(e, now); err != nil {
		return org, Entry{}, nil, err
	}
	// The request hash (kept for idempotency) must not be a test for guessed
	// beneficiaries: it covers only whether there is one.
	hashed := e
	hashed.Beneficiary, hashed.RecordedAt = nil, time.Time{}
	if n := len(s.photoDigests); n > 0 && n <= len(hashed.Photos) {
		hashed.Photos = append(slices.Clone(hashed.Photos[:len(hashed.Photos)-n]), s.photoDigests...)
	}
	return org, e, struct {
		Entry
		HasBeneficiary bool
	}{hashed, s.Beneficiary != nil}, nil
}

// Reverse appends a reversal (冲销) of entry id: a correction is a reversal (and, if
// needed, a new entry), never an edit. date "" is today.
func (l *Ledger) Reverse(ctx context.Context, code, id, reason, date, by, idemKey string) (Entry, bool, error) {
	org, err := l.org(code)
	if err != nil {
		return Entry{}, false, err
	}
	if len(idemKey) > 200 {
		return Entry{}, false, errKeyTooLong
	}
	now := l.now()
	if date == "" {
		date = Today(now)
	}
	e := Entry{Kind: KindReversal, Reverses: id, Reason: reason, Date: date, RecordedBy: by, RecordedAt: now.Truncate(time.Millisecond)}
	if err := Validate(e, now); err != nil {
		return Entry{}, false, err
	}
	orig, err := l.Store.Entry(ctx, code, id)
	if err != nil {
		return Entry{}, false, err
	}
	e.Org = code
	if err := PrepareReversal(orig, &e); err != nil {
		return Entry{}, false, err
	}
	return l.append(ctx, org, e, idemKey, map[string]string{"reverses": id, "reason": reason, "date": date, "by": by})
}

// append stores e (once per idemKey, with hashed as the request) and evaluates its
// alerts.
func (l *Ledger) append(ctx context.Context, org routing.Organization, e Entry, idemKey string, hashed any) (Entry, bool, error) {
	e.AlertsPending = true
	check := l.checkFor(ctx, org.CreditCode, e)
	var got Entry
	var replayed bool
	var err error
	if idemKey == "" {
		got, err = l.Store.Append(ctx, org.CreditCode, e, check)
	} else {
		body, _ := json.Marshal(hashed)
		rh := sha256.Sum256(body)
		got, replayed, err = l.Store.AppendOnce(ctx, org.CreditCode, keyHash(idemKey), hex.EncodeToString(rh[:]), e, check)
	}
	if err != nil {
		return Entry{}, false, err
	}
	if got.AlertsPending {
		// The entry is in whatever happens here: an alert that cannot be evaluated or
		// filed now is found again by RunAlerts.
		if err := l.evaluate(context.WithoutCancel(ctx), org, got); err != nil {
			l.log().ErrorContext(ctx, "donation alerts of an appended entry", "event", "donations.alert", "entry", got.ID, "err", err)
		}
		got.AlertsPending = false
	}
	return got, replayed, nil
}

// keyHash is what the store keeps of a client's Idempotency-Key.
func keyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// checkFor is the rule of the prior entries beyond Balance.Apply (which the store
// applies): goods go out only once a second person signed for them. It runs inside the
// store's append, against the balance the entry will follow.
func (l *Ledger) checkFor(ctx context.Context, code string, e Entry) func(Balance) error {
	if e.Kind != KindDisbursement || e.From != FromStock || e.Goods == nil {
		return nil
	}
	return func(b Balance) error {
		recs, err := l.Store.GoodsIncome(ctx, code)
		if err != nil {
			return err
		}
		key := e.Goods.Key()
		var unverified int64
		for _, r := range recs {
			if r.Seq <= b.Seq && r.Goods != nil && r.Goods.Key() == key && r.Verification == nil && b.Reversed[r.ID] == "" {
				unverified += r.Goods.Quantity
			}
		}
		if unverified > 0 && b.Stock[key]-unverified < e.Goods.Quantity {
			err := *ErrGoodsUnverified
			err.Fields = map[string]qingfeng.FieldError{"goods.quantity": {Code: "goods_unverified",
				Message: fmt.Sprintf("%s 库存 %d%s，其中 %d%s 尚未经第二人验收，最多可发放 %d%s", key.Item, b.Stock[key], key.Unit, unverified, key.Unit,
					max(b.Stock[key]-unverified, 0), key.Unit),
				English: fmt.Sprintf("%d of the %d in stock are not verified yet", unverified, b.Stock[key])}}
			return &err
		}
		return nil
	}
}

// Verify records that a second person (by), not the recorder, checked the goods of
// entry id were received (2人以上签字验收).
func (l *Ledger) Verify(ctx context.Context, code, id, by, note string) (Verification, error) {
	e, err := l.Store.Entry(ctx, code, id)
	if err != nil {
		return Verification{}, err
	}
	v := Verification{EntryID: id, VerifiedBy: by, VerifiedAt: l.now().Truncate(time.Millisecond), Note: note}
	if err := CheckVerification(e, v); err != nil {
		return Verification{}, err
	}
	return v, l.Store.SaveVerification(ctx, code, v)
}

// List returns code's records dated in month ("" for all).
func (l *Ledger) List(ctx context.Context, code, month string) ([]Record, error) {
	if month != "" {
		if _, err := ParseMonth(month); err != nil {
			return nil, err
		}
	}
	return l.Store.List(ctx, code, month)
}

// Balance is code's current balance.
func (l *Ledger) Balance(ctx context.Context, code string) (Balance, error) {
	return l.Store.Balance(ctx, code)
}

// AddPhotos records an upload of photos for code's ledger and returns their references.
func (l *Ledger) AddPhotos(ctx context.Context, code, batch string, evs []intake.Evidence) ([]string, error) {
	return l.Store.AddPhotos(ctx, code, batch, evs)
}

// Photo is the stored photo ref of code's ledger (ENOTFOUND for another
// organization's or none).
func (l *Ledger) Photo(ctx context.Context, code, ref string) (intake.Evidence, error) {
	return l.Store.Photo(ctx, code, ref)
}

// Statement computes code's statement of month from the ledger as it is now. The
// public never sees it: they see the published one (PublicStatement).
func (l *Ledger) Statement(ctx context.Context, code, month string) (Statement, []Record, error) {
	if _, err := ParseMonth(month); err != nil {
		return Statement{}, nil, err
	}
	recs, err := l.Store.List(ctx, code, "")
	if err != nil {
		return Statement{}, nil, err
	}
	return MonthlyStatement(code, recs, month, l.largeFlow()), recs, nil
}

// Publish publishes code's statement of month (月度公示) as the ledger has it now: its
// figures and content hash are stored and never recomputed. The month must be over;
// publishing twice is ECONFLICT.
func (l *Ledger) Publish(ctx context.Context, code, month, by string) (PublishedStatement, error) {
	m, err := ParseMonth(month)
	if err != nil {
		return PublishedStatement{}, err
	}
	now := l.now()
	if Today(now) < m.AddDate(0, 1, 0).Format(time.DateOnly) {
		return PublishedStatement{}, errMonthNotOver
	}
	st, recs, err := l.Statement(ctx, code, month)
	if err != nil {
		return PublishedStatement{}, err
	}
	ps := PublishedStatement{Statement: st, ContentHash: ContentHash(st.Canonical()), PublishedBy: by, PublishedAt: now.Truncate(time.Millisecond)}
	if len(recs) > 0 {
		ps.ThroughSeq = recs[len(recs)-1].Seq
	}
	if err := l.Store.SavePublished(ctx, ps); err != nil {
		return PublishedStatement{}, err
	}
	// An entry appended between the listing above and the save did not see the month
	// published when it was appended (noteCorrection): note it here. Any later entry
	// sees the saved statement itself.
	later, err := l.Store.EntriesAfter(ctx, code, ps.ThroughSeq, month)
	if err != nil {
		return ps, err
	}
	for _, e := range later {
		if err := l.Store.SaveCorrection(ctx, code, month, e); err != nil {
			return ps, err
		}
	}
	return ps, nil
}

// noteCorrection notes e as a correction (更正) if its month was published before it.
// It runs after every append, before the entry is marked evaluated, so a crash in
// between is recovered like the alerts.
func (l *Ledger) noteCorrection(ctx context.Context, e Entry) error {
	if len(e.Date) < 7 {
		return nil
	}
	month := e.Date[:7]
	ps, ok, err := l.Store.Published(ctx, e.Org, month)
	if err != nil || !ok || e.Seq <= ps.ThroughSeq {
		return err
	}
	return l.Store.SaveCorrection(ctx, e.Org, month, e)
}

// PublicStatement is code's published statement of month and the corrections (更正)
// recorded against the month since; ErrNotPublished when it was not published.
func (l *Ledger) PublicStatement(ctx context.Context, code, month string) (PublishedStatement, []Correction, error) {
	if _, err := ParseMonth(month); err != nil {
		return PublishedStatement{}, nil, err
	}
	ps, ok, err := l.Store.Published(ctx, code, month)
	if err != nil {
		return PublishedStatement{}, nil, err
	}
	if !ok {
		return PublishedStatement{}, nil, ErrNotPublished
	}
	later, err := l.Store.CorrectionEntries(ctx, code, month)
	if err != nil {
		return PublishedStatement{}, nil, err
	}
	return ps, Corrections(ps, later), nil
}

// PublishedMonths lists the months (YYYY-MM) of code's published statements, in no
// particular order.
func (l *Ledger) PublishedMonths(ctx context.Context, code string) ([]string, error) {
	m, err := l.Store.PublishedMonths(ctx, code)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m))
	for month, ok := range m {
		if ok {
			out = append(out, month)
		}
	}
	return out, nil
}

// Published is code's published statement of month, if there is one.
func (l *Ledger) Published(ctx context.Context, code, month string) (PublishedStatement, bool, error) {
	return l.Store.Published(ctx, code, month)
}
