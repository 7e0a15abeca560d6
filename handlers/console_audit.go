package handlers

import (
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/web"
)

// The admin's audit log page: the entries in chain order (paged, optionally about one
// case) and the verify button — the API's calls, checks and audit entries (reading the
// log and verifying it are recorded, as through the API).

const consoleAuditPage = 50

func (s *Server) consoleAuditView(c fiber.Ctx) (web.AuditPage, error) {
	pg := web.AuditPage{ConsolePage: s.consolePage(c, "审计日志", "/console/admin/audit")}
	pg.Form.CSRF = pg.ConsolePage.SessionCSRF
	pg.Errors, pg.Values = map[string]string{}, map[string]string{"case": c.Query("case")}
	q, err := auditQuery(c)
	if err != nil {
		consoleFormErrors(&pg.Form, err)
		return pg, err
	}
	q.Limit = consoleAuditPage
	entries, err := s.listAudit(c, q)
	if err != nil {
		return pg, err
	}
	actors := map[string]web.AuditActor{}
	for _, e := range entries {
		a, ok := actors[e.Actor]
		if !ok {
			if a, err = s.auditActor(c, e.Actor); err != nil {
				return pg, err
			}
			actors[e.Actor] = a
		}
		row := web.AuditRow{Seq: strconv.FormatInt(e.Seq, 10), At: e.At.In(qingfeng.Shanghai).Format(auditTimeLayout), Actor: a,
			Role: roleLabels[accounts.Role(e.Role)], Action: e.Action, Case: e.Case, Hash: e.Hash}
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for i, k := range keys {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k + "=" + e.Detail[k])
		}
		row.Detail = b.String()
		pg.Entries = append(pg.Entries, row)
	}
	if len(entries) == q.Limit {
		v := url.Values{"after": {strconv.FormatInt(entries[len(entries)-1].Seq, 10)}}
		if q.Case != "" {
			v.Set("case", q.Case)
		}
		pg.NextHref = "/console/admin/audit?" + v.Encode()
	}
	return pg, nil
}

// auditActor names an entry's actor: an account by its display name and username
// (one lookup per distinct actor of a page: a page of 50 entries usually has a handful),
// an account that no longer resolves by its id, marked.
func (s *Server) auditActor(c fiber.Ctx, id string) (web.AuditActor, error) {
	switch id {
	case audit.ActorReporter:
		return web.AuditActor{Name: "举报人（不记录身份）"}, nil
	case audit.ActorSystem:
		return web.AuditActor{Name: "系统"}, nil
	}
	u, err := s.d.Accounts.Users.UserByID(c.Context(), id)
	switch {
	case qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND:
		return web.AuditActor{ID: id, Unresolved: true}, nil
	case err != nil:
		return web.AuditActor{}, err
	}
	return web.AuditActor{Name: u.DisplayName, Username: u.Username, ID: id}, nil
}

// consoleAudit is GET /console/admin/audit?case=&after=. A bad filter is shown on the
// form with a 400 and lists nothing.
func (s *Server) consoleAudit(c fiber.Ctx) error {
	pg, err := s.consoleAuditView(c)
	if err != nil {
		if len(pg.Summary) == 0 {
			return err
		}
		return s.render(c, statusForForm(err), "console/audit", pg)
	}
	return s.render(c, fiber.StatusOK, "console/audit", pg)
}

// consoleAuditVerify is POST /console/admin/audit/verify: reads the whole chain and
// shows OK or the first broken entry above the list.
func (s *Server) consoleAuditVerify(c fiber.Ctx) error {
	if _, err := s.consoleForm(c); err != nil {
		return err
	}
	r, err := s.verifyAudit(c)
	if err != nil {
		return err
	}
	pg, err := s.consoleAuditView(c)
	if err != nil {
		return err
	}
	v := &web.AuditVerify{OK: r.OK, Entries: strconv.FormatInt(r.Entries, 10), Head: r.Head}
	if r.FirstBroken != nil {
		v.BrokenSeq, v.BrokenReason = strconv.FormatInt(r.FirstBroken.Seq, 10), r.FirstBroken.Reason
		v.BrokenHref = "/console/admin/audit?after=" + strconv.FormatInt(max(r.FirstBroken.Seq-1, 0), 10)
	}
	pg.Verify = v
	return s.render(c, fiber.StatusOK, "console/audit", pg)
}
