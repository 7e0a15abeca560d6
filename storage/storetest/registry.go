package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// OrgStore is the organization registry as cmd/qingfeng uses it (import, routing).
type OrgStore interface {
	UpsertOrganizations(ctx context.Context, orgs []routing.Organization) (inserted, updated int, err error)
	Organization(ctx context.Context, code string) (routing.Organization, error)
	EachOrganization(ctx context.Context, fn func(routing.Organization) error) error
	CountOrganizations(ctx context.Context) (int64, error)
}

// UnitStore is the unit registry as cmd/qingfeng uses it (seeding, import, aliases).
type UnitStore interface {
	routing.UnitStorage
	SeedUnits(ctx context.Context, units []routing.RegistryUnit) (int, error)
	UpsertUnits(ctx context.Context, units []routing.RegistryUnit) (inserted, updated int, err error)
}

// Organizations is the suite every OrgStore passes.
func Organizations(t *testing.T, newStore func(t *testing.T) OrgStore) {
	run(t, newStore, []scenario[OrgStore]{
		{"UpsertAndRead", OrgUpsertAndRead},
		{"LoadsTheRouterIndex", testOrgStoreLoadsTheRouterIndex},
	})
}

// Units is the suite every UnitStore passes.
func Units(t *testing.T, newStore func(t *testing.T) UnitStore) {
	run(t, newStore, []scenario[UnitStore]{
		{"SeedUpsertAliases", UnitSeedUpsertAliases},
		{"SeedConcurrently", testSeedUnitsConcurrently},
		{"AliasesConcurrently", testAliasesConcurrently},
	})
}

func testOrg(i int, status routing.OrgStatus) routing.Organization {
	return routing.Organization{
		CreditCode:  fmt.Sprintf("51330782MJ%08d", i), // the store does not check codes
		Name:        fmt.Sprintf("义乌市第%d行业协会", i),
		Type:        "社会团体",
		RegDivision: "330782",
		Status:      status,
		Grade:       "4A",
		Division:    "330782001",
	}
}

// OrgUpsertAndRead is the Organizations scenario of upserts and reads, exported for a
// store with more than one upsert strategy to run on each.
func OrgUpsertAndRead(t *testing.T, s OrgStore) {
	{
		ctx := context.Background()
		fixed := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		before := time.Now().Add(-time.Second)

		if ins, upd, err := s.UpsertOrganizations(ctx, nil); ins != 0 || upd != 0 || err != nil {
			t.Fatalf("empty upsert: %d, %d, %v", ins, upd, err)
		}
		var orgs []routing.Organization
		for i := range 5 {
			orgs = append(orgs, testOrg(i, routing.OrgNormal))
		}
		orgs[0].RegistrationAuthority, orgs[0].SupervisoryUnit, orgs[0].Industry = "330782-mz", "330782-scjg", "商贸"
		ins, upd, err := s.UpsertOrganizations(ctx, orgs)
		if err != nil || ins != 5 || upd != 0 {
			t.Fatalf("first upsert: inserted %d, updated %d, %v", ins, upd, err)
		}

		got, err := s.Organization(ctx, orgs[0].CreditCode)
		if err != nil {
			t.Fatal(err)
		}
		// A zero UpdatedAt is set to now, in UTC, to the millisecond.
		if at := got.UpdatedAt; at.Location() != time.UTC || at.Before(before) || at.After(time.Now().Add(time.Second)) || !at.Equal(at.Truncate(time.Millisecond)) {
			t.Errorf("UpdatedAt = %v, want now in UTC to the millisecond", at)
		}
		want := orgs[0]
		want.UpdatedAt = got.UpdatedAt
		if got != want {
			t.Errorf("round trip\n got %+v\nwant %+v", got, want)
		}

		// Re-import: two existing (one with fields removed), one new; a code given twice
		// counts once and the later copy wins.
		changed := testOrg(0, routing.OrgRevoked) // registration authority etc. dropped
		changed.UpdatedAt = fixed.Add(time.Hour)
		again := testOrg(1, routing.OrgAbnormal)
		dupEarly, dupLate := testOrg(9, routing.OrgNormal), testOrg(9, routing.OrgDishonest)
		ins, upd, err = s.UpsertOrganizations(ctx, []routing.Organization{changed, again, dupEarly, dupLate})
		if err != nil || ins != 1 || upd != 2 {
			t.Fatalf("second upsert: inserted %d, updated %d, %v", ins, upd, err)
		}
		if n, err := s.CountOrganizations(ctx); err != nil || n != 6 {
			t.Errorf("count = %d, %v; want 6", n, err)
		}
		got, _ = s.Organization(ctx, changed.CreditCode)
		if got != changed {
			t.Errorf("replaced\n got %+v\nwant %+v", got, changed)
		}
		if got, _ := s.Organization(ctx, dupLate.CreditCode); got.Status != routing.OrgDishonest {
			t.Errorf("duplicate in one call: status %q, want the later copy's", got.Status)
		}

		_, err = s.Organization(ctx, "51330782MJ99999999")
		if qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
			t.Errorf("missing organization: %v", err)
		}

		var codes []string
		if err := s.EachOrganization(ctx, func(o routing.Organization) error {
			codes = append(codes, o.CreditCode)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(codes)
		if len(codes) != 6 || codes[0] != orgs[0].CreditCode || codes[5] != dupLate.CreditCode {
			t.Errorf("EachOrganization saw %v", codes)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.EachOrganization(ctx, func(routing.Organization) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Errorf("EachOrganization with a failing fn: %v after %d", err, n)
		}
	}
}

func testOrgStoreLoadsTheRouterIndex(t *testing.T, s OrgStore) {
	{
		ctx := context.Background()
		const n = 2500 // several cursor batches
		batch := make([]routing.Organization, 0, 1000)
		for i := range n {
			batch = append(batch, testOrg(i, routing.OrgNormal))
			if len(batch) == cap(batch) || i == n-1 {
				if _, _, err := s.UpsertOrganizations(ctx, batch); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		idx := routing.NewOrgs()
		if err := s.EachOrganization(ctx, func(o routing.Organization) error { idx.Put(o); return nil }); err != nil {
			t.Fatal(err)
		}
		if idx.Len() != n {
			t.Errorf("index has %d organizations, want %d", idx.Len(), n)
		}
		if o, ok := idx.Get(testOrg(1234, "").CreditCode); !ok || o.Name != "义乌市第1234行业协会" {
			t.Errorf("Get = %+v, %v", o, ok)
		}
	}
}

// UnitSeedUpsertAliases is the Units scenario of seeding, upserts and aliases, exported
// like OrgUpsertAndRead.
func UnitSeedUpsertAliases(t *testing.T, s UnitStore) {
	{
		ctx := context.Background()
		if units, err := s.Units(ctx); err != nil || len(units) != 0 {
			t.Fatalf("empty registry: %v, %v", units, err)
		}
		defaults := routing.DefaultUnits()
		n, err := s.SeedUnits(ctx, defaults)
		if err != nil || n != len(defaults) {
			t.Fatalf("seed: %d, %v; want %d", n, err, len(defaults))
		}
		// Idempotent: a restart seeds nothing, and the operator's changes survive it.
		edited := defaults[0]
		edited.Name += "（改）"
		if ins, upd, err := s.UpsertUnits(ctx, []routing.RegistryUnit{edited}); err != nil || ins != 0 || upd != 1 {
			t.Fatalf("upsert edited: %d, %d, %v", ins, upd, err)
		}
		if n, err := s.SeedUnits(ctx, defaults); err != nil || n != 0 {
			t.Errorf("second seed: %d, %v; want 0", n, err)
		}
		units, err := s.Units(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(units) != len(defaults) {
			t.Fatalf("%d units, want %d", len(units), len(defaults))
		}
		if _, err := routing.NewUnits(units); err != nil {
			t.Errorf("the stored registry does not load: %v", err)
		}
		byID := map[string]routing.RegistryUnit{}
		for _, u := range units {
			byID[u.ID] = u
		}
		if !reflect.DeepEqual(byID[edited.ID], edited) {
			t.Errorf("edited unit %+v, want %+v", byID[edited.ID], edited)
		}
		pz := defaults[len(defaults)-1]
		if !reflect.DeepEqual(byID[pz.ID], pz) {
			t.Errorf("round trip %+v, want %+v", byID[pz.ID], pz)
		}
		if !slices.IsSortedFunc(units, func(a, b routing.RegistryUnit) int { return compareStrings(a.ID, b.ID) }) {
			t.Error("units are not in id order")
		}

		added := routing.RegistryUnit{Unit: routing.Unit{ID: "330782-zg-jyj", Name: "义乌市教育局", Kind: routing.KindSupervisor,
			Division: "330782", Level: routing.LevelCounty}, Parent: "330782-jw"}
		if ins, upd, err := s.UpsertUnits(ctx, []routing.RegistryUnit{added}); err != nil || ins != 1 || upd != 0 {
			t.Errorf("upsert new: %d, %d, %v", ins, upd, err)
		}

		// Aliases: added once however often, up to the limit, removed; an unknown unit is
		// not found.
		aliases := func() []string {
			units, err := s.Units(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range units {
				if u.ID == added.ID {
					return u.Aliases
				}
			}
			return nil
		}
		for _, a := range []string{"义乌教育局", "义乌教育局", "义乌市教委"} {
			if err := s.AddAlias(ctx, added.ID, a, 2); err != nil {
				t.Fatalf("add alias %q: %v", a, err)
			}
		}
		if err := s.AddAlias(ctx, added.ID, "第三个", 2); !errors.Is(err, routing.ErrTooManyAliases) {
			t.Errorf("past the limit: %v", err)
		}
		if got := aliases(); !slices.Equal(got, []string{"义乌教育局", "义乌市教委"}) {
			t.Errorf("aliases %v", got)
		}
		if err := s.RemoveAlias(ctx, added.ID, "义乌教育局"); err != nil {
			t.Fatal(err)
		}
		if got := aliases(); !slices.Equal(got, []string{"义乌市教委"}) {
			t.Errorf("after removal %v", got)
		}
		for _, err := range []error{s.AddAlias(ctx, "nope", "x", 2), s.RemoveAlias(ctx, "nope", "x")} {
			var qe *qingfeng.Error
			if !errors.As(err, &qe) || qe.Code != qingfeng.ENOTFOUND {
				t.Errorf("unknown unit: %v", err)
			}
		}
	}
}

// testSeedUnitsConcurrently: two processes starting at once on an empty registry both
// try to seed; neither fails and the registry ends complete.
func testSeedUnitsConcurrently(t *testing.T, s UnitStore) {
	{
		ctx := context.Background()
		defaults := routing.DefaultUnits()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = s.SeedUnits(ctx, defaults) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		units, err := s.Units(ctx)
		if err != nil || len(units) != len(defaults) {
			t.Errorf("%d units, %v; want %d", len(units), err, len(defaults))
		}
	}
}

// testAliasesConcurrently: 16 admins add 16 different aliases to one unit at once,
// with room for 10: exactly 10 land, the others are refused, none is lost.
func testAliasesConcurrently(t *testing.T, s UnitStore) {
	ctx := context.Background()
	if _, err := s.SeedUnits(ctx, routing.DefaultUnits()); err != nil {
		t.Fatal(err)
	}
	id := routing.DefaultUnits()[0].ID
	const n, room = 16, 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.AddAlias(ctx, id, fmt.Sprintf("别名%02d", i), room) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, routing.ErrTooManyAliases):
			t.Error(err)
		}
	}
	units, err := s.Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range units {
		if u.ID == id {
			got = u.Aliases
		}
	}
	if ok != room || len(got) != room {
		t.Errorf("%d additions accepted, %d aliases stored (%v); want %d", ok, len(got), got, room)
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
