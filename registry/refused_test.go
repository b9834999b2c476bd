package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
)

// TestRefusedImageCostsNothingMore: an index of eight platform images of
// which the first has more layers than the service reads is refused on its
// first read; under another repository, the same index (by digest) is
// refused again without a request, as content by digest never changes.
func TestRefusedImageCostsNothingMore(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	archs := []string{"amd64", "arm64", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"}
	for i, arch := range archs {
		n := 1
		if i == 0 {
			n = analysis.MaxLayers + 1
		}
		img := imageSpec{layers: n, os: "linux", arch: arch, oci: true}.build(t)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	pushIndex(t, tr.Host+"/acme/big:1", idx)
	pushIndex(t, tr.Host+"/other/big:1", idx)
	digest := digestString(t, idx)

	_, in := newInspector(t, registry.Options{})
	tr.Requests()
	_, err := in.Report(ctx, analysis.Repository{Registry: tr.Host, Name: "acme/big"}, digest)
	if !errors.Is(err, analysis.ErrUnsupportedContent) || !strings.Contains(err.Error(), "more than the 256") {
		t.Fatalf("report of an index with a platform of %d layers: %v, want the layer limit named", analysis.MaxLayers+1, err)
	}
	// How many of the other platforms were fetched before the refusal
	// depends on which fetches the scheduler ran first; what is certain
	// is that the refused one was.
	if first := tr.Requests(); len(first) < 2 {
		t.Errorf("the first refusal cost %d requests, want the index and the refused manifest at least:\n%s", len(first), strings.Join(first, "\n"))
	}
	_, err = in.Report(ctx, analysis.Repository{Registry: tr.Host, Name: "other/big"}, digest)
	if !errors.Is(err, analysis.ErrUnsupportedContent) {
		t.Fatalf("second report: %v, want the same refusal", err)
	}
	if again := tr.Requests(); len(again) != 0 {
		t.Errorf("the same index under another name cost %d requests, want none:\n%s", len(again), strings.Join(again, "\n"))
	}
}
