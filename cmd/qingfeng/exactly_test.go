package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
)

// rawResponse is an exchange made from a goroutine: it is checked against the spec
// afterwards, on the test's goroutine.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func sendRaw(method, path, contentType string, body []byte, header map[string]string) rawResponse {
	hr, err := http.NewRequest(method, baseURL+path, bytes.NewReader(body))
	if err != nil {
		return rawResponse{err: err}
	}
	hr.Header.Set("Content-Type", contentType)
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return rawResponse{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// casesWithDescription lists the stored cases whose description is desc: a filing's
// own cases, whatever other tests file meanwhile.
func casesWithDescription(t *testing.T, desc string) []*intake.Case {
	t.Helper()
	var out []*intake.Case
	after := ""
	for {
		page, err := mongo.NewCaseStore(srv.db).ListCases(context.Background(), intake.CaseFilter{Limit: 200, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			if c.Description == desc {
				out = append(out, c)
			}
		}
		if len(page) < 200 {
			return out
		}
		after = page[len(page)-1].ID
	}
}

// TestIdempotencyRace: 32 identical filings with one Idempotency-Key at once, over
// real HTTP, repeated with a fresh key each round, as JSON and as multipart with a
// photo. Every round stores exactly one case; every 2xx answer carries its number
// and receipt; every other answer is 409 in_progress with Retry-After.
func TestIdempotencyRace(t *testing.T) {
	const parallel, rounds = 32, 10
	photo := testJPEG(t)
	for _, kind := range []string{"json", "multipart"} {
		t.Run(kind, func(t *testing.T) {
			for round := range rounds {
				desc := fmt.Sprintf("并发重试测试（%s 第%d轮 %d）：同一个幂等键同时提交了多次。", kind, round, time.Now().UnixNano())
				report := anonymousReport()
				report["description"] = desc
				var body []byte
				var ct string
				if kind == "json" {
					body, ct = jsonBytes(t, report), "application/json"
				} else {
					r, c := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, report))}}, []filePart{{"file", "p.jpg", photo}})
					body, _ = io.ReadAll(r)
					ct = c
				}
				key := map[string]string{"Idempotency-Key": fmt.Sprintf("race-%s-%d-%d", kind, round, time.Now().UnixNano())}
				results := make([]rawResponse, parallel)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range results {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						results[i] = sendRaw("POST", "/v1/reports", ct, body, key)
					}()
				}
				close(start)
				wg.Wait()

				var (
					created, replayed, inProgress int
					number, receipt               string
				)
				for _, r := range results {
					if r.err != nil {
						t.Fatal(r.err)
					}
					loadSpec(t).CheckResponse(t, "POST", "/v1/reports", r.status, r.header.Get("Content-Type"), r.body)
					switch r.status {
					case 201, 200:
						if r.status == 201 {
							created++
						} else {
							replayed++
						}
						var f filed
						if err := json.Unmarshal(r.body, &f); err != nil {
							t.Fatal(err)
						}
						if number == "" {
							number, receipt = f.CaseNumber, f.ReceiptCode
						}
						if f.CaseNumber != number || f.ReceiptCode != receipt {
							t.Errorf("round %d: answers disagree: %s/%s and %s/%s", round, number, receipt, f.CaseNumber, f.ReceiptCode)
						}
					case 409:
						inProgress++
						if !strings.Contains(string(r.body), `"in_progress"`) || r.header.Get("Retry-After") == "" {
							t.Errorf("round %d: 409 without in_progress and Retry-After: %s", round, r.body)
						}
					default:
						t.Errorf("round %d: status %d: %s", round, r.status, r.body)
					}
				}
				if created != 1 {
					t.Errorf("round %d: %d answers 201, want exactly 1 (%d replays, %d in progress)", round, created, replayed, inProgress)
				}
				stored := casesWithDescription(t, desc)
				if len(stored) != 1 {
					t.Fatalf("round %d: %d cases stored, want 1", round, len(stored))
				}
				if stored[0].Number != number {
					t.Errorf("round %d: stored %s, answered %s", round, stored[0].Number, number)
				}
				if kind == "multipart" && len(stored[0].Evidence) != 1 {
					t.Errorf("round %d: %d evidence files, want 1", round, len(stored[0].Evidence))
				}
				// Once settled, a retry is a replay.
				again := sendRaw("POST", "/v1/reports", ct, body, key)
				if again.status != 200 || !strings.Contains(string(again.body), number) {
					t.Errorf("round %d: retry after the race: %d %s", round, again.status, again.body)
				}
			}
		})
	}
}
