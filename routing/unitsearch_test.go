package routing

import (
	"slices"
	"testing"
)

// TestSearchUnits: a unit is found however its name, alias or id is written (traditional
// script, full-width, invisible characters, upper case), and a division's units by the
// division's code or name; exact matches come first; the count covers what is not listed.
func TestSearchUnits(t *testing.T) {
	list := DefaultUnits()
	for i := range list {
		if list[i].ID == "330782-mz" {
			list[i].Aliases = []string{"义乌民政"}
		}
	}
	units, err := NewUnits(list)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(us []RegistryUnit) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name, q, first string
		also           []string
	}{
		{"name", "义乌市民政局", "330782-mz", nil},
		{"traditional", "義烏市民政局", "330782-mz", nil},
		{"full-width and spaced", "义乌市 民政局　", "330782-mz", nil},
		{"zero-width", "义乌\u200b市民\u2060政局\ufeff", "330782-mz", nil},
		{"alias", "义乌民政", "330782-mz", nil},
		{"alias, traditional", "義烏民政", "330782-mz", nil},
		{"code upper case", "330782-MZ", "330782-mz", []string{"330782-mz-pz"}},
		{"code full-width", "３３０７８２－ｍｚ", "330782-mz", nil},
		{"routing's spelling", "浙江省义乌市纪律检查委员会", "330782-jw", nil},
		{"division code", "330922", "330922-cz", []string{"330922-jw", "330922-mz", "330922-mz-pz", "330922-xf"}},
		{"division name", "嵊泗县", "330922-cz", []string{"330922-jw", "330922-mz-pz"}},
		{"part of a name", "嵊泗县民政", "330922-mz", []string{"330922-mz-pz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total := units.SearchUnits(tc.q, UnitSearchMax)
			if len(got) == 0 || got[0].ID != tc.first {
				t.Fatalf("SearchUnits(%q) = %v, want %s first", tc.q, ids(got), tc.first)
			}
			for _, id := range tc.also {
				if !slices.Contains(ids(got), id) {
					t.Errorf("SearchUnits(%q) = %v, lacks %s", tc.q, ids(got), id)
				}
			}
			if total < len(got) {
				t.Errorf("total %d < listed %d", total, len(got))
			}
		})
	}
	for _, q := range []string{"", " \u200b　", "no such unit 9"} {
		if got, total := units.SearchUnits(q, UnitSearchMax); len(got) != 0 || total != 0 {
			t.Errorf("SearchUnits(%q) = %v, %d; want nothing", q, ids(got), total)
		}
	}
	// 民政 matches one unit in every division: listed up to the limit, counted in full.
	got, total := units.SearchUnits("民政", 5)
	if len(got) != 5 || total < 100 {
		t.Errorf("民政: %d listed, %d in all", len(got), total)
	}
}
