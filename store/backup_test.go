package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/store"
)

// pairWriter writes a manifest and a config of one digest in one
// transaction, straight into the test's database: a reader of one snapshot
// sees both rows of a pair or neither, whichever table it reads first.
type pairWriter struct {
	db   *sql.DB
	pg   bool
	body []byte
	// next numbers the pairs; committed counts those whose commit returned.
	next, committed atomic.Int64
}

func newPairWriter(t testing.TB, path string, bodySize int) *pairWriter {
	return &pairWriter{db: rawDB(t, path), pg: store.IsPostgres(dsnOf(t, path)), body: []byte(strings.Repeat("x", bodySize))}
}

func (w *pairWriter) write(ctx context.Context) error {
	d := fmt.Sprintf("sha256:pair-%08d", w.next.Add(1))
	m := `INSERT INTO manifests (digest, media_type, body, fetched_at) VALUES (?, 'application/vnd.oci.image.manifest.v1+json', ?, 0)`
	c := `INSERT INTO configs (digest, body, fetched_at) VALUES (?, ?, 0)`
	if w.pg {
		m, c = strings.ReplaceAll(strings.Replace(m, "?", "$1", 1), "?", "$2"), strings.ReplaceAll(strings.Replace(c, "?", "$1", 1), "?", "$2")
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m, d, w.body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, c, d, w.body); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.committed.Add(1)
	return nil
}

// loop writes pairs until stop is closed (or limit pairs are written),
// returning the first error; running is closed once it has written a few,
// or stopped.
func (w *pairWriter) loop(ctx context.Context, stop <-chan struct{}, running chan<- struct{}, limit int) error {
	defer func() {
		if running != nil {
			close(running)
		}
	}()
	for i := range limit {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := w.write(ctx); err != nil {
			return err
		}
		if i == 20 {
			close(running)
			running = nil
		}
	}
	return nil
}

// pairsIn reads the digests of the pairs each table of db holds.
func pairsIn(t *testing.T, db *sql.DB) (manifests, configs []string) {
	t.Helper()
	for _, q := range []struct {
		table string
		into  *[]string
	}{{"manifests", &manifests}, {"configs", &configs}} {
		rows, err := db.Query(`SELECT digest FROM ` + q.table + ` WHERE digest LIKE 'sha256:pair-%' ORDER BY digest`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				t.Fatal(err)
			}
			*q.into = append(*q.into, d)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return manifests, configs
}

// TestBackupUnderWrites: a backup taken while another connection writes
// is one snapshot (every pair written in one transaction is in it whole or
// not at all, and it holds at least what was committed before it began),
// passes SQLite's integrity check, and opens as a store that serves the
// same content. A target that exists is refused and left as it was; a
// missing source is an error that creates nothing; PostgreSQL says to use
// pg_dump.
func TestBackupUnderWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ib.db")
	s := open(t, path)
	if s.Engine() == "postgres" {
		for _, err := range []error{s.Backup(ctx, filepath.Join(dir, "copy.db")), store.BackupFile(ctx, dsnOf(t, path), filepath.Join(dir, "copy.db"))} {
			if !errors.Is(err, store.ErrBackupUnsupported) || !strings.Contains(err.Error(), "pg_dump") {
				t.Errorf("backup of PostgreSQL: %v, want ErrBackupUnsupported naming pg_dump", err)
			}
		}
		return
	}
	if err := s.PutManifest(ctx, "sha256:aa", "application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2}`)); err != nil {
		t.Fatal(err)
	}
	// A few MiB, so that the copy takes long enough for writes to land
	// during it.
	w := newPairWriter(t, path, 4096)
	for range 1000 {
		if err := w.write(ctx); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name   string
		backup func(to string) error
	}{
		{"BackupFile", func(to string) error { return store.BackupFile(ctx, path, to) }},
		{"Store.Backup", func(to string) error { return s.Backup(ctx, to) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "backup.db")
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var werr error
			running := make(chan struct{})
			wg.Go(func() { werr = w.loop(ctx, stop, running, 100_000) })
			<-running // the writer is under way when the backup starts
			atStart := w.committed.Load()
			err := tc.backup(to)
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if werr != nil {
				t.Fatalf("the writer: %v", werr)
			}
			copyDB, err := sql.Open("sqlite3", "file:"+to+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer copyDB.Close()
			var check string
			if err := copyDB.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
				t.Fatalf("integrity_check of the copy: %q %v", check, err)
			}
			ms, cs := pairsIn(t, copyDB)
			if diff := cmp.Diff(ms, cs); diff != "" {
				t.Errorf("pairs written in one transaction are split in the copy (-manifests +configs):\n%s", diff)
			}
			if int64(len(ms)) < atStart || int64(len(ms)) > w.committed.Load() {
				t.Errorf("the copy holds %d pairs; %d were committed when it began, %d when it ended", len(ms), atStart, w.committed.Load())
			}
			t.Logf("pairs: %d committed when the backup began, %d in the copy, %d when it ended", atStart, len(ms), w.committed.Load())
			copyDB.Close()

			got, err := store.Open(ctx, to)
			if err != nil {
				t.Fatalf("open the copy as a store: %v", err)
			}
			defer got.Close()
			for _, d := range []string{"sha256:aa", ms[len(ms)-1]} {
				_, want, err := s.Manifest(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				if _, body, err := got.Manifest(ctx, d); err != nil || string(body) != string(want) {
					t.Errorf("manifest %s of the copy: %d bytes, %v; want the source's %d bytes", d, len(body), err, len(want))
				}
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		exists := filepath.Join(t.TempDir(), "exists.db")
		if err := os.WriteFile(exists, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := store.BackupFile(ctx, path, exists)
		if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), exists) {
			t.Errorf("backup onto an existing file: %v, want fs.ErrExist naming it", err)
		}
		if b, _ := os.ReadFile(exists); string(b) != "keep me" {
			t.Errorf("the existing file was changed: %q", b)
		}
		out := t.TempDir()
		err = store.BackupFile(ctx, filepath.Join(dir, "missing.db"), filepath.Join(out, "new.db"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("backup of a missing database: %v, want fs.ErrNotExist", err)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("a failed backup left %v behind", entries)
		}
		if entries, _ := os.ReadDir(filepath.Dir(exists)); len(entries) != 1 {
			t.Errorf("a refused backup left files behind: %v", entries)
		}
	})
}
