package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
)

var (
	errOrgNotFound  = qingfeng.Errorf(qingfeng.ENOTFOUND, "社会组织不存在", "organization not found")
	errUnitNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "单位不存在", "no such unit")
)

// OrgStore keeps the registry of social organizations. It stores what it is given:
// validation is routing.NormalizeOrganization's job.
type OrgStore struct{ db *DB }

// NewOrgStore returns an OrgStore on db.
func NewOrgStore(db *DB) *OrgStore { return &OrgStore{db: db} }

const orgColumns = `credit_code, name, type, reg_division, status, registration_authority, supervisory_unit,
	industry, grade, division, updated_at`

func scanOrg(s interface{ Scan(...any) error }) (routing.Organization, error) {
	var o routing.Organization
	var at int64
	err := s.Scan(&o.CreditCode, &o.Name, &o.Type, &o.RegDivision, &o.Status, &o.RegistrationAuthority, &o.SupervisoryUnit,
		&o.Industry, &o.Grade, &o.Division, &at)
	o.UpdatedAt = time.UnixMilli(at).UTC()
	return o, err
}

// lastByKey drops all but the last of the items sharing a key, keeping their order.
func lastByKey[T any](items []T, key func(T) string) []T {
	last := make(map[string]int, len(items))
	for i, it := range items {
		last[key(it)] = i
	}
	out := make([]T, 0, len(last))
	for i, it := range items {
		if last[key(it)] == i {
			out = append(out, it)
		}
	}
	return out
}

// upsert stores rows in one transaction, each replacing a stored row with its key,
// and counts new and replaced rows.
func upsert[T any](ctx context.Context, db *DB, op, table, keyCol, insert string, rows []T, key func(T) string, args func(T) ([]any, error)) (inserted, updated int, err error) {
	rows = lastByKey(rows, key)
	if len(rows) == 0 {
		return 0, 0, nil
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		inserted, updated = 0, 0
		for _, r := range rows {
			var exists bool
			// table and keyCol are constants of this file.
			if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE "+keyCol+" = ?)", key(r)).Scan(&exists); err != nil {
				return err
			}
			a, err := args(r)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, insert, a...); err != nil {
				return err
			}
			if exists {
				updated++
			} else {
				inserted++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, storeError(fmt.Sprintf("%s (%d rows)", op, len(rows)), err, nil, nil)
	}
	return inserted, updated, nil
}

// UpsertOrganizations stores orgs by credit code, replacing whole rows that exist, in
// one transaction, and reports how many were new and how many replaced. When a code
// appears twice, the later one wins. A zero UpdatedAt is set to now.
func (s *OrgStore) UpsertOrganizations(ctx context.Context, orgs []routing.Organization) (inserted, updated int, err error) {
	now := s.db.now()
	return upsert(ctx, s.db, "upsert organizations", "organizations", "credit_code",
		"INSERT OR REPLACE INTO organizations ("+orgColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		orgs, func(o routing.Organization) string { return o.CreditCode },
		func(o routing.Organization) ([]any, error) { return orgArgs(o, now), nil })
}

// orgArgs are the values of orgColumns for o; a zero UpdatedAt is now.
func orgArgs(o routing.Organization, now time.Time) []any {
	at := o.UpdatedAt
	if at.IsZero() {
		at = now
	}
	return []any{o.CreditCode, o.Name, o.Type, o.RegDivision, string(o.Status), o.RegistrationAuthority, o.SupervisoryUnit,
		o.Industry, o.Grade, o.Division, at.UnixMilli()}
}

// Organization returns the organization with credit code code (normalized); ENOTFOUND
// if there is none.
func (s *OrgStore) Organization(ctx context.Context, code string) (routing.Organization, error) {
	o, err := scanOrg(s.db.r.QueryRowContext(ctx, "SELECT "+orgColumns+" FROM organizations WHERE credit_code = ?", code))
	if err != nil {
		return routing.Organization{}, storeError("find organization "+code, err, errOrgNotFound, nil)
	}
	return o, nil
}

// EachOrganization streams every organization to fn, in no particular order, without
// holding them all. An error from fn stops the scan and is returned.
func (s *OrgStore) EachOrganization(ctx context.Context, fn func(routing.Organization) error) error {
	const op = "list organizations"
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+orgColumns+" FROM organizations")
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	defer rows.Close()
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return storeError(op, err, nil, nil)
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return storeError(op, rows.Err(), nil, nil)
}

// CountOrganizations returns the number of organizations stored.
func (s *OrgStore) CountOrganizations(ctx context.Context) (n int64, err error) {
	if err := s.db.r.QueryRowContext(ctx, "SELECT count(*) FROM organizations").Scan(&n); err != nil {
		return 0, storeError("count organizations", err, nil, nil)
	}
	return n, nil
}

// UnitStore keeps the registry of supervisory units. Consistency of the set (parents
// exist, ids unique) is checked by routing.NewUnits when it is loaded, not here.
type UnitStore struct{ db *DB }

// NewUnitStore returns a UnitStore on db.
func NewUnitStore(db *DB) *UnitStore { return &UnitStore{db: db} }

const unitColumns = "id, name, kind, division, level, parent, stationed_at, active, deadlines, aliases"

const unitInsert = "INSERT OR REPLACE INTO units (" + unitColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

func unitArgs(u routing.RegistryUnit) ([]any, error) {
	var deadlines any
	if len(u.Deadlines) > 0 {
		b, err := json.Marshal(u.Deadlines)
		if err != nil {
			return nil, err
		}
		deadlines = string(b)
	}
	return []any{u.ID, u.Name, string(u.Kind), u.Division, string(u.Level), u.Parent, u.StationedAt, u.Active,
		deadlines, recoveryJSON(u.Aliases)}, nil
}

func scanUnit(s interface{ Scan(...any) error }) (routing.RegistryUnit, error) {
	var u routing.RegistryUnit
	var deadlines sql.NullString
	var aliases string
	if err := s.Scan(&u.ID, &u.Name, &u.Kind, &u.Division, &u.Level, &u.Parent, &u.StationedAt, &u.Active, &deadlines, &aliases); err != nil {
		return u, err
	}
	if deadlines.Valid {
		if err := json.Unmarshal([]byte(deadlines.String), &u.Deadlines); err != nil {
			return u, fmt.Errorf("unit %s: deadlines: %w", u.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(aliases), &u.Aliases); err != nil {
		return u, fmt.Errorf("unit %s: aliases: %w", u.ID, err)
	}
	if len(u.Aliases) == 0 {
		u.Aliases = nil
	}
	return u, nil
}

// SeedUnits stores units if the registry is empty and returns how many it stored: 0
// when there already were units. The emptiness check and the inserts are one
// transaction, so two processes seeding at once store the set once.
func (s *UnitStore) SeedUnits(ctx context.Context, units []routing.RegistryUnit) (int, error) {
	n := 0
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		var some bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM units)").Scan(&some); err != nil || some {
			return err
		}
		for _, u := range units {
			a, err := unitArgs(u)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO units ("+unitColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", a...)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, storeError("seed units", err, nil, nil)
	}
	return n, nil
}

// UpsertUnits stores units by id, replacing whole rows that exist, and reports how
// many were new and how many replaced. When an id appears twice the later wins.
func (s *UnitStore) UpsertUnits(ctx context.Context, units []routing.RegistryUnit) (inserted, updated int, err error) {
	return upsert(ctx, s.db, "upsert units", "units", "id", unitInsert, units,
		func(u routing.RegistryUnit) string { return u.ID }, unitArgs)
}

// changeAliases runs change on unit id's aliases in one transaction.
func (s *UnitStore) changeAliases(ctx context.Context, op, id string, change func([]string) ([]string, error)) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var raw string
		if err := tx.QueryRowContext(ctx, "SELECT aliases FROM units WHERE id = ?", id).Scan(&raw); err != nil {
			return storeError(op, err, errUnitNotFound, nil)
		}
		var aliases []string
		if err := json.Unmarshal([]byte(raw), &aliases); err != nil {
			return fmt.Errorf("unit %s: aliases: %w", id, err)
		}
		next, err := change(aliases)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE units SET aliases = ? WHERE id = ?", recoveryJSON(next), id)
		return err
	})
	return storeError(op, err, nil, nil) // ErrTooManyAliases passes as it is
}

// AddAlias adds alias to unit id's aliases unless it is there or the unit has max
// already (routing.ErrTooManyAliases).
func (s *UnitStore) AddAlias(ctx context.Context, id, alias string, max int) error {
	return s.changeAliases(ctx, "add unit alias", id, func(a []string) ([]string, error) {
		if slices.Contains(a, alias) {
			return a, nil
		}
		if len(a) >= max {
			return nil, routing.ErrTooManyAliases
		}
		return append(a, alias), nil
	})
}

// RemoveAlias removes alias from unit id's aliases.
func (s *UnitStore) RemoveAlias(ctx context.Context, id, alias string) error {
	return s.changeAliases(ctx, "remove unit alias", id, func(a []string) ([]string, error) {
		return slices.DeleteFunc(a, func(x string) bool { return x == alias }), nil
	})
}

// Units returns every unit, active or not, in id order; none when the registry is empty.
func (s *UnitStore) Units(ctx context.Context) ([]routing.RegistryUnit, error) {
	const op = "list units"
	rows, err := s.db.r.QueryContext(ctx, "SELECT "+unitColumns+" FROM units ORDER BY id")
	if err != nil {
		return nil, storeError(op, err, nil, nil)
	}
	defer rows.Close()
	out := []routing.RegistryUnit{}
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return nil, storeError(op, err, nil, nil)
		}
		out = append(out, u)
	}
	return out, storeError(op, rows.Err(), nil, nil)
}
