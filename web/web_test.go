package web

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
)

// TestPagesRender renders every page from an empty view model and from one holding
// hostile text: each renders, and what a reporter or an organization typed is escaped.
func TestPagesRender(t *testing.T) {
	p, err := Parse()
	if err != nil {
		t.Fatal(err)
	}
	evil := `<script>alert(1)</script>" onfocus="x`
	form := Form{CSRF: evil, Key: evil, Values: map[string]string{"description": evil, "subject.organization.name": evil, "body": evil, "receipt": evil},
		Errors: map[string]string{"description": evil}, Summary: []FieldError{{ID: "f-description", Label: "举报内容", Message: evil}}, Notice: evil}
	pages := map[string][2]any{
		"home":           {struct{ Page }{}, struct{ Page }{Page{Title: evil}}},
		"about":          {struct{ Page }{}, struct{ Page }{Page{Title: evil}}},
		"report":         {ReportPage{}, ReportPage{Form: form, Categories: []Option{{Value: "other", Label: evil, Hint: evil, Selected: true}}, FilesLost: true}},
		"receipt":        {ReceiptPage{}, ReceiptPage{ReceiptCode: evil, Unit: evil, Warnings: []string{evil}, AcceptanceDue: evil}},
		"followup_login": {FollowUpLoginPage{}, FollowUpLoginPage{Form: form, PoW: PoW{Challenge: evil, Difficulty: 12}}},
		"followup_case":  {FollowUpCasePage{}, FollowUpCasePage{Reply: form, Upload: form, Messages: []Message{{From: evil, Body: evil}}, Notes: []Message{{Body: evil}}, Outcome: []string{evil}}},
		"org": {OrgPage{}, OrgPage{Name: evil, CreditCode: evil, Check: form, Checked: evil, Statements: []Statement{{Month: evil, ID: "m-2026-10",
			LargeFlows: []Flow{{Donor: evil, Project: evil}}, Chart: Chart{Width: 360, Height: 100, Label: evil, Bars: []Bar{{Label: evil, Value: evil, Class: "bar-income"}}}}}}},
		"notfound": {NotFoundPage{}, NotFoundPage{Heading: evil, Text: evil}},
		"error":    {ErrorPage{}, ErrorPage{Heading: evil, Text: evil}},
	}
	if len(pages) != len(pageNames) {
		t.Fatalf("%d pages tested, %d exist", len(pages), len(pageNames))
	}
	for name, data := range pages {
		for i, d := range data {
			var b bytes.Buffer
			if err := p.Render(&b, name, d); err != nil {
				t.Fatalf("%s (%d): %v", name, i, err)
			}
			out := b.String()
			if !strings.HasPrefix(out, "<!doctype html>") || !strings.Contains(out, `<html lang="zh-CN">`) {
				t.Errorf("%s: not a full Chinese page", name)
			}
			if strings.Contains(out, "<script>alert") || strings.Contains(out, `" onfocus="`) {
				t.Errorf("%s renders typed text unescaped", name)
			}
		}
	}
	if err := p.Render(&bytes.Buffer{}, "nope", nil); err == nil {
		t.Error("an unknown page rendered")
	}
}

// TestStaticFiles: the stylesheet and the script are embedded and refer to nothing
// outside this origin.
func TestStaticFiles(t *testing.T) {
	for _, name := range []string{"site.css", "site.js"} {
		b, err := fs.ReadFile(Static(), name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("://")) || bytes.Contains(b, []byte("@import")) {
			t.Errorf("%s names another origin", name)
		}
	}
}
