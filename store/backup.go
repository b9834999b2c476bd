package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// ErrBackupUnsupported is the answer of a backup asked of a PostgreSQL
// database: its own tools (pg_dump, or a base backup) do that better than
// this service could, and know the server's version and extensions.
var ErrBackupUnsupported = errors.New("the database is PostgreSQL: take its backup with pg_dump")

// Backup writes a consistent snapshot of the store's SQLite database to
// the new file to (see BackupFile). It is the store's own side of a backup,
// for a process that has the store open already.
func (s *Store) Backup(ctx context.Context, to string) error {
	e, ok := s.engine.(*sqlite)
	if !ok {
		return fmt.Errorf("store: backup: %w", ErrBackupUnsupported)
	}
	return backupTo(ctx, e.read, to)
}

// BackupFile writes a consistent snapshot of the SQLite database at path
// to the new file to, while other processes (a running serve) go on
// writing to it: SQLite's online backup API copies every page inside one
// read transaction, which in WAL mode holds up no writer. The database is
// opened read-only and not as a Store, so nothing is migrated: a backup
// taken by a newer binary leaves the schema of the running one as it is.
// The copy is written beside to and put in place only when whole, and to
// must not exist; `serve --db to` then serves it.
func BackupFile(ctx context.Context, path, to string) error {
	if IsPostgres(path) {
		return fmt.Errorf("store: backup: %w", ErrBackupUnsupported)
	}
	// Opening a missing file would create an empty database and back
	// that up.
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("store: backup: the database %s: %w", path, err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("store: backup: open %s: %w", path, err)
	}
	defer db.Close()
	return backupTo(ctx, db, to)
}

// backupTo copies the database of a connection of src into a new file
// beside to, syncs it, and links it to to, which fails rather than
// replaces a file that appeared meanwhile.
func backupTo(ctx context.Context, src *sql.DB, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("store: backup: %s exists: %w; a backup never replaces a file, name a new one", to, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: backup: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".*.new")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	if err := backupInto(ctx, src, tmp); err != nil {
		return fmt.Errorf("store: backup to %s: %w", to, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("store: backup to %s: %w", to, err)
	}
	if err := os.Link(tmp, to); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("store: backup: %s appeared meanwhile: %w; a backup never replaces a file", to, err)
		}
		// A file system without hard links: a rename, after one more look.
		if _, serr := os.Lstat(to); !errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("store: backup: %s appeared meanwhile: %w; a backup never replaces a file", to, fs.ErrExist)
		}
		if err := os.Rename(tmp, to); err != nil {
			return fmt.Errorf("store: backup to %s: %w", to, err)
		}
	}
	if err := syncFile(filepath.Dir(to)); err != nil {
		return fmt.Errorf("store: backup to %s: %w", to, err)
	}
	return nil
}

// backupInto copies the database of one connection of src into the
// (empty) SQLite file tmp.
func backupInto(ctx context.Context, src *sql.DB, tmp string) error {
	d, err := (&sqlite3.SQLiteDriver{}).Open(tmp)
	if err != nil {
		return err
	}
	dst := d.(*sqlite3.SQLiteConn)
	c, err := src.Conn(ctx)
	if err != nil {
		dst.Close()
		return err
	}
	err = c.Raw(func(sc any) error { return copyDatabase(ctx, dst, sc.(*sqlite3.SQLiteConn)) })
	return errors.Join(err, c.Close(), dst.Close())
}

// syncFile flushes a file, or a directory's entries, to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}
