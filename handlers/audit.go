package handlers

import (
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/audit"
)

// auditVerifyView is the body of GET /v1/admin/audit/verify.
type auditVerifyView struct {
	Entries     int64            `json:"entries"`
	OK          bool             `json:"ok"`
	FirstBroken *auditBrokenView `json:"first_broken,omitempty"`
}

type auditBrokenView struct {
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

// auditEntryView is one entry as listed. at keeps the milliseconds the hash covers.
type auditEntryView struct {
	Seq    int64             `json:"seq"`
	At     string            `json:"at"`
	Actor  string            `json:"actor"`
	Role   string            `json:"role,omitempty"`
	Action string            `json:"action"`
	Case   string            `json:"case,omitempty"`
	Detail map[string]string `json:"detail"`
	Prev   string            `json:"prev"`
	Hash   string            `json:"hash"`
}

const auditTimeLayout = "2006-01-02T15:04:05.000Z07:00"

func auditEntryOf(e audit.Entry) auditEntryView {
	d := e.Detail
	if d == nil {
		d = map[string]string{}
	}
	return auditEntryView{Seq: e.Seq, At: e.At.In(qingfeng.Shanghai).Format(auditTimeLayout), Actor: e.Actor, Role: e.Role,
		Action: e.Action, Case: e.Case, Detail: d, Prev: e.Prev, Hash: e.Hash}
}

// auditVerify is GET /v1/admin/audit/verify: reads the whole chain and names the
// first broken entry. Administrators only.
func (s *Server) auditVerify(c fiber.Ctx) error {
	r, err := s.verifyAudit(c)
	if err != nil {
		return err
	}
	out := auditVerifyView{Entries: r.Entries, OK: r.OK}
	if r.FirstBroken != nil {
		out.FirstBroken = &auditBrokenView{Seq: r.FirstBroken.Seq, Reason: r.FirstBroken.Reason}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// verifyAudit reads the whole chain and records that it did (the API's and the
// console's verify).
func (s *Server) verifyAudit(c fiber.Ctx) (audit.Report, error) {
	r, err := s.d.Audit.Verify(c.Context())
	if err != nil {
		return r, err
	}
	p := principalOf(c)
	err = s.d.Audit.Record(c.Context(), p.user.ID, string(p.user.Role), "audit.verify", "",
		map[string]string{"ok": strconv.FormatBool(r.OK), "entries": strconv.FormatInt(r.Entries, 10)})
	return r, err
}

// auditQuery reads ?case=&after=&limit= (the API's and the console's list).
func auditQuery(c fiber.Ctx) (audit.Query, error) {
	q := audit.Query{Case: c.Query("case"), Limit: audit.DefaultLimit}
	if q.Case != "" && !validCaseNumber(q.Case) {
		return q, fieldInvalid("case", "invalid_value", "案件编号格式不正确", "not a case number")
	}
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return q, fieldInvalid("after", "invalid_value", "after 须为非负整数", "must be a non-negative integer")
		}
		q.After = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return q, fieldInvalid("limit", "invalid_value", "limit 须为 1 到 1000 的整数", "must be an integer from 1 to 1000")
		}
		q.Limit = n
	}
	return q, nil
}

// listAudit lists q's entries and records that they were read.
func (s *Server) listAudit(c fiber.Ctx, q audit.Query) ([]audit.Entry, error) {
	entries, err := s.d.Audit.List(c.Context(), q)
	if err != nil {
		return nil, err
	}
	p := principalOf(c)
	detail := map[string]string{"after": strconv.FormatInt(q.After, 10), "returned": strconv.Itoa(len(entries))}
	if err := s.d.Audit.Record(c.Context(), p.user.ID, string(p.user.Role), "audit.list", q.Case, detail); err != nil {
		return nil, err
	}
	return entries, nil
}

// auditList is GET /v1/admin/audit?case=&after=&limit=: entries in chain order,
// after a Seq, optionally about one case. Administrators only.
func (s *Server) auditList(c fiber.Ctx) error {
	q, err := auditQuery(c)
	if err != nil {
		return err
	}
	entries, err := s.listAudit(c, q)
	if err != nil {
		return err
	}
	out := struct {
		Entries   []auditEntryView `json:"entries"`
		NextAfter int64            `json:"next_after,omitempty"`
	}{Entries: make([]auditEntryView, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, auditEntryOf(e))
	}
	if len(entries) == q.Limit {
		out.NextAfter = entries[len(entries)-1].Seq
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// record writes one entry of the audit log for the signed-in staff member. Reads
// (a case, its routing record, an evidence file) are recorded before anything is
// shown and fail closed: no entry, no data. Changes are recorded after they are made;
// a failure to record is logged as an error, since the change cannot be undone.
func (s *Server) record(c fiber.Ctx, action, caseNumber string, detail map[string]string) error {
	p := principalOf(c)
	actor, role := audit.ActorReporter, ""
	if p != nil && p.user != nil {
		actor, role = p.user.ID, string(p.user.Role)
	}
	err := s.d.Audit.Record(c.Context(), actor, role, action, caseNumber, detail)
	if err != nil {
		s.d.Log.Error("audit record failed", "action", action, "case", caseNumber, "err", err)
	}
	return err
}

// recordChange is record for a change already made: its failure is logged, not returned.
func (s *Server) recordChange(c fiber.Ctx, action, caseNumber string, detail map[string]string) {
	_ = s.record(c, action, caseNumber, detail)
}
