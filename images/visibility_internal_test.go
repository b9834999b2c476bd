package images

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/store"
)

// Every read of a kept answer asks for its repository's verdict, so a kept
// verdict, and the check of a viewer against it, allocate nothing; a new
// verdict (the repository's stamp moved) is read again from the store.
func TestKeptVerdictAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	client, err := registry.New(registry.Options{Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Client: client, Store: st})
	repo := analysis.Repository{Registry: "registry.example", Name: "acme/app"}
	ref := repo.WithTag("1")
	if _, err := st.RecordVisibility(ctx, repo, analysis.VisibilityPrivate, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.guard(ctx, auth.Viewer{}, ref, nil, time.Time{}); err == nil {
		t.Fatal("an anonymous viewer passes the check of a private repository")
	}
	allocs := testing.AllocsPerRun(200, func() {
		if err := s.guard(ctx, auth.Viewer{Person: "dev@example.com"}, ref, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("the check of a kept verdict allocates %.1f times, want none", allocs)
	}
	if _, err := st.RecordVisibility(ctx, repo, analysis.VisibilityPublic, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.guard(ctx, auth.Viewer{}, ref, nil, time.Time{}); err != nil {
		t.Errorf("after the verdict turned public: %v", err)
	}
}
