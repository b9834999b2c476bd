package testenv

import (
	"context"
	"path/filepath"
	"sync"
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

// shared is the one PostgreSQL cluster of a test process for tests that only
// need a database of their own (not a cluster they may stop): started by
// the first such test, stopped by Main.
var shared struct {
	once    sync.Once
	cluster *pgtest.Cluster
	err     error
}

// SharedPostgresDatabase is a new, empty database on the test process's
// shared cluster, which is started at the first call and stopped when the
// package's tests end (see Main). A test that stops or pauses its
// database's server uses PostgresDatabase instead.
func SharedPostgresDatabase(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.cluster, shared.err = pgtest.Start(ctx, pgtest.Options{})
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := shared.cluster.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL log:\n%s", shared.cluster.Log())
		}
	})
	return dsn
}

// stopShared stops the shared cluster, if a test started it.
func stopShared() {
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
}

// EachEngine runs f as two subtests, "sqlite" and "postgres", each with a
// database of its own for ServeOptions.DBPath: a new SQLite file, and a new
// database on the shared PostgreSQL cluster. Every end-to-end test of what
// is stored or sent runs through it, so both engines keep every promise.
func EachEngine(t *testing.T, f func(t *testing.T, db string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "imagebadger.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, SharedPostgresDatabase(t)) })
}
