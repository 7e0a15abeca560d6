package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sqlitedrv "modernc.org/sqlite"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/audit/audittest"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// The index check: every statement the stores send while the shared suites run is
// recorded by a wrapping driver, then explained (EXPLAIN QUERY PLAN) with the
// arguments it was sent with. A scan of a table, or a sort in a temporary B-tree, fails
// the test unless the statement is on the list of whole-table reads below, each with
// its reason. It is the SQLite side of issue 12's "queries proved index-backed"; the
// statements are the ones the code runs, not copies that could drift.

type recorded struct {
	query string
	args  []driver.NamedValue
}

var (
	recMu          sync.Mutex
	recQueries     = map[string]recorded{} // by query text: the first arguments seen
	registerTraced sync.Once
)

func record(q string, args []driver.NamedValue) {
	recMu.Lock()
	defer recMu.Unlock()
	if _, ok := recQueries[q]; !ok {
		recQueries[q] = recorded{query: q, args: slices.Clone(args)}
	}
}

type tracingDriver struct{}

func (tracingDriver) Open(name string) (driver.Conn, error) {
	c, err := (&sqlitedrv.Driver{}).Open(name)
	if err != nil {
		return nil, err
	}
	return &tracingConn{Conn: c}, nil
}

type tracingConn struct{ driver.Conn }

func (c *tracingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	record(q, args)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *tracingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	record(q, args)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *tracingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *tracingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// wholeTableReads are the statements that read a whole table by design, matched by
// how the statement ends (so that a keyed read of the same table is still checked).
var wholeTableReads = []struct{ suffix, why string }{
	{"FROM organizations", "EachOrganization fills the router's in-memory index"},
	{"FROM units ORDER BY id", "Units loads the registry into memory"},
	{"SELECT EXISTS (SELECT 1 FROM units)", "stops at the first row"},
	{"FROM routing_rules WHERE version <= ? ORDER BY id", "Load reads every rule of the set"},
	{"FROM audit ORDER BY seq DESC LIMIT 1", "the rowid B-tree from its end, one row"},
	{"SELECT count(*) FROM users", "an operator's count"},
	{"SELECT count(*) FROM organizations", "an operator's count"},
	{"FROM calendar_years ORDER BY year", "every stored year, by key"},
	{"FROM recipients ORDER BY added_at, id", "every key, for the sealer"},
	{"FROM schema_migrations ORDER BY version", "every applied migration, at start"},
	{"FROM case_events ORDER BY seq LIMIT ?", "the rowid B-tree in order: every waiting event is to be relayed"},
	{"FROM cases, json_each(cases.doc, '$.evidence') e", "ReferencedObjects: the orphan sweeper keeps every object any case names, so it reads every case"},
	{"FROM ledger_photos", "ReferencedObjects: every ledger photo is kept"},
}

// indexWalks are statements allowed to walk a whole (non-partial) index in order
// rather than seek into it, each with its reason. A walk of a partial index is always
// allowed: such an index holds only the few rows it is for (pending tasks, open
// requests). A statement matches when it contains every part and none of not.
var indexWalks = []struct {
	parts []string
	not   []string
	why   string
}{
	{[]string{"FROM cases INDEXED BY cases_received", "ORDER BY received_at DESC, id LIMIT ?"}, []string{"unit_id =", "filed_by ="},
		"an admin's list of every unit's cases (staff are scoped to a unit, liaisons to what they filed, both by their own indexes): newest first until LIMIT rows match, so the whole index only when the filters match almost nothing"},
	{[]string{"FROM cases INDEXED BY cases_received", "ORDER BY received_at, id DESC"}, []string{"unit_id ="},
		"ExportCases of every unit (an admin's CSV): every case of the period is exported"},
	{[]string{"FROM cases INDEXED BY cases_stats)", "GROUP BY"}, nil,
		"all-units statistics (an admin's): every case is counted, in one pass over the covering index"},
	{[]string{"FROM cases INDEXED BY cases_stats WHERE received_at", "GROUP BY"}, nil,
		"all-units statistics of a period: every unit's cases of the period are counted (received_at is not the index's lead: the grouping is)"},
	{[]string{"FROM cases INDEXED BY cases_received WHERE EXISTS (SELECT 1 FROM case_orgs AS k WHERE k.key = ? AND k.unit_id = cases.unit_id AND k.received_at = cases.received_at AND k.case_id = cases.id)"}, []string{") AND unit_id =", "filed_by ="},
		"an organization search across every unit (no route sends it: staff search their unit's case_orgs rows, liaisons their own filings): the receipt index newest first, each case looked up in case_orgs by primary key"},
	{[]string{"FROM cases ORDER BY id"}, nil, "EachCase (migrate, backup): every case, by id"},
}

var scanLine = regexp.MustCompile(`^SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?`)

// valuesLine is the rows of a multi-row INSERT … VALUES being read: no table.
var valuesLine = regexp.MustCompile(`^SCAN \d+-ROW VALUES CLAUSE$`)

func TestQueriesUseIndexes(t *testing.T) {
	registerTraced.Do(func() { sql.Register("sqlite-traced", tracingDriver{}) })
	newDB := func(t *testing.T) *DB {
		db, err := open(context.Background(), filepath.Join(t.TempDir(), FileName), nil,
			options{migrations: migrations, busy: busyTimeout, synchronous: "NORMAL", driver: "sqlite-traced"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	t.Run("suites", func(t *testing.T) {
		audittest.TestStore(t, func(t *testing.T) audit.Store { return NewAuditStore(newDB(t)) })
		storetest.Users(t, func(t *testing.T) accounts.UserStore { return NewUserStore(newDB(t)) })
		storetest.Calendar(t, func(t *testing.T) triage.CalendarStore { return NewCalendarStore(newDB(t)) })
		storetest.Rules(t, func(t *testing.T) storetest.RuleStore { return NewRuleStore(newDB(t)) })
		storetest.Organizations(t, func(t *testing.T) storetest.OrgStore { return NewOrgStore(newDB(t)) })
		storetest.Units(t, func(t *testing.T) storetest.UnitStore { return NewUnitStore(newDB(t)) })
		storetest.Keys(t, func(t *testing.T) custody.KeyStore { return NewRecipientStore(newDB(t)) })
		storetest.Leases(t, func(t *testing.T) donations.Leases { return NewLeaseStore(newDB(t)) })
		storetest.Counters(t, func(t *testing.T) intake.Counters { return NewCounterStore(newDB(t)) })
		storetest.Idempotency(t, func(t *testing.T) intake.IdempotencyStore { return NewIdempotencyStore(newDB(t)) })
		storetest.Ledger(t, newLedgerStore(func(tb testing.TB) *DB { return newDB(tb.(*testing.T)) }), ledgerHooks)
		storetest.Cases(t, func(t *testing.T) storetest.CaseStores { return caseStores(newDB(t)) })
		storetest.Custody(t, func(t *testing.T) storetest.CustodyStores {
			db := newDB(t)
			return storetest.CustodyStores{Recipients: NewRecipientStore(db), Cases: NewCaseStore(db)}
		})
		storetest.Stats(t, func(t *testing.T, now func() time.Time) storetest.StatsStore {
			db := newDB(t)
			db.now = now
			return NewCaseStore(db)
		})
		storetest.Retention(t, func(t *testing.T) storetest.RetentionEnv { return retentionEnv(newDB(t)) })
		storetest.ReferencedObjects(t, func(t *testing.T) storetest.ObjectsEnv {
			db := newDB(t)
			return storetest.ObjectsEnv{Cases: NewCaseStore(db), Ledger: NewLedgerStore(db), Referenced: db.ReferencedObjects}
		})
		ctx := context.Background()
		db := newDB(t)
		if _, err := db.PurgeExpired(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := NewAuditStore(db).List(ctx, audit.Query{Case: "QF-330782-2026-000001", Limit: 10}); err != nil {
			t.Fatal(err)
		}
	})

	db := openTestDB(t)
	partial := map[string]bool{}
	rows, err := db.r.QueryContext(context.Background(), "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			t.Fatal(err)
		}
		partial[name] = strings.Contains(oneLine(def), ") WHERE ")
	}
	rows.Close()
	recMu.Lock()
	defer recMu.Unlock()
	checked := 0
	for q, r := range recQueries {
		verb := strings.ToUpper(strings.Fields(q)[0])
		if verb != "SELECT" && verb != "UPDATE" && verb != "DELETE" && verb != "INSERT" {
			continue // PRAGMA, CREATE (migrations)
		}
		args := make([]any, len(r.args))
		for i, a := range r.args {
			args[i] = a.Value
		}
		rows, err := db.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Errorf("explain %q: %v", q, err)
			continue
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		checked++
		bad, walk := "", false
		for _, line := range plan {
			m := scanLine.FindStringSubmatch(line)
			switch {
			case valuesLine.MatchString(line):
			case strings.Contains(line, "TEMP B-TREE"), m != nil && m[2] == "" && line != "SCAN CONSTANT ROW":
				bad, walk = line, false
			case m != nil && m[2] != "" && !partial[m[2]] && bad == "":
				bad, walk = line, true // an index, but every entry of it
			}
		}
		if bad == "" {
			continue
		}
		allowed := false
		for _, w := range wholeTableReads {
			if strings.HasSuffix(oneLine(q), w.suffix) {
				allowed = true
			}
		}
		for _, w := range indexWalks {
			if walk && containsAll(oneLine(q), w.parts) && !containsAny(oneLine(q), w.not) {
				allowed = true
			}
		}
		if !allowed {
			t.Errorf("%s\n  plan: %s\n  not served by an index (%s)", oneLine(q), strings.Join(plan, "; "), bad)
		}
	}
	t.Logf("%d distinct statements explained", checked)
	if checked < 40 {
		t.Errorf("only %d statements recorded: the tracing driver saw too little", checked)
	}
}

func oneLine(q string) string { return strings.Join(strings.Fields(q), " ") }

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func containsAny(s string, parts []string) bool {
	for _, p := range parts {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}
