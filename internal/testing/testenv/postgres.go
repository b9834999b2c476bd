package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/pgtest"
)

// Postgres starts a throwaway PostgreSQL cluster of Debian's postgresql
// package in a temporary directory (see pgtest), stopped when the test
// ends, and returns it; NewDatabase gives a postgres:// URL to pass as
// ServeOptions.DBPath. Each test gets a cluster of its own, so one that
// stops its database (Pause) disturbs no other.
func Postgres(t testing.TB) *pgtest.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL log:\n%s", c.Log())
		}
		c.Stop()
	})
	return c
}

// PostgresDatabase is a new, empty database on a cluster of its own.
func PostgresDatabase(t testing.TB) (string, *pgtest.Cluster) {
	t.Helper()
	c := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := c.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return dsn, c
}
