package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/migrate"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

const migrateUsage = `usage: qingfeng migrate --from <data dir|mongodb URI> --to <mongodb URI|data dir> [--allow-incomplete]

Copies everything from one store to another and verifies the copy: users, the audit
chain, calendars, routing rules, units, organizations, custodians' keys, disclosure
requests and re-seal tasks, cases with their messages and notifications, counters, the donation ledger (entries, balances,
verifications, photos, statements, corrections, alerts), and the objects cases and
ledger photos refer to. At the end it compares every record of both sides, checks each object's SHA-256
and verifies the target's audit chain; exit status 0 means all of it held.

A data directory is the embedded default's (QF_DATA_DIR): the SQLite file
` + sqlite.FileName + ` and the objects under s3/ (bucket S3_BUCKET, or its default
when S3_ENDPOINT is set: S3_BUCKET then names the MongoDB side's). A data directory written by an
earlier release (FerretDB files under ferretdb/, no ` + sqlite.FileName + `) is read
as it is: migrate it into a new data directory, then point QF_DATA_DIR there.
A mongodb:// URI is a MongoDB database (MONGODB_DATABASE); its objects are in the
S3 store configured by S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY,
S3_BUCKET. A target data directory must be new or empty.

Stop the server first: a data directory is locked while a server uses it, and a
record changed during the copy shows as a difference at the end. Interrupted (Ctrl-C,
a crash), run the same command again: it continues where it stopped.

Not copied: idempotency records and job leases (transient), staff sessions (staff
sign in again), and case events not yet delivered to webhooks: a source with
deliveries still pending is refused unless --allow-incomplete is given, which leaves
them behind (or let the server deliver them first).

Exit status: 0 copied and verified, 1 failed or the copy differs, 2 usage error.

Flags:
`

// runMigrate is `qingfeng migrate`; it returns the exit status.
func runMigrate(cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, migrateUsage)
		fs.PrintDefaults()
	}
	from := fs.String("from", "", "the source: a data directory or a mongodb:// URI")
	to := fs.String("to", "", "the target: a mongodb:// URI or a data directory")
	incomplete := fs.Bool("allow-incomplete", false, "copy even when the source holds webhook deliveries still pending (they stay behind)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *from == "" || *to == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "qingfeng migrate: want --from and --to, and nothing else")
		fs.Usage()
		return 2
	}
	if isMongoURI(*from) && isMongoURI(*to) {
		fmt.Fprintln(stderr, "qingfeng migrate: from one MongoDB to another, use mongodump/mongorestore; migrate moves between a data directory and MongoDB")
		return 2
	}
	// An earlier release's data directory may be migrated in place: the SQLite file
	// is written beside ferretdb/, the objects stay where they are.
	inPlace := false
	if !isMongoURI(*from) && !isMongoURI(*to) && absPath(*from) == absPath(*to) {
		if _, err := os.Stat(filepath.Join(*from, sqlite.FileName)); err == nil || !isOldDataDir(*from) {
			fmt.Fprintln(stderr, "qingfeng migrate: --from and --to are the same directory (only an earlier release's data directory is migrated in place)")
			return 2
		}
		inPlace = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	src, closeSrc, err := openSide(ctx, cfg, log, *from, nil)
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng migrate: the source:", err)
		return 1
	}
	defer closeSrc.close()
	tgt := &sideTarget{}
	if inPlace {
		tgt.shared = src.Objects
	}
	dst, closeDst, err := openSide(ctx, cfg, log, *to, tgt)
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng migrate: the target:", err)
		return 1
	}
	defer closeDst.close()

	start := time.Now()
	rep, err := migrate.Run(ctx, src, dst, migrate.Options{Progress: stderr, AllowIncomplete: *incomplete})
	if errors.Is(err, migrate.ErrIncomplete) {
		fmt.Fprintf(stderr, "qingfeng migrate: the source holds records that are not copied: %v\n"+
			"  nothing was copied; give --allow-incomplete to copy the rest and leave these behind\n", rep.Left)
		return 1
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "qingfeng migrate: interrupted; run the same command again to continue")
			return 1
		}
		fmt.Fprintln(stderr, "qingfeng migrate:", err)
		return 1
	}
	if err := closeDst.finish(); err != nil {
		fmt.Fprintln(stderr, "qingfeng migrate: the target:", err)
		return 1
	}
	if err := carrySecrets(*from, *to, inPlace, stderr); err != nil {
		fmt.Fprintln(stderr, "qingfeng migrate: the data directory's secrets:", err)
		return 1
	}
	for _, k := range rep.Kinds {
		fmt.Fprintf(stdout, "%-16s %9d in the source, %9d copied now\n", k.Kind, k.Source, k.Inserted)
	}
	fmt.Fprintf(stdout, "%-16s %9d verified,      %9d copied now\n", "objects", rep.Objects, rep.Copied)
	if len(rep.Left) > 0 {
		fmt.Fprintf(stdout, "left behind (--allow-incomplete): %v\n", rep.Left)
	}
	fmt.Fprintf(stdout, "verified: every record equal, every object's SHA-256, the target's audit chain (head %s); %s\n",
		rep.AuditHead, time.Since(start).Round(time.Millisecond))
	return 0
}

// carrySecrets deals with the data directory's secrets, which the database copy does
// not hold and without which it is of little use: without the receipt pepper no
// reporter's receipt opens their case. Between data directories they are copied
// (never over a file there); into MongoDB the operator is told which setting each
// becomes; out of MongoDB, where the new directory's must come from.
func carrySecrets(from, to string, inPlace bool, stderr io.Writer) error {
	switch {
	case inPlace:
		return nil
	case !isMongoURI(from) && !isMongoURI(to):
		for _, name := range secretFiles {
			b, err := os.ReadFile(filepath.Join(from, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			f, err := os.OpenFile(filepath.Join(to, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return err
			}
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	case isMongoURI(to):
		for _, s := range []struct{ file, env string }{
			{"receipt-pepper", "QF_RECEIPT_PEPPER_FILE"},
			{"jwt-ed25519.pem", "QF_JWT_SIGNING_KEY_FILE"},
		} {
			if _, err := os.Stat(filepath.Join(from, s.file)); err == nil {
				fmt.Fprintf(stderr, "qingfeng migrate: give the servers on MongoDB %s=%s (or its content): without the same pepper no receipt opens its case\n",
					s.env, filepath.Join(absPath(from), s.file))
			}
		}
		if _, err := os.Stat(filepath.Join(from, "demo-custodian-key.txt")); err == nil {
			fmt.Fprintln(stderr, "qingfeng migrate: identities sealed to the DEMO custodian key stay readable only with it: register real custodians (qfctl keys new), "+
				"let them re-seal those cases, and keep demo-custodian-key.txt off the production servers")
		}
	default:
		fmt.Fprintf(stderr, "qingfeng migrate: put the deployment's receipt pepper into %s (QF_RECEIPT_PEPPER's value) before starting on it, or set QF_RECEIPT_PEPPER\n",
			filepath.Join(absPath(to), "receipt-pepper"))
	}
	return nil
}

func isMongoURI(s string) bool {
	return strings.HasPrefix(s, "mongodb://") || strings.HasPrefix(s, "mongodb+srv://")
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// opened is what openSide opened: close closes it, finish (after a verified copy)
// closes a target data directory's database and gives it its final name.
type opened struct {
	closers []func()
	done    func() error
}

func (o *opened) close() {
	for i := len(o.closers) - 1; i >= 0; i-- {
		o.closers[i]()
	}
	o.closers = nil
}

func (o *opened) finish() error {
	if o.done == nil {
		return nil
	}
	return o.done()
}

// partialSuffix marks a target database until its copy is verified: a server never
// starts on a half-copied data directory, and a new run continues the partial one.
const partialSuffix = ".partial"

// openSide opens one end of a migration; target is non-nil for the target, with the
// objects to share when migrating a data directory in place. A target data directory
// must be new or empty, or hold the partial copy of an interrupted run, which is
// continued.
func openSide(ctx context.Context, cfg Config, log *slog.Logger, where string, target *sideTarget) (migrate.Side, *opened, error) {
	o := &opened{}
	fail := func(err error) (migrate.Side, *opened, error) {
		o.close()
		return migrate.Side{}, o, err
	}
	if isMongoURI(where) {
		db, err := mongo.Open(ctx, where, cfg.MongoDatabase)
		if err != nil {
			return fail(err)
		}
		o.closers = append(o.closers, func() { _ = db.Close(context.Background()) })
		if target != nil {
			if err := db.EnsureIndexes(ctx); err != nil {
				return fail(fmt.Errorf("ensure indexes: %w", err))
			}
		}
		if cfg.S3Endpoint == "" {
			return fail(errors.New("S3_ENDPOINT is not set: the objects of a MongoDB deployment are in its S3 store (S3_*)"))
		}
		objs, err := blob.Open(ctx, blob.Config{Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
			Bucket: cfg.S3Bucket, Region: cfg.S3Region, UseSSL: cfg.S3UseSSL})
		if err != nil {
			return fail(err)
		}
		return migrate.Side{Store: mongo.NewRecords(db), Objects: objs}, o, nil
	}

	dir := where
	final := filepath.Join(dir, sqlite.FileName)
	_, statErr := os.Stat(final)
	hasSQLite := statErr == nil
	if target == nil && !hasSQLite && isOldDataDir(dir) {
		// An earlier release's data directory: FerretDB and the S3 server in-process,
		// read through storage/mongo as that release did.
		emb, err := embedded.Start(ctx, dir, log)
		if err != nil {
			return fail(dirError(dir, err))
		}
		o.closers = append(o.closers, func() { _ = emb.Close() })
		db, err := mongo.Open(ctx, emb.MongoDBURI(), cfg.MongoDatabase)
		if err != nil {
			return fail(err)
		}
		o.closers = append(o.closers, func() { _ = db.Close(context.Background()) })
		objs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: dataDirBucket(cfg)})
		if err != nil {
			return fail(err)
		}
		log.Info("reading an earlier release's data directory (FerretDB)", "dir", dir)
		return migrate.Side{Store: mongo.NewRecords(db), Objects: objs}, o, nil
	}
	path := final
	switch {
	case target == nil && !hasSQLite:
		return fail(fmt.Errorf("%s holds no database (%s, or an earlier release's ferretdb/)", dir, sqlite.FileName))
	case target != nil && hasSQLite:
		return fail(fmt.Errorf("%s already holds a database (%s): migrate into a new or empty directory", dir, sqlite.FileName))
	case target != nil:
		path = final + partialSuffix
		if _, err := os.Stat(path); err != nil && target.shared == nil {
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return fail(fmt.Errorf("%s is not empty: migrate into a new or empty directory", dir))
			}
		}
	}
	objs := migrate.Objects(nil)
	if target != nil && target.shared != nil {
		objs = target.shared
	} else {
		// The S3 server first: it takes the directory's lock, so a server running on
		// the directory stops this before the database is opened.
		emb, err := embedded.StartS3(ctx, dir, log)
		if err != nil {
			return fail(dirError(dir, err))
		}
		o.closers = append(o.closers, func() { _ = emb.Close() })
		bs, err := blob.Open(ctx, blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: dataDirBucket(cfg)})
		if err != nil {
			return fail(err)
		}
		objs = bs
	}
	db, err := sqlite.Open(ctx, path, log)
	if err != nil {
		return fail(err)
	}
	closeDB := func() { _ = db.Close() }
	o.closers = append(o.closers, closeDB)
	if target != nil {
		o.done = func() error {
			if err := db.Close(); err != nil {
				return err
			}
			for _, suffix := range []string{"-wal", "-shm"} {
				_ = os.Remove(path + suffix) // Close checkpointed and truncated the WAL
			}
			return os.Rename(path, final)
		}
	}
	return migrate.Side{Store: sqlite.NewRecords(db), Objects: objs}, o, nil
}

// sideTarget marks the target side of openSide.
type sideTarget struct {
	shared migrate.Objects // the source's objects, when migrating in place
}

// dataDirBucket is the bucket of a data directory's embedded S3 server: S3_BUCKET as
// the server on that directory uses it, unless S3_ENDPOINT is set — then S3_BUCKET
// names the bucket of the configured store (the MongoDB side), and the directory's is
// the default a server there starts with.
func dataDirBucket(cfg Config) string {
	if cfg.S3Endpoint == "" {
		return cfg.S3Bucket
	}
	for _, s := range settings {
		if s.env == "S3_BUCKET" {
			return s.def
		}
	}
	return cfg.S3Bucket
}

func dirError(dir string, err error) error {
	if errors.Is(err, embedded.ErrDirInUse) {
		return fmt.Errorf("%s is in use (a server is running on it): stop it first", dir)
	}
	return err
}

// isOldDataDir reports whether dir holds an earlier release's database: FerretDB's
// SQLite files under ferretdb/.
func isOldDataDir(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, "ferretdb"))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sqlite") {
			return true
		}
	}
	return false
}
