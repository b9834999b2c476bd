package store

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed" // the empty database new ones copy
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	// The SQLite driver, registered as "sqlite3"; its connections are
	// also used directly for the backup API (see copyDatabase).
	sqlite3 "github.com/mattn/go-sqlite3"
)

// sqlite is the embedded engine: one process, one file. Its pragmas are in
// the DSN so that every pooled connection has them: WAL, a busy timeout,
// immediate transactions, foreign keys; and each connection keeps its 64
// most recent prepared statements, for preparing a query costs as much as
// running it (half of the 70 µs of an image page's history query), as
// pgx's statement cache spares PostgreSQL.
type sqlite struct {
	write, read *sql.DB
	// memory: the database is in this process's memory (OpenMemory);
	// placed: this process created the file from sqliteTemplate.
	memory, placed bool
}

func openSQLite(ctx context.Context, s *Store, path string, memory bool) error {
	placed := false
	if !memory {
		var err error
		if placed, err = placeTemplate(path); err != nil {
			return err
		}
	}
	dsn := func(mode string) string {
		q := url.Values{}
		if memory {
			// SQLite's memdb VFS: one database shared by every connection
			// of this process under its name, gone when the last closes.
			q.Set("vfs", "memdb")
		} else {
			q.Set("_journal_mode", "WAL")
		}
		q.Set("_busy_timeout", "10000")
		q.Set("_txlock", "immediate")
		q.Set("_foreign_keys", "on")
		q.Set("_synchronous", "NORMAL")
		q.Set("_stmt_cache_size", "64")
		if mode != "" {
			q.Set("mode", mode)
		}
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite3", dsn("rwc"))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite3", dsn("ro"))
	if err != nil {
		w.Close()
		return fmt.Errorf("store: open %s read-only: %w", path, err)
	}
	// Keep every read connection open: opening one costs a file open, the
	// schema parse and a WAL-index map, and with Go's default of 2 idle a
	// busy server reopened connections dozens of times a second.
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	e := &sqlite{write: w, read: r, memory: memory, placed: placed}
	s.engine, s.write, s.read = e, conn{db: w, rebind: same}, conn{db: r, rebind: same}
	return nil
}

func (*sqlite) name() string { return "sqlite" }

// migrating needs no lock: one process owns the file, and its single writer
// connection serialises the migrations' transactions.
func (*sqlite) migrating(_ context.Context, _ *Store, fn func() error) error { return fn() }

// sqliteTemplate is the empty database every SQLite migration leaves, its
// schema_migrations rows included (applied at 0): the file that
// `go test ./store/ -run TestSchemaSnapshot -update` makes from
// schema/sqlite.sql, the same schema as text for people to read, and that
// the test keeps equal to the migrations replayed one by one.
//
//go:embed schema/sqlite.db
var sqliteTemplate []byte

// memoryTemplate is sqliteTemplate with 1,024-byte pages instead of 4,096:
// the database an in-memory store copies (the backup API gives the copy the
// source's page size). Every byte of the template is copied three times as
// it is filled in (into SQLite's memory, through the destination's page
// cache, into the database's memory), each time into pages the process
// touches for the first time, and a page fault is dear: the 84 KB of this
// one cost a one-off inspect some 250 fewer faults than the 280 KB of
// sqliteTemplate, 10% of its time. A file keeps 4 KB pages, the size
// SQLite and the file system are made for; a one-off command's few rows
// gain nothing from them (a tags listing of 1,000 tags took no longer). The
// same test makes and checks it.
//
//go:embed schema/sqlite-memory.db
var memoryTemplate []byte

// createFresh makes a new SQLite database a copy of sqliteTemplate (of
// memoryTemplate, in memory). New
// SQLite databases are made often (every one-off command, every test):
// replaying the migrations costs 15 ms (each ALTER TABLE re-checks the
// whole schema), and even executing the final schema's 41 CREATE
// statements 2 ms, where copying its 66 pages takes a tenth of that. A
// new file was put in place before it was opened (placeTemplate); a
// database in memory, which no other process can open, is filled here
// through SQLite's backup API. Anything else is migrated step by step.
func (e *sqlite) createFresh(ctx context.Context, s *Store, ms []migration) (bool, error) {
	switch {
	case e.memory:
		var n int
		if err := s.write.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master`).Scan(&n); err != nil {
			return false, fmt.Errorf("store: create schema: %w", err)
		}
		if n > 0 {
			return false, nil
		}
		if err := restore(ctx, s.write.db, memoryTemplate); err != nil {
			return false, fmt.Errorf("store: create schema: %w", err)
		}
	case !e.placed:
		return false, nil
	}
	var count, last int
	if err := s.write.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&count, &last); err != nil {
		return false, fmt.Errorf("store: create schema: %w", err)
	}
	if count != len(ms) || last != ms[len(ms)-1].version {
		return false, fmt.Errorf("store: create schema: schema/sqlite.db records %d migrations up to %d, the binary has %d up to %d; run go test ./store/ -run TestSchemaSnapshot -update",
			count, last, len(ms), ms[len(ms)-1].version)
	}
	if _, err := s.write.ExecContext(ctx, `UPDATE schema_migrations SET applied_at = ?`, s.now().UnixMilli()); err != nil {
		return false, fmt.Errorf("store: create schema: %w", err)
	}
	return true, nil
}

// placeTemplate creates the database file path as a copy of sqliteTemplate
// in WAL mode, unless something is there already, and says whether it did.
// The copy is written and synced under a name of its own beside path, then
// hard-linked to path, which fails if the name is taken: processes opening
// a new database together create it once, and none opens a part-written
// file. Where the file system cannot link, the database is created by the
// migrations, step by step, as any empty file is.
func placeTemplate(path string) (bool, error) {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	b := bytes.Clone(sqliteTemplate)
	// The file format's write and read versions: 2 is WAL (sqlite.org/fileformat.html).
	b[18], b[19] = 2, 2
	tmp := fmt.Sprintf("%s.%d-%d.new", path, os.Getpid(), newFiles.Add(1))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, fmt.Errorf("store: create %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return false, fmt.Errorf("store: create %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, fmt.Errorf("store: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("store: create %s: %w", path, err)
	}
	return os.Link(tmp, path) == nil, nil
}

// newFiles numbers the copies placeTemplate writes.
var newFiles atomic.Int64

// restore overwrites the database of db's connection with the database
// image b (a SQLite file's bytes) through SQLite's backup API, which takes
// the destination's write lock and leaves its journal mode as it was.
func restore(ctx context.Context, db *sql.DB, b []byte) error {
	d, err := (&sqlite3.SQLiteDriver{}).Open(":memory:")
	if err != nil {
		return err
	}
	defer d.Close()
	src := d.(*sqlite3.SQLiteConn)
	if err := src.Deserialize(b, "main"); err != nil {
		return err
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error { return copyDatabase(ctx, dc.(*sqlite3.SQLiteConn), src) })
}

// backupRetry is how long copyDatabase waits before it tries again a copy
// that a writer of the destination, or a checkpoint of the source, held up.
const backupRetry = 10 * time.Millisecond

// copyDatabase overwrites dst's main database with src's through SQLite's
// online backup API: restore and Backup both go through it. Every page is
// copied in one step, inside one read transaction on src, so the copy is
// one snapshot of src even while other connections write to it. A step
// that finds a database busy is tried again until ctx ends.
func copyDatabase(ctx context.Context, dst, src *sqlite3.SQLiteConn) error {
	bk, err := dst.Backup("main", src, "main")
	if err != nil {
		return err
	}
	for {
		done, err := bk.Step(-1)
		if err != nil {
			bk.Finish()
			return err
		}
		if done {
			return bk.Finish()
		}
		select {
		case <-ctx.Done():
			bk.Finish()
			return ctx.Err()
		case <-time.After(backupRetry):
		}
	}
}

// bump numbers stamps from memory: the single writer connection serialises
// the transactions that take them, and the counter is advanced when a
// stamp is taken, so two transactions never share one.
func (*sqlite) bump(ctx context.Context, s *Store, t *tx, scopes []Scope) (map[Scope]Stamp, error) {
	given := make(map[Scope]Stamp, len(scopes))
	for _, sc := range scopes {
		st := Stamp(s.stamps.next.Add(1))
		given[sc] = st
		if _, err := t.ExecContext(ctx, `INSERT INTO change_stamps (scope, stamp) VALUES (?, ?)
			ON CONFLICT (scope) DO UPDATE SET stamp = excluded.stamp`, string(sc), int64(st)); err != nil {
			return nil, fmt.Errorf("store: stamp %s: %w", sc, err)
		}
	}
	return given, nil
}

// lockClaims needs nothing: SQLite's write transactions are serial.
func (*sqlite) lockClaims(context.Context, *tx) error { return nil }
func (*sqlite) forUpdate(bool) string                 { return "" }

// renumber needs nothing: SQLite's AUTOINCREMENT follows the largest id
// inserted.
func (*sqlite) renumber(context.Context, *tx, string, string) error { return nil }

// afterCopy reads the copied stamps, so the next one taken is past them.
func (*sqlite) afterCopy(ctx context.Context, s *Store) error { return s.loadStamps(ctx) }

// outboxGrew does nothing: SQLite plans the claim by the indexes' shape
// (it keeps no statistics unless ANALYZE is run, which the store never
// does), and reads deliveries_due in order already.
func (*sqlite) outboxGrew(context.Context, *Store) {}

func (*sqlite) start(*Store) error { return nil }
func (*sqlite) stop()              {}

func (e *sqlite) close() error {
	rerr := e.read.Close()
	werr := e.write.Close()
	if rerr != nil {
		return rerr
	}
	return werr
}
