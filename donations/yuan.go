package donations

import (
	"fmt"
	"strings"
)

// ParseYuan reads an amount of money written in yuan, as a liaison types it
// ("1234.50", "88000", "0.5"), into fen, exactly: digits only, an optional point with
// one or two decimals, no sign, no exponent, no thousands separator, no spaces, no
// full-width digits, and at most MaxAmountFen. It never goes through floating point:
// "0.1" + "0.2" yuan is 30 fen, not 30.000000000000004.
//
// Being strict is the point: "1,234.50" could mean 1234.50 or 1.23450 depending on
// who typed it, and "１２３" or " 12" usually means a copy-paste from somewhere else, so
// all of these are refused with a message that says how to write the amount.
func ParseYuan(s string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf("%s", why)
	}
	if s == "" {
		return 0, bad("empty")
	}
	whole, frac, hasPoint := strings.Cut(s, ".")
	if whole == "" {
		return 0, bad("no digit before the point")
	}
	if hasPoint && (frac == "" || len(frac) > 2) {
		return 0, bad("one or two decimals after the point")
	}
	if len(whole) > 1 && whole[0] == '0' {
		return 0, bad("a leading zero")
	}
	var fen int64
	for _, c := range []byte(whole) {
		if c < '0' || c > '9' {
			return 0, bad("only the digits 0-9 and one point")
		}
		fen = fen*10 + int64(c-'0')
		if fen > MaxAmountFen/100 {
			return 0, bad("too large")
		}
	}
	fen *= 100
	for i, c := range []byte(frac + "00"[len(frac):]) {
		if c < '0' || c > '9' {
			return 0, bad("only the digits 0-9 and one point")
		}
		if i == 0 {
			fen += 10 * int64(c-'0')
		} else {
			fen += int64(c - '0')
		}
	}
	if fen > MaxAmountFen {
		return 0, bad("too large")
	}
	return fen, nil
}

// amountFromYuan sets e.AmountFen from yuan, the client's alternative to amount_fen:
// exactly one of them may be given.
func (f fieldErrs) amountFromYuan(e *Entry, yuan string) {
	if yuan == "" {
		return
	}
	if e.AmountFen != 0 {
		f.add("amount_yuan", "金额请只填写一种：amount_fen（分）或 amount_yuan（元）", "give amount_fen or amount_yuan, not both")
		return
	}
	fen, err := ParseYuan(yuan)
	if err != nil {
		f.add("amount_yuan", "金额（元）格式应为数字，最多两位小数，如 1234.50；不要使用千位分隔符、空格、正负号或全角数字",
			"amount_yuan must be digits with at most two decimals, like 1234.50 ("+err.Error()+")")
		return
	}
	if fen == 0 {
		f.add("amount_yuan", "金额须大于 0 元", "amount_yuan must be more than 0")
		return
	}
	e.AmountFen = fen
}
