package handlers

import (
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
