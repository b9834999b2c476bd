package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// copyDBCommand is copy-db: every row of one database into another, empty
// one, so a deployment moves between SQLite and PostgreSQL (either way)
// without losing subscriptions, history or pending deliveries.
func copyDBCommand() command {
	var from, to string
	return command{
		name:    "copy-db",
		args:    "--from SRC --to DST",
		summary: "copy every row of one database into another, empty one (a SQLite file into PostgreSQL, or back)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&from, "from", "", "the database copied: a SQLite file path or a postgres:// URL")
			fs.StringVar(&to, "to", "", "the empty database it is copied into: a SQLite file path or a postgres:// URL")
		},
		run: func(ctx context.Context, inv invocation) error { return copyDB(ctx, from, to, inv.stdout) },
	}
}

// copyDB opens both databases (which brings each schema up to date, making
// the target's) and copies from into to, table by table, telling w each
// table's count. A SQLite source must exist: opening a missing file would
// create an empty database and "copy" nothing.
func copyDB(ctx context.Context, from, to string, w io.Writer) error {
	if from == "" || to == "" {
		return usageError{"usage: imagebadger copy-db --from SRC --to DST (both are needed)"}
	}
	if from == to {
		return usageError{"copy-db: --from and --to name the same database"}
	}
	if !store.IsPostgres(from) && !store.IsKeywordDSN(from) {
		if _, err := os.Stat(from); err != nil {
			return fmt.Errorf("copy-db: the source %s: %w", from, err)
		}
	}
	src, err := store.Open(ctx, from)
	if err != nil {
		return fmt.Errorf("copy-db: open the source: %w", err)
	}
	defer src.Close()
	dst, err := store.Open(ctx, to)
	if err != nil {
		return fmt.Errorf("copy-db: open the target: %w", err)
	}
	total := 0
	err = store.Copy(ctx, src, dst, func(table string, rows int) {
		total += rows
		fmt.Fprintf(w, "%-20s %13s\n", table, analysis.Count(rows, "row"))
	})
	err = errors.Join(err, dst.Close())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "copied %s from %s (%s) to %s (%s)\n", analysis.Count(total, "row"), store.Redacted(from), src.Engine(), store.Redacted(to), engineOf(to))
	return nil
}

// engineOf names the engine a --db value selects.
func engineOf(dsn string) string {
	if store.IsPostgres(dsn) {
		return "postgres"
	}
	return "sqlite"
}
