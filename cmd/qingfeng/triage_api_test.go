package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/retention"
)

type workflowResult struct {
	Status   string `json:"status"`
	Workflow struct {
		Allowed     []string `json:"allowed_actions"`
		Disposition string   `json:"disposition"`
		DuplicateOf string   `json:"duplicate_of"`
		Outcome     *struct {
			Result          string `json:"result"`
			NameCleared     bool   `json:"name_cleared"`
			FalseAccusation string `json:"false_accusation"`
		} `json:"outcome"`
		Transitions []struct {
			Action string `json:"action"`
			By     string `json:"by"`
			Reason string `json:"reason"`
		} `json:"transitions"`
	} `json:"workflow"`
}

func step(t *testing.T, token, number string, body map[string]any, status int) workflowResult {
	t.Helper()
	r := postJSON(t, "/v1/cases/"+number+"/transitions", token, body)
	wantStatus(t, r, status)
	var w workflowResult
	if status == 200 {
		r.json(t, &w)
	}
	return w
}

func realNameReport() map[string]any {
	body := anonymousReport()
	delete(body, "anonymous")
	body["identity"] = map[string]any{"name": "赵六", "mobile": "13900139000"}
	return body
}

func TestWorkflowLifecycle(t *testing.T) {
	f := fileReport(t, realNameReport())
	staff, user := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	n := f.CaseNumber

	// Not yet accepted: disposing is refused with the allowed actions.
	r := postJSON(t, "/v1/cases/"+n+"/transitions", staff, map[string]any{"action": "dispose", "disposition": "held", "reason": "x"})
	wantStatus(t, r, 409)
	var e struct {
		Error struct {
			Code    string   `json:"code"`
			Allowed []string `json:"allowed"`
		} `json:"error"`
	}
	r.json(t, &e)
	if fmt.Sprint(e.Error.Allowed) != "[accept link_duplicate not_accept]" {
		t.Errorf("allowed %v", e.Error.Allowed)
	}

	step(t, staff, n, map[string]any{"action": "accept", "reason": "属于本单位受理范围"}, 200)
	w := step(t, staff, n, map[string]any{"action": "dispose", "disposition": "preliminary_verification", "reason": "线索具体，予以初核"}, 200)
	if w.Status != "disposed" || w.Workflow.Disposition != "preliminary_verification" {
		t.Fatalf("after dispose: %+v", w)
	}
	w = step(t, staff, n, map[string]any{"action": "conclude", "reason": "经核实不属实",
		"outcome": map[string]any{"result": "unsubstantiated", "name_cleared": true, "false_accusation": "mistake"}}, 200)
	if w.Workflow.Outcome == nil || !w.Workflow.Outcome.NameCleared || w.Workflow.Outcome.FalseAccusation != "mistake" {
		t.Fatalf("outcome %+v", w.Workflow.Outcome)
	}
	// A real-name reporter is told the result before the case closes.
	if !slices.Equal(w.Workflow.Allowed, []string{"give_feedback"}) {
		t.Errorf("allowed after conclusion: %v", w.Workflow.Allowed)
	}
	step(t, staff, n, map[string]any{"action": "close", "reason": "x"}, 409)
	step(t, staff, n, map[string]any{"action": "give_feedback", "reason": "已电话反馈"}, 200)
	step(t, staff, n, map[string]any{"action": "close", "reason": "办结归档"}, 200)
	w = step(t, staff, n, map[string]any{"action": "reopen", "reason": "举报人提供新线索"}, 200)
	if w.Status != "accepted" || w.Workflow.Outcome != nil {
		t.Errorf("after reopening: %+v", w)
	}
	var actions []string
	for _, tr := range w.Workflow.Transitions {
		actions = append(actions, tr.Action)
		if tr.By != user.ID || tr.Reason == "" {
			t.Errorf("step without who or why: %+v", tr)
		}
	}
	if fmt.Sprint(actions) != "[accept dispose conclude give_feedback close reopen]" {
		t.Errorf("transitions %v", actions)
	}
	// The reporter sees the status, not the workflow.
	var rc map[string]any
	r = do(t, req{method: "GET", path: "/v1/followup/case", token: f.FollowUpToken})
	wantStatus(t, r, 200)
	r.json(t, &rc)
	if rc["status"] != "accepted" || rc["workflow"] != nil {
		t.Errorf("reporter view %v", rc)
	}
	// The staff view carries the feedback deadline set on conclusion.
	var sc struct {
		FeedbackDue string `json:"feedback_due"`
	}
	r = do(t, req{method: "GET", path: "/v1/cases/" + n, token: staff})
	wantStatus(t, r, 200)
	r.json(t, &sc)
	if sc.FeedbackDue != "" {
		t.Errorf("feedback due %q after reopening", sc.FeedbackDue)
	}
}

func TestWorkflowBadInput(t *testing.T) {
	f := fileReport(t, anonymousReport())
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	other, _ := staffLogin(t, accounts.RoleStaff, "330782-jw", "")
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	path := "/v1/cases/" + f.CaseNumber + "/transitions"
	tests := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"unknown action", staff, map[string]any{"action": "approve", "reason": "x"}, 400},
		{"no reason", staff, map[string]any{"action": "accept"}, 400},
		{"not accepted without a reason kind", staff, map[string]any{"action": "not_accept", "reason": "x"}, 400},
		{"not accepted, unknown reason kind", staff, map[string]any{"action": "not_accept", "reason": "x", "not_accepted_reason": "bored"}, 400},
		{"duplicate of itself", staff, map[string]any{"action": "link_duplicate", "reason": "x", "duplicate_of": f.CaseNumber}, 400},
		{"duplicate of nothing", staff, map[string]any{"action": "link_duplicate", "reason": "x", "duplicate_of": "QF-330782-2026-999999"}, 400},
		{"wrong type", staff, map[string]any{"action": []string{"accept"}, "reason": "x"}, 400},
		{"operator injection", staff, `{"action":{"$gt":""},"reason":"x"}`, 400},
		{"unknown field", staff, `{"action":"accept","reason":"x","status":"closed"}`, 400},
		{"liaison", liaison, map[string]any{"action": "accept", "reason": "x"}, 403},
		{"another unit", other, map[string]any{"action": "accept", "reason": "x"}, 404},
		{"no token", "", map[string]any{"action": "accept", "reason": "x"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, path, tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
	// Conclusion needs a consistent outcome.
	step(t, staff, f.CaseNumber, map[string]any{"action": "accept", "reason": "x"}, 200)
	step(t, staff, f.CaseNumber, map[string]any{"action": "dispose", "disposition": "talk_inquiry", "reason": "x"}, 200)
	for _, o := range []any{nil, map[string]any{"result": "maybe"}, map[string]any{"result": "substantiated", "name_cleared": true},
		map[string]any{"result": "unsubstantiated", "false_accusation": "spite"}} {
		step(t, staff, f.CaseNumber, map[string]any{"action": "conclude", "reason": "x", "outcome": o}, 400)
	}
	// Nothing the refused requests sent changed the case.
	var sc struct {
		Status   string         `json:"status"`
		Workflow workflowResult `json:"-"`
	}
	r := do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff})
	r.json(t, &sc)
	if sc.Status != "disposed" {
		t.Errorf("status %s", sc.Status)
	}
}

// TestConcurrentTransitions: 16 staff accept one case at once; exactly one wins and
// every other gets 409 — no silent overwrite.
func TestConcurrentTransitions(t *testing.T) {
	f := fileReport(t, anonymousReport())
	var tokens []string
	for range 16 {
		tok, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
		tokens = append(tokens, tok)
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(tokens))
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := postJSON(t, "/v1/cases/"+f.CaseNumber+"/transitions", tok, map[string]any{"action": "accept", "reason": fmt.Sprint("staff ", i)})
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	won, lost := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			won++
		case 409:
			lost++
		}
	}
	if won != 1 || lost != 15 {
		t.Fatalf("statuses %v: %d won, %d got 409", statuses, won, lost)
	}
	staff := tokens[0]
	var w struct {
		Workflow workflowResultInner `json:"workflow"`
	}
	r := do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff})
	r.json(t, &w)
	if len(w.Workflow.Transitions) != 1 {
		t.Errorf("%d transitions recorded, want 1", len(w.Workflow.Transitions))
	}
}

type workflowResultInner struct {
	Transitions []struct {
		Action string `json:"action"`
	} `json:"transitions"`
}

func TestDuplicatesAndAssignment(t *testing.T) {
	first := fileReport(t, realNameReport())
	dup := fileReport(t, realNameReport())
	staff, me := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	_, colleague := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	_, outsider := staffLogin(t, accounts.RoleStaff, "330782-jw", "")

	// The earlier case cannot be linked to the later one.
	step(t, staff, first.CaseNumber, map[string]any{"action": "link_duplicate", "reason": "x", "duplicate_of": dup.CaseNumber}, 400)
	w := step(t, staff, dup.CaseNumber, map[string]any{"action": "link_duplicate", "reason": "同一事项重复举报", "duplicate_of": first.CaseNumber}, 200)
	if w.Status != "duplicate" || w.Workflow.DuplicateOf != first.CaseNumber {
		t.Fatalf("linked: %+v", w)
	}
	var sc struct {
		AcceptanceDue string `json:"acceptance_due"`
	}
	r := do(t, req{method: "GET", path: "/v1/cases/" + dup.CaseNumber, token: staff})
	r.json(t, &sc)
	if sc.AcceptanceDue != "" {
		t.Errorf("a linked duplicate still has an acceptance deadline %s", sc.AcceptanceDue)
	}
	// The duplicate's reporter follows the earlier case's progress, without its number.
	step(t, staff, first.CaseNumber, map[string]any{"action": "accept", "reason": "x"}, 200)
	r = do(t, req{method: "GET", path: "/v1/followup/case", token: dup.FollowUpToken})
	wantStatus(t, r, 200)
	var rc map[string]any
	r.json(t, &rc)
	if rc["status"] != "accepted" || fmt.Sprint(rc) == "" || containsString(r.Body, first.CaseNumber) {
		t.Errorf("duplicate reporter's view: %s", r.Body)
	}
	// Claim, assign within the unit, refuse outsiders, unassign.
	put := func(body any, status int) {
		t.Helper()
		r := do(t, req{method: "PUT", path: "/v1/cases/" + first.CaseNumber + "/assignee", body: jsonBody(t, body), contentType: "application/json", token: staff})
		wantStatus(t, r, status)
		if status != 200 {
			r.errorCode(t)
		}
	}
	put(map[string]any{"assignee": me.ID}, 200)
	r = do(t, req{method: "GET", path: "/v1/cases?assignee=me", token: staff})
	wantStatus(t, r, 200)
	if !containsString(r.Body, first.CaseNumber) {
		t.Errorf("claimed case not in ?assignee=me: %s", r.Body)
	}
	put(map[string]any{"assignee": colleague.ID}, 200)
	put(map[string]any{"assignee": outsider.ID}, 400)
	put(map[string]any{"assignee": "no-such-user"}, 400)
	put(map[string]any{"assignee": 42}, 400)
	put(`{"assignee":null,"extra":1}`, 400)
	// null, "", {} and case variants must not unassign (nor reassign): DELETE does.
	assignee := func() string {
		t.Helper()
		r := do(t, req{method: "GET", path: "/v1/cases/" + first.CaseNumber, token: staff})
		wantStatus(t, r, 200)
		var v struct {
			Assignee string `json:"assignee"`
		}
		r.json(t, &v)
		return v.Assignee
	}
	for _, body := range []string{`{"assignee":null}`, `{"assignee":""}`, `{}`, `{"ASSIGNEE":"` + me.ID + `"}`,
		`{"assignee":"` + colleague.ID + `","assignee":"` + me.ID + `"}`} {
		put(body, 400)
		if got := assignee(); got != colleague.ID {
			t.Fatalf("PUT %s changed the assignee to %q", body, got)
		}
	}
	wantStatus(t, do(t, req{method: "DELETE", path: "/v1/cases/" + first.CaseNumber + "/assignee", token: staff}), 200)
	if got := assignee(); got != "" {
		t.Errorf("DELETE left the assignee %q", got)
	}

	r = do(t, req{method: "GET", path: "/v1/cases?status=duplicate", token: staff})
	wantStatus(t, r, 200)
	if !containsString(r.Body, dup.CaseNumber) || containsString(r.Body, first.CaseNumber) {
		t.Errorf("?status=duplicate: %s", r.Body)
	}
	for _, q := range []string{"status=lost", "category=nope", "assignee=" + strings.Repeat("a", 70)} {
		wantStatus(t, do(t, req{method: "GET", path: "/v1/cases?" + q, token: staff}), 400)
	}
	var counts struct {
		Counts map[string]int `json:"counts"`
	}
	r = do(t, req{method: "GET", path: "/v1/cases/counts", token: staff})
	wantStatus(t, r, 200)
	r.json(t, &counts)
	if counts.Counts["duplicate"] < 1 || counts.Counts["accepted"] < 1 {
		t.Errorf("counts %v", counts.Counts)
	}
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/counts", token: liaison}), 403)
}

func containsString(body []byte, s string) bool { return bytes.Contains(body, []byte(s)) }

// jsonBody encodes v as JSON; a string is sent as it is.
func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	if s, ok := v.(string); ok {
		return strings.NewReader(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func TestDeadlinesAndEscalation(t *testing.T) {
	// A unit's own acceptance deadline (10 working days instead of 15).
	units := srv.engine.Units.All()
	restore := slices.Clone(units)
	for i := range units {
		if units[i].ID == "330782-mz" {
			units[i].Deadlines = map[string]int{"acceptance": 10}
		}
	}
	if err := srv.engine.Units.Replace(units); err != nil {
		t.Fatal(err)
	}
	f := fileReport(t, realNameReport())
	if err := srv.engine.Units.Replace(restore); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Intake.Cases.CaseByNumber(t.Context(), f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := srv.Intake.Calendar.AddWorkingDays(c.ReceivedAt, 10); f.AcceptanceDue != want {
		t.Errorf("acceptance due %s, want %s (10 working days)", f.AcceptanceDue, want)
	}

	// A month later nobody has accepted it: the job marks it and tells the parent unit,
	// once however often it runs.
	esc := *srv.escalator
	esc.Holder, esc.Now = "test-escalator", func() time.Time { return c.ReceivedAt.AddDate(0, 1, 0) }
	for range 2 {
		if _, err := esc.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	parent, _ := staffLogin(t, accounts.RoleStaff, "330700-mz", "")
	r := do(t, req{method: "GET", path: "/v1/notifications", token: parent})
	wantStatus(t, r, 200)
	var ns struct {
		Notifications []struct {
			Case string `json:"case"`
			Kind string `json:"kind"`
		} `json:"notifications"`
	}
	r.json(t, &ns)
	seen := 0
	for _, n := range ns.Notifications {
		if n.Case == f.CaseNumber && n.Kind == "acceptance" {
			seen++
		}
	}
	if seen != 1 {
		t.Errorf("%d notifications for the overdue case: %s", seen, r.Body)
	}
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	r = do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff})
	var sc struct {
		Overdue []string `json:"overdue"`
	}
	r.json(t, &sc)
	if fmt.Sprint(sc.Overdue) != "[acceptance]" {
		t.Errorf("overdue %v", sc.Overdue)
	}
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	wantStatus(t, do(t, req{method: "GET", path: "/v1/notifications", token: liaison}), 403)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/notifications"}), 401)
}

func TestCalendarAdmin(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	// 2027 as it might be announced: New Year's Day off, a make-up working Sunday.
	y2027 := `{"year":2027,"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true},{"name":"春节","date":"2027-02-07","isOffDay":false}]}`
	put := func(year, token, body, ct string, status int) response {
		t.Helper()
		r := do(t, req{method: "PUT", path: "/v1/admin/calendar/" + year, body: strings.NewReader(body), contentType: ct, token: token})
		wantStatus(t, r, status)
		if status != 200 {
			r.errorCode(t)
		}
		return r
	}
	put("2027", admin, y2027, "application/json", 200)
	r := do(t, req{method: "GET", path: "/v1/admin/calendar", token: admin})
	wantStatus(t, r, 200)
	if !containsString(r.Body, "2027") {
		t.Errorf("years %s", r.Body)
	}
	// The make-up Sunday counts: from Friday 2027-02-05, one working day is Sunday the 7th.
	if due, est := srv.Intake.Calendar.AddWorkingDays(time.Date(2027, 2, 5, 4, 0, 0, 0, time.UTC), 1); due != "2027-02-07" || est {
		t.Errorf("after loading 2027: %s (estimated %v)", due, est)
	}
	// Stored: a fresh load from the database has it.
	years, err := srv.calendar.store.Years(t.Context())
	if err != nil || len(years) == 0 || years[len(years)-1].Year != 2027 {
		t.Errorf("stored years %v %v", years, err)
	}
	put("2028", admin, y2027, "application/json", 400)                     // path and data disagree
	put("2027", admin, `{"year":2027,"days":[]}`, "application/json", 400) // no days
	put("2027", admin, `{"year":2027,"days":[{"date":"2027-13-01","isOffDay":true}]}`, "application/json", 400)
	put("2027", admin, `{"year":2027,"days":[{"date":"2027-01-01"}]}`, "application/json", 400) // no isOffDay
	put("2027", admin, `{"year":{"$gt":0}}`, "application/json", 400)
	put("1999", admin, y2027, "application/json", 400)
	// The published holiday-cn format ($schema, $id, papers) is accepted as it is.
	published, err := os.ReadFile("../../triage/holidays/2026.json")
	if err != nil {
		t.Fatal(err)
	}
	put("2026", admin, string(published), "application/json", 200)
	// Strict decoding: none of these may load, and 2027 stays as it was.
	for _, body := range []string{
		`{"year":2027,"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true}],"holidays":[]}`,    // unknown field
		`{"year":2027,"days":[{"name":"元旦","date":"2027-01-01","IsOffDay":true}]}`,                  // case variant
		`{"year":2027,"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true,"isOffDay":false}]}`, // duplicate key
		`{"year":2026,"year":2027,"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true}]}`,      // duplicate year
		`{"year":2027,"days":[{"name":"元\u0000旦","date":"2027-01-01","isOffDay":true}]}`,            // NUL
		"{\"year\":2027,\"days\":[{\"name\":\"\xff\",\"date\":\"2027-01-01\",\"isOffDay\":true}]}",  // invalid UTF-8
	} {
		put("2027", admin, body, "application/json", 400)
	}
	if due, est := srv.Intake.Calendar.AddWorkingDays(time.Date(2027, 2, 5, 4, 0, 0, 0, time.UTC), 1); due != "2027-02-07" || est {
		t.Errorf("a refused calendar changed 2027: %s (estimated %v)", due, est)
	}
	put("2027", admin, y2027, "text/plain", 415)
	put("2027", staff, y2027, "application/json", 403)
	put("2027", "", y2027, "application/json", 401)
}

func TestCalendarCommand(t *testing.T) {
	db := fmt.Sprintf("qf_calendar_%d", time.Now().UnixNano())
	cfg := testConfig(t, t.TempDir(), map[string]string{"MONGODB_URI": testMongoURI(t), "MONGODB_DATABASE": db, "QF_CUSTODIAN_RECIPIENTS": "*=age1pq1unused"})
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := calendarCommand(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), args, &out, &errb)
		return code, out.String() + errb.String()
	}
	good := writeFile(t, "2028.json", `{"year":2028,"days":[{"name":"元旦","date":"2028-01-01","isOffDay":true}]}`)
	if code, out := run("add", good); code != 0 || !strings.Contains(out, "2028") {
		t.Fatalf("add: %d %s", code, out)
	}
	if code, out := run("add", writeFile(t, "bad.json", `{"year":2028}`)); code != 1 || !strings.Contains(out, "没有任何日期") {
		t.Errorf("bad file: %d %s", code, out)
	}
	if code, _ := run("add"); code != 2 {
		t.Errorf("usage: %d", code)
	}
	if code, _ := run("add", filepath.Join(t.TempDir(), "missing.json")); code != 1 {
		t.Errorf("missing file: %d", code)
	}
}

func TestTransfers(t *testing.T) {
	f := fileReport(t, anonymousReport())
	mz, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	scjg, _ := staffLogin(t, accounts.RoleStaff, "330782-scjg", "")
	jw, _ := staffLogin(t, accounts.RoleStaff, "330782-jw", "")
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	n := f.CaseNumber
	post := func(token, path string, body any, status int) map[string]any {
		t.Helper()
		r := postJSON(t, "/v1/cases/"+n+path, token, body)
		wantStatus(t, r, status)
		var out map[string]any
		r.json(t, &out)
		return out
	}
	bad := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"unknown unit", mz, map[string]any{"to_unit": "999999-zz", "reason": "x"}, 400},
		{"same unit", mz, map[string]any{"to_unit": "330782-mz", "reason": "x"}, 400},
		{"no reason", mz, map[string]any{"to_unit": "330782-scjg"}, 400},
		{"wrong type", mz, map[string]any{"to_unit": 5, "reason": "x"}, 400},
		{"unknown field", mz, `{"to_unit":"330782-scjg","reason":"x","due":"2030-01-01"}`, 400},
		{"liaison", liaison, map[string]any{"to_unit": "330782-scjg", "reason": "x"}, 403},
		{"another unit", scjg, map[string]any{"to_unit": "330782-jw", "reason": "x"}, 404},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, "/v1/cases/"+n+"/transfer", tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
	post(mz, "/transfer/accept", map[string]any{"reason": "x"}, 409) // nothing pending

	out := post(mz, "/transfer", map[string]any{"to_unit": "330782-scjg", "reason": "属市场监管职责"}, 200)
	if out["unit"].(map[string]any)["id"] != "330782-scjg" {
		t.Fatalf("after transfer: %v", out)
	}
	// The sender no longer sees it; the receiver must accept or return before acting.
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + n, token: mz}), 404)
	post(scjg, "/transitions", map[string]any{"action": "accept", "reason": "x"}, 409)
	post(scjg, "/transfer", map[string]any{"to_unit": "330782-jw", "reason": "x"}, 409)
	post(scjg, "/transfer/return", map[string]any{"reason": "仍属登记管理机关职责"}, 200)
	// Second round between the same two units: the second return goes to their common parent.
	post(mz, "/transfer", map[string]any{"to_unit": "330782-scjg", "reason": "再次转办"}, 200)
	out = post(scjg, "/transfer/return", map[string]any{"reason": "再次退回"}, 200)
	if out["unit"].(map[string]any)["id"] != "330782-jw" {
		t.Fatalf("after the second return: %v", out)
	}
	// The common parent owns it at once (no transfer pending) and can act on it.
	w := post(jw, "/transitions", map[string]any{"action": "accept", "reason": "由纪委监委统筹处理"}, 200)
	if w["status"] != "accepted" {
		t.Errorf("status %v", w["status"])
	}
	// The routing record shows every hand-over.
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	r := do(t, req{method: "GET", path: "/v1/routing/cases/" + n, token: admin})
	var rv routingView
	r.json(t, &rv)
	if len(rv.EarlierDecisions) != 4 || rv.Decision.UnitID != "330782-jw" {
		t.Errorf("routing record: %s", r.Body)
	}
	// Accepting a transfer.
	g := fileReport(t, anonymousReport())
	n = g.CaseNumber
	post(mz, "/transfer", map[string]any{"to_unit": "330782-scjg", "reason": "x"}, 200)
	out = post(scjg, "/transfer/accept", map[string]any{"reason": "接收"}, 200)
	if wf := out["workflow"].(map[string]any); wf["transfer"] != nil || len(wf["allowed_actions"].([]any)) == 0 {
		t.Errorf("after accepting: %v", out)
	}
}

func TestNotes(t *testing.T) {
	f := fileReport(t, anonymousReport())
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	path := "/v1/cases/" + f.CaseNumber + "/messages"
	wantStatus(t, postJSON(t, path, staff, map[string]any{"body": "内部：先核实协会收费依据", "kind": "internal"}), 201)
	wantStatus(t, postJSON(t, path, staff, map[string]any{"body": "已受理，正在核实", "kind": "public_note"}), 201)
	wantStatus(t, postJSON(t, path, staff, map[string]any{"body": "请补充收费凭证"}), 201)
	for _, bad := range []any{map[string]any{"body": "x", "kind": "secret"}, map[string]any{"body": "x", "kind": 1}} {
		wantStatus(t, postJSON(t, path, staff, bad), 400)
	}
	// A reporter cannot post notes.
	wantStatus(t, postJSON(t, "/v1/followup/messages", f.FollowUpToken, map[string]any{"body": "x", "kind": "internal"}), 400)

	r := do(t, req{method: "GET", path: "/v1/followup/case", token: f.FollowUpToken})
	wantStatus(t, r, 200)
	if containsString(r.Body, "内部") || !containsString(r.Body, "正在核实") || !containsString(r.Body, "收费凭证") {
		t.Errorf("reporter view: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff})
	if !containsString(r.Body, "内部") || !containsString(r.Body, `"kind":"internal"`) {
		t.Errorf("staff view lacks the internal note: %s", r.Body)
	}
}

func TestQueueByDue(t *testing.T) {
	// A unit of its own, so the shared server's other cases stay out of the queue.
	report := func() map[string]any {
		b := realNameReport()
		b["category"] = "other"
		b["location"] = map[string]any{"division": "330881"} // 江山市: the 信访室 there
		return b
	}
	staff, _ := staffLogin(t, accounts.RoleStaff, "330881-xf", "")
	a, b := fileReport(t, report()), fileReport(t, report())
	// Accepting a stops its acceptance clock: it leaves the due queue.
	step(t, staff, a.CaseNumber, map[string]any{"action": "accept", "reason": "x"}, 200)
	r := do(t, req{method: "GET", path: "/v1/cases?sort=due", token: staff})
	wantStatus(t, r, 200)
	if containsString(r.Body, a.CaseNumber) || !containsString(r.Body, b.CaseNumber) {
		t.Errorf("due queue: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/cases?sort=due&due_before=2000-01-01", token: staff})
	wantStatus(t, r, 200)
	if containsString(r.Body, b.CaseNumber) {
		t.Errorf("due_before in the past still lists %s", b.CaseNumber)
	}
	// Pages by due date: one case a page, each page's cursor leads on.
	d := fileReport(t, report())
	var seen []string
	after := ""
	for range 5 {
		r = do(t, req{method: "GET", path: "/v1/cases?sort=due&limit=1&after=" + after, token: staff})
		wantStatus(t, r, 200)
		var page struct {
			Cases []struct {
				Number string `json:"case_number"`
				Due    string `json:"acceptance_due"`
			} `json:"cases"`
			Next string `json:"next_cursor"`
		}
		r.json(t, &page)
		for _, x := range page.Cases {
			seen = append(seen, x.Number)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if !slices.Contains(seen, b.CaseNumber) || !slices.Contains(seen, d.CaseNumber) || slices.Contains(seen, a.CaseNumber) {
		t.Errorf("paged due queue %v", seen)
	}
	for _, q := range []string{"sort=soon", "due_before=tomorrow"} {
		wantStatus(t, do(t, req{method: "GET", path: "/v1/cases?" + q, token: staff}), 400)
	}
}

func TestQueueFilters(t *testing.T) {
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	town := anonymousReport()
	town["location"] = map[string]any{"division": "330782001"}
	f := fileReport(t, town)
	g := fileReport(t, anonymousReport())
	r := do(t, req{method: "GET", path: "/v1/cases?division=330782001", token: staff})
	wantStatus(t, r, 200)
	if !containsString(r.Body, f.CaseNumber) || containsString(r.Body, g.CaseNumber) {
		t.Errorf("division filter: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/cases?category=arbitrary_fees&status=registered", token: staff})
	wantStatus(t, r, 200)
	if !containsString(r.Body, g.CaseNumber) {
		t.Errorf("category+status filter: %s", r.Body)
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases?division=110101", token: staff}), 400)
	// A liaison asking beyond their division gets nothing, not more.
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782001")
	r = do(t, req{method: "GET", path: "/v1/cases?division=330782", token: liaison})
	wantStatus(t, r, 200)
	r = do(t, req{method: "GET", path: "/v1/cases?division=330783", token: liaison})
	wantStatus(t, r, 200)
	if !containsString(r.Body, `"cases":[]`) {
		t.Errorf("liaison outside scope: %s", r.Body)
	}
}

// TestPurgedCase: once the retention period has run out, a closed case is purged:
// it cannot be reopened and its evidence is gone; the audit entry stays.
func TestPurgedCase(t *testing.T) {
	body, ct := multipartBody(t, [][2]string{{"report", string(mustJSON(t, anonymousReport()))}}, []filePart{{"file", "p.jpg", testJPEG(t)}})
	r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})
	wantStatus(t, r, 201)
	var f filed
	r.json(t, &f)
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	for _, s := range []map[string]any{
		{"action": "accept", "reason": "x"},
		{"action": "dispose", "disposition": "closed_no_action", "reason": "x"},
		{"action": "conclude", "reason": "x", "outcome": map[string]any{"result": "unsubstantiated", "name_cleared": false}},
		{"action": "close", "reason": "x"},
	} {
		step(t, staff, f.CaseNumber, s, 200)
	}
	p := &retention.Purger{Cases: srv.st.cases, Leases: srv.st.leases, Blobs: srv.blobs, Audit: srv.Audit, Period: 24 * time.Hour,
		Now: func() time.Time { return time.Now().Add(48 * time.Hour) }, Holder: "test-purger"}
	if _, err := p.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	step(t, staff, f.CaseNumber, map[string]any{"action": "reopen", "reason": "x"}, 409)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber + "/evidence/" + f.Evidence[0].ID, token: staff}), 404)
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	r = do(t, req{method: "GET", path: "/v1/admin/audit?case=" + f.CaseNumber, token: admin})
	if !containsString(r.Body, "case.retention.purge") {
		t.Errorf("no purge audit entry: %s", r.Body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInvisibleReasonsRefused: a reason of nothing one can see — white space, a
// zero-width space, a BOM, a word joiner, a soft hyphen, an ideographic space — is no
// reason for a step, a transfer or a disclosure request, and changes nothing.
func TestInvisibleReasonsRefused(t *testing.T) {
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	f := fileReport(t, realNameReport())
	for _, reason := range []string{"", "   ", "\u200b", "\ufeff", "\u2060 ", "\u00ad", "\u3000\u200d", "\t\u200c\n"} {
		step(t, staff, f.CaseNumber, map[string]any{"action": "accept", "reason": reason}, 400)
		wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/transfer", staff, map[string]any{"to_unit": "330782-scjg", "reason": reason}), 400)
		wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/disclosures", staff, map[string]any{"reason": reason}), 400)
	}
	cs, err := srv.Intake.Cases.CaseByNumber(t.Context(), f.CaseNumber)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Status != "registered" || len(cs.Transitions) != 0 || cs.Transfer != nil || cs.UnitID != "330782-mz" {
		t.Errorf("invisible reasons changed the case: %s, %d steps, transfer %+v, unit %s", cs.Status, len(cs.Transitions), cs.Transfer, cs.UnitID)
	}
	r := do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber + "/disclosures", token: staff})
	wantStatus(t, r, 200)
	if strings.Contains(string(r.Body), `"id"`) {
		t.Errorf("a disclosure request was filed: %s", r.Body)
	}
}
