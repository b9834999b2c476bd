package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/registry"
)

// testRegistry is the shared test registry, which records the requests it
// receives, so tests can assert what the service asked.
type testRegistry struct{ *faultreg.Registry }

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	return &testRegistry{faultreg.Start(t)}
}

func (tr *testRegistry) ref(t *testing.T, s string) analysis.Reference {
	t.Helper()
	r, err := analysis.ParseReference(tr.Host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func pushIndex(t *testing.T, ref string, idx v1.ImageIndex) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// imageSpec describes a test image; build makes it with go-containerregistry.
type imageSpec struct {
	layers      int
	history     []v1.History // as it should appear in the config; nil makes one entry per layer
	labels      map[string]string
	annotations map[string]string
	os, arch    string
	variant     string
	oci         bool
}

func (s imageSpec) build(t *testing.T) v1.Image {
	t.Helper()
	base := empty.Image
	layerType := types.DockerLayer
	if s.oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
		layerType = types.OCILayer
	}
	var layers []v1.Layer
	for i := 0; i < s.layers; i++ {
		l, err := random.Layer(int64(200+100*i), layerType)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = s.os, s.arch, s.variant
	if cf.OS == "" {
		cf.OS, cf.Architecture = "linux", "amd64"
	}
	cf.Created = v1.Time{Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	cf.Config.Labels = s.labels
	cf.History = s.history
	if s.history == nil {
		cf.History = nil
		for i := 0; i < s.layers; i++ {
			cf.History = append(cf.History, v1.History{
				CreatedBy: "RUN step " + string(rune('a'+i)),
				Created:   v1.Time{Time: time.Date(2026, 11, 20, 9, i, 0, 0, time.UTC)},
			})
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	if s.annotations != nil {
		img = mutate.Annotations(img, s.annotations).(v1.Image)
	}
	return img
}

// inspector is a client and an inspector over memory, as a one-off
// inspection uses them.
type inspector struct {
	client  *registry.Client
	content *registry.MemoryContent
	*registry.Inspector
}

func newInspector(t *testing.T, opts registry.Options) (*registry.Client, *inspector) {
	t.Helper()
	if opts.Keychain == nil {
		opts.Keychain = authn.NewMultiKeychain() // anonymous: never read the host's docker config in tests
	}
	c, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	content := registry.NewMemoryContent()
	return c, &inspector{client: c, content: content, Inspector: registry.NewInspector(c, content)}
}

// inspect resolves and reports ref the way the service does: a HEAD, a
// manifest read by GET kept when the registry refused the HEAD, then the
// report.
func inspect(t *testing.T, in *inspector, ref analysis.Reference) (*analysis.Report, error) {
	t.Helper()
	ctx := context.Background()
	d, body, err := in.client.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if body != nil {
		if err := in.content.PutManifest(ctx, d.Digest, d.MediaType, body); err != nil {
			return nil, err
		}
	}
	return in.Report(ctx, ref.Repository, d.Digest)
}

// must returns v, failing the test (by panic, which the test runner reports
// with the stack) when err is set; it keeps expectations readable.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
