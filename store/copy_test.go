package store_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/store"
)

// TestCopy: every row goes across, the target must be empty, a pending
// delivery keeps its id (and is claimable there), and what the target
// numbers next comes after what was copied.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	src := open(t, filepath.Join(t.TempDir(), "src.db"))
	addSub(t, src, "sub_a", "1.0", store.SubscriptionActive)
	move(t, src, "1.0", "sha256:aa", "msg_1", "image.updated", t0)
	move(t, src, "1.0", "sha256:bb", "msg_2", "image.updated", t0.Add(time.Second))
	if err := src.PutManifest(ctx, "sha256:aa", "application/vnd.oci.image.manifest.v1+json", []byte("{\"b\":\"\x00\x01\"}")); err != nil {
		t.Fatal(err)
	}
	if err := src.WantTracked(ctx, []store.Tracked{{Repo: subRepo, Tag: "1.0"}}, t0); err != nil {
		t.Fatal(err)
	}
	before, err := src.Deliveries(ctx, "sub_a", 10)
	if err != nil || len(before) != 2 {
		t.Fatalf("deliveries before: %v %v", before, err)
	}

	dst := open(t, filepath.Join(t.TempDir(), "dst.db"))
	var copied []string
	if err := store.Copy(ctx, src, dst, func(table string, n int) { copied = append(copied, table) }); err != nil {
		t.Fatal(err)
	}
	after, err := dst.Deliveries(ctx, "sub_a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("deliveries on the target (-source +target):\n%s", diff)
	}
	if st, err := dst.Tag(ctx, subRepo, "1.0"); err != nil || st.Digest != "sha256:bb" {
		t.Errorf("tag on the target: %+v %v", st, err)
	}
	if _, body, err := dst.Manifest(ctx, "sha256:aa"); err != nil || string(body) != "{\"b\":\"\x00\x01\"}" {
		t.Errorf("manifest on the target: %q %v", body, err)
	}
	if dst.Stamp(store.RepositoryScope(subRepo)) != src.Stamp(store.RepositoryScope(subRepo)) {
		t.Errorf("stamps differ: target %d, source %d", dst.Stamp(store.RepositoryScope(subRepo)), src.Stamp(store.RepositoryScope(subRepo)))
	}
	cs, err := dst.ClaimDeliveries(ctx, "w", t0.Add(time.Hour), time.Minute, 10, 0)
	if err != nil || len(cs) != 2 || cs[0].ID != before[1].ID {
		t.Errorf("claims on the target %+v (%v), want the two pending deliveries by their ids", cs, err)
	}
	// New rows are numbered after the copied ones, and stamps go on.
	move(t, dst, "1.0", "sha256:cc", "msg_3", "image.updated", t0.Add(2*time.Second))
	if ds, _ := dst.Deliveries(ctx, "sub_a", 10); len(ds) != 3 || ds[0].ID <= before[0].ID {
		t.Errorf("a new delivery on the target is numbered %d, after %d?", ds[0].ID, before[0].ID)
	}
	if dst.Stamp(store.RepositoryScope(subRepo)) <= src.Stamp(store.RepositoryScope(subRepo)) {
		t.Error("the target's next stamp is not past the copied ones")
	}
	// A non-empty target is refused, and left as it was.
	if err := store.Copy(ctx, src, dst, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("copy into a non-empty target: %v", err)
	}
	if !slices.Contains(copied, "deliveries") || !slices.Contains(copied, "tracked") {
		t.Errorf("copied tables %v", copied)
	}
}

// TestCopyCoversEverySchemaTable: every table the migrations make (but the
// migrations' own record) is one Copy moves.
func TestCopyCoversEverySchemaTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if s.Engine() == "postgres" {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`
	}
	rows, err := rawDB(t, path).Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	copied := store.CopiedTables()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != "schema_migrations" && !slices.Contains(copied, name) {
			t.Errorf("table %s is not copied by store.Copy: add it to copyTables", name)
		}
	}
}

// TestCopyAcrossEngines: a SQLite file copied into the engine under test
// (PostgreSQL in the suite's second run) and back into a new SQLite file
// holds the same rows.
func TestCopyAcrossEngines(t *testing.T) {
	ctx := context.Background()
	file, err := store.Open(ctx, filepath.Join(t.TempDir(), "sqlite.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	addSub(t, file, "sub_a", "", store.SubscriptionActive)
	move(t, file, "1.0", "sha256:aa", "msg_1", "image.updated", t0)
	mid := open(t, filepath.Join(t.TempDir(), "mid.db"))
	if err := store.Copy(ctx, file, mid, nil); err != nil {
		t.Fatal(err)
	}
	back, err := store.Open(ctx, filepath.Join(t.TempDir(), "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if err := store.Copy(ctx, mid, back, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*store.Store{mid, back} {
		sub, err := s.Subscription(ctx, "sub_a")
		if err != nil || sub.URL != "http://127.0.0.1:1/sub_a" || len(sub.Events) != 2 {
			t.Errorf("%s: subscription %+v %v", s.Engine(), sub, err)
		}
		if ds, err := s.Deliveries(ctx, "sub_a", 10); err != nil || len(ds) != 1 || ds[0].WebhookID != "msg_1" {
			t.Errorf("%s: deliveries %+v %v", s.Engine(), ds, err)
		}
	}
}

// TestCopyIsOneSnapshot: Copy reads its source in one snapshot, so a source
// written to during the copy gives a consistent copy. A pair of rows
// written in one transaction (a manifest and a config) is in the copy
// whole or not at all: the pair written between the copy of manifests and
// that of configs is in neither, and so are those a writer adds alongside.
func TestCopyIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "src.db")
	src := open(t, path)
	w := newPairWriter(t, path, 512)
	for range 50 {
		if err := w.write(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dstPath := filepath.Join(t.TempDir(), "dst.db")
	dst := open(t, dstPath)

	stop := make(chan struct{})
	running := make(chan struct{})
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() { werr = w.loop(ctx, stop, running, 100_000) })
	<-running
	var perr error
	err := store.Copy(ctx, src, dst, func(table string, _ int) {
		if table == "manifests" {
			perr = w.write(ctx)
		}
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if werr != nil || perr != nil {
		t.Fatalf("the writers: %v, %v", werr, perr)
	}
	ms, cs := pairsIn(t, rawDB(t, dstPath))
	if diff := cmp.Diff(ms, cs); diff != "" {
		t.Errorf("pairs written in one transaction are split in the copy (-manifests +configs):\n%s", diff)
	}
	if len(ms) < 50 {
		t.Errorf("the copy holds %d pairs, fewer than the 50 written before it", len(ms))
	}
}
