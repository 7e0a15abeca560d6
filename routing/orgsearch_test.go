package routing

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// TestParseOrgQueryVariants: every way staff may type one code or one name gives the
// key the case was indexed under, and the variants of a code are never read as a name.
func TestParseOrgQueryVariants(t *testing.T) {
	const code = "53330000501874064B"
	codes := []string{
		code, strings.ToLower(code), "５３３３００００５０１８７４０６４Ｂ", " 5333 0000 5018 7406 4B ",
		"5333\u200b0000501874064B", "\ufeff53330000501874064b\u2060", "53330000501874064B\u3000",
		"53330000501874064A", // a failing check character is still a code
	}
	for _, q := range codes {
		got, err := ParseOrgQuery(q)
		if err != nil {
			t.Errorf("ParseOrgQuery(%q): %v", q, err)
			continue
		}
		want := code
		if strings.HasSuffix(q, "A") {
			want = "53330000501874064A"
		}
		if got.Code != want || got.Key != "c:"+want || got.Name != "" {
			t.Errorf("ParseOrgQuery(%q) = %+v, want the code %s", q, got, want)
		}
	}
	names := []string{"浙江省爱心事业", "浙江省愛心事業", "浙江省 爱心\u200b事业", "ＡＢＣ浙江省爱心事业"}
	wantNames := []string{"浙江省爱心事业", "浙江省爱心事业", "浙江省爱心事业", "abc浙江省爱心事业"}
	for i, q := range names {
		got, err := ParseOrgQuery(q)
		if err != nil || got.Name != wantNames[i] || got.Key != "n:"+wantNames[i] || got.Code != "" {
			t.Errorf("ParseOrgQuery(%q) = %+v, %v; want the name %s", q, got, err, wantNames[i])
		}
	}
	// Brackets of either width give one key.
	a, _ := ParseOrgQuery("某某（义乌）慈善会")
	b, _ := ParseOrgQuery("某某(义乌)慈善会")
	if a.Key != b.Key || a.Key != "n:某某(义乌)慈善会" {
		t.Errorf("brackets: %q and %q", a.Key, b.Key)
	}
	// A near-code (17 or 19 characters, a letter outside the alphabet) is a name.
	for _, q := range []string{code[:17], code + "1", "5333000050187406OB"} {
		if got, err := ParseOrgQuery(q); err != nil || got.Code != "" {
			t.Errorf("ParseOrgQuery(%q) = %+v, %v; want a name", q, got, err)
		}
	}
	for _, q := range []string{"", " ", "某", "\u200b某\u200b", "（"} {
		if _, err := ParseOrgQuery(q); err == nil {
			t.Errorf("ParseOrgQuery(%q): no error for a query under two characters", q)
		}
	}
	long := strings.Repeat("慈", OrgPrefixMax+10)
	if got, err := ParseOrgQuery(long); err != nil || got.Key != "n:"+strings.Repeat("慈", OrgPrefixMax) {
		t.Errorf("a long name: %+v, %v", got, err)
	}
}

// TestOrgSearchKeys: a case is found by the query for each spelling of its code and of
// every prefix of its name, by the registry's code and name as routing resolved them,
// and not by a substring or another organization.
func TestOrgSearchKeys(t *testing.T) {
	e := testEngine(t)
	route := func(c *intake.Case) []string {
		t.Helper()
		c.Description = "x"
		d, err := e.Route(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		c.Decision = d
		keys := OrgSearchKeys(c)
		// A transfer's decision has no inputs: the keys stay those of the routing.
		c.EarlierDecisions, c.Decision = []intake.Decision{d}, intake.Decision{UnitID: "330782-jw", Reason: "转办"}
		if after := OrgSearchKeys(c); !slices.Equal(after, keys) {
			t.Errorf("after a transfer: keys %v, were %v", after, keys)
		}
		return keys
	}
	finds := func(keys []string, q string) bool {
		oq, err := ParseOrgQuery(q)
		if err != nil {
			t.Fatalf("ParseOrgQuery(%q): %v", q, err)
		}
		return slices.Contains(keys, oq.Key)
	}

	// Filed with only the code: found by the code and by the registered name.
	byCode := route(orgCase("donation_misuse", "330000", "５３３３００００５０１８７４０６４ｂ", ""))
	for _, q := range []string{"53330000501874064B", "53330000501874064b", "浙江省爱心事业基金会", "浙江省愛心", "浙江", "爱心事业", "愛心事業基金會"} {
		if !finds(byCode, q) {
			t.Errorf("a case filed with only the code is not found by %q (keys %v)", q, byCode)
		}
	}
	// Filed with only the registered name (traditional script): found by the code.
	byName := route(orgCase("donation_misuse", "330782", "", "義烏市某行業協會"))
	for _, q := range []string{"51330782MJ0000018J", "51330782mj0000018j", "义乌市某行业协会", "义乌市某", "某行业", "某行業協會"} {
		if !finds(byName, q) {
			t.Errorf("a case filed with only the name is not found by %q (keys %v)", q, byName)
		}
	}
	if finds(byName, "行业协会") || finds(byName, "乌市某行业") {
		t.Error("a substring of the name finds it")
	}
	// An organization the registry does not know: its own name and code only.
	unknown := route(orgCase("illegal_org", "330782", "", "某某（义乌）慈善会"))
	for _, q := range []string{"某某(义乌)慈善会", "某某（義烏）", "某某"} {
		if !finds(unknown, q) {
			t.Errorf("not found by %q (keys %v)", q, unknown)
		}
	}
	for _, q := range []string{"慈善会", "义乌", "53330000501874064B", "某某（义乌）慈善会分会"} {
		if finds(unknown, q) {
			t.Errorf("found by %q, which it does not start with", q)
		}
	}
	// A person is no organization, even one employed by a registered one.
	if k := route(personCase("official_discipline", "330782", "张三", "会长", "义乌市某行业协会")); len(k) != 0 {
		t.Errorf("a person's case has organization keys %v", k)
	}
	for _, k := range append(append(byCode, byName...), unknown...) {
		if strings.Count(k, ":") != 1 {
			t.Errorf("key %q", k)
		}
	}
}
