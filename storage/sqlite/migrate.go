package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// A migration takes the schema from version-1 to version. Migrations only go
// forward: a released one is never edited, a change is a new file.
type migration struct {
	version int
	name    string // the file name, kept in schema_migrations to catch a renumbering
	sql     string
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the embedded migrations/NNNN_name.sql files, in version order.
var migrations = mustLoadMigrations(migrationFiles)

func mustLoadMigrations(fsys fs.FS) []migration {
	migs, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return migs
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", base)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3… without gaps", m.name)
		}
	}
	return out, nil
}

// afterMigration fills, in a migration's transaction, what SQL cannot compute from the
// rows already stored, by the migration's file name.
var afterMigration = map[string]func(context.Context, *sql.Tx) error{
	"0014_case_orgs.sql": fillCaseOrgs, // routing.OrgSearchKeys normalises names in Go
}

// ErrNewerSchema is a database written by a newer release: this code would misread it.
type ErrNewerSchema struct {
	Have, Know int
}

func (e *ErrNewerSchema) Error() string {
	return fmt.Sprintf("the database has schema version %d, this release knows up to %d: run the newer release (or restore a backup)", e.Have, e.Know)
}

// migrate applies, in one transaction, the migrations the database lacks. Another
// process migrating at the same time waits on the write lock and then finds nothing to
// do.
func (db *DB) migrate(ctx context.Context, migs []migration) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		rows, err := tx.QueryContext(ctx, "SELECT version, name FROM schema_migrations ORDER BY version")
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		applied := map[int]string{}
		top := 0
		for rows.Next() {
			var v int
			var name string
			if err := rows.Scan(&v, &name); err != nil {
				rows.Close()
				return fmt.Errorf("migrate: %w", err)
			}
			applied[v] = name
			top = max(top, v)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if top > len(migs) {
			return &ErrNewerSchema{Have: top, Know: len(migs)}
		}
		for _, m := range migs {
			if name, ok := applied[m.version]; ok {
				if name != m.name {
					return fmt.Errorf("migrate: version %d was applied as %s, this release has %s", m.version, name, m.name)
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate: apply %s: %w", m.name, err)
			}
			if fill := afterMigration[m.name]; fill != nil {
				if err := fill(ctx, tx); err != nil {
					return fmt.Errorf("migrate: apply %s: %w", m.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, db.now().UnixMilli()); err != nil {
				return fmt.Errorf("migrate: record %s: %w", m.name, err)
			}
			db.log.Info("sqlite schema migrated", "version", m.version, "migration", m.name)
		}
		return nil
	})
}

// SchemaVersion is the highest migration applied to the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.r.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
