package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// TestChangeStamps: what changes a scope gives it a new, larger stamp from
// one sequence, in the transaction of the change; what changes nothing
// leaves it; and a store opened again on the file knows the same stamps
// and goes on counting from them.
func TestChangeStamps(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	app := analysis.Repository{Registry: "r.example", Name: "acme/app"}
	base := analysis.Repository{Registry: "r.example", Name: "acme/base"}
	appScope, baseScope := store.RepositoryScope(app), store.RepositoryScope(base)
	d := func(x string) analysis.Descriptor { return analysis.Descriptor{Digest: "sha256:" + x, MediaType: "m"} }
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

	if s.Stamp(appScope) != 0 || s.Stamp(store.IndexScope) != 0 {
		t.Fatal("a new database has stamps")
	}
	steps := []struct {
		name    string
		do      func()
		changed []store.Scope
	}{
		{"new tag", func() { record(t, s, app, "1", d("a"), at) }, []store.Scope{appScope}},
		{"checked again", func() { record(t, s, app, "1", d("a"), at.Add(time.Minute)) }, nil},
		{"moved", func() { record(t, s, app, "1", d("b"), at.Add(2*time.Minute)) }, []store.Scope{appScope}},
		{"other repository", func() { record(t, s, base, "1", d("c"), at) }, []store.Scope{baseScope}},
		{"platforms", func() {
			if err := s.RecordPlatforms(ctx, []store.PlatformImage{{Repo: base, Digest: "sha256:c", PlatformDigest: "sha256:c",
				Platform: "linux/amd64", ChainID: "sha256:x", LayerCount: 1, FirstSeen: at}}); err != nil {
				t.Fatal(err)
			}
		}, []store.Scope{store.IndexScope}},
		{"platforms known", func() {
			if err := s.RecordPlatforms(ctx, []store.PlatformImage{{Repo: base, Digest: "sha256:c", PlatformDigest: "sha256:c",
				Platform: "linux/amd64", ChainID: "sha256:x", LayerCount: 1, FirstSeen: at}}); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"deleted", func() {
			if _, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: app, Tag: "1", Previous: "sha256:b", At: at.Add(3 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}, []store.Scope{appScope}},
		{"deleted, checked again", func() {
			if _, err := s.RecordDeletion(ctx, store.TagDeletion{Repo: app, Tag: "1", At: at.Add(4 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	all := []store.Scope{appScope, baseScope, store.IndexScope}
	var highest store.Stamp
	for _, st := range steps {
		before := map[store.Scope]store.Stamp{}
		for _, sc := range all {
			before[sc] = s.Stamp(sc)
		}
		st.do()
		for _, sc := range all {
			changed := false
			for _, c := range st.changed {
				changed = changed || c == sc
			}
			now := s.Stamp(sc)
			switch {
			case changed && now <= highest:
				t.Errorf("%s: %s stamp %d, want more than every earlier stamp (%d)", st.name, sc, now, highest)
			case !changed && now != before[sc]:
				t.Errorf("%s: %s stamp moved %d → %d", st.name, sc, before[sc], now)
			}
			highest = max(highest, now)
		}
	}
	again := open(t, path)
	for _, sc := range all {
		if a, b := again.Stamp(sc), s.Stamp(sc); a != b {
			t.Errorf("reopened: %s stamp %d, the first store says %d", sc, a, b)
		}
	}
	record(t, again, app, "2", d("d"), at)
	if got := again.Stamp(appScope); got <= highest {
		t.Errorf("reopened store gave stamp %d, not past the highest before (%d)", got, highest)
	}
}
