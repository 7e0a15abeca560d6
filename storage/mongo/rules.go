package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

const (
	collRules    = "routing_rules"
	collRuleMeta = "routing_meta" // {_id: "rules", version: n}
	ruleMetaID   = "rules"
)

// RuleStore keeps the versioned routing rules. Every change bumps the rule-set version
// in one document; a rule names the version that added it and the one that retired it,
// so any past version can be rebuilt and each case's decision names the one it used.
type RuleStore struct{ db *DB }

// NewRuleStore returns the rule store of db.
func NewRuleStore(db *DB) *RuleStore { return &RuleStore{db: db} }

var errRuleNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "路由规则不存在", "no such routing rule")

// ruleDoc is a rule as stored, with a pending flag: a rule is written pending, then
// the version is bumped, then the rule gets that version and is no longer pending. A
// reader never sees a version without its rule; a crash in between leaves only a
// pending rule, which is ignored. The field names are those routing.Rule's bson tags
// gave before the domain type lost them: stored rules read as they were written.
type ruleDoc struct {
	ID              string      `bson:"_id"`
	Name            string      `bson:"name"`
	Categories      []string    `bson:"categories,omitempty"`
	SubjectKinds    []string    `bson:"subject_kinds,omitempty"`
	OrgTypes        []string    `bson:"org_types,omitempty"`
	DivisionPrefix  string      `bson:"division_prefix,omitempty"`
	DivisionLevel   string      `bson:"division_level,omitempty"`
	SupervisoryUnit string      `bson:"supervisory_unit,omitempty"`
	EmployerUnit    string      `bson:"employer_unit,omitempty"`
	Primary         targetDoc   `bson:"primary"`
	Inform          []targetDoc `bson:"inform,omitempty"`
	Priority        int         `bson:"priority"`
	ValidFrom       time.Time   `bson:"valid_from"`
	ValidTo         *time.Time  `bson:"valid_to,omitempty"`
	Version         int         `bson:"version"`
	RetiredIn       int         `bson:"retired_in,omitempty"`
	RetiredAt       *time.Time  `bson:"retired_at,omitempty"`
	RetiredBy       string      `bson:"retired_by,omitempty"`
	CreatedBy       string      `bson:"created_by,omitempty"`
	Pending         bool        `bson:"pending,omitempty"`
}

// targetDoc is a rule's destination or informed unit.
type targetDoc struct {
	Relation string `bson:"relation"`
	Unit     string `bson:"unit,omitempty"`
	Kind     string `bson:"kind,omitempty"`
	Division string `bson:"division,omitempty"`
}

func toTargetDoc(t routing.Target) targetDoc {
	return targetDoc{Relation: string(t.Relation), Unit: t.Unit, Kind: string(t.Kind), Division: t.Division}
}

func (d targetDoc) target() routing.Target {
	return routing.Target{Relation: routing.Relation(d.Relation), Unit: d.Unit, Kind: routing.UnitKind(d.Kind), Division: d.Division}
}

// mapSlice converts each element of in with f; nil stays nil, so that omitempty
// fields round-trip as they were.
func mapSlice[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func toRuleDoc(r routing.Rule, pending bool) ruleDoc {
	return ruleDoc{
		ID: r.ID, Name: r.Name,
		Categories:   mapSlice(r.Categories, func(c intake.Category) string { return string(c) }),
		SubjectKinds: mapSlice(r.SubjectKinds, func(k routing.SubjectRole) string { return string(k) }),
		OrgTypes:     r.OrgTypes, DivisionPrefix: r.DivisionPrefix, DivisionLevel: string(r.DivisionLevel),
		SupervisoryUnit: r.SupervisoryUnit, EmployerUnit: r.EmployerUnit,
		Primary: toTargetDoc(r.Primary), Inform: mapSlice(r.Inform, toTargetDoc), Priority: r.Priority,
		ValidFrom: r.ValidFrom, ValidTo: r.ValidTo,
		Version: r.Version, RetiredIn: r.RetiredIn, RetiredAt: r.RetiredAt, RetiredBy: r.RetiredBy, CreatedBy: r.CreatedBy,
		Pending: pending,
	}
}

func (d *ruleDoc) rule() routing.Rule {
	return routing.Rule{
		ID: d.ID, Name: d.Name,
		Categories:   mapSlice(d.Categories, func(c string) intake.Category { return intake.Category(c) }),
		SubjectKinds: mapSlice(d.SubjectKinds, func(k string) routing.SubjectRole { return routing.SubjectRole(k) }),
		OrgTypes:     d.OrgTypes, DivisionPrefix: d.DivisionPrefix, DivisionLevel: routing.Level(d.DivisionLevel),
		SupervisoryUnit: d.SupervisoryUnit, EmployerUnit: d.EmployerUnit,
		Primary: d.Primary.target(), Inform: mapSlice(d.Inform, targetDoc.target), Priority: d.Priority,
		ValidFrom: d.ValidFrom, ValidTo: d.ValidTo,
		Version: d.Version, RetiredIn: d.RetiredIn, RetiredAt: d.RetiredAt, RetiredBy: d.RetiredBy, CreatedBy: d.CreatedBy,
	}
}

// Version returns the current rule-set version, 0 when no rules were ever stored.
func (s *RuleStore) Version(ctx context.Context) (int, error) {
	var m struct {
		Version int `bson:"version"`
	}
	err := s.db.coll(collRuleMeta).FindOne(ctx, bson.M{"_id": ruleMetaID}).Decode(&m)
	if err == mongodrv.ErrNoDocuments {
		return 0, nil
	}
	if err != nil {
		return 0, storeError("read rule-set version", err, nil, nil)
	}
	return m.Version, nil
}

// Load returns the current rule set: every rule ever added (retired ones included,
// each knowing its versions) and the current version.
func (s *RuleStore) Load(ctx context.Context) (routing.RuleSet, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return routing.RuleSet{}, err
	}
	docs, err := findAll[ruleDoc](ctx, s.db, collRules, "load rules", bson.M{}, options.Find().SetSort(bson.D{asc("_id")}))
	if err != nil {
		return routing.RuleSet{}, err
	}
	set := routing.RuleSet{Version: v}
	for _, d := range docs {
		if d.Pending || d.Version > v {
			continue
		}
		set.Rules = append(set.Rules, d.rule())
	}
	return set, nil
}

// Seed stores set as the first rule-set version if no rules were ever stored. It is
// idempotent and returns whether it seeded.
func (s *RuleStore) Seed(ctx context.Context, set routing.RuleSet) (bool, error) {
	if v, err := s.Version(ctx); err != nil || v > 0 {
		return false, err
	}
	for _, r := range set.Rules {
		_, err := s.db.coll(collRules).InsertOne(ctx, toRuleDoc(r, false))
		if err != nil && !mongodrv.IsDuplicateKeyError(err) {
			return false, storeError("seed rule "+r.ID, err, nil, nil)
		}
	}
	_, err := s.db.coll(collRuleMeta).InsertOne(ctx, bson.M{"_id": ruleMetaID, "version": set.Version})
	if mongodrv.IsDuplicateKeyError(err) {
		return false, nil // another process seeded first
	}
	if err != nil {
		return false, storeError("seed rule-set version", err, nil, nil)
	}
	return true, nil
}

func (s *RuleStore) bump(ctx context.Context) (int, error) {
	var m struct {
		Version int `bson:"version"`
	}
	err := s.db.findOneAndUpdate(ctx, collRuleMeta, ruleMetaID, bson.M{"$inc": bson.M{"version": 1}}, true).Decode(&m)
	if err != nil {
		return 0, storeError("bump rule-set version", err, nil, nil)
	}
	return m.Version, nil
}

// Add stores a new rule in a new rule-set version and returns the rule as stored.
// The rule's id must be new (ECONFLICT otherwise).
func (s *RuleStore) Add(ctx context.Context, r routing.Rule) (routing.Rule, error) {
	r.Version, r.RetiredIn, r.RetiredAt, r.RetiredBy = 0, 0, nil, ""
	r.ValidFrom = r.ValidFrom.UTC()
	conflict := qingfeng.Errorf(qingfeng.ECONFLICT, "规则编号已存在", "a rule with this id exists")
	if _, err := s.db.coll(collRules).InsertOne(ctx, toRuleDoc(r, true)); err != nil {
		return routing.Rule{}, storeError("add rule "+r.ID, err, nil, conflict)
	}
	v, err := s.bump(ctx)
	if err != nil {
		return routing.Rule{}, err
	}
	if _, err := s.db.updateOne(ctx, collRules, r.ID, nil, bson.M{"$set": bson.M{"version": v}, "$unset": bson.M{"pending": ""}}); err != nil {
		return routing.Rule{}, storeError("add rule "+r.ID, err, nil, nil)
	}
	r.Version = v
	return r, nil
}

// Retire retires rule id in a new rule-set version. Retiring a retired rule is
// ECONFLICT; an unknown one ENOTFOUND.
func (s *RuleStore) Retire(ctx context.Context, id, by string, at time.Time) (routing.Rule, error) {
	var cur ruleDoc
	if err := s.db.coll(collRules).FindOne(ctx, bson.M{"_id": id}).Decode(&cur); err != nil {
		return routing.Rule{}, storeError("retire rule "+id, err, errRuleNotFound, nil)
	}
	if cur.Pending {
		return routing.Rule{}, errRuleNotFound
	}
	if cur.RetiredIn != 0 {
		return routing.Rule{}, qingfeng.Errorf(qingfeng.ECONFLICT, "该规则已停用", "the rule is already retired")
	}
	v, err := s.bump(ctx)
	if err != nil {
		return routing.Rule{}, err
	}
	at = at.UTC()
	res, err := s.db.updateOne(ctx, collRules, id, bson.M{"retired_in": bson.M{"$exists": false}},
		bson.M{"$set": bson.M{"retired_in": v, "retired_at": at, "retired_by": by}})
	if err != nil {
		return routing.Rule{}, storeError("retire rule "+id, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		// Retired meanwhile by someone else; the version bump is harmless.
		return routing.Rule{}, qingfeng.Errorf(qingfeng.ECONFLICT, "该规则已停用", "the rule is already retired")
	}
	cur.RetiredIn, cur.RetiredAt, cur.RetiredBy = v, &at, by
	return cur.rule(), nil
}
