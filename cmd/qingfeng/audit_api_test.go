package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
)

func getAPI(t *testing.T, path, token string) response {
	t.Helper()
	return do(t, req{method: "GET", path: path, token: token})
}

func TestAuditAPI(t *testing.T) {
	ctx := context.Background()
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	const cs = "QF-330782-2026-777777"
	for i := range 5 {
		if err := srv.Audit.Record(ctx, "u-t", "staff", "case.read", cs, map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}

	wantStatus(t, getAPI(t, "/v1/admin/audit/verify", staff), 403)
	wantStatus(t, getAPI(t, "/v1/admin/audit", staff), 403)
	wantStatus(t, getAPI(t, "/v1/admin/audit/verify", ""), 401)

	var v struct {
		Entries     int64 `json:"entries"`
		OK          bool  `json:"ok"`
		FirstBroken *struct {
			Seq    int64  `json:"seq"`
			Reason string `json:"reason"`
		} `json:"first_broken"`
	}
	r := getAPI(t, "/v1/admin/audit/verify", admin)
	wantStatus(t, r, 200)
	r.json(t, &v)
	if !v.OK || v.Entries < 5 || v.FirstBroken != nil {
		t.Errorf("verify: %s", r.Body)
	}

	var list struct {
		Entries []struct {
			Seq    int64             `json:"seq"`
			At     string            `json:"at"`
			Case   string            `json:"case"`
			Detail map[string]string `json:"detail"`
		} `json:"entries"`
		NextAfter int64 `json:"next_after"`
	}
	r = getAPI(t, "/v1/admin/audit?case="+cs+"&limit=3", admin)
	wantStatus(t, r, 200)
	r.json(t, &list)
	if len(list.Entries) != 3 || list.NextAfter != list.Entries[2].Seq || list.Entries[0].Detail["i"] != "0" {
		t.Fatalf("list: %s", r.Body)
	}
	r = getAPI(t, fmt.Sprintf("/v1/admin/audit?case=%s&after=%d", cs, list.NextAfter), admin)
	wantStatus(t, r, 200)
	list.Entries, list.NextAfter = nil, 0
	r.json(t, &list)
	if len(list.Entries) != 3 || list.NextAfter != 0 { // 2 reads + the audit.list of the first page
		t.Errorf("page 2: %s", r.Body)
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?after=-1", "?after=x", "?case=QF-1"} {
		wantStatus(t, getAPI(t, "/v1/admin/audit"+bad, admin), 400)
	}

	// Edit an entry in the database: verify names it.
	first, _ := srv.Audit.List(ctx, audit.Query{Case: cs, Limit: 1})
	rawExec(t, dataDir, `UPDATE audit SET detail = json_set(detail, '$.i', '9') WHERE seq = ?`, first[0].Seq)
	r = getAPI(t, "/v1/admin/audit/verify", admin)
	wantStatus(t, r, 200)
	v.FirstBroken = nil
	r.json(t, &v)
	if v.OK || v.FirstBroken == nil || v.FirstBroken.Seq != first[0].Seq || v.FirstBroken.Reason != audit.ReasonHash {
		t.Errorf("after tampering: %s", r.Body)
	}
	// Put it back for the other tests.
	rawExec(t, dataDir, `UPDATE audit SET detail = json_set(detail, '$.i', '0') WHERE seq = ?`, first[0].Seq)
}

// TestAuditedActions: filing a case, reading it, downloading evidence, a workflow step and a
// transfer each leave an entry naming who did it, and the chain verifies.
func TestAuditedActions(t *testing.T) {
	f := fileReport(t, anonymousReport())
	staff, user := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff}), 200)
	wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/transitions", staff, map[string]any{"action": "accept", "reason": "受理"}), 200)
	wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/transfer", staff, map[string]any{"to_unit": "330782-scjg", "reason": "转办"}), 200)
	r := do(t, req{method: "GET", path: "/v1/admin/audit?case=" + f.CaseNumber, token: admin})
	wantStatus(t, r, 200)
	var list struct {
		Entries []struct {
			Actor  string `json:"actor"`
			Action string `json:"action"`
		} `json:"entries"`
	}
	r.json(t, &list)
	var got []string
	for i, e := range list.Entries {
		if want := user.ID; i > 0 && e.Actor != want || i == 0 && e.Actor != audit.ActorReporter {
			t.Errorf("entry %d (%s) by %s", i, e.Action, e.Actor)
		}
		got = append(got, e.Action)
	}
	if fmt.Sprint(got) != "[case.filed case.read case.transition case.transfer.transfer]" {
		t.Errorf("audited actions %v", got)
	}
	r = do(t, req{method: "GET", path: "/v1/admin/audit/verify", token: admin})
	wantStatus(t, r, 200)
	if !containsString(r.Body, `"ok":true`) {
		t.Errorf("verify: %s", r.Body)
	}
}
