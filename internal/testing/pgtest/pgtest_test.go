package pgtest_test

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/imagebadger/imagebadger/internal/testing/pgtest"
)

// TestClusterServesAndComesBack: a cluster takes connections on its
// socket, refuses them while paused, and serves the same data once resumed.
func TestClusterServesAndComesBack(t *testing.T) {
	ctx := context.Background()
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	dsn, err := c.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (41)`); err != nil {
		t.Fatalf("%v\n%s", err, c.Log())
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(ctx); err == nil {
		t.Error("the paused cluster answered")
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v + 1 FROM t`).Scan(&v); err != nil || v != 42 {
		t.Errorf("after resume: %d %v", v, err)
	}
}
