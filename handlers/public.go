package handlers

import (
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

// largeFlowFen is the amount from which a statement lists a flow by itself (10,000 yuan).
const largeFlowFen = 1_000_000

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
	authority := org.RegistrationAuthority
	if authority == "" {
		authority = routing.UnitID(org.RegDivision, routing.KindCivilAffairs)
	}
	name, _ := s.d.UnitName(authority)
	return c.JSON(fiber.Map{"credit_code": org.CreditCode, "name": org.Name, "type": org.Type, "status": string(org.Status),
		"status_label": routing.OrgStatusLabel(org.Status), "grade": org.Grade, "registration_authority": name})
}

// publicStatement is GET /v1/public/orgs/{code}/donations?month=YYYY-MM: the monthly
// statement, with no personal data.
func (s *Server) publicStatement(c fiber.Ctx) error {
	org, err := s.publicOrg(c)
	if err != nil {
		return err
	}
	month := c.Query("month")
	if _, err := time.Parse("2006-01", month); err != nil {
		return fieldInvalid("month", "invalid_month", "月份格式应为YYYY-MM", "a YYYY-MM month")
	}
	recs, err := s.d.Ledger.List(c.Context(), org.CreditCode, "")
	if err != nil {
		return err
	}
	st := donations.MonthlyStatement(org.CreditCode, recs, month, largeFlowFen)
	at, ok, err := s.d.Ledger.StatementPublished(c.Context(), org.CreditCode, month)
	if err != nil {
		return err
	}
	if ok {
		st.Published, st.PublishedAt = true, wireTime(at)
	}
	return c.JSON(st)
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
	receipt := strings.TrimSpace(c.Query("receipt"))
	amount, aerr := strconv.ParseInt(c.Query("amount_fen"), 10, 64)
	if receipt == "" || len(receipt) > 64 {
		return fieldInvalid("receipt", "required", "请填写捐赠票据号", "the receipt number is required")
	}
	if aerr != nil || amount <= 0 {
		return fieldInvalid("amount_fen", "invalid_value", "金额应为正整数（分）", "a positive amount in fen")
	}
	recs, err := s.d.Ledger.List(c.Context(), org.CreditCode, "")
	if err != nil {
		return err
	}
	date, ok := donations.FindReceipt(recs, receipt, amount)
	if !ok {
		s.d.PoW.Record(pow.DonorCheck)
	}
	out := fiber.Map{"recorded": ok}
	if ok {
		out["date"] = date
	}
	return c.JSON(out)
}

// publicQR is GET /v1/public/orgs/{code}/qr.png: a QR code that opens the
// organization's public page.
func (s *Server) publicQR(c fiber.Ctx) error {
	org, err := s.publicOrg(c)
	if err != nil {
		return err
	}
	png, err := qrcode.Encode(c.BaseURL()+"/v1/public/orgs/"+org.CreditCode, qrcode.Medium, 256)
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
	if err := s.record(c, "ledger.export", "", map[string]string{"org": org.CreditCode, "from": from, "to": to}); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("\ufeff")
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"id", "date", "kind", "income_type", "from", "amount_fen", "item", "quantity", "unit", "valuation_fen",
		"project", "receipt_number", "donor", "beneficiary_sealed", "reverses", "reversed_by", "verified"})
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
		_ = w.Write(csvSafe([]string{e.ID, e.Date, string(e.Kind), string(e.IncomeType), string(e.From), strconv.FormatInt(e.AmountFen, 10),
			item, qty, unit, val, e.Project, e.ReceiptNumber, donor, strconv.FormatBool(len(e.Beneficiary) > 0), e.Reverses, r.ReversedBy,
			strconv.FormatBool(r.Verification != nil)}))
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
