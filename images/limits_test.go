package images_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
)

// TestImagesOverTheLimitsAreRefusedAndNothingIsStored: an image of 257
// layers and an index of 129 manifests (one over each limit) answer a
// registry error naming the limit and the count; neither the manifest nor
// the tag is stored, and the refusal answers again without asking the
// registry. An image of exactly 256 layers is read.
func TestImagesOverTheLimitsAreRefusedAndNothingIsStored(t *testing.T) {
	tall := must(random.Image(8, analysis.MaxLayers+1))
	highest := must(random.Image(8, analysis.MaxLayers))
	one := must(random.Image(8, 1))
	var wide v1.ImageIndex = empty.Index
	for i := range analysis.MaxIndexManifests + 1 {
		wide = mutate.AppendManifests(wide, mutate.IndexAddendum{Add: one, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: fmt.Sprintf("arch%d", i)}}})
	}
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Images: images.Options{RetryFailedAfter: time.Hour}})
		host := s.Registry.Host
		put := func(ref string, write func(name.Reference) error) analysis.Reference {
			t.Helper()
			if err := write(must(name.ParseReference(host + "/" + ref))); err != nil {
				t.Fatal(err)
			}
			return must(analysis.ParseReference(host + "/" + ref))
		}
		for _, tc := range []struct {
			ref    string
			digest v1.Hash
			write  func(name.Reference) error
			says   string
		}{
			{"acme/tall:1", must(tall.Digest()), func(r name.Reference) error { return remote.Write(r, tall) }, "has 257 layers, more than the 256"},
			{"acme/wide:1", must(wide.Digest()), func(r name.Reference) error { return remote.WriteIndex(r, wide) }, "lists 129 manifests, more than the 128"},
		} {
			t.Run(tc.ref, func(t *testing.T) {
				ref := put(tc.ref, tc.write)
				s.Registry.Requests()
				for i := range 2 {
					_, err := s.Images.Read(context.Background(), auth.Viewer{}, ref, images.ReadOptions{})
					if !errors.Is(err, analysis.ErrUpstream) {
						t.Fatalf("read %d: err = %v, want a registry error", i, err)
					}
					if msg, _ := analysis.PublicMessage(err); !strings.Contains(msg, tc.says) {
						t.Errorf("read %d: message %q does not say %q", i, msg, tc.says)
					}
					if i == 0 {
						if got := s.Registry.Requests("/manifests/"); len(got) == 0 {
							t.Fatal("the first read asked the registry for no manifest")
						}
					} else if got := s.Registry.Requests(); len(got) != 0 {
						t.Errorf("the second read asked the registry again: %v", got)
					}
				}
				if _, _, err := s.Store.Manifest(context.Background(), tc.digest.String()); !errors.Is(err, analysis.ErrNotFound) {
					t.Errorf("manifest stored: err = %v, want not found", err)
				}
				if _, err := s.Store.Tag(context.Background(), ref.Repository, ref.Tag); !errors.Is(err, analysis.ErrNotFound) {
					t.Errorf("tag stored: err = %v, want not found", err)
				}
			})
		}
		t.Run("at the limit", func(t *testing.T) {
			ref := put("acme/highest:1", func(r name.Reference) error { return remote.Write(r, highest) })
			a, err := s.Images.Read(context.Background(), auth.Viewer{}, ref, images.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(a.Report.Platforms[0].Layers); got != analysis.MaxLayers {
				t.Errorf("%d layers read, want %d", got, analysis.MaxLayers)
			}
		})
	})
}
