package routing

import (
	"bufio"
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Name normalisation is the one place where a name as a reporter or an import typed it
// (an employer, a reported department, an organization, a unit alias) becomes the form
// the registry is indexed by. Recusal depends on it: a name the registry does not
// recognise must never send a case to the accused's own unit.
//
// Traditional → simplified uses OpenCC's character table TSCharacters.txt (data/, Apache
// License 2.0, from the OpenCC project as shipped in github.com/longbridgeapp/opencc
// v0.3.13; OpenCC compiles it from Unihan's variant data and its own review). Only the
// one-character table is embedded, not the library: names need a character mapping, not
// OpenCC's phrase segmentation, and the library registers a global -dir flag and embeds
// every dictionary. Where a traditional character has several simplified forms, the
// first (OpenCC's preferred one) is used.

//go:embed data/TSCharacters.txt
var tsCharacters string

var (
	t2sOnce sync.Once
	t2sMap  map[rune]rune
)

func traditionalToSimplified() map[rune]rune {
	t2sOnce.Do(func() {
		m := make(map[rune]rune, 4200)
		sc := bufio.NewScanner(strings.NewReader(tsCharacters))
		for sc.Scan() {
			from, to, ok := strings.Cut(sc.Text(), "\t")
			if !ok {
				continue
			}
			to, _, _ = strings.Cut(to, " ")
			f, fn := utf8.DecodeRuneInString(from)
			t, tn := utf8.DecodeRuneInString(to)
			if fn != len(from) || tn != len(to) || f == utf8.RuneError || t == utf8.RuneError {
				continue // the table maps single characters only
			}
			m[f] = t
		}
		t2sMap = m
	})
	return t2sMap
}

// NormalizeName is the comparable form of a name: NFKC (full-width letters, digits and
// brackets become ASCII), traditional characters simplified, every space, control and
// invisible formatting character (zero-width space U+200B, BOM U+FEFF, word joiner
// U+2060, soft hyphen, …) removed, Latin letters lower-cased, and every kind of bracket
// written as ( ). Two spellings of one name normalise to the same string.
func NormalizeName(s string) string {
	s = norm.NFKC.String(s)
	t2s := traditionalToSimplified()
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r), unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Mn, r):
			continue
		case strings.ContainsRune("(（[【〔〖{<《「『", r):
			r = '('
		case strings.ContainsRune(")）]】〕〗}>》」』", r):
			r = ')'
		}
		if simple, ok := t2s[r]; ok {
			r = simple
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// kindWords rewrites the spellings of a unit's kind to one canonical word each, so that
// 纪委, 纪律检查委员会, 监察委员会 and 纪委监委 compare equal, and so do 民政厅 and 民政局.
// Longer spellings come first: at each position the first match in argument order wins.
var kindWords = strings.NewReplacer(
	"纪律检查委员会", "纪委监委", "纪检监察委员会", "纪委监委", "监察委员会", "纪委监委",
	"纪委监委", "纪委监委", "纪检委", "纪委监委", "纪委", "纪委监委", "监委", "纪委监委",
	"市场监管局", "市场监督管理局", "市监局", "市场监督管理局",
	"厅", "局",
)

// officeSuffixes end the name of an internal office of a unit (处、科、室、所 …): a person
// at 义乌市民政局社会组织管理科 works for 义乌市民政局.
var officeSuffixes = []string{"办公室", "科", "室", "所", "处", "股", "队", "中心", "站", "组", "办", "部", "机关"}

// kindKeywords are what makes a name resemble a default unit of a kind in the same
// division, after kindWords.
var kindKeywords = map[UnitKind][]string{
	KindDiscipline:   {"纪委监委", "纪检", "监察"},
	KindCivilAffairs: {"民政"},
	KindMarket:       {"市场监督管理", "市场监管", "市监"},
	KindPolice:       {"公安"},
	KindFinance:      {"财政"},
	KindAudit:        {"审计"},
	KindTax:          {"税务"},
	KindIntakeOffice: {"信访"},
}

// divisionToken is a way a division is written at the start of a name.
type divisionToken struct {
	divs []Division // several when the short form is shared
}

var (
	tokensOnce  sync.Once
	tokens      map[string]*divisionToken
	tokenStarts map[string]bool // the first two characters of each token
	maxToken    int             // runes
)

// divisionTokens indexes the province, cities and county-level divisions by their name
// (浙江省, 义乌市, 上城区) and by the name without 省/市/县/区 when two or more characters
// remain (浙江, 义乌, 上城).
func divisionTokens() map[string]*divisionToken {
	tokensOnce.Do(func() {
		tokens, tokenStarts = map[string]*divisionToken{}, map[string]bool{}
		add := func(name string, d Division) {
			_, n1 := utf8.DecodeRuneInString(name)
			_, n2 := utf8.DecodeRuneInString(name[n1:])
			tokenStarts[name[:n1+n2]] = true
			t := tokens[name]
			if t == nil {
				t = &divisionToken{}
				tokens[name] = t
			}
			t.divs = append(t.divs, d)
			maxToken = max(maxToken, utf8.RuneCountInString(name))
		}
		for _, d := range Divisions() {
			if d.Level == LevelTownship {
				continue
			}
			name := NormalizeName(d.Name)
			add(name, d)
			for _, suf := range []string{"省", "市", "县", "区", "畲族自治县"} {
				if short, ok := strings.CutSuffix(name, suf); ok && utf8.RuneCountInString(short) >= 2 {
					add(short, d)
				}
			}
		}
	})
	return tokens
}

// within reports whether division d is a or lies inside it.
func within(d, a Division) bool {
	for range 4 {
		if d.Code == a.Code {
			return true
		}
		p, ok := LookupDivision(d.Parent)
		if !ok {
			return false
		}
		d = p
	}
	return false
}

// parseDivisions reads the chain of division names at the start of s (浙江省义乌市,
// 杭州上城区, 义乌) and returns the most specific division and the rest of s. Each name
// must lie inside the one before. ok is false when s does not start with a division.
func parseDivisions(s string) (d Division, rest string, ok bool) {
	toks := divisionTokens()
	rest = s
	for {
		// ends[j] is the byte length of the first j+1 characters of rest.
		var buf [16]int
		ends := buf[:0]
		for i := range rest {
			if i > 0 {
				ends = append(ends, i)
			}
			if len(ends) == min(maxToken, len(buf)) {
				break
			}
		}
		if len(ends) < min(maxToken, len(buf)) {
			ends = append(ends, len(rest))
		}
		found := false
		for j := len(ends) - 1; j >= 1 && !found; j-- { // 义乌市 before 义乌
			t := toks[rest[:ends[j]]]
			if t == nil {
				continue
			}
			for _, cand := range t.divs {
				if !ok || cand.Code != d.Code && within(cand, d) {
					d, ok, found = cand, true, true
					rest = rest[ends[j]:]
					break
				}
			}
		}
		if !found {
			return d, rest, ok
		}
	}
}

// canonicalName splits a normalised name into its division (the most specific division
// it starts with, after an optional 中共) and the rest with kind words made canonical.
// 中共义乌市纪律检查委员会 and 义乌纪委 both give (330782, 纪委监委); 浙江省民政厅 gives
// (330000, 民政局). hasDiv is false when the name names no division.
func canonicalName(n string) (div string, rest string, hasDiv bool) {
	div, rests, hasDiv := canonicalNames(n)
	return div, rests[0], hasDiv
}

// canonicalNames is canonicalName with a second reading when the division's name ends
// in 市 and that 市 may begin the rest: 杭州市场监管局 is 杭州 + 市场监管局, 义乌市监局
// 义乌 + 市监局, but 义乌市民政局 义乌市 + 民政局. The longest reading comes first.
func canonicalNames(n string) (div string, rests []string, hasDiv bool) {
	n = strings.TrimPrefix(strings.TrimPrefix(n, "中国共产党"), "中共")
	d, r, ok := parseDivisions(n)
	if ok {
		div = d.Code
		if d.Level == LevelTownship {
			div = d.Parent
		}
	}
	rests = []string{canonicalRest(r, d, ok)}
	if ok && r != "" && strings.HasSuffix(n[:len(n)-len(r)], "市") {
		rests = append(rests, canonicalRest("市"+r, d, ok))
	}
	return div, rests, ok
}

func canonicalRest(r string, d Division, hasDiv bool) string {
	r = strings.TrimPrefix(r, "中共")
	r = kindWords.Replace(r)
	// 中共义乌市纪律检查委员会义乌市监察委员会: one body, written twice.
	if after, ok := strings.CutPrefix(r, "纪委监委"); ok {
		if d2, r2, ok2 := parseDivisions(after); ok2 && (!hasDiv || d2.Code == d.Code) {
			after = r2
		}
		for strings.HasPrefix(after, "纪委监委") {
			after = strings.TrimPrefix(after, "纪委监委")
		}
		r = "纪委监委" + after
	}
	return r
}

// officeOf reports whether rest is an internal office of the unit whose canonical rest
// is unit: unit followed by a bracketed part, or by a name ending in an office suffix.
func officeOf(rest, unit string) bool {
	tail, ok := strings.CutPrefix(rest, unit)
	if !ok || tail == "" {
		return false
	}
	if strings.HasPrefix(tail, "(") {
		return true
	}
	tail = strings.TrimRight(tail, ")")
	for _, s := range officeSuffixes {
		if strings.HasSuffix(tail, s) {
			return true
		}
	}
	return false
}

// stationedName reads 派驻<unit>纪检监察组 (also 驻…纪检监察组, 中共…, …办公室): the name of
// the unit it is stationed at. exact is false when the 派驻组 is only inside a longer
// name (原派驻…纪检监察组干部).
func stationedName(n string) (host string, exact, ok bool) {
	end := strings.Index(n, "纪检监察组")
	if end <= 0 {
		return "", false, false
	}
	head := n[:end]
	i := strings.LastIndex(head, "驻")
	if i < 0 {
		return "", false, false
	}
	host = head[i+len("驻"):]
	if host == "" {
		return "", false, false
	}
	before := strings.TrimSuffix(head[:i], "派")
	before = strings.TrimPrefix(strings.TrimPrefix(before, "中国共产党"), "中共")
	if _, r, ok := parseDivisions(before); ok && r == "" {
		before = "" // 浙江省派驻…: the prefix says nothing the host does not
	}
	return host, before == "", true
}
