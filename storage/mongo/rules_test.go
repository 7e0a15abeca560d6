package mongo

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

func TestRuleStore(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Rules(t, func(t *testing.T) storetest.RuleStore { return NewRuleStore(openTestDB(t, tg)) })
	})
}

// legacyRule and legacyTarget are routing.Rule and routing.Target as they were when
// they carried bson tags (and ruleDoc inlined them): the shape of every rule stored
// before ruleDoc had fields of its own. Frozen here, not derived from ruleDoc, so that
// a renamed document field fails the test.
type legacyTarget struct {
	Relation string `bson:"relation"`
	Unit     string `bson:"unit,omitempty"`
	Kind     string `bson:"kind,omitempty"`
	Division string `bson:"division,omitempty"`
}

type legacyRule struct {
	ID              string         `bson:"_id"`
	Name            string         `bson:"name"`
	Categories      []string       `bson:"categories,omitempty"`
	SubjectKinds    []string       `bson:"subject_kinds,omitempty"`
	OrgTypes        []string       `bson:"org_types,omitempty"`
	DivisionPrefix  string         `bson:"division_prefix,omitempty"`
	DivisionLevel   string         `bson:"division_level,omitempty"`
	SupervisoryUnit string         `bson:"supervisory_unit,omitempty"`
	EmployerUnit    string         `bson:"employer_unit,omitempty"`
	Primary         legacyTarget   `bson:"primary"`
	Inform          []legacyTarget `bson:"inform,omitempty"`
	Priority        int            `bson:"priority"`
	ValidFrom       time.Time      `bson:"valid_from"`
	ValidTo         *time.Time     `bson:"valid_to,omitempty"`
	Version         int            `bson:"version"`
	RetiredIn       int            `bson:"retired_in,omitempty"`
	RetiredAt       *time.Time     `bson:"retired_at,omitempty"`
	RetiredBy       string         `bson:"retired_by,omitempty"`
	CreatedBy       string         `bson:"created_by,omitempty"`
	Pending         bool           `bson:"pending,omitempty"`
}

// TestRuleDocumentShape: a rule written in the old document shape with the raw driver
// reads back whole through the store, retires through it, and a rule the store writes
// has exactly the old shape (so an older release, or a backup taken before, reads it).
func TestRuleDocumentShape(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		s := NewRuleStore(db)
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		to := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		old := legacyRule{ID: "legacy-1", Name: "义乌基金会捐赠", Categories: []string{"donation_misuse", "nonprofit_violation"},
			SubjectKinds: []string{"organization"}, OrgTypes: []string{"基金会"}, DivisionPrefix: "330782", DivisionLevel: "county",
			SupervisoryUnit: "330782-mz", EmployerUnit: "330782-cz",
			Primary:  legacyTarget{Relation: "kind_for_division", Kind: "civil_affairs", Division: "registration"},
			Inform:   []legacyTarget{{Relation: "fixed", Unit: "330782-jw"}, {Relation: "supervisory_unit"}},
			Priority: 120, ValidFrom: from, ValidTo: &to, Version: 1, CreatedBy: "admin-1"}
		if _, err := db.coll(collRules).InsertOne(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := db.coll(collRules).InsertOne(ctx, legacyRule{ID: "legacy-pending", Name: "写了一半", Primary: legacyTarget{Relation: "fixed", Unit: "x"}, Pending: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.coll(collRuleMeta).InsertOne(ctx, bson.M{"_id": ruleMetaID, "version": 1}); err != nil {
			t.Fatal(err)
		}

		want := routing.Rule{ID: "legacy-1", Name: "义乌基金会捐赠", Categories: []intake.Category{"donation_misuse", "nonprofit_violation"},
			SubjectKinds: []routing.SubjectRole{"organization"}, OrgTypes: []string{"基金会"}, DivisionPrefix: "330782", DivisionLevel: "county",
			SupervisoryUnit: "330782-mz", EmployerUnit: "330782-cz",
			Primary:  routing.Target{Relation: routing.RelKindForDivision, Kind: "civil_affairs", Division: "registration"},
			Inform:   []routing.Target{{Relation: routing.RelFixed, Unit: "330782-jw"}, {Relation: routing.RelSupervisoryUnit}},
			Priority: 120, ValidFrom: from, ValidTo: &to, Version: 1, CreatedBy: "admin-1"}
		set, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if set.Version != 1 || len(set.Rules) != 1 || !reflect.DeepEqual(set.Rules[0], want) {
			t.Fatalf("old-shape rule read as version %d, %+v\nwant %+v", set.Version, set.Rules, want)
		}

		at := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
		retired, err := s.Retire(ctx, "legacy-1", "admin-2", at)
		if err != nil {
			t.Fatal(err)
		}
		want.RetiredIn, want.RetiredAt, want.RetiredBy = 2, &at, "admin-2"
		if !reflect.DeepEqual(retired, want) {
			t.Errorf("retired %+v\nwant %+v", retired, want)
		}
		var raw legacyRule
		if err := db.coll(collRules).FindOne(ctx, bson.M{"_id": "legacy-1"}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		old.RetiredIn, old.RetiredAt, old.RetiredBy = 2, &at, "admin-2"
		if !reflect.DeepEqual(raw, old) {
			t.Errorf("stored after retiring %+v\nwant %+v", raw, old)
		}

		// Written by the store: the same field names, nothing more.
		r := want
		r.ID, r.Version, r.RetiredIn, r.RetiredAt, r.RetiredBy = "new-1", 0, 0, nil, ""
		added, err := s.Add(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		var doc bson.M
		if err := db.coll(collRules).FindOne(ctx, bson.M{"_id": "new-1"}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		legacyBytes, err := bson.Marshal(legacyRule{})
		if err != nil {
			t.Fatal(err)
		}
		var legacyKeys bson.M
		if err := bson.Unmarshal(legacyBytes, &legacyKeys); err != nil {
			t.Fatal(err)
		}
		known := map[string]bool{"categories": true, "subject_kinds": true, "org_types": true, "division_prefix": true, "division_level": true,
			"supervisory_unit": true, "employer_unit": true, "inform": true, "valid_to": true, "created_by": true}
		for k := range legacyKeys {
			known[k] = true
		}
		for k := range doc {
			if !known[k] {
				t.Errorf("the store wrote field %q, which the old shape lacks", k)
			}
		}
		raw = legacyRule{}
		if err := db.coll(collRules).FindOne(ctx, bson.M{"_id": "new-1"}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		wantRaw := old
		wantRaw.ID, wantRaw.Version, wantRaw.RetiredIn, wantRaw.RetiredAt, wantRaw.RetiredBy = "new-1", added.Version, 0, nil, ""
		if !reflect.DeepEqual(raw, wantRaw) {
			t.Errorf("written by the store %+v\nwant the old shape %+v", raw, wantRaw)
		}
	})
}
