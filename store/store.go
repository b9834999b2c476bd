// Package store persists what imagebadger learns from registries: manifests
// and configs by digest, tags and the images they point at. All SQL of the
// service lives here. The SQL is kept portable (no SQLite-only syntax outside
// the connection set-up) so that a PostgreSQL implementation can follow.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver, registered as "sqlite3"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite-backed store. Writes go through a single connection, as
// SQLite allows one writer at a time; reads use a pool of their own so they
// never queue behind a write.
type Store struct {
	write  *sql.DB
	read   *sql.DB
	now    func() time.Time
	tags   *tagCache
	stamps stamps
}

// Open opens (creating if needed) the database at path and applies any
// migrations it has not seen.
func Open(ctx context.Context, path string) (*Store, error) {
	if strings.HasPrefix(path, "postgres://") || strings.HasPrefix(path, "postgresql://") {
		return nil, errors.New("store: PostgreSQL is not supported yet; use a SQLite file path")
	}
	dsn := func(mode string) string {
		q := url.Values{}
		q.Set("_journal_mode", "WAL")
		q.Set("_busy_timeout", "10000")
		q.Set("_txlock", "immediate")
		q.Set("_foreign_keys", "on")
		q.Set("_synchronous", "NORMAL")
		if mode != "" {
			q.Set("mode", mode)
		}
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite3", dsn("rwc"))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{write: w, now: time.Now, tags: newTagCache(tagCacheSize), stamps: stamps{by: map[Scope]Stamp{}}}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.loadStamps(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.fillReceivers(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.fillGrams(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite3", dsn("ro"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s read-only: %w", path, err)
	}
	// Keep every read connection open: opening one costs a file open, the
	// schema parse and a WAL-index map, and with Go's default of 2 idle a
	// busy server reopened connections dozens of times a second.
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s.read = r
	return s, nil
}

// Close closes both connection pools.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// migrate applies the embedded migrations in order, each in its own
// transaction together with its row in schema_migrations.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("store: migration %s is not named NNNN_name.sql", base)
		}
		if err := s.applyMigration(ctx, version, base, n); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, version int, base, path string) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migration %s: %w", base, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return fmt.Errorf("store: migration %s: %w", base, err)
	}
	if n > 0 {
		return nil
	}
	body, err := migrationFiles.ReadFile(path)
	if err != nil {
		return fmt.Errorf("store: migration %s: %w", base, err)
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("store: migration %s: %w", base, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		version, base, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("store: migration %s: %w", base, err)
	}
	return tx.Commit()
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
