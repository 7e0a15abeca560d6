package mongo

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// The scenarios every store passes are storetest.Retention; here are the ones of
// this store's own: a crash between the steps of Anonymise (several writes here, one
// transaction in storage/sqlite), and what the embedded FerretDB leaves in its files.

func retentionEnv(db *DB) storetest.RetentionEnv {
	return storetest.RetentionEnv{Cases: NewCaseStore(db), Leases: NewLeaseStore(db), Audit: NewAuditStore(db), Disclosures: NewRecipientStore(db),
		Dump: func(t *testing.T) string { return dump(t, db) }}
}

func TestRetentionConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		storetest.Retention(t, func(t *testing.T) storetest.RetentionEnv { return retentionEnv(openTestDB(t, tg)) })
	})
}

// dump is every document of every collection of db, as extended JSON.
func dump(t *testing.T, db *DB) string {
	t.Helper()
	ctx := context.Background()
	names, err := db.db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range names {
		cur, err := db.coll(n).Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			// Relaxed extended JSON escapes nothing printable; binary fields are base64,
			// so their raw bytes are checked too.
			js, err := bson.MarshalExtJSON(cur.Current, false, false)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s: %s\n%s\n", n, js, []byte(cur.Current))
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		cur.Close(ctx)
	}
	return b.String()
}

// TestRetentionCrashBetweenSteps: a crash between any two steps of Anonymise leaves
// the case listed again, and the next run completes it, with one audit entry.
func TestRetentionCrashBetweenSteps(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		env := retentionEnv(db)
		blobs := storetest.MemObjects(t)
		s := NewCaseStore(db)
		old := storetest.RetentionNow.AddDate(-6, 0, 0)
		for i, step := range []string{"case", "messages", "disclosures", "idempotency", "mark"} {
			t.Run("before "+step, func(t *testing.T) {
				f := storetest.ClosedCase(t, env, blobs, 10+i, old, i%2 == 0, nil)
				retentionHook = func(caseID, at string) error {
					if caseID == f.Case.ID && at == step {
						return errors.New("simulated crash before " + step)
					}
					return nil
				}
				defer func() { retentionHook = nil }()
				p := storetest.NewPurger(env, blobs, "crashy")
				if n, err := p.RunOnce(ctx); err == nil || n != 0 {
					t.Fatalf("purged %d, %v; want the simulated crash", n, err)
				}
				c, err := s.CaseByID(ctx, f.Case.ID)
				if err != nil {
					t.Fatal(err)
				}
				if identityGone := c.Identity == nil; identityGone != (step != "case") {
					t.Errorf("identity gone = %v after a crash before %s", identityGone, step)
				}
				cands, err := s.ClosedBefore(ctx, storetest.RetentionNow.Add(-storetest.RetentionPeriod), 10)
				if err != nil || len(cands) != 1 || cands[0].CaseID != f.Case.ID {
					t.Fatalf("candidates after the crash: %+v, %v", cands, err)
				}
				retentionHook = nil
				if n, err := p.RunOnce(ctx); err != nil || n != 1 {
					t.Fatalf("retry purged %d, %v", n, err)
				}
				storetest.CheckPurged(t, env, blobs, f)
			})
		}
	})
}

// needles is what must not be found on disk after f's purge: the plaintext markers,
// and the sealed values (identity, re-sealed copy, receipt) as FerretDB stores binary
// data, in base64.
func needles(f storetest.RetentionFixture) []string {
	var out []string
	for _, m := range f.Markers {
		// Inside binary values: looked for in base64 below.
		if !strings.HasPrefix(m, "IDENTITY-") && !strings.HasPrefix(m, "RESEALED-") && !strings.HasPrefix(m, "RECEIPT-") {
			out = append(out, m)
		}
	}
	for _, b := range []string{"age-encryption.org/v1\nIDENTITY-MARKER-", "age-encryption.org/v1\nRESEALED-MARKER-", "RECEIPT-MARKER-"} {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(b+f.Tag)))
	}
	return out
}

// scanFiles returns, per needle, the files under dir (relative) whose bytes hold it.
func scanFiles(t *testing.T, dir string, fixtures []storetest.RetentionFixture) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range fixtures {
			for _, n := range needles(f) {
				if bytes.Contains(b, []byte(n)) {
					found[n] = append(found[n], strings.TrimPrefix(path, dir))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// purgeOnDisk stores the fixtures, checks that the scan sees them in dir (so that a
// clean scan later means something), and purges them.
func purgeOnDisk(t *testing.T, db *DB, blobs intake.EvidenceStore, dir string, objectsOnDisk bool) []storetest.RetentionFixture {
	t.Helper()
	env := retentionEnv(db)
	var fixtures []storetest.RetentionFixture
	for i := range 3 {
		fixtures = append(fixtures, storetest.ClosedCase(t, env, blobs, i+1, storetest.RetentionNow.AddDate(-6, 0, 0), i == 1, nil))
	}
	found := scanFiles(t, dir, fixtures)
	for _, f := range fixtures {
		for _, n := range needles(f) {
			if strings.HasPrefix(n, "EVIDENCE-") && !objectsOnDisk {
				continue
			}
			if len(found[n]) == 0 {
				t.Errorf("before the purge, no file holds %q: the scan cannot see what it looks for", n)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if n, err := storetest.NewPurger(env, blobs, "disk").RunOnce(context.Background()); err != nil || n != 3 {
		t.Fatalf("purged %d, %v", n, err)
	}
	for _, f := range fixtures {
		storetest.CheckPurged(t, env, blobs, f)
	}
	return fixtures
}

// TestRetentionLeavesNoPlaintextOnDisk purges cases in an embedded server of its own
// (started as the service starts it, in a data directory the test can read) and looks
// through every file the database and the object store keep for the purged
// plaintext. The SQLite file and the object files must be clean at once. SQLite's
// write-ahead log still holds earlier page images until SQLite checkpoints and
// restarts it, which with the embedded default's settings happens at shutdown: the log
// is reported while the server runs, and everything must be clean after shutdown.
// TestRetentionNoPlaintextOnDiskWithSecureDelete shows settings that clean it at once.
func TestRetentionLeavesNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	emb, err := embedded.Start(ctx, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	db, err := Open(ctx, emb.MongoDBURI(), "qingfeng")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := db.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: "qingfeng-evidence"})
	if err != nil {
		t.Fatal(err)
	}
	fixtures := purgeOnDisk(t, db, blobs, dir, true)

	var inWAL []string
	for n, files := range scanFiles(t, dir, fixtures) {
		for _, f := range files {
			if strings.HasSuffix(f, "-wal") {
				inWAL = append(inWAL, n)
				continue
			}
			t.Errorf("while running: %s holds %q", f, n)
		}
	}
	if len(inWAL) > 0 {
		t.Logf("known limitation: while the server runs, the SQLite write-ahead log still holds %d purged values (e.g. %q); "+
			"they are gone once SQLite restarts its log (at shutdown with the embedded default's settings)", len(inWAL), inWAL[0])
	}

	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	for n, files := range scanFiles(t, dir, fixtures) {
		t.Errorf("after shutdown: %v hold %q", files, n)
	}
}

// TestRetentionNoPlaintextOnDiskWithSecureDelete runs FerretDB on SQLite with
// secure_delete (deleted content is overwritten with zeros), a checkpoint after every
// transaction and the log truncated when it restarts: then no file holds purged
// plaintext even while the server runs. This is what storage/embedded would need to
// add to its SQLite URL for that guarantee.
func TestRetentionNoPlaintextOnDiskWithSecureDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/?" + secureSQLitePragmas,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(runCtx) }()
	defer func() { stop(); <-done }()
	db, err := Open(ctx, f.MongoDBURI()+"?retryWrites=false", "qingfeng")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := db.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	fixtures := purgeOnDisk(t, db, storetest.MemObjects(t), dir, false)
	for n, files := range scanFiles(t, dir, fixtures) {
		t.Errorf("while running: %v hold %q", files, n)
	}
}

// secureSQLitePragmas are the SQLite settings TestRetentionNoPlaintextOnDiskWithSecureDelete
// checks, as FerretDB's SQLite URL query.
const secureSQLitePragmas = "_pragma=secure_delete(1)&_pragma=wal_autocheckpoint(1)&_pragma=journal_size_limit(0)"
