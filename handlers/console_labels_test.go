package handlers

import (
	"os"
	"regexp"
	"strings"
	"testing"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/web"
)

// TestConsoleFormErrorsLabels: the error summary names a field in Chinese, and never
// by the machine name of a field it has no label for (the liaison's goods form said
// "goods.quantity").
func TestConsoleFormErrorsLabels(t *testing.T) {
	var f web.Form
	consoleFormErrors(&f, qingfeng.Invalid(map[string]qingfeng.FieldError{
		"goods.quantity": {Code: "invalid", Message: "数量须为整数"},
		"some.new_field": {Code: "invalid", Message: "有误"},
	}))
	labels := map[string]bool{}
	for _, e := range f.Summary {
		labels[e.Label] = true
	}
	if !labels["数量"] || labels["some.new_field"] || labels["goods.quantity"] {
		t.Errorf("summary labels %v", labels)
	}
}

// TestDecisionWordsCoverSpec: every reason the API may give for passing a candidate
// over, and every fallback reason, has words on the case and explain pages (the
// possible_recusal candidates were shown as "：…" with no reason).
func TestDecisionWordsCoverSpec(t *testing.T) {
	spec, err := os.ReadFile("../api-spec/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		first  string
		labels map[string]string
	}{{"recusal", excludedLabels}, {"no_rule", fallbackLabels}} {
		m := regexp.MustCompile(`enum: \[(` + tc.first + `, [^\]]*)\]`).FindSubmatch(spec)
		if m == nil {
			t.Fatalf("no enum starting with %s in the spec", tc.first)
		}
		for _, v := range strings.Split(string(m[1]), ", ") {
			if tc.labels[v] == "" {
				t.Errorf("no words for %s", v)
			}
		}
	}
}
