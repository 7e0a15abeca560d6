package intake

import (
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
)

// This file holds the format checks for a real-name reporter's contact details. They only
// say whether a value is plausible; nothing here stores or logs the value.

// NormalizeMobile returns the 11 digits of a mainland China mobile number (1[3-9] followed
// by 9 digits), accepting what people type: spaces and dashes between digits, full-width
// digits, and a +86, 86 or 0086 country prefix. ok is false for anything else, including
// landlines and numbers outside the mainland.
func NormalizeMobile(s string) (string, bool) {
	s = strings.TrimSpace(s)
	var b strings.Builder
	plus := false
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= '０' && r <= '９':
			b.WriteByte(byte('0' + r - '０'))
		case r == ' ' || r == '-' || r == '\u3000' || r == '－':
			// separators people put between groups of digits
		case (r == '+' || r == '＋') && i == 0:
			plus = true // only first, where it introduces a country code
		default:
			return "", false
		}
	}
	d := b.String()
	switch {
	case len(d) == 13 && strings.HasPrefix(d, "86"):
		d = d[2:]
	case plus:
		return "", false // another country's code, or a bare "+"
	case len(d) == 15 && strings.HasPrefix(d, "0086"):
		d = d[4:]
	}
	if len(d) != 11 || d[0] != '1' || d[1] < '3' || d[1] > '9' {
		return "", false
	}
	return d, true
}

// residentIDWeights and residentIDCheck are the GB 11643-1999 check: the sum of the first
// 17 digits times these weights, mod 11, indexes the check character.
var residentIDWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const residentIDCheck = "10X98765432"

// residentIDProvinces are the first two digits of every province-level address code
// (GB/T 2260): 11–15 North, 21–23 North-east, 31–37 East, 41–46 South-central,
// 50–54 South-west, 61–65 North-west, 71 Taiwan, 81 Hong Kong, 82 Macao. 83 is included
// because residence permits for Taiwan residents (港澳台居民居住证, since 2018) carry
// 830000 in place of an address code (Hong Kong and Macao residents' permits use 810000
// and 820000). Foreigners' permanent residence cards (2023 design, starting with 9) are a
// different document and are not accepted here.
var residentIDProvinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true, "81": true, "82": true, "83": true,
}

// chinaTime is the zone a resident ID's birth date and "today" are in.
var chinaTime = qingfeng.Shanghai

// ValidResidentID reports whether s is a well-formed 18-character 公民身份号码
// (GB 11643-1999): a real province prefix, a real birth date (YYYYMMDD at positions 7–14,
// from 1900 and not after today in China), and a right check character (0–9 or X; a
// lowercase x is accepted). The old 15-digit numbers have no check character and are
// rejected. Callers trim the input first; surrounding space makes it invalid.
func ValidResidentID(s string) bool { return validResidentIDAt(s, time.Now()) }

func validResidentIDAt(s string, now time.Time) bool {
	if len(s) != 18 {
		return false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		sum += int(s[i]-'0') * residentIDWeights[i]
	}
	check := s[17]
	if check == 'x' {
		check = 'X'
	}
	if check != residentIDCheck[sum%11] {
		return false
	}
	if !residentIDProvinces[s[:2]] {
		return false
	}
	// time.Parse rejects impossible dates (20230230, 19000229) for us.
	birth, err := time.ParseInLocation("20060102", s[6:14], chinaTime)
	if err != nil || birth.Year() < 1900 {
		return false
	}
	y, m, d := now.In(chinaTime).Date()
	return !birth.After(time.Date(y, m, d, 0, 0, 0, 0, chinaTime))
}
