package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

const backupUsage = `usage: qingfeng backup --out FILE [--data-dir DIR] [--include-secrets]

Writes one archive (tar) of the embedded default's data directory (QF_DATA_DIR, or
--data-dir): an online backup of the SQLite database, every object, and a manifest
with each file's SHA-256. The server may keep running: the database is copied from
one consistent snapshot, and the objects the snapshot refers to are written before it.
FILE must not exist; it is created readable by the owner only.

The data directory's secrets — the receipt pepper, the token signing key and the
demo custodian key, which opens the identities sealed to it — are left out unless
--include-secrets is given: keep them apart from the backups (without the pepper no
reporter's receipt works after a restore). With MongoDB, back up the database
(mongodump) and the S3 bucket with their own tools.

Exit status: 0 written, 1 failed, 2 usage error.

Flags:
`

const restoreUsage = `usage: qingfeng restore --in FILE --data-dir DIR

Restores an archive written by qingfeng backup into DIR, which must not exist or be
empty. Every file is checked against the archive's manifest (size and SHA-256), then
every object a case refers to against the hash the case records, and the audit
chain; only then is the database given its name. On any failure DIR is left empty.
Then start the server with QF_DATA_DIR=DIR (and the secrets kept apart, if the
archive was made without them).

Exit status: 0 restored and verified, 1 failed, 2 usage error.

Flags:
`

// secretFiles are the data directory's secrets that --include-secrets archives.
var secretFiles = []string{"receipt-pepper", "jwt-ed25519.pem", "demo-custodian-key.txt"}

const archiveSecrets = "secrets/"

// runBackup is `qingfeng backup`; it returns the exit status.
func runBackup(cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backupUsage); fs.PrintDefaults() }
	out := fs.String("out", "", "the archive to write (must not exist)")
	dir := fs.String("data-dir", cfg.DataDir, "the data directory")
	secrets := fs.Bool("include-secrets", false, "archive the receipt pepper, signing key and demo custodian key too")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "qingfeng backup: want --out FILE")
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := backup(ctx, cfg, log, *dir, *out, *secrets)
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup %s: database %d bytes, %d objects", *out, m.Database.Size, len(m.Objects))
	if len(m.Missing) > 0 {
		fmt.Fprintf(stdout, " (%d referenced objects were already deleted: %v)", len(m.Missing), m.Missing)
	}
	fmt.Fprintln(stdout)
	if !*secrets {
		fmt.Fprintf(stderr, "qingfeng backup: the secrets in %s (%v) are not in the archive: keep a copy of them apart\n", *dir, secretFiles)
	}
	return 0
}

func backup(ctx context.Context, cfg Config, log *slog.Logger, dir, out string, withSecrets bool) (m migrate.Manifest, err error) {
	live := filepath.Join(dir, sqlite.FileName)
	if _, err := os.Stat(live); err != nil {
		if isOldDataDir(dir) {
			return m, fmt.Errorf("%s is an earlier release's data directory: migrate it first (qingfeng migrate --from %s --to %s)", dir, dir, dir)
		}
		return m, fmt.Errorf("no database in %s: %w", dir, err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return m, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(out)
		}
	}()
	tmp, err := os.MkdirTemp(filepath.Dir(absPath(out)), ".qingfeng-backup-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(tmp)

	// The server holds the database; a second, read-only handle on the file (WAL
	// mode) copies one snapshot without stopping it.
	snapshot := filepath.Join(tmp, sqlite.FileName)
	if err := sqlite.BackupFile(ctx, live, snapshot); err != nil {
		return m, err
	}
	// What the snapshot refers to was written before it; objects written since are
	// archived too (harmless: unreferenced, the orphan sweep removes them).
	snap, err := sqlite.Open(ctx, snapshot, log)
	if err != nil {
		return m, err
	}
	referenced, err := snap.ReferencedObjects(ctx)
	if cerr := snap.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return m, err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(snapshot + suffix)
	}
	// The objects: the embedded S3 server's files under the data directory, or the
	// configured S3 store when the server keeps its evidence there (S3_ENDPOINT).
	var objects fs.FS
	var keys []string
	if cfg.S3Endpoint != "" {
		store, err := blob.Open(ctx, cfg.s3Config())
		if err != nil {
			return m, fmt.Errorf("open the object store: %w", err)
		}
		objects = blobFS{ctx: ctx, s: store}
		if err := store.List(ctx, "", func(key string, _ time.Time) error {
			keys = append(keys, key)
			return nil
		}); err != nil {
			return m, fmt.Errorf("list objects: %w", err)
		}
	} else {
		objects = embedded.ObjectFS(dir, dataDirBucket(cfg))
		err = fs.WalkDir(objects, ".", func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == "." {
				return fs.SkipAll // no object was ever stored
			}
			if err != nil || d.IsDir() {
				return err
			}
			keys = append(keys, p)
			return nil
		})
		if err != nil {
			return m, fmt.Errorf("list objects: %w", err)
		}
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[k] = true
	}
	var missing []string
	for k := range referenced {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	var extra []migrate.ArchivedExtra
	if withSecrets {
		for _, name := range secretFiles {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return m, err
			}
			extra = append(extra, migrate.ArchivedExtra{Name: archiveSecrets + name, Content: b})
		}
	}
	m, err = migrate.WriteArchive(ctx, f, snapshot, objects, keys, extra)
	m.Missing = missing
	if err == nil {
		err = f.Sync()
	}
	return m, err
}

// runRestore is `qingfeng restore`; it returns the exit status.
func runRestore(cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, restoreUsage); fs.PrintDefaults() }
	in := fs.String("in", "", "the archive to read")
	dir := fs.String("data-dir", "", "the data directory to restore into (new or empty)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *in == "" || *dir == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "qingfeng restore: want --in FILE and --data-dir DIR")
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, n, err := restore(ctx, cfg, log, *in, *dir)
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s: database %d bytes, %d objects; %d case objects and the audit chain verified\n",
		*in, *dir, m.Database.Size, len(m.Objects), n)
	return 0
}

func restore(ctx context.Context, cfg Config, log *slog.Logger, in, dir string) (m migrate.Manifest, checked int64, err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return m, 0, fmt.Errorf("%s is not empty: restore into a new or empty directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return m, 0, err
	}
	f, err := os.Open(in)
	if err != nil {
		return m, 0, err
	}
	defer f.Close()
	// The objects go where the restored server will read them: the configured S3
	// store (S3_ENDPOINT), or the embedded one under dir.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return m, 0, err
	}
	s3 := cfg.s3Config()
	closeEmb := func() {}
	if cfg.S3Endpoint == "" {
		emb, err := embedded.StartS3(ctx, dir, log)
		if err != nil {
			return m, 0, dirError(dir, err)
		}
		closeEmb = func() { _ = emb.Close() }
		s3 = blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: dataDirBucket(cfg)}
	}
	defer func() {
		closeEmb()
		if err != nil {
			// The directory was new or empty: leave it so.
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				_ = os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}()
	objs, err := blob.Open(ctx, s3)
	if err != nil {
		return m, 0, err
	}
	final := filepath.Join(dir, sqlite.FileName)
	partial := final + partialSuffix
	m, err = migrate.ReadArchive(ctx, f, migrate.RestoreTarget{
		Database: partial,
		Put: func(ctx context.Context, key string, r io.Reader) error {
			_, err := objs.Put(ctx, key, r, "application/octet-stream")
			return err
		},
		Extra: func(name string, content []byte) error {
			secret, ok := bytes.CutPrefix([]byte(name), []byte(archiveSecrets))
			if !ok || !isSecretFile(string(secret)) {
				return fmt.Errorf("unexpected file %q in the archive", name)
			}
			return os.WriteFile(filepath.Join(dir, string(secret)), content, 0o600)
		},
	})
	if err != nil {
		return m, 0, err
	}
	db, err := sqlite.Open(ctx, partial, log)
	if err != nil {
		return m, 0, err
	}
	rep, err := audit.Verify(ctx, sqlite.NewAuditStore(db))
	if err == nil && !rep.OK {
		err = fmt.Errorf("the restored audit chain is broken at entry %d: %s", rep.FirstBroken.Seq, rep.FirstBroken.Reason)
	}
	if err == nil {
		checked, err = migrate.CheckObjects(ctx, sqlite.NewRecords(db), objs)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return m, checked, err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(partial + suffix)
	}
	return m, checked, os.Rename(partial, final)
}

func isSecretFile(name string) bool {
	for _, s := range secretFiles {
		if s == name {
			return true
		}
	}
	return false
}

// blobFS reads objects of an S3 store as files, for the archive.
type blobFS struct {
	ctx context.Context
	s   *blob.Store
}

func (b blobFS) Open(name string) (fs.File, error) {
	rc, size, err := b.s.Get(b.ctx, name)
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, err
	}
	return &blobFile{ReadCloser: rc, info: blobInfo{name: path.Base(name), size: size}}, nil
}

type blobFile struct {
	io.ReadCloser
	info blobInfo
}

func (f *blobFile) Stat() (fs.FileInfo, error) { return f.info, nil }

type blobInfo struct {
	name string
	size int64
}

func (i blobInfo) Name() string       { return i.name }
func (i blobInfo) Size() int64        { return i.size }
func (i blobInfo) Mode() fs.FileMode  { return 0o600 }
func (i blobInfo) ModTime() time.Time { return time.Time{} }
func (i blobInfo) IsDir() bool        { return false }
func (i blobInfo) Sys() any           { return nil }
