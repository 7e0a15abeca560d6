package handlers

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"
	"golang.org/x/text/width"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/web"
)

// orgStatementsShown is how many published months the page lists, newest first.
const orgStatementsShown = 12

const orgCheckPurpose = "org-check"

var (
	errOrgMalformed = qingfeng.Errorf(qingfeng.ENOTFOUND, "这不是有效的统一社会信用代码（应为18位数字和大写字母）。请核对二维码或代码后重试。", "not a unified social credit code")
	errOrgUnknown   = qingfeng.Errorf(qingfeng.ENOTFOUND, "没有找到以此统一社会信用代码登记的社会组织。它可能未在浙江省民政部门登记，或代码有误。未经登记以社会组织名义活动属于非法社会组织，可以举报。", "no registered organization with this code")
)

// pageOrg finds the organization a page names; a malformed or unknown code is a 404.
func (s *Server) pageOrg(raw string) (routing.Organization, error) {
	cc, err := routing.ParseCreditCode(strings.TrimSpace(raw))
	if err != nil {
		return routing.Organization{}, errOrgMalformed
	}
	org, ok := s.d.Orgs(cc.Code)
	if !ok {
		return org, errOrgUnknown
	}
	return org, nil
}

// pathParam is a path parameter as typed: Fiber leaves it percent-encoded.
func pathParam(c fiber.Ctx, name string) string {
	v := c.Params(name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// orgLookup is GET /orgs?code=: the landing page's form, sent on to the page.
func (s *Server) orgLookup(c fiber.Ctx) error {
	org, err := s.pageOrg(c.Query("code"))
	if err != nil {
		return err
	}
	return c.Redirect().Status(fiber.StatusSeeOther).To("/orgs/" + org.CreditCode)
}

// orgPage is GET /orgs/{credit code}, what an organization's QR code (一社一码) opens.
func (s *Server) orgPage(c fiber.Ctx) error {
	org, err := s.pageOrg(pathParam(c, "code"))
	if err != nil {
		return err
	}
	p, err := s.orgView(c.Context(), org)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "org", p)
}

// orgCheck is POST /orgs/{credit code}/check: the donor's check, as on the API.
func (s *Server) orgCheck(c fiber.Ctx) error {
	org, err := s.pageOrg(pathParam(c, "code"))
	if err != nil {
		return err
	}
	form, err := s.pageForm(c)
	if err != nil {
		return err
	}
	p, err := s.orgView(c.Context(), org)
	if err != nil {
		return err
	}
	p.Check.Values["receipt"], p.Check.Values["amount"] = form.Get("receipt"), form.Get("amount")
	err = s.checkCSRF(form.Get("_csrf"), orgCheckPurpose, org.CreditCode)
	if err == nil {
		err = s.requirePoWSolution(pow.DonorCheck, form.Get("_pow"))
	}
	var (
		date     string
		recorded bool
	)
	if err == nil {
		var fen int64
		if fen, err = donations.ParseYuan(width.Narrow.String(strings.TrimSpace(form.Get("amount")))); err != nil {
			fen = 0
		}
		date, recorded, err = s.donorCheck(c.Context(), org, form.Get("receipt"), fen, "amount")
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		if _, ok := powOf(err); ok {
			p.Check.Notice = powPageNotice
		} else {
			formErrors(&p.Check, err, "")
		}
		return s.render(c, statusForForm(err), "org", p)
	}
	if recorded {
		p.Checked, p.CheckedOK = "已入账：这笔捐赠已记入该组织的捐赠台账（记账日期 "+pageDate(date)+"）。", true
	} else {
		p.Checked = "没有找到与该票据号和金额都相符的入账记录。请核对票据号和金额；确认无误仍查不到的，可以举报该组织（捐赠款物违规）。"
	}
	return s.render(c, fiber.StatusOK, "org", p)
}

// orgView is the organization page: registration facts, published statements with a
// chart each, and the donor check form.
func (s *Server) orgView(ctx context.Context, org routing.Organization) (web.OrgPage, error) {
	status := routing.OrgStatusLabel(org.Status)
	if status == "" {
		status = string(org.Status)
	}
	p := web.OrgPage{Page: web.Page{Title: org.Name}, CreditCode: org.CreditCode, Name: org.Name, Type: org.Type, Status: status,
		Listed: org.Status != routing.OrgNormal, Grade: org.Grade, Authority: s.orgAuthority(org),
		ReportLink: "/report?org=" + url.QueryEscape(org.CreditCode), QRLink: "/v1/public/orgs/" + org.CreditCode + "/qr.png"}
	p.Check = web.Form{CSRF: s.csrfToken(orgCheckPurpose, org.CreditCode), Values: map[string]string{}, Errors: map[string]string{}}
	months, err := s.d.Ledger.PublishedMonths(ctx, org.CreditCode)
	if err != nil {
		return p, err
	}
	slices.Sort(months)
	slices.Reverse(months)
	if len(months) > orgStatementsShown {
		months = months[:orgStatementsShown]
	}
	for _, m := range months {
		ps, corrections, err := s.d.Ledger.PublicStatement(ctx, org.CreditCode, m)
		if err != nil {
			return p, err
		}
		p.Statements = append(p.Statements, statementView(ps, len(corrections)))
	}
	p.NoStatement = len(p.Statements) == 0
	return p, nil
}

func statementView(ps donations.PublishedStatement, corrections int) web.Statement {
	st := ps.Statement
	month := st.Month
	if t, err := time.Parse("2006-01", st.Month); err == nil {
		month = t.Format("2006年1月")
	}
	v := web.Statement{Month: month, ID: "m-" + st.Month, Income: yuanText(st.IncomeFen), Services: yuanText(st.ServicesFen),
		Spending: yuanText(st.SpendingFen), FundsEnd: yuanText(st.FundsEndFen), PublishedAt: pageTime(ps.PublishedAt),
		Hash: ps.ContentHash, Corrections: corrections}
	v.Chart = statementChart(month, st)
	for _, f := range st.LargeFlows {
		kind := "支出"
		if f.Kind == donations.KindIncome {
			kind = "收入"
		}
		v.LargeFlows = append(v.LargeFlows, web.Flow{Date: pageDate(f.Date), Kind: kind, Amount: yuanText(f.AmountFen), Project: f.Project, Donor: f.Donor})
	}
	return v
}

// statementChart draws the month's income, spending and closing funds as horizontal
// bars scaled to the largest; every coordinate is computed here, the template only
// places them.
func statementChart(month string, st donations.Statement) web.Chart {
	const (
		left, barMax, row = 64, 170, 34
	)
	rows := []struct {
		label, class string
		fen          int64
	}{
		{"收入", "bar-income", st.IncomeFen + st.ServicesFen},
		{"支出", "bar-spending", st.SpendingFen},
		{"月末资金", "bar-funds", st.FundsEndFen},
	}
	largest := int64(1)
	for _, r := range rows {
		largest = max(largest, r.fen)
	}
	ch := web.Chart{Width: 360, Height: row*len(rows) + 6,
		Label: month + "收支图：收入 " + yuanText(rows[0].fen) + "，支出 " + yuanText(rows[1].fen) + "，月末资金 " + yuanText(rows[2].fen)}
	for i, r := range rows {
		w := 0
		if r.fen > 0 {
			w = max(2, int(r.fen*barMax/largest))
		}
		y := 4 + i*row
		ch.Bars = append(ch.Bars, web.Bar{Y: y, W: w, LabelY: y + 16, ValueX: left + w + 6, Label: r.label, Value: yuanText(r.fen), Class: r.class})
	}
	return ch
}

// yuanText shows fen as yuan with thousands separators: 1234567 → "12,345.67 元".
func yuanText(fen int64) string {
	neg := fen < 0
	if neg {
		fen = -fen
	}
	whole, cents := strconv.FormatInt(fen/100, 10), fen%100
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String()
	if cents != 0 {
		out += "." + strconv.FormatInt(cents/10, 10) + strconv.FormatInt(cents%10, 10)
	}
	if neg {
		out = "−" + out
	}
	return out + " 元"
}
