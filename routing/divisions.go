// Package routing decides which supervisory unit handles a case, and why: the rule
// engine (engine.go, rules.go), the unit registry and organizations (registry.go), and
// their reference data, Zhejiang's administrative divisions (divisions.go) and the
// 统一社会信用代码 that names an organization's registration authority (creditcode.go).
//
// Recusal (回避) must not depend on how a reporter writes a name. Every employer,
// reported unit, organization name and unit alias goes through one normalisation
// (NormalizeName, names.go) and one resolution against the registry (Units.Resolve,
// resolve.go): a unit it surely names is recused as before; a unit it only resembles is
// excluded as possible_recusal, so an unsure match never routes a case to the unit it
// may be about. Traditional script is simplified with OpenCC's character table
// (data/TSCharacters.txt, Apache 2.0) embedded rather than an OpenCC port as a
// dependency: names need only a character mapping, and the Go ports carry phrase
// segmentation, every dictionary and a global flag.
package routing

import (
	"bytes"
	"embed"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

// Level is the tier of an administrative division. The values are stable identifiers (they
// are fine in JSON and in the database); Label gives the Chinese name shown to people.
type Level string

const (
	LevelProvince Level = "province" // 省级: 浙江省
	LevelCity     Level = "city"     // 地级: 设区的市
	LevelCounty   Level = "county"   // 县级: 市辖区、县、县级市
	LevelTownship Level = "township" // 乡级: 乡、镇、街道 (and statistical units such as development zones)
)

// Label is the Chinese name of the level.
func (l Level) Label() string {
	switch l {
	case LevelProvince:
		return "省级"
	case LevelCity:
		return "地级"
	case LevelCounty:
		return "县级"
	case LevelTownship:
		return "乡级"
	}
	return ""
}

// Division is one administrative division of Zhejiang.
type Division struct {
	// Code is 6 digits for the province (330000), a city (330700) and a county-level
	// division (330782), and 9 digits for a township (330102001).
	Code     string `json:"code"`
	Name     string `json:"name"`      // e.g. 义乌市
	FullName string `json:"full_name"` // e.g. 浙江省金华市义乌市
	Level    Level  `json:"level"`
	// Parent is the 6-digit code of the division directly above; empty for the province.
	Parent string `json:"parent,omitempty"`
	// RetiredFrom is set only on a Division returned by LookupDivision for a retired code:
	// it is the code that was asked for, and the rest of the Division is its successor.
	// Credit codes issued before a redistricting keep the old code for good.
	RetiredFrom string `json:"retired_from,omitempty"`
}

// RetiredCode records a county-level code that no longer exists and the division that took
// over its area.
type RetiredCode struct {
	Code      string // the retired 6-digit code
	Name      string // its name when it was retired
	Successor string // the current code that took over its area (or most of it)
	Year      int    // the year the change was approved
}

// retiredCodes lists Zhejiang's county-level codes retired since 2013. Older changes (e.g.
// 萧山市 and 余杭市 becoming districts in 2001) predate credit codes (2015) and are left out.
// A test checks that no retired code is still in the data and that every successor is.
var retiredCodes = []RetiredCode{
	// 2013: 绍兴县 was abolished and became 绍兴市柯桥区.
	{Code: "330621", Name: "绍兴县", Successor: "330603", Year: 2013},
	// 2013: county-level 上虞市 became 绍兴市上虞区.
	{Code: "330682", Name: "上虞市", Successor: "330604", Year: 2013},
	// 2014: county-level 富阳市 became 杭州市富阳区.
	{Code: "330183", Name: "富阳市", Successor: "330111", Year: 2014},
	// 2015: 洞头县 became 温州市洞头区.
	{Code: "330322", Name: "洞头县", Successor: "330305", Year: 2015},
	// 2016: 宁波市江东区 was abolished and merged into 鄞州区.
	{Code: "330204", Name: "江东区", Successor: "330212", Year: 2016},
	// 2016: county-level 奉化市 became 宁波市奉化区.
	{Code: "330283", Name: "奉化市", Successor: "330213", Year: 2016},
	// 2017: county-level 临安市 became 杭州市临安区.
	{Code: "330185", Name: "临安市", Successor: "330112", Year: 2017},
	// 2017: 玉环县 became the county-level city 玉环市.
	{Code: "331021", Name: "玉环县", Successor: "331083", Year: 2017},
	// 2021 Hangzhou redistricting: 江干区 was abolished; most of it joined 上城区, while its
	// 下沙 and 白杨 streets went to the new 钱塘区 (330114). The main successor is used.
	{Code: "330104", Name: "江干区", Successor: "330102", Year: 2021},
	// 2021 Hangzhou redistricting: 下城区 was abolished and merged into 拱墅区.
	{Code: "330103", Name: "下城区", Successor: "330105", Year: 2021},
}

// RetiredCodes lists the retired county-level codes LookupDivision understands, oldest first.
func RetiredCodes() []RetiredCode { return slices.Clone(retiredCodes) }

//go:embed data/*.csv
var dataFS embed.FS

// divisionTable is the parsed reference data, built once on first use.
type divisionTable struct {
	byCode  map[string]Division
	sorted  []Division
	retired map[string]RetiredCode
}

// divisions parses the embedded CSV files on first use. The data is compiled in and covered
// by tests, so a parse failure is a build defect, not a run-time condition: it panics.
var divisions = sync.OnceValue(func() *divisionTable {
	t, err := loadDivisions(dataFS)
	if err != nil {
		panic("routing: embedded division data: " + err.Error())
	}
	return t
})

func loadDivisions(fsys fs.FS) (*divisionTable, error) {
	t := &divisionTable{byCode: map[string]Division{}, retired: map[string]RetiredCode{}}
	add := func(d Division) error {
		if _, dup := t.byCode[d.Code]; dup {
			return fmt.Errorf("duplicate code %s", d.Code)
		}
		if d.Parent != "" {
			if _, ok := t.byCode[d.Parent]; !ok {
				return fmt.Errorf("%s %s: parent %s not found", d.Code, d.Name, d.Parent)
			}
		}
		t.byCode[d.Code] = d
		return nil
	}
	// Files go from the top down so that every parent is loaded before its children.
	files := []struct {
		name  string
		level Level
		cols  int
	}{
		{"provinces.csv", LevelProvince, 2},
		{"cities.csv", LevelCity, 3},
		{"areas.csv", LevelCounty, 4},
		{"streets.csv", LevelTownship, 5},
	}
	for _, f := range files {
		rows, err := readCSV(fsys, "data/"+f.name, f.cols)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			d, err := rowDivision(f.level, r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			if d.Parent != "" {
				d.FullName = t.byCode[d.Parent].FullName + d.Name
			} else {
				d.FullName = d.Name
			}
			if err := add(d); err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}
	for _, r := range retiredCodes {
		if _, ok := t.byCode[r.Code]; ok {
			return nil, fmt.Errorf("retired code %s is still in the data", r.Code)
		}
	}
	for _, r := range retiredCodes {
		if s, ok := t.byCode[r.Successor]; !ok || s.Level != LevelCounty {
			return nil, fmt.Errorf("retired code %s: successor %s is not a county-level division", r.Code, r.Successor)
		}
		t.retired[r.Code] = r
	}
	t.sorted = make([]Division, 0, len(t.byCode))
	for _, d := range t.byCode {
		t.sorted = append(t.sorted, d)
	}
	// Codes share a prefix with their parent, so plain string order lists every division
	// right after its parent (330700, 330702, 330702001, ..., 330703, ...).
	slices.SortFunc(t.sorted, func(a, b Division) int { return strings.Compare(a.Code, b.Code) })
	return t, nil
}

// rowDivision turns one CSV row into a Division (without FullName), checking that the codes
// have the expected shape and agree with each other.
func rowDivision(level Level, r []string) (Division, error) {
	code, name := r[0], r[1]
	if name == "" {
		return Division{}, fmt.Errorf("code %s: empty name", code)
	}
	d := Division{Name: name, Level: level}
	switch level {
	case LevelProvince: // code
		if !isDigits(code, 2) {
			return d, fmt.Errorf("bad province code %q", code)
		}
		d.Code = code + "0000"
	case LevelCity: // code,name,provinceCode
		if !isDigits(code, 4) || r[2] != code[:2] {
			return d, fmt.Errorf("bad city row %q", r)
		}
		d.Code, d.Parent = code+"00", r[2]+"0000"
	case LevelCounty: // code,name,cityCode,provinceCode
		if !isDigits(code, 6) || r[2] != code[:4] || r[3] != code[:2] {
			return d, fmt.Errorf("bad county row %q", r)
		}
		d.Code, d.Parent = code, r[2]+"00"
	case LevelTownship: // code,name,areaCode,provinceCode,cityCode
		if !isDigits(code, 9) || r[2] != code[:6] || r[3] != code[:2] || r[4] != code[:4] {
			return d, fmt.Errorf("bad township row %q", r)
		}
		d.Code, d.Parent = code, r[2]
	}
	return d, nil
}

// readCSV reads a file with a header row and returns the data rows.
func readCSV(fsys fs.FS, name string, cols int) ([][]string, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = cols
	if _, err := r.Read(); err != nil { // header
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	var rows [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, rec)
	}
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// LookupDivision finds a Zhejiang division by code. It accepts the 6-digit codes of the
// province (330000), a city (330700) and a county-level division (330782), 9-digit township
// codes (330102001), and the short forms of the province and cities (33 → 330000,
// 3307 → 330700). A retired county-level code (see RetiredCodes) returns its successor with
// RetiredFrom set to the code asked for. Anything else, including codes outside Zhejiang,
// is not found.
func LookupDivision(code string) (Division, bool) {
	switch len(code) {
	case 2:
		code += "0000"
	case 4:
		code += "00"
	case 6, 9:
	default:
		return Division{}, false
	}
	if !isDigits(code, len(code)) {
		return Division{}, false
	}
	t := divisions()
	if d, ok := t.byCode[code]; ok {
		return d, true
	}
	if r, ok := t.retired[code]; ok {
		d := t.byCode[r.Successor]
		d.RetiredFrom = code
		return d, true
	}
	return Division{}, false
}

// Divisions lists every division in code order, which puts each division right after its
// parent. The slice is the caller's to keep or modify.
func Divisions() []Division { return slices.Clone(divisions().sorted) }

// CountyLevel returns the 6-digit code that a case at code is numbered under: the
// county-level division for a township or county code, or the city or province itself for
// their codes. A retired code gives its successor. It returns "" for an unknown code.
func CountyLevel(code string) string {
	d, ok := LookupDivision(code)
	if !ok {
		return ""
	}
	if d.Level == LevelTownship {
		return d.Parent
	}
	return d.Code
}

// DivisionPrefix turns a division code into the prefix its sub-divisions share, for
// matching jurisdictions: 330000 → 33, 330700 → 3307, 330782 → 330782, 330782001 →
// 330782001.
func DivisionPrefix(code string) string {
	if len(code) == 6 {
		switch {
		case strings.HasSuffix(code, "0000"):
			return code[:2]
		case strings.HasSuffix(code, "00"):
			return code[:4]
		}
	}
	return code
}

// ProvinceCode is Zhejiang's 6-digit division code. A report placed outside Zhejiang is
// held under it: numbered QF-330000-…, sealed to the province's custodians and triaged
// by the provincial intake office.
const ProvinceCode = "330000"

// provinceCodes are the first two digits of GB/T 2260's provinces, autonomous regions,
// municipalities and special administrative regions (71 台湾, 81 香港, 82 澳门).
var provinceCodes = map[string]bool{}

// provinces are GB/T 2260's provinces, autonomous regions, municipalities and special
// administrative regions, in code order (see Provinces).
var provinces []Division

// Provinces lists the provinces, autonomous regions, municipalities and special
// administrative regions in code order (Code is the six-digit province code, 310000):
// where a place outside Zhejiang lies, as a reporter picks it.
func Provinces() []Division { return slices.Clone(provinces) }

func init() {
	for _, p := range [][2]string{{"11", "北京市"}, {"12", "天津市"}, {"13", "河北省"}, {"14", "山西省"}, {"15", "内蒙古自治区"},
		{"21", "辽宁省"}, {"22", "吉林省"}, {"23", "黑龙江省"}, {"31", "上海市"}, {"32", "江苏省"}, {"33", "浙江省"},
		{"34", "安徽省"}, {"35", "福建省"}, {"36", "江西省"}, {"37", "山东省"}, {"41", "河南省"}, {"42", "湖北省"},
		{"43", "湖南省"}, {"44", "广东省"}, {"45", "广西壮族自治区"}, {"46", "海南省"}, {"50", "重庆市"}, {"51", "四川省"},
		{"52", "贵州省"}, {"53", "云南省"}, {"54", "西藏自治区"}, {"61", "陕西省"}, {"62", "甘肃省"}, {"63", "青海省"},
		{"64", "宁夏回族自治区"}, {"65", "新疆维吾尔自治区"}, {"71", "台湾省"}, {"81", "香港特别行政区"}, {"82", "澳门特别行政区"}} {
		provinceCodes[p[0]] = true
		provinces = append(provinces, Division{Code: p[0] + "0000", Name: p[1], FullName: p[1], Level: LevelProvince})
	}
}

// OutsideZhejiang reports whether code is written as the division code of a place in
// another province: 6 digits (or 9, a township's) that start with a province code other
// than 33, with no county part under a missing city part (310001 is no code). The
// embedded tables cover Zhejiang only, so the rest of the code is not checked further.
func OutsideZhejiang(code string) bool {
	if len(code) != 6 && len(code) != 9 {
		return false
	}
	for _, c := range []byte(code) {
		if c < '0' || c > '9' {
			return false
		}
	}
	if code[:2] == "33" || !provinceCodes[code[:2]] {
		return false
	}
	if code[2:4] == "00" && code[4:6] != "00" {
		return false
	}
	return len(code) == 6 || code[6:] != "000"
}
