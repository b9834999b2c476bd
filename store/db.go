package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// The SQL of this package is written once, with ? placeholders, and runs on
// both engines: SQLite takes it as it is, PostgreSQL (pgx) wants $1, $2, …,
// which conn rewrites before a statement goes out. What differs beyond that
// is little and lives in one file per engine (sqlite.go, postgres.go),
// behind the dialect interface: the migrations, how a change stamp is
// numbered, how a claim of deliveries is serialised and locked.

// conn is a database/sql pool seen through the engine's placeholders. Its
// methods are database/sql's, so queries read the same on both engines;
// errors of a database that does not answer come marked ErrUnavailable.
type conn struct {
	db     *sql.DB
	rebind func(string) string
	// mark marks an error of a database that does not answer; nil for an
	// engine that has no such errors (SQLite's file is there or not).
	mark func(error) error
}

func (c conn) m(err error) error {
	if c.mark == nil || err == nil {
		return err
	}
	return c.mark(err)
}

func (c conn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	res, err := c.db.ExecContext(ctx, c.rebind(q), args...)
	return res, c.m(err)
}

func (c conn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	rows, err := c.db.QueryContext(ctx, c.rebind(q), args...)
	return rows, c.m(err)
}

func (c conn) QueryRowContext(ctx context.Context, q string, args ...any) *row {
	return &row{r: c.db.QueryRowContext(ctx, c.rebind(q), args...), c: c}
}

// BeginTx starts a transaction whose statements are rebound alike.
func (c conn) BeginTx(ctx context.Context, opts *sql.TxOptions) (*tx, error) {
	t, err := c.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.m(err)
	}
	return &tx{tx: t, c: c}, nil
}

// row is *sql.Row with the error of its Scan marked.
type row struct {
	r *sql.Row
	c conn
}

func (r *row) Scan(dest ...any) error { return r.c.m(r.r.Scan(dest...)) }

// tx is a transaction seen through the engine's placeholders.
type tx struct {
	tx *sql.Tx
	c  conn
}

func (t *tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(ctx, t.c.rebind(q), args...)
	return res, t.c.m(err)
}

func (t *tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	rows, err := t.tx.QueryContext(ctx, t.c.rebind(q), args...)
	return rows, t.c.m(err)
}

func (t *tx) QueryRowContext(ctx context.Context, q string, args ...any) *row {
	return &row{r: t.tx.QueryRowContext(ctx, t.c.rebind(q), args...), c: t.c}
}

func (t *tx) Commit() error   { return t.c.m(t.tx.Commit()) }
func (t *tx) Rollback() error { return t.tx.Rollback() }

// execer is what runs a statement: a pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// same leaves SQLite's statements as they are.
func same(q string) string { return q }

// numbered rewrites ? placeholders as $1, $2, … for PostgreSQL, remembering
// each statement's rewrite (statements are a fixed set, plus the few built
// for a number of arguments). The package's SQL never holds a ? inside a
// string literal.
type numbered struct{ done sync.Map }

func (n *numbered) rebind(q string) string {
	if v, ok := n.done.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	i := 0
	for _, r := range q {
		if r == '?' {
			i++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i))
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	n.done.Store(q, out)
	return out
}
