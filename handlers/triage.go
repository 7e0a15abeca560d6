package handlers

import (
	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/triage"
)

type transitionView struct {
	Action string            `json:"action"`
	From   string            `json:"from"`
	To     string            `json:"to"`
	By     string            `json:"by"`
	At     string            `json:"at"`
	Reason string            `json:"reason"`
	Detail map[string]string `json:"detail,omitempty"`
}

// workflowView is where a case stands in its workflow, for staff of its unit.
type workflowView struct {
	Allowed           []string         `json:"allowed_actions"`
	Disposition       string           `json:"disposition,omitempty"`
	NotAcceptedReason string           `json:"not_accepted_reason,omitempty"`
	Outcome           *intake.Outcome  `json:"outcome,omitempty"`
	DuplicateOf       string           `json:"duplicate_of,omitempty"`
	Transfer          *transferView    `json:"transfer,omitempty"`
	Transitions       []transitionView `json:"transitions"`
}

type transferView struct {
	From   string `json:"from"`
	To     string `json:"to"`
	By     string `json:"by"`
	At     string `json:"at"`
	Reason string `json:"reason"`
	Due    string `json:"due"`
}

func workflowOf(cs *intake.Case) workflowView {
	v := workflowView{Allowed: []string{}, Disposition: cs.Disposition, NotAcceptedReason: cs.NotAcceptedReason, Outcome: cs.Outcome,
		DuplicateOf: cs.DuplicateOf, Transitions: []transitionView{}}
	if t := cs.Transfer; t != nil {
		v.Transfer = &transferView{From: t.From, To: t.To, By: t.By, At: wireTime(t.At), Reason: t.Reason, Due: t.Due}
	} else {
		for _, a := range triage.Allowed(cs) {
			v.Allowed = append(v.Allowed, string(a))
		}
	}
	for _, t := range cs.Transitions {
		v.Transitions = append(v.Transitions, transitionView{Action: t.Action, From: string(t.From), To: string(t.To), By: t.By,
			At: wireTime(t.At), Reason: t.Reason, Detail: t.Detail})
	}
	return v
}

type transitionRequest struct {
	Action            string          `json:"action"`
	Reason            string          `json:"reason"`
	NotAcceptedReason string          `json:"not_accepted_reason"`
	Disposition       string          `json:"disposition"`
	Outcome           *intake.Outcome `json:"outcome"`
	DuplicateOf       string          `json:"duplicate_of"`
}

// staffOnly refuses liaisons: workflow steps belong to the owning unit's staff.
func staffOnly(c fiber.Ctx) error {
	if p := principalOf(c); p == nil || p.user == nil || p.user.Role != accounts.RoleStaff {
		return qingfeng.ErrForbidden
	}
	return nil
}

// transition is POST /v1/cases/{case}/transitions: one workflow step.
func (s *Server) transition(c fiber.Ctx) error {
	if err := staffOnly(c); err != nil {
		return err
	}
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	var req transitionRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	updated, err := s.d.Triage.Transition(c.Context(), cs, p.user.ID, triage.Request{Action: triage.Action(req.Action), Reason: req.Reason,
		NotAcceptedReason: req.NotAcceptedReason, Disposition: req.Disposition, Outcome: req.Outcome, DuplicateOf: req.DuplicateOf})
	if err != nil {
		return err
	}
	s.recordChange(c, "case.transition", cs.Number, map[string]string{"step": req.Action, "from": string(cs.Status), "to": string(updated.Status)})
	return c.JSON(fiber.Map{"case_number": updated.Number, "status": string(updated.Status), "status_label": statusLabel(updated.Status),
		"workflow": workflowOf(updated)})
}

type assignRequest struct {
	Assignee string `json:"assignee"`
}

// assign is PUT /v1/cases/{case}/assignee: claim (yourself) or assign (a colleague of
// the unit). Unassigning is its own route, DELETE, so that a client bug sending null or
// an empty body cannot silently take a case off someone's desk.
func (s *Server) assign(c fiber.Ctx) error {
	if err := staffOnly(c); err != nil {
		return err
	}
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	var req assignRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	to := req.Assignee
	switch {
	case to == "":
		return fieldInvalid("assignee", "required", "请填写承办人（取消指派请使用 DELETE）", "required (use DELETE to unassign)")
	case len(to) > 64:
		return fieldInvalid("assignee", "invalid_value", "承办人不存在", "no such account")
	case to != p.user.ID:
		u, err := s.d.Accounts.ActiveUser(c.Context(), to)
		if err != nil || !assignable(u, cs) {
			return fieldInvalid("assignee", "not_in_unit", "只能指派给本单位在岗的工作人员", "only active staff of the case's unit")
		}
	}
	return s.setAssignee(c, cs, to)
}

// assignable reports whether account u may be made the assignee of cs: active staff
// of the unit that owns the case. The API and the console both ask it.
func assignable(u *accounts.User, cs *intake.Case) bool {
	return !u.Disabled && u.Role == accounts.RoleStaff && u.UnitID == cs.UnitID
}

// unassign is DELETE /v1/cases/{case}/assignee.
func (s *Server) unassign(c fiber.Ctx) error {
	if err := staffOnly(c); err != nil {
		return err
	}
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	return s.setAssignee(c, cs, "")
}

func (s *Server) setAssignee(c fiber.Ctx, cs *intake.Case, to string) error {
	p := principalOf(c)
	updated, err := s.d.Triage.Assign(c.Context(), cs, p.user.ID, to)
	if err != nil {
		return err
	}
	s.recordChange(c, "case.assign", cs.Number, map[string]string{"assignee": to})
	return c.JSON(fiber.Map{"case_number": updated.Number, "assignee": updated.Assignee})
}

// caseCounts is GET /v1/cases/counts: the unit's cases per status, and how many have
// reporter activity the unit has not read.
func (s *Server) caseCounts(c fiber.Ctx) error {
	if err := staffOnly(c); err != nil {
		return err
	}
	p := principalOf(c)
	counts, err := s.d.Counts(c.Context(), p.user.UnitID)
	if err != nil {
		return err
	}
	out := map[string]int64{}
	for st, n := range counts {
		out[string(st)] = n
	}
	fresh, err := s.d.CountNewActivity(c.Context(), p.user.UnitID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"unit_id": p.user.UnitID, "counts": out, "new_activity": fresh})
}

type notificationView struct {
	ID        string `json:"id"`
	Case      string `json:"case"`
	CaseUnit  string `json:"case_unit"`
	Kind      string `json:"kind"`
	Due       string `json:"due"`
	CreatedAt string `json:"created_at"`
}

// notifications is GET /v1/notifications: overdue steps of the cases of the units
// below the caller's (escalations), newest first.
func (s *Server) notifications(c fiber.Ctx) error {
	p := principalOf(c)
	list, err := s.d.Notifications(c.Context(), p.user.UnitID, 200)
	if err != nil {
		return err
	}
	out := make([]notificationView, 0, len(list))
	for _, n := range list {
		out = append(out, notificationView{ID: n.ID, Case: n.Case, CaseUnit: n.CaseUnit, Kind: n.Kind, Due: n.Due, CreatedAt: wireTime(n.CreatedAt)})
	}
	return c.JSON(fiber.Map{"unit_id": p.user.UnitID, "notifications": out})
}

type transferRequest struct {
	ToUnit string `json:"to_unit"`
	Reason string `json:"reason"`
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

// transfer is POST /v1/cases/{case}/transfer (to_unit, reason), and
// .../transfer/accept and .../transfer/return (reason) for the receiving unit.
func (s *Server) transfer(kind string) fiber.Handler {
	return func(c fiber.Ctx) error {
		if err := staffOnly(c); err != nil {
			return err
		}
		cs, err := s.loadCase(c, accessRead)
		if err != nil {
			return err
		}
		p := principalOf(c)
		var updated *intake.Case
		if kind == "transfer" {
			var req transferRequest
			if err := s.decodeJSON(c, &req); err != nil {
				return err
			}
			updated, err = s.d.Transfers.Transfer(c.Context(), cs, p.user.ID, req.ToUnit, req.Reason)
		} else {
			var req reasonRequest
			if err := s.decodeJSON(c, &req); err != nil {
				return err
			}
			if kind == "accept" {
				updated, err = s.d.Transfers.AcceptTransfer(c.Context(), cs, p.user.ID, req.Reason)
			} else {
				updated, err = s.d.Transfers.ReturnTransfer(c.Context(), cs, p.user.ID, req.Reason)
			}
		}
		if err != nil {
			return err
		}
		s.recordChange(c, "case.transfer."+kind, cs.Number, map[string]string{"from": cs.UnitID, "to": updated.UnitID})
		return c.JSON(fiber.Map{"case_number": updated.Number, "unit": unitRef{ID: updated.UnitID, Name: updated.Decision.UnitName},
			"workflow": workflowOf(updated)})
	}
}
