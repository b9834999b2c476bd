// Package store persists what imagebadger learns from registries and what
// its users ask of it: manifests and configs by digest, tags and the images
// they point at, the history of their moves, subscriptions and their
// deliveries (the outbox), and the change stamps every in-memory cache is
// kept true by. All SQL of the service lives here.
//
// Two engines stand behind the one Store: SQLite (mattn/go-sqlite3), the
// embedded default, and PostgreSQL (pgx), for several processes sharing one
// database. The queries are shared (db.go rewrites placeholders); each
// engine has its own numbered migrations (migrations/sqlite,
// migrations/postgres) and its own file for the little that differs
// (sqlite.go, postgres.go).
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Store is the database of the service. Writes and reads may use pools of
// their own (SQLite: one writer connection, as it allows one writer at a
// time, and a read pool that never queues behind it).
type Store struct {
	write  conn
	read   conn
	engine engine
	now    func() time.Time
	tags   *tagCache
	stamps stamps
}

// engine is what differs between SQLite and PostgreSQL.
type engine interface {
	// name is "sqlite" or "postgres", which is also the folder of its
	// migrations.
	name() string
	// migrating runs fn while no other process migrates the same database.
	migrating(ctx context.Context, s *Store, fn func() error) error
	// createFresh makes a new, empty database hold what migrations ms
	// leave in one step, recording ms as applied; created is false when
	// the database had anything, or the engine keeps no snapshot, and the
	// migrations are then applied one by one.
	createFresh(ctx context.Context, s *Store, ms []migration) (created bool, err error)
	// bump gives each scope the next stamp of the sequence inside tx.
	bump(ctx context.Context, s *Store, tx *tx, scopes []Scope) (map[Scope]Stamp, error)
	// lockClaims serialises claims of deliveries inside tx across every
	// process sharing the database, so that counts of attempts in flight
	// are exact.
	lockClaims(ctx context.Context, tx *tx) error
	// forUpdate is the locking clause that makes a select inside a
	// transaction lock the rows it reads (skipping, with skipLocked, those
	// another transaction holds); SQLite's transactions lock the database.
	forUpdate(skipLocked bool) string
	// renumber moves the numbering of table's identity column past the
	// ids a copy inserted; afterCopy brings the change stamp sequence past
	// the stamps it copied.
	renumber(ctx context.Context, tx *tx, table, column string) error
	afterCopy(ctx context.Context, s *Store) error
	// outboxGrew is told after a commit that queued at least
	// outboxGrowth deliveries at once (a large fan-out).
	outboxGrew(ctx context.Context, s *Store)
	// start begins what the engine runs alongside the store (PostgreSQL's
	// listener for other processes' change stamps); stop ends it.
	start(s *Store) error
	stop()
	close() error
}

// Open opens the database named by dsn, creating it if needed, and applies
// the migrations it has not seen: a postgres:// or postgresql:// URL (libpq
// syntax) selects PostgreSQL, anything else is a SQLite file path, except
// a libpq keyword string (see ErrKeywordDSN).
func Open(ctx context.Context, dsn string) (*Store, error) {
	if IsKeywordDSN(dsn) {
		return nil, ErrKeywordDSN
	}
	s := newStore()
	var err error
	if IsPostgres(dsn) {
		err = openPostgres(ctx, s, dsn)
	} else {
		err = openSQLite(ctx, s, dsn, false)
	}
	if err != nil {
		return nil, err
	}
	return s.prepare(ctx)
}

// memoryDatabases numbers the databases of OpenMemory.
var memoryDatabases atomic.Int64

// OpenMemory opens a new, empty SQLite database held in this process's
// memory, gone when the store is closed: the throw-away store of one-off
// commands (inspect, tags, diff), which spares them writing a file and
// syncing it to disk for an answer printed once.
func OpenMemory(ctx context.Context) (*Store, error) {
	s := newStore()
	name := fmt.Sprintf("/imagebadger-%d-%d", os.Getpid(), memoryDatabases.Add(1))
	if err := openSQLite(ctx, s, name, true); err != nil {
		return nil, err
	}
	return s.prepare(ctx)
}

func newStore() *Store {
	return &Store{now: time.Now, tags: newTagCache(tagCacheSize), stamps: stamps{by: map[Scope]Stamp{}}}
}

// prepare migrates an opened store and starts what its engine runs.
func (s *Store) prepare(ctx context.Context) (*Store, error) {
	created := false
	for _, step := range []func(context.Context) error{
		func(ctx context.Context) error {
			return s.engine.migrating(ctx, s, func() error {
				var err error
				if created, err = s.migrate(ctx); err != nil || created {
					return err
				}
				// Under the same lock, so that processes starting together
				// index the names migration 0009 left to Go once.
				return s.fillGrams(ctx)
			})
		},
		func(ctx context.Context) error {
			// A database created just now has no receivers to fill in
			// and no stamps to load.
			if created {
				return nil
			}
			if err := s.fillReceivers(ctx); err != nil {
				return err
			}
			return s.loadStamps(ctx)
		},
		func(context.Context) error { return s.engine.start(s) },
	} {
		if err := step(ctx); err != nil {
			s.engine.stop()
			s.engine.close()
			return nil, err
		}
	}
	return s, nil
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// ErrKeywordDSN refuses a database given as a libpq keyword string
// (host=db user=app password=…): taken for a SQLite path it would become a
// file named after it, password and all, and every message naming the
// database would print it. The message repeats no part of the value.
var ErrKeywordDSN = fmt.Errorf("store: the database is given as a PostgreSQL keyword string (host=… dbname=… password=…), which is not read; give it as a URL instead, postgres://USER:PASSWORD@HOST:PORT/DBNAME?sslmode=…: %w", analysis.ErrInvalidRequest)

// keywordDSN matches a libpq keyword, followed by =, at the start of dsn or
// after a space, as in a keyword/value connection string.
var keywordDSN = regexp.MustCompile(`(?i)(^|\s)(host|hostaddr|port|dbname|user|password|passfile|sslmode|sslcert|sslkey|sslrootcert|sslpassword|connect_timeout|application_name|options|service|target_session_attrs|channel_binding|require_auth)\s*=`)

// IsKeywordDSN reports whether dsn looks like a libpq keyword/value
// connection string rather than a SQLite path: a known keyword, then =, at
// its start or after a space.
func IsKeywordDSN(dsn string) bool {
	return !IsPostgres(dsn) && strings.Contains(dsn, "=") && keywordDSN.MatchString(dsn)
}

// Redacted is dsn fit for a log line or a message: a PostgreSQL URL with
// its password (in the user part or as ?password=) replaced by xxxxx, and
// nothing of a keyword string.
func Redacted(dsn string) string {
	if IsKeywordDSN(dsn) {
		return "(a PostgreSQL keyword string, not shown)"
	}
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(a URL that does not parse)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Engine names the store's engine, "sqlite" or "postgres".
func (s *Store) Engine() string { return s.engine.name() }

// Close stops what the store runs and closes its pools.
func (s *Store) Close() error {
	s.engine.stop()
	return s.engine.close()
}

// Ping reports whether the database answers, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// ErrUnavailable marks a database that does not answer (PostgreSQL gone
// away): the server answers 503 for what needs it.
var ErrUnavailable = errors.New("the database does not answer")

// schemaMigrations creates the table of applied migrations, the same on
// both engines.
const schemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`

// migrate applies the engine's embedded migrations in order, each in its
// own transaction together with its row in schema_migrations, or, where
// the engine can, makes a new database in one step and says so with
// created (see createFresh).
func (s *Store) migrate(ctx context.Context) (created bool, err error) {
	ms, err := migrations(s.engine.name())
	if err != nil {
		return false, err
	}
	if created, err := s.engine.createFresh(ctx, s, ms); err != nil || created {
		return created, err
	}
	if _, err := s.write.ExecContext(ctx, schemaMigrations); err != nil {
		return false, fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, m); err != nil {
			return false, err
		}
	}
	return false, nil
}

// migration is one embedded migration file.
type migration struct {
	version    int
	base, file string
}

// migrations lists the engine's embedded migrations in order.
func migrations(engine string) ([]migration, error) {
	names, err := fs.Glob(migrationFiles, path.Join("migrations", engine)+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	out := make([]migration, 0, len(names))
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: migration %s is not named NNNN_name.sql", base)
		}
		out = append(out, migration{version: version, base: base, file: n})
	}
	return out, nil
}

func (s *Store) applyMigration(ctx context.Context, m migration) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migration %s: %w", m.base, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return fmt.Errorf("store: migration %s: %w", m.base, err)
	}
	if n > 0 {
		return nil
	}
	body, err := migrationFiles.ReadFile(m.file)
	if err != nil {
		return fmt.Errorf("store: migration %s: %w", m.base, err)
	}
	// The migration's own SQL goes as it is written: no placeholders.
	if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("store: migration %s: %w", m.base, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.base, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("store: migration %s: %w", m.base, err)
	}
	return tx.Commit()
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
