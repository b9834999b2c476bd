package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// TestTagReadsMatchTheDatabase: Tag answers from memory once a tag was read
// or written; what it answers must be what the database holds, as a second
// Store opened on the same file (which has read nothing yet) reads it.
func TestTagReadsMatchTheDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	repo := analysis.Repository{Registry: "registry.example", Name: "acme/app"}
	desc := func(d string) analysis.Descriptor {
		return analysis.Descriptor{Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json"}
	}
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 123_456_789, time.UTC)
	same := func(step string, tags ...string) {
		t.Helper()
		fresh := open(t, path)
		for _, tag := range tags {
			got, gerr := s.Tag(ctx, repo, tag)
			want, werr := fresh.Tag(ctx, repo, tag)
			if (gerr == nil) != (werr == nil) || errors.Is(gerr, analysis.ErrNotFound) != errors.Is(werr, analysis.ErrNotFound) {
				t.Fatalf("%s: %s: err %v, database says %v", step, tag, gerr, werr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: %s differs from the database (-db +memory):\n%s", step, tag, diff)
			}
			gd, gok := analysis.DeletedTag(gerr)
			wd, wok := analysis.DeletedTag(werr)
			if gok != wok || (gok && *gd != *wd) {
				t.Errorf("%s: %s: deletion in memory %+v, in the database %+v", step, tag, gd, wd)
			}
		}
		fresh.Close()
	}
	mustRecord := func(tag, d string, at time.Time) {
		t.Helper()
		record(t, s, repo, tag, desc(d), at)
	}
	same("nothing yet", "1", "2")
	mustRecord("1", "sha256:a", t0)
	same("new tag", "1", "2")
	mustRecord("1", "sha256:a", t0.Add(time.Minute))
	same("checked again", "1")
	mustRecord("1", "sha256:b", t0.Add(2*time.Minute))
	same("moved", "1")
	mustRecord("2", "sha256:b", t0.Add(3*time.Minute))
	if _, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "1", Previous: "sha256:b", At: t0.Add(3 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	same("deleted", "1", "2")
	if _, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: repo, Tag: "1", At: t0.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	same("deleted, checked again", "1", "2")
	mustRecord("1", "sha256:c", t0.Add(4*time.Minute))
	same("back again", "1", "2")
}

// TestTagReadsRaceWrites: readers that miss while writers move tags never
// leave an old row in memory; after the writers stop, every tag reads as
// the database holds it.
func TestTagReadsRaceWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	repo := analysis.Repository{Registry: "registry.example", Name: "acme/race"}
	const tags, moves = 4, 60
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = s.Tag(ctx, repo, fmt.Sprint(i%tags))
			}
		})
	}
	var writers sync.WaitGroup
	for w := 0; w < 2; w++ {
		writers.Go(func() {
			for i := 0; i < moves; i++ {
				tag := fmt.Sprint(i % tags)
				d := analysis.Descriptor{Digest: fmt.Sprintf("sha256:%d-%d", w, i), MediaType: "m"}
				record(t, s, repo, tag, d, at.Add(time.Duration(i)*time.Second))
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	fresh := open(t, path)
	for i := 0; i < tags; i++ {
		tag := fmt.Sprint(i)
		got, err := s.Tag(ctx, repo, tag)
		want, werr := fresh.Tag(ctx, repo, tag)
		if err != nil || werr != nil || got != want {
			t.Errorf("tag %s: memory %+v (%v), database %+v (%v)", tag, got, err, want, werr)
		}
	}
}
