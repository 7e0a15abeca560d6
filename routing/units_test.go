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

func TestOutsideZhejiang(t *testing.T) {
	for code, want := range map[string]bool{
		"310101": true, "110000": true, "320583": true, "650102": true, "810000": true, "310101001": true,
		"330782": false, "330799": false, // Zhejiang: known or refused, never "outside"
		"999999": false, "000000": false, "310001": false, "31010": false, "3101010": false, "310101000": false,
		"31010a": false, "３１０１０１": false, "": false,
	} {
		if got := OutsideZhejiang(code); got != want {
			t.Errorf("OutsideZhejiang(%q) = %v, want %v", code, got, want)
		}
	}
	if holder, ok := (Reference{}).OutsideZhejiang("310101"); !ok || holder != ProvinceCode {
		t.Errorf("Reference: %q %v", holder, ok)
	}
}
