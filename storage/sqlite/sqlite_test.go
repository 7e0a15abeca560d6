package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/audit/audittest"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// openTestDB opens a fresh database in a temporary directory, closed when the test ends.
func openTestDB(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), FileName), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return db
}

// The shared suites, the same storage/mongo runs.

func TestAuditStoreConformance(t *testing.T) {
	audittest.TestStore(t, func(t *testing.T) audit.Store { return NewAuditStore(openTestDB(t)) })
}

func TestUserStoreConformance(t *testing.T) {
	storetest.Users(t, func(t *testing.T) accounts.UserStore { return NewUserStore(openTestDB(t)) })
}

func TestCalendarStoreConformance(t *testing.T) {
	storetest.Calendar(t, func(t *testing.T) triage.CalendarStore { return NewCalendarStore(openTestDB(t)) })
}

// TestPragmas checks what every connection, writer and readers, runs with.
func TestPragmas(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "secure_delete": "1", "foreign_keys": "1",
		"busy_timeout": "5000", "journal_size_limit": fmt.Sprint(journalSizeLimit), "wal_autocheckpoint": "1000"}
	for _, c := range []struct {
		name string
		q    func(string) (string, error)
	}{
		{"writer", func(p string) (v string, err error) { err = db.w.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); return }},
		{"reader", func(p string) (v string, err error) { err = db.r.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); return }},
	} {
		for p, w := range want {
			if got, err := c.q(p); err != nil || got != w {
				t.Errorf("%s: PRAGMA %s = %q, %v; want %q", c.name, p, got, err, w)
			}
		}
	}
	if _, err := db.r.ExecContext(ctx, "DELETE FROM users"); err == nil {
		t.Error("a reader connection wrote")
	}
	// The WAL and the shared-memory index hold data too (SQLite gives them the
	// database file's mode when it creates them).
	for _, p := range []string{db.Path(), db.Path() + "-wal", db.Path() + "-shm"} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", filepath.Base(p), fi.Mode(), err)
		}
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	reopen := func(migs []migration) (*DB, error) {
		return open(ctx, path, nil, options{migrations: migs, busy: busyTimeout, synchronous: "FULL"})
	}
	applied := func(db *DB) (n int, at int64) {
		t.Helper()
		if err := db.r.QueryRowContext(ctx, "SELECT count(*), max(applied_at) FROM schema_migrations").Scan(&n, &at); err != nil {
			t.Fatal(err)
		}
		return n, at
	}

	db, err := reopen(migrations)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("version %d, %v; want %d", v, err, len(migrations))
	}
	n0, at0 := applied(db)
	db.Close()

	t.Run("reopen is a no-op", func(t *testing.T) {
		db, err := reopen(migrations)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if n, at := applied(db); n != n0 || at != at0 {
			t.Errorf("after reopening: %d migrations applied at %d, want %d at %d", n, at, n0, at0)
		}
	})
	next := append(migrations[:len(migrations):len(migrations)],
		migration{version: len(migrations) + 1, name: "9999_test.sql", sql: "CREATE TABLE test_added (x INTEGER) STRICT;"})
	t.Run("a new migration is applied at start", func(t *testing.T) {
		db, err := reopen(next)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if v, _ := db.SchemaVersion(ctx); v != len(next) {
			t.Errorf("version %d, want %d", v, len(next))
		}
		if _, err := db.w.ExecContext(ctx, "INSERT INTO test_added VALUES (1)"); err != nil {
			t.Error(err)
		}
	})
	t.Run("a newer database is refused", func(t *testing.T) {
		_, err := reopen(migrations) // the database now has one more than this
		var newer *ErrNewerSchema
		if !errors.As(err, &newer) || newer.Have != len(next) || newer.Know != len(migrations) {
			t.Fatalf("Open = %v, want ErrNewerSchema", err)
		}
	})
	t.Run("a renamed migration is refused", func(t *testing.T) {
		renamed := append(next[:len(next)-1:len(next)-1], migration{version: len(next), name: "9999_other.sql", sql: "SELECT 1;"})
		if _, err := reopen(renamed); err == nil || !strings.Contains(err.Error(), "9999_other.sql") {
			t.Fatalf("Open = %v, want a refusal naming the migration", err)
		}
	})
	t.Run("a failing migration changes nothing", func(t *testing.T) {
		bad := append(next[:len(next):len(next)], migration{version: len(next) + 1, name: "10000_bad.sql",
			sql: "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);"})
		if _, err := reopen(bad); err == nil {
			t.Fatal("a failing migration was accepted")
		}
		db, err := reopen(next)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables int
		if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'half'").Scan(&tables); err != nil || tables != 0 {
			t.Errorf("the failed migration's table exists (%d, %v)", tables, err)
		}
	})
}

func TestLoadMigrations(t *testing.T) {
	if len(migrations) == 0 || migrations[0].version != 1 {
		t.Fatalf("embedded migrations %+v", migrations)
	}
}

// TestAuditConcurrentProcesses: two DB handles on one file, as the server and a CLI
// would have, eight goroutines recording at once. Each handle has its own writer
// connection, so the two contend for SQLite's write lock (BEGIN IMMEDIATE, busy
// timeout, Tx's retry) and for sequence numbers. The chain must come out whole.
func TestAuditConcurrentProcesses(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	db2, err := Open(ctx, db.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	s1, s2 := &countingStore{Store: NewAuditStore(db)}, &countingStore{Store: NewAuditStore(db2)}
	logs := []*audit.Log{{Store: s1}, {Store: s2}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := logs[g%2].Record(ctx, fmt.Sprintf("u-%d", g), "staff", "case.read",
					fmt.Sprintf("QF-330782-2026-%06d", i), map[string]string{"i": fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	r, err := audit.Verify(ctx, NewAuditStore(db2))
	if err != nil || !r.OK || r.Entries != 400 || r.HeadSeq != 400 {
		t.Fatalf("Verify: %+v %+v, %v", r, r.FirstBroken, err)
	}
	conflicts := s1.conflicts.Load() + s2.conflicts.Load()
	t.Logf("%d appends lost the race for a sequence number", conflicts)
	if conflicts == 0 {
		t.Error("no append ever lost the race: the two handles did not contend")
	}
}

type countingStore struct {
	audit.Store
	conflicts atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, e audit.Entry) error {
	err := s.Store.Append(ctx, e)
	if errors.Is(err, audit.ErrSeqTaken) {
		s.conflicts.Add(1)
	}
	return err
}

// TestAuditTampering changes the stored log with plain SQL, as someone with the file
// would, and checks that Verify names where.
func TestAuditTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		sql    string
		seq    int64
		reason string
	}{
		{"detail edited", `UPDATE audit SET detail = '{"i":"999"}' WHERE seq = 4`, 4, audit.ReasonHash},
		{"actor edited", `UPDATE audit SET actor = 'u-someone-else' WHERE seq = 1`, 1, audit.ReasonHash},
		{"time edited", `UPDATE audit SET at = 0 WHERE seq = 9`, 9, audit.ReasonHash},
		{"deleted", `DELETE FROM audit WHERE seq = 6`, 6, audit.ReasonGap},
		{"the first deleted", `DELETE FROM audit WHERE seq = 1`, 1, audit.ReasonGap},
		{"detail not an object", `UPDATE audit SET detail = '42' WHERE seq = 7`, 7, audit.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestDB(t)
			l := &audit.Log{Store: NewAuditStore(db)}
			for i := range 10 {
				if err := l.Record(ctx, "u-1", "staff", "case.read", "QF-330782-2026-000001", map[string]string{"i": fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if r, err := audit.Verify(ctx, NewAuditStore(db)); err != nil || !r.OK || r.Entries != 10 {
				t.Fatalf("before tampering: %+v, %v", r, err)
			}
			if _, err := db.w.ExecContext(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			r, err := audit.Verify(ctx, NewAuditStore(db))
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.FirstBroken == nil || r.FirstBroken.Seq != tt.seq || r.FirstBroken.Reason != tt.reason {
				t.Errorf("report %+v, broken %+v; want seq %d: %s", r, r.FirstBroken, tt.seq, tt.reason)
			}
		})
	}
}

func TestAuditAppendRefusesSubMillisecond(t *testing.T) {
	s := NewAuditStore(openTestDB(t))
	e := audit.Entry{Seq: 1, At: time.Date(2026, 3, 1, 0, 0, 0, 1500, time.UTC), Actor: "u", Action: "x"}
	e.Hash = e.ComputeHash()
	if err := s.Append(context.Background(), e); err == nil || errors.Is(err, audit.ErrSeqTaken) || !strings.Contains(err.Error(), "millisecond") {
		t.Errorf("Append: %v", err)
	}
}

// TestSecureDelete: a deleted session's refresh hash and an account's replaced
// password hash are gone from every file in the directory once purged and checkpointed
// (crypto-shredding relies on deleted bytes not lingering in free pages or the WAL).
func TestSecureDelete(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	s := NewUserStore(db)
	now := time.Now()
	markers := []string{"REFRESH-MARKER-7f3a9c", "EXPIRED-MARKER-1b2c3d", "PASSWORD-MARKER-55aa11"}
	if err := s.CreateSession(ctx, &accounts.Session{ID: "s1", UserID: "u1", RefreshHash: markers[0], CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, &accounts.Session{ID: "s2", UserID: "u1", RefreshHash: markers[1], CreatedAt: now, ExpiresAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	u := &accounts.User{ID: "u1", Username: "wangwu", Role: accounts.RoleStaff, PasswordHash: markers[2], CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// Make the markers reach the database file, not only the WAL.
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readDir(t, filepath.Dir(db.Path())), []byte(markers[0])) {
		t.Fatal("the marker is not in the files before deletion: the scan proves nothing")
	}
	if err := s.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, "u1", "new-hash", false); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PurgeExpired(ctx); err != nil || n != 1 {
		t.Fatalf("PurgeExpired = %d, %v", n, err)
	}
	all := readDir(t, filepath.Dir(db.Path()))
	for _, m := range markers {
		if bytes.Contains(all, []byte(m)) {
			t.Errorf("%s is still on disk after deletion", m)
		}
	}
}

func readDir(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestWALBounded writes about 48 MiB of audit entries, with a reader streaming the log
// meanwhile, and checks that the WAL never passes 64 MiB (issue 12) and that
// Checkpoint empties it.
func TestWALBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 48 MiB")
	}
	ctx := context.Background()
	db := openTestDB(t)
	s := NewAuditStore(db)
	wal := db.Path() + "-wal"
	pad := strings.Repeat("x", 4000)
	var maxWAL int64
	at := time.Now().Truncate(time.Millisecond)
	for i := int64(1); i <= 12_000; i++ {
		e := audit.Entry{Seq: i, At: at, Actor: "u", Action: "case.read", Detail: map[string]string{"pad": pad}}
		if err := s.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			// A reader in the middle of the log, as Verify would be.
			if err := s.Each(ctx, i-400, func(audit.Entry) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(wal); err == nil {
				maxWAL = max(maxWAL, fi.Size())
			}
		}
	}
	t.Logf("largest WAL seen: %.1f MiB", float64(maxWAL)/(1<<20))
	if maxWAL > 64<<20 {
		t.Errorf("the WAL reached %d bytes", maxWAL)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(wal); err != nil || fi.Size() != 0 {
		t.Errorf("WAL after Checkpoint: %v, %v; want 0 bytes", fi.Size(), err)
	}
}

func TestRuleStoreConformance(t *testing.T) {
	storetest.Rules(t, func(t *testing.T) storetest.RuleStore { return NewRuleStore(openTestDB(t)) })
}

func TestOrgStoreConformance(t *testing.T) {
	storetest.Organizations(t, func(t *testing.T) storetest.OrgStore { return NewOrgStore(openTestDB(t)) })
}

func TestUnitStoreConformance(t *testing.T) {
	storetest.Units(t, func(t *testing.T) storetest.UnitStore { return NewUnitStore(openTestDB(t)) })
}

func TestKeyStoreConformance(t *testing.T) {
	storetest.Keys(t, func(t *testing.T) custody.KeyStore { return NewRecipientStore(openTestDB(t)) })
}

func TestLeaseStoreConformance(t *testing.T) {
	storetest.Leases(t, func(t *testing.T) donations.Leases { return NewLeaseStore(openTestDB(t)) })
}

func TestCountersConformance(t *testing.T) {
	storetest.Counters(t, func(t *testing.T) intake.Counters { return NewCounterStore(openTestDB(t)) })
}

func TestIdempotencyStoreConformance(t *testing.T) {
	storetest.Idempotency(t, func(t *testing.T) intake.IdempotencyStore { return NewIdempotencyStore(openTestDB(t)) })
}

// TestTxRetriesWhenBusy: another process (a second handle) holds the write lock past
// the busy timeout. A write that waits less than Tx's retries last goes through once
// the lock is released; one held longer fails as EUNAVAILABLE and changes nothing.
func TestTxRetriesWhenBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	db, err := open(ctx, path, nil, options{migrations: migrations, busy: 50 * time.Millisecond, synchronous: "FULL"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := open(ctx, path, nil, options{migrations: migrations, busy: 50 * time.Millisecond, synchronous: "FULL"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s := NewUserStore(db)
	hold := func(d time.Duration) <-chan error {
		locked, done := make(chan struct{}), make(chan error, 1)
		go func() {
			done <- other.Tx(ctx, func(tx *sql.Tx) error {
				close(locked) // BEGIN IMMEDIATE has the write lock
				time.Sleep(d)
				return nil
			})
		}()
		<-locked
		return done
	}
	now := time.Now()
	sess := func(id string) *accounts.Session {
		return &accounts.Session{ID: id, UserID: "u1", RefreshHash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}

	t.Run("released in time", func(t *testing.T) {
		done := hold(300 * time.Millisecond)
		start := time.Now()
		if err := s.CreateSession(ctx, sess("s1")); err != nil {
			t.Fatalf("CreateSession while another process wrote: %v", err)
		}
		if waited := time.Since(start); waited < 250*time.Millisecond {
			t.Errorf("the write took %v: the lock was not contended", waited)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("held too long", func(t *testing.T) {
		done := hold(3 * time.Second)
		err := s.CreateSession(ctx, sess("s2"))
		wantUnavailable(t, err)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionByID(ctx, "s2"); err == nil {
			t.Error("the failed write was stored")
		}
	})
}

func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	if got := qingfeng.ErrorCode(err); got != qingfeng.EUNAVAILABLE {
		t.Fatalf("error %v (code %q), want EUNAVAILABLE", err, got)
	}
}

// TestBackgroundCheckpoint: the WAL grown by writes is truncated by the periodic
// checkpoint alone, without anyone calling Checkpoint.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	db, err := open(ctx, path, nil, options{migrations: migrations, busy: busyTimeout, synchronous: "FULL", checkpointEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := NewAuditStore(db)
	at := time.Now().Truncate(time.Millisecond)
	pad := strings.Repeat("x", 2000)
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		for i := 1; i <= 500; i++ {
			if _, err := tx.ExecContext(ctx, "INSERT INTO audit (seq, at, actor, action, detail, prev, hash) VALUES (?, ?, 'u', 'x', ?, '', '')",
				i, at.UnixMilli(), `{"pad":"`+pad+`"}`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() < 500*2000 {
		t.Logf("WAL after the writes: %v, %v", fi.Size(), err) // a checkpoint may have run already
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path + "-wal")
		if err == nil && fi.Size() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is %d bytes 5 s after the writes (%v): no background checkpoint", fi.Size(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.Get(ctx, 500); err != nil {
		t.Errorf("after the checkpoint: %v", err)
	}
}

func TestCaseStoreConformance(t *testing.T) {
	storetest.Cases(t, func(t *testing.T) storetest.CaseStores { return caseStores(openTestDB(t)) })
}

// caseStores are the case suite's stores on db.
func caseStores(db *DB) storetest.CaseStores {
	return storetest.CaseStores{Cases: NewCaseStore(db), Outbox: NewOutboxStore(db), Leases: NewLeaseStore(db)}
}

func TestCustodyStoreConformance(t *testing.T) {
	storetest.Custody(t, func(t *testing.T) storetest.CustodyStores {
		db := openTestDB(t)
		return storetest.CustodyStores{Recipients: NewRecipientStore(db), Cases: NewCaseStore(db)}
	})
}

func TestCustodyProperty(t *testing.T) {
	storetest.CustodyProperty(t, func(t *testing.T) storetest.CustodyStores {
		db := openTestDB(t)
		return storetest.CustodyStores{Recipients: NewRecipientStore(db), Cases: NewCaseStore(db)}
	})
}

// TestReplacedIdentityLeavesNoOldCiphertext: a re-seal after a revocation exists so
// that the revoked key opens nothing; the ciphertext sealed to it must then be gone
// from the files too (secure_delete), not only from the row. The identity is a BLOB
// column, not base64 inside the case's JSON.
func TestReplacedIdentityLeavesNoOldCiphertext(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	cases, rcps := NewCaseStore(db), NewRecipientStore(db)
	marker := []byte("OLD-IDENTITY-MARKER-9e4d21")
	old := append(append([]byte("age-encryption.org/v1\n"), marker...), bytes.Repeat([]byte{0xa5}, 1800)...) // an ML-KEM stanza's size
	c := storetest.NewCase(1, "u-yw", "330782001", time.Now())
	c.Identity = &intake.SealedIdentity{Ciphertext: old, Recipients: []string{"age1pq1revoked"}, SealedAt: time.Now()}
	if err := cases.CreateCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	var typ string
	var inDoc bool
	if err := db.r.QueryRowContext(ctx, "SELECT typeof(identity), json_type(doc, '$.identity') IS NOT NULL FROM cases WHERE id = ?", c.ID).Scan(&typ, &inDoc); err != nil {
		t.Fatal(err)
	}
	if typ != "blob" || inDoc {
		t.Fatalf("identity stored as %s (also in the doc: %v), want a blob column only", typ, inDoc)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readDir(t, filepath.Dir(db.Path())), marker) {
		t.Fatal("the marker is not in the files before the re-seal: the scan proves nothing")
	}
	// Smaller than the old one: its overflow pages are freed, and only secure_delete
	// overwrites them.
	next := intake.SealedIdentity{Ciphertext: append([]byte("age-encryption.org/v1\nNEW"), bytes.Repeat([]byte{0x5a}, 100)...),
		Recipients: []string{"age1pq1current"}, SealedAt: time.Now()}
	if err := rcps.ReplaceIdentity(ctx, c.ID, old, next); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(readDir(t, filepath.Dir(db.Path())), marker) {
		t.Error("the identity sealed to the revoked key is still on disk after the re-seal")
	}
}
