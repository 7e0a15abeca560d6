package handlers

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/pow"
)

type followUpRequest struct {
	ReceiptCode string `json:"receipt_code"`
}

// followUpSession is POST /v1/followup/session: a receipt code buys a short-lived token
// for that one case. Wrong receipts raise the service-wide proof-of-work difficulty
// (package pow); nobody is locked out.
func (s *Server) followUpSession(c fiber.Ctx) error {
	if err := s.requirePoW(c, pow.Receipt); err != nil {
		return err
	}
	var req followUpRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	cs, err := s.d.Intake.FollowUp(c.Context(), req.ReceiptCode)
	if err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.EUNAUTHORIZED {
			s.d.PoW.Record(pow.Receipt)
		}
		return err
	}
	tok, exp, err := s.followUpToken(cs)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"token": tok, "expires_at": wireTime(exp), "case_number": cs.Number})
}

// reporterCaseView is what a reporter sees of their own case: never staff identities,
// internal notes or the routing decision's internals — only the unit's name.
type reporterCaseView struct {
	CaseNumber    string         `json:"case_number"`
	Status        string         `json:"status"`
	StatusLabel   string         `json:"status_label"`
	Category      categoryRef    `json:"category"`
	Unit          unitRef        `json:"unit"`
	RealName      bool           `json:"real_name"`
	ReceivedAt    string         `json:"received_at"`
	AcceptanceDue string         `json:"acceptance_due,omitempty"`
	Evidence      []evidenceView `json:"evidence"`
	Messages      []messageView  `json:"messages"`
}

type categoryRef struct {
	Code  string `json:"code"`
	Label string `json:"label"`
}

func categoryOf(c intake.Category) categoryRef {
	for _, k := range intake.Categories {
		if k.Code == c {
			return categoryRef{Code: string(c), Label: k.Label}
		}
	}
	return categoryRef{Code: string(c), Label: string(c)}
}

type messageView struct {
	ID        string `json:"id"`
	From      string `json:"from"`
	Kind      string `json:"kind"`
	Body      string `json:"body"`
	CreatedAt string `json:"created_at"`
}

func messageViews(ms []*intake.Message) []messageView {
	out := make([]messageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, messageView{ID: m.ID, From: m.From, Kind: m.Kind, Body: m.Body, CreatedAt: wireTime(m.CreatedAt)})
	}
	return out
}

// followUpCase is GET /v1/followup/case.
func (s *Server) followUpCase(c fiber.Ctx) error {
	rc, err := s.reporterCase(c.Context(), principalOf(c).reporterCase)
	if err != nil {
		return err
	}
	cs, status := rc.c, rc.progress.Status
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(reporterCaseView{
		CaseNumber: cs.Number, Status: string(status), StatusLabel: statusLabel(status), Category: categoryOf(cs.Category),
		Unit: unitRef{Name: cs.Decision.UnitName}, RealName: cs.RealName, ReceivedAt: wireTime(cs.ReceivedAt),
		AcceptanceDue: cs.AcceptanceDue, Evidence: evidenceViews(cs.Evidence), Messages: messageViews(rc.messages),
	})
}

// reporterCase is a reporter's case as they may see it, for the API and the page.
type reporterCase struct {
	c *intake.Case
	// progress is the case whose status and outcome the reporter sees: c, or for a
	// duplicate the earlier case it shares them with.
	progress *intake.Case
	messages []*intake.Message // without the unit's internal notes
}

func (s *Server) reporterCase(ctx context.Context, cs *intake.Case) (reporterCase, error) {
	all, err := s.d.Intake.Cases.Messages(ctx, cs.ID)
	if err != nil {
		return reporterCase{}, err
	}
	// The unit's internal notes never reach the reporter.
	msgs := make([]*intake.Message, 0, len(all))
	for _, m := range all {
		if m.Kind != "internal" {
			msgs = append(msgs, m)
		}
	}
	// A duplicate shares the earlier case's progress and outcome; the reporter learns
	// its status, never its number (another reporter's case).
	progress := cs
	if cs.DuplicateOf != "" {
		if orig, err := s.d.Intake.Cases.CaseByNumber(ctx, cs.DuplicateOf); err == nil {
			progress = orig
		} else if !isNotFound(err) {
			return reporterCase{}, err
		}
	}
	return reporterCase{c: cs, progress: progress, messages: msgs}, nil
}

type messageRequest struct {
	Body string `json:"body"`
}

// staffMessageRequest is a staff member's message, internal note or public status note.
type staffMessageRequest struct {
	Body string `json:"body"`
	Kind string `json:"kind"` // default "message"
}

// followUpMessage is POST /v1/followup/messages: the reporter writes to the unit.
func (s *Server) followUpMessage(c fiber.Ctx) error {
	var req messageRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	m, replayed, err := s.d.Intake.PostMessage(c.Context(), principalOf(c).reporterCase, intake.UploaderReporter, "", req.Body,
		strings.TrimSpace(c.Get("Idempotency-Key")))
	if err != nil {
		return err
	}
	return answerStored(c, replayed).JSON(messageViews([]*intake.Message{m})[0])
}
