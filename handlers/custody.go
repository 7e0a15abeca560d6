package handlers

import (
	"encoding/base64"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// publicKeys is GET /v1/keys?division=330782: the custodian recipients an identity
// reported in that division is sealed to, so a phone can seal on the device. Public.
func (s *Server) publicKeys(c fiber.Ctx) error {
	div := c.Query("division")
	if div == "" || len(div) > 9 || !s.d.ValidDivision(div) {
		return fieldInvalid("division", "unknown_division", "不是浙江省的行政区划代码", "not a Zhejiang division code")
	}
	rs, err := s.d.Keys.Sealer.RecipientsFor(div)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"division": div, "recipients": rs})
}

type recipientView struct {
	ID           string `json:"id"`
	UserID       string `json:"user_id"`
	Role         string `json:"role"`
	Jurisdiction string `json:"jurisdiction"`
	Recipient    string `json:"recipient"`
	Label        string `json:"label,omitempty"`
	AddedAt      string `json:"added_at"`
	RevokedAt    string `json:"revoked_at,omitempty"`
}

func recipientOf(r custody.Recipient) recipientView {
	v := recipientView{ID: r.ID, UserID: r.UserID, Role: r.Role, Jurisdiction: r.Jurisdiction, Recipient: r.Recipient,
		Label: r.Label, AddedAt: wireTime(r.AddedAt)}
	if r.RevokedAt != nil {
		v.RevokedAt = wireTime(*r.RevokedAt)
	}
	return v
}

type registerRecipientRequest struct {
	UserID    string `json:"user_id"`
	Recipient string `json:"recipient"`
	Label     string `json:"label"`
}

// registerRecipient is POST /v1/admin/recipients (admin).
func (s *Server) registerRecipient(c fiber.Ctx) error {
	var req registerRecipientRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	r, err := s.d.Keys.Register(c.Context(), p.user.ID, req.UserID, req.Recipient, req.Label)
	if err != nil {
		return err
	}
	s.recordChange(c, "identity.recipient.register", "", map[string]string{"recipient_id": r.ID, "holder": r.UserID, "role": r.Role})
	return c.Status(fiber.StatusCreated).JSON(recipientOf(r))
}

// revokeRecipient is POST /v1/admin/recipients/{id}/revoke (admin).
func (s *Server) revokeRecipient(c fiber.Ctx) error {
	p := principalOf(c)
	r, err := s.d.Keys.Revoke(c.Context(), c.Params("id"), p.user.ID)
	if err != nil {
		return err
	}
	s.recordChange(c, "identity.recipient.revoke", "", map[string]string{"recipient_id": r.ID, "holder": r.UserID})
	return c.JSON(recipientOf(r))
}

type demoDivisionView struct {
	Code     string `json:"code"`
	FullName string `json:"full_name"`
}

// demoKeyView tells admins, loudly, where identities are still sealed to the demo
// custodian key, whose private key is on the server.
type demoKeyView struct {
	Warning   string             `json:"warning"`
	Recipient string             `json:"recipient"`
	Divisions []demoDivisionView `json:"divisions"`
}

// listRecipients is GET /v1/admin/recipients (admin): every recipient, the
// jurisdictions one lost key away from losing their identities, and those that still
// depend on the demo custodian key (on the zero-config default only).
func (s *Server) listRecipients(c fiber.Ctx) error {
	all, risks, err := s.d.Keys.List(c.Context())
	if err != nil {
		return err
	}
	out := make([]recipientView, 0, len(all))
	for _, r := range all {
		out = append(out, recipientOf(r))
	}
	body := fiber.Map{"recipients": out, "risks": nonNil(risks)}
	if use, ok := s.d.Keys.DemoUse(); ok {
		v := demoKeyView{Recipient: use.Recipient, Divisions: make([]demoDivisionView, 0, len(use.Divisions)),
			Warning: "以下地区的实名信息仍加密给演示保密员密钥，其私钥就在服务器数据目录中，等于没有加密。请为每个地区登记真实保密员公钥。"}
		for _, d := range use.Divisions {
			v.Divisions = append(v.Divisions, demoDivisionView{Code: d.Code, FullName: d.FullName})
		}
		body["demo_key"] = v
	}
	return c.JSON(body)
}

type disclosureView struct {
	ID             string `json:"id"`
	Case           string `json:"case"`
	Division       string `json:"division"`
	UnitDivision   string `json:"unit_division,omitempty"`
	UnitID         string `json:"unit_id"`
	Requester      string `json:"requester"`
	Reason         string `json:"reason"`
	Status         string `json:"status"`
	RequestedAt    string `json:"requested_at"`
	ExpiresAt      string `json:"expires_at"`
	DecidedBy      string `json:"decided_by,omitempty"`
	DecidedAt      string `json:"decided_at,omitempty"`
	DecisionReason string `json:"decision_reason,omitempty"`
	CompletedAt    string `json:"completed_at,omitempty"`
	CancelledAt    string `json:"cancelled_at,omitempty"`
	CancelReason   string `json:"cancel_reason,omitempty"`
}

func disclosureOf(d custody.Disclosure) disclosureView {
	v := disclosureView{ID: d.ID, Case: d.Case, Division: d.Division, UnitDivision: d.UnitDivision, UnitID: d.UnitID, Requester: d.Requester, Reason: d.Reason,
		Status: d.Status, RequestedAt: wireTime(d.RequestedAt), ExpiresAt: wireTime(d.ExpiresAt), DecidedBy: d.DecidedBy,
		DecisionReason: d.DecisionReason}
	if d.DecidedAt != nil {
		v.DecidedAt = wireTime(*d.DecidedAt)
	}
	if d.CompletedAt != nil {
		v.CompletedAt = wireTime(*d.CompletedAt)
	}
	if d.CancelledAt != nil {
		v.CancelledAt, v.CancelReason = wireTime(*d.CancelledAt), d.CancelReason
	}
	return v
}

// auditCancelled records a request the service cancelled while refusing an action
// (the requester's key was revoked), then returns err.
func (s *Server) auditCancelled(c fiber.Ctx, d custody.Disclosure, err error) error {
	if d.Status == custody.Cancelled {
		s.recordChange(c, "identity.disclosure.cancelled", d.Case, map[string]string{"disclosure": d.ID, "requester": d.Requester, "reason": d.CancelReason})
	}
	return err
}

// requestDisclosure is POST /v1/cases/{case}/disclosures: staff of the owning unit ask
// for the reporter's identity.
func (s *Server) requestDisclosure(c fiber.Ctx) error {
	if err := staffOnly(c); err != nil {
		return err
	}
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	var req reasonRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return err
	}
	d, err := s.d.Disclosures.Request(c.Context(), cs, principalOf(c).user, req.Reason)
	if err != nil {
		return err
	}
	s.recordChange(c, "identity.disclosure.request", cs.Number, map[string]string{"disclosure": d.ID})
	return c.Status(fiber.StatusCreated).JSON(disclosureOf(d))
}

// caseDisclosures is GET /v1/cases/{case}/disclosures: whether and to whom the
// identity was disclosed, for staff of the unit.
func (s *Server) caseDisclosures(c fiber.Ctx) error {
	if err := staffOnly(c); err != nil {
		return err
	}
	cs, err := s.loadCase(c, accessRead)
	if err != nil {
		return err
	}
	list, err := s.d.Disclosures.ForCase(c.Context(), cs.ID)
	if err != nil {
		return err
	}
	out := make([]disclosureView, 0, len(list))
	for _, d := range list {
		out = append(out, disclosureOf(d))
	}
	return c.JSON(fiber.Map{"case": cs.Number, "disclosures": out})
}

// custodianOnly admits custodians.
func custodianOnly(c fiber.Ctx) (*accounts.User, error) {
	p := principalOf(c)
	if p == nil || p.user == nil || p.user.Role != accounts.RoleCustodian {
		return nil, qingfeng.ErrForbidden
	}
	return p.user, nil
}

// openDisclosures is GET /v1/disclosures: a custodian's open requests.
func (s *Server) openDisclosures(c fiber.Ctx) error {
	u, err := custodianOnly(c)
	if err != nil {
		return err
	}
	list, err := s.d.Disclosures.ForCustodian(c.Context(), u)
	if err != nil {
		return err
	}
	out := make([]disclosureView, 0, len(list))
	for _, d := range list {
		out = append(out, disclosureOf(d))
	}
	return c.JSON(fiber.Map{"disclosures": out})
}

// decideDisclosure is POST /v1/disclosures/{id}/approve and .../deny (custodian).
func (s *Server) decideDisclosure(approve bool) fiber.Handler {
	return func(c fiber.Ctx) error {
		u, err := custodianOnly(c)
		if err != nil {
			return err
		}
		var req reasonRequest
		if err := s.decodeJSON(c, &req); err != nil {
			return err
		}
		d, err := s.d.Disclosures.Decide(c.Context(), c.Params("id"), u, approve, req.Reason)
		if err != nil {
			return s.auditCancelled(c, d, err)
		}
		s.recordChange(c, "identity.disclosure."+d.Status, d.Case, map[string]string{"disclosure": d.ID, "requester": d.Requester})
		return c.JSON(disclosureOf(d))
	}
}

// sealedIdentity is GET /v1/disclosures/{id}/sealed-identity: for an approved
// request, the identity as sealed to the custodians, and the recipient to re-seal to.
func (s *Server) sealedIdentity(c fiber.Ctx) error {
	u, err := custodianOnly(c)
	if err != nil {
		return err
	}
	d, ct, err := s.d.Disclosures.SealedIdentity(c.Context(), c.Params("id"), u, func(id string) (*intake.Case, error) {
		return s.d.Intake.Cases.CaseByID(c.Context(), id)
	})
	if err != nil {
		return s.auditCancelled(c, d, err)
	}
	if err := s.record(c, "identity.sealed.download", d.Case, map[string]string{"disclosure": d.ID}); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"disclosure": d.ID, "ciphertext": base64.StdEncoding.EncodeToString(ct), "reseal_to": d.RequesterRecipient})
}

type ciphertextRequest struct {
	Ciphertext string `json:"ciphertext"` // base64 of a binary age file
}

// decodeCiphertext reads a ciphertextRequest body: a base64 age file.
func (s *Server) decodeCiphertext(c fiber.Ctx) ([]byte, error) {
	var req ciphertextRequest
	if err := s.decodeJSON(c, &req); err != nil {
		return nil, err
	}
	ct, err := base64.StdEncoding.DecodeString(req.Ciphertext)
	if err != nil || len(ct) == 0 {
		return nil, fieldInvalid("ciphertext", "invalid_base64", "密文应为 base64 编码的 age 文件", "base64 of an age file")
	}
	return ct, nil
}

// putResealed is PUT /v1/disclosures/{id}/resealed: the custodian uploads the identity
// re-sealed to the requester.
func (s *Server) putResealed(c fiber.Ctx) error {
	u, err := custodianOnly(c)
	if err != nil {
		return err
	}
	ct, err := s.decodeCiphertext(c)
	if err != nil {
		return err
	}
	d, err := s.d.Disclosures.Complete(c.Context(), c.Params("id"), u, ct)
	if err != nil {
		return s.auditCancelled(c, d, err)
	}
	s.recordChange(c, "identity.disclosure.completed", d.Case, map[string]string{"disclosure": d.ID, "requester": d.Requester})
	return c.JSON(disclosureOf(d))
}

// disclosedIdentity is GET /v1/disclosures/{id}/identity: the requester fetches the
// identity re-sealed to them, to open with their own key.
func (s *Server) disclosedIdentity(c fiber.Ctx) error {
	if err := staffOnly(c); err != nil {
		return err
	}
	d, err := s.d.Disclosures.Fetch(c.Context(), c.Params("id"), principalOf(c).user)
	if err != nil {
		return err
	}
	if err := s.record(c, "identity.disclosed.download", d.Case, map[string]string{"disclosure": d.ID}); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"disclosure": d.ID, "ciphertext": base64.StdEncoding.EncodeToString(d.Resealed)})
}

type resealTaskView struct {
	ID        string   `json:"id"`
	Case      string   `json:"case"`
	Division  string   `json:"division"`
	Target    string   `json:"target"`
	Reason    string   `json:"reason"`
	ResealTo  []string `json:"reseal_to"`
	Status    string   `json:"status"`
	CreatedAt string   `json:"created_at"`
	DoneBy    string   `json:"done_by,omitempty"`
	DoneAt    string   `json:"done_at,omitempty"`
}

func resealTaskOf(t custody.ResealTask) resealTaskView {
	v := resealTaskView{ID: t.ID, Case: t.Case, Division: t.Division, Target: t.Target, Reason: t.Reason, ResealTo: nonNil(t.ResealTo),
		Status: t.Status, CreatedAt: wireTime(t.CreatedAt), DoneBy: t.DoneBy}
	if t.DoneAt != nil {
		v.DoneAt = wireTime(*t.DoneAt)
	}
	return v
}

// resealTasks is GET /v1/reseal-tasks: a custodian's pending re-seal tasks.
func (s *Server) resealTasks(c fiber.Ctx) error {
	u, err := custodianOnly(c)
	if err != nil {
		return err
	}
	list, err := s.d.Reseals.ForCustodian(c.Context(), u)
	if err != nil {
		return err
	}
	out := make([]resealTaskView, 0, len(list))
	for _, t := range list {
		out = append(out, resealTaskOf(t))
	}
	return c.JSON(fiber.Map{"tasks": out})
}

// resealTaskIdentity is GET /v1/reseal-tasks/{id}/sealed-identity.
func (s *Server) resealTaskIdentity(c fiber.Ctx) error {
	u, err := custodianOnly(c)
	if err != nil {
		return err
	}
	t, ct, err := s.d.Reseals.SealedIdentity(c.Context(), c.Params("id"), u)
	if err != nil {
		return err
	}
	if err := s.record(c, "identity.reseal.download", t.Case, map[string]string{"task": t.ID}); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"task": t.ID, "ciphertext": base64.StdEncoding.EncodeToString(ct), "reseal_to": t.ResealTo})
}

// putResealTask is PUT /v1/reseal-tasks/{id}/resealed.
func (s *Server) putResealTask(c fiber.Ctx) error {
	u, err := custodianOnly(c)
	if err != nil {
		return err
	}
	ct, err := s.decodeCiphertext(c)
	if err != nil {
		return err
	}
	t, err := s.d.Reseals.Complete(c.Context(), c.Params("id"), u, ct)
	if err != nil {
		return err
	}
	s.recordChange(c, "identity.reseal.completed", t.Case, map[string]string{"task": t.ID, "reason": t.Reason})
	return c.JSON(resealTaskOf(t))
}
