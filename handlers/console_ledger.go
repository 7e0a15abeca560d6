package handlers

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The liaison's ledger pages (联络员, phone width first): an organization's balance,
// stock and entries; forms for income in yuan (stored in fen by the ledger), goods,
// disbursements and project spending with its four sign-offs; verification of
// someone else's goods; publishing a month after seeing what it freezes; the CSV. All
// through the API's ledger calls and scope check (ledgerOrg). Photos are not uploaded
// from these pages yet: the API's photo route is the way.

// consoleLedgerLookup is GET /console/ledger?org=: the organization to open.
func (s *Server) consoleLedgerLookup(c fiber.Ctx) error {
	if code := strings.ToUpper(normalizeCaseNumber(c.Query("org"))); code != "" {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/ledger/" + url.PathEscape(code))
	}
	pg := web.LedgerPage{ConsolePage: s.consolePage(c, "捐赠台账", "/console/ledger")}
	return s.render(c, fiber.StatusOK, "console/ledger", pg)
}

var kindLabels = map[donations.Kind]string{donations.KindIncome: "收入", donations.KindDisbursement: "发放",
	donations.KindProjectSpending: "项目支出", donations.KindReversal: "冲销"}

var incomeLabels = map[donations.IncomeType]string{donations.IncomeCash: "现金", donations.IncomeTransfer: "转账",
	donations.IncomeGoods: "物资", donations.IncomeServices: "服务"}

// consoleLedgerView is the organization's ledger page.
func (s *Server) consoleLedgerView(c fiber.Ctx) (web.LedgerPage, error) {
	org, u, err := s.ledgerOrg(c, false)
	if err != nil {
		return web.LedgerPage{}, err
	}
	pg := web.LedgerPage{ConsolePage: s.consolePage(c, "捐赠台账 · "+org.Name, "/console/ledger"), Code: org.CreditCode, Org: org.Name,
		Action: "/console/ledger/" + org.CreditCode, CSVHref: "/console/ledger/" + org.CreditCode + "/export.csv"}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	pg.Key = newFormKey()
	pg.Today = time.Now().In(qingfeng.Shanghai).Format(time.DateOnly)
	pg.Month = c.Query("month")
	if pg.Month == "" {
		pg.Month = time.Now().In(qingfeng.Shanghai).AddDate(0, -1, 0).Format("2006-01")
	}
	b, err := s.d.Ledger.Balance(c.Context(), org.CreditCode)
	if err != nil {
		return pg, err
	}
	for _, p := range sortedKeys(b.Funds) {
		name := p
		if name == "" {
			name = "非限定性资金"
		}
		pg.Funds = append(pg.Funds, web.KV{Label: name, Value: yuanText(b.Funds[p])})
	}
	pg.Total = yuanText(b.TotalFunds())
	for k, q := range b.Stock {
		pg.Stock = append(pg.Stock, web.KV{Label: k.Item, Value: strconv.FormatInt(q, 10) + " " + k.Unit})
	}
	slices.SortFunc(pg.Stock, func(a, b web.KV) int { return strings.Compare(a.Label, b.Label) })
	recs, err := s.d.Ledger.List(c.Context(), org.CreditCode, "")
	if err != nil {
		return pg, err
	}
	for i := len(recs) - 1; i >= 0 && len(pg.Entries) < 100; i-- { // newest first
		r := recs[i]
		e := web.LedgerEntry{ID: r.ID, Date: pageDate(r.Date), Kind: kindLabels[r.Kind], Receipt: r.ReceiptNumber, Project: r.Project,
			By: s.accountName(c, r.RecordedBy), Reversed: r.ReversedBy != ""}
		if r.IncomeType != "" {
			e.Kind += "（" + incomeLabels[r.IncomeType] + "）"
		}
		switch {
		case r.Goods != nil:
			e.Amount = r.Goods.Item + " " + strconv.FormatInt(r.Goods.Quantity, 10) + " " + r.Goods.Unit
			if r.Goods.ValuationFen > 0 {
				e.Amount += "（估值 " + yuanText(r.Goods.ValuationFen) + "）"
			}
		case r.AmountFen != 0:
			e.Amount = yuanText(r.AmountFen)
		}
		if r.Donor != nil {
			e.Donor = "匿名"
			if !r.Donor.Anonymous {
				e.Donor = r.Donor.Name
			}
		}
		if r.Entry.NeedsVerification() {
			switch {
			case r.Verification != nil:
				e.Verified = "已由 " + s.accountName(c, r.Verification.VerifiedBy) + " 核验"
			case r.RecordedBy == u.ID:
				e.Verified = "待另一人核验"
			default:
				e.Verified, e.CanVerify = "待核验", true
			}
		}
		pg.Entries = append(pg.Entries, e)
	}
	if st, monthRecs, err := s.d.Ledger.Statement(c.Context(), org.CreditCode, pg.Month); err == nil {
		pg.Preview = []web.KV{{Label: "本月记录", Value: fmt.Sprintf("%d 笔", len(monthRecs))}, {Label: "月初资金", Value: yuanText(st.OpeningFen)},
			{Label: "收入（货币）", Value: yuanText(st.IncomeFen)}, {Label: "服务折价", Value: yuanText(st.ServicesFen)}, {Label: "支出", Value: yuanText(st.SpendingFen)},
			{Label: "冲销", Value: yuanText(st.ReversalsFen)}}
		for _, g := range st.GoodsIn {
			pg.Preview = append(pg.Preview, web.KV{Label: "收到物资", Value: g.Item + " " + strconv.FormatInt(g.Quantity, 10) + " " + g.Unit})
		}
		if _, published, _ := s.d.Ledger.Published(c.Context(), org.CreditCode, pg.Month); published {
			pg.Published = true
		}
	} else {
		var qe *qingfeng.Error
		pg.PreviewNote = "暂时无法生成本月预览"
		if errors.As(err, &qe) && qe.Code != qingfeng.EINTERNAL {
			pg.PreviewNote = qe.Message
		}
	}
	return pg, nil
}

// consoleLedger is GET /console/ledger/{code}.
func (s *Server) consoleLedger(c fiber.Ctx) error {
	pg, err := s.consoleLedgerView(c)
	if err != nil {
		return err
	}
	pg.Flash = map[string]string{"income": "收入已记账。", "goods": "物资已记账，待另一人核验。", "disbursement": "发放已记账。",
		"project_spending": "项目支出已记账。", "verify": "已核验。", "publish": "月报已公开，数字已冻结。"}[c.Query("done")]
	return s.render(c, fiber.StatusOK, "console/ledger", pg)
}

// consoleLedgerAct is POST /console/ledger/{code}: one ledger form, named by op.
func (s *Server) consoleLedgerAct(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	form, err := s.consoleForm(c)
	op := form["op"]
	if err == nil {
		err = s.consoleLedgerApply(c, org.CreditCode, u.ID, op, form)
	}
	if err == nil {
		to := "/console/ledger/" + org.CreditCode + "?done=" + url.QueryEscape(op)
		if op == "publish" {
			to += "&month=" + url.QueryEscape(form["month"])
		}
		return c.Redirect().Status(fiber.StatusSeeOther).To(to)
	}
	if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" {
		return err
	}
	pg, verr := s.consoleLedgerView(c)
	if verr != nil {
		return verr
	}
	consoleFormErrors(&pg.Form, err)
	for i := range pg.Summary {
		pg.Summary[i].ID = "form-" + op // the form the error belongs to
	}
	pg.Values = form
	return s.render(c, statusForForm(err), "console/ledger", pg)
}

func (s *Server) consoleLedgerApply(c fiber.Ctx, code, by, op string, f map[string]string) error {
	donor := func() *donations.Donor {
		if name := strings.TrimSpace(f["donor_name"]); name != "" {
			return &donations.Donor{Name: name, NameConsent: f["name_consent"] == "true"}
		}
		return &donations.Donor{Anonymous: true}
	}
	sub := donations.Submission{IdempotencyKey: f["_key"], AmountYuan: strings.TrimSpace(f["amount_yuan"])}
	e := &sub.Entry
	e.RecordedBy, e.Date, e.ReceiptNumber, e.Purpose, e.Project = by, f["date"], strings.TrimSpace(f["receipt_number"]), f["purpose"], strings.TrimSpace(f["project"])
	switch op {
	case "income":
		e.Kind, e.IncomeType, e.Donor = donations.KindIncome, donations.IncomeType(f["income_type"]), donor()
	case "goods":
		e.Kind, e.IncomeType, e.Donor = donations.KindIncome, donations.IncomeGoods, donor()
		q, err := strconv.ParseInt(strings.TrimSpace(f["quantity"]), 10, 64)
		if err != nil {
			return fieldInvalid("goods.quantity", "invalid_value", "数量须为整数", "a whole number")
		}
		val, err := donations.ParseYuan(strings.TrimSpace(f["valuation_yuan"]))
		if err != nil {
			return fieldInvalid("goods.valuation_fen", "invalid_amount", "估值请填写金额（元），如 1200 或 1200.50", "an amount in yuan")
		}
		e.Goods = &donations.Goods{Item: strings.TrimSpace(f["item"]), Quantity: q, Unit: strings.TrimSpace(f["unit"]), ValuationFen: val}
		sub.AmountYuan = ""
	case "disbursement":
		e.Kind, e.From = donations.KindDisbursement, donations.FromFunds
		sub.Beneficiary = &donations.Beneficiary{Name: strings.TrimSpace(f["beneficiary"]), Note: strings.TrimSpace(f["beneficiary_note"])}
	case "project_spending":
		e.Kind = donations.KindProjectSpending
		e.SignOffs = &donations.SignOffs{Handler: strings.TrimSpace(f["handler"]), ProjectLead: strings.TrimSpace(f["project_lead"]),
			FinanceLead: strings.TrimSpace(f["finance_lead"]), SecretaryGeneral: strings.TrimSpace(f["secretary_general"])}
	case "verify":
		note := f["note"]
		if len([]rune(note)) > 500 {
			return fieldInvalid("note", "too_long", "备注不能超过500字", "at most 500 characters")
		}
		v, err := s.d.Ledger.Verify(c.Context(), code, f["entry"], by, note)
		if err != nil {
			return err
		}
		s.recordChange(c, "ledger.verify", "", map[string]string{"org": code, "entry": v.EntryID})
		return nil
	case "publish":
		if _, err := s.d.Ledger.Publish(c.Context(), code, f["month"], by); err != nil {
			return err
		}
		s.recordChange(c, "ledger.statement.publish", "", map[string]string{"org": code, "month": f["month"]})
		return nil
	default:
		return fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	stored, replayed, err := s.d.Ledger.Append(c.Context(), code, sub)
	if err != nil {
		return err
	}
	if !replayed {
		s.recordChange(c, "ledger.append", "", map[string]string{"org": code, "entry": stored.ID, "kind": string(stored.Kind)})
	}
	return nil
}
