package store

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	sqlite3 "github.com/mattn/go-sqlite3"
)

var updateSchema = flag.Bool("update", false, "rewrite schema/sqlite.sql and schema/sqlite.db from the SQLite migrations")

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

// TestSchemaSnapshot holds schema/sqlite.db, the empty database new SQLite
// databases copy, and schema/sqlite.sql, the same schema as text, to what
// the migrations leave when replayed one by one (as every existing
// database is upgraded): the same tables, columns, constraints and
// indexes, statement for statement, and every migration recorded. After
// adding a migration, run it with -update.
func TestSchemaSnapshot(t *testing.T) {
	ctx := context.Background()
	ms, err := migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	chain := memdb(t, "/schema-chain")
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
		b.WriteString("-- The schema the SQLite migrations leave, as text: schema/sqlite.db, the empty\n")
		b.WriteString("-- database new ones copy (see createFresh), is made from it. Both are made by\n")
		b.WriteString("-- `go test ./store/ -run TestSchemaSnapshot -update` from migrations\n")
		b.WriteString("-- " + ms[0].base + " to " + ms[len(ms)-1].base + "; do not edit.\n")
		for _, r := range want {
			b.WriteString("\n" + r.SQL + ";\n")
		}
		if err := os.WriteFile("schema/sqlite.sql", []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("schema/sqlite.db", template(t, b.String(), ms, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("schema/sqlite-memory.db", template(t, b.String(), ms, 1024), 0o644); err != nil {
			t.Fatal(err)
		}
		// The package under test embeds the files as they were when it
		// was built.
		t.Skip("rewrote schema/sqlite.sql and schema/sqlite.db; run again without -update to check them")
	}

	text, err := os.ReadFile("schema/sqlite.sql")
	if err != nil {
		t.Fatal(err)
	}
	fromText := memdb(t, "/schema-text")
	if _, err := fromText.ExecContext(ctx, string(text)); err != nil {
		t.Fatalf("schema/sqlite.sql: %v", err)
	}
	if diff := cmp.Diff(want, schemaOf(t, fromText)); diff != "" {
		t.Errorf("schema/sqlite.sql differs from the migrations (-migrations +text); run with -update:\n%s", diff)
	}

	var versions []int
	for _, m := range ms {
		versions = append(versions, m.version)
	}
	mem, err := OpenMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	file, err := Open(ctx, filepath.Join(t.TempDir(), "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	// An empty file is migrated step by step, as any database is that
	// this process did not create.
	emptyPath := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(emptyPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty, err := Open(ctx, emptyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	for name, s := range map[string]*Store{"in memory": mem, "in a file": file, "in an empty file": empty} {
		if diff := cmp.Diff(want, schemaOf(t, s.write.db)); diff != "" {
			t.Errorf("a new database %s: schema differs from the migrations' (-migrations +new); run with -update:\n%s", name, diff)
		}
		var applied []int
		rows, err := s.write.db.Query(`SELECT version FROM schema_migrations WHERE applied_at > 0 ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			applied = append(applied, v)
		}
		rows.Close()
		if !cmp.Equal(applied, versions) {
			t.Errorf("a new database %s records migrations %v as applied, want %v", name, applied, versions)
		}
	}
	for name, want := range map[*Store]int{mem: 1024, file: 4096} {
		var size int
		if err := name.write.db.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil || size != want {
			t.Errorf("a new database's page size = %d, %v; want %d", size, err, want)
		}
	}
	for name, s := range map[string]*Store{"new": file, "empty": empty} {
		var mode string
		if err := s.write.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("the %s database file's journal mode = %q, %v; want wal", name, mode, err)
		}
	}
	if e := file.engine.(*sqlite); !e.placed {
		t.Error("a new database file was not created from the template")
	}
}

// memdb opens a SQLite database in memory, on one connection.
func memdb(t *testing.T, name string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+name+"?vfs=memdb&_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}

// template is the database image of schema with migrations ms recorded as
// applied at 0 (new, so without free pages to vacuum), in pages of
// pageSize bytes.
func template(t *testing.T, schema string, ms []migration, pageSize int) []byte {
	t.Helper()
	ctx := context.Background()
	db := memdb(t, fmt.Sprintf("/schema-template-%d", pageSize))
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, schemaMigrations); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`, m.version, m.base); err != nil {
			t.Fatal(err)
		}
	}
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b []byte
	if err := c.Raw(func(dc any) error {
		b, err = dc.(*sqlite3.SQLiteConn).Serialize("main")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDedupKeysBecomePrintable: a SQLite database upgraded from before
// migration 0042 keeps its base.updated events, their de-duplication keys
// with spaces where NUL bytes joined their parts, so it can be copied into
// PostgreSQL, which refuses NUL in text.
func TestDedupKeysBecomePrintable(t *testing.T) {
	ctx := context.Background()
	ms, err := migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	db := memdb(t, "/dedup-keys")
	apply := func(m migration) {
		body, err := migrationFiles.ReadFile(m.file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", m.base, err)
		}
	}
	for _, m := range ms {
		if m.version < 42 {
			apply(m)
		}
	}
	old := "base.updated\x00tag:1\x00r/app@sha256:aa\x00r/base@sha256:bb"
	if _, err := db.ExecContext(ctx, `INSERT INTO events (id, type, registry, repository, tag, payload, created_at, dedup_key)
		VALUES ('msg_1', 'base.updated', 'r', 'app', '1', x'7b7d', 0, ?), ('msg_2', 'image.updated', 'r', 'app', '1', x'7b7d', 0, NULL)`, old); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version >= 42 {
			apply(m)
		}
	}
	var key string
	var nulls int
	if err := db.QueryRowContext(ctx, `SELECT dedup_key FROM events WHERE id = 'msg_1'`).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE dedup_key IS NULL`).Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if want := "base.updated tag:1 r/app@sha256:aa r/base@sha256:bb"; key != want || nulls != 1 {
		t.Errorf("after the upgrade: key %q and %d events without a key, want %q and 1", key, nulls, want)
	}
}
