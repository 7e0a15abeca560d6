package routing

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

// aixin is 浙江省爱心事业基金会, a provincial foundation whose published code passes both checks.
const aixin = "53330000501874064B"

// makeCode completes a credit code from its first 16 characters with both check characters,
// for tests that need valid codes other than aixin.
func makeCode(first16 string) string {
	s := first16 + string(orgCodeCheckChar(first16[8:16]))
	return s + string(creditCheckChar(s))
}

func TestParseCreditCodeKnownGood(t *testing.T) {
	c, err := ParseCreditCode(aixin)
	if err != nil {
		t.Fatal(err)
	}
	want := CreditCode{
		Code: aixin, Department: '5', Type: '3', Division: "330000", OrgCode: "501874064",
		CheckValid: true, OrgCodeCheckValid: true,
	}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if !c.IsCivilAffairs() || c.OrgType() != "基金会" {
		t.Errorf("IsCivilAffairs %v, OrgType %q", c.IsCivilAffairs(), c.OrgType())
	}
	d, ok := c.RegisteringDivision()
	if !ok || d.Code != "330000" || d.Name != "浙江省" {
		t.Errorf("RegisteringDivision = %+v, %v", d, ok)
	}
}

func TestCheckCharacters(t *testing.T) {
	// Hand-computed GB 11714 check characters:
	//   50187406: 5·3+0·7+1·9+8·10+7·5+4·8+0·4+6·2 = 183; 183 mod 11 = 7; 11−7 = 4.
	//   D2143569 (the standard's example, D=13): 39+14+9+40+15+40+24+18 = 199;
	//     199 mod 11 = 1; 11−1 = 10 → X. A letter valued by the credit alphabet (D=13
	//     there too, but J, K, ... differ) would not test the mapping, hence:
	//   J0000000: J=19 in GB 11714 (18 in the credit alphabet): 19·3 = 57; 57 mod 11 = 2; 11−2 = 9.
	//   00000000: sum 0; 11−0 = 11 → 0.
	for body, want := range map[string]byte{"50187406": '4', "D2143569": 'X', "J0000000": '9', "00000000": '0'} {
		if got := orgCodeCheckChar(body); got != want {
			t.Errorf("orgCodeCheckChar(%s) = %c, want %c", body, got, want)
		}
	}
	// Char 18 of "00000000000000000": 31 − 0 = 31 → 0. Of "10000000000000000": 31 − 1 = 30 → Y.
	// Of "0000000000000000A" (10·28 = 280; 280 mod 31 = 1): 30 → Y as well.
	// Of "01000000000000000" (3): 28 → W.
	for first17, want := range map[string]byte{
		"00000000000000000": '0', "10000000000000000": 'Y', "0000000000000000A": 'Y', "01000000000000000": 'W',
	} {
		if got := creditCheckChar(first17); got != want {
			t.Errorf("creditCheckChar(%s) = %c, want %c", first17, got, want)
		}
	}
}

// TestCheckDetectsEverySubstitution changes each position of a valid code to every other
// character of the alphabet. The mod-31 check catches every single substitution (its weights
// are units mod 31 and values differ by less than 31), so each change must either be
// rejected as malformed (a letter in the division digits) or parse with CheckValid false.
func TestCheckDetectsEverySubstitution(t *testing.T) {
	for pos := 0; pos < 18; pos++ {
		for i := 0; i < len(creditAlphabet); i++ {
			ch := creditAlphabet[i]
			if ch == aixin[pos] {
				continue
			}
			mutated := aixin[:pos] + string(ch) + aixin[pos+1:]
			c, err := ParseCreditCode(mutated)
			if pos >= 2 && pos < 8 && (ch < '0' || ch > '9') {
				if err == nil {
					t.Errorf("%s: a letter in the division code was accepted", mutated)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", mutated, err)
				continue
			}
			if c.CheckValid {
				t.Errorf("position %d changed to %c: %s still passes the check", pos+1, ch, mutated)
			}
			switch {
			case pos < 8 || pos == 17:
				// Outside the organization code its own check is unaffected.
				if !c.OrgCodeCheckValid {
					t.Errorf("%s: organization code check failed though chars 9–17 are unchanged", mutated)
				}
			case pos == 16:
				// The organization code's check character has exactly one right value.
				if c.OrgCodeCheckValid {
					t.Errorf("%s: wrong organization code check character passes", mutated)
				}
			}
		}
	}
}

// TestCheckDetectsAdjacentTranspositions swaps neighbouring characters among the first 17:
// with weights w and 3w the sum moves by 2w(a−b), never 0 mod 31.
func TestCheckDetectsAdjacentTranspositions(t *testing.T) {
	for pos := 0; pos < 16; pos++ {
		b := []byte(aixin)
		if b[pos] == b[pos+1] {
			continue
		}
		b[pos], b[pos+1] = b[pos+1], b[pos]
		c, err := ParseCreditCode(string(b))
		if err != nil {
			t.Errorf("%s: %v", b, err)
			continue
		}
		if c.CheckValid {
			t.Errorf("swapping positions %d and %d (%s) passes the check", pos+1, pos+2, b)
		}
	}
}

func TestCheckValidCoversTheOrganizationCode(t *testing.T) {
	// Char 18 is right for the 17 characters before it, but char 17 is not the
	// organization code's check character (4): CheckValid must still be false.
	first17 := "53330000501874065"
	code := first17 + string(creditCheckChar(first17))
	c, err := ParseCreditCode(code)
	if err != nil {
		t.Fatal(err)
	}
	if c.CheckValid || c.OrgCodeCheckValid {
		t.Errorf("%s: CheckValid %v, OrgCodeCheckValid %v; want both false", code, c.CheckValid, c.OrgCodeCheckValid)
	}
}

func TestParseCreditCodeNormalizes(t *testing.T) {
	for _, in := range []string{
		"53330000501874064b",
		"  53330000501874064B\n",
		"\t53330000501874064b ",
		"５３３３００００５０１８７４０６４Ｂ",   // full width, from a Chinese input method
		"　53330000501874064ｂ　", // ideographic spaces
	} {
		c, err := ParseCreditCode(in)
		if err != nil {
			t.Errorf("ParseCreditCode(%q): %v", in, err)
			continue
		}
		if c.Code != aixin || !c.CheckValid {
			t.Errorf("ParseCreditCode(%q) = %+v", in, c)
		}
	}
}

func TestParseCreditCodeMalformed(t *testing.T) {
	tests := map[string]string{
		"empty":            "",
		"17 chars":         aixin[:17],
		"19 chars":         aixin + "0",
		"inner space":      "533300005018 74064B",
		"dash":             "53330000-501874064",
		"letter I":         "53330000501874I64B",
		"letter O":         "53330000501874O64B",
		"letter S":         "53330000501874S64B",
		"letter V":         "53330000501874V64B",
		"letter Z":         "53330000501874Z64B",
		"lowercase i":      "533300005018740i4B",
		"Chinese":          "5333000050187406中B",
		"invalid UTF-8":    "5333000050187406\xffB",
		"division letters": "533A0000501874064B",
		"division last":    "5333000A501874064B",
		"punctuation":      "53330000501874064*",
	}
	for name, in := range tests {
		c, err := ParseCreditCode(in)
		if err == nil {
			t.Errorf("%s: ParseCreditCode(%q) = %+v, want an error", name, in, c)
			continue
		}
		var qe *qingfeng.Error
		if !errors.As(err, &qe) || qe.Code != qingfeng.EINVALID {
			t.Errorf("%s: error %v is not an EINVALID *qingfeng.Error", name, err)
			continue
		}
		if !strings.Contains(qe.Message, "统一社会信用代码") || qe.English == "" {
			t.Errorf("%s: messages %q / %q", name, qe.Message, qe.English)
		}
		if c != (CreditCode{}) {
			t.Errorf("%s: a non-zero CreditCode returned with an error: %+v", name, c)
		}
	}
}

func TestParseCreditCodeMessagesNamePosition(t *testing.T) {
	_, err := ParseCreditCode("53330000501874S64B")
	if err == nil || !strings.Contains(err.(*qingfeng.Error).Message, "第15位“S”") {
		t.Errorf("err = %v, want it to name position 15 and the character", err)
	}
	_, err = ParseCreditCode(aixin[:17])
	if err == nil || !strings.Contains(err.(*qingfeng.Error).Message, "现为17位") {
		t.Errorf("err = %v, want it to say 17", err)
	}
}

func TestOrgType(t *testing.T) {
	tests := []struct {
		first16 string
		civil   bool
		orgType string
	}{
		{"5133078250000000", true, "社会团体"},
		{"5233078250000000", true, "民办非企业单位/社会服务机构"},
		{"5333078250000000", true, "基金会"},
		{"5933078250000000", true, "其他"},
		{"5433078250000000", true, ""},  // not a 民政 type
		{"9133078250000000", false, ""}, // 工商: an enterprise
		{"1233078250000000", false, ""}, // 机构编制: a public institution
	}
	for _, tt := range tests {
		c, err := ParseCreditCode(makeCode(tt.first16))
		if err != nil {
			t.Fatal(err)
		}
		if !c.CheckValid {
			t.Errorf("%s: generated code fails its check", c.Code)
		}
		if c.IsCivilAffairs() != tt.civil || c.OrgType() != tt.orgType {
			t.Errorf("%s: IsCivilAffairs %v, OrgType %q; want %v, %q", c.Code, c.IsCivilAffairs(), c.OrgType(), tt.civil, tt.orgType)
		}
	}
}

func TestRegisteringDivision(t *testing.T) {
	tests := []struct {
		first16, code, name, retiredFrom string
		found                            bool
	}{
		{"5133078250000000", "330782", "义乌市", "", true},
		{"5233010450000000", "330102", "上城区", "330104", true}, // issued by the 江干区 bureau before 2021
		{"5110000050000000", "", "", "", false},               // central (民政部)
		{"5111010150000000", "", "", "", false},               // Beijing
		{"5133999950000000", "", "", "", false},               // no such division
	}
	for _, tt := range tests {
		c, err := ParseCreditCode(makeCode(tt.first16))
		if err != nil {
			t.Fatal(err)
		}
		d, ok := c.RegisteringDivision()
		if ok != tt.found || d.Code != tt.code || d.Name != tt.name || d.RetiredFrom != tt.retiredFrom {
			t.Errorf("%s: RegisteringDivision = %+v, %v", c.Code, d, ok)
		}
	}
}

func FuzzParseCreditCode(f *testing.F) {
	for _, s := range []string{aixin, "", aixin[:17], aixin + "X", "５３３３００００５０１８７４０６４Ｂ", "53330000501874064\xff", "ioszv", " \t\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCreditCode(s)
		if err != nil {
			if qingfeng.ErrorCode(err) != qingfeng.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if len(c.Code) != 18 || !utf8.ValidString(c.Code) {
			t.Fatalf("accepted %q as %q", s, c.Code)
		}
		for i := 0; i < 18; i++ {
			if strings.IndexByte(creditAlphabet, c.Code[i]) < 0 {
				t.Fatalf("accepted %q with %q at %d", s, c.Code[i], i+1)
			}
		}
		// Normalization is idempotent: the normalized code parses to the same value.
		again, err := ParseCreditCode(c.Code)
		if err != nil || again != c {
			t.Fatalf("re-parsing %q: %+v, %v; first %+v", c.Code, again, err, c)
		}
		_, _ = c.RegisteringDivision()
		_ = c.OrgType()
	})
}

func ExampleParseCreditCode() {
	c, err := ParseCreditCode(" 53330000501874064b ")
	if err != nil {
		fmt.Println(err)
		return
	}
	d, _ := c.RegisteringDivision()
	fmt.Println(c.Code, c.OrgType(), d.FullName, c.CheckValid)

	// A well-formed code with a wrong check character is not an error: warn, do not reject.
	c, err = ParseCreditCode("53330000501874064C")
	fmt.Println(c.CheckValid, err)

	_, err = ParseCreditCode("53330000501874O64B")
	fmt.Println(err.(*qingfeng.Error).Message)
	// Output:
	// 53330000501874064B 基金会 浙江省 true
	// false <nil>
	// 统一社会信用代码第15位“O”不是有效字符（只能是数字或除I、O、S、V、Z以外的大写字母）
}
