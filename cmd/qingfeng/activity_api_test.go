package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

// Reporter activity (issue 10): a reporter's message or evidence, on a case in any
// status, marks the case until staff of the owning unit read it.

type activityCase struct {
	CaseNumber         string `json:"case_number"`
	NewActivity        bool   `json:"new_activity"`
	ReporterActivityAt string `json:"reporter_activity_at"`
	Messages           []struct {
		From      string `json:"from"`
		Body      string `json:"body"`
		CreatedAt string `json:"created_at"`
	} `json:"messages"`
}

// queued pages through GET /v1/cases?new_activity=true (and extra query) and returns
// the listed case numbered number, or nil.
func queued(t *testing.T, token, number, extra string) *activityCase {
	t.Helper()
	after := ""
	for {
		q := url.Values{"new_activity": {"true"}, "limit": {"200"}}
		if after != "" {
			q.Set("after", after)
		}
		r := do(t, req{method: "GET", path: "/v1/cases?" + q.Encode() + extra, token: token})
		wantStatus(t, r, 200)
		var page struct {
			Cases      []activityCase `json:"cases"`
			NextCursor string         `json:"next_cursor"`
		}
		r.json(t, &page)
		for i, c := range page.Cases {
			if !c.NewActivity {
				t.Fatalf("the new_activity filter listed %s without new activity", c.CaseNumber)
			}
			if c.CaseNumber == number {
				return &page.Cases[i]
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		after = page.NextCursor
	}
}

func wantQueued(t *testing.T, token, number string, want bool) {
	t.Helper()
	if got := queued(t, token, number, "") != nil; got != want {
		t.Fatalf("%s in the new-activity queue: %v, want %v", number, got, want)
	}
}

func readCase(t *testing.T, token, number string) activityCase {
	t.Helper()
	r := do(t, req{method: "GET", path: "/v1/cases/" + number, token: token})
	wantStatus(t, r, 200)
	var c activityCase
	r.json(t, &c)
	return c
}

func newActivityCount(t *testing.T, token string) int64 {
	t.Helper()
	r := do(t, req{method: "GET", path: "/v1/cases/counts", token: token})
	wantStatus(t, r, 200)
	var c struct {
		NewActivity *int64 `json:"new_activity"`
	}
	r.json(t, &c)
	if c.NewActivity == nil {
		t.Fatalf("counts without new_activity: %s", r.Body)
	}
	return *c.NewActivity
}

func reporterSays(t *testing.T, f filed, body string) string {
	t.Helper()
	r := postJSON(t, "/v1/followup/messages", f.FollowUpToken, map[string]string{"body": body})
	wantStatus(t, r, 201)
	var m struct {
		CreatedAt string `json:"created_at"`
	}
	r.json(t, &m)
	return m.CreatedAt
}

func uploadAs(t *testing.T, token, number string) {
	t.Helper()
	body, ct := multipartBody(t, nil, []filePart{{"file", "x.jpg", testJPEG(t)}})
	wantStatus(t, do(t, req{method: "POST", path: "/v1/reports/" + number + "/evidence", body: body, contentType: ct, token: token}), 201)
}

func TestReporterActivity(t *testing.T) {
	mz, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	other, _ := staffLogin(t, accounts.RoleStaff, "330326-mz", "")
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")

	t.Run("messages", func(t *testing.T) {
		f := fileReport(t, anonymousReport())
		n := f.CaseNumber
		wantQueued(t, mz, n, false) // a new case is in the queue as registered, not as activity
		before := newActivityCount(t, mz)

		at := reporterSays(t, f, "补充：收费时间是每年三月。")
		got := queued(t, mz, n, "")
		if got == nil || got.ReporterActivityAt != at {
			t.Fatalf("after a message: %+v, want reporter_activity_at %s", got, at)
		}
		if c := newActivityCount(t, mz); c != before+1 {
			t.Errorf("new_activity count %d, want %d", c, before+1)
		}
		// Nobody but the owning unit's staff clears it: another unit cannot even see the
		// case, an admin reads its routing record only.
		wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + n, token: other}), 404)
		wantQueued(t, other, n, false)
		wantStatus(t, do(t, req{method: "GET", path: "/v1/routing/cases/" + n, token: admin}), 200)
		wantQueued(t, mz, n, true)

		// The owning unit's read shows it and clears it.
		c := readCase(t, mz, n)
		if !c.NewActivity || c.ReporterActivityAt != at || len(c.Messages) != 1 || c.Messages[0].From != "reporter" {
			t.Fatalf("first read: %+v", c)
		}
		wantQueued(t, mz, n, false)
		if c := newActivityCount(t, mz); c != before {
			t.Errorf("new_activity count after the read %d, want %d", c, before)
		}
		if c := readCase(t, mz, n); c.NewActivity || c.ReporterActivityAt != at {
			t.Errorf("second read: %+v", c)
		}

		// Staff replying is not reporter activity; the reporter answering is.
		wantStatus(t, postJSON(t, "/v1/cases/"+n+"/messages", mz, map[string]string{"body": "请提供收费凭证"}), 201)
		wantStatus(t, postJSON(t, "/v1/cases/"+n+"/messages", mz, map[string]string{"body": "内部：待核", "kind": "internal"}), 201)
		wantQueued(t, mz, n, false)
		reporterSays(t, f, "凭证稍后上传。")
		wantQueued(t, mz, n, true)
		readCase(t, mz, n)
		wantQueued(t, mz, n, false)

		// A refused message changes nothing.
		wantStatus(t, postJSON(t, "/v1/followup/messages", f.FollowUpToken, map[string]string{"body": "  "}), 400)
		wantQueued(t, mz, n, false)
	})

	t.Run("evidence", func(t *testing.T) {
		f := fileReport(t, anonymousReport())
		n := f.CaseNumber
		uploadAs(t, mz, n)
		uploadAs(t, liaison, n)
		wantQueued(t, mz, n, false)
		// A refused upload changes nothing.
		body, ct := multipartBody(t, nil, []filePart{{"file", "x.exe", []byte("MZ\x90\x00 not evidence")}})
		r := do(t, req{method: "POST", path: "/v1/reports/" + n + "/evidence", body: body, contentType: ct, token: f.FollowUpToken})
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("unsupported file: %d %s", r.Status, r.Body)
		}
		wantQueued(t, mz, n, false)
		uploadAs(t, f.FollowUpToken, n)
		wantQueued(t, mz, n, true)
		if c := readCase(t, mz, n); !c.NewActivity || c.ReporterActivityAt == "" {
			t.Errorf("read after an upload: %+v", c)
		}
		wantQueued(t, mz, n, false)
	})

	t.Run("closed case", func(t *testing.T) {
		f := fileReport(t, anonymousReport())
		n := f.CaseNumber
		step(t, mz, n, map[string]any{"action": "accept", "reason": "受理"}, 200)
		step(t, mz, n, map[string]any{"action": "dispose", "disposition": "preliminary_verification", "reason": "初核"}, 200)
		step(t, mz, n, map[string]any{"action": "conclude", "reason": "不属实", "outcome": map[string]any{"result": "unsubstantiated"}}, 200)
		step(t, mz, n, map[string]any{"action": "close", "reason": "结案"}, 200)
		reporterSays(t, f, "结案后又发现新的收费。")
		if queued(t, mz, n, "&status=closed") == nil {
			t.Fatal("a message on a closed case is not in the closed cases' new-activity queue")
		}
		uploadAs(t, f.FollowUpToken, n)
		if c := readCase(t, mz, n); !c.NewActivity || len(c.Messages) != 1 {
			t.Errorf("closed case read: %+v", c)
		}
		wantQueued(t, mz, n, false)
	})

	t.Run("transferred case", func(t *testing.T) {
		f := fileReport(t, anonymousReport())
		n := f.CaseNumber
		scjg, _ := staffLogin(t, accounts.RoleStaff, "330782-scjg", "")
		reporterSays(t, f, "还有一件事。")
		wantStatus(t, postJSON(t, "/v1/cases/"+n+"/transfer", mz, map[string]any{"to_unit": "330782-scjg", "reason": "属市场监管职责"}), 200)
		// The receiving unit owns it now: the mark is in its queue, and its read clears it.
		wantQueued(t, mz, n, false)
		wantQueued(t, scjg, n, true)
		wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + n, token: mz}), 404)
		wantQueued(t, scjg, n, true)
		readCase(t, scjg, n)
		wantQueued(t, scjg, n, false)
	})

	t.Run("liaison read", func(t *testing.T) {
		r := do(t, req{method: "POST", path: "/v1/reports", body: bytes.NewReader(jsonBytes(t, anonymousReport())), contentType: "application/json", token: liaison})
		wantStatus(t, r, 201)
		var f filed
		r.json(t, &f)
		reporterSays(t, f, "我是来访群众，补充情况。")
		if c := readCase(t, liaison, f.CaseNumber); !c.NewActivity {
			t.Errorf("liaison's read: %+v", c)
		}
		wantQueued(t, mz, f.CaseNumber, true) // the liaison is not the unit
		readCase(t, mz, f.CaseNumber)
		wantQueued(t, mz, f.CaseNumber, false)
	})

	t.Run("bad input", func(t *testing.T) {
		for _, v := range []string{"yes", "TRUE", "1", "ｔｒｕｅ", "true\u200b", "true,false"} {
			r := do(t, req{method: "GET", path: "/v1/cases?new_activity=" + url.QueryEscape(v), token: mz})
			wantStatus(t, r, 400)
			var e struct {
				Error struct {
					Fields map[string]struct {
						Code string `json:"code"`
					} `json:"fields"`
				} `json:"error"`
			}
			r.json(t, &e)
			if e.Error.Fields["new_activity"].Code != "invalid_value" {
				t.Errorf("new_activity=%q: %s", v, r.Body)
			}
		}
		r := do(t, req{method: "GET", path: "/v1/cases?new_activity=false", token: mz})
		wantStatus(t, r, 200)
	})
}

// TestReporterActivityRace: the reporter sends 32 messages at once while staff of the
// owning unit read the case over and over. Every read that found new activity and
// cleared it was shown every message counted; after the last message the case is
// marked unless a read that showed all of them came after it; a read after the last
// message clears it; and another message marks it again.
func TestReporterActivityRace(t *testing.T) {
	const n = 32
	mz, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	for round := range 2 {
		f := fileReport(t, anonymousReport())
		type readResult struct {
			start, end time.Time
			shown      int
		}
		var (
			mu      sync.Mutex
			reads   []readResult
			lastMsg time.Time
			wg      sync.WaitGroup
			done    = make(chan struct{})
			readers sync.WaitGroup
		)
		for range 2 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					start := time.Now()
					r := do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: mz})
					var c activityCase
					if r.Status != 200 || json.Unmarshal(r.Body, &c) != nil {
						t.Errorf("read during the messages: %d %s", r.Status, r.Body)
						return
					}
					rr := readResult{start: start, end: time.Now(), shown: len(c.Messages)}
					mu.Lock()
					reads = append(reads, rr)
					mu.Unlock()
				}
			}()
		}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := postJSON(t, "/v1/followup/messages", f.FollowUpToken, map[string]string{"body": fmt.Sprintf("第%d条补充", i+1)})
				var m struct {
					CreatedAt time.Time `json:"created_at"`
				}
				if r.Status != 201 || json.Unmarshal(r.Body, &m) != nil {
					t.Errorf("message %d: %d %s", i, r.Status, r.Body)
					return
				}
				mu.Lock()
				if m.CreatedAt.After(lastMsg) {
					lastMsg = m.CreatedAt
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(done)
		readers.Wait()
		if t.Failed() {
			t.FailNow()
		}

		marked := queued(t, mz, f.CaseNumber, "") != nil
		if !marked {
			// Cleared: some read must have come after the last message (the server's
			// created_at, to the second on the wire) and shown all 32.
			ok := false
			for _, r := range reads {
				if r.shown == n && !r.end.Before(lastMsg) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("round %d: not marked after %d messages, and no read showed them all (%d reads)", round, n, len(reads))
			}
		}
		t.Logf("round %d: %d reads during the messages; marked at the end: %v", round, len(reads), marked)
		// A read now shows all and clears the mark.
		if c := readCase(t, mz, f.CaseNumber); len(c.Messages) != n || c.NewActivity != marked {
			t.Fatalf("round %d: final read shows %d messages, new_activity %v (queue said %v)", round, len(c.Messages), c.NewActivity, marked)
		}
		wantQueued(t, mz, f.CaseNumber, false)
		reporterSays(t, f, "还有")
		wantQueued(t, mz, f.CaseNumber, true)
	}
}
