package handlers

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/triage"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The staff pages of the console: the unit's queue, a case with the actions its
// workflow allows now, evidence through the audited route, notifications and
// statistics. Every read and every action goes through the API's own code: the same
// filter (caseFilter), the same scope check (loadCase: another unit's case is "not
// found"), the same services and audit entries.

// dueSoonDays marks a deadline this many working days away, or fewer, as due soon.
const dueSoonDays = 3

var queueStatuses = []intake.Status{intake.StatusRegistered, intake.StatusAccepted, intake.StatusDisposed, intake.StatusConcluded,
	intake.StatusFeedbackGiven, intake.StatusNotAccepted, intake.StatusDuplicate, intake.StatusClosed}

// pendingDeadline is a deadline a case waits on now.
type pendingDeadline struct {
	label, date, step string
}

// pendingDeadlines are the deadlines c waits on in its state: acceptance notice while
// registered, the result while concluded (real-name reports only), and a transfer's
// answer while one is pending.
func pendingDeadlines(c *intake.Case) []pendingDeadline {
	var out []pendingDeadline
	if c.Transfer != nil && c.Transfer.Due != "" {
		out = append(out, pendingDeadline{"接收或退回转办", c.Transfer.Due, "transfer"})
	}
	if c.Status == intake.StatusRegistered && c.AcceptanceDue != "" {
		out = append(out, pendingDeadline{"告知实名举报人是否受理", c.AcceptanceDue, "acceptance"})
	}
	if c.Status == intake.StatusConcluded && c.FeedbackDue != "" {
		out = append(out, pendingDeadline{"向实名举报人反馈结果", c.FeedbackDue, "feedback"})
	}
	return out
}

// deadlineOf words a due date with the working days left on the official calendar.
func (s *Server) deadlineOf(d pendingDeadline, now time.Time) web.Deadline {
	out := web.Deadline{Label: d.label, Date: pageDate(d.date)}
	due, err := time.ParseInLocation(time.DateOnly, d.date, qingfeng.Shanghai)
	if err != nil {
		return out
	}
	today := now.In(qingfeng.Shanghai).Format(time.DateOnly)
	switch left := s.d.Triage.Calendar.WorkingDaysBetween(now, due); {
	case today > d.date:
		out.Overdue = true
		out.Left = fmt.Sprintf("已逾期 %d 个工作日", -left)
		if left >= 0 {
			out.Left = "已逾期"
		}
	case today == d.date:
		out.Soon, out.Left = true, "今天到期"
	default:
		out.Soon = left <= dueSoonDays
		out.Left = fmt.Sprintf("还剩 %d 个工作日", left)
	}
	return out
}

// normalizeCaseNumber folds what people paste into a search box: full-width
// characters, other dashes, invisible characters and spaces, lower case.
func normalizeCaseNumber(q string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '！' && r <= '～':
			r -= 0xFEE0
		case r == '—' || r == '–' || r == '‐' || r == '‑' || r == '−' || r == '－':
			return '-'
		case unicode.IsSpace(r) || unicode.Is(unicode.Cf, r):
			return -1
		}
		return unicode.ToUpper(r)
	}, q)
}

// consoleQueue is GET /console/cases: the unit's cases with the API's filters
// (status, category, division, assignee, due_before, sort, new_activity, after), status
// tabs with counts, and search by case number.
func (s *Server) consoleQueue(c fiber.Ctx) error {
	p := principalOf(c)
	pg := web.QueuePage{ConsolePage: s.consolePage(c, "本单位案件", "/console/cases"),
		Status: c.Query("status"), Category: c.Query("category"), Division: c.Query("division"), Assignee: c.Query("assignee"),
		DueBefore: c.Query("due_before"), Sort: c.Query("sort"), Query: c.Query("q")}
	// The search box: a whole case number opens the case; anything else searches the
	// queue by the reported organization, with the other filters.
	orgQ := strings.TrimSpace(pg.Query)
	if orgQ != "" {
		if n := normalizeCaseNumber(orgQ); validCaseNumber(n) {
			// The case page checks the scope: another unit's number is "not found" there.
			return c.Redirect().Status(fiber.StatusSeeOther).To("/console/cases/" + n)
		}
	}
	if m := c.Query("moved"); validCaseNumber(m) {
		pg.Flash = "案件 " + m + " 已转出本单位，不再显示在本单位的列表中。"
	}
	counts, err := s.d.Counts(c.Context(), p.user.UnitID)
	if err != nil {
		return err
	}
	if pg.NewActivity, err = s.d.CountNewActivity(c.Context(), p.user.UnitID); err != nil {
		return err
	}
	pg.NewHref = "/console/cases?new_activity=true"
	var total int64
	for _, n := range counts {
		total += n
	}
	// While searching, the tabs keep the search; the page shows their counts only when
	// not searching, since they count the whole unit, not the matches.
	withQ := ""
	if orgQ != "" {
		withQ = "q=" + url.QueryEscape(orgQ)
	}
	all := "/console/cases"
	if withQ != "" {
		all += "?" + withQ
	}
	pg.Tabs = append(pg.Tabs, web.Tab{Label: "全部", Href: all, Count: total, Current: pg.Status == "" && c.Query("new_activity") == ""})
	for _, st := range queueStatuses {
		href := "/console/cases?status=" + string(st)
		if withQ != "" {
			href += "&" + withQ
		}
		pg.Tabs = append(pg.Tabs, web.Tab{Label: statusLabel(st), Href: href, Count: counts[st], Current: pg.Status == string(st)})
	}
	pg.Statuses = []web.Option{{Value: "", Label: "全部状态"}}
	for _, st := range queueStatuses {
		pg.Statuses = append(pg.Statuses, web.Option{Value: string(st), Label: statusLabel(st), Selected: pg.Status == string(st)})
	}
	pg.Categories = []web.Option{{Value: "", Label: "全部类别"}}
	for _, k := range intake.Categories {
		pg.Categories = append(pg.Categories, web.Option{Value: string(k.Code), Label: k.Label, Selected: pg.Category == string(k.Code)})
	}
	pg.Divisions = s.queueDivisions(p.user.UnitID, pg.Division)
	pg.Assignees = []web.Option{{Value: "", Label: "全部"}, {Value: "me", Label: "我承办的", Selected: pg.Assignee == "me"}}
	colleagues, err := s.d.Accounts.Users.UsersOfUnit(c.Context(), p.user.UnitID)
	if err != nil {
		return err
	}
	for _, u := range colleagues {
		if u.ID != p.user.ID && u.Role == accounts.RoleStaff {
			label := u.DisplayName + "（" + u.Username + "）"
			if u.Disabled {
				label += "（已停用）" // their cases still need a new assignee
			}
			pg.Assignees = append(pg.Assignees, web.Option{Value: u.ID, Label: label, Selected: pg.Assignee == u.ID})
		}
	}
	pg.Sorts = []web.Option{{Value: "received", Label: "按收到时间（新的在前）", Selected: pg.Sort != "due"},
		{Value: "due", Label: "按截止日期（近的在前，无待办期限的不列出）", Selected: pg.Sort == "due"}}

	f, none, err := s.caseFilter(c)
	if err != nil {
		var f web.Form
		consoleFormErrors(&f, err)
		pg.Notice = "筛选条件有误：" + f.Notice
		for _, fe := range f.Summary {
			pg.Notice += fe.Label + "：" + fe.Message + "；"
		}
		return s.render(c, statusForForm(err), "console/queue", pg)
	}
	if orgQ != "" {
		oq, err := orgQuery("q", orgQ)
		if err != nil {
			pg.Notice = "请输入完整的案件编号（如 QF-330782-2026-000123），或被举报组织的统一社会信用代码（18位）或名称的至少两个字。"
			return s.render(c, statusForForm(err), "console/queue", pg)
		}
		f.Organization, pg.OrgSearch = oq.Key, orgQ
	}
	if none {
		return s.render(c, fiber.StatusOK, "console/queue", pg)
	}
	list, err := s.d.Intake.Cases.ListCases(c.Context(), f)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, cs := range list {
		if !canAccess(p, cs, accessRead) {
			continue // defence in depth: the store filtered already
		}
		row := web.QueueRow{Number: cs.Number, Href: "/console/cases/" + cs.Number, Status: statusLabel(cs.Status),
			Category: categoryOf(cs.Category).Label, Division: divisionName(cs.Location.Division), Received: pageTime(cs.ReceivedAt),
			Assignee: s.accountName(c, cs.Assignee), New: cs.NewActivity, Unhandled: cs.Status == intake.StatusRegistered && len(cs.Transitions) == 0 && cs.Transfer == nil, RealName: cs.RealName, Evidence: len(cs.Evidence)}
		for _, step := range cs.Escalated {
			row.OverdueSteps = append(row.OverdueSteps, stepLabels[step])
		}
		row.Overdue = len(cs.Escalated) > 0
		if o := cs.Subject.Organization; o != nil && pg.OrgSearch != "" {
			row.Organization = strings.TrimSpace(o.Name + " " + o.CreditCode)
		}
		if ds := pendingDeadlines(cs); len(ds) > 0 {
			d := s.deadlineOf(ds[0], now)
			row.Due = d.Date + "（" + d.Left + "）"
			row.Overdue = row.Overdue || d.Overdue
			row.DueSoon = d.Soon
		}
		pg.Rows = append(pg.Rows, row)
	}
	if len(list) == f.Limit {
		q := url.Values{}
		for _, k := range []string{"status", "category", "division", "assignee", "due_before", "sort", "new_activity", "q", "limit"} {
			if v := c.Query(k); v != "" {
				q.Set(k, v)
			}
		}
		q.Set("after", list[len(list)-1].ID)
		pg.NextHref = "/console/cases?" + q.Encode()
	}
	return s.render(c, fiber.StatusOK, "console/queue", pg)
}

// queueDivisions are the queue's division choices: every division, the divisions
// directly under the unit's own (a county unit's townships, a city unit's counties),
// and the chosen one if it is another (a link can name any).
func (s *Server) queueDivisions(unitID, chosen string) []web.Option {
	out := []web.Option{{Value: "", Label: "全部"}}
	below := map[routing.Level]routing.Level{routing.LevelProvince: routing.LevelCity, routing.LevelCity: routing.LevelCounty, routing.LevelCounty: routing.LevelTownship}
	found := chosen == ""
	if u, ok := s.d.Routing.Engine.Units.Get(unitID); ok {
		if level, ok := below[u.Level]; ok {
			for _, d := range divisionChildren(u.Division, level) {
				out = append(out, web.Option{Value: d.Code, Label: d.Name, Selected: d.Code == chosen})
				found = found || d.Code == chosen
			}
		}
	}
	if !found {
		out = append(out, web.Option{Value: chosen, Label: divisionName(chosen), Selected: true})
	}
	return out
}

// transferSuggestions are the active units of the case's city (first) and of the
// province, other than the case's own, by level and code: what staff usually transfer
// to. Any other unit can still be typed by name or code.
func (s *Server) transferSuggestions(cs *intake.Case) []web.Option {
	city := cs.Location.Division
	if len(city) > 4 {
		city = city[:4]
	}
	var near, province []web.Option
	for _, u := range s.d.Routing.Engine.Units.All() {
		if !u.Active || u.ID == cs.UnitID || len(u.Division) < 4 {
			continue
		}
		o := web.Option{Value: u.Name, Label: u.ID}
		switch {
		case u.Division[:4] == city:
			near = append(near, o)
		case u.Level == routing.LevelProvince:
			province = append(province, o)
		}
	}
	return append(near, province...)
}

// transferTarget reads the transfer form's unit: a unit code (any case, invisible
// characters and spaces folded), else a name or alias the registry surely knows (as
// the routing reads names: traditional script, full-width, 民政厅/民政局 …; only a sure
// match, as for recusal); what it cannot tell is passed on as typed, for the transfer
// service's "no such unit".
func (s *Server) transferTarget(cs *intake.Case, typed string) string {
	in := qingfeng.TrimText(typed)
	units := s.d.Routing.Engine.Units
	if id := strings.ToLower(normalizeCaseNumber(in)); id != "" {
		if _, ok := units.Get(id); ok {
			return id
		}
	}
	if m := units.Resolve(in, stats.County(cs.Location.Division)); m.Sure {
		return m.Unit.ID
	}
	return in
}

var stepLabels = map[string]string{"acceptance": "受理告知逾期", "feedback": "结果反馈逾期", "transfer": "转办接收逾期"}

// accountName names an account for colleagues: display name, else username; the id
// if it cannot be read.
func (s *Server) accountName(c fiber.Ctx, id string) string {
	if id == "" {
		return ""
	}
	u, err := s.d.Accounts.Users.UserByID(c.Context(), id)
	if err != nil {
		return id
	}
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Username
}

func divisionName(code string) string {
	if d, ok := routing.LookupDivision(code); ok {
		return d.FullName
	}
	return code
}

var actionLabels = map[string]string{"accept": "受理", "not_accept": "不予受理", "link_duplicate": "关联重复举报", "dispose": "处置",
	"conclude": "办结", "give_feedback": "反馈实名举报人", "close": "结案", "reopen": "重新启动", "assign": "指派承办人",
	"transfer": "转办", "transfer_accept": "接收转办", "transfer_return": "退回转办", "reroute": "重新分办"}

var excludedLabels = map[string]string{"recusal": "回避（被举报单位或其负责人所在单位不得办理）",
	"possible_recusal": "可能须回避（所写单位名称与该单位相近，无法确认不是被举报单位）", "inactive": "单位已停用",
	"out_of_jurisdiction": "不在管辖范围内", "lower_priority": "规则优先级较低", "unresolved": "无法确定具体单位"}

var fallbackLabels = map[string]string{"no_rule": "没有适用的分办规则，进入兜底受理队列", "outside_zhejiang": "发生地不在浙江省，进入兜底受理队列",
	"unresolved": "无法确定承办单位，进入兜底受理队列"}

// routerLabel says in words who decided where a case is.
func routerLabel(r string) string {
	switch r {
	case "transfer":
		return "转办"
	case "transfer_return":
		return "转办退回"
	case "transfer_common_parent":
		return "转办退回（原单位已停用，交共同上级）"
	}
	return "分办规则（" + r + "）"
}

// consoleCaseView builds the case page for the case already read.
func (s *Server) consoleCaseView(c fiber.Ctx, cs *intake.Case, msgs []*intake.Message) (web.CasePage, error) {
	p := principalOf(c)
	pg := web.CasePage{ConsolePage: s.consolePage(c, "案件 "+cs.Number, "/console/cases"), Number: cs.Number,
		Status: statusLabel(cs.Status), Category: categoryOf(cs.Category).Label, Division: divisionName(cs.Location.Division),
		Unit: cs.Decision.UnitName, Source: sourceLabel(cs.Source), Received: pageTime(cs.ReceivedAt), Occurred: cs.OccurredOn,
		Description: cs.Description, RealName: cs.RealName, Assignee: s.accountName(c, cs.Assignee), AssignedToMe: cs.Assignee == p.user.ID,
		ActionURL: "/console/cases/" + cs.Number, Can: map[string]bool{}}
	pg.Form.CSRF, pg.Form.Key = pg.ConsolePage.SessionCSRF, newFormKey()
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	if cs.Location.Address != "" {
		pg.Division += " " + cs.Location.Address
	}
	switch {
	case cs.Identity == nil:
		pg.Identity = "匿名举报"
	case cs.Identity.SealedOnDevice:
		pg.Identity = fmt.Sprintf("实名举报：身份已在举报人设备上加密封存（%d 位保密员可开启），须经保密员审批方可披露", len(cs.Identity.Recipients))
	default:
		pg.Identity = fmt.Sprintf("实名举报：身份已加密封存（%d 位保密员可开启），须经保密员审批方可披露", len(cs.Identity.Recipients))
	}
	pg.Subject = subjectKVs(cs.Subject)
	for _, w := range cs.Warnings {
		pg.Warnings = append(pg.Warnings, w.Message)
	}

	pg.Routing = routingViewOf(cs.Decision)

	now := time.Now()
	for _, pd := range pendingDeadlines(cs) {
		pg.Deadlines = append(pg.Deadlines, s.deadlineOf(pd, now))
	}
	for _, e := range cs.Escalated {
		pg.Deadlines = append(pg.Deadlines, web.Deadline{Label: stepLabels[e], Left: "已逾期并已上报上级", Overdue: true})
	}

	for _, ev := range cs.Evidence {
		pg.Evidence = append(pg.Evidence, evidenceItem(cs.Number, ev))
	}
	pg.Timeline = s.timeline(c, cs, msgs)
	if o := cs.Outcome; o != nil {
		pg.Outcome = append(pg.Outcome, web.KV{Label: "核查结论", Value: triage.Results[o.Result]})
		if o.NameCleared {
			pg.Outcome = append(pg.Outcome, web.KV{Label: "澄清正名", Value: "已为被举报人澄清正名"})
		}
		switch o.FalseAccusation {
		case "deliberate":
			pg.Outcome = append(pg.Outcome, web.KV{Label: "失实性质", Value: "诬告陷害"})
		case "mistake":
			pg.Outcome = append(pg.Outcome, web.KV{Label: "失实性质", Value: "错告"})
		}
	}
	if cs.Disposition != "" {
		pg.Outcome = append([]web.KV{{Label: "处置方式", Value: triage.Dispositions[cs.Disposition]}}, pg.Outcome...)
	}

	if t := cs.Transfer; t != nil {
		from, _ := s.d.UnitName(t.From)
		pg.Transfer = []web.KV{{Label: "转出单位", Value: from}, {Label: "转办理由", Value: t.Reason}, {Label: "转办时间", Value: pageTime(t.At)},
			{Label: "须在此日期前接收或退回", Value: pageDate(t.Due)}}
		pg.Can["transfer_answer"] = true
	} else {
		for _, a := range triage.Allowed(cs) {
			pg.Can[string(a)] = true
		}
		pg.Can["transfer"] = slices.Contains([]intake.Status{intake.StatusRegistered, intake.StatusAccepted}, cs.Status)
	}
	pg.Can["claim"] = cs.Assignee != p.user.ID
	pg.Can["unassign"] = cs.Assignee != ""
	if pg.Can["transfer"] {
		pg.TransferUnits = s.transferSuggestions(cs)
	}
	colleagues, err := s.d.Accounts.Users.UsersOfUnit(c.Context(), cs.UnitID)
	if err != nil {
		return pg, err
	}
	pg.Colleagues = []web.Option{{Value: "", Label: "（选择同事）"}}
	for _, u := range colleagues {
		if assignable(u, cs) && u.ID != cs.Assignee {
			pg.Colleagues = append(pg.Colleagues, web.Option{Value: u.Username, Label: u.DisplayName + "（" + u.Username + "）"})
		}
	}
	pg.Can["disclosure"] = cs.Identity != nil
	pg.Dispositions = optionsOf(triage.Dispositions, []string{"talk_inquiry", "preliminary_verification", "held", "closed_no_action", "investigation"})
	pg.NotAcceptedReasons = optionsOf(triage.NotAcceptedReasons, []string{"legal_channel", "other_agency", "no_substance", "outside_remit"})
	pg.Results = optionsOf(triage.Results, []string{"substantiated", "partly", "unsubstantiated"})

	if cs.Identity != nil {
		list, err := s.d.Disclosures.ForCase(c.Context(), cs.ID)
		if err != nil {
			return pg, err
		}
		for _, dl := range list {
			pg.Disclosures = append(pg.Disclosures, web.KV{Label: pageTime(dl.RequestedAt) + " " + s.accountName(c, dl.Requester),
				Value: disclosureStatusLabels[dl.Status] + "：" + dl.Reason})
		}
	}
	return pg, nil
}

var disclosureStatusLabels = map[string]string{"pending": "待保密员审批", "approved": "已批准，待保密员重新加密", "denied": "已驳回",
	"completed": "已披露给申请人", "expired": "已过期", "cancelled": "已取消"}

func optionsOf(labels map[string]string, order []string) []web.Option {
	out := make([]web.Option, 0, len(order))
	for _, k := range order {
		out = append(out, web.Option{Value: k, Label: labels[k]})
	}
	return out
}

func sourceLabel(s string) string {
	switch s {
	case "liaison":
		return "联络员代为提交"
	case "", "public", "web", "app":
		return "群众提交"
	}
	return s
}

func subjectKVs(sj intake.Subject) []web.KV {
	var out []web.KV
	if o := sj.Organization; o != nil {
		out = append(out, web.KV{Label: "被举报组织", Value: o.Name})
		if o.CreditCode != "" {
			out = append(out, web.KV{Label: "统一社会信用代码", Value: o.CreditCode})
		}
	}
	if p := sj.Person; p != nil {
		v := p.Name
		if p.Position != "" {
			v += "（" + p.Position + "）"
		}
		out = append(out, web.KV{Label: "被举报人", Value: v})
		if p.Employer != "" {
			out = append(out, web.KV{Label: "所在单位", Value: p.Employer})
		}
	}
	return out
}

func evidenceItem(number string, ev intake.Evidence) web.EvidenceItem {
	kind := "file"
	switch {
	case strings.HasPrefix(ev.ContentType, "image/") && ev.ContentType != "image/heic" && ev.ContentType != "image/heif":
		kind = "image"
	case strings.HasPrefix(ev.ContentType, "video/"):
		kind = "video"
	case ev.ContentType == "application/pdf":
		kind = "pdf"
	}
	by, _, _ := strings.Cut(ev.UploadedBy, ":")
	base := "/console/cases/" + number + "/evidence/" + ev.ID
	return web.EvidenceItem{ID: ev.ID, Src: base, ViewHref: base + "/view", Kind: kind,
		Label: map[string]string{"image": "图片", "video": "视频", "pdf": "PDF 文件", "file": "文件"}[kind],
		Size:  sizeText(ev.Size), UploadedBy: map[string]string{"reporter": "举报人", "staff": "工作人员", "liaison": "联络员"}[by],
		UploadedAt: pageTime(ev.UploadedAt)}
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KB"
	}
	return strconv.FormatInt(n, 10) + " 字节"
}

// timeline merges the case's steps and messages, oldest first, in Asia/Shanghai time.
func (s *Server) timeline(c fiber.Ctx, cs *intake.Case, msgs []*intake.Message) []web.TimelineEntry {
	type ev struct {
		at time.Time
		e  web.TimelineEntry
	}
	var all []ev
	all = append(all, ev{cs.ReceivedAt, web.TimelineEntry{Who: "举报人", What: "提交举报，案件登记", Kind: "step"}})
	for _, t := range cs.Transitions {
		what := actionLabels[t.Action]
		if what == "" {
			what = t.Action
		}
		if t.From != t.To {
			what += "：" + statusLabel(t.From) + " → " + statusLabel(t.To)
		}
		if to := t.Detail["to"]; to != "" && strings.HasPrefix(t.Action, "transfer") {
			from, _ := s.d.UnitName(t.Detail["from"])
			toName, _ := s.d.UnitName(to)
			if t.Action == "transfer_return" {
				what += "（" + toName + " 退回 " + from + "）"
			} else {
				what += "（" + from + " → " + toName + "）"
			}
		}
		all = append(all, ev{t.At, web.TimelineEntry{Who: s.accountName(c, t.By), What: what, Body: t.Reason, Kind: "step"}})
	}
	for _, m := range msgs {
		e := web.TimelineEntry{Body: m.Body, Kind: m.Kind}
		switch {
		case m.From == "reporter":
			e.Who, e.What, e.Kind = "举报人", "留言", "reporter"
		case m.Kind == "internal":
			e.Who, e.What = s.accountName(c, m.AuthorID), "内部备注（举报人看不到）"
		case m.Kind == "public_note":
			e.Who, e.What = s.accountName(c, m.AuthorID), "进展说明（举报人可见）"
		default:
			e.Who, e.What = s.accountName(c, m.AuthorID), "给举报人的留言"
		}
		all = append(all, ev{m.CreatedAt, e})
	}
	for _, e := range cs.Evidence {
		by, _, _ := strings.Cut(e.UploadedBy, ":")
		if by == "reporter" && e.UploadedAt.Sub(cs.ReceivedAt) > time.Minute {
			all = append(all, ev{e.UploadedAt, web.TimelineEntry{Who: "举报人", What: "补充证据材料", Kind: "reporter"}})
		}
	}
	slices.SortStableFunc(all, func(a, b ev) int { return a.at.Compare(b.at) })
	out := make([]web.TimelineEntry, len(all))
	for i, e := range all {
		e.e.At = pageTime(e.at)
		out[i] = e.e
	}
	return out
}

// consoleCase is GET /console/cases/{number}: the read the API records, and marks
// the reporter's new activity seen.
func (s *Server) consoleCase(c fiber.Ctx) error {
	cs, msgs, err := s.readCase(c)
	if err != nil {
		return err
	}
	pg, err := s.consoleCaseView(c, cs, msgs)
	if err != nil {
		return err
	}
	if done := c.Query("done"); done != "" {
		pg.Flash = doneLabels[done]
	}
	return s.render(c, fiber.StatusOK, "console/case", pg)
}

var doneLabels = map[string]string{"transition": "已完成操作。", "claim": "已由您承办。", "assign": "已指派。", "unassign": "已取消指派。",
	"message": "留言已发送给举报人。", "internal": "内部备注已保存。", "public_note": "进展说明已发布，举报人可见。", "transfer": "已转办，等待接收单位接收或退回。",
	"transfer_accept": "已接收转办。", "transfer_return": "已退回转出单位。", "disclosure": "身份披露申请已提交，等待保密员审批。"}

// consoleCaseAct is POST /console/cases/{number}: one action, named by the form's
// op field, through the same service call and audit entry as the API's route. On
// success the browser goes back to the case; on error the page is shown again with
// the messages next to the fields and nothing changed.
func (s *Server) consoleCaseAct(c fiber.Ctx) error {
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	form, err := s.consoleForm(c)
	if err != nil {
		return s.consoleCaseFail(c, cs, nil, err)
	}
	op := form["op"]
	left, err := s.consoleApply(c, cs, op, form)
	if err != nil {
		return s.consoleCaseFail(c, cs, form, err)
	}
	if left {
		// The case went to another unit: its page is no longer this account's to see.
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/cases?moved=" + url.QueryEscape(cs.Number))
	}
	done := op
	if op == "message" && form["kind"] != "" {
		done = form["kind"]
	}
	return c.Redirect().Status(fiber.StatusSeeOther).To("/console/cases/" + cs.Number + "?done=" + url.QueryEscape(done))
}

// consoleApply does op; left says the case went to another unit.
func (s *Server) consoleApply(c fiber.Ctx, cs *intake.Case, op string, form map[string]string) (left bool, err error) {
	p := principalOf(c)
	switch op {
	case "transition":
		req := triage.Request{Action: triage.Action(form["action"]), Reason: form["reason"], NotAcceptedReason: form["not_accepted_reason"],
			Disposition: form["disposition"], DuplicateOf: normalizeCaseNumber(form["duplicate_of"])}
		if req.Action == triage.ActConclude {
			req.Outcome = &intake.Outcome{Result: form["result"], NameCleared: form["name_cleared"] == "true", FalseAccusation: form["false_accusation"]}
		}
		updated, err := s.d.Triage.Transition(c.Context(), cs, p.user.ID, req)
		if err != nil {
			return false, err
		}
		s.recordChange(c, "case.transition", cs.Number, map[string]string{"step": string(req.Action), "from": string(cs.Status), "to": string(updated.Status)})
	case "claim", "unassign", "assign":
		to := ""
		switch op {
		case "claim":
			to = p.user.ID
		case "assign":
			name := accounts.NormalizeUsername(strings.TrimSpace(form["assignee"]))
			u, err := s.d.Accounts.Users.UserByUsername(c.Context(), name)
			if name == "" || len(name) > 64 || err != nil || !assignable(u, cs) {
				return false, fieldInvalid("assignee", "not_in_unit", "只能指派给本单位在岗的工作人员", "only active staff of the case's unit")
			}
			to = u.ID
		}
		if _, err := s.d.Triage.Assign(c.Context(), cs, p.user.ID, to); err != nil {
			return false, err
		}
		s.recordChange(c, "case.assign", cs.Number, map[string]string{"assignee": to})
	case "message":
		kind := form["kind"]
		if kind == "" {
			kind = "message"
		}
		// The form's key: a double tap stores (and sends the reporter) one message.
		if _, _, err := s.d.Intake.PostNote(c.Context(), cs, "staff", p.user.ID, kind, form["body"], form["_key"]); err != nil {
			return false, err
		}
	case "transfer", "transfer_accept", "transfer_return":
		var updated *intake.Case
		switch op {
		case "transfer":
			updated, err = s.d.Transfers.Transfer(c.Context(), cs, p.user.ID, s.transferTarget(cs, form["to_unit"]), form["reason"])
		case "transfer_accept":
			updated, err = s.d.Transfers.AcceptTransfer(c.Context(), cs, p.user.ID, form["reason"])
		default:
			updated, err = s.d.Transfers.ReturnTransfer(c.Context(), cs, p.user.ID, form["reason"])
		}
		if err != nil {
			return false, err
		}
		s.recordChange(c, "case.transfer."+strings.TrimPrefix(op, "transfer_"), cs.Number, map[string]string{"from": cs.UnitID, "to": updated.UnitID})
		left = updated.UnitID != p.user.UnitID
	case "disclosure":
		d, err := s.d.Disclosures.Request(c.Context(), cs, p.user, form["reason"])
		if err != nil {
			return false, err
		}
		s.recordChange(c, "identity.disclosure.request", cs.Number, map[string]string{"disclosure": d.ID})
	default:
		return false, fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	return left, nil
}

// consoleCaseFail shows the case again with the error at the form it came from.
func (s *Server) consoleCaseFail(c fiber.Ctx, cs *intake.Case, form map[string]string, err error) error {
	if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" {
		return err
	}
	fresh, ferr := s.d.Intake.Cases.CaseByID(c.Context(), cs.ID)
	if ferr != nil {
		return ferr
	}
	msgs, ferr := s.d.Intake.Cases.Messages(c.Context(), cs.ID)
	if ferr != nil {
		return ferr
	}
	pg, ferr := s.consoleCaseView(c, fresh, msgs)
	if ferr != nil {
		return ferr
	}
	consoleFormErrors(&pg.Form, err)
	if form != nil {
		pg.Values = form
		pg.Values["_op"] = form["op"] + ":" + form["action"]
	}
	return s.render(c, statusForForm(err), "console/case", pg)
}

// consoleEvidenceFile is GET /console/cases/{number}/evidence/{id}: the cleaned file
// inline (for the viewer and thumbnails), through the API's audited download: every
// fetch is recorded.
func (s *Server) consoleEvidenceFile(c fiber.Ctx) error {
	if err := s.downloadEvidence(c); err != nil {
		return err
	}
	h := &c.Response().Header
	h.Set(fiber.HeaderContentDisposition, strings.Replace(string(h.Peek(fiber.HeaderContentDisposition)), "attachment", "inline", 1))
	// The file may be shown in the viewer page (a PDF in a frame), never run anything.
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors 'self'; sandbox")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	return nil
}

// consoleEvidencePage is the viewer of one file: image, video or PDF inline.
func (s *Server) consoleEvidencePage(c fiber.Ctx) error {
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	for _, ev := range cs.Evidence {
		if ev.ID == c.Params("evidence") {
			pg := web.EvidencePage{ConsolePage: s.consolePage(c, "证据材料", "/console/cases"), Number: cs.Number,
				CaseHref: "/console/cases/" + cs.Number, Item: evidenceItem(cs.Number, ev)}
			c.Set("Content-Security-Policy", pageCSP+"; media-src 'self'; frame-src 'self'; object-src 'none'")
			return s.render(c, fiber.StatusOK, "console/evidence", pg)
		}
	}
	return qingfeng.Errorf(qingfeng.ENOTFOUND, "证据不存在", "no such evidence")
}

var notificationKinds = map[string]string{"acceptance": "受理告知逾期（已上报）", "feedback": "结果反馈逾期（已上报）", "transfer": "转办接收逾期（已上报）",
	triage.NoticeTransferIn: "转来本单位，待接收或退回", triage.NoticeTransferReturned: "被退回本单位"}

// consoleNotifications is GET /console/notifications: escalations of the units below
// the caller's, cases transferred to the unit and cases returned to it. A hand-over's
// row links to the case (the unit owns it then, unless it moved on since: the case page
// says "not found" then, as for any case of another unit).
func (s *Server) consoleNotifications(c fiber.Ctx) error {
	p := principalOf(c)
	pg := web.NotificationsPage{ConsolePage: s.consolePage(c, "提醒", "/console/notifications")}
	list, err := s.d.Notifications(c.Context(), p.user.UnitID, 200)
	if err != nil {
		return err
	}
	for _, n := range list {
		unit, _ := s.d.UnitName(n.CaseUnit)
		kind := notificationKinds[n.Kind]
		if kind == "" {
			kind = n.Kind
		}
		row := web.Notification{Kind: kind, Case: n.Case, Unit: unit, Due: pageDate(n.Due), At: pageTime(n.CreatedAt)}
		if n.Kind == triage.NoticeTransferIn || n.Kind == triage.NoticeTransferReturned {
			row.Href = "/console/cases/" + n.Case
		}
		pg.Rows = append(pg.Rows, row)
	}
	return s.render(c, fiber.StatusOK, "console/notifications", pg)
}
