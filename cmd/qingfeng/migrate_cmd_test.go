package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
	"github.com/qingfeng-zj/qingfeng/storage/storetest"
)

// caseWriter is what the helpers below write cases through, on either store.
type caseWriter interface {
	CreateCase(ctx context.Context, c *intake.Case) error
	AddMessage(ctx context.Context, m *intake.Message) error
	CaseByID(ctx context.Context, id string) (*intake.Case, error)
}

// fileCase stores case i with one evidence object (random bytes, hashed) in objs.
func fileCase(t testing.TB, ctx context.Context, cases caseWriter, objs *blob.Store, i int) *intake.Case {
	t.Helper()
	received := time.Date(2026, 4, 1, 2, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	c := storetest.NewCase(i, "yw-mz", "330782", received)
	body := make([]byte, 1000+i)
	_, _ = rand.Read(body)
	key := fmt.Sprintf("evidence/%s/photo", c.ID)
	if _, err := objs.Put(ctx, key, bytes.NewReader(body), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	c.Evidence = []intake.Evidence{{ID: "ev-" + c.ID, ObjectKey: key, ContentType: "image/jpeg", Size: int64(len(body)),
		SHA256Received: hex.EncodeToString(sum[:]), SHA256Stored: hex.EncodeToString(sum[:]), MetadataRemoved: true,
		UploadedBy: intake.UploaderReporter, UploadedAt: received}}
	c.EvidenceBytes = int64(len(body))
	if err := cases.CreateCase(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := cases.AddMessage(ctx, &intake.Message{ID: "m-" + c.ID, CaseID: c.ID, From: "staff", Kind: "public_note", AuthorID: "u-1",
		Body: "已受理", CreatedAt: received.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	stored, err := cases.CaseByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// oldDataDir writes a data directory as the earlier release did: FerretDB and the S3
// server under dir, written through storage/mongo. It returns the cases as stored.
func oldDataDir(t *testing.T, cfg Config, n int) []*intake.Case {
	t.Helper()
	ctx := context.Background()
	emb, err := embedded.Start(ctx, cfg.DataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	db, err := mongo.Open(ctx, emb.MongoDBURI(), cfg.MongoDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := db.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	objs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: dataDirBucket(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	var out []*intake.Case
	for i := range n {
		out = append(out, fileCase(t, ctx, mongo.NewCaseStore(db), objs, i))
	}
	log := &audit.Log{Store: mongo.NewAuditStore(db)}
	if _, err := log.Append(ctx, "system", "", "bootstrap", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := mongo.NewUserStore(db).CreateUser(ctx, &accounts.User{ID: "u-1", Username: "admin", DisplayName: "管理员", Role: accounts.RoleAdmin,
		PasswordHash: "x", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateOldDataDir migrates an earlier release's data directory (FerretDB) into a
// new directory (secrets included) and in place, the command the server names when it
// refuses such a directory: it refuses while the directory is in use; after, the
// SQLite file holds every case as the old store read it, with its objects.
func TestMigrateOldDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	want := oldDataDir(t, cfg, 12)
	if err := os.WriteFile(filepath.Join(dir, "receipt-pepper"), []byte("the old pepper"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Into a new directory: the records, the objects and the secrets.
	moved := filepath.Join(t.TempDir(), "new")
	if code := runMigrate(cfg, slog.New(slog.DiscardHandler), []string{"--from", dir, "--to", moved}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("migrate into a new directory: exit %d", code)
	}
	if b, err := os.ReadFile(filepath.Join(moved, "receipt-pepper")); err != nil || string(b) != "the old pepper" {
		t.Errorf("pepper in the new directory: %q, %v", b, err)
	}
	for i, c := range readDataDir(t, cfg, moved, want) {
		if !migrate.Equal(want[i], c) {
			t.Errorf("case %s in the new directory differs", c.ID)
		}
	}

	// In use: a server holds the directory.
	emb, err := embedded.Start(context.Background(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMigrate(cfg, slog.New(slog.DiscardHandler), []string{"--from", dir, "--to", dir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "in use") {
		t.Errorf("migrate while in use: exit %d, stderr %s", code, stderr.String())
	}
	_ = emb.Close()

	stdout.Reset()
	stderr.Reset()
	if code := runMigrate(cfg, slog.New(slog.DiscardHandler), []string{"--from", dir, "--to", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("migrate:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "verified") {
		t.Errorf("no verification reported: %s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		t.Errorf("no %s after the migration: %v", sqlite.FileName, err)
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName+partialSuffix)); !os.IsNotExist(err) {
		t.Errorf("partial database left: %v", err)
	}
	got := readDataDir(t, cfg, dir, want)
	for i := range want {
		if !migrate.Equal(want[i], got[i]) {
			t.Errorf("case %s after the migration:\nold %+v\nnew %+v", want[i].ID, want[i], got[i])
		}
	}
	// Migrating again is refused: the directory has its SQLite database now.
	if code := runMigrate(cfg, slog.New(slog.DiscardHandler), []string{"--from", dir, "--to", dir}, io.Discard, io.Discard); code != 2 {
		t.Errorf("second in-place migration: exit %d, want 2", code)
	}
}

// readDataDir opens a SQLite data directory as the server would and returns the
// cases of want, after checking each object's hash.
func readDataDir(t *testing.T, cfg Config, dir string, want []*intake.Case) []*intake.Case {
	t.Helper()
	ctx := context.Background()
	emb, err := embedded.StartS3(ctx, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	objs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: dataDirBucket(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	var out []*intake.Case
	for _, w := range want {
		c, err := sqlite.NewCaseStore(db).CaseByID(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range c.Evidence {
			r, _, err := objs.Get(ctx, ev.ObjectKey)
			if err != nil {
				t.Fatalf("object %s: %v", ev.ObjectKey, err)
			}
			h := sha256.New()
			_, _ = io.Copy(h, r)
			_ = r.Close()
			if hex.EncodeToString(h.Sum(nil)) != ev.SHA256Stored {
				t.Errorf("object %s: hash differs", ev.ObjectKey)
			}
		}
		out = append(out, c)
	}
	rep, err := audit.Verify(ctx, sqlite.NewAuditStore(db))
	if err != nil || !rep.OK {
		t.Errorf("audit chain: %+v, %v", rep, err)
	}
	return out
}

// TestMigrateToMongoAndBack runs the command from a SQLite data directory to MongoDB
// (FerretDB, with its S3 as the configured object store) and back into a new data
// directory, and refuses the targets it must refuse.
func TestMigrateToMongoAndBack(t *testing.T) {
	ctx := context.Background()
	// The "production" side: a MongoDB-wire server and an S3 server.
	prod, err := embedded.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	uri := prod.MongoDBURI()
	cfg := testConfig(t, t.TempDir(), map[string]string{"S3_ENDPOINT": prod.S3Endpoint(), "S3_ACCESS_KEY": prod.S3AccessKey(),
		"S3_SECRET_KEY": prod.S3SecretKey(), "S3_BUCKET": "qf-migrate-test", "MONGODB_DATABASE": "qfmig"})

	first := t.TempDir()
	var want []*intake.Case
	func() {
		emb, err := embedded.StartS3(ctx, first, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer emb.Close()
		db, err := sqlite.Open(ctx, filepath.Join(first, sqlite.FileName), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		objs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: "qingfeng-evidence"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 15 {
			want = append(want, fileCase(t, ctx, sqlite.NewCaseStore(db), objs, i))
		}
		if err := os.WriteFile(filepath.Join(first, "receipt-pepper"), []byte("p"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := (&audit.Log{Store: sqlite.NewAuditStore(db)}).Append(ctx, "system", "", "bootstrap", "", nil); err != nil {
			t.Fatal(err)
		}
	}()
	logger := slog.New(slog.DiscardHandler)
	var out, errOut bytes.Buffer
	if code := runMigrate(cfg, logger, []string{"--from", first, "--to", uri}, &out, &errOut); code != 0 {
		t.Fatalf("to mongo: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "migrate: cases") {
		t.Errorf("no progress lines on stderr: %q", errOut.String())
	}
	if !strings.Contains(errOut.String(), "QF_RECEIPT_PEPPER_FILE="+filepath.Join(first, "receipt-pepper")) {
		t.Errorf("the operator is not told to carry the pepper over: %q", errOut.String())
	}
	back := filepath.Join(t.TempDir(), "back")
	if code := runMigrate(cfg, logger, []string{"--from", uri, "--to", back}, &out, &errOut); code != 0 {
		t.Fatalf("back: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	got := readDataDir(t, cfg, back, want)
	for i := range want {
		if !reflect.DeepEqual(want[i], got[i]) {
			t.Errorf("case %s after sqlite → mongo → sqlite:\nbefore %+v\nafter  %+v", want[i].ID, want[i], got[i])
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"target data dir has a database", []string{"--from", uri, "--to", back}, 1, "already holds a database"},
		{"target data dir not empty", []string{"--from", uri, "--to", nonEmptyDir(t)}, 1, "not empty"},
		{"both mongo", []string{"--from", uri, "--to", uri}, 2, "mongodump"},
		{"same dir", []string{"--from", first, "--to", first}, 2, "same directory"},
		{"no source", []string{"--from", filepath.Join(t.TempDir(), "nothing"), "--to", uri}, 1, "holds no database"},
		{"missing flag", []string{"--from", first}, 2, "want --from and --to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := runMigrate(cfg, logger, tc.args, io.Discard, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.msg)
			}
		})
	}
	// Into a MongoDB that holds another database's records: refused.
	other := filepath.Join(t.TempDir(), "other")
	func() {
		emb, err := embedded.StartS3(ctx, other, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer emb.Close()
		db, err := sqlite.Open(ctx, filepath.Join(other, sqlite.FileName), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := (&audit.Log{Store: sqlite.NewAuditStore(db)}).Append(ctx, "system", "", "something.else", "", nil); err != nil {
			t.Fatal(err)
		}
	}()
	var stderr bytes.Buffer
	if code := runMigrate(cfg, logger, []string{"--from", other, "--to", uri}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "another database") {
		t.Errorf("into a foreign target: exit %d, %s", code, stderr.String())
	}
}

// TestBackupWhileWritingRestore takes a backup while a writer keeps filing cases with
// evidence through the live store (as a running server does), restores it into a new
// directory and finds every case filed before the backup began — and every case the
// archive holds — whole, with its objects; a corrupted archive restores nothing.
func TestBackupWhileWritingRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	// The embedded default through and through, also where the suite's server keeps its
	// evidence in a real S3 (CI): TestBackupOfRunningServer covers that.
	cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey = "", "", ""
	// The "server": the S3 server holding the directory, and the database open.
	emb, err := embedded.StartS3(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	objs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: cfg.S3Bucket})
	if err != nil {
		t.Fatal(err)
	}
	cases := sqlite.NewCaseStore(db)
	var before []*intake.Case
	for i := range 20 {
		before = append(before, fileCase(t, ctx, cases, objs, i))
	}
	if err := os.WriteFile(filepath.Join(dir, "receipt-pepper"), []byte("pepper"), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		wrote atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 20; !stop.Load(); i++ {
			fileCase(t, ctx, cases, objs, i)
			wrote.Add(1)
		}
	}()
	for wrote.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	archive := filepath.Join(t.TempDir(), "qingfeng.tar")
	var out, errOut bytes.Buffer
	code := runBackup(cfg, slog.New(slog.DiscardHandler), []string{"--out", archive}, &out, &errOut)
	stop.Store(true)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	t.Logf("backup while %d cases were filed: %s", wrote.Load(), out.String())
	if !strings.Contains(errOut.String(), "not in the archive") {
		t.Errorf("backup does not say the secrets are left out: %s", errOut.String())
	}
	if code := runBackup(cfg, slog.New(slog.DiscardHandler), []string{"--out", archive}, io.Discard, io.Discard); code != 1 {
		t.Errorf("backup over an existing file: exit %d, want 1", code)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	errOut.Reset()
	if code := runRestore(cfg, slog.New(slog.DiscardHandler), []string{"--in", archive, "--data-dir", restored}, &out, &errOut); code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	t.Log(out.String())
	if _, err := os.Stat(filepath.Join(restored, "receipt-pepper")); !os.IsNotExist(err) {
		t.Errorf("the pepper was restored from an archive made without secrets: %v", err)
	}
	got := readDataDir(t, cfg, restored, before)
	for i := range before {
		if !reflect.DeepEqual(before[i], got[i]) {
			t.Errorf("case %s restored differs:\nbefore %+v\nafter  %+v", before[i].ID, before[i], got[i])
		}
	}
	// Every case in the archive is whole (restore checked each object's hash); it holds
	// at least the cases filed before the backup.
	rdb, err := sqlite.Open(ctx, filepath.Join(restored, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := sqlite.NewCaseStore(rdb).CountCases(ctx)
	_ = rdb.Close()
	if err != nil || n < int64(len(before)) {
		t.Errorf("restored %d cases, %v; want at least %d", n, err, len(before))
	}

	// Restore refuses a non-empty directory, and a corrupted archive leaves its
	// target empty.
	if code := runRestore(cfg, slog.New(slog.DiscardHandler), []string{"--in", archive, "--data-dir", restored}, io.Discard, &errOut); code != 1 {
		t.Errorf("restore into a non-empty directory: exit %d", code)
	}
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := objs.Get(ctx, before[3].Evidence[0].ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r)
	_ = r.Close()
	at := bytes.Index(raw, body)
	if at < 0 {
		t.Fatal("object not found in the archive")
	}
	raw[at+10] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.tar")
	if err := os.WriteFile(bad, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "bad")
	errOut.Reset()
	if code := runRestore(cfg, slog.New(slog.DiscardHandler), []string{"--in", bad, "--data-dir", target}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "SHA-256") {
		t.Errorf("restore of a corrupted archive: exit %d, %s", code, errOut.String())
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Errorf("a failed restore left %d files in its target", len(entries))
	}
	// A cut-short archive too.
	if err := os.WriteFile(bad, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if code := runRestore(cfg, slog.New(slog.DiscardHandler), []string{"--in", bad, "--data-dir", target}, io.Discard, io.Discard); code != 1 {
		t.Errorf("restore of a cut archive: exit %d", code)
	}

	// With --include-secrets the pepper travels and comes back.
	archive2 := filepath.Join(t.TempDir(), "with-secrets.tar")
	if code := runBackup(cfg, slog.New(slog.DiscardHandler), []string{"--out", archive2, "--include-secrets"}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("backup --include-secrets: exit %d", code)
	}
	restored2 := filepath.Join(t.TempDir(), "restored2")
	if code := runRestore(cfg, slog.New(slog.DiscardHandler), []string{"--in", archive2, "--data-dir", restored2}, io.Discard, &errOut); code != 0 {
		t.Fatalf("restore with secrets: exit %d %s", code, errOut.String())
	}
	if b, err := os.ReadFile(filepath.Join(restored2, "receipt-pepper")); err != nil || string(b) != "pepper" {
		t.Errorf("pepper restored: %q, %v", b, err)
	}
}

func nonEmptyDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBackupOfRunningServer backs up the test server's data directory while reports
// are filed through its API, restores the archive and finds every case filed before
// the backup began, and the audit chain and every case's objects intact (restore
// checks both).
func TestBackupOfRunningServer(t *testing.T) {
	var before []filed
	for range 3 {
		before = append(before, fileReport(t, anonymousReport()))
	}
	body := jsonBytes(t, anonymousReport())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var during atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Not postJSON: it may call t.Fatal, which only the test's goroutine may.
			resp, err := httpClient().Post(baseURL+"/v1/reports", "application/json", bytes.NewReader(body))
			if err != nil {
				continue
			}
			_ = resp.Body.Close()
			if resp.StatusCode == 201 {
				during.Add(1)
			}
		}
	}()
	cfg := srv.Config // its data directory and its object store (a real S3 in CI)
	archive := filepath.Join(t.TempDir(), "running.tar")
	var out, errOut bytes.Buffer
	code := runBackup(cfg, slog.New(slog.DiscardHandler), []string{"--out", archive}, &out, &errOut)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup of the running server: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	t.Logf("%s(%d reports filed during the backup)", out.String(), during.Load())
	restored := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	if code := runRestore(cfg, slog.New(slog.DiscardHandler), []string{"--in", archive, "--data-dir", restored}, &out, &errOut); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, errOut.String())
	}
	t.Log(out.String())
	db, err := sqlite.Open(context.Background(), filepath.Join(restored, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, f := range before {
		if _, err := sqlite.NewCaseStore(db).CaseByNumber(context.Background(), f.CaseNumber); err != nil {
			t.Errorf("case %s filed before the backup: %v", f.CaseNumber, err)
		}
	}
}
