package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// Ledger is the donation ledger store (storage/mongo's LedgerStore).
type Ledger interface {
	Append(ctx context.Context, code string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, error)
	AppendOnce(ctx context.Context, code, keyHash, reqHash string, e donations.Entry, check func(donations.Balance) error) (donations.Entry, bool, error)
	AddPhotos(ctx context.Context, org, batch string, evs []intake.Evidence) ([]string, error)
	Photo(ctx context.Context, org, ref string) (intake.Evidence, error)
	PublishStatement(ctx context.Context, org, month, by string, at time.Time) error
	StatementPublished(ctx context.Context, org, month string) (time.Time, bool, error)
	Verify(ctx context.Context, code string, v donations.Verification) (donations.Verification, error)
	List(ctx context.Context, code, month string) ([]donations.Record, error)
	Balance(ctx context.Context, code string) (donations.Balance, error)
}

// beneficiaryRequest is a disbursement's beneficiary in plaintext: it is sealed to the
// custodians of the organization's division at once and never stored or logged.
type beneficiaryRequest struct {
	Name       string `json:"name"`
	ResidentID string `json:"resident_id"`
	Note       string `json:"note"`
}

type entryRequest struct {
	Kind          donations.Kind       `json:"kind"`
	IncomeType    donations.IncomeType `json:"income_type"`
	From          donations.Source     `json:"from"`
	AmountFen     int64                `json:"amount_fen"`
	Goods         *donations.Goods     `json:"goods"`
	Donor         *donations.Donor     `json:"donor"`
	ReceiptNumber string               `json:"receipt_number"`
	Date          string               `json:"date"`
	Purpose       string               `json:"purpose"`
	Project       string               `json:"project"`
	Beneficiary   *beneficiaryRequest  `json:"beneficiary"`
	Photos        []string             `json:"photos"` // references from POST .../ledger/photos
	SignOffs      *donations.SignOffs  `json:"sign_offs"`
}

type entryView struct {
	ID                string               `json:"id"`
	Seq               int64                `json:"seq"`
	Kind              donations.Kind       `json:"kind"`
	IncomeType        donations.IncomeType `json:"income_type,omitempty"`
	From              donations.Source     `json:"from,omitempty"`
	AmountFen         int64                `json:"amount_fen,omitempty"`
	Goods             *donations.Goods     `json:"goods,omitempty"`
	Donor             *donations.Donor     `json:"donor,omitempty"`
	ReceiptNumber     string               `json:"receipt_number,omitempty"`
	Date              string               `json:"date"`
	Purpose           string               `json:"purpose,omitempty"`
	Project           string               `json:"project,omitempty"`
	BeneficiarySealed bool                 `json:"beneficiary_sealed"`
	Photos            []string             `json:"photos,omitempty"`
	SignOffs          *donations.SignOffs  `json:"sign_offs,omitempty"`
	Reverses          string               `json:"reverses,omitempty"`
	Reason            string               `json:"reason,omitempty"`
	RecordedBy        string               `json:"recorded_by"`
	RecordedAt        string               `json:"recorded_at"`
	Verification      *verificationView    `json:"verification,omitempty"`
	ReversedBy        string               `json:"reversed_by,omitempty"`
}

// verificationView is a goods verification as sent: its time on the wire rule.
type verificationView struct {
	EntryID    string `json:"entry_id"`
	VerifiedBy string `json:"verified_by"`
	VerifiedAt string `json:"verified_at"`
	Note       string `json:"note,omitempty"`
}

func verificationOf(v *donations.Verification) *verificationView {
	if v == nil {
		return nil
	}
	return &verificationView{EntryID: v.EntryID, VerifiedBy: v.VerifiedBy, VerifiedAt: wireTime(v.VerifiedAt), Note: v.Note}
}

func entryOf(e donations.Entry) entryView {
	return entryView{ID: e.ID, Seq: e.Seq, Kind: e.Kind, IncomeType: e.IncomeType, From: e.From, AmountFen: e.AmountFen, Goods: e.Goods,
		Donor: e.Donor, ReceiptNumber: e.ReceiptNumber, Date: e.Date, Purpose: e.Purpose, Project: e.Project,
		BeneficiarySealed: len(e.Beneficiary) > 0, Photos: e.Photos, SignOffs: e.SignOffs, Reverses: e.Reverses, Reason: e.Reason,
		RecordedBy: e.RecordedBy, RecordedAt: wireTime(e.RecordedAt)}
}

// ledgerOrg loads the organization of the path and checks the caller's access:
// liaisons of its division write and read; staff of its registration authority and
// admins read.
func (s *Server) ledgerOrg(c fiber.Ctx, write bool) (routing.Organization, *accounts.User, error) {
	p := principalOf(c)
	notFound := qingfeng.Errorf(qingfeng.ENOTFOUND, "组织未登记", "no such registered organization")
	code := strings.ToUpper(c.Params("code"))
	org, ok := s.d.Orgs(code)
	if !ok {
		return org, nil, notFound
	}
	div := org.Division
	if div == "" {
		div = org.RegDivision
	}
	u := p.user
	switch {
	case u.Role == accounts.RoleLiaison && u.Division != "" && strings.HasPrefix(div, routing.DivisionPrefix(u.Division)):
		return org, u, nil
	case write:
		return org, nil, qingfeng.ErrForbidden
	case u.Role == accounts.RoleAdmin:
		return org, u, nil
	case u.Role == accounts.RoleStaff && u.UnitID != "" && (u.UnitID == org.RegistrationAuthority || u.UnitID == routing.UnitID(org.RegDivision, routing.KindCivilAffairs)):
		return org, u, nil
	}
	return org, nil, notFound
}

// appendEntry is POST /v1/orgs/{code}/ledger/entries: income, a disbursement or
// project spending, recorded by a liaison of the organization's division.
func (s *Server) appendEntry(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	var req entryRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	e := donations.Entry{Kind: req.Kind, IncomeType: req.IncomeType, From: req.From, AmountFen: req.AmountFen, Goods: req.Goods,
		Donor: req.Donor, ReceiptNumber: req.ReceiptNumber, Date: req.Date, Purpose: req.Purpose, Project: req.Project,
		SignOffs: req.SignOffs, RecordedBy: u.ID}
	if e.Kind == donations.KindReversal {
		return fieldInvalid("kind", "invalid_value", "冲正请使用冲正接口", "use the reversal route")
	}
	if len(req.Photos) > 20 {
		return fieldInvalid("photos", "too_many", "最多引用20张照片", "at most 20 photos")
	}
	for i, ref := range req.Photos {
		if len(ref) > 80 {
			return fieldInvalid("photos", "not_found", "照片不存在，请先上传", "no such photo")
		}
		if _, err := s.d.Ledger.Photo(c.Context(), org.CreditCode, ref); err != nil {
			if isNotFound(err) {
				return fieldInvalid("photos["+strconv.Itoa(i)+"]", "not_found", "照片不存在，请先上传", "no such photo of this organization")
			}
			return err
		}
	}
	e.Photos = req.Photos
	if b := req.Beneficiary; b != nil {
		if strings.TrimSpace(b.Name) == "" || len([]rune(b.Name)) > 100 || len(b.ResidentID) > 18 || len([]rune(b.Note)) > 200 {
			return fieldInvalid("beneficiary", "invalid_value", "受益人姓名必填（不超过100字）", "a beneficiary name of at most 100 characters")
		}
		plain, _ := json.Marshal(map[string]any{"v": 1, "name": strings.TrimSpace(b.Name), "resident_id": b.ResidentID, "note": b.Note})
		div := org.Division
		if div == "" {
			div = org.RegDivision
		}
		sealed, err := s.d.Keys.Sealer.Seal(c.Context(), div, plain)
		clear(plain)
		if err != nil {
			return err
		}
		e.Beneficiary = sealed.Ciphertext
	}
	// The request hash (kept for idempotency) must not be a test for guessed
	// beneficiaries: it covers only whether there is one.
	hashed := req
	hashed.Beneficiary = nil
	stored, replayed, err := s.appendLedger(c, org.CreditCode, struct {
		entryRequest
		HasBeneficiary bool
	}{hashed, req.Beneficiary != nil}, e)
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
		return c.JSON(entryOf(stored))
	}
	s.recordChange(c, "ledger.append", "", map[string]string{"org": org.CreditCode, "entry": stored.ID, "kind": string(stored.Kind)})
	return c.Status(fiber.StatusCreated).JSON(entryOf(stored))
}

type reversalRequest struct {
	Reason string `json:"reason"`
	Date   string `json:"date"`
}

// reverseEntry is POST /v1/orgs/{code}/ledger/entries/{id}/reversal: a correction is a
// reversal (and, if needed, a new entry), never an edit.
func (s *Server) reverseEntry(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	var req reversalRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Date == "" {
		req.Date = donations.Today(time.Now())
	}
	stored, replayed, err := s.appendLedger(c, org.CreditCode, map[string]any{"reverses": c.Params("id"), "req": req},
		donations.Entry{Kind: donations.KindReversal, Reverses: c.Params("id"), Reason: req.Reason, Date: req.Date, RecordedBy: u.ID})
	if err != nil {
		return err
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
		return c.JSON(entryOf(stored))
	}
	s.recordChange(c, "ledger.reverse", "", map[string]string{"org": org.CreditCode, "entry": stored.ID, "reverses": stored.Reverses})
	return c.Status(fiber.StatusCreated).JSON(entryOf(stored))
}

type verificationRequest struct {
	Note string `json:"note"`
}

// verifyEntry is POST /v1/orgs/{code}/ledger/entries/{id}/verification: a second,
// different person confirms goods were received.
func (s *Server) verifyEntry(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	var req verificationRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if len([]rune(req.Note)) > 500 {
		return fieldInvalid("note", "too_long", "备注不能超过500字", "at most 500 characters")
	}
	v, err := s.d.Ledger.Verify(c.Context(), org.CreditCode, donations.Verification{EntryID: c.Params("id"), VerifiedBy: u.ID,
		VerifiedAt: time.Now().UTC(), Note: req.Note})
	if err != nil {
		return err
	}
	s.recordChange(c, "ledger.verify", "", map[string]string{"org": org.CreditCode, "entry": v.EntryID})
	return c.Status(fiber.StatusCreated).JSON(verificationOf(&v))
}

// listEntries is GET /v1/orgs/{code}/ledger/entries?month=YYYY-MM.
func (s *Server) listEntries(c fiber.Ctx) error {
	org, _, err := s.ledgerOrg(c, false)
	if err != nil {
		return err
	}
	month := c.Query("month")
	if month != "" {
		if _, err := time.Parse("2006-01", month); err != nil {
			return fieldInvalid("month", "invalid_month", "月份格式应为YYYY-MM", "a YYYY-MM month")
		}
	}
	recs, err := s.d.Ledger.List(c.Context(), org.CreditCode, month)
	if err != nil {
		return err
	}
	out := make([]entryView, 0, len(recs))
	for _, r := range recs {
		v := entryOf(r.Entry)
		v.Verification, v.ReversedBy = verificationOf(r.Verification), r.ReversedBy
		out = append(out, v)
	}
	return c.JSON(fiber.Map{"org": org.CreditCode, "entries": out})
}

type stockLine struct {
	Item     string `json:"item"`
	Unit     string `json:"unit"`
	Quantity int64  `json:"quantity"`
}

// ledgerBalance is GET /v1/orgs/{code}/ledger/balance: funds by project (the
// unrestricted fund under "") and stock by item.
func (s *Server) ledgerBalance(c fiber.Ctx) error {
	org, _, err := s.ledgerOrg(c, false)
	if err != nil {
		return err
	}
	b, err := s.d.Ledger.Balance(c.Context(), org.CreditCode)
	if err != nil {
		return err
	}
	stock := []stockLine{}
	for k, q := range b.Stock {
		stock = append(stock, stockLine{Item: k.Item, Unit: k.Unit, Quantity: q})
	}
	slices.SortFunc(stock, func(a, b stockLine) int { return strings.Compare(a.Item+a.Unit, b.Item+b.Unit) })
	funds := map[string]int64{}
	for p, v := range b.Funds {
		funds[p] = v
	}
	return c.JSON(fiber.Map{"org": org.CreditCode, "entries": b.Seq, "funds_fen": funds, "total_funds_fen": b.TotalFunds(), "stock": stock})
}

// appendLedger appends e, once per Idempotency-Key when the client sends one (a
// retried POST from a flaky network then returns the first entry, never a second).
// req is what the request hash covers; it must hold no personal data.
func (s *Server) appendLedger(c fiber.Ctx, code string, req any, e donations.Entry) (donations.Entry, bool, error) {
	key := c.Get("Idempotency-Key")
	if key == "" {
		got, err := s.d.Ledger.Append(c.Context(), code, e, nil)
		return got, false, err
	}
	if len(key) > 200 {
		return donations.Entry{}, false, fieldInvalid("Idempotency-Key", "too_long", "幂等键过长", "too long")
	}
	body, _ := json.Marshal(req)
	kh, rh := sha256.Sum256([]byte(key)), sha256.Sum256(body)
	return s.d.Ledger.AppendOnce(c.Context(), code, hex.EncodeToString(kh[:]), hex.EncodeToString(rh[:]), e, nil)
}

// uploadLedgerPhotos is POST /v1/orgs/{code}/ledger/photos: photos of goods, receipts
// and hand-outs, through the evidence pipeline (type by magic bytes, metadata removed,
// both SHA-256s), all or none; entries then cite the returned references.
func (s *Server) uploadLedgerPhotos(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	mr, err := multipartReader(c, s.d.MaxUploadBody)
	if err != nil {
		return err
	}
	next := func() (io.Reader, error) {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, multipartError(err)
		}
		if !isFilePart(part) {
			return nil, fieldInvalid(part.FormName(), "unknown_field", "只接受文件字段 file", "only file parts are accepted")
		}
		return &partReader{part}, nil
	}
	div := org.Division
	if div == "" {
		div = org.RegDivision
	}
	batch := intake.NewID()
	var refs []string
	owner := &intake.Case{ID: "ledger-" + org.CreditCode, Number: org.CreditCode, Location: intake.Location{Division: div}}
	evs, err := s.d.Intake.StoreFiles(c.Context(), owner, "liaison:"+u.ID, next, s.d.Intake.Config.MaxCaseBytes, func(evs []intake.Evidence) error {
		var err error
		refs, err = s.d.Ledger.AddPhotos(c.Context(), org.CreditCode, batch, evs)
		return err
	})
	if err != nil {
		return err
	}
	s.recordChange(c, "ledger.photos", "", map[string]string{"org": org.CreditCode, "batch": batch, "files": strconv.Itoa(len(evs))})
	views := evidenceViews(evs)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"photos": refs, "files": views})
}

// publishStatement is POST /v1/orgs/{code}/ledger/statements/{month}/publish: a liaison
// publishes the month's statement (月度公示), due by the 10th of the next month.
func (s *Server) publishStatement(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	month := c.Params("month")
	m, err := time.Parse("2006-01", month)
	if err != nil {
		return fieldInvalid("month", "invalid_month", "月份格式应为YYYY-MM", "a YYYY-MM month")
	}
	if donations.Today(time.Now()) < m.AddDate(0, 1, 0).Format(time.DateOnly) {
		return fieldInvalid("month", "not_over", "该月尚未结束，不能发布公示", "the month is not over yet")
	}
	now := time.Now().UTC()
	if err := s.d.Ledger.PublishStatement(c.Context(), org.CreditCode, month, u.ID, now); err != nil {
		return err
	}
	s.recordChange(c, "ledger.statement.publish", "", map[string]string{"org": org.CreditCode, "month": month})
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"org": org.CreditCode, "month": month, "published_at": wireTime(now)})
}
