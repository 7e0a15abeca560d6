package triage

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// UnitInfo is what transfers need to know of a unit.
type UnitInfo struct {
	ID, Name, Parent, Division string
	Active                     bool
}

// TransferStore moves a case between units (storage/*'s CaseStore). Hand records
// the notifications given with the hand-over (their ids make a second of each a
// no-op): storage/sqlite in the hand-over's transaction; storage/mongo right after
// the case's update, so that a crash between the two can lose a notification (never
// the hand-over, which the case's queue and deadlines show either way).
type TransferStore interface {
	Hand(ctx context.Context, c *intake.Case, d intake.Decision, pending *intake.PendingTransfer, t intake.Transition, notify ...Notification) error
}

// Kinds of notification a hand-over makes (the escalation job makes the step kinds:
// acceptance, feedback, transfer).
const (
	NoticeTransferIn       = "transfer_in"       // a case transferred to the unit, to accept or return
	NoticeTransferReturned = "transfer_returned" // a case the unit transferred came back to it
)

// handNotice tells the unit a case is handed to (d's) what happened: kind, from the
// unit that had it. Its id is the case and the step, so a retried hand-over makes no
// second one.
func handNotice(c *intake.Case, d intake.Decision, t intake.Transition, kind, due string) Notification {
	return Notification{ID: fmt.Sprintf("%s:%s@%d", c.ID, t.Action, t.At.UnixMilli()), UnitID: d.UnitID, Case: c.Number,
		CaseUnit: c.UnitID, Kind: kind, Due: due, CreatedAt: t.At}
}

// Transfers hands cases between units (转办): the receiving unit accepts or returns
// within the transfer deadline; a case returned twice between the same two units goes
// to their common parent.
type Transfers struct {
	*Service
	Store TransferStore
	// Unit looks a unit up in the registry.
	Unit func(id string) (UnitInfo, bool)
	// AfterHand, when set, is told of every case handed to another unit (to create a
	// re-seal task when the unit's custodians differ). Its error is logged: the
	// hand-over has happened.
	AfterHand func(ctx context.Context, c *intake.Case, to UnitInfo) error
}

func (s *Transfers) afterHand(ctx context.Context, c *intake.Case, to UnitInfo) {
	if s.AfterHand == nil {
		return
	}
	if err := s.AfterHand(ctx, c, to); err != nil && s.Log != nil {
		s.Log.ErrorContext(ctx, "after hand-over", "case", c.Number, "to", to.ID, "err", err)
	}
}

func (s *Transfers) reason(r string) (string, error) {
	r = qingfeng.TrimText(r)
	if r == "" || utf8.RuneCountInString(r) > 2000 {
		return "", fieldInvalid("reason", "required", "请填写理由（不超过2000字）", "a reason of at most 2,000 characters is required")
	}
	return r, nil
}

func (s *Transfers) decision(u UnitInfo, by, why, router string) intake.Decision {
	return intake.Decision{UnitID: u.ID, UnitName: u.Name, Reason: why, Router: router, By: by, Why: why, DecidedAt: s.now()}
}

var transferable = []intake.Status{intake.StatusRegistered, intake.StatusAccepted}

// Transfer hands c from its unit to unit to.
func (s *Transfers) Transfer(ctx context.Context, c *intake.Case, by, to, reason string) (*intake.Case, error) {
	why, err := s.reason(reason)
	if err != nil {
		return nil, err
	}
	if c.Transfer != nil {
		return nil, &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "案件正在转办中，请等待接收单位接收或退回", English: "the case is being transferred already"}
	}
	if !slices.Contains(transferable, c.Status) {
		return nil, &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: fmt.Sprintf("案件当前状态为“%s”，不能转办", StatusLabel(c.Status)),
			English: "only registered or accepted cases can be transferred"}
	}
	u, ok := s.Unit(to)
	if !ok || !u.Active {
		return nil, fieldInvalid("to_unit", "unknown_unit", "接收单位不存在或已停用", "no such active unit")
	}
	if u.ID == c.UnitID {
		return nil, fieldInvalid("to_unit", "same_unit", "不能转办给本单位", "the case is already with this unit")
	}
	now := s.now()
	due, _ := s.Calendar.AddWorkingDays(now, s.days(u.ID, "transfer"))
	pending := &intake.PendingTransfer{From: c.UnitID, To: u.ID, By: by, At: now, Reason: why, Due: due}
	t := intake.Transition{Action: "transfer", From: c.Status, To: c.Status, By: by, At: now, Reason: why,
		Detail: map[string]string{"from": c.UnitID, "to": u.ID}}
	d := s.decision(u, by, why, "transfer")
	if err := s.Store.Hand(ctx, c, d, pending, t, handNotice(c, d, t, NoticeTransferIn, due)); err != nil {
		return nil, err
	}
	s.afterHand(ctx, c, u)
	return s.Cases.CaseByID(ctx, c.ID)
}

func (s *Transfers) days(unit, kind string) int {
	if s.DeadlineDays != nil {
		return s.DeadlineDays(unit, kind)
	}
	return 5
}

// AcceptTransfer is the receiving unit taking the case on.
func (s *Transfers) AcceptTransfer(ctx context.Context, c *intake.Case, by, reason string) (*intake.Case, error) {
	why, err := s.reason(reason)
	if err != nil {
		return nil, err
	}
	if c.Transfer == nil {
		return nil, &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "案件没有待接收的转办", English: "no transfer is pending"}
	}
	t := intake.Transition{Action: "transfer_accept", From: c.Status, To: c.Status, By: by, At: s.now(), Reason: why,
		Detail: map[string]string{"from": c.Transfer.From, "to": c.Transfer.To}}
	// The decision stays the transfer's; only the pending state ends.
	d := c.Decision
	d.DecidedAt = d.DecidedAt.UTC()
	if err := s.Store.Hand(ctx, c, d, nil, t); err != nil {
		return nil, err
	}
	return s.Cases.CaseByID(ctx, c.ID)
}

// ReturnTransfer sends the case back to the unit that transferred it; the second
// return between the same two units sends it to their common parent instead.
func (s *Transfers) ReturnTransfer(ctx context.Context, c *intake.Case, by, reason string) (*intake.Case, error) {
	why, err := s.reason(reason)
	if err != nil {
		return nil, err
	}
	p := c.Transfer
	if p == nil {
		return nil, &qingfeng.Error{Code: qingfeng.ECONFLICT, Message: "案件没有待接收的转办", English: "no transfer is pending"}
	}
	returns := 1
	for _, t := range c.Transitions {
		if t.Action == "transfer_return" && samePair(t.Detail["from"], t.Detail["to"], p.From, p.To) {
			returns++
		}
	}
	back, ok := s.Unit(p.From)
	router := "transfer_return"
	if returns >= 2 || !ok || !back.Active {
		if parent, found := s.commonParent(p.From, p.To); found {
			back, router = parent, "transfer_common_parent"
			why = fmt.Sprintf("%s（两单位间第%d次退回，交共同上级%s）", why, returns, parent.Name)
		}
	}
	t := intake.Transition{Action: "transfer_return", From: c.Status, To: c.Status, By: by, At: s.now(), Reason: why,
		Detail: map[string]string{"from": p.From, "to": p.To, "returned_to": back.ID}}
	d := s.decision(back, by, why, router)
	if err := s.Store.Hand(ctx, c, d, nil, t, handNotice(c, d, t, NoticeTransferReturned, "")); err != nil {
		return nil, err
	}
	s.afterHand(ctx, c, back)
	return s.Cases.CaseByID(ctx, c.ID)
}

func samePair(a, b, x, y string) bool { return a == x && b == y || a == y && b == x }

// commonParent is the nearest unit above both a and b; failing that, the 纪委监委 of
// the nearest division containing both.
func (s *Transfers) commonParent(a, b string) (UnitInfo, bool) {
	above := map[string]bool{}
	ua0, _ := s.Unit(a)
	for id, n := ua0.Parent, 0; id != "" && n < 10; n++ {
		u, ok := s.Unit(id)
		if !ok {
			break
		}
		above[u.ID] = true
		id = u.Parent
	}
	ub, _ := s.Unit(b)
	for id, n := ub.Parent, 0; id != "" && n < 10; n++ {
		if above[id] {
			if u, ok := s.Unit(id); ok && u.Active {
				return u, true
			}
		}
		u, ok := s.Unit(id)
		if !ok {
			break
		}
		id = u.Parent
	}
	ua, _ := s.Unit(a)
	div := commonDivision(ua.Division, ub.Division)
	if u, ok := s.Unit(div + "-jw"); ok && u.Active {
		return u, true
	}
	return UnitInfo{}, false
}

// commonDivision is the nearest province, city or county code containing both.
func commonDivision(a, b string) string {
	switch {
	case len(a) < 6 || len(b) < 6 || a[:2] != b[:2]:
		return "330000"
	case a[:6] == b[:6]:
		return a[:6]
	case a[:4] == b[:4]:
		return a[:4] + "00"
	}
	return a[:2] + "0000"
}
