package handlers

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
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
	"github.com/qingfeng-zj/qingfeng/web"
)

// The liaison's ledger pages (联络员, phone width first): an organization's balance,
// stock and entries; forms for income in yuan (stored in fen by the ledger), goods,
// disbursements and project spending with its four sign-offs; verification of
// someone else's goods; hand-outs picked from the stock; reversals (冲销) with a
// reason; publishing a month after seeing what it freezes; the CSV. All through the
// API's ledger calls and scope check (ledgerOrg).
//
// The goods, hand-out and spending forms take photos in the same multipart form (the
// file input last, so that the fields come first): the entry is checked before any
// photo is stored (Ledger.Check), the photos go through the API's upload path
// (storeLedgerPhotos) and the entry cites them (Ledger.AppendWithPhotos); if the entry
// is refused, neither the photos' record nor their objects remain.

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
	recs, err := s.d.Ledger.List(c.Context(), org.CreditCode, "")
	if err != nil {
		return pg, err
	}
	// Goods not yet verified by a second person cannot go out (Ledger's rule): the
	// select says how many of each line that is.
	unverified := map[donations.StockKey]int64{}
	for _, r := range recs {
		if r.NeedsVerification() && r.Goods != nil && r.Verification == nil && r.ReversedBy == "" {
			unverified[r.Goods.Key()] += r.Goods.Quantity
		}
	}
	for _, k := range sortedStock(b.Stock) {
		q := strconv.FormatInt(b.Stock[k], 10) + " " + k.Unit
		pg.Stock = append(pg.Stock, web.KV{Label: k.Item, Value: q})
		label := k.Item + "（库存 " + q
		if n := unverified[k]; n > 0 {
			label += fmt.Sprintf("，其中 %d %s待核验", n, k.Unit)
		}
		pg.StockOptions = append(pg.StockOptions, web.StockOption{Value: stockValue(k), Label: label + "）"})
	}
	cfg := s.d.Intake.Config
	pg.PhotoHint = fmt.Sprintf("可拍照或从相册选择，最多 %d 张，每张不超过 %s；JPEG、PNG 或 HEIC 照片（也接受 MP4 视频、PDF）。照片的位置等元数据会被去除。",
		min(cfg.MaxFilesPerReq, donations.MaxPhotos), sizeLabel(cfg.MaxFileBytes))
	for i := len(recs) - 1; i >= 0 && len(pg.Entries) < 100; i-- { // newest first
		r := recs[i]
		e := web.LedgerEntry{ID: r.ID, Seq: strconv.FormatInt(r.Seq, 10), Date: pageDate(r.Date), Kind: kindLabels[r.Kind], Receipt: r.ReceiptNumber,
			Project: r.Project, By: s.accountName(c, r.RecordedBy), Reversed: r.ReversedBy != ""}
		if r.IncomeType != "" {
			e.Kind += "（" + incomeLabels[r.IncomeType] + "）"
		}
		if r.From == donations.FromStock {
			e.Kind += "（物资）"
		}
		// A reversal is never reversed; a correction is a new entry.
		e.CanReverse = r.Kind != donations.KindReversal && r.ReversedBy == ""
		if r.Kind == donations.KindReversal {
			e.Reverses, e.Reason = "第 "+seqOf(r.Reverses)+" 笔", r.Reason
		}
		if r.ReversedBy != "" {
			e.ReversedBy = "第 " + seqOf(r.ReversedBy) + " 笔"
		}
		for i, ref := range r.Photos {
			ev, err := s.d.Ledger.Photo(c.Context(), org.CreditCode, ref)
			if err != nil {
				continue // a photo of the ledger is never missing; if it is, it is not shown
			}
			ph := web.LedgerPhoto{Src: "/console/ledger/" + org.CreditCode + "/photos/" + ref, Label: fmt.Sprintf("照片 %d", i+1),
				Image: ev.ContentType == "image/jpeg" || ev.ContentType == "image/png"}
			if !ph.Image {
				ph.Label = fmt.Sprintf("文件 %d（%s）", i+1, strings.TrimPrefix(extensionOf(ev.ContentType), "."))
			}
			e.Photos = append(e.Photos, ph)
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
	if st, _, err := s.d.Ledger.Statement(c.Context(), org.CreditCode, pg.Month); err == nil {
		pg.Preview = []web.KV{{Label: "本月记录", Value: fmt.Sprintf("%d 笔", st.Entries)}, {Label: "月初资金", Value: yuanText(st.OpeningFen)},
			{Label: "收入（货币）", Value: yuanText(st.IncomeFen)}, {Label: "服务折价", Value: yuanText(st.ServicesFen)}, {Label: "支出", Value: yuanText(st.SpendingFen)},
			{Label: "冲销", Value: yuanText(st.ReversalsFen)}}
		for _, g := range st.GoodsIn {
			pg.Preview = append(pg.Preview, web.KV{Label: "收到物资", Value: g.Item + " " + strconv.FormatInt(g.Quantity, 10) + " " + g.Unit})
		}
		for _, g := range st.GoodsOut {
			pg.Preview = append(pg.Preview, web.KV{Label: "发放物资", Value: g.Item + " " + strconv.FormatInt(g.Quantity, 10) + " " + g.Unit})
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
		"project_spending": "项目支出已记账。", "handout": "物资发放已记账。", "reverse": "已冲销，原记录和冲销记录都保留在台账中。",
		"verify": "已核验。", "publish": "月报已公开，数字已冻结。"}[c.Query("done")]
	return s.render(c, fiber.StatusOK, "console/ledger", pg)
}

// consoleLedgerAct is POST /console/ledger/{code}: one ledger form, named by op.
func (s *Server) consoleLedgerAct(c fiber.Ctx) error {
	org, u, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	var form map[string]string
	if mt, _ := mediaType(c); mt == fiber.MIMEMultipartForm {
		form, err = s.consoleLedgerUpload(c, org, u)
	} else if form, err = s.consoleForm(c); err == nil {
		err = s.consoleLedgerApply(c, org.CreditCode, u.ID, form["op"], form)
	}
	op := form["op"]
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
	target := "form-" + op // the form the error belongs to
	switch op {
	case "reverse":
		target = "f-reason-" + seqOf(form["entry"])
	case "verify":
		target = "f-note-" + form["entry"]
	}
	for i := range pg.Summary {
		pg.Summary[i].ID = target
	}
	pg.Values = form
	return s.render(c, statusForForm(err), "console/ledger", pg)
}

func (s *Server) consoleLedgerApply(c fiber.Ctx, code, by, op string, f map[string]string) error {
	switch op {
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
	case "reverse":
		// Dated today: a published month's figures stay as published, and the reversal
		// shows in the month it was made.
		stored, replayed, err := s.d.Ledger.Reverse(c.Context(), code, f["entry"], strings.TrimSpace(f["reason"]), "", by, f["_key"])
		if err != nil {
			return err
		}
		if !replayed {
			s.recordChange(c, "ledger.reverse", "", map[string]string{"org": code, "entry": stored.ID, "reverses": stored.Reverses})
		}
		return nil
	case "publish":
		if _, err := s.d.Ledger.Publish(c.Context(), code, f["month"], by); err != nil {
			return err
		}
		s.recordChange(c, "ledger.statement.publish", "", map[string]string{"org": code, "month": f["month"]})
		return nil
	}
	sub, err := consoleLedgerSubmission(by, op, f)
	if err != nil {
		return err
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

// photoOps are the forms that take photos.
var photoOps = map[string]bool{"goods": true, "handout": true, "disbursement": true, "project_spending": true}

// consoleLedgerSubmission is the entry a form of op submits.
func consoleLedgerSubmission(by, op string, f map[string]string) (donations.Submission, error) {
	donor := func() *donations.Donor {
		if name := strings.TrimSpace(f["donor_name"]); name != "" {
			return &donations.Donor{Name: name, NameConsent: f["name_consent"] == "true"}
		}
		return &donations.Donor{Anonymous: true}
	}
	quantity := func() (int64, error) {
		// Digits only: "２０", "1e3", "20.0" or "1,000" is a typo to correct, not a number to guess.
		if strings.TrimSpace(f["quantity"]) == "" {
			return 0, fieldInvalid("goods.quantity", "required", "请填写数量", "the quantity is required")
		}
		q, err := strconv.ParseInt(strings.TrimSpace(f["quantity"]), 10, 64)
		if err != nil {
			return 0, fieldInvalid("goods.quantity", "invalid_value", "数量须为整数，只用数字 0–9（不要用全角数字、小数点或逗号）", "a whole number in the digits 0-9")
		}
		return q, nil
	}
	sub := donations.Submission{IdempotencyKey: f["_key"], AmountYuan: strings.TrimSpace(f["amount_yuan"])}
	e := &sub.Entry
	e.RecordedBy, e.Date, e.ReceiptNumber, e.Purpose, e.Project = by, f["date"], strings.TrimSpace(f["receipt_number"]), f["purpose"], strings.TrimSpace(f["project"])
	beneficiary := func() {
		sub.Beneficiary = &donations.Beneficiary{Name: strings.TrimSpace(f["beneficiary"]), Note: strings.TrimSpace(f["beneficiary_note"])}
	}
	switch op {
	case "income":
		e.Kind, e.IncomeType, e.Donor = donations.KindIncome, donations.IncomeType(f["income_type"]), donor()
	case "goods":
		e.Kind, e.IncomeType, e.Donor = donations.KindIncome, donations.IncomeGoods, donor()
		q, err := quantity()
		if err != nil {
			return sub, err
		}
		val, err := donations.ParseYuan(strings.TrimSpace(f["valuation_yuan"]))
		if err != nil {
			return sub, fieldInvalid("goods.valuation_fen", "invalid_amount", "估值请填写金额（元），如 1200 或 1200.50", "an amount in yuan")
		}
		e.Goods = &donations.Goods{Item: strings.TrimSpace(f["item"]), Quantity: q, Unit: strings.TrimSpace(f["unit"]), ValuationFen: val}
		sub.AmountYuan = ""
	case "disbursement":
		e.Kind, e.From = donations.KindDisbursement, donations.FromFunds
		beneficiary()
	case "handout":
		e.Kind, e.From = donations.KindDisbursement, donations.FromStock
		item, unit, ok := strings.Cut(f["stock"], stockSep)
		if !ok || item == "" || unit == "" {
			return sub, fieldInvalid("goods.item", "required", "请从库存中选择要发放的物资", "pick the goods from the stock")
		}
		q, err := quantity()
		if err != nil {
			return sub, err
		}
		e.Goods = &donations.Goods{Item: item, Quantity: q, Unit: unit}
		sub.AmountYuan, e.ReceiptNumber, e.Project = "", "", ""
		beneficiary()
	case "project_spending":
		e.Kind = donations.KindProjectSpending
		e.SignOffs = &donations.SignOffs{Handler: strings.TrimSpace(f["handler"]), ProjectLead: strings.TrimSpace(f["project_lead"]),
			FinanceLead: strings.TrimSpace(f["finance_lead"]), SecretaryGeneral: strings.TrimSpace(f["secretary_general"])}
	default:
		return sub, fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	return sub, nil
}

// stockSep joins a stock line's item and unit in a select's value: a tab, which no
// item or unit contains (validation refuses control characters).
const stockSep = "\t"

func stockValue(k donations.StockKey) string { return k.Item + stockSep + k.Unit }

func sortedStock(m map[donations.StockKey]int64) []donations.StockKey {
	keys := make([]donations.StockKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b donations.StockKey) int {
		return strings.Compare(a.Item+stockSep+a.Unit, b.Item+stockSep+b.Unit)
	})
	return keys
}

// seqOf is the sequence number of an entry id ("<code>:0000000012" → "12").
func seqOf(id string) string {
	_, seq, _ := strings.Cut(id, ":")
	if n, err := strconv.ParseInt(seq, 10, 64); err == nil {
		return strconv.FormatInt(n, 10)
	}
	return seq
}

// errReplayedForm ends a form's upload whose entry a first attempt already appended:
// the photos uploaded again are removed, and the form counts as done.
var errReplayedForm = errors.New("the form's entry was already appended")

// consoleLedgerUpload is a ledger form sent as multipart/form-data: its fields, then
// the photos of the "photos" file input. The CSRF token is checked before any file is
// read, the entry before any is stored.
func (s *Server) consoleLedgerUpload(c fiber.Ctx, org routing.Organization, u *accounts.User) (map[string]string, error) {
	form := map[string]string{}
	mr, err := multipartReader(c, s.d.MaxUploadBody)
	if err != nil {
		return form, err
	}
	isPhoto := func(p *multipart.Part) bool { return p.FormName() == "photos" || p.FileName() != "" }
	// nextPhoto is the next chosen photo; an input left empty sends an empty part.
	nextPhoto := func(p *multipart.Part) (*multipart.Part, error) {
		for {
			if p == nil {
				var err error
				if p, err = mr.NextPart(); errors.Is(err, io.EOF) {
					return nil, io.EOF
				} else if err != nil {
					return nil, multipartError(err)
				}
				if !isPhoto(p) {
					return nil, fieldInvalid("photos", "field_after_file", "表单内容有误：照片须在其他字段之后提交，请从本页提交", "form fields must come before the photos")
				}
			}
			if p.FileName() != "" {
				return p, nil
			}
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, multipartError(err)
			}
			p = nil
		}
	}
	var first *multipart.Part
	for first == nil {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return form, multipartError(err)
		}
		if isPhoto(part) {
			if first, err = nextPhoto(part); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return form, err
			}
			continue
		}
		if len(form) >= 64 {
			return form, fieldInvalid("(body)", "too_many_fields", "表单字段过多，请从本页提交", "too many form fields")
		}
		v, err := readField(part, s.d.MaxJSONBytes)
		if err != nil {
			return form, err
		}
		if _, dup := form[part.FormName()]; !dup {
			form[part.FormName()] = v
		}
	}
	if err := s.checkCSRF(form["_csrf"], consolePurpose, consoleBinding(principalOf(c))); err != nil {
		return form, err
	}
	op := form["op"]
	if first == nil {
		return form, s.consoleLedgerApply(c, org.CreditCode, u.ID, op, form)
	}
	if !photoOps[op] {
		return form, fieldInvalid("photos", "unexpected", "此表单不能上传照片", "this form takes no photos")
	}
	sub, err := consoleLedgerSubmission(u.ID, op, form)
	if err != nil {
		return form, err
	}
	// Nothing is uploaded for an entry the ledger would refuse.
	if err := s.d.Ledger.Check(c.Context(), org.CreditCode, sub); err != nil {
		return form, err
	}
	next := func() (io.Reader, error) {
		p := first
		first = nil
		p, err := nextPhoto(p)
		if err != nil {
			return nil, err
		}
		return &partReader{p}, nil
	}
	var stored donations.Entry
	evs, err := s.storeLedgerPhotos(c, org, u, next, func(batch string, evs []intake.Evidence) error {
		var replayed bool
		var err error
		stored, replayed, err = s.d.Ledger.AppendWithPhotos(c.Context(), org.CreditCode, sub, batch, evs)
		if err == nil && replayed {
			return errReplayedForm
		}
		return err
	})
	switch {
	case errors.Is(err, errReplayedForm):
		return form, nil
	case err != nil:
		return form, photosField(err)
	}
	s.recordChange(c, "ledger.append", "", map[string]string{"org": org.CreditCode, "entry": stored.ID, "kind": string(stored.Kind),
		"photos": strconv.Itoa(len(evs))})
	return form, nil
}

// photosField puts an upload's error without a field (a file too large, of a type
// not accepted, too many) on the form's photo input.
func photosField(err error) error {
	var qe *qingfeng.Error
	if !errors.As(err, &qe) || len(qe.Fields) > 0 || (qe.Code != qingfeng.ETOOLARGE && qe.Code != qingfeng.EUNSUPPORTED) {
		return err
	}
	out := *qe
	out.Fields = map[string]qingfeng.FieldError{"photos": {Code: qe.Code, Message: qe.Message, English: qe.English}}
	return &out
}

// consoleLedgerPhoto is GET /console/ledger/{code}/photos/{batch}/{file}: a photo of
// the ledger (its metadata removed on upload), for a liaison of the organization's
// division; inline, never run. Every view is recorded, as case evidence downloads are
// (a hand-out's photo may show who received the aid).
func (s *Server) consoleLedgerPhoto(c fiber.Ctx) error {
	org, _, err := s.ledgerOrg(c, true)
	if err != nil {
		return err
	}
	ref := c.Params("batch") + "/" + c.Params("file")
	ev, err := s.d.Ledger.Photo(c.Context(), org.CreditCode, ref)
	if err != nil {
		return err
	}
	if ev.ObjectKey == "" {
		return qingfeng.Errorf(qingfeng.ENOTFOUND, "照片不存在", "no such photo")
	}
	if err := s.record(c, "ledger.photo.view", "", map[string]string{"org": org.CreditCode, "photo": ref}); err != nil {
		return err
	}
	return s.sendStored(c, ev, "inline",
		[2]string{"Content-Security-Policy", "default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors 'self'; sandbox"})
}
