package routing

import (
	"strings"
	"unicode/utf8"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// Searching the case queue by the reported organization (被举报组织) is one comparison
// done in two halves that must agree: OrgSearchKeys, which the stores call on every
// write of a case and index, and ParseOrgQuery, which turns what staff typed into the
// one key to look up. A credit code matches exactly; a name matches as a prefix of a
// name the case carries (or of that name after the divisions it starts with), both written by NormalizeName, so that full-width letters,
// traditional characters, invisible characters and （） versus () do not matter. A
// prefix is indexed as a key of its own (every prefix of OrgPrefixMin to OrgPrefixMax
// characters), so that the stores answer with an exact, indexed lookup in either sort;
// a substring (慈善 inside 某某慈善会) would need full-text search and is not offered.

const (
	// OrgPrefixMin is the shortest name a search accepts, in characters: one character
	// would list most of a unit's queue.
	OrgPrefixMin = 2
	// OrgPrefixMax is the longest indexed prefix: a longer query is looked up by its
	// first OrgPrefixMax characters, which may also find names that differ after them.
	OrgPrefixMax = 32

	orgCodeKey = "c:"
	orgNameKey = "n:"
)

// Decision inputs the engine records when the registry knows the reported organization
// (found by its code or by its name): its credit code and registered name. A case filed
// with only the code is then found by the registered name, and one filed with only a
// registered name by the code.
const (
	InputOrgCreditCode = "org_credit_code"
	InputOrgName       = "org_name"
)

// foldCode is a credit code as typed, with every space and invisible character
// (zero-width space, BOM, word joiner, …) removed, before ParseCreditCode folds
// full-width and lower-case letters.
func foldCode(s string) string {
	return strings.Map(func(r rune) rune {
		if invisible(r) { // U+3000, the ideographic space, is a space
			return -1
		}
		return r
	}, s)
}

// OrgSearchKeys are the search keys of a case about an organization: its credit code
// (as reported, and as the registry resolved it) and every prefix of its name (as
// reported, and as registered), also without the divisions it starts with (义乌市某某
// 慈善会 is found by 某某慈善 too). Other subjects have none. Keys are distinct, in no
// particular order; the stores keep them as opaque strings.
//
// The registry's code and name are read from the latest decision that carries the
// engine's inputs: a transfer's or a return's decision carries none (the one it
// replaced, among the earlier decisions, was made for the same subject), while a
// re-routing, which may change the subject, always does.
func OrgSearchKeys(c *intake.Case) []string {
	s := c.Subject
	if s.Kind != intake.SubjectOrganization {
		return nil
	}
	d := c.Decision
	for i := len(c.EarlierDecisions) - 1; i >= 0 && d.Inputs == nil; i-- {
		d = c.EarlierDecisions[i]
	}
	var keys []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	code := func(v string) {
		if v == "" {
			return
		}
		if cc, err := ParseCreditCode(foldCode(v)); err == nil {
			add(orgCodeKey + cc.Code)
		}
	}
	prefixes := func(n []rune) {
		for i := OrgPrefixMin; i <= min(len(n), OrgPrefixMax); i++ {
			add(orgNameKey + string(n[:i]))
		}
	}
	name := func(v string) {
		n := NormalizeName(v)
		prefixes([]rune(n))
		// Staff of 义乌 type 某某慈善 for 义乌市某某慈善会: the name without the
		// divisions it starts with is searched from its start as well.
		if _, rest, ok := parseDivisions(n); ok && rest != n {
			prefixes([]rune(rest))
		}
	}
	if o := s.Organization; o != nil {
		code(o.CreditCode)
		name(o.Name)
	}
	code(d.Inputs[InputOrgCreditCode])
	name(d.Inputs[InputOrgName])
	return keys
}

// OrgQuery is a parsed search by organization.
type OrgQuery struct {
	Key string // the key to look up (intake.CaseFilter.Organization)
	// Code is the normalised credit code when the query is one; Name otherwise the
	// normalised name (prefix) searched for, for showing back.
	Code, Name string
}

var errOrgQueryShort = qingfeng.Errorf(qingfeng.EINVALID,
	"请输入被举报组织的统一社会信用代码（18位），或名称的至少两个字",
	"enter the organization's 18-character unified social credit code, or at least two characters of its name")

// ParseOrgQuery reads what staff typed to search by organization: a 统一社会信用代码
// when it reads as one (18 characters of the GB 32100 alphabet, spaces and invisible
// characters ignored, full-width and lower case folded; a failing check character is
// still searched for, as routing accepts such codes), else a name or the start of one.
// A name shorter than OrgPrefixMin characters is EINVALID.
func ParseOrgQuery(q string) (OrgQuery, error) {
	if cc, err := ParseCreditCode(foldCode(q)); err == nil {
		return OrgQuery{Key: orgCodeKey + cc.Code, Code: cc.Code}, nil
	}
	n := NormalizeName(q)
	if utf8.RuneCountInString(n) < OrgPrefixMin {
		return OrgQuery{}, errOrgQueryShort
	}
	if r := []rune(n); len(r) > OrgPrefixMax {
		n = string(r[:OrgPrefixMax])
	}
	return OrgQuery{Key: orgNameKey + n, Name: n}, nil
}
