package routing

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/qingfeng-zj/qingfeng"
)

// RuleStorage keeps rule sets (storage/mongo's RuleStore).
type RuleStorage interface {
	Load(ctx context.Context) (RuleSet, error)
	Version(ctx context.Context) (int, error)
	Add(ctx context.Context, r Rule) (Rule, error)
	Retire(ctx context.Context, id, by string, at time.Time) (Rule, error)
}

// Admin changes the rules the engine routes by: each change is stored as a new
// rule-set version and the engine reloads it at once. Other server processes pick it
// up with Refresh.
type Admin struct {
	Store  RuleStorage
	Engine *Engine
	Now    func() time.Time
	mu     sync.Mutex // one reload at a time
}

var ruleID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// Reload loads the stored rule set into the engine.
func (a *Admin) Reload(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	set, err := a.Store.Load(ctx)
	if err != nil {
		return err
	}
	a.Engine.SetRules(set)
	return nil
}

// Refresh reloads the rule set if another process changed it.
func (a *Admin) Refresh(ctx context.Context) (bool, error) {
	v, err := a.Store.Version(ctx)
	if err != nil || v == a.Engine.Version() {
		return false, err
	}
	return true, a.Reload(ctx)
}

// Rules returns the current rule set.
func (a *Admin) Rules(ctx context.Context) (RuleSet, error) { return a.Store.Load(ctx) }

// AddRule validates r, stores it as a new version and routes by it from now on. A
// missing id is generated; a missing valid_from is now.
func (a *Admin) AddRule(ctx context.Context, r Rule, by string) (Rule, error) {
	if r.ID == "" {
		r.ID = fmt.Sprintf("rule-%d", a.now().UnixNano())
	}
	if !ruleID.MatchString(r.ID) {
		return Rule{}, qingfeng.Invalid(map[string]qingfeng.FieldError{"id": {Code: "invalid_id",
			Message: "规则编号只能由小写字母、数字和连字符组成（不超过64位）", English: "lower-case letters, digits and hyphens, at most 64"}})
	}
	if r.ValidFrom.IsZero() {
		r.ValidFrom = a.now()
	}
	if err := r.Validate(a.Engine.Units); err != nil {
		return Rule{}, err
	}
	r.CreatedBy = by
	stored, err := a.Store.Add(ctx, r)
	if err != nil {
		return Rule{}, err
	}
	return stored, a.Reload(ctx)
}

// RetireRule retires rule id as a new version.
func (a *Admin) RetireRule(ctx context.Context, id, by string) (Rule, error) {
	r, err := a.Store.Retire(ctx, id, by, a.now())
	if err != nil {
		return Rule{}, err
	}
	return r, a.Reload(ctx)
}
