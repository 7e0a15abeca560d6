package intake

import (
	"strings"
	"testing"
	"time"
)

func TestNormalizeMobile(t *testing.T) {
	valid := map[string]string{
		"13800138000":       "13800138000",
		"19912345678":       "19912345678",
		"138 0013 8000":     "13800138000",
		"138-0013-8000":     "13800138000",
		" 13800138000 ":     "13800138000",
		"+8613800138000":    "13800138000",
		"+86 138 0013 8000": "13800138000",
		"+86-138-0013-8000": "13800138000",
		"8613800138000":     "13800138000",
		"86 13800138000":    "13800138000",
		"0086 13800138000":  "13800138000",
		"１３８００１３８０００":       "13800138000", // full-width digits from a Chinese input method
		"＋８６　１３８－００１３－８０００": "13800138000",
	}
	for in, want := range valid {
		got, ok := NormalizeMobile(in)
		if !ok || got != want {
			t.Errorf("NormalizeMobile(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"",
		"1380013800",       // 10 digits
		"138001380001",     // 12 digits
		"12800138000",      // 12x is not a mobile prefix
		"10800138000",      // nor 10x
		"23800138000",      // must start with 1
		"057912345678",     // a landline with its area code
		"0579-12345678",    // the same, dashed
		"+85291234567",     // Hong Kong
		"+1 415 555 0100",  // elsewhere
		"+",                // nothing
		"138+00138000",     // a plus inside
		"(+86)13800138000", // parentheses are not accepted
		"138.0013.8000",
		"1380013800O", // letter O for zero
		"8612800138000",
		"+86 12800138000",
		"861380013800",     // 86 and 10 digits
		"8513800138000",    // 13 digits, but not 86 in front
		"+44 13800138000",  // another country's code in front of a mainland-looking number
		"008613800138000X", // a trailing letter
	} {
		if got, ok := NormalizeMobile(in); ok {
			t.Errorf("NormalizeMobile(%q) = %q, want not ok", in, got)
		}
	}
}

// withCheck completes 17 digits with their GB 11643 check character. It is written from the
// standard's formula, (12 − Σ mod 11) mod 11 with 10 as X, rather than the lookup string the
// code uses, so the two check each other.
func withCheck(first17 string) string {
	w := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, c := range first17 {
		sum += int(c-'0') * w[i]
	}
	switch v := (12 - sum%11) % 11; v {
	case 10:
		return first17 + "X"
	default:
		return first17 + string(rune('0'+v))
	}
}

func TestValidResidentID(t *testing.T) {
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC) // 18:00 in China
	valid := []string{
		"11010519491231002X", // the example in GB 11643-1999 (北京市朝阳区)
		"11010519491231002x", // lowercase x
		withCheck("33078219900307123"),
		withCheck("33010220000229004"), // leap day
		withCheck("33010219000101001"), // the earliest year allowed
		withCheck("33010220260314001"), // born today in China
		withCheck("65010119850615002"),
		withCheck("81000019900101001"), // Hong Kong resident's residence permit
		withCheck("83000019900101001"), // Taiwan resident's residence permit
	}
	for _, s := range valid {
		if !validResidentIDAt(s, now) {
			t.Errorf("%s: want valid", s)
		}
	}
	// Every invalid one but the "bad check" rows carries a right check character, so it
	// fails for the reason named.
	invalid := map[string]string{
		"bad check":     "110105194912310021",
		"bad check 2":   "440524188001010015",
		"X in the body": "1101051949123100X2",
		"future date":   withCheck("33010220260315001"), // tomorrow in China
		"Feb 30":        withCheck("33010220230230001"),
		"1900 not leap": withCheck("33010219000229001"),
		"month 13":      withCheck("33010219901301001"),
		"day 00":        withCheck("33010219900100001"),
		"year 1899":     withCheck("33010218991231001"),
		// The standard's other example (广东省汕头市潮阳县) has a right check character but
		// was born in 1880: before 1900, so no living reporter can have it.
		"born 1880":            "440524188001010014",
		"province 10":          withCheck("10010519491231002"),
		"province 19":          withCheck("19010519491231002"),
		"province 00":          withCheck("00010519491231002"),
		"province 99":          withCheck("99010519491231002"),
		"permanent residence":  withCheck("93315619900101001"),
		"old 15-digit":         "110105491231002",
		"17 chars":             "11010519491231002",
		"19 chars":             "11010519491231002X0",
		"empty":                "",
		"leading space":        " 11010519491231002X",
		"full-width":           "１１０１０５１９４９１２３１００２Ｘ",
		"check char Y":         "11010519491231002Y",
		"letter in birth date": "1101051949I231002X",
	}
	for name, s := range invalid {
		if validResidentIDAt(s, now) {
			t.Errorf("%s: %q accepted", name, s)
		}
	}
}

// TestValidResidentIDCheckCatchesSubstitutions changes each of the first 17 digits of a
// valid number to every other digit: the mod-11 check (weights all units mod 11) must catch
// each single change.
func TestValidResidentIDCheckCatchesSubstitutions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := "11010519491231002X"
	for pos := 0; pos < 17; pos++ {
		for d := byte('0'); d <= '9'; d++ {
			if d == base[pos] {
				continue
			}
			s := base[:pos] + string(d) + base[pos+1:]
			if validResidentIDAt(s, now) {
				t.Errorf("%s (position %d changed) accepted", s, pos+1)
			}
		}
	}
}

func TestValidResidentIDUsesTodayInChina(t *testing.T) {
	id := withCheck("33010220260314001") // born 2026-03-14
	// 2026-03-13 16:30 UTC is already 00:30 on the 14th in China.
	if !validResidentIDAt(id, time.Date(2026, 3, 13, 16, 30, 0, 0, time.UTC)) {
		t.Error("born today in China, rejected as future")
	}
	if validResidentIDAt(id, time.Date(2026, 3, 13, 15, 30, 0, 0, time.UTC)) {
		t.Error("born tomorrow in China, accepted")
	}
	// The exported function uses the real clock; a date of birth far in the past is fine.
	if !ValidResidentID("11010519491231002X") || ValidResidentID(withCheck("33010229991231001")) {
		t.Error("ValidResidentID disagrees with validResidentIDAt")
	}
	if !strings.HasSuffix(withCheck("11010519491231002"), "X") {
		t.Error("test helper withCheck is wrong")
	}
}
