package routing

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// NameMatch is what the registry makes of a name that may be a unit's: a person's
// employer (工作单位) or a reported "organization" that may be a public body.
type NameMatch struct {
	// Unit is the unit the name surely names (Sure): the name, an alias, or either
	// written differently (prefixes 浙江省/中共/城市, 纪委/纪律检查委员会/监察委员会,
	// 民政局/民政厅, full-width or invisible characters, traditional script), or an
	// internal office of it (义乌市民政局社会组织管理科, 义乌市民政局（社会组织管理科）).
	Unit RegistryUnit
	Sure bool
	// Resembles are units the name may mean without saying so for sure. Routing treats
	// each as possibly the accused's own unit (possible_recusal): an unsure match must
	// never send a case to the unit it may be about.
	Resembles []Resemblance
}

// Resemblance is a unit a name resembles, and how.
type Resemblance struct {
	Unit RegistryUnit
	Why  string // Chinese, for the decision
	// ByKind is set when only the kind of unit matched (same division, a word such as
	// 民政 or 公安 in the name), the weakest likeness.
	ByKind bool
}

// Resolve matches name against the registry. place is the county-level division of the
// case, assumed for a name that gives no division (民政局, 纪委); "" assumes none.
func (r *Units) Resolve(name, place string) NameMatch {
	n := NormalizeName(name)
	if n == "" {
		return NameMatch{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.resolve(n, place, true)
}

func (r *Units) resolve(n, place string, stationed bool) NameMatch {
	var m NameMatch
	if id, ok := r.byName[n]; ok {
		if id != "" {
			m.Unit, m.Sure = r.byID[id], true
		}
	}
	if host, exact, ok := stationedName(n); ok && stationed {
		if exact {
			return r.resolveStationed(m, host, place)
		}
		// Inside a longer name: the 派驻组 is only resembled, and so is anything else
		// the name contains.
		sm := r.resolveStationed(NameMatch{}, host, place)
		if sm.Sure {
			m.add(sm.Unit, "名称中含有该派驻组名称", false)
		}
		for _, res := range sm.Resembles {
			m.add(res.Unit, res.Why, res.ByKind)
		}
	}
	div, rests, hasDiv := canonicalNames(n)
	rest := rests[0]
	if hasDiv {
		for _, rest := range rests {
			if rest != "" {
				r.matchInDivision(&m, div, rest)
			}
		}
	} else if place != "" && rest != "" {
		divs, rest := impliedDivisions(rest, place)
		for _, div := range divs {
			for _, k := range r.byDiv[div] {
				u := r.byID[k.id]
				if rest == k.rest || strings.HasPrefix(rest, k.rest) {
					m.add(u, "名称未写明区划，按举报地点理解", false)
				} else if w, ok := kindWordUnplaced(rest, u.Kind); ok {
					m.add(u, "名称含“"+w+"”，未写明其他地方，按举报地点理解", true)
				}
			}
		}
	}
	if place != "" {
		r.matchMisspeltPlace(&m, n, place)
	}
	r.matchEmbedded(&m, n)
	return m
}

// matchMisspeltPlace reads a name that has the case's place (or its city) written with
// one character wrong, 义务市纪委 for 义乌市纪委: a misspelt division is
// not parsed as one, so without this the name would match nothing. Whatever the name
// means with the division spelt right, it only resembles.
func (r *Units) matchMisspeltPlace(m *NameMatch, n, place string) {
	codes := []string{place}
	if d, ok := LookupDivision(place); ok && d.Parent != "" {
		codes = append(codes, d.Parent)
	}
	runes := []rune(n)
	for _, code := range codes {
		d, ok := LookupDivision(code)
		if !ok {
			continue
		}
		name := []rune(NormalizeName(d.Name))
		if len(name) < 3 {
			continue
		}
		for at := 0; at+len(name) < len(runes); at++ {
			diff := 0
			for i := range name {
				if runes[at+i] != name[i] {
					diff++
				}
			}
			if diff != 1 {
				continue
			}
			fixed := string(runes[:at]) + string(name) + string(runes[at+len(name):])
			// No place: the name now says its division, and this cannot recurse.
			fm := r.resolve(fixed, "", true)
			if fm.Sure {
				m.add(fm.Unit, "名称与该单位仅差一字", false)
			}
			for _, res := range fm.Resembles {
				m.add(res.Unit, res.Why, res.ByKind)
			}
		}
	}
}

// kindWordUnplaced finds a word of kind in a name that gives no division we know,
// unless what comes before the word names another place (上海市民政局): YIWU民政局 or
// 某某民政服务中心 may well be the case's own place's unit.
func kindWordUnplaced(rest string, kind UnitKind) (string, bool) {
	text := kindText.Replace(rest)
	for _, w := range kindKeywords[kind] {
		if i := strings.Index(text, w); i >= 0 && !strings.ContainsAny(text[:i], "省市县区州") {
			return w, true
		}
	}
	return "", false
}

// impliedDivisions reads a name without a division the way people write one where they
// live: 民政局 and 县民政局 (本县、我区) are the place's, 市民政局 the place's or its city's,
// 省民政厅 the province's. It returns those divisions and the name without the word.
func impliedDivisions(rest, place string) ([]string, string) {
	for _, p := range []string{"本", "我", "该"} {
		if after, ok := strings.CutPrefix(rest, p); ok && after != "" && strings.ContainsRune("省市县区", []rune(after)[0]) {
			rest = after
			break
		}
	}
	switch {
	case strings.HasPrefix(rest, "省"):
		return []string{ProvinceCode}, strings.TrimPrefix(rest, "省")
	case strings.HasPrefix(rest, "市"):
		divs := []string{place}
		if d, ok := LookupDivision(place); ok && d.Level == LevelCounty {
			divs = append(divs, d.Parent)
		}
		return divs, strings.TrimPrefix(rest, "市")
	case strings.HasPrefix(rest, "县"), strings.HasPrefix(rest, "区"):
		return []string{place}, rest[len("县"):]
	}
	return []string{place}, rest
}

// kindText is the part of a name searched for kind words: 人民政府 is no 民政.
var kindText = strings.NewReplacer("人民政府", "政府", "市民政务", "政务")

// matchInDivision compares the canonical rest of a name with the units named in div:
// equal or an internal office of one is sure (the longest such name wins, so
// 义乌市纪委监委信访室 is the 信访室 and not the 纪委监委); a name that starts with a unit's,
// or has the word of its kind, resembles it.
func (r *Units) matchInDivision(m *NameMatch, div, rest string) {
	keys := r.byDiv[div]
	best := -1
	for i, k := range keys {
		if (rest == k.rest || officeOf(rest, k.rest)) && (best < 0 || len(k.rest) > len(keys[best].rest)) {
			best = i
		}
	}
	if best >= 0 {
		sure := r.byID[keys[best].id]
		tied := false
		for _, k := range keys {
			if k.id != sure.ID && k.rest == keys[best].rest {
				tied = true // two units canonicalise alike: neither is sure
				m.add(r.byID[k.id], "与另一单位名称相近", false)
			}
		}
		switch {
		case tied:
			m.add(sure, "与另一单位名称相近", false)
		case !m.Sure:
			m.Unit, m.Sure = sure, true
		case m.Unit.ID != sure.ID:
			m.add(sure, "名称写法也符合该单位", false)
		}
		// The body an office belongs to: 义乌市纪委监委信访室 is part of 义乌市纪委监委.
		for _, k := range keys {
			if k.id != sure.ID && len(k.rest) < len(keys[best].rest) && strings.HasPrefix(keys[best].rest, k.rest) {
				m.add(r.byID[k.id], "是该单位的内设机构", false)
			}
		}
	}
	for _, k := range keys {
		u := r.byID[k.id]
		if m.Sure && m.Unit.ID == u.ID {
			continue
		}
		switch {
		case strings.HasPrefix(rest, k.rest):
			m.add(u, "名称以该单位名称开头", false)
		case oneTypo(rest, k.rest):
			m.add(u, "同一区划，名称与该单位仅差一字", true)
		default:
			text := kindText.Replace(rest)
			for _, w := range kindKeywords[u.Kind] {
				if strings.Contains(text, w) {
					m.add(u, "同一区划，名称含“"+w+"”", true)
					break
				}
			}
		}
	}
}

// oneTypo reports whether name starts with key written with one character wrong
// (民正局 for 民政局, 民政居办公室), or is key with one character missing or added. Keys
// under three characters are too short to tell a typo from another word.
func oneTypo(name, key string) bool {
	n, k := []rune(name), []rune(key)
	if len(k) < 3 {
		return false
	}
	if len(n) >= len(k) {
		diff := 0
		for i := range k {
			if n[i] != k[i] {
				diff++
			}
		}
		if diff == 1 {
			return true
		}
	}
	if d := len(n) - len(k); d == 1 || d == -1 {
		long, short := n, k
		if d < 0 {
			long, short = k, n
		}
		for i := range long {
			if slices.Equal(slices.Concat(long[:i], long[i+1:]), short) {
				return true
			}
		}
	}
	return false
}

// matchEmbedded finds a unit's name inside a longer one (某某协会（义乌市民政局主管）,
// 原义乌市民政局干部): each such unit is resembled.
func (r *Units) matchEmbedded(m *NameMatch, n string) {
	divisionTokens()
	for i := range n {
		if i == 0 {
			continue
		}
		_, s1 := utf8.DecodeRuneInString(n[i:])
		_, s2 := utf8.DecodeRuneInString(n[i+s1:])
		if !tokenStarts[n[i:i+s1+s2]] {
			continue
		}
		div, rests, ok := canonicalNames(n[i:])
		if !ok {
			continue
		}
		for _, crest := range rests {
			for _, k := range r.byDiv[div] {
				if strings.HasPrefix(crest, k.rest) && !(m.Sure && m.Unit.ID == k.id) {
					m.add(r.byID[k.id], "名称中含有该单位名称", false)
				}
			}
		}
	}
}

// resolveStationed resolves 派驻<host>纪检监察组: the 派驻组 at the unit host surely or
// possibly names.
func (r *Units) resolveStationed(m NameMatch, host, place string) NameMatch {
	hm := r.resolve(host, place, false)
	pz := func(h RegistryUnit) (RegistryUnit, bool) {
		for _, id := range r.stationed[h.ID] {
			return r.byID[id], true
		}
		return RegistryUnit{}, false
	}
	if hm.Sure {
		if u, ok := pz(hm.Unit); ok && !m.Sure {
			m.Unit, m.Sure = u, true
		} else if ok && u.ID != m.Unit.ID {
			m.add(u, "派驻于名称所指的单位", false)
		}
	}
	for _, res := range hm.Resembles {
		if u, ok := pz(res.Unit); ok {
			m.add(u, "派驻于"+res.Unit.Name+"（"+res.Why+"）", res.ByKind)
		}
	}
	return m
}

func (m *NameMatch) add(u RegistryUnit, why string, byKind bool) {
	if u.ID == "" || m.Sure && m.Unit.ID == u.ID {
		return
	}
	for i, r := range m.Resembles {
		if r.Unit.ID == u.ID {
			if r.ByKind && !byKind {
				m.Resembles[i] = Resemblance{Unit: u, Why: why}
			}
			return
		}
	}
	m.Resembles = append(m.Resembles, Resemblance{Unit: u, Why: why, ByKind: byKind})
}
