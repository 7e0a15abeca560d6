package handlers

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The custodian's console page: the disclosure requests and re-seal tasks of their
// jurisdiction, decided through the API's own calls. Nothing here opens an identity:
// the private key never reaches the browser or the server, so the page shows the
// qfctl command that does the re-seal step on the custodian's own device.

func (s *Server) consoleCustodyView(c fiber.Ctx) (web.CustodyPage, error) {
	u, err := custodianOnly(c)
	if err != nil {
		return web.CustodyPage{}, err
	}
	pg := web.CustodyPage{ConsolePage: s.consolePage(c, "身份披露审批", "/console/custody")}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{}
	login := "qfctl login --server " + s.publicURL("") + " --username " + u.Username
	list, err := s.d.Disclosures.ForCustodian(c.Context(), u)
	if err != nil {
		return pg, err
	}
	for _, d := range list {
		item := s.disclosureItem(c, d)
		switch d.Status {
		case custody.Pending:
			pg.Disclosures = append(pg.Disclosures, item)
		case custody.Approved:
			item.Command = login + "\nqfctl disclose reseal " + d.ID + " --key 您的私钥文件"
			pg.Approved = append(pg.Approved, item)
		}
	}
	tasks, err := s.d.Reseals.ForCustodian(c.Context(), u)
	if err != nil {
		return pg, err
	}
	for _, t := range tasks {
		if t.Status != "pending" {
			continue
		}
		pg.Tasks = append(pg.Tasks, web.ResealItem{ID: t.ID, Case: t.Case, Division: divisionName(t.Division), Target: divisionName(t.Target),
			Reason: resealReasons[t.Reason], CreatedAt: pageTime(t.CreatedAt),
			Command: login + "\nqfctl reseal do " + t.ID + " --key 您的私钥文件"})
	}
	return pg, nil
}

var resealReasons = map[string]string{"transfer": "案件已转办到其他辖区：须让接收辖区的保密员也能开启",
	"custodians_changed": "本辖区保密员名单已变更：须按新名单重新加密"}

func (s *Server) disclosureItem(c fiber.Ctx, d custody.Disclosure) web.DisclosureItem {
	unit, _ := s.d.UnitName(d.UnitID)
	return web.DisclosureItem{ID: d.ID, Case: d.Case, Division: divisionName(d.Division), Unit: unit, Requester: s.accountName(c, d.Requester),
		Reason: d.Reason, Status: disclosureStatusLabels[d.Status], RequestedAt: pageTime(d.RequestedAt), ExpiresAt: pageTime(d.ExpiresAt)}
}

// consoleCustody is GET /console/custody.
func (s *Server) consoleCustody(c fiber.Ctx) error {
	pg, err := s.consoleCustodyView(c)
	if err != nil {
		return err
	}
	switch c.Query("done") {
	case "approved":
		pg.Flash = "已批准。请在您自己的设备上用下方命令完成重新加密，申请人才能看到身份。"
	case "denied":
		pg.Flash = "已驳回，申请人会看到驳回理由。"
	}
	return s.render(c, fiber.StatusOK, "console/custody", pg)
}

// consoleDecide is POST /console/custody/disclosures/{id}: approve or deny with a
// reason, the API's decision (never automatic: a custodian decides each one).
func (s *Server) consoleDecide(c fiber.Ctx) error {
	u, err := custodianOnly(c)
	if err != nil {
		return err
	}
	form, err := s.consoleForm(c)
	if err == nil {
		var approve bool
		switch form["decision"] {
		case "approve":
			approve = true
		case "deny":
		default:
			err = fieldInvalid("decision", "required", "请选择批准或驳回", "approve or deny")
		}
		if err == nil {
			var d custody.Disclosure
			d, err = s.d.Disclosures.Decide(c.Context(), c.Params("id"), u, approve, form["reason"])
			if err != nil {
				err = s.auditCancelled(c, d, err)
			} else {
				s.recordChange(c, "identity.disclosure."+d.Status, d.Case, map[string]string{"disclosure": d.ID, "requester": d.Requester})
				return c.Redirect().Status(fiber.StatusSeeOther).To("/console/custody?done=" + d.Status)
			}
		}
	}
	if code := qingfeng.ErrorCode(err); code == qingfeng.EINTERNAL || code == "" {
		return err
	}
	pg, verr := s.consoleCustodyView(c)
	if verr != nil {
		return verr
	}
	consoleFormErrors(&pg.Form, err)
	pg.Values["id"] = c.Params("id")
	if len(pg.Form.Summary) > 0 {
		var msgs []string
		for _, fe := range pg.Form.Summary {
			msgs = append(msgs, fe.Label+"："+fe.Message)
		}
		pg.Notice = fmt.Sprintf("申请 %s 未能处理：%s", c.Params("id"), strings.Join(msgs, "；"))
	}
	return s.render(c, statusForForm(err), "console/custody", pg)
}
