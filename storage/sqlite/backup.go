package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	sqlitedrv "modernc.org/sqlite"
)

// backuper is the online backup API of modernc.org/sqlite's connection.
type backuper interface {
	NewBackup(dstURI string) (*sqlitedrv.Backup, error)
}

// Backup writes a consistent copy of the database to a new file at dest while the
// server keeps running (SQLite's online backup API), the part of `qingfeng backup`
// (issue 12, item 4) that concerns the database; the archive with the evidence objects
// is still to be built on it. The copy is taken in one step from one read snapshot: in
// WAL mode that never blocks the writer, and it cannot be restarted forever by
// concurrent writes as an incremental backup can. dest must not exist; it is created
// readable by the owner only, since it holds everything the database does.
func (db *DB) Backup(ctx context.Context, dest string) error {
	return backupFrom(ctx, db.r, dest)
}

// BackupFile is Backup of the database file at path, opened for this one copy:
// read-only, applying no migration and starting no checkpoint. It is how `qingfeng
// backup` copies the file of a running server, which may be another release than the
// command: opening the file with Open would migrate the server's schema under it.
func BackupFile(ctx context.Context, path, dest string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(abs, true, options{busy: busyTimeout, synchronous: "FULL"}))
	if err != nil {
		return fmt.Errorf("backup %s: %w", path, err)
	}
	defer r.Close()
	r.SetMaxOpenConns(1)
	return backupFrom(ctx, r, dest)
}

func backupFrom(ctx context.Context, r *sql.DB, dest string) (err error) {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	// Create it first, exclusively: never overwrite a file, and set its mode before
	// any data is in it.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(abs)
			_ = os.Remove(abs + "-wal")
			_ = os.Remove(abs + "-shm")
		}
	}()
	conn, err := r.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return errors.New("the driver has no online backup")
		}
		bk, err := b.NewBackup((&url.URL{Scheme: "file", Path: abs}).String())
		if err != nil {
			return err
		}
		_, stepErr := bk.Step(-1)
		return errors.Join(stepErr, bk.Finish())
	})
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	return ctx.Err()
}
