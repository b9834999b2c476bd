package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// backupCommand is backup: a consistent snapshot of the SQLite database
// that serve keeps writing, taken without stopping it.
func backupCommand() command {
	var db, to string
	return command{
		name:    "backup",
		args:    "--to FILE",
		summary: "a consistent snapshot of the SQLite database while serve runs (SQLite's online backup), restorable by starting serve --db FILE",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&db, "db", defaultConfig().DB, "the SQLite `DB` to back up, as serve's --db (IMAGEBADGER_DB)")
			fs.StringVar(&to, "to", "", "the new `FILE` the snapshot is written to; an existing file is never replaced")
		},
		run: func(ctx context.Context, inv invocation) error { return backup(ctx, db, to, inv.stdout) },
	}
}

// backup writes the snapshot of db to to (see store.BackupFile) and says
// what it wrote.
func backup(ctx context.Context, db, to string, w io.Writer) error {
	if to == "" {
		return usageError{"backup: --to FILE is missing: the new file the snapshot is written to (usage: imagebadger backup [--db DB] --to FILE)"}
	}
	if store.IsPostgres(db) {
		return fmt.Errorf("backup: --db %s is a PostgreSQL database: take its backup with pg_dump (imagebadger backup copies SQLite files)", store.Redacted(db))
	}
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: there is no database at %s: name serve's with --db (or IMAGEBADGER_DB): %w", db, err)
	}
	start := time.Now()
	if err := store.BackupFile(ctx, db, to); err != nil {
		return err
	}
	fi, err := os.Stat(to)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	_, err = fmt.Fprintf(w, "backed up %s to %s (%s) in %s; serve --db %s serves it\n",
		db, to, analysis.HumanSize(fi.Size()), time.Since(start).Round(time.Millisecond), to)
	return err
}
