package donations

import (
	"fmt"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng/routing"
)

// Alert rules (预警, 智能预警 in seed 002): checks over an organization's ledger whose
// hits each open a case (source "system"), routed like any other report.
//
// The rules about an entry itself (large_amount, foreign_donor, cash_without_receipt,
// disbursement_without_beneficiary, income_for_listed_org) are evaluated once, when the
// entry is appended (EntryHits, called by Ledger.Append): reversing the entry later,
// even a second later, does not undo the hit. The rules about time passing
// (goods_unverified, statement_not_published) are evaluated by the periodic job
// (Ledger.RunAlerts, OverdueHits, UnpublishedStatements).
//
// A hit is deduplicated by organization + rule + period (Hit.ID):
//   - the per-entry rules use the entry's 10-digit sequence number as the period, so
//     every offending entry opens its own case once;
//   - income_for_listed_org and statement_not_published use the month (YYYY-MM): one
//     case per organization and month.
const (
	RuleLargeAmount                    = "large_amount"
	RuleCashWithoutReceipt             = "cash_without_receipt"
	RuleGoodsUnverified                = "goods_unverified"
	RuleDisbursementWithoutBeneficiary = "disbursement_without_beneficiary"
	RuleIncomeForListedOrg             = "income_for_listed_org"
	RuleForeignDonor                   = "foreign_donor"
	RuleStatementNotPublished          = "statement_not_published"
)

// Rules are all rule names.
var Rules = []string{RuleLargeAmount, RuleForeignDonor, RuleCashWithoutReceipt, RuleGoodsUnverified,
	RuleDisbursementWithoutBeneficiary, RuleIncomeForListedOrg, RuleStatementNotPublished}

// AlertRules configure the rules. Zero values take the defaults of DefaultAlertRules.
type AlertRules struct {
	// LargeAmountFen: a single donation of at least this much (in fen; 以上 includes the
	// threshold) is a hit. Cash and transfers count their amount, goods their valuation,
	// services their valuation.
	LargeAmountFen int64
	// UnverifiedGoodsDays: goods income not verified by a second person this many days
	// after it was recorded is a hit.
	UnverifiedGoodsDays int
	// ListedLookbackDays: income dated within this many days before now is a hit while
	// the organization is listed (abnormal, dishonest, revoked, deregistered). The
	// registry does not record when a status began, so "income while listed" is
	// approximated by "currently listed and recent income".
	ListedLookbackDays int
	// Enabled switches rules off by name: a rule is on unless Enabled[rule] is present
	// and false. A nil map enables every rule.
	Enabled map[string]bool
}

// DefaultAlertRules: 50,000 yuan, 7 days, 90 days, every rule on.
var DefaultAlertRules = AlertRules{LargeAmountFen: 5_000_000, UnverifiedGoodsDays: 7, ListedLookbackDays: 90}

func (r AlertRules) withDefaults() AlertRules {
	if r.LargeAmountFen <= 0 {
		r.LargeAmountFen = DefaultAlertRules.LargeAmountFen
	}
	if r.UnverifiedGoodsDays <= 0 {
		r.UnverifiedGoodsDays = DefaultAlertRules.UnverifiedGoodsDays
	}
	if r.ListedLookbackDays <= 0 {
		r.ListedLookbackDays = DefaultAlertRules.ListedLookbackDays
	}
	return r
}

// On reports whether rule is enabled.
func (r AlertRules) On(rule string) bool {
	on, set := r.Enabled[rule]
	return !set || on
}

// Hit is one alert: a rule an organization's ledger broke. Detail is Chinese text for
// the case description and never carries personal data (no donor or beneficiary names,
// no free text from the entry); OrgName, Division and Date are what the case needs, kept
// with the hit so that a retried filing sends exactly the same report.
type Hit struct {
	Rule     string `json:"rule"`
	Org      string `json:"org"`    // credit code
	Period   string `json:"period"` // entry seq (10 digits) or YYYY-MM; see the package comment above
	EntryID  string `json:"entry_id"`
	Detail   string `json:"detail"`
	OrgName  string `json:"org_name"`
	Division string `json:"division"` // the organization's address division, else its registration one
	Date     string `json:"date"`     // YYYY-MM-DD of the entry
}

// ID is the deduplication key of h: org:rule:period.
func (h Hit) ID() string { return h.Org + ":" + h.Rule + ":" + h.Period }

// Alert statuses: an alert is recorded "filing" before its case is filed, and set
// "filed" with the case number after.
const (
	AlertFiling = "filing"
	AlertFiled  = "filed"
)

// Alert is a stored hit (预警) and what became of it.
type Alert struct {
	Hit
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	CaseNumber string    `json:"case_number,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	FiledAt    time.Time `json:"filed_at,omitzero"`
}

func yuan(fen int64) string {
	s := fmt.Sprintf("%d.%02d", fen/100, fen%100)
	return strings.TrimSuffix(s, ".00")
}

var incomeLabels = map[IncomeType]string{IncomeCash: "现金", IncomeTransfer: "转账", IncomeGoods: "物资", IncomeServices: "服务"}

// incomeValue is the value of an income entry in fen.
func incomeValue(e Entry) int64 {
	if e.IncomeType == IncomeGoods && e.Goods != nil {
		return e.Goods.ValuationFen
	}
	return e.AmountFen
}

func seqOf(e Entry) string { return fmt.Sprintf("%010d", e.Seq) }

// alertOrg is what a hit says about org: its division and a name to show.
func alertOrg(org routing.Organization) (division, name string) {
	division, name = org.Division, org.Name
	if division == "" {
		division = org.RegDivision
	}
	if name == "" {
		name = org.CreditCode
	}
	return division, name
}

func (r AlertRules) hit(org routing.Organization, rule, period string, e Entry, detail string) Hit {
	division, _ := alertOrg(org)
	return Hit{Rule: rule, Org: org.CreditCode, Period: period, EntryID: e.ID, Detail: detail,
		OrgName: org.Name, Division: division, Date: e.Date}
}

func where(org routing.Organization, e Entry) string {
	_, name := alertOrg(org)
	return fmt.Sprintf("%s（统一社会信用代码 %s）捐赠台账第 %d 条记录（%s）", name, org.CreditCode, e.Seq, e.Date)
}

// Listed reports whether org is on a list that makes taking donations suspect
// (abnormal, dishonest, revoked, deregistered).
func Listed(org routing.Organization) bool {
	return org.Status == routing.OrgAbnormal || org.Status == routing.OrgDishonest ||
		org.Status == routing.OrgRevoked || org.Status == routing.OrgDeregistered
}

// EntryHits returns the hits of e, an entry just appended to org's ledger, at now.
// It looks at e alone: what happens to e later (a reversal) changes nothing.
// Reversals never hit.
func EntryHits(org routing.Organization, e Entry, now time.Time, rules AlertRules) []Hit {
	rules = rules.withDefaults()
	var out []Hit
	switch e.Kind {
	case KindIncome:
		v := incomeValue(e)
		if rules.On(RuleLargeAmount) && v >= rules.LargeAmountFen {
			out = append(out, rules.hit(org, RuleLargeAmount, seqOf(e), e, fmt.Sprintf(
				"系统预警：%s为单笔大额捐赠（%s，%s 元），达到 %s 元的预警标准，请核查捐赠来源、票据和使用情况。",
				where(org, e), incomeLabels[e.IncomeType], yuan(v), yuan(rules.LargeAmountFen))))
		}
		if rules.On(RuleForeignDonor) && e.Donor != nil && e.Donor.Foreign {
			out = append(out, rules.hit(org, RuleForeignDonor, seqOf(e), e, fmt.Sprintf(
				"系统预警：%s的捐赠来自境外（%s），请核查是否符合境外捐赠管理规定。", where(org, e), incomeLabels[e.IncomeType])))
		}
		if rules.On(RuleCashWithoutReceipt) && e.IncomeType == IncomeCash && strings.TrimSpace(e.ReceiptNumber) == "" {
			out = append(out, rules.hit(org, RuleCashWithoutReceipt, seqOf(e), e, fmt.Sprintf(
				"系统预警：%s为现金捐赠 %s 元，未登记公益事业捐赠票据号，请核查是否开具票据、款项是否入账。",
				where(org, e), yuan(e.AmountFen))))
		}
		since := now.In(china).AddDate(0, 0, -rules.ListedLookbackDays).Format("2006-01-02")
		if rules.On(RuleIncomeForListedOrg) && Listed(org) && e.Date >= since && len(e.Date) >= 7 {
			_, name := alertOrg(org)
			m := e.Date[:7]
			out = append(out, rules.hit(org, RuleIncomeForListedOrg, m, e, fmt.Sprintf(
				"系统预警：%s（统一社会信用代码 %s）当前登记状态为“%s”，%s 月仍登记捐赠收入（自第 %d 条记录起，该笔 %s 元），请核查其是否违规开展募捐或接受捐赠。",
				name, org.CreditCode, routing.OrgStatusLabel(org.Status), m, e.Seq, yuan(incomeValue(e)))))
		}
	case KindDisbursement:
		// A hand-out needs a beneficiary and a photo (发放照片) as its evidence.
		if rules.On(RuleDisbursementWithoutBeneficiary) && (e.From == FromFunds || e.From == FromStock) && (len(e.Beneficiary) == 0 || len(e.Photos) == 0) {
			what := "资金 " + yuan(e.AmountFen) + " 元"
			if e.From == FromStock && e.Goods != nil {
				what = fmt.Sprintf("物资 %d%s", e.Goods.Quantity, e.Goods.Unit)
			}
			missing := "受益人和发放照片"
			switch {
			case len(e.Beneficiary) > 0:
				missing = "发放照片"
			case len(e.Photos) > 0:
				missing = "受益人"
			}
			out = append(out, rules.hit(org, RuleDisbursementWithoutBeneficiary, seqOf(e), e, fmt.Sprintf(
				"系统预警：%s为发放%s，未登记%s，请核查发放对象和发放凭证。", where(org, e), what, missing)))
		}
	}
	return out
}

// OverdueHits returns the time-based hits of org's ledger recs at now: goods income
// not verified by a second person UnverifiedGoodsDays after it was recorded. Goods
// reversed before then need no verification.
func OverdueHits(org routing.Organization, recs []Record, now time.Time, rules AlertRules) []Hit {
	rules = rules.withDefaults()
	if !rules.On(RuleGoodsUnverified) {
		return nil
	}
	var out []Hit
	for _, r := range recs {
		e := r.Entry
		if !e.NeedsVerification() || r.Verification != nil || r.ReversedBy != "" {
			continue
		}
		from := e.RecordedAt
		if from.IsZero() {
			if d, err := time.ParseInLocation("2006-01-02", e.Date, china); err == nil {
				from = d
			}
		}
		if !from.IsZero() && now.Sub(from) > time.Duration(rules.UnverifiedGoodsDays)*24*time.Hour {
			out = append(out, rules.hit(org, RuleGoodsUnverified, seqOf(e), e, fmt.Sprintf(
				"系统预警：%s为捐赠物资，登记后超过 %d 天仍未由第二人签字验收，请核查物资是否到位。",
				where(org, e), rules.UnverifiedGoodsDays)))
		}
	}
	return out
}

// UnpublishedStatements is a hit for every month with ledger entries whose statement
// was not published by the 10th of the next month (Asia/Shanghai). The period is the
// month, so each late statement opens one case.
func UnpublishedStatements(org routing.Organization, recs []Record, published map[string]bool, now time.Time) []Hit {
	division := org.Division
	if division == "" {
		division = org.RegDivision
	}
	today := now.In(china).Format("2006-01-02")
	seen := map[string]bool{}
	var out []Hit
	for _, r := range recs {
		if len(r.Entry.Date) < 7 {
			continue
		}
		month := r.Entry.Date[:7]
		if seen[month] || published[month] {
			continue
		}
		seen[month] = true
		m, err := time.ParseInLocation("2006-01", month, china)
		if err != nil {
			continue
		}
		due := m.AddDate(0, 1, 9).Format("2006-01-02") // the 10th of the next month
		if today <= due {
			continue
		}
		out = append(out, Hit{Rule: RuleStatementNotPublished, Org: org.CreditCode, Period: month, Detail: fmt.Sprintf(
			"系统预警：%s（统一社会信用代码 %s）%s 的捐赠收支月度公示未在 %s 前发布，请督促公示。", org.Name, org.CreditCode, month, due),
			OrgName: org.Name, Division: division, Date: month + "-01"})
	}
	return out
}
