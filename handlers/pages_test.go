package handlers

import (
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/web"
)

// TestPageWordsCoverEveryCode: every category has the seeds' examples and every status
// its words for the reporter, so that no page shows a bare code.
func TestPageWordsCoverEveryCode(t *testing.T) {
	for _, c := range intake.Categories {
		if web.CategoryExamples[string(c.Code)] == "" {
			t.Errorf("no examples for category %s", c.Code)
		}
	}
	for _, st := range []intake.Status{intake.StatusRegistered, intake.StatusAccepted, intake.StatusNotAccepted, intake.StatusDisposed,
		intake.StatusConcluded, intake.StatusFeedbackGiven, intake.StatusClosed, intake.StatusDuplicate} {
		if web.StatusText[string(st)] == "" {
			t.Errorf("no words for status %s", st)
		}
	}
	for _, r := range []string{"substantiated", "partly", "unsubstantiated"} {
		if web.OutcomeText[r] == "" {
			t.Errorf("no words for outcome %s", r)
		}
	}
}

// TestCSRFToken: a token is accepted for its form and binding only, and not once
// tampered with or expired.
func TestCSRFToken(t *testing.T) {
	s := routesOnlyServer()
	tok := s.csrfToken("report", "")
	_, mac, _ := strings.Cut(tok, ".")
	if err := s.checkCSRF(tok, "report", ""); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	for name, bad := range map[string][3]string{
		"other form":    {tok, "followup-login", ""},
		"other binding": {tok, "report", "abc"},
		"empty":         {"", "report", ""},
		"no dot":        {"123", "report", ""},
		"expired":       {"1." + s.csrfMAC("report", "", "1"), "report", ""},
		"later expiry":  {"99999999999." + mac, "report", ""},
		"other key":     {routesOnlyServer().csrfToken("report", ""), "report", ""},
	} {
		if err := s.checkCSRF(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestYuanText: fen as the page shows them.
func TestYuanText(t *testing.T) {
	for fen, want := range map[int64]string{0: "0 元", 5: "0.05 元", 100: "1 元", 123450: "1,234.50 元", 602005: "6,020.05 元",
		100000000: "1,000,000 元", -150000: "−1,500 元"} {
		if got := yuanText(fen); got != want {
			t.Errorf("yuanText(%d) = %q, want %q", fen, got, want)
		}
	}
}
