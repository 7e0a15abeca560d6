package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// Records is the database as `qingfeng migrate` reads and writes it (migrate.Store):
// every kind in key order, and inserts that write a record verbatim — no case event,
// no audit entry, no derived change — and leave a record already there alone.
type Records struct {
	*AuditStore
	db *DB
}

var _ migrate.Store = (*Records)(nil)

// NewRecords returns the migration view of db.
func NewRecords(db *DB) *Records { return &Records{AuditStore: NewAuditStore(db), db: db} }

type rowScanner interface{ Scan(...any) error }

// placeholders is "?, ?, …" for a list of columns, so that an insert follows the
// columns a later migration adds.
func placeholders(columns string) string {
	return strings.TrimSuffix(strings.Repeat("?, ", strings.Count(columns, ",")+1), ", ")
}

// eachRow runs q on a reader and calls fn with each row scanned, stopping at fn's
// first error.
func eachRow[T any](ctx context.Context, db *DB, op, q string, scan func(rowScanner) (T, error), fn func(T) error) error {
	rows, err := db.r.QueryContext(ctx, q)
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return storeError(op, err, nil, nil)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return storeError(op, rows.Err(), nil, nil)
}

// insertAll runs stmt (an INSERT … ON CONFLICT (key) DO NOTHING) for every item in one
// transaction. A conflict on another unique column is an error, not a skip: the
// target holds a different record under the same number, name or key.
func insertAll[T any](ctx context.Context, db *DB, op, stmt string, items []T, args func(T) ([]any, error)) error {
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, stmt)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, it := range items {
			a, err := args(it)
			if err != nil {
				return err
			}
			if _, err := st.ExecContext(ctx, a...); err != nil {
				return err
			}
		}
		return nil
	})
	return storeError(op, err, nil, nil)
}

// PutAudit implements migrate.Store: entries as they are, in one transaction.
func (r *Records) PutAudit(ctx context.Context, es []audit.Entry) error {
	return insertAll(ctx, r.db, "import audit entries", "INSERT INTO audit ("+auditColumns+") VALUES ("+placeholders(auditColumns)+") ON CONFLICT (seq) DO NOTHING",
		es, func(e audit.Entry) ([]any, error) {
			if !e.At.Equal(e.At.Truncate(time.Millisecond)) {
				return nil, fmt.Errorf("audit entry %d: time %s is finer than a millisecond", e.Seq, e.At.Format(time.RFC3339Nano))
			}
			var detail any
			if len(e.Detail) > 0 {
				b, err := json.Marshal(e.Detail)
				if err != nil {
					return nil, err
				}
				detail = string(b)
			}
			return []any{e.Seq, e.At.UnixMilli(), e.Actor, e.Role, e.Action, e.Case, detail, e.Prev, e.Hash}, nil
		})
}

// EachUser implements migrate.Store.
func (r *Records) EachUser(ctx context.Context, fn func(*accounts.User) error) error {
	return eachRow(ctx, r.db, "export users", "SELECT "+userColumns+" FROM users ORDER BY id", func(s rowScanner) (*accounts.User, error) {
		var row userRow
		if err := row.scan(s); err != nil {
			return nil, err
		}
		return row.user()
	}, fn)
}

// PutUsers implements migrate.Store.
func (r *Records) PutUsers(ctx context.Context, us []*accounts.User) error {
	return insertAll(ctx, r.db, "import users", "INSERT INTO users ("+userColumns+") VALUES ("+placeholders(userColumns)+") ON CONFLICT (id) DO NOTHING",
		us, func(u *accounts.User) ([]any, error) {
			return []any{u.ID, u.Username, u.DisplayName, string(u.Role), u.UnitID, u.Division, u.PasswordHash, u.Disabled,
				u.MustChangePassword, u.SessionGeneration, u.TOTP.Enabled, blob(u.TOTP.Secret), blob(u.TOTP.Pending),
				u.TOTP.LastStep, recoveryJSON(u.TOTP.RecoveryHashes), millis(u.LastLoginAt), u.CreatedAt.UnixMilli(), u.UpdatedAt.UnixMilli()}, nil
		})
}

// CalendarYears implements migrate.Store.
func (r *Records) CalendarYears(ctx context.Context) ([]triage.StoredYear, error) {
	return NewCalendarStore(r.db).Years(ctx)
}

// PutCalendarYears implements migrate.Store.
func (r *Records) PutCalendarYears(ctx context.Context, ys []triage.StoredYear) error {
	return insertAll(ctx, r.db, "import calendar years", "INSERT INTO calendar_years (year, data, added_by, added_at) VALUES (?, ?, ?, ?) ON CONFLICT (year) DO NOTHING",
		ys, func(y triage.StoredYear) ([]any, error) {
			return []any{y.Year, y.Data, y.AddedBy, millis(y.AddedAt)}, nil
		})
}

// RuleSet implements migrate.Store.
func (r *Records) RuleSet(ctx context.Context) (routing.RuleSet, error) {
	return NewRuleStore(r.db).Load(ctx)
}

// PutRuleSet implements migrate.Store: the rules absent, then the version if there is
// none, in one transaction.
func (r *Records) PutRuleSet(ctx context.Context, set routing.RuleSet) error {
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, rule := range set.Rules {
			body, err := ruleBody(rule)
			if err != nil {
				return err
			}
			var retiredAt any
			if rule.RetiredAt != nil {
				retiredAt = millis(*rule.RetiredAt)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO routing_rules (id, version, retired_in, retired_at, retired_by, body) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO NOTHING`, rule.ID, rule.Version, rule.RetiredIn, retiredAt, rule.RetiredBy, body); err != nil {
				return err
			}
		}
		if set.Version == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO routing_rule_version (one, version) VALUES (1, ?) ON CONFLICT (one) DO NOTHING", set.Version)
		return err
	})
	return storeError("import rules", err, nil, nil)
}

// EachOrganization is OrgStore's.
func (r *Records) EachOrganization(ctx context.Context, fn func(routing.Organization) error) error {
	return NewOrgStore(r.db).EachOrganization(ctx, fn)
}

// PutOrganizations implements migrate.Store.
func (r *Records) PutOrganizations(ctx context.Context, orgs []routing.Organization) error {
	now := time.Now()
	return insertAll(ctx, r.db, "import organizations", "INSERT INTO organizations ("+orgColumns+") VALUES ("+placeholders(orgColumns)+") ON CONFLICT (credit_code) DO NOTHING",
		orgs, func(o routing.Organization) ([]any, error) { return orgArgs(o, now), nil })
}

// Units is UnitStore's.
func (r *Records) Units(ctx context.Context) ([]routing.RegistryUnit, error) {
	return NewUnitStore(r.db).Units(ctx)
}

// PutUnits implements migrate.Store.
func (r *Records) PutUnits(ctx context.Context, units []routing.RegistryUnit) error {
	return insertAll(ctx, r.db, "import units", "INSERT INTO units ("+unitColumns+") VALUES ("+placeholders(unitColumns)+") ON CONFLICT (id) DO NOTHING",
		units, unitArgs)
}

// Recipients is RecipientStore's All.
func (r *Records) Recipients(ctx context.Context) ([]custody.Recipient, error) {
	return NewRecipientStore(r.db).All(ctx)
}

// PutRecipients implements migrate.Store, revoked recipients included.
func (r *Records) PutRecipients(ctx context.Context, rs []custody.Recipient) error {
	return insertAll(ctx, r.db, "import recipients", "INSERT INTO recipients ("+recipientColumns+") VALUES ("+placeholders(recipientColumns)+") ON CONFLICT (id) DO NOTHING",
		rs, func(c custody.Recipient) ([]any, error) {
			var revoked any
			if c.RevokedAt != nil {
				revoked = millis(*c.RevokedAt)
			}
			return []any{c.ID, c.UserID, c.Role, c.Jurisdiction, c.Recipient, c.Label, c.AddedBy, c.AddedAt.UnixMilli(), revoked, c.RevokedBy}, nil
		})
}

// EachDisclosure implements migrate.Store, with each re-sealed identity.
func (r *Records) EachDisclosure(ctx context.Context, fn func(custody.Disclosure) error) error {
	return eachRow(ctx, r.db, "export disclosures", "SELECT "+disclosureColumns+", resealed FROM disclosures ORDER BY id",
		func(s rowScanner) (custody.Disclosure, error) { return scanDisclosure(s, true) }, fn)
}

// PutDisclosures implements migrate.Store through InsertDisclosure, which writes a
// request in whatever state it is.
func (r *Records) PutDisclosures(ctx context.Context, ds []custody.Disclosure) error {
	keys := NewRecipientStore(r.db)
	for _, d := range ds {
		if err := keys.InsertDisclosure(ctx, d); err != nil && qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			return err
		}
	}
	return nil
}

// EachResealTask implements migrate.Store.
func (r *Records) EachResealTask(ctx context.Context, fn func(custody.ResealTask) error) error {
	return eachRow(ctx, r.db, "export reseal tasks", "SELECT "+taskColumns+" FROM reseal_tasks ORDER BY id",
		func(s rowScanner) (custody.ResealTask, error) { return scanTask(s) }, fn)
}

// PutResealTasks implements migrate.Store through InsertTask (verbatim, any status).
func (r *Records) PutResealTasks(ctx context.Context, ts []custody.ResealTask) error {
	keys := NewRecipientStore(r.db)
	for _, t := range ts {
		if err := keys.InsertTask(ctx, t); err != nil && qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			return err
		}
	}
	return nil
}

// Counters implements migrate.Store.
func (r *Records) Counters(ctx context.Context) ([]migrate.Counter, error) {
	var out []migrate.Counter
	err := eachRow(ctx, r.db, "export counters", "SELECT name, seq FROM counters ORDER BY name", func(s rowScanner) (migrate.Counter, error) {
		var c migrate.Counter
		err := s.Scan(&c.Name, &c.Seq)
		return c, err
	}, func(c migrate.Counter) error { out = append(out, c); return nil })
	return out, err
}

// PutCounters implements migrate.Store: a counter is raised, never lowered.
func (r *Records) PutCounters(ctx context.Context, cs []migrate.Counter) error {
	return insertAll(ctx, r.db, "import counters", "INSERT INTO counters (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq)",
		cs, func(c migrate.Counter) ([]any, error) { return []any{c.Name, c.Seq}, nil })
}

// EachCase implements migrate.Store.
func (r *Records) EachCase(ctx context.Context, fn func(*intake.Case) error) error {
	return eachRow(ctx, r.db, "export cases", "SELECT "+caseColumns+" FROM cases ORDER BY id", func(s rowScanner) (*intake.Case, error) {
		st, err := scanCase(s)
		return st.c, err
	}, fn)
}

// PutCases implements migrate.Store: the cases alone, without the case.registered
// event CreateCase writes (the source's events were relayed, or are not migrated).
func (r *Records) PutCases(ctx context.Context, cs []*intake.Case) error {
	// The derived columns too, computed from the case as every write of it does:
	// statistics and retention read them.
	// So are its organization search keys (case_orgs), for a case inserted.
	cols := caseColumns + ", " + derivedColumns
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, "INSERT INTO cases ("+cols+") VALUES ("+placeholders(cols)+") ON CONFLICT (id) DO NOTHING")
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, c := range cs {
			st := stored{c: c, nextDue: nextDue(c, c.Transfer)}
			a, err := st.args()
			if err != nil {
				return err
			}
			res, err := ins.ExecContext(ctx, a...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				if err := insertOrgRows(ctx, tx, c.ID, orgRowsOf(st), ""); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return storeError("import cases", err, nil, nil)
}

// EachMessage implements migrate.Store.
func (r *Records) EachMessage(ctx context.Context, fn func(*intake.Message) error) error {
	return eachRow(ctx, r.db, "export messages", "SELECT id, case_id, sender, kind, author_id, body, created_at FROM messages ORDER BY id",
		func(s rowScanner) (*intake.Message, error) {
			var m intake.Message
			var at int64
			if err := s.Scan(&m.ID, &m.CaseID, &m.From, &m.Kind, &m.AuthorID, &m.Body, &at); err != nil {
				return nil, err
			}
			m.CreatedAt = time.UnixMilli(at).UTC()
			return &m, nil
		}, fn)
}

// PutMessages implements migrate.Store, without marking reporter activity (the
// case's own fields carry it).
func (r *Records) PutMessages(ctx context.Context, msgs []*intake.Message) error {
	return insertAll(ctx, r.db, "import messages", "INSERT INTO messages (id, case_id, sender, kind, author_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		msgs, func(m *intake.Message) ([]any, error) {
			return []any{m.ID, m.CaseID, m.From, messageKind(m.Kind), m.AuthorID, m.Body, ms(m.CreatedAt).UnixMilli()}, nil
		})
}

// EachNotification implements migrate.Store.
func (r *Records) EachNotification(ctx context.Context, fn func(triage.Notification) error) error {
	return eachRow(ctx, r.db, "export notifications", "SELECT id, unit_id, case_number, case_unit, kind, due, created_at FROM notifications ORDER BY id",
		func(s rowScanner) (triage.Notification, error) {
			var n triage.Notification
			var at int64
			err := s.Scan(&n.ID, &n.UnitID, &n.Case, &n.CaseUnit, &n.Kind, &n.Due, &at)
			n.CreatedAt = time.UnixMilli(at).UTC()
			return n, err
		}, fn)
}

// PutNotifications implements migrate.Store.
func (r *Records) PutNotifications(ctx context.Context, ns []triage.Notification) error {
	return insertAll(ctx, r.db, "import notifications", `INSERT INTO notifications (id, unit_id, case_number, case_unit, kind, due, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		ns, func(n triage.Notification) ([]any, error) {
			return []any{n.ID, n.UnitID, n.Case, n.CaseUnit, n.Kind, n.Due, ms(n.CreatedAt).UnixMilli()}, nil
		})
}

// uncopiedTables are the tables of kinds migrate does not copy, with the rows that
// count: deliveries still owed. Tables this database does
// not have (a store added by a later migration) are skipped.
var uncopiedTables = []struct{ kind, table, where string }{
	{"undelivered_events", "deliveries", "WHERE status = 'pending'"},
}

// Uncopied implements migrate.Store.
func (r *Records) Uncopied(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range uncopiedTables {
		var exists bool
		if err := r.db.r.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?)", t.table).Scan(&exists); err != nil {
			return nil, storeError("count "+t.table, err, nil, nil)
		}
		if !exists {
			continue
		}
		var n int64
		if err := r.db.r.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s %s", t.table, t.where)).Scan(&n); err != nil {
			return nil, storeError("count "+t.table, err, nil, nil)
		}
		if n > 0 {
			out[t.kind] += n
		}
	}
	return out, nil
}
