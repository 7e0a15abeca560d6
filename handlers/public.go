package handlers

import (
	"context"
	"encoding/csv"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/stats"
)

func (s *Server) publicOrg(c fiber.Ctx) (routing.Organization, error) {
	org, ok := s.d.Orgs(strings.ToUpper(c.Params("code")))
	if !ok {
		return org, qingfeng.Errorf(qingfeng.ENOTFOUND, "组织未登记", "no such registered organization")
	}
	return org, nil
}

// publicOrgPage is GET /v1/public/orgs/{code} (一社一码): what the public may know.
func (s *Server) publicOrgPage(c fiber.Ctx) error {
	org, err := s.publicOrg(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"credit_code": org.CreditCode, "name": org.Name, "type": org.Type, "status": string(org.Status),
		"status_label": routing.OrgStatusLabel(org.Status), "grade": org.Grade, "registration_authority": s.orgAuthority(org)})
}

// orgAuthority names an organization's registration authority (登记管理机关).
func (s *Server) orgAuthority(org routing.Organization) string {
	authority := org.RegistrationAuthority
	if authority == "" {
		authority = routing.UnitID(org.RegDivision, routing.KindCivilAffairs)
	}
	name, _ := s.d.UnitName(authority)
	return name
}

// publishedStatementView is a published statement as the public sees it: the figures
// as published, their content hash, and the corrections (更正) recorded since.
type publishedStatementView struct {
	donations.Statement
	Published   bool             `json:"published"` // always true: unpublished months are not public
	PublishedAt string           `json:"published_at"`
	ContentHash string           `json:"content_hash"`
	Corrections []correctionView `json:"corrections"`
}

type correctionView struct {
	donations.Correction
	RecordedAt string `json:"recorded_at"`
}

// publicStatement is GET /v1/public/orgs/{code}/donations?month=YYYY-MM: the month's
// published statement, with no personal data; 404 while it is not published.
func (s *Server) publicStatement(c fiber.Ctx) error {
	org, err := s.publicOrg(c)
	if err != nil {
		return err
	}
	ps, corrections, err := s.d.Ledger.PublicStatement(c.Context(), org.CreditCode, c.Query("month"))
	if err != nil {
		return err
	}
	v := publishedStatementView{Statement: ps.Statement, Published: true, PublishedAt: wireTime(ps.PublishedAt), ContentHash: ps.ContentHash,
		Corrections: make([]correctionView, 0, len(corrections))}
	for _, cr := range corrections {
		v.Corrections = append(v.Corrections, correctionView{Correction: cr, RecordedAt: wireTime(cr.RecordedAt)})
	}
	return c.JSON(v)
}

// publicReceiptCheck is GET /v1/public/orgs/{code}/donations/check?receipt=&amount_fen=:
// a donor checks that their gift was recorded. A check that finds nothing may be a
// guess at receipt numbers: it raises the proof-of-work difficulty (package pow).
func (s *Server) publicReceiptCheck(c fiber.Ctx) error {
	if err := s.requirePoW(c, pow.DonorCheck); err != nil {
		return err
	}
	org, err := s.publicOrg(c)
	if err != nil {
		return err
	}
	amount, aerr := strconv.ParseInt(c.Query("amount_fen"), 10, 64)
	if aerr != nil || amount <= 0 {
		amount = 0
	}
	date, ok, err := s.donorCheck(c.Context(), org, c.Query("receipt"), amount, "amount_fen")
	if err != nil {
		return err
	}
	out := fiber.Map{"recorded": ok}
	if ok {
		out["date"] = date
	}
	return c.JSON(out)
}

// donorCheck is the donor's check for the API and the organization page: is an income
// with this receipt number and amount recorded? amountField names the amount's field
// in an error. A check that finds nothing raises the proof-of-work difficulty.
func (s *Server) donorCheck(ctx context.Context, org routing.Organization, receipt string, amountFen int64, amountField string) (string, bool, error) {
	receipt = strings.TrimSpace(receipt)
	if receipt == "" || len(receipt) > 64 {
		return "", false, fieldInvalid("receipt", "required", "请填写捐赠票据号", "the receipt number is required")
	}
	if amountFen <= 0 {
		msg := "金额应为正整数（分）"
		if amountField != "amount_fen" {
			msg = "请填写捐赠金额，例如 200 或 200.50"
		}
		return "", false, fieldInvalid(amountField, "invalid_value", msg, "a positive amount")
	}
	recs, err := s.d.Ledger.List(ctx, org.CreditCode, "")
	if err != nil {
		return "", false, err
	}
	date, ok := donations.FindReceipt(recs, receipt, amountFen)
	if !ok {
		s.d.PoW.Record(pow.DonorCheck)
	}
	return date, ok, nil
}

// publicQR is GET /v1/public/orgs/{code}/qr.png: a QR code that opens the
// organization's public page.
func (s *Server) publicQR(c fiber.Ctx) error {
	org, err := s.publicOrg(c)
	if err != nil {
		return err
	}
	// The code opens the organization's page under the configured public URL: never
	// the request's Host header, which anyone can set.
	png, err := qrcode.Encode(s.publicURL("/orgs/"+org.CreditCode), qrcode.Medium, 256)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
	return c.Send(png)
}

// ledgerCSV is GET /v1/orgs/{code}/ledger/export.csv?from=YYYY-MM&to=YYYY-MM: the
// entries of a period, for ledger readers; beneficiaries never appear.
func (s *Server) ledgerCSV(c fiber.Ctx) error {
	org, _, err := s.ledgerOrg(c, false)
	if err != nil {
		return err
	}
	from, to := c.Query("from"), c.Query("to")
	for field, v := range map[string]string{"from": from, "to": to} {
		if _, err := time.Parse("2006-01", v); err != nil {
			return fieldInvalid(field, "invalid_month", "月份格式应为YYYY-MM", "a YYYY-MM month")
		}
	}
	if from > to {
		return fieldInvalid("from", "invalid_range", "起始月份不能晚于结束月份", "from is after to")
	}
	recs, err := s.d.Ledger.List(c.Context(), org.CreditCode, "")
	if err != nil {
		return err
	}
	published := map[string]donations.PublishedStatement{}
	for _, r := range recs {
		m := r.Date[:7]
		if _, seen := published[m]; seen || m < from || m > to {
			continue
		}
		ps, _, err := s.d.Ledger.Published(c.Context(), org.CreditCode, m)
		if err != nil {
			return err
		}
		published[m] = ps // the zero value for an unpublished month
	}
	if err := s.record(c, "ledger.export", "", map[string]string{"org": org.CreditCode, "from": from, "to": to}); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("\ufeff")
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"id", "date", "kind", "income_type", "from", "amount_fen", "item", "quantity", "unit", "valuation_fen",
		"project", "receipt_number", "donor", "beneficiary_sealed", "reverses", "reversed_by", "verified", "recorded_at",
		"statement_sha256", "correction"})
	for _, r := range recs {
		e := r.Entry
		if e.Date[:7] < from || e.Date[:7] > to {
			continue
		}
		item, qty, unit, val := "", "", "", ""
		if g := e.Goods; g != nil {
			item, qty, unit, val = g.Item, strconv.FormatInt(g.Quantity, 10), g.Unit, strconv.FormatInt(g.ValuationFen, 10)
		}
		donor := ""
		if e.Donor != nil {
			donor = e.Donor.PublicLabel()
		}
		// statement_sha256 is the content hash of the month's published statement; an
		// entry recorded after it is a correction (更正) of that month.
		hash, correction := "", ""
		if ps := published[e.Date[:7]]; ps.ContentHash != "" {
			hash = ps.ContentHash
			if e.Seq > ps.ThroughSeq {
				correction = donations.CorrectionLabel
			}
		}
		_ = w.Write(csvSafe([]string{e.ID, e.Date, string(e.Kind), string(e.IncomeType), string(e.From), strconv.FormatInt(e.AmountFen, 10),
			item, qty, unit, val, e.Project, e.ReceiptNumber, donor, strconv.FormatBool(len(e.Beneficiary) > 0), e.Reverses, r.ReversedBy,
			strconv.FormatBool(r.Verification != nil), wireTime(e.RecordedAt), hash, correction}))
	}
	w.Flush()
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="ledger-`+org.CreditCode+`-`+from+`-`+to+`.csv"`)
	return c.SendString(b.String())
}

// csvSafe keeps spreadsheet programs from running a cell as a formula.
func csvSafe(row []string) []string {
	for i, v := range row {
		row[i] = stats.SafeCell(v)
	}
	return row
}
