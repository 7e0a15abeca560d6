package routing

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

// creditAlphabet is the character set of GB 32100-2015, in value order (0–30). It leaves out
// I, O, S, V and Z, which are too easily read as 1, 0, 5, U and 2.
const creditAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// creditWeights are the GB 32100 weights of characters 1–17: 3^(i−1) mod 31.
var creditWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// orgCodeWeights are the GB 11714 weights of the eight body characters of an
// organization code (characters 9–16 of a credit code).
var orgCodeWeights = [8]int{3, 7, 9, 10, 5, 8, 4, 2}

// CreditCode is a parsed 统一社会信用代码 (GB 32100-2015).
type CreditCode struct {
	Code       string // the normalized 18 characters
	Department byte   // char 1: the registering department; '5' is 民政 (civil affairs)
	Type       byte   // char 2: the kind of organization within the department
	// Division is chars 3–8: the division code of the registration authority, e.g. 330782
	// for 义乌市, 330000 for the province (100000 for central authorities such as 民政部).
	// It is the code in force when the code was issued and may since have been retired.
	Division string
	OrgCode  string // chars 9–17: the organization code (GB 11714), its check char last
	// CheckValid is true when both check characters are right: char 18 (GB 32100) and
	// char 17 (the organization code's own check). Some genuine early codes fail: callers
	// warn and carry on, they never reject a code for this.
	CheckValid bool
	// OrgCodeCheckValid reports char 17 alone.
	OrgCodeCheckValid bool
}

// String returns the normalized code.
func (c CreditCode) String() string { return c.Code }

// IsCivilAffairs reports whether the organization is registered by 民政 (a social
// organization: 社会团体, 社会服务机构, 基金会, ...).
func (c CreditCode) IsCivilAffairs() bool { return c.Department == '5' }

// OrgType is the Chinese name of the kind of social organization, for codes registered by
// 民政; it is "" for other departments and for type characters the standard does not define.
func (c CreditCode) OrgType() string {
	if !c.IsCivilAffairs() {
		return ""
	}
	switch c.Type {
	case '1':
		return "社会团体"
	case '2':
		return "民办非企业单位/社会服务机构"
	case '3':
		return "基金会"
	case '9':
		return "其他"
	}
	return ""
}

// RegisteringDivision looks up the division of the registration authority (chars 3–8). A
// retired code gives its successor with RetiredFrom set; a code outside Zhejiang is not found.
func (c CreditCode) RegisteringDivision() (Division, bool) { return LookupDivision(c.Division) }

// ParseCreditCode parses a 统一社会信用代码. It trims surrounding space, turns full-width
// characters (as typed with a Chinese input method) into ASCII and upper-cases the rest.
//
// It returns an EINVALID *qingfeng.Error only when the code is malformed: not 18
// characters, a character outside the GB 32100 alphabet, or chars 3–8 (a division code) not
// all digits. A well-formed code whose check characters are wrong is returned without an
// error and with CheckValid false.
func ParseCreditCode(s string) (CreditCode, error) {
	s = strings.ToUpper(strings.TrimSpace(strings.Map(halfWidth, s)))
	if n := utf8.RuneCountInString(s); n != 18 {
		return CreditCode{}, &qingfeng.Error{
			Code:    qingfeng.EINVALID,
			Message: fmt.Sprintf("统一社会信用代码应为18位，现为%d位", n),
			English: fmt.Sprintf("a unified social credit code has 18 characters, not %d", n),
		}
	}
	for i, r := range []rune(s) {
		if r >= utf8.RuneSelf || strings.IndexByte(creditAlphabet, byte(r)) < 0 {
			return CreditCode{}, &qingfeng.Error{
				Code: qingfeng.EINVALID,
				Message: fmt.Sprintf("统一社会信用代码第%d位%s不是有效字符（只能是数字或除I、O、S、V、Z以外的大写字母）",
					i+1, showRune(r)),
				English: fmt.Sprintf("character %d of the unified social credit code is not allowed (digits and capital letters except I, O, S, V, Z)", i+1),
			}
		}
	}
	// Now s is 18 ASCII bytes.
	if !isDigits(s[2:8], 6) {
		return CreditCode{}, qingfeng.Errorf(qingfeng.EINVALID,
			"统一社会信用代码第3至8位应为登记管理机关的行政区划代码（6位数字）",
			"characters 3 to 8 of a unified social credit code are a division code of 6 digits")
	}
	c := CreditCode{
		Code:       s,
		Department: s[0],
		Type:       s[1],
		Division:   s[2:8],
		OrgCode:    s[8:17],
	}
	c.OrgCodeCheckValid = orgCodeCheckChar(s[8:16]) == s[16]
	c.CheckValid = c.OrgCodeCheckValid && creditCheckChar(s[:17]) == s[17]
	return c, nil
}

// creditCheckChar computes char 18 from the first 17 characters, which must be in the
// alphabet: C18 = 31 − (Σ value×weight mod 31), where 31 stands for 0.
func creditCheckChar(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		sum += strings.IndexByte(creditAlphabet, first17[i]) * creditWeights[i]
	}
	return creditAlphabet[(31-sum%31)%31]
}

// orgCodeCheckChar computes the GB 11714 check character of an 8-character organization
// code body: 11 − (Σ value×weight mod 11), with 10 written X and 11 written 0. Unlike the
// credit-code alphabet, GB 11714 values letters by their place in A–Z (A=10 … Z=35).
func orgCodeCheckChar(body string) byte {
	sum := 0
	for i := 0; i < 8; i++ {
		ch := body[i]
		v := 0
		switch {
		case ch >= '0' && ch <= '9':
			v = int(ch - '0')
		case ch >= 'A' && ch <= 'Z':
			v = int(ch-'A') + 10
		}
		sum += v * orgCodeWeights[i]
	}
	switch c := 11 - sum%11; c {
	case 10:
		return 'X'
	case 11:
		return '0'
	default:
		return byte('0' + c)
	}
}

// halfWidth maps full-width ASCII variants (U+FF01–U+FF5E) and the ideographic space to
// their ASCII forms, so "５３３３…" typed with a Chinese input method parses.
func halfWidth(r rune) rune {
	switch {
	case r >= 0xFF01 && r <= 0xFF5E:
		return r - 0xFEE0
	case r == 0x3000:
		return ' '
	}
	return r
}

// showRune quotes a character for a user message, falling back to its code point for
// characters that would not be visible.
func showRune(r rune) string {
	if r == utf8.RuneError || !unicode.IsPrint(r) {
		return fmt.Sprintf("（%U）", r)
	}
	return "“" + string(r) + "”"
}
