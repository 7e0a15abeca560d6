package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// RuleStore keeps the versioned routing rules. Every change bumps the rule-set version;
// a rule names the version that added it and the one that retired it, so any past
// version can be rebuilt and each case's decision names the one it used.
type RuleStore struct{ db *DB }

// NewRuleStore returns the rule store of db.
func NewRuleStore(db *DB) *RuleStore { return &RuleStore{db: db} }

var (
	errRuleNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "路由规则不存在", "no such routing rule")
	errRuleExists   = qingfeng.Errorf(qingfeng.ECONFLICT, "规则编号已存在", "a rule with this id exists")
	errRuleRetired  = qingfeng.Errorf(qingfeng.ECONFLICT, "该规则已停用", "the rule is already retired")
)

// ruleBody is a rule as stored in the body column: the rule without its version and
// retirement, which are columns.
func ruleBody(r routing.Rule) (string, error) {
	r.Version, r.RetiredIn, r.RetiredAt, r.RetiredBy = 0, 0, nil, ""
	b, err := json.Marshal(r)
	return string(b), err
}

func scanRule(s interface{ Scan(...any) error }) (routing.Rule, error) {
	var (
		r         routing.Rule
		body      string
		version   int
		retiredIn int
		retiredAt sql.NullInt64
		retiredBy string
	)
	if err := s.Scan(&version, &retiredIn, &retiredAt, &retiredBy, &body); err != nil {
		return routing.Rule{}, err
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return routing.Rule{}, fmt.Errorf("stored rule: %w", err)
	}
	r.Version, r.RetiredIn, r.RetiredBy = version, retiredIn, retiredBy
	if retiredAt.Valid {
		at := fromMillis(retiredAt)
		r.RetiredAt = &at
	}
	return r, nil
}

const ruleColumns = "version, retired_in, retired_at, retired_by, body"

func ruleVersion(ctx context.Context, q queryer) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "SELECT version FROM routing_rule_version WHERE one = 1").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// Version returns the current rule-set version, 0 when no rules were ever stored.
func (s *RuleStore) Version(ctx context.Context) (int, error) {
	v, err := ruleVersion(ctx, s.db.r)
	return v, storeError("read rule-set version", err, nil, nil)
}

// Load returns the current rule set: every rule ever added (retired ones included,
// each knowing its versions) and the current version, from one read snapshot.
func (s *RuleStore) Load(ctx context.Context) (routing.RuleSet, error) {
	tx, err := s.db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return routing.RuleSet{}, storeError("load rules", err, nil, nil)
	}
	defer tx.Rollback()
	v, err := ruleVersion(ctx, tx)
	if err != nil {
		return routing.RuleSet{}, storeError("load rules", err, nil, nil)
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+ruleColumns+" FROM routing_rules WHERE version <= ? ORDER BY id", v)
	if err != nil {
		return routing.RuleSet{}, storeError("load rules", err, nil, nil)
	}
	defer rows.Close()
	set := routing.RuleSet{Version: v}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return routing.RuleSet{}, storeError("load rules", err, nil, nil)
		}
		set.Rules = append(set.Rules, r)
	}
	return set, storeError("load rules", rows.Err(), nil, nil)
}

// Seed stores set as the first rule-set version if no rules were ever stored. It is
// idempotent and returns whether it seeded.
func (s *RuleStore) Seed(ctx context.Context, set routing.RuleSet) (bool, error) {
	seeded := false
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if v, err := ruleVersion(ctx, tx); err != nil || v > 0 {
			return err
		}
		for _, r := range set.Rules {
			body, err := ruleBody(r)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO routing_rules (id, version, body) VALUES (?, ?, ?)", r.ID, set.Version, body); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO routing_rule_version (one, version) VALUES (1, ?)", set.Version)
		seeded = err == nil
		return err
	})
	return seeded, storeError("seed rules", err, nil, nil)
}

// bump increments the rule-set version in tx and returns the new one.
func bump(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, `INSERT INTO routing_rule_version (one, version) VALUES (1, 1)
		ON CONFLICT (one) DO UPDATE SET version = version + 1 RETURNING version`).Scan(&v)
	return v, err
}

// Add stores a new rule in a new rule-set version and returns the rule as stored.
// The rule's id must be new (ECONFLICT otherwise).
func (s *RuleStore) Add(ctx context.Context, r routing.Rule) (routing.Rule, error) {
	r.Version, r.RetiredIn, r.RetiredAt, r.RetiredBy = 0, 0, nil, ""
	r.ValidFrom = r.ValidFrom.UTC()
	body, err := ruleBody(r)
	if err != nil {
		return routing.Rule{}, fmt.Errorf("add rule %s: %w", r.ID, err)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		v, err := bump(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO routing_rules (id, version, body) VALUES (?, ?, ?)", r.ID, v, body); err != nil {
			return err // rolls the bump back too
		}
		r.Version = v
		return nil
	})
	if err != nil {
		return routing.Rule{}, storeError("add rule "+r.ID, err, nil, errRuleExists)
	}
	return r, nil
}

// Retire retires rule id in a new rule-set version. Retiring a retired rule is
// ECONFLICT; an unknown one ENOTFOUND.
func (s *RuleStore) Retire(ctx context.Context, id, by string, at time.Time) (routing.Rule, error) {
	var out routing.Rule
	op := "retire rule " + id
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := scanRule(tx.QueryRowContext(ctx, "SELECT "+ruleColumns+" FROM routing_rules WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return domainError(errRuleNotFound, op+": no such rule")
		}
		if err != nil {
			return err
		}
		if cur.RetiredIn != 0 {
			return domainError(errRuleRetired, op+": retired in version "+fmt.Sprint(cur.RetiredIn))
		}
		v, err := bump(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE routing_rules SET retired_in = ?, retired_at = ?, retired_by = ? WHERE id = ?",
			v, at.UnixMilli(), by, id); err != nil {
			return err
		}
		at := time.UnixMilli(at.UnixMilli()).UTC()
		cur.RetiredIn, cur.RetiredAt, cur.RetiredBy = v, &at, by
		out = cur
		return nil
	})
	if err != nil {
		return routing.Rule{}, storeError(op, err, nil, nil)
	}
	return out, nil
}
