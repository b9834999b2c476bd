package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
)

// copyTables are the tables Copy moves, parents before the rows that refer
// to them. TestCopyCoversEverySchemaTable keeps the list complete: a table
// a migration adds and this list lacks fails it.
func copyTables() []copyTable {
	return []copyTable{
		{name: "manifests"},
		{name: "configs"},
		{name: "tags"},
		{name: "images"},
		{name: "tag_changes", identity: "id"},
		{name: "deleted_tags"},
		{name: "events"},
		{name: "subscriptions"},
		{name: "subscription_events"},
		{name: "deliveries", identity: "id"},
		{name: "delivery_attempts", identity: "id"},
		{name: "hook_tokens"},
		{name: "platform_images"},
		{name: "parents"},
		{name: "repositories"},
		{name: "change_stamps"},
		{name: "repository_info"},
		{name: "tracked"},
		{name: "known_repositories", identity: "id"},
		{name: "repository_grams"},
		{name: "gram_counts"},
		{name: "fanout_cursors"},
		{name: "layer_contents"},
		{name: "layer_content_dirs"},
		{name: "image_contents"},
		{name: "supply_chains"},
		{name: "sessions"},
		{name: "api_tokens"},
		{name: "badge_tokens"},
	}
}

// CopiedTables names the tables Copy moves, in the order it moves them.
func CopiedTables() []string {
	var out []string
	for _, t := range copyTables() {
		out = append(out, t.name)
	}
	return out
}

type copyTable struct {
	name string
	// identity is the column numbered by the database, copied as it is
	// (a pending delivery keeps its id) and the numbering moved past it.
	identity string
}

// copyBatch is how many rows one INSERT carries.
const copyBatch = 200

// Copy copies every row of every table of from into to, which must be
// empty (its schema is made by opening it), table by table, each table in
// one transaction, in batches; ids are kept, so a pending delivery is the
// same delivery on the new database. Every table of from is read in one
// read transaction (see readSnapshot), so a source that a running service
// writes to meanwhile still gives a consistent copy: rows written
// together are copied together or not at all. progress, when set, is told
// each table's count. It is how a deployment moves between SQLite and
// PostgreSQL.
func Copy(ctx context.Context, from, to *Store, progress func(table string, rows int)) (err error) {
	for _, t := range copyTables() {
		var n int
		if err := to.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.name).Scan(&n); err != nil {
			return fmt.Errorf("store: copy: count %s of the target: %w", t.name, err)
		}
		if n > 0 {
			return fmt.Errorf("store: copy: the target is not empty (%s has %d rows); copy into a new database", t.name, n)
		}
	}
	src, release, err := readSnapshot(ctx, from)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, release()) }()
	for _, t := range copyTables() {
		n, err := copyRows(ctx, src, to, t)
		if err != nil {
			return err
		}
		if progress != nil {
			progress(t.name, n)
		}
	}
	return to.engine.afterCopy(ctx, to)
}

// snapshotReader is where Copy reads the source: one read transaction.
type snapshotReader interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readSnapshot begins the read transaction every table of s is read in,
// and returns it with the function that ends it. PostgreSQL: REPEATABLE
// READ, whose snapshot, taken at the first read, holds for every later
// one. SQLite: a deferred transaction on one connection of the read pool
// (which a BEGIN IMMEDIATE, the pool's default, cannot take on a
// read-only connection); its first read takes a snapshot of the WAL that
// every later read of the transaction sees, while writers go on.
func readSnapshot(ctx context.Context, s *Store) (snapshotReader, func() error, error) {
	if _, ok := s.engine.(*postgres); ok {
		t, err := s.read.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return nil, nil, fmt.Errorf("store: copy: begin reading the source: %w", err)
		}
		return t, t.Rollback, nil
	}
	c, err := s.read.db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("store: copy: begin reading the source: %w", err)
	}
	if _, err := c.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("store: copy: begin reading the source: %w", err)
	}
	release := func() error {
		if _, err := c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); err != nil {
			// A connection whose transaction could not be ended must not go
			// back to the pool.
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
			c.Close()
			return fmt.Errorf("store: copy: end reading the source: %w", err)
		}
		return c.Close()
	}
	return c, release, nil
}

func copyRows(ctx context.Context, from snapshotReader, to *Store, t copyTable) (int, error) {
	rows, err := from.QueryContext(ctx, `SELECT * FROM `+t.name)
	if err != nil {
		return 0, fmt.Errorf("store: copy %s: %w", t.name, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, fmt.Errorf("store: copy %s: %w", t.name, err)
	}
	tx, err := to.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: copy %s: %w", t.name, err)
	}
	defer tx.Rollback()
	one := "(" + placeholders(len(cols)) + ")"
	insert := func(batch []any, n int) error {
		if n == 0 {
			return nil
		}
		q := `INSERT INTO ` + t.name + ` (` + strings.Join(cols, ", ") + `) VALUES ` + strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
		if _, err := tx.ExecContext(ctx, q, batch...); err != nil {
			return fmt.Errorf("store: copy %s: %w", t.name, err)
		}
		return nil
	}
	var batch []any
	total, inBatch := 0, 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("store: copy %s: %w", t.name, err)
		}
		batch = append(batch, vals...)
		total++
		if inBatch++; inBatch == copyBatch {
			if err := insert(batch, inBatch); err != nil {
				return 0, err
			}
			batch, inBatch = batch[:0], 0
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: copy %s: %w", t.name, err)
	}
	if err := insert(batch, inBatch); err != nil {
		return 0, err
	}
	if t.identity != "" {
		if err := to.engine.renumber(ctx, tx, t.name, t.identity); err != nil {
			return 0, fmt.Errorf("store: copy %s: %w", t.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: copy %s: %w", t.name, err)
	}
	return total, nil
}
