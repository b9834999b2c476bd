package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
)

// TestCountsAgreeWithTheirNumber: the tags and inspect tables say "1 tag,
// 1 image" and "1 layer" for one of each, and the plural otherwise, with
// the numbers crane gives for the same repository and image.
func TestCountsAgreeWithTheirNumber(t *testing.T) {
	reg := faultreg.Start(t).Host
	anon := crane.WithAuth(authn.Anonymous)
	one, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	two, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range map[string]v1.Image{reg + "/acme/one:1": one, reg + "/acme/two:1": two, reg + "/acme/two:latest": two} {
		if err := crane.Push(img, ref, anon); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		repo string
		tags int
		want string
	}{
		{reg + "/acme/one", 1, "1 tag, 1 image"},
		{reg + "/acme/two", 2, "2 tags, 1 image"},
	} {
		tags, err := crane.ListTags(tc.repo, anon)
		if err != nil || len(tags) != tc.tags {
			t.Fatalf("crane lists %s as %v (%v), the case says %d tags", tc.repo, tags, err, tc.tags)
		}
		var out bytes.Buffer
		if err := run(context.Background(), []string{"tags", "--allow-private-registries", tc.repo}, noEnv, &out, &out); err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(out.String(), "\n"); first != tc.repo+"  "+tc.want {
			t.Errorf("tags %s: %q, want %q", tc.repo, first, tc.repo+"  "+tc.want)
		}
	}
	for _, tc := range []struct {
		ref    string
		layers int
		want   string
	}{
		{reg + "/acme/one:1", 1, "total: 1 layer,"},
		{reg + "/acme/two:1", 2, "total: 2 layers,"},
	} {
		raw, err := crane.Manifest(tc.ref, anon)
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Layers []json.RawMessage }
		if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != tc.layers {
			t.Fatalf("crane manifest %s has %d layers (%v), the case says %d", tc.ref, len(m.Layers), err, tc.layers)
		}
		var out bytes.Buffer
		if err := run(context.Background(), []string{"inspect", "--allow-private-registries", tc.ref}, noEnv, &out, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("inspect %s:\n%s\nwant %q", tc.ref, out.String(), tc.want)
		}
	}
}
