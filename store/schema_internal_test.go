package store

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var updateSchema = flag.Bool("update", false, "rewrite schema/sqlite.sql from the SQLite migrations")

// schemaRow is one object of a SQLite schema as sqlite_master lists it.
type schemaRow struct{ Type, Name, Table, SQL string }

func schemaOf(t *testing.T, db *sql.DB) []schemaRow {
	t.Helper()
	rows, err := db.Query(`SELECT type, name, tbl_name, sql FROM sqlite_master
		WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []schemaRow
	for rows.Next() {
		var r schemaRow
		if err := rows.Scan(&r.Type, &r.Name, &r.Table, &r.SQL); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaSnapshot holds schema/sqlite.sql, which new SQLite databases are
// created from, to what the migrations leave when replayed one by one (as
// every existing database is upgraded): the same tables, columns,
// constraints and indexes, statement for statement. After adding a
// migration, run it with -update.
func TestSchemaSnapshot(t *testing.T) {
	ctx := context.Background()
	chain, err := sql.Open("sqlite3", "file:/schema-chain?vfs=memdb&_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	chain.SetMaxOpenConns(1)
	ms, err := migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		body, err := migrationFiles.ReadFile(m.file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chain.ExecContext(ctx, "BEGIN; "+string(body)+"; COMMIT;"); err != nil {
			t.Fatalf("migration %s: %v", m.base, err)
		}
	}
	want := schemaOf(t, chain)
	if *updateSchema {
		var b strings.Builder
		b.WriteString("-- The schema the SQLite migrations leave, for creating a new database in\n")
		b.WriteString("-- one step (see createFresh). Made by `go test ./store/ -run TestSchemaSnapshot\n")
		b.WriteString("-- -update` from migrations " + ms[0].base + " to " + ms[len(ms)-1].base + "; do not edit.\n")
		for _, r := range want {
			b.WriteString("\n" + r.SQL + ";\n")
		}
		if err := os.WriteFile("schema/sqlite.sql", []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	s, err := OpenMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diff := cmp.Diff(want, schemaOf(t, s.write.db)); diff != "" {
		t.Errorf("a new database's schema differs from the migrations' (-migrations +snapshot); run with -update:\n%s", diff)
	}
	var applied []int
	rows, err := s.write.db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		applied = append(applied, v)
	}
	var versions []int
	for _, m := range ms {
		versions = append(versions, m.version)
	}
	if !cmp.Equal(applied, versions) {
		t.Errorf("a new database records migrations %v, want %v", applied, versions)
	}
}
