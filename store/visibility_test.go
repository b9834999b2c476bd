package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// A repository's visibility verdict is kept across a restart, bumps the
// repository's stamp only when it changes, and lives beside the listing
// time without making the repository look listed.
func TestVisibilityKeptAndStamped(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	repo := analysis.Repository{Registry: "registry.example", Name: "acme/app"}
	scope := store.RepositoryScope(repo)

	if v, at, err := s.Visibility(ctx, repo); err != nil || v != analysis.VisibilityUnknown || !at.IsZero() {
		t.Fatalf("never checked: %q %v %v, want unknown", v, at, err)
	}
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	before := s.Stamp(scope)
	if changed, err := s.RecordVisibility(ctx, repo, analysis.VisibilityPrivate, t0); err != nil || !changed {
		t.Fatalf("first verdict: changed=%v err=%v, want changed", changed, err)
	}
	bumped := s.Stamp(scope)
	if bumped == before {
		t.Fatalf("a new verdict left the repository's stamp at %d", bumped)
	}
	if _, err := s.Listed(ctx, repo); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("a repository only checked for visibility counts as listed: %v", err)
	}
	t1 := t0.Add(time.Hour)
	if changed, err := s.RecordVisibility(ctx, repo, analysis.VisibilityPrivate, t1); err != nil || changed {
		t.Fatalf("same verdict again: changed=%v err=%v, want unchanged", changed, err)
	}
	if s.Stamp(scope) != bumped {
		t.Fatalf("an unchanged verdict bumped the stamp")
	}
	listedAt := t1.Add(time.Minute)
	if err := s.RecordListing(ctx, repo, store.Listing{At: listedAt}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	v, at, err := s.Visibility(ctx, repo)
	if err != nil || v != analysis.VisibilityPrivate || !at.Equal(t1) {
		t.Fatalf("after reopening: %q %v %v, want private at %v", v, at, err, t1)
	}
	if got, err := s.Listed(ctx, repo); err != nil || !got.At.Equal(listedAt) {
		t.Fatalf("listed = %v %v, want %v", got, err, listedAt)
	}
	if changed, err := s.RecordVisibility(ctx, repo, analysis.VisibilityPublic, t1.Add(time.Hour)); err != nil || !changed {
		t.Fatalf("verdict turned public: changed=%v err=%v", changed, err)
	}
	if v, _, _ := s.Visibility(ctx, repo); v != analysis.VisibilityPublic {
		t.Fatalf("verdict = %q, want public", v)
	}
	if got, err := s.Listed(ctx, repo); err != nil || !got.At.Equal(listedAt) {
		t.Fatalf("a verdict moved the listing time: %v %v", got, err)
	}
}

// A listing that left tags unrecorded keeps why, until a complete listing
// clears it.
func TestListingIncompleteKept(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/app"}
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	why := "the registry's next page repeats a page already read"
	if err := s.RecordListing(ctx, repo, store.Listing{At: t0, Incomplete: why}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Listed(ctx, repo); err != nil || !got.At.Equal(t0) || got.Incomplete != why {
		t.Fatalf("listed = %+v %v, want %v incomplete %q", got, err, t0, why)
	}
	if err := s.RecordListing(ctx, repo, store.Listing{At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Listed(ctx, repo); err != nil || !got.At.Equal(t0.Add(time.Minute)) || got.Incomplete != "" {
		t.Fatalf("after a complete listing: %+v %v, want complete", got, err)
	}
}

// TestInvalidTagNamesDropped: tag names outside the distribution grammar
// that a registry listed before the service checked them (CR/LF, 5,000
// characters, U+202E, a path, a leading '.' or '-', 129 characters) are
// dropped from the current tags by the migration; valid ones, 128
// characters included, stay. The migration is replayed on a database
// holding such rows by forgetting it was applied.
func TestInvalidTagNamesDropped(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	s.Close()
	db := rawDB(t, path)
	bind := func(q string) string { return q }
	if *engine == "postgres" {
		bind = func(q string) string {
			for i := 1; strings.Contains(q, "?"); i++ {
				q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
			}
			return q
		}
	}
	valid := []string{"1", "1.0-rc_2", strings.Repeat("b", 128), "_x"}
	invalid := []string{"bad\r\nX-Injected: 1", strings.Repeat("a", 5000), "evil\u202egnp.exe", "../../etc", ".hidden", "-dash", strings.Repeat("c", 129), "sp ace", "é"}
	for _, tag := range append(slices.Clone(valid), invalid...) {
		if _, err := db.Exec(bind(`INSERT INTO tags (registry, repository, tag, digest, media_type, first_seen_at, changed_at, checked_at)
			VALUES ('127.0.0.1:5000', 'acme/app', ?, 'sha256:a', 'application/vnd.oci.image.manifest.v1+json', 1, 1, 1)`), tag); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = 71`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = open(t, path)
	rows, err := s.RepositoryTags(ctx, analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/app"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.Tag)
	}
	want := slices.Clone(valid)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("tags after the migration: %q, want %q", got, want)
	}
}
