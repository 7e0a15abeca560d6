package handlers

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/triage"
)

func isNotFound(err error) bool { return qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND }

type caseSummary struct {
	CaseNumber    string      `json:"case_number"`
	Status        string      `json:"status"`
	StatusLabel   string      `json:"status_label"`
	Category      categoryRef `json:"category"`
	Division      string      `json:"division"`
	Unit          unitRef     `json:"unit"`
	RealName      bool        `json:"real_name"`
	ReceivedAt    string      `json:"received_at"`
	AcceptanceDue string      `json:"acceptance_due,omitempty"`
	FeedbackDue   string      `json:"feedback_due,omitempty"`
	Assignee      string      `json:"assignee,omitempty"`
	Overdue       []string    `json:"overdue,omitempty"`
	EvidenceCount int         `json:"evidence_count"`
	// NewActivity: the reporter wrote or sent evidence since staff of the owning unit
	// last read the case. In a case read it is the state the read found (and cleared).
	NewActivity        bool   `json:"new_activity"`
	ReporterActivityAt string `json:"reporter_activity_at,omitempty"`
}

func summaryOf(cs *intake.Case) caseSummary {
	return caseSummary{CaseNumber: cs.Number, Status: string(cs.Status), StatusLabel: statusLabel(cs.Status),
		Category: categoryOf(cs.Category), Division: cs.Location.Division, Unit: unitRef{ID: cs.UnitID, Name: cs.Decision.UnitName},
		RealName: cs.RealName, ReceivedAt: wireTime(cs.ReceivedAt), AcceptanceDue: cs.AcceptanceDue, FeedbackDue: cs.FeedbackDue,
		Assignee: cs.Assignee, Overdue: cs.Escalated, EvidenceCount: len(cs.Evidence),
		NewActivity: cs.NewActivity, ReporterActivityAt: wireTime(cs.ReporterActivityAt)}
}

// caseFilter reads a case list's query (the API's and the console queue's) and
// narrows it to the caller's scope; none says the division asked for lies outside it.
func (s *Server) caseFilter(c fiber.Ctx) (f intake.CaseFilter, none bool, err error) {
	p := principalOf(c)
	f = intake.CaseFilter{After: c.Query("after"), Limit: 50}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			return f, false, fieldInvalid("limit", "out_of_range", "limit 须为1–200的整数", "limit must be an integer 1–200")
		}
		f.Limit = n
	}
	if len(f.After) > 64 {
		return f, false, fieldInvalid("after", "invalid_cursor", "分页游标无效", "invalid cursor")
	}
	if st := intake.Status(c.Query("status")); st != "" {
		if triage.StatusLabel(st) == string(st) {
			return f, false, fieldInvalid("status", "unknown_status", "未知的案件状态", "unknown status")
		}
		f.Status = st
	}
	if cat := intake.Category(c.Query("category")); cat != "" {
		if !cat.Valid() {
			return f, false, fieldInvalid("category", "unknown_category", "未知的举报类别", "unknown category")
		}
		f.Category = cat
	}
	var division string
	if d := c.Query("division"); d != "" {
		if len(d) > 9 || !s.d.ValidDivision(d) {
			return f, false, fieldInvalid("division", "unknown_division", "不是浙江省的行政区划代码", "not a Zhejiang division code")
		}
		division = routing.DivisionPrefix(d)
	}
	switch c.Query("sort") {
	case "", "received":
	case "due":
		f.SortByDue = true
	default:
		return f, false, fieldInvalid("sort", "invalid_value", "sort 只能是 received 或 due", "received or due")
	}
	if d := c.Query("due_before"); d != "" {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return f, false, fieldInvalid("due_before", "invalid_date", "日期格式应为YYYY-MM-DD", "a YYYY-MM-DD date")
		}
		f.DueBefore = d
	}
	switch c.Query("new_activity") {
	case "", "false":
	case "true":
		f.NewActivity = true
	default:
		return f, false, fieldInvalid("new_activity", "invalid_value", "new_activity 只能是 true 或 false", "true or false")
	}
	switch a := c.Query("assignee"); {
	case a == "me":
		f.Assignee = principalOf(c).user.ID
	case len(a) > 64:
		return f, false, fieldInvalid("assignee", "invalid_value", "承办人参数无效", "invalid assignee")
	default:
		f.Assignee = a
	}
	if q := c.Query("org"); q != "" {
		oq, err := orgQuery("org", q)
		if err != nil {
			return f, false, err
		}
		f.Organization = oq.Key
	}
	switch p.user.Role {
	case accounts.RoleStaff:
		f.UnitID = p.user.UnitID
	case accounts.RoleLiaison:
		f.DivisionPrefix = routing.DivisionPrefix(p.user.Division)
		f.FiledBy = p.user.ID
	}
	if division != "" {
		switch {
		case f.DivisionPrefix == "" || strings.HasPrefix(division, f.DivisionPrefix):
			f.DivisionPrefix = division // narrower than the caller's scope, or no scope
		case !strings.HasPrefix(f.DivisionPrefix, division):
			return f, true, nil // outside the scope: nothing
		}
	}
	return f, false, nil
}

// orgQuery reads a search by the reported organization (GET /v1/cases?org=, the
// console queue's search box) from query parameter field.
func orgQuery(field, q string) (routing.OrgQuery, error) {
	if len(q) > 200 {
		return routing.OrgQuery{}, fieldInvalid(field, "too_long", "被举报组织的名称或代码过长", "the organization's name or code is too long")
	}
	oq, err := routing.ParseOrgQuery(q)
	if err != nil {
		return routing.OrgQuery{}, fieldInvalid(field, "too_short", "请输入被举报组织的统一社会信用代码（18位），或名称的至少两个字",
			"the organization's 18-character unified social credit code, or at least two characters of its name")
	}
	return oq, nil
}

// listCases is GET /v1/cases: staff see their unit's cases, a liaison the cases they
// filed in their division.
func (s *Server) listCases(c fiber.Ctx) error {
	p := principalOf(c)
	f, none, err := s.caseFilter(c)
	if err != nil {
		return err
	}
	if none {
		return c.JSON(fiber.Map{"cases": []caseSummary{}, "next_cursor": ""}) // outside the scope: nothing
	}
	list, err := s.d.Intake.Cases.ListCases(c.Context(), f)
	if err != nil {
		return err
	}
	out := make([]caseSummary, 0, len(list))
	for _, cs := range list {
		if canAccess(p, cs, accessRead) { // defence in depth: the store filtered already
			out = append(out, summaryOf(cs))
		}
	}
	next := ""
	if len(list) == f.Limit {
		next = list[len(list)-1].ID
	}
	return c.JSON(fiber.Map{"cases": out, "next_cursor": next})
}

type staffCaseView struct {
	caseSummary
	Source      string           `json:"source"`
	Subject     intake.Subject   `json:"subject"`
	Description string           `json:"description"`
	Location    intake.Location  `json:"location"`
	OccurredOn  string           `json:"occurred_on,omitempty"`
	Identity    identityView     `json:"identity"`
	Workflow    workflowView     `json:"workflow"`
	Decision    decisionView     `json:"routing"`
	Warnings    []intake.Warning `json:"warnings"`
	Evidence    []evidenceView   `json:"evidence"`
	Messages    []messageView    `json:"messages"`
}

// decisionView is a routing decision for staff of the owning unit: where the case
// went, why, and on what inputs.
type decisionView struct {
	UnitID         string             `json:"unit_id"`
	UnitName       string             `json:"unit_name"`
	Reason         string             `json:"reason"`
	Router         string             `json:"router"`
	Inputs         map[string]string  `json:"inputs,omitempty"`
	Fallback       bool               `json:"fallback,omitempty"`
	FallbackReason string             `json:"fallback_reason,omitempty"`
	RuleID         string             `json:"rule_id,omitempty"`
	RuleVersion    int                `json:"rule_version,omitempty"`
	Candidates     []intake.Candidate `json:"candidates"`
	Informed       []intake.UnitRef   `json:"informed"`
	By             string             `json:"by,omitempty"`
	Why            string             `json:"why,omitempty"`
	DecidedAt      string             `json:"decided_at"`
}

func decisionOf(d intake.Decision) decisionView {
	return decisionView{UnitID: d.UnitID, UnitName: d.UnitName, Reason: d.Reason, Router: d.Router, Inputs: d.Inputs,
		Fallback: d.Fallback, FallbackReason: d.FallbackReason, RuleID: d.RuleID, RuleVersion: d.RuleVersion,
		Candidates: nonNil(d.Candidates), Informed: nonNil(d.Informed), By: d.By, Why: d.Why, DecidedAt: wireTime(d.DecidedAt)}
}

// identityView says only that an identity exists and how it is sealed: the server
// cannot open it, and staff need a custodian's disclosure to learn it.
type identityView struct {
	Sealed         bool `json:"sealed"`
	SealedOnDevice bool `json:"sealed_on_device"`
	Recipients     int  `json:"recipients"`
}

// readCase is a read of the case in the path with its messages (the API's and the
// console's): recorded, and for staff of the owning unit the reporter's new activity
// marked seen.
func (s *Server) readCase(c fiber.Ctx) (*intake.Case, []*intake.Message, error) {
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := s.d.Intake.Cases.Messages(c.Context(), cs.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.record(c, "case.read", cs.Number, nil); err != nil {
		return nil, nil, err
	}
	if p := principalOf(c); p.user != nil && p.user.Role == accounts.RoleStaff {
		// Failing to clear leaves the mark on: the safe side, and no reason to
		// withhold the case from its reader.
		if err := s.d.Intake.MarkActivitySeen(c.Context(), cs, p.user.UnitID); err != nil {
			s.d.Log.ErrorContext(c.Context(), "mark reporter activity seen", "case", cs.Number, "err", err)
		}
	}
	return cs, msgs, nil
}

// getCase is GET /v1/cases/{case}. Every read is recorded. A read by staff of the
// owning unit marks the reporter's new activity seen, as of the case loaded here:
// the case is loaded before its messages, so everything it counts is shown.
func (s *Server) getCase(c fiber.Ctx) error {
	cs, msgs, err := s.readCase(c)
	if err != nil {
		return err
	}
	v := staffCaseView{caseSummary: summaryOf(cs), Source: cs.Source, Subject: cs.Subject, Description: cs.Description,
		Location: cs.Location, OccurredOn: cs.OccurredOn, Workflow: workflowOf(cs), Decision: decisionOf(cs.Decision), Warnings: nonNil(cs.Warnings),
		Evidence: evidenceViews(cs.Evidence), Messages: messageViews(msgs)}
	if cs.Identity != nil {
		v.Identity = identityView{Sealed: true, SealedOnDevice: cs.Identity.SealedOnDevice, Recipients: len(cs.Identity.Recipients)}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(v)
}

// staffMessage is POST /v1/cases/{case}/messages: staff of the owning unit reply.
func (s *Server) staffMessage(c fiber.Ctx) error {
	p := principalOf(c)
	if p.user.Role != accounts.RoleStaff {
		return qingfeng.ErrForbidden
	}
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	var req staffMessageRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Kind == "" {
		req.Kind = "message"
	}
	m, replayed, err := s.d.Intake.PostNote(c.Context(), cs, "staff", p.user.ID, req.Kind, req.Body, strings.TrimSpace(c.Get("Idempotency-Key")))
	if err != nil {
		return err
	}
	return answerStored(c, replayed).JSON(messageViews([]*intake.Message{m})[0])
}

// downloadEvidence is GET /v1/cases/{case}/evidence/{evidence}: the cleaned file, to
// authorised staff only, never through a public URL. Every download is recorded.
func (s *Server) downloadEvidence(c fiber.Ctx) error {
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	id := c.Params("evidence")
	for _, ev := range cs.Evidence {
		if ev.ID != id {
			continue
		}
		if ev.ObjectKey == "" {
			return qingfeng.Errorf(qingfeng.ENOTFOUND, "证据文件已按保存期限删除", "the evidence was deleted at the end of the retention period")
		}
		if err := s.record(c, "evidence.download", cs.Number, map[string]string{"evidence": ev.ID}); err != nil {
			return err
		}
		return s.sendStored(c, ev, "attachment", [2]string{"X-Evidence-SHA256", ev.SHA256Stored})
	}
	return qingfeng.Errorf(qingfeng.ENOTFOUND, "证据不存在", "no such evidence")
}

// sendStored streams a stored file (case evidence, a ledger photo) as its recorded
// type, never sniffed nor cached, named by its id; disposition is attachment or inline,
// and the header pairs of extra are set with the others once the file is found.
func (s *Server) sendStored(c fiber.Ctx, ev intake.Evidence, disposition string, extra ...[2]string) error {
	rc, size, err := s.d.Intake.Blobs.Get(c.Context(), ev.ObjectKey)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ev.ContentType)
	c.Set(fiber.HeaderContentDisposition, disposition+`; filename="`+ev.ID+extensionOf(ev.ContentType)+`"`)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set(fiber.HeaderCacheControl, "no-store")
	for _, h := range extra {
		c.Set(h[0], h[1])
	}
	return c.SendStream(rc, int(size))
}

func extensionOf(ct string) string {
	switch ct {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/heic", "image/heif":
		return ".heic"
	case "video/mp4":
		return ".mp4"
	case "application/pdf":
		return ".pdf"
	}
	return ".bin"
}
