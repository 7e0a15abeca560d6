package donations

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/crypto"
)

// china is the time zone dates are written in.
var china = qingfeng.Shanghai

// Today is the date of now in China, YYYY-MM-DD.
func Today(now time.Time) string { return now.In(china).Format(time.DateOnly) }

type fieldErrs map[string]qingfeng.FieldError

func (f fieldErrs) add(field, zh, en string) {
	if _, ok := f[field]; !ok {
		f[field] = qingfeng.FieldError{Code: qingfeng.EINVALID, Message: zh, English: en}
	}
}

func (f fieldErrs) err() error {
	if len(f) == 0 {
		return nil
	}
	return qingfeng.Invalid(f)
}

// text checks an optional short text: no control characters, at most max runes.
func (f fieldErrs) text(field, label, s string, max int, required bool) {
	switch {
	case qingfeng.TrimText(s) == "":
		if required {
			f.add(field, label+"不能为空", field+" is required")
		} else if s != "" {
			f.add(field, label+"不能只含空白", field+" must not be blank")
		}
	case !utf8.ValidString(s):
		f.add(field, label+"含有无效字符", field+" is not valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		f.add(field, fmt.Sprintf("%s不能超过 %d 个字", label, max), fmt.Sprintf("%s is longer than %d characters", field, max))
	case qingfeng.TrimText(s) != s:
		f.add(field, label+"首尾不能有空白", field+" has leading or trailing spaces")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0:
		f.add(field, label+"含有控制字符", field+" contains control characters")
	}
}

func (f fieldErrs) amount(field, label string, v int64) {
	switch {
	case v <= 0:
		f.add(field, label+"须大于 0（单位：分）", field+" must be more than 0 fen")
	case v > MaxAmountFen:
		f.add(field, label+"超出上限", field+" is too large")
	}
}

func (f fieldErrs) goods(g *Goods, income bool) {
	if g == nil {
		f.add("goods", "须填写物资信息（品名、数量、单位、估值）", "goods are required")
		return
	}
	f.text("goods.item", "物资品名", g.Item, MaxTextRunes, true)
	f.text("goods.unit", "计量单位", g.Unit, 20, true)
	switch {
	case g.Quantity <= 0:
		f.add("goods.quantity", "物资数量须大于 0", "goods.quantity must be more than 0")
	case g.Quantity > MaxQuantity:
		f.add("goods.quantity", "物资数量超出上限", "goods.quantity is too large")
	}
	switch {
	case income:
		f.amount("goods.valuation_fen", "物资估值", g.ValuationFen)
	case g.ValuationFen < 0:
		f.add("goods.valuation_fen", "物资估值不能为负数", "goods.valuation_fen must not be negative")
	case g.ValuationFen > MaxAmountFen:
		f.add("goods.valuation_fen", "物资估值超出上限", "goods.valuation_fen is too large")
	}
}

func (f fieldErrs) date(s string, now time.Time) {
	d, err := time.ParseInLocation(time.DateOnly, s, china)
	switch {
	case s == "":
		f.add("date", "日期不能为空", "date is required")
	case err != nil || d.Format(time.DateOnly) != s:
		f.add("date", "日期格式应为 YYYY-MM-DD", "date must be YYYY-MM-DD")
	case s > Today(now):
		f.add("date", "日期不能晚于今天", "date is in the future")
	case d.Year() < 2000:
		f.add("date", "日期过早", "date is before 2000")
	}
}

func (f fieldErrs) photos(p []string) {
	if len(p) > MaxPhotos {
		f.add("photos", fmt.Sprintf("照片不能超过 %d 张", MaxPhotos), fmt.Sprintf("at most %d photos", MaxPhotos))
		return
	}
	for i, s := range p {
		f.text(fmt.Sprintf("photos[%d]", i), "照片", s, MaxPhotoRunes, true)
	}
}

// mustBeEmpty refuses fields that do not belong to an entry's kind, so that nothing a
// client sends is silently dropped or, worse, silently counted.
func (f fieldErrs) mustBeEmpty(e Entry) {
	no := func(field string, set bool) {
		if set {
			f.add(field, "此类记录不应填写该字段", field+" does not apply to this kind of entry")
		}
	}
	income := e.Kind == KindIncome
	no("income_type", !income && e.IncomeType != "")
	no("donor", !income && e.Donor != nil)
	no("receipt_number", !income && e.ReceiptNumber != "")
	no("from", e.Kind != KindDisbursement && e.From != "")
	no("beneficiary", e.Kind != KindDisbursement && len(e.Beneficiary) > 0)
	no("sign_offs", e.Kind != KindProjectSpending && e.SignOffs != nil)
	rev := e.Kind == KindReversal
	no("reverses", !rev && e.Reverses != "")
	no("reason", !rev && e.Reason != "")
	no("reversed_kind", !rev && e.ReversedKind != "")
	no("reversed_income_type", !rev && e.ReversedIncomeType != "")
	no("reversed_from", !rev && e.ReversedFrom != "")
}

// Validate checks an entry as a liaison submits it (ID, Seq, Org and RecordedAt are the
// store's). now is the clock for "not in the future". Errors are *qingfeng.Error with
// EINVALID and one field error per bad field, named as in the JSON.
//
// A reversal is validated by its own fields only (reverses, reason, date); its copy of
// the reversed entry is filled in by PrepareReversal.
func Validate(e Entry, now time.Time) error {
	f := fieldErrs{}
	f.date(e.Date, now)
	f.text("purpose", "用途说明", e.Purpose, MaxNoteRunes, e.Kind == KindIncome && e.IncomeType == IncomeServices)
	f.text("project", "项目名称", e.Project, MaxTextRunes, e.Kind == KindProjectSpending)
	f.photos(e.Photos)
	f.text("recorded_by", "记录人", e.RecordedBy, MaxTextRunes, true)
	f.mustBeEmpty(e)

	switch e.Kind {
	case KindIncome:
		switch e.IncomeType {
		case IncomeCash, IncomeTransfer, IncomeServices:
			label := "捐赠金额"
			if e.IncomeType == IncomeServices {
				label = "服务估值"
			}
			f.amount("amount_fen", label, e.AmountFen)
			if e.Goods != nil {
				f.add("goods", "现金、转账或服务捐赠不应填写物资", "goods do not apply to this income type")
			}
		case IncomeGoods:
			f.goods(e.Goods, true)
			if e.AmountFen != 0 {
				f.add("amount_fen", "物资捐赠的金额请填写在物资估值中", "goods income carries its value in goods.valuation_fen")
			}
		case "":
			f.add("income_type", "须选择捐赠形式：现金、转账、物资或服务", "income_type is required: cash, transfer, goods or services")
		default:
			f.add("income_type", "捐赠形式应为现金、转账、物资或服务之一", "income_type must be cash, transfer, goods or services")
		}
		if e.IncomeType == IncomeGoods && e.Project != "" {
			f.add("project", "物资库存不按项目区分，请在用途中说明", "goods stock is not split by project; describe it in purpose")
		}
		switch d := e.Donor; {
		case d == nil:
			f.add("donor", "须填写捐赠人，或注明匿名", "donor is required (it may be anonymous)")
		case d.Anonymous && (d.Name != "" || d.NameConsent):
			f.add("donor.name", "匿名捐赠不应记录捐赠人姓名", "an anonymous donor has no name")
		case !d.Anonymous:
			f.text("donor.name", "捐赠人名称", d.Name, MaxTextRunes, true)
		}
		if e.ReceiptNumber != "" {
			f.text("receipt_number", "捐赠票据号", e.ReceiptNumber, MaxReceiptRune, true)
			if strings.ContainsFunc(e.ReceiptNumber, unicode.IsSpace) {
				f.add("receipt_number", "捐赠票据号不能含空白", "receipt_number must not contain spaces")
			}
		}

	case KindDisbursement:
		switch e.From {
		case FromFunds:
			f.amount("amount_fen", "发放金额", e.AmountFen)
			if e.Goods != nil {
				f.add("goods", "从资金发放不应填写物资", "goods do not apply to a disbursement from funds")
			}
		case FromStock:
			f.goods(e.Goods, false)
			if e.AmountFen != 0 {
				f.add("amount_fen", "物资发放不应填写金额", "a disbursement from stock has no amount")
			}
			if e.Project != "" {
				f.add("project", "物资库存不按项目区分", "goods stock is not split by project")
			}
		case "":
			f.add("from", "须选择发放来源：资金或库存物资", "from is required: funds or stock")
		default:
			f.add("from", "发放来源应为资金或库存物资", "from must be funds or stock")
		}
		if len(e.Beneficiary) == 0 {
			f.add("beneficiary", "须登记受益对象（加密后）", "the sealed beneficiary is required")
		} else if _, err := crypto.InspectSealed(e.Beneficiary); err != nil {
			f.add("beneficiary", "受益对象密文无效", "the sealed beneficiary is not a valid age file")
		}

	case KindProjectSpending:
		f.amount("amount_fen", "支出金额", e.AmountFen)
		if e.Goods != nil {
			f.add("goods", "项目支出不应填写物资", "goods do not apply to project spending")
		}
		if s := e.SignOffs; s == nil {
			f.add("sign_offs", "项目支出须经经办人、项目负责人、财务负责人、秘书长四级联签", "project spending needs all four sign-offs")
		} else {
			f.text("sign_offs.handler", "经办人签字", s.Handler, MaxTextRunes, true)
			f.text("sign_offs.project_lead", "项目负责人签字", s.ProjectLead, MaxTextRunes, true)
			f.text("sign_offs.finance_lead", "财务负责人签字", s.FinanceLead, MaxTextRunes, true)
			f.text("sign_offs.secretary_general", "秘书长签字", s.SecretaryGeneral, MaxTextRunes, true)
		}

	case KindReversal:
		f.text("reverses", "被冲销的记录", e.Reverses, 64, true)
		f.text("reason", "冲销原因", e.Reason, MaxNoteRunes, true)

	case "":
		f.add("kind", "须选择记录类型", "kind is required")
	default:
		f.add("kind", "记录类型应为收入、发放、项目支出或冲销之一", "kind must be income, disbursement, project_spending or reversal")
	}
	return f.err()
}

var (
	errReverseReversal = qingfeng.Errorf(qingfeng.ECONFLICT, "冲销记录不能再被冲销，请重新登记正确的记录", "a reversal cannot be reversed; record a new entry instead")
	errReverseOtherOrg = qingfeng.Errorf(qingfeng.ENOTFOUND, "被冲销的记录不存在", "no such entry to reverse")
)

// PrepareReversal fills in rev, a reversal of orig, with the copy of orig's effect that
// folding needs: ReversedKind, ReversedIncomeType, ReversedFrom, AmountFen, Goods and
// Project. A reversal of a reversal, or of another organization's entry, is refused.
// Whether orig was already reversed is a question for the balance (Balance.Apply).
func PrepareReversal(orig Entry, rev *Entry) error {
	if rev.Kind != KindReversal || rev.Reverses != orig.ID {
		return fmt.Errorf("prepare reversal: entry %q is not a reversal of %q", rev.ID, orig.ID)
	}
	if rev.Org != "" && orig.Org != rev.Org {
		return errReverseOtherOrg
	}
	if orig.Kind == KindReversal {
		return errReverseReversal
	}
	rev.ReversedKind = orig.Kind
	rev.ReversedIncomeType = orig.IncomeType
	rev.ReversedFrom = orig.From
	rev.AmountFen = orig.AmountFen
	rev.Project = orig.Project
	rev.Goods = nil
	if orig.Goods != nil {
		g := *orig.Goods
		rev.Goods = &g
	}
	return nil
}

var (
	errNotVerifiable = qingfeng.Errorf(qingfeng.ECONFLICT, "只有物资捐赠需要验收", "only goods income is verified")
	errSelfVerify    = qingfeng.Errorf(qingfeng.EFORBIDDEN, "物资须由登记人以外的第二人验收", "goods must be verified by someone other than the person who recorded them")
)

// CheckVerification checks that v may verify e: e is goods income and the verifier is
// not the recorder. That e is verified only once is the store's to enforce.
func CheckVerification(e Entry, v Verification) error {
	f := fieldErrs{}
	f.text("verified_by", "验收人", v.VerifiedBy, MaxTextRunes, true)
	f.text("note", "验收说明", v.Note, MaxNoteRunes, false)
	if err := f.err(); err != nil {
		return err
	}
	if !e.NeedsVerification() {
		return errNotVerifiable
	}
	if v.EntryID != e.ID {
		return fmt.Errorf("check verification: verification of %q for entry %q", v.EntryID, e.ID)
	}
	if v.VerifiedBy == e.RecordedBy {
		return errSelfVerify
	}
	return nil
}
