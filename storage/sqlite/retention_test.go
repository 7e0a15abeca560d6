package sqlite

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

func retentionEnv(db *DB) storetest.RetentionEnv {
	return storetest.RetentionEnv{Cases: NewCaseStore(db), Leases: NewLeaseStore(db), Audit: NewAuditStore(db), Disclosures: NewRecipientStore(db),
		Dump: func(t *testing.T) string { return dumpTables(t, db) }}
}

func TestRetentionConformance(t *testing.T) {
	storetest.Retention(t, func(t *testing.T) storetest.RetentionEnv { return retentionEnv(openTestDB(t)) })
}

// dumpTables is every value of every table, text and blobs as their bytes. Its
// statements start with a comment, which TestQueriesUseIndexes leaves out: they are the
// test's, not a store's.
func dumpTables(t *testing.T, db *DB) string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.r.QueryContext(ctx, "/* test dump */ SELECT name FROM sqlite_schema WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.r.QueryContext(ctx, "/* test dump */ SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:", table)
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					b.Write(bs)
					b.WriteByte('|')
					continue
				}
				fmt.Fprintf(&b, "%v|", v)
			}
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

// TestRetentionLeavesNothingOnDisk: after the purge (Anonymise, then
// ReclaimFreedSpace as retention.Purger calls it), neither the database file nor the
// WAL nor the shared-memory index holds any of the purged cases' description, address,
// names, reasons, messages, identity ciphertext or sealed receipt — while the database
// is open, not only after Close. Before the purge the scan must see every one of them
// in the files, so that a clean scan means something: half of the values are
// checkpointed into the database file first, the rest are only in the WAL.
func TestRetentionLeavesNothingOnDisk(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	env := retentionEnv(db)
	blobs := storetest.MemObjects(t)
	dir := filepath.Dir(db.Path())
	var fixtures []storetest.RetentionFixture
	for i := range 4 {
		fixtures = append(fixtures, storetest.ClosedCase(t, env, blobs, i+1, storetest.RetentionNow.AddDate(-6, 0, 0), i == 1, nil))
		if i == 1 {
			if err := db.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A case that is kept: its text must still be there after the purge.
	keptCase := storetest.ClosedCase(t, env, blobs, 99, storetest.RetentionNow.AddDate(-1, 0, 0), false, nil)
	// Each value is looked for in every form it may be stored in: the identity
	// ciphertext is base64 inside the doc JSON, or raw bytes in a column.
	needles := func(f storetest.RetentionFixture) [][]string {
		var out [][]string
		for _, m := range f.Markers {
			switch {
			case strings.HasPrefix(m, "EVIDENCE-"): // objects live in the object store
			case strings.HasPrefix(m, "IDENTITY-"):
				ct := f.Case.Identity.Ciphertext
				out = append(out, []string{string(ct), base64.StdEncoding.EncodeToString(ct)})
			default:
				out = append(out, []string{m})
			}
		}
		return out
	}
	// scan returns, per value (its first form), the files holding any form of it.
	scan := func() map[string][]string {
		found := map[string][]string{}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range append(fixtures, keptCase) {
				for _, forms := range needles(f) {
					for _, n := range forms {
						if bytes.Contains(b, []byte(n)) {
							found[forms[0]] = append(found[forms[0]], e.Name())
							break
						}
					}
				}
			}
		}
		return found
	}
	before := scan()
	for _, f := range fixtures {
		for _, forms := range needles(f) {
			if n := forms[0]; len(before[n]) == 0 {
				t.Errorf("before the purge, no file holds %q: the scan cannot see what it looks for", n)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("before the purge: %v", before[fixtures[0].Markers[0]])
	// A reader streaming meanwhile (a slow export), as the server may have: the
	// checkpoint waits for it rather than stopping short.
	exported := make(chan error, 1)
	go func() {
		exported <- NewCaseStore(db).ExportCases(ctx, stats.Filter{}, func(stats.ExportRow) error {
			time.Sleep(50 * time.Millisecond)
			return nil
		})
	}()
	start := time.Now()
	if n, err := storetest.NewPurger(env, blobs, "disk").RunOnce(ctx); err != nil || n != len(fixtures) {
		t.Fatalf("purged %d, %v", n, err)
	}
	if err := <-exported; err != nil {
		t.Fatal(err)
	}
	t.Logf("purge and reclaim of %d cases took %v", len(fixtures), time.Since(start))
	after := scan()
	for _, f := range fixtures {
		storetest.CheckPurged(t, env, blobs, f)
		for _, forms := range needles(f) {
			if n := forms[0]; len(after[n]) > 0 {
				files := after[n]
				t.Errorf("after the purge, %v still hold %q", files, n)
			}
		}
	}
	for _, forms := range needles(keptCase) {
		if n := forms[0]; len(after[n]) == 0 {
			t.Errorf("the kept case's %q is gone from the files: the scan or the purge is wrong", n)
		}
	}
	// The WAL was truncated by ReclaimFreedSpace; the lease's release, written after it,
	// is all it holds.
	if fi, err := os.Stat(db.Path() + "-wal"); err != nil || fi.Size() > 64<<10 {
		t.Errorf("WAL after the purge: %v bytes, %v; want the lease's release only", fi.Size(), err)
	}
}

func TestReferencedObjectsConformance(t *testing.T) {
	storetest.ReferencedObjects(t, func(t *testing.T) storetest.ObjectsEnv {
		db := openTestDB(t)
		return storetest.ObjectsEnv{Cases: NewCaseStore(db), Ledger: NewLedgerStore(db), Referenced: db.ReferencedObjects}
	})
}
