package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

func open(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsnOf(t, path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContentRoundTripAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	if _, _, err := s.Manifest(ctx, "sha256:aa"); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("missing manifest: err = %v, want not found", err)
	}
	if _, err := s.Config(ctx, "sha256:bb"); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("missing config: err = %v, want not found", err)
	}
	if err := s.PutManifest(ctx, "sha256:aa", "application/vnd.oci.image.manifest.v1+json", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	// Content is immutable: a second put of the same digest changes nothing.
	if err := s.PutManifest(ctx, "sha256:aa", "other", []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConfig(ctx, "sha256:bb", []byte(`{"b":1}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopening applies no migration twice and finds everything.
	s = open(t, path)
	mt, body, err := s.Manifest(ctx, "sha256:aa")
	if err != nil || mt != "application/vnd.oci.image.manifest.v1+json" || string(body) != `{"a":1}` {
		t.Errorf("manifest = %q %q %v", mt, body, err)
	}
	if body, err := s.Config(ctx, "sha256:bb"); err != nil || string(body) != `{"b":1}` {
		t.Errorf("config = %q %v", body, err)
	}
}

func TestRecordTag(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/base"}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	d1 := analysis.Descriptor{Digest: "sha256:11", MediaType: "application/vnd.oci.image.index.v1+json"}
	d2 := analysis.Descriptor{Digest: "sha256:22", MediaType: "application/vnd.oci.image.manifest.v1+json"}

	steps := []struct {
		tag  string
		d    analysis.Descriptor
		at   time.Time
		want store.TagCheck
	}{
		{"1.0", d1, t0, store.TagCheck{Previous: "", Moved: true}},
		{"1", d1, t0, store.TagCheck{Previous: "", Moved: true}},
		{"1.0", d1, t0.Add(time.Minute), store.TagCheck{Previous: "sha256:11", Moved: false}},
		{"1", d2, t0.Add(2 * time.Minute), store.TagCheck{Previous: "sha256:11", Moved: true}},
	}
	for _, st := range steps {
		got, err := s.RecordTag(ctx, store.TagRecord{Repo: repo, Tag: st.tag, Previous: st.want.Previous, To: st.d, At: st.at})
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Errorf("RecordTag(%s → %s) = %+v, want %+v", st.tag, st.d.Digest, got, st.want)
		}
	}
	ts, err := s.Tag(ctx, repo, "1.0")
	if err != nil {
		t.Fatal(err)
	}
	want := store.TagState{Digest: "sha256:11", MediaType: d1.MediaType, FirstSeen: t0, Changed: t0, Checked: t0.Add(time.Minute)}
	if diff := cmp.Diff(want, ts); diff != "" {
		t.Errorf("tag 1.0 (-want +got):\n%s", diff)
	}
	if got, _ := s.TagsAt(ctx, repo, "sha256:11"); !cmp.Equal(got, []string{"1.0"}) {
		t.Errorf("tags at sha256:11 = %v", got)
	}
	if got, _ := s.TagsAt(ctx, repo, "sha256:22"); !cmp.Equal(got, []string{"1"}) {
		t.Errorf("tags at sha256:22 = %v", got)
	}
	if _, err := s.Tag(ctx, repo, "nope"); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("unknown tag: err = %v", err)
	}
	// A record from where the tag no longer points is refused, and says
	// where it points now, so the caller can describe the move again.
	got, err := s.RecordTag(ctx, store.TagRecord{Repo: repo, Tag: "1", Previous: d1.Digest, To: d1, At: t0.Add(3 * time.Minute)})
	if !errors.Is(err, store.ErrTagMoved) || got.Previous != d2.Digest {
		t.Errorf("record from a stale previous digest = %+v, %v; want ErrTagMoved and %s", got, err, d2.Digest)
	}
	if st, _ := s.Tag(ctx, repo, "1"); st.Digest != d2.Digest {
		t.Errorf("after the refused record the tag points at %s", st.Digest)
	}
}

// record records repo:tag at d from wherever the store says it points,
// retrying when another writer moved it in between, as images.Service does.
func record(t testing.TB, s *store.Store, repo analysis.Repository, tag string, d analysis.Descriptor, at time.Time) store.TagCheck {
	t.Helper()
	prev := ""
	if st, err := s.Tag(context.Background(), repo, tag); err == nil {
		prev = st.Digest
	}
	for {
		c, err := s.RecordTag(context.Background(), store.TagRecord{Repo: repo, Tag: tag, Previous: prev, To: d, At: at})
		if errors.Is(err, store.ErrTagMoved) {
			prev = c.Previous
			continue
		}
		if err != nil {
			t.Error(err)
		}
		return c
	}
}

// TestConcurrentWriters checks that many goroutines writing at once through
// the single writer connection neither fail with "database is locked" nor
// lose a write.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "r", Name: "n"}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := analysis.Descriptor{Digest: "sha256:" + string(rune('a'+i%26)), MediaType: "m"}
			record(t, s, repo, "t"+string(rune('A'+i%50)), d, time.Now())
			if _, err := s.Tag(ctx, repo, "t"+string(rune('A'+i%50))); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestUnreachablePostgresIsAClearError: a PostgreSQL URL whose server does
// not answer fails Open with ErrUnavailable and a message that keeps the
// password out.
func TestUnreachablePostgresIsAClearError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://ib:s3cret-pw@127.0.0.1:1/imagebadger?sslmode=disable&connect_timeout=5")
	if !errors.Is(err, store.ErrUnavailable) || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("Open of a server that does not answer: %v, want ErrUnavailable without the password", err)
	}
}

// TestOpenTogetherMigratesOnce: stores opened at the same moment on one new
// database, as a deployment's replicas start, all open, and each migration
// is applied once.
func TestOpenTogetherMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ib.db")
	dsn := dsnOf(t, path)
	const n = 4
	errs := make(chan error, n)
	stores := make(chan *store.Store, n)
	for range n {
		go func() {
			s, err := store.Open(context.Background(), dsn)
			errs <- err
			stores <- s
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("open: %v", err)
		}
		if s := <-stores; s != nil {
			defer s.Close()
		}
	}
	files, _ := filepath.Glob(filepath.Join("migrations", *engine, "*.sql"))
	var rows, versions int
	db := rawDB(t, path)
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != len(files) || versions != len(files) {
		t.Errorf("schema_migrations holds %d rows of %d versions, want one row for each of the %d migrations", rows, versions, len(files))
	}
}
