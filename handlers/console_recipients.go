package handlers

import (
	"errors"
	"net/url"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's custodian recipients page: every registered key by jurisdiction, the
// jurisdictions with fewer than two custodians, where the demo key is still used,
// and the register and revoke forms — the API's calls, checks and audit entries
// (a revocation also needs a reason, recorded in the audit entry).

// jurisdictionName is a recipient's jurisdiction in words: a division for custodians,
// a unit for staff.
func (s *Server) jurisdictionName(role, j string) string {
	if role == string(accounts.RoleStaff) {
		if n, ok := s.d.UnitName(j); ok {
			return n
		}
		return j
	}
	return divisionName(j)
}

func (s *Server) consoleRecipientsView(c fiber.Ctx) (web.RecipientsPage, error) {
	pg := web.RecipientsPage{ConsolePage: s.consolePage(c, "保密员与工作人员公钥", "/console/admin/recipients")}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	all, risks, err := s.d.Keys.List(c.Context())
	if err != nil {
		return pg, err
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Jurisdiction != all[j].Jurisdiction {
			return all[i].Jurisdiction < all[j].Jurisdiction
		}
		return all[i].AddedAt.Before(all[j].AddedAt)
	})
	for _, r := range all {
		row := web.RecipientRow{ID: r.ID, Jurisdiction: s.jurisdictionName(r.Role, r.Jurisdiction), Code: r.Jurisdiction,
			Role: roleLabels[accounts.Role(r.Role)], Recipient: r.Recipient, Label: r.Label, Added: pageTime(r.AddedAt), Holder: r.UserID}
		if u, err := s.d.Accounts.Users.UserByID(c.Context(), r.UserID); err == nil && u != nil {
			row.Holder = u.Username
		}
		if r.RevokedAt != nil {
			row.Revoked = pageTime(*r.RevokedAt)
		}
		pg.Recipients = append(pg.Recipients, row)
	}
	for _, r := range risks {
		label := divisionName(r.Jurisdiction) + "（" + r.Jurisdiction + "）"
		if d, ok := strings.CutPrefix(r.Jurisdiction, "config:"); ok {
			label = divisionName(d) + "（" + d + "，配置 QF_CUSTODIAN_RECIPIENTS）"
		}
		pg.Risks = append(pg.Risks, web.KV{Label: label, Value: map[int]string{0: "没有保密员密钥", 1: "只有1把保密员密钥"}[r.Custodians]})
	}
	if use, ok := s.d.Keys.DemoUse(); ok {
		pg.DemoKey = use.Recipient
		for _, d := range use.Divisions {
			pg.DemoDivisions = append(pg.DemoDivisions, d.FullName+"（"+d.Code+"）")
		}
		pg.DemoUsed = true
	}
	return pg, nil
}

// consoleRecipients is GET /console/admin/recipients.
func (s *Server) consoleRecipients(c fiber.Ctx) error {
	pg, err := s.consoleRecipientsView(c)
	if err != nil {
		return err
	}
	pg.Flash = map[string]string{"register": "公钥已登记；今后的实名信息将同时加密给它。", "revoke": "公钥已注销；在办案件的实名信息已排入重新加密任务。"}[c.Query("done")]
	return s.render(c, fiber.StatusOK, "console/recipients", pg)
}

// consoleRecipientsAct is POST /console/admin/recipients: op=register (username,
// recipient, label) or op=revoke (id, reason).
func (s *Server) consoleRecipientsAct(c fiber.Ctx) error {
	form, err := s.consoleForm(c)
	op := form["op"]
	if err == nil {
		err = s.consoleRecipientsApply(c, op, form)
	}
	if err == nil {
		return c.Redirect().Status(fiber.StatusSeeOther).To("/console/admin/recipients?done=" + url.QueryEscape(op))
	}
	if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" || code == qingfeng.EFORBIDDEN {
		return err
	}
	pg, verr := s.consoleRecipientsView(c)
	if verr != nil {
		return verr
	}
	consoleFormErrors(&pg.Form, err)
	pg.Values = form
	return s.render(c, statusForForm(err), "console/recipients", pg)
}

func (s *Server) consoleRecipientsApply(c fiber.Ctx, op string, f map[string]string) error {
	me := principalOf(c).user.ID
	switch op {
	case "register":
		u, err := s.d.Accounts.Users.UserByUsername(c.Context(), accounts.NormalizeUsername(f["username"]))
		if err != nil || u == nil {
			if err != nil && qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
				return err
			}
			return fieldInvalid("username", "unknown_user", "账号不存在", "no such account")
		}
		r, err := s.d.Keys.Register(c.Context(), me, u.ID, f["recipient"], f["label"])
		if err != nil {
			// The API names the account by id; the form by username.
			var qe *qingfeng.Error
			if errors.As(err, &qe) {
				if fe, ok := qe.Fields["user_id"]; ok {
					return fieldInvalid("username", fe.Code, fe.Message, fe.English)
				}
			}
			return err
		}
		s.recordChange(c, "identity.recipient.register", "", map[string]string{"recipient_id": r.ID, "holder": r.UserID, "role": r.Role})
	case "revoke":
		reason, err := custody.RevokeReason(f["reason"])
		if err != nil {
			return err
		}
		if f["id"] == "" {
			return fieldInvalid("id", "required", "请选择要注销的公钥", "choose a recipient")
		}
		r, err := s.d.Keys.Revoke(c.Context(), f["id"], me)
		if err != nil {
			if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
				return fieldInvalid("id", "unknown_recipient", "没有这把公钥", "no such recipient")
			}
			return err
		}
		s.recordChange(c, "identity.recipient.revoke", "", map[string]string{"recipient_id": r.ID, "holder": r.UserID, "reason": reason})
	default:
		return fieldInvalid("op", "unknown_action", "未知的操作", "unknown operation")
	}
	return nil
}
