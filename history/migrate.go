package history

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
)

// migration is one numbered SQL file.
type migration struct {
	version   int64
	name, sql string
}

var migrationName = regexp.MustCompile(`^(\d+)_[a-z0-9_]+\.sql$`)

// loadMigrations reads every .sql file at the root of fsys, in version order. A .sql file not
// named NNNN_description.sql, or two files with the same number, is an error rather than
// something to skip: a migration that silently never runs would be worse.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		m := migrationName.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", name)
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad number", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return int(a.version - b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies, in order, the migrations in fsys that db has not had, each in one transaction
// with its row in schema_migrations. db begins transactions IMMEDIATE: two processes opening a
// new file at once take turns, and the second finds the first one's work recorded.
func migrate(ctx context.Context, db *sqlx.DB, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// A database with tables but no migration log was made by something else: adding ours to
	// it would mix two programs' data in one file.
	var logs, tables int
	if err := db.QueryRowxContext(ctx, `SELECT
		count(*) FILTER (WHERE name = 'schema_migrations'),
		count(*) FILTER (WHERE name NOT LIKE 'sqlite_%')
		FROM sqlite_schema`).Scan(&logs, &tables); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if logs == 0 && tables > 0 {
		return errors.New("migrate: the database has tables but no schema_migrations: not made by this program (left unchanged)")
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL -- unix milliseconds
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var applied []int64
	if err := db.SelectContext(ctx, &applied, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var known int64
	if len(ms) > 0 {
		known = ms[len(ms)-1].version
	}
	if len(applied) > 0 && applied[len(applied)-1] > known {
		// An older program on a newer schema could misread or damage it.
		return fmt.Errorf("migrate: database is at version %d, newer than this program knows (%d)", applied[len(applied)-1], known)
	}
	for _, m := range ms {
		if _, found := slices.BinarySearch(applied, m.version); found {
			continue
		}
		if err := apply(ctx, db, m); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, db *sqlx.DB, m migration) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Checked inside the transaction: another process may have applied it since we looked.
	var done bool
	if err := tx.GetContext(ctx, &done, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.version); err != nil || done {
		return err
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
