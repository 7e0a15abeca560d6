package routing

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDivisionCountsPerLevel(t *testing.T) {
	// The counts of the embedded dataset (cut-off 2022-10-31); see data/README.md.
	want := map[Level]int{LevelProvince: 1, LevelCity: 11, LevelCounty: 90, LevelTownship: 1387}
	got := map[Level]int{}
	for _, d := range Divisions() {
		got[d.Level]++
	}
	for level, n := range want {
		if got[level] != n {
			t.Errorf("%s (%s): %d divisions, want %d", level, level.Label(), got[level], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("levels %v, want exactly %v", got, want)
	}
}

func TestDivisionsAreSortedAndConsistent(t *testing.T) {
	all := Divisions()
	if !slices.IsSortedFunc(all, func(a, b Division) int { return strings.Compare(a.Code, b.Code) }) {
		t.Fatal("Divisions() is not sorted by code")
	}
	if all[0].Code != "330000" {
		t.Fatalf("first division %s, want the province 330000", all[0].Code)
	}
	for _, d := range all {
		wantLen := 6
		if d.Level == LevelTownship {
			wantLen = 9
		}
		if !isDigits(d.Code, wantLen) {
			t.Errorf("%s %s: code is not %d digits", d.Code, d.Name, wantLen)
		}
		if d.RetiredFrom != "" {
			t.Errorf("%s: RetiredFrom set in the plain list", d.Code)
		}
		if d.Level == LevelProvince {
			if d.Parent != "" || d.FullName != "浙江省" {
				t.Errorf("province: %+v", d)
			}
			continue
		}
		p, ok := LookupDivision(d.Parent)
		if !ok {
			t.Errorf("%s %s: parent %s not found", d.Code, d.Name, d.Parent)
			continue
		}
		if d.FullName != p.FullName+d.Name {
			t.Errorf("%s: full name %q, want %q", d.Code, d.FullName, p.FullName+d.Name)
		}
		// A child's code starts with the significant digits of its parent's.
		if !strings.HasPrefix(d.Code, strings.TrimRight(p.Code, "0")) {
			t.Errorf("%s is not under its parent %s", d.Code, p.Code)
		}
	}
}

func TestDivisionsReturnsACopy(t *testing.T) {
	a := Divisions()
	a[0].Name = "changed"
	if b := Divisions(); b[0].Name != "浙江省" {
		t.Fatalf("modifying the result of Divisions changed the table: %q", b[0].Name)
	}
}

func TestLookupDivision(t *testing.T) {
	tests := []struct {
		in                                        string
		code, name, fullName, parent, retiredFrom string
		level                                     Level
	}{
		{in: "330782", code: "330782", name: "义乌市", fullName: "浙江省金华市义乌市", parent: "330700", level: LevelCounty},
		{in: "330700", code: "330700", name: "金华市", fullName: "浙江省金华市", parent: "330000", level: LevelCity},
		{in: "3307", code: "330700", name: "金华市", fullName: "浙江省金华市", parent: "330000", level: LevelCity},
		{in: "330000", code: "330000", name: "浙江省", fullName: "浙江省", level: LevelProvince},
		{in: "33", code: "330000", name: "浙江省", fullName: "浙江省", level: LevelProvince},
		{in: "330102001", code: "330102001", name: "清波街道", fullName: "浙江省杭州市上城区清波街道", parent: "330102", level: LevelTownship},
		{in: "330782001", code: "330782001", name: "稠城街道", fullName: "浙江省金华市义乌市稠城街道", parent: "330782", level: LevelTownship},
		{in: "331127", code: "331127", name: "景宁畲族自治县", fullName: "浙江省丽水市景宁畲族自治县", parent: "331100", level: LevelCounty},
		// Retired in the 2021 Hangzhou redistricting: the successor, marked.
		{in: "330104", code: "330102", name: "上城区", fullName: "浙江省杭州市上城区", parent: "330100", level: LevelCounty, retiredFrom: "330104"},
		{in: "330103", code: "330105", name: "拱墅区", fullName: "浙江省杭州市拱墅区", parent: "330100", level: LevelCounty, retiredFrom: "330103"},
		{in: "330283", code: "330213", name: "奉化区", fullName: "浙江省宁波市奉化区", parent: "330200", level: LevelCounty, retiredFrom: "330283"},
	}
	for _, tt := range tests {
		d, ok := LookupDivision(tt.in)
		if !ok {
			t.Errorf("LookupDivision(%q): not found", tt.in)
			continue
		}
		want := Division{Code: tt.code, Name: tt.name, FullName: tt.fullName, Level: tt.level, Parent: tt.parent, RetiredFrom: tt.retiredFrom}
		if d != want {
			t.Errorf("LookupDivision(%q) = %+v, want %+v", tt.in, d, want)
		}
	}
}

func TestLookupDivisionNotFound(t *testing.T) {
	for _, in := range []string{
		"", "3", "330", "33078", "3307820", "33078200", "3301020011", "330102001000",
		"33078A", "33O782", "-33078", "３３０７８２", " 330782", "330782 ",
		"110101",     // 北京市东城区: outside Zhejiang
		"11", "1101", // Beijing, short forms
		"330101",    // 杭州市市辖区: a statistical placeholder, not in the data
		"339999",    // well-formed, unknown
		"330104001", // a township under a retired county: townships are not mapped
		"330782999",
	} {
		if d, ok := LookupDivision(in); ok {
			t.Errorf("LookupDivision(%q) = %+v, want not found", in, d)
		}
	}
}

func TestCountyLevel(t *testing.T) {
	tests := map[string]string{
		"330782":    "330782",
		"330782001": "330782",
		"330102001": "330102",
		"3307":      "330700",
		"330700":    "330700",
		"33":        "330000",
		"330104":    "330102", // retired: the successor numbers the case
		"110101":    "",
		"":          "",
		"33078A":    "",
	}
	for in, want := range tests {
		if got := CountyLevel(in); got != want {
			t.Errorf("CountyLevel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetiredCodes(t *testing.T) {
	list := RetiredCodes()
	if len(list) == 0 {
		t.Fatal("no retired codes")
	}
	seen := map[string]bool{}
	for _, r := range list {
		if seen[r.Code] {
			t.Errorf("%s listed twice", r.Code)
		}
		seen[r.Code] = true
		if r.Year < 2013 || r.Year > 2022 {
			t.Errorf("%s: year %d outside the data's range", r.Code, r.Year)
		}
		// A retired code shares its city with its successor: these were all changes within a city.
		if r.Code[:4] != r.Successor[:4] {
			t.Errorf("%s %s → %s: different cities", r.Code, r.Name, r.Successor)
		}
		d, ok := LookupDivision(r.Code)
		if !ok || d.Code != r.Successor || d.RetiredFrom != r.Code || d.Level != LevelCounty {
			t.Errorf("LookupDivision(%s) = %+v, %v; want successor %s marked retired", r.Code, d, ok, r.Successor)
		}
	}
	list[0].Successor = "changed"
	if RetiredCodes()[0].Successor == "changed" {
		t.Error("RetiredCodes returned the table itself")
	}
}

func TestLevelLabels(t *testing.T) {
	for l, want := range map[Level]string{LevelProvince: "省级", LevelCity: "地级", LevelCounty: "县级", LevelTownship: "乡级", "bogus": ""} {
		if got := l.Label(); got != want {
			t.Errorf("%s.Label() = %q, want %q", l, got, want)
		}
	}
}

// TestLoadDivisionsRejectsBadData feeds the loader broken copies of the data: a bad update
// of data/ must fail the tests, not produce a half-right table.
func TestLoadDivisionsRejectsBadData(t *testing.T) {
	good := fstest.MapFS{
		"data/provinces.csv": {Data: []byte("code,name\n33,\"浙江省\"\n")},
		"data/cities.csv":    {Data: []byte("code,name,provinceCode\n3301,\"杭州市\",33\n")},
		"data/areas.csv":     {Data: []byte("code,name,cityCode,provinceCode\n330102,\"上城区\",3301,33\n330105,\"拱墅区\",3301,33\n")},
		"data/streets.csv":   {Data: []byte("code,name,areaCode,provinceCode,cityCode\n330102001,\"清波街道\",330102,33,3301\n")},
	}
	// The retired table names successors all over the province, so a minimal data set is
	// only checked up to that point; the full embedded set passes in the other tests.
	if _, err := loadDivisions(good); err == nil || !strings.Contains(err.Error(), "successor") {
		t.Fatalf("minimal data: err = %v, want a complaint about a missing successor", err)
	}
	bad := map[string]struct{ file, data string }{
		"duplicate":        {"data/areas.csv", "code,name,cityCode,provinceCode\n330102,\"上城区\",3301,33\n330102,\"上城区\",3301,33\n"},
		"orphan township":  {"data/streets.csv", "code,name,areaCode,provinceCode,cityCode\n330199001,\"某街道\",330199,33,3301\n"},
		"wrong city":       {"data/areas.csv", "code,name,cityCode,provinceCode\n330102,\"上城区\",3302,33\n"},
		"short code":       {"data/areas.csv", "code,name,cityCode,provinceCode\n33010,\"上城区\",3301,33\n"},
		"missing column":   {"data/cities.csv", "code,name,provinceCode\n3301,\"杭州市\"\n"},
		"empty name":       {"data/cities.csv", "code,name,provinceCode\n3301,,33\n"},
		"retired in data":  {"data/areas.csv", "code,name,cityCode,provinceCode\n330104,\"江干区\",3301,33\n"},
		"missing file":     {"data/streets.csv", ""},
		"letters in code":  {"data/provinces.csv", "code,name\n3A,\"浙江省\"\n"},
		"township in city": {"data/streets.csv", "code,name,areaCode,provinceCode,cityCode\n330102001,\"清波街道\",330102,33,3302\n"},
	}
	for name, b := range bad {
		fsys := fstest.MapFS{}
		for k, v := range good {
			fsys[k] = v
		}
		if b.data == "" {
			delete(fsys, b.file)
		} else {
			fsys[b.file] = &fstest.MapFile{Data: []byte(b.data)}
		}
		_, err := loadDivisions(fsys)
		if err == nil || strings.Contains(err.Error(), "successor") {
			t.Errorf("%s: err = %v, want the data rejected before the retired-code check", name, err)
		}
	}
}
