package routing

import (
	"cmp"
	"slices"
	"strings"
)

// UnitSearchMax is how many units SearchUnits lists at most.
const UnitSearchMax = 50

// SearchUnits finds the units an admin means by q, compared as NormalizeName writes both
// (traditional script, full-width and invisible characters, case and brackets do not
// matter): a unit whose id, name or alias contains q, the unit routing would surely
// take q for (Resolve: 义乌纪委 for 义乌市纪委监委), and the units of a division named by
// its code or its name (330782, 义乌市). Exact matches come first (the id, then a name or
// alias, then routing's match), then the rest in id order. It returns at most limit
// units and how many matched in all; an empty q matches nothing.
func (r *Units) SearchUnits(q string, limit int) ([]RegistryUnit, int) {
	n := NormalizeName(q)
	if n == "" {
		return nil, 0
	}
	var div string
	if d, ok := LookupDivision(n); ok {
		div = d.Code
	} else {
		for _, d := range Divisions() {
			if NormalizeName(d.Name) == n {
				div = d.Code
				break
			}
		}
	}
	sure := r.Resolve(q, "")
	type hit struct {
		u    RegistryUnit
		rank int
	}
	var hits []hit
	for _, u := range r.All() {
		rank := -1
		id := NormalizeName(u.ID)
		names := []string{NormalizeName(u.Name)} // the name, then the aliases
		for _, a := range u.Aliases {
			names = append(names, NormalizeName(a))
		}
		switch {
		case id == n:
			rank = 0
		case slices.Contains(names, n):
			rank = 1
		case sure.Sure && sure.Unit.ID == u.ID:
			rank = 2
		case div != "" && u.Division == div, strings.Contains(id, n),
			slices.ContainsFunc(names, func(name string) bool { return strings.Contains(name, n) }):
			rank = 3
		}
		if rank >= 0 {
			hits = append(hits, hit{u, rank})
		}
	}
	// All lists in id order; the sort is stable, so ties stay in it.
	slices.SortStableFunc(hits, func(a, b hit) int { return cmp.Compare(a.rank, b.rank) })
	out := make([]RegistryUnit, 0, min(limit, len(hits)))
	for _, h := range hits[:min(limit, len(hits))] {
		out = append(out, h.u)
	}
	return out, len(hits)
}
