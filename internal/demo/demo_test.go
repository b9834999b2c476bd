package demo_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/demo"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/store"
)

// TestSeedGivesEveryPageSomethingToShow seeds a registry and a store, then
// reads them back through a fresh service, as `imagebadger serve` would
// after the demo's seeding: the family, its history, parents and the
// outdated child must all be there.
func TestSeedGivesEveryPageSomethingToShow(t *testing.T) {
	ctx := context.Background()
	reg, err := demo.StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	st := stack.OpenStore(t, stack.SQLite)
	client, err := registry.New(registry.Options{
		Transport: netguard.New(true).Transport(),
		Timeout:   10 * time.Second,
		Keychain:  authn.NewMultiKeychain(),
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := reg.Seed(ctx, st, client); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded in %s", time.Since(start).Round(time.Millisecond))

	svc := images.New(images.Options{Client: client, Store: st, FreshFor: time.Hour})
	if _, err := svc.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	image := func(ref string) *analysis.Report {
		t.Helper()
		r, err := analysis.ParseReference(reg.Ref(ref))
		if err != nil {
			t.Fatal(err)
		}
		a, err := svc.Read(ctx, auth.Viewer{}, r, images.ReadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		return a.Report
	}

	app := image(demo.App + ":2.3")
	if len(app.Platforms) != 2 || app.Platforms[0].Platform != "linux/amd64" || app.Platforms[1].Platform != "linux/arm64/v8" {
		t.Fatalf("app platforms %+v (attestations must be left out)", platforms(app))
	}
	for _, p := range app.Platforms {
		if p.Metadata.Version != "2.3.1" || p.Metadata.Source != "https://github.com/acme/app" || p.Metadata.Licenses != "Apache-2.0" {
			t.Errorf("%s metadata %+v", p.Platform, p.Metadata)
		}
		if p.Parent == nil || p.Parent.Repository != demo.Runtime || p.Parent.Outdated {
			t.Errorf("%s parent %+v, want the current acme/runtime", p.Platform, p.Parent)
		}
		if len(p.Layers) != 8 || p.Layers[0].CreatedBy == "" {
			t.Errorf("%s has %d layers", p.Platform, len(p.Layers))
		}
	}
	if !slices.Equal(app.Tags, []string{"latest", "2", "2.3", "2.3.1"}) {
		t.Errorf("app tags %v", app.Tags)
	}

	worker := image(demo.Worker + ":1.0")
	p := worker.Platforms[0]
	base320 := image(demo.Base + ":3.20")
	if p.Parent == nil || p.Parent.Repository != demo.Base || !p.Parent.Outdated || p.Parent.CurrentDigest != base320.Digest {
		t.Errorf("worker parent %+v, want an outdated acme/base now at %s", p.Parent, base320.Digest)
	}
	runtime13 := image(demo.Runtime + ":1.3")
	if pa := runtime13.Platforms[0].Parent; pa == nil || !pa.Outdated {
		t.Errorf("runtime 1.3 parent %+v, want outdated", pa)
	}

	baseRepo, err := analysis.ParseRepository(reg.Ref(demo.Base))
	if err != nil {
		t.Fatal(err)
	}
	list, err := svc.Tags(ctx, auth.Viewer{}, baseRepo, images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 3.19.4 was deleted: 3.19 is left on its image.
	if list.TagCount != 6 || len(list.Groups) != 3 {
		t.Errorf("base: %d tags in %d groups, want 6 in 3", list.TagCount, len(list.Groups))
	}
	if _, err := svc.Read(ctx, auth.Viewer{}, baseRepo.WithTag("3.19.4"), images.ReadOptions{}); err == nil {
		t.Error("the deleted base:3.19.4 reads as an image")
	} else if _, ok := analysis.DeletedTag(err); !ok {
		t.Errorf("base:3.19.4: %v, want it recorded as deleted", err)
	}

	recent, err := st.RecentChanges(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	moved, deleted := 0, 0
	for _, r := range recent {
		switch r.Kind {
		case store.ChangeMoved:
			moved++
		case store.ChangeDeleted:
			deleted++
		}
		if age := time.Since(r.At); age < time.Hour || age > 100*24*time.Hour {
			t.Errorf("%s:%s changed %s ago, want the staged history of weeks", r.Repository, r.Tag, age.Round(time.Minute))
		}
	}
	// base 3.20, 3 and latest moved at the rebuild; app 2.2 at 2.2.8, and 2
	// and latest at 2.3; base 3.19.4 was deleted.
	if moved != 6 || deleted != 1 {
		t.Errorf("%d moves and %d deletions, want 6 and 1", moved, deleted)
	}
}

func platforms(r *analysis.Report) []string {
	var out []string
	for _, p := range r.Platforms {
		out = append(out, p.Platform)
	}
	return out
}
