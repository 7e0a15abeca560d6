package handlers

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

type entryRequest struct {
	Kind          donations.Kind         `json:"kind"`
	IncomeType    donations.IncomeType   `json:"income_type"`
	From          donations.Source       `json:"from"`
	AmountFen     int64                  `json:"amount_fen"`
	AmountYuan    string                 `json:"amount_yuan"` // alternative to amount_fen: "1234.50"
	Goods         *donations.Goods       `json:"goods"`
	Donor         *donations.Donor       `json:"donor"`
	ReceiptNumber string                 `json:"receipt_number"`
	Date          string                 `json:"date"`
	Purpose       string                 `json:"purpose"`
	Project       string                 `json:"project"`
	Beneficiary   *donations.Beneficiary `json:"beneficiary"` // plaintext, sealed at once
	Photos        []string               `json:"photos"`      // references from POST .../ledger/photos
	SignOffs      *donations.SignOffs    `json:"sign_offs"`
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
	stored, replayed, err := s.d.Ledger.Append(c.Context(), org.CreditCode, donations.Submission{
		Entry: donations.Entry{Kind: req.Kind, IncomeType: req.IncomeType, From: req.From, AmountFen: req.AmountFen, Goods: req.Goods,
			Donor: req.Donor, ReceiptNumber: req.ReceiptNumber, Date: req.Date, Purpose: req.Purpose, Project: req.Project,
			Photos: req.Photos, SignOffs: req.SignOffs, RecordedBy: u.ID},
		AmountYuan: req.AmountYuan, Beneficiary: req.Beneficiary, IdempotencyKey: c.Get("Idempotency-Key")})
	if err != nil {
		return err
	}
	if !replayed {
		s.recordChange(c, "ledger.append", "", map[string]string{"org": org.CreditCode, "entry": stored.ID, "kind": string(stored.Kind)})
	}
	return answerStored(c, replayed).JSON(entryOf(stored))
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
	stored, replayed, err := s.d.Ledger.Reverse(c.Context(), org.CreditCode, c.Params("id"), req.Reason, req.Date, u.ID, c.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if !replayed {
		s.recordChange(c, "ledger.reverse", "", map[string]string{"org": org.CreditCode, "entry": stored.ID, "reverses": stored.Reverses})
	}
	return answerStored(c, replayed).JSON(entryOf(stored))
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
	v, err := s.d.Ledger.Verify(c.Context(), org.CreditCode, c.Params("id"), u.ID, req.Note)
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
	recs, err := s.d.Ledger.List(c.Context(), org.CreditCode, c.Query("month"))
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
	var refs []string
	var batch string
	evs, err := s.storeLedgerPhotos(c, org, u, next, func(b string, evs []intake.Evidence) error {
		var err error
		batch = b
		refs, err = s.d.Ledger.AddPhotos(c.Context(), org.CreditCode, b, evs)
		return err
	})
	if err != nil {
		return err
	}
	s.recordChange(c, "ledger.photos", "", map[string]string{"org": org.CreditCode, "batch": batch, "files": strconv.Itoa(len(evs))})
	views := evidenceViews(evs)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"photos": refs, "files": views})
}

// storeLedgerPhotos runs the files next yields through the evidence pipeline (type by
// magic bytes, metadata removed, both SHA-256s) as one batch of org's ledger photos,
// uploaded by u, and calls commit with the batch; if anything fails, no object
// remains. The API's upload and the console's forms both come here.
func (s *Server) storeLedgerPhotos(c fiber.Ctx, org routing.Organization, u *accounts.User, next func() (io.Reader, error),
	commit func(batch string, evs []intake.Evidence) error) ([]intake.Evidence, error) {
	div := org.Division
	if div == "" {
		div = org.RegDivision
	}
	batch := intake.NewID()
	owner := &intake.Case{ID: "ledger-" + org.CreditCode, Number: org.CreditCode, Location: intake.Location{Division: div}}
	return s.d.Intake.StoreFiles(c.Context(), owner, "liaison:"+u.ID, next, s.d.Intake.Config.MaxCaseBytes, func(evs []intake.Evidence) ([]intake.Evidence, error) {
		return evs, commit(batch, evs) // every photo is its own: the ledger keeps repeats
	})
}

// publishStatement is POST /v1/orgs/{code}/ledger/statements/{month}/publish: a liaison
// publishes the month's statement (月度公示), due by the 10th of the next month. The
// figures are frozen as published; what is recorded later shows as corrections.
func (s *Server) publishStatement(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	month := c.Params("month")
	ps, err := s.d.Ledger.Publish(c.Context(), org.CreditCode, month, u.ID)
	if err != nil {
		return err
	}
	s.recordChange(c, "ledger.statement.publish", "", map[string]string{"org": org.CreditCode, "month": month})
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"org": org.CreditCode, "month": month, "published_at": wireTime(ps.PublishedAt),
		"content_hash": ps.ContentHash, "through_seq": ps.ThroughSeq})
}
