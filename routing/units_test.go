package routing

import "testing"

func TestReference(t *testing.T) {
	if c, ok := (Reference{}).ValidDivision("330782001"); !ok || c != "330782" {
		t.Errorf("township: %q %v", c, ok)
	}
	if _, ok := (Reference{}).ValidDivision("110101"); ok {
		t.Error("Beijing accepted")
	}
	if n, ok, valid := (Reference{}).CheckCreditCode(" 53330000501874064b "); !ok || !valid || n != "53330000501874064B" {
		t.Errorf("good code: %q %v %v", n, ok, valid)
	}
	if _, ok, valid := (Reference{}).CheckCreditCode("53330000501874064C"); !ok || valid {
		t.Errorf("check failure must be well-formed but invalid: %v %v", ok, valid)
	}
	if _, ok, _ := (Reference{}).CheckCreditCode("5333000050187406"); ok {
		t.Error("short code accepted")
	}
}
