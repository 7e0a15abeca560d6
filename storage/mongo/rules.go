package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng"
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

// ruleDoc adds a pending flag to a rule: a rule is written pending, then the version
// is bumped, then the rule gets that version and is no longer pending. A reader never
// sees a version without its rule; a crash in between leaves only a pending rule,
// which is ignored.
type ruleDoc struct {
	routing.Rule `bson:",inline"`
	Pending      bool `bson:"pending,omitempty"`
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
		set.Rules = append(set.Rules, d.Rule)
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
		_, err := s.db.coll(collRules).InsertOne(ctx, ruleDoc{Rule: r})
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
	if _, err := s.db.coll(collRules).InsertOne(ctx, ruleDoc{Rule: r, Pending: true}); err != nil {
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
	return cur.Rule, nil
}
