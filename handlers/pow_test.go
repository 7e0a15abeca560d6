package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qingfeng-zj/qingfeng/internal/apitest"
	"github.com/qingfeng-zj/qingfeng/pow"
)

// TestPoWRequired: above the normal failure rate a look-up without a solution, with a
// wrong one or with a spent one gets 428 pow_required carrying a fresh challenge and a
// plain message; a solved challenge gets past the check once. Every response is checked
// against the document.
func TestPoWRequired(t *testing.T) {
	spec := apitest.Load(t, specPath)
	g, err := pow.New(bytes.Repeat([]byte{1}, 32), pow.Config{Levels: pow.Table(1)})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), PoW: g})
	send := func(method, path, body string, hdr map[string]string) (int, http428) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := s.App.Test(req, fiber.TestConfig{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		p, _, _ := strings.Cut(path, "?")
		spec.CheckResponse(t, method, p, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		var out http428
		_ = json.Unmarshal(b, &out)
		if resp.StatusCode == 428 && resp.Header.Get("Retry-After") == "" {
			t.Error("428 without Retry-After")
		}
		return resp.StatusCode, out
	}
	const badBody = `{"receipt_code":1}` // refused after the proof-of-work check, before any store

	if st, _ := send("POST", "/v1/followup/session", badBody, nil); st != 400 {
		t.Fatalf("difficulty 0: status %d, want 400 (no proof needed)", st)
	}
	g.Record(pow.Receipt)
	st, e := send("POST", "/v1/followup/session", badBody, nil)
	if st != 428 || e.Error.Code != "pow_required" || e.Error.PoW == nil || e.Error.PoW.Difficulty != 12 || !strings.Contains(e.Error.Message, "JavaScript") {
		t.Fatalf("no solution: %d %+v", st, e)
	}
	ch := e.Error.PoW
	if st, _ := send("POST", "/v1/followup/session", badBody, map[string]string{HeaderPoW: ch.Challenge + ":0"}); st != 428 {
		t.Errorf("unsolved: status %d", st)
	}
	sol := pow.Solve(ch.Challenge, ch.Difficulty)
	g.Record(pow.DonorCheck)
	if st, _ := send("GET", "/v1/public/orgs/53330000501874064B/donations/check?receipt=1&amount_fen=1", "", map[string]string{HeaderPoW: sol}); st != 428 {
		t.Errorf("a receipt challenge for the donor check: status %d", st)
	}
	if st, _ := send("POST", "/v1/followup/session", badBody, map[string]string{HeaderPoW: sol}); st != 400 {
		t.Errorf("solved: status %d, want 400 from the body check", st)
	}
	if st, _ := send("POST", "/v1/followup/session", badBody, map[string]string{HeaderPoW: sol}); st != 428 {
		t.Errorf("replayed: status %d", st)
	}
	_, e = send("POST", "/v1/followup/session", badBody, map[string]string{"Accept-Language": "en"})
	if !strings.Contains(e.Error.Message, "proof of work") {
		t.Errorf("English message: %q", e.Error.Message)
	}

	// Anonymous filing: every filing counts, and above the normal rate each one pays.
	if st, _ := send("POST", "/v1/reports", `{"unknown":1}`, nil); st != 400 {
		t.Errorf("filing at difficulty 0: status %d, want 400 (no proof needed)", st)
	}
	st, e = send("POST", "/v1/reports", `{"unknown":1}`, nil)
	if st != 428 || e.Error.PoW == nil || e.Error.PoW.Purpose != "report" {
		t.Fatalf("filing above the normal rate: %d %+v", st, e)
	}
	if st, _ := send("POST", "/v1/reports", `{"unknown":1}`, map[string]string{HeaderPoW: pow.Solve(e.Error.PoW.Challenge, e.Error.PoW.Difficulty)}); st != 400 {
		t.Errorf("solved filing: status %d, want 400 from the body check", st)
	}

	st, _ = send("GET", "/v1/pow/challenge?purpose=receipt", "", nil)
	if st != 200 {
		t.Errorf("challenge: %d", st)
	}
	for _, bad := range []string{"", "Receipt", "receipt%20", "login"} {
		if st, _ := send("GET", "/v1/pow/challenge?purpose="+bad, "", nil); st != 400 {
			t.Errorf("purpose %q: status %d", bad, st)
		}
	}
}

type http428 struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		PoW     *powChallengeView `json:"pow"`
	} `json:"error"`
}
