package routing

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
)

// RuleStorage keeps rule sets (storage/mongo's RuleStore).
type RuleStorage interface {
	Load(ctx context.Context) (RuleSet, error)
	Version(ctx context.Context) (int, error)
	Add(ctx context.Context, r Rule) (Rule, error)
	Retire(ctx context.Context, id, by string, at time.Time) (Rule, error)
}

// Admin changes the rules the engine routes by, and the units' aliases: each rule change
// is stored as a new rule-set version and the engine reloads it at once. Other server processes pick it
// up with Refresh.
type Admin struct {
	Store  RuleStorage
	Units  UnitStorage // for unit aliases; nil when they cannot be changed
	Engine *Engine
	// OrgImports and UnitImports store imported registries (ImportOrganizations,
	// ImportUnits); nil when the server cannot import.
	OrgImports  OrgImportStore
	UnitImports UnitImportStore
	Now         func() time.Time
	mu          sync.Mutex // one reload at a time

	importMu sync.Mutex // one import at a time

	unitsMu sync.Mutex // one unit-registry reload at a time
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

// UnitStorage keeps the unit registry (storage/mongo's UnitStore). AddAlias and
// RemoveAlias change one unit's aliases atomically and return ENOTFOUND for an unknown
// unit.
type UnitStorage interface {
	Units(ctx context.Context) ([]RegistryUnit, error)
	// AddAlias returns ErrTooManyAliases when the unit has max aliases already.
	AddAlias(ctx context.Context, id, alias string, max int) error
	RemoveAlias(ctx context.Context, id, alias string) error
}

// ErrTooManyAliases is a unit's alias list at MaxAliases.
var ErrTooManyAliases = qingfeng.Invalid(map[string]qingfeng.FieldError{"alias": {Code: "too_many",
	Message: fmt.Sprintf("一个单位最多%d个别名", MaxAliases), English: fmt.Sprintf("a unit has at most %d aliases", MaxAliases)}})

// MaxAliases is how many aliases a unit may carry; MaxAliasRunes how long each may be.
const (
	MaxAliases    = 30
	MaxAliasRunes = 100
)

// AddUnitAlias gives unit id another name it is known by (简称, a former name), which
// routing then recognises as the unit for recusal. An alias already the unit's is
// accepted as it is; one that is another unit's name or alias is a conflict, since a
// name shared by two units names neither for sure.
func (a *Admin) AddUnitAlias(ctx context.Context, id, alias string) (RegistryUnit, error) {
	if a.Units == nil {
		return RegistryUnit{}, errNoUnitStore
	}
	u, ok := a.Engine.Units.Get(id)
	if !ok {
		return RegistryUnit{}, qingfeng.Errorf(qingfeng.ENOTFOUND, "单位不存在", "no such unit")
	}
	alias = strings.TrimSpace(alias)
	n := NormalizeName(alias)
	switch {
	case n == "":
		return RegistryUnit{}, aliasInvalid("required", "请填写别名", "the alias is required")
	case utf8.RuneCountInString(alias) > MaxAliasRunes:
		return RegistryUnit{}, aliasInvalid("too_long", fmt.Sprintf("别名不能超过%d字", MaxAliasRunes), fmt.Sprintf("at most %d characters", MaxAliasRunes))
	}
	for _, have := range append([]string{u.Name}, u.Aliases...) {
		if NormalizeName(have) == n {
			return u, nil
		}
	}
	if len(u.Aliases) >= MaxAliases {
		return RegistryUnit{}, ErrTooManyAliases
	}
	// A name that already surely means another unit (its name, an alias, or a way of
	// writing either) would make both unsure.
	if m := a.Engine.Units.Resolve(alias, ""); m.Sure && m.Unit.ID != id {
		return RegistryUnit{}, qingfeng.Errorf(qingfeng.ECONFLICT, "该名称已指单位“"+m.Unit.Name+"”（"+m.Unit.ID+"）",
			"the name already means unit "+m.Unit.ID)
	}
	if err := a.Units.AddAlias(ctx, id, alias, MaxAliases); err != nil {
		return RegistryUnit{}, err
	}
	return a.reloadUnit(ctx, id)
}

// RemoveUnitAlias removes an alias of unit id, matched as NormalizeName writes it.
func (a *Admin) RemoveUnitAlias(ctx context.Context, id, alias string) (RegistryUnit, error) {
	if a.Units == nil {
		return RegistryUnit{}, errNoUnitStore
	}
	u, ok := a.Engine.Units.Get(id)
	if !ok {
		return RegistryUnit{}, qingfeng.Errorf(qingfeng.ENOTFOUND, "单位不存在", "no such unit")
	}
	n := NormalizeName(alias)
	i := slices.IndexFunc(u.Aliases, func(have string) bool { return NormalizeName(have) == n })
	if n == "" || i < 0 {
		return RegistryUnit{}, qingfeng.Errorf(qingfeng.ENOTFOUND, "该单位没有这个别名", "the unit has no such alias")
	}
	if err := a.Units.RemoveAlias(ctx, id, u.Aliases[i]); err != nil {
		return RegistryUnit{}, err
	}
	return a.reloadUnit(ctx, id)
}

// ReloadUnits reloads the unit registry from the store, so that routing uses what
// another process or an import changed.
func (a *Admin) ReloadUnits(ctx context.Context) error {
	if a.Units == nil {
		return errNoUnitStore
	}
	// One reload at a time, each reading after the writes before it: the last to replace
	// the registry has read every change.
	a.unitsMu.Lock()
	defer a.unitsMu.Unlock()
	list, err := a.Units.Units(ctx)
	if err != nil {
		return err
	}
	if err := a.Engine.Units.Replace(list); err != nil {
		return fmt.Errorf("reload units: %w", err)
	}
	return nil
}

// reloadUnit reloads the registry and returns unit id as it is now.
func (a *Admin) reloadUnit(ctx context.Context, id string) (RegistryUnit, error) {
	if err := a.ReloadUnits(ctx); err != nil {
		return RegistryUnit{}, err
	}
	u, _ := a.Engine.Units.Get(id)
	return u, nil
}

var errNoUnitStore = errors.New("routing: aliases cannot be changed without a unit store")

func aliasInvalid(code, zh, en string) error {
	return qingfeng.Invalid(map[string]qingfeng.FieldError{"alias": {Code: code, Message: zh, English: en}})
}
