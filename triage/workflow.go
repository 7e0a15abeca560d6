package triage

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// Action is a step staff take on a case.
type Action string

const (
	ActAccept        Action = "accept"         // 受理
	ActNotAccept     Action = "not_accept"     // 不予受理
	ActLinkDuplicate Action = "link_duplicate" // 重复举报：关联在先案件
	ActDispose       Action = "dispose"        // 处置：谈话函询、初步核实、暂存待查、予以了结、审查调查
	ActConclude      Action = "conclude"       // 办结
	ActGiveFeedback  Action = "give_feedback"  // 反馈实名举报人
	ActClose         Action = "close"          // 结案
	ActReopen        Action = "reopen"         // 重新启动
)

// Dispositions (处置方式).
var Dispositions = map[string]string{
	"talk_inquiry":             "谈话函询",
	"preliminary_verification": "初步核实",
	"held":                     "暂存待查",
	"closed_no_action":         "予以了结",
	"investigation":            "审查调查",
}

// NotAcceptedReasons (不予受理的理由).
var NotAcceptedReasons = map[string]string{
	"legal_channel": "属于诉讼、仲裁、行政复议等法定途径处理的事项",
	"other_agency":  "属于其他机关职责范围，已转交",
	"no_substance":  "没有实质内容",
	"outside_remit": "不属于受理范围",
}

// Results of a concluded case.
var Results = map[string]string{"substantiated": "属实", "partly": "部分属实", "unsubstantiated": "不属实"}

// StatusLabel is the Chinese label of a status.
func StatusLabel(s intake.Status) string {
	switch s {
	case intake.StatusRegistered:
		return "已登记"
	case intake.StatusAccepted:
		return "已受理"
	case intake.StatusNotAccepted:
		return "不予受理"
	case intake.StatusDisposed:
		return "处置中"
	case intake.StatusConcluded:
		return "已办结"
	case intake.StatusFeedbackGiven:
		return "已反馈"
	case intake.StatusClosed:
		return "已结案"
	case intake.StatusDuplicate:
		return "重复举报，留存备查"
	}
	return string(s)
}

// edges is the workflow: from each status, the actions allowed and where they lead.
var edges = map[intake.Status]map[Action]intake.Status{
	intake.StatusRegistered: {ActAccept: intake.StatusAccepted, ActNotAccept: intake.StatusNotAccepted, ActLinkDuplicate: intake.StatusDuplicate},
	intake.StatusAccepted:   {ActDispose: intake.StatusDisposed},
	intake.StatusDisposed:   {ActConclude: intake.StatusConcluded},
	// A real-name reporter is told the result before the case closes; an anonymous
	// report has no one to tell.
	intake.StatusConcluded:     {ActGiveFeedback: intake.StatusFeedbackGiven, ActClose: intake.StatusClosed},
	intake.StatusFeedbackGiven: {ActClose: intake.StatusClosed},
	intake.StatusNotAccepted:   {ActClose: intake.StatusClosed, ActReopen: intake.StatusRegistered},
	intake.StatusClosed:        {ActReopen: intake.StatusAccepted},
	intake.StatusDuplicate:     {ActReopen: intake.StatusRegistered},
}

// Allowed lists the actions possible on c, in a stable order.
func Allowed(c *intake.Case) []Action {
	var out []Action
	for a := range edges[c.Status] {
		if a == ActGiveFeedback && !c.RealName {
			continue
		}
		if a == ActClose && c.Status == intake.StatusConcluded && c.RealName {
			continue // feedback first
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Request is one action on a case, with what that action needs.
type Request struct {
	Action            Action
	Reason            string          // why; required for every action
	NotAcceptedReason string          // not_accept: a key of NotAcceptedReasons
	Disposition       string          // dispose: a key of Dispositions
	Outcome           *intake.Outcome // conclude
	DuplicateOf       string          // link_duplicate: the earlier case's number
}

// Store is what the workflow needs of the case store: single-document conditional
// updates on the case's version.
type Store interface {
	CaseByID(ctx context.Context, id string) (*intake.Case, error)
	CaseByNumber(ctx context.Context, number string) (*intake.Case, error)
	// ApplyTransition stores t and the fields it sets if the case is still at version;
	// ECONFLICT otherwise.
	ApplyTransition(ctx context.Context, caseID string, version int64, t intake.Transition, set TransitionFields) error
	// Assign sets the assignee ("" to unassign) if the case is still at version.
	Assign(ctx context.Context, caseID string, version int64, assignee string, t intake.Transition) error
}

// TransitionFields are the case fields a transition sets besides its status.
type TransitionFields struct {
	Disposition       *string
	NotAcceptedReason *string
	Outcome           *intake.Outcome
	DuplicateOf       *string
	AcceptanceDue     *string // a linked duplicate gets no acceptance notice: ""
	FeedbackDue       *string
	ClearOutcome      bool   // reopening: the earlier outcome stays only in the transitions
	NextDue           string // the deadline the case waits on after the step; "" for none
	// CaseNumber and UnitID name the case in the event the step emits.
	CaseNumber, UnitID string
}

// Service runs the workflow.
type Service struct {
	Cases    Store
	Calendar *Calendar
	Log      *slog.Logger
	Now      func() time.Time
	// FeedbackDays is the working days to tell a real-name reporter the result (15).
	FeedbackDays int
	// DeadlineDays, when set, gives a unit's own working days for a step ("feedback").
	DeadlineDays func(unitID, kind string) int
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func invalidTransition(c *intake.Case, a Action) error {
	allowed := Allowed(c)
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return &qingfeng.Error{Code: qingfeng.ECONFLICT,
		Message: fmt.Sprintf("案件当前状态为“%s”，不能执行该操作", StatusLabel(c.Status)),
		English: fmt.Sprintf("the case is %s; %s is not allowed", c.Status, a), Allowed: names}
}

func fieldInvalid(field, code, zh, en string) error {
	return qingfeng.Invalid(map[string]qingfeng.FieldError{field: {Code: code, Message: zh, English: en}})
}

// Transition applies r to c on behalf of by. An action the case's status does not
// allow is ECONFLICT with the allowed ones; a case changed meanwhile (another staff
// member acted first) is ECONFLICT and nothing changes.
func (s *Service) Transition(ctx context.Context, c *intake.Case, by string, r Request) (*intake.Case, error) {
	reason := qingfeng.TrimText(r.Reason)
	if reason == "" || utf8.RuneCountInString(reason) > 2000 {
		return nil, fieldInvalid("reason", "required", "请填写理由（不超过2000字）", "a reason of at most 2,000 characters is required")
	}
	if _, known := map[Action]bool{ActAccept: true, ActNotAccept: true, ActLinkDuplicate: true, ActDispose: true, ActConclude: true,
		ActGiveFeedback: true, ActClose: true, ActReopen: true}[r.Action]; !known {
		return nil, fieldInvalid("action", "unknown_action", "未知的操作", "unknown action")
	}
	if c.PurgedAt != nil {
		return nil, &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "案件已按保存期限清除，不能再处理", English: "the case was purged at the end of its retention period"}
	}
	if c.Transfer != nil {
		return nil, &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "案件正在转办中，请先接收或退回", English: "accept or return the pending transfer first"}
	}
	if !slices.Contains(Allowed(c), r.Action) {
		return nil, invalidTransition(c, r.Action)
	}
	to := edges[c.Status][r.Action]
	t := intake.Transition{Action: string(r.Action), From: c.Status, To: to, By: by, At: s.now(), Reason: reason}
	var set TransitionFields
	switch r.Action {
	case ActNotAccept:
		if _, ok := NotAcceptedReasons[r.NotAcceptedReason]; !ok {
			return nil, fieldInvalid("not_accepted_reason", "invalid_value", "请选择不予受理的理由", "one of legal_channel, other_agency, no_substance, outside_remit")
		}
		set.NotAcceptedReason = &r.NotAcceptedReason
		t.Detail = map[string]string{"not_accepted_reason": r.NotAcceptedReason}
	case ActDispose:
		if _, ok := Dispositions[r.Disposition]; !ok {
			return nil, fieldInvalid("disposition", "invalid_value", "请选择处置方式", "one of talk_inquiry, preliminary_verification, held, closed_no_action, investigation")
		}
		set.Disposition = &r.Disposition
		t.Detail = map[string]string{"disposition": r.Disposition}
	case ActConclude:
		o := r.Outcome
		if o == nil {
			return nil, fieldInvalid("outcome", "required", "请填写办结结果", "outcome is required")
		}
		if _, ok := Results[o.Result]; !ok {
			return nil, fieldInvalid("outcome.result", "invalid_value", "结果只能是属实、部分属实或不属实", "one of substantiated, partly, unsubstantiated")
		}
		switch o.FalseAccusation {
		case "", "deliberate", "mistake":
		default:
			return nil, fieldInvalid("outcome.false_accusation", "invalid_value", "只能是 deliberate（诬告陷害）或 mistake（错告）", "deliberate or mistake")
		}
		if o.Result != "unsubstantiated" && (o.NameCleared || o.FalseAccusation != "") {
			return nil, fieldInvalid("outcome", "inconsistent", "只有不属实的举报才能澄清正名或认定诬告、错告", "name clearing and false accusation apply to unsubstantiated reports only")
		}
		set.Outcome = o
		t.Detail = map[string]string{"result": o.Result}
		if c.RealName {
			due, _ := s.Calendar.AddWorkingDays(t.At, s.feedbackDays(c.UnitID))
			set.FeedbackDue = &due
		}
	case ActLinkDuplicate:
		number := strings.TrimSpace(r.DuplicateOf)
		if number == "" || number == c.Number {
			return nil, fieldInvalid("duplicate_of", "invalid_value", "请填写在先案件的编号（不能是本案）", "the earlier case's number, not this one")
		}
		orig, err := s.Cases.CaseByNumber(ctx, number)
		if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
			return nil, fieldInvalid("duplicate_of", "not_found", "在先案件不存在", "no such case")
		}
		if err != nil {
			return nil, err
		}
		if orig.Status == intake.StatusDuplicate || orig.ReceivedAt.After(c.ReceivedAt) {
			return nil, fieldInvalid("duplicate_of", "invalid_value", "只能关联到更早的、本身不是重复举报的案件", "link to an earlier case that is not itself a duplicate")
		}
		set.DuplicateOf = &orig.Number
		empty := ""
		set.AcceptanceDue = &empty
		t.Detail = map[string]string{"duplicate_of": orig.Number}
	case ActReopen:
		empty := ""
		set.ClearOutcome = true
		set.DuplicateOf, set.FeedbackDue = &empty, &empty
	}
	switch {
	case to == intake.StatusConcluded && set.FeedbackDue != nil:
		set.NextDue = *set.FeedbackDue
	case to == intake.StatusRegistered && set.AcceptanceDue == nil:
		set.NextDue = c.AcceptanceDue
	}
	set.CaseNumber, set.UnitID = c.Number, c.UnitID
	if err := s.Cases.ApplyTransition(ctx, c.ID, c.Version, t, set); err != nil {
		return nil, err
	}
	if s.Log != nil {
		s.Log.InfoContext(ctx, "case transition", "case", c.Number, "action", string(r.Action), "from", string(t.From), "to", string(t.To), "by", by)
	}
	return s.Cases.CaseByID(ctx, c.ID)
}

func (s *Service) feedbackDays(unitID string) int {
	if s.DeadlineDays != nil {
		return s.DeadlineDays(unitID, "feedback")
	}
	if s.FeedbackDays > 0 {
		return s.FeedbackDays
	}
	return 15
}

// Assign gives c to assignee ("" to unassign) on behalf of by. The caller checks that
// the assignee is staff of the case's unit.
func (s *Service) Assign(ctx context.Context, c *intake.Case, by, assignee string) (*intake.Case, error) {
	if c.Assignee == assignee {
		return c, nil
	}
	action := "assign"
	if assignee == "" {
		action = "unassign"
	}
	t := intake.Transition{Action: action, From: c.Status, To: c.Status, By: by, At: s.now(), Reason: "",
		Detail: map[string]string{"assignee": assignee, "previous": c.Assignee}}
	if err := s.Cases.Assign(ctx, c.ID, c.Version, assignee, t); err != nil {
		return nil, err
	}
	return s.Cases.CaseByID(ctx, c.ID)
}
