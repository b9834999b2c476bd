package store_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // for tests that reach under the store

	"github.com/imagebadger/imagebadger/internal/testing/pgtest"
	"github.com/imagebadger/imagebadger/store"
)

// The store's tests are its conformance suite: one suite, run once per
// engine. `go test ./store/` runs it on SQLite files in t.TempDir();
// `go test ./store/ -args -store.engine=postgres` runs the very same tests
// on a throwaway PostgreSQL cluster (internal/testing/pgtest), a fresh
// database per test. make test runs both.
var engine = flag.String("store.engine", "sqlite", "the engine the store's suite runs on: sqlite or postgres")

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	if *engine == "postgres" {
		c, err := pgtest.Start(context.Background(), pgtest.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cluster = c
	}
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	os.Exit(code)
}

// databases remembers the PostgreSQL database made for each path a test
// used, so that opening the same path again opens the same database.
var databases sync.Map

// dsnOf is where a test's database at path lives on the engine under test:
// the SQLite file itself, or a PostgreSQL database of its own.
func dsnOf(t testing.TB, path string) string {
	t.Helper()
	if cluster == nil {
		return path
	}
	if dsn, ok := databases.Load(path); ok {
		return dsn.(string)
	}
	dsn, err := cluster.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	databases.Store(path, dsn)
	return dsn
}

// rawDB opens the test's database under the store, for tests that set up
// what no store method writes (rows from an older version).
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	dsn := dsnOf(t, path)
	driver := "sqlite3"
	if store.IsPostgres(dsn) {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
