package analysis_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// build makes an image of n random layers on parent (nil for none), each
// with a history entry, for platform, with labels.
func build(t *testing.T, parent v1.Image, n int, platform v1.Platform, labels map[string]string) v1.Image {
	t.Helper()
	if parent == nil {
		parent = mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	}
	img := parent
	for i := range n {
		l := must(random.Layer(int64(100+37*i), types.OCILayer))
		img = must(mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: fmt.Sprintf("RUN step %d of %p", i, l)}}))
	}
	cf := must(img.ConfigFile()).DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	if labels != nil {
		cf.Config.Labels = labels
	}
	return must(mutate.ConfigFile(img, cf))
}

// platformOf reads an image the way the service does (manifest and config
// only) into its report platform.
func platformOf(t *testing.T, img v1.Image) analysis.Platform {
	t.Helper()
	m := must(img.Manifest())
	p, err := analysis.BuildPlatform(must(img.Digest()).String(), string(must(img.MediaType())), m, must(img.RawConfigFile()), nil, nil, "test image")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// layersOf is what the test knows it pushed: each layer's digest, diffID,
// size, and the history entry that made it, as crane reports them.
func layersOf(t *testing.T, img v1.Image, from int) []analysis.DiffLayer {
	t.Helper()
	cf := must(img.ConfigFile())
	out := []analysis.DiffLayer{}
	for i, l := range must(img.Layers())[from:] {
		out = append(out, analysis.DiffLayer{Digest: must(l.Digest()).String(), DiffID: must(l.DiffID()).String(),
			Size: must(l.Size()), CreatedBy: cf.History[from+i].CreatedBy})
	}
	return out
}

func sizeOf(t *testing.T, img v1.Image, from, to int) int64 {
	t.Helper()
	var n int64
	for _, l := range must(img.Layers())[from:to] {
		n += must(l.Size())
	}
	return n
}

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func TestDiffPlatforms(t *testing.T) {
	base := build(t, nil, 3, amd64, nil)
	child := build(t, base, 2, amd64, nil)
	rebuilt := build(t, nil, 3, amd64, nil)
	runtime := build(t, base, 1, amd64, nil)
	app1 := build(t, runtime, 2, amd64, nil)
	app2 := build(t, runtime, 3, amd64, nil)
	for _, tc := range []struct {
		name     string
		from, to v1.Image
		shared   int
	}{
		{"identical", child, child, 5},
		{"child of the base", base, child, 3},
		{"back to the base", child, base, 3},
		{"rebuilt base shares nothing", base, rebuilt, 0},
		{"child of a child, rebuilt on the same runtime", app1, app2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to := platformOf(t, tc.from), platformOf(t, tc.to)
			d := analysis.DiffPlatforms(&from, &to)
			fromLayers, toLayers := len(must(tc.from.Layers())), len(must(tc.to.Layers()))
			want := analysis.Diff{
				From:            analysis.DiffSide{PlatformDigest: must(tc.from.Digest()).String()},
				To:              analysis.DiffSide{PlatformDigest: must(tc.to.Digest()).String()},
				Platform:        "linux/amd64",
				Shared:          analysis.Shared{LayerCount: tc.shared, Size: sizeOf(t, tc.to, 0, tc.shared)},
				Removed:         layersOf(t, tc.from, tc.shared),
				Added:           layersOf(t, tc.to, tc.shared),
				SizeDelta:       sizeOf(t, tc.to, 0, toLayers) - sizeOf(t, tc.from, 0, fromLayers),
				LayerCountDelta: toLayers - fromLayers,
			}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("diff (-want +got):\n%s", diff)
			}
		})
	}
}

func str(s string) *string { return &s }

func TestDiffMetadataAndCompareURL(t *testing.T) {
	labels := func(version, revision, source string) map[string]string {
		m := map[string]string{"org.opencontainers.image.version": version, "org.opencontainers.image.revision": revision}
		if source != "" {
			m["org.opencontainers.image.source"] = source
		}
		return m
	}
	base := build(t, nil, 1, amd64, nil)
	for _, tc := range []struct {
		name       string
		from, to   map[string]string
		metadata   analysis.MetadataDiff
		compareURL string
	}{
		{"github", labels("2.2.7", "3f9a1c5", "https://github.com/acme/app"), labels("2.3.1", "0f3c2a9", "https://github.com/acme/app.git"),
			analysis.MetadataDiff{Version: &analysis.ValueChange{From: str("2.2.7"), To: str("2.3.1")},
				Revision: &analysis.ValueChange{From: str("3f9a1c5"), To: str("0f3c2a9")},
				Source:   &analysis.ValueChange{From: str("https://github.com/acme/app"), To: str("https://github.com/acme/app.git")}},
			"https://github.com/acme/app/compare/3f9a1c5...0f3c2a9"},
		{"gitlab, nested group", labels("1", "aaaaaaa", "https://gitlab.com/acme/platform/runtime"), labels("2", "bbbbbbb", "https://gitlab.com/acme/platform/runtime"),
			analysis.MetadataDiff{Version: &analysis.ValueChange{From: str("1"), To: str("2")}, Revision: &analysis.ValueChange{From: str("aaaaaaa"), To: str("bbbbbbb")}},
			"https://gitlab.com/acme/platform/runtime/-/compare/aaaaaaa...bbbbbbb"},
		{"codeberg over ssh", labels("1", "aaaaaaa", "git@codeberg.org:acme/app.git"), labels("1", "bbbbbbb", "git@codeberg.org:acme/app.git"),
			analysis.MetadataDiff{Revision: &analysis.ValueChange{From: str("aaaaaaa"), To: str("bbbbbbb")}},
			"https://codeberg.org/acme/app/compare/aaaaaaa...bbbbbbb"},
		{"another repository", labels("1", "aaaaaaa", "https://github.com/acme/app"), labels("1", "bbbbbbb", "https://github.com/acme/fork"),
			analysis.MetadataDiff{Revision: &analysis.ValueChange{From: str("aaaaaaa"), To: str("bbbbbbb")},
				Source: &analysis.ValueChange{From: str("https://github.com/acme/app"), To: str("https://github.com/acme/fork")}}, ""},
		{"another forge", labels("1", "aaaaaaa", "https://git.example/acme/app"), labels("1", "bbbbbbb", "https://git.example/acme/app"),
			analysis.MetadataDiff{Revision: &analysis.ValueChange{From: str("aaaaaaa"), To: str("bbbbbbb")}}, ""},
		{"a revision missing", map[string]string{"org.opencontainers.image.source": "https://github.com/acme/app"}, labels("1", "bbbbbbb", "https://github.com/acme/app"),
			analysis.MetadataDiff{Version: &analysis.ValueChange{To: str("1")}, Revision: &analysis.ValueChange{To: str("bbbbbbb")}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := platformOf(t, build(t, base, 1, amd64, tc.from))
			to := platformOf(t, build(t, base, 1, amd64, tc.to))
			d := analysis.DiffPlatforms(&from, &to)
			if diff := cmp.Diff(tc.metadata, d.Metadata); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			if d.CompareURL != tc.compareURL {
				t.Errorf("compareUrl %q, want %q", d.CompareURL, tc.compareURL)
			}
		})
	}
}

// report makes a report of the given platform images, as an index would.
func report(t *testing.T, ref string, imgs map[string]v1.Image) *analysis.Report {
	t.Helper()
	var ps []analysis.Platform
	for name, img := range imgs {
		p := platformOf(t, img)
		p.Platform = name
		ps = append(ps, p)
	}
	r := analysis.NewReport(analysis.Repository{Registry: "r.example", Name: "acme/app"}, "sha256:"+fmt.Sprintf("%064x", len(ref)), "application/vnd.oci.image.index.v1+json", ps)
	r.Reference = ref
	return r
}

func TestDiffImagesChoosesThePlatform(t *testing.T) {
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	amdBase, armBase := build(t, nil, 2, amd64, nil), build(t, nil, 2, arm64, nil)
	from := report(t, "r.example/acme/app:1", map[string]v1.Image{"linux/amd64": build(t, amdBase, 1, amd64, nil), "linux/arm64/v8": build(t, armBase, 1, arm64, nil)})
	to := report(t, "r.example/acme/app:2", map[string]v1.Image{"linux/amd64": build(t, amdBase, 2, amd64, nil), "linux/arm64/v8": build(t, armBase, 3, arm64, nil)})

	d, err := analysis.DiffImages(from, to, "")
	if err != nil || d.Platform != "linux/amd64" || d.Shared.LayerCount != 2 || len(d.Added) != 2 {
		t.Errorf("default: %s shared %d added %d, %v; want linux/amd64 with 2 shared and 2 added", d.Platform, d.Shared.LayerCount, len(d.Added), err)
	}
	if d.From.Reference != "r.example/acme/app:1" || d.To.Reference != "r.example/acme/app:2" || d.From.Digest != from.Digest || d.To.Digest != to.Digest {
		t.Errorf("sides %+v %+v", d.From, d.To)
	}
	// Another platform, written as docker does (without the variant too).
	for _, want := range []string{"linux/arm64/v8", "linux/arm64"} {
		d, err = analysis.DiffImages(from, to, want)
		if err != nil || d.Platform != "linux/arm64/v8" || d.Shared.LayerCount != 2 || len(d.Added) != 3 || len(d.Removed) != 1 {
			t.Errorf("%s: %s shared %d added %d removed %d, %v", want, d.Platform, d.Shared.LayerCount, len(d.Added), len(d.Removed), err)
		}
	}
	// A platform one side lacks is the caller's mistake, said in words.
	amdOnly := report(t, "r.example/acme/app:3", map[string]v1.Image{"linux/amd64": build(t, amdBase, 1, amd64, nil)})
	_, err = analysis.DiffImages(from, amdOnly, "linux/arm64/v8")
	if msg, _ := analysis.PublicMessage(err); !errors.Is(err, analysis.ErrInvalidRequest) || msg != "r.example/acme/app:3 has no linux/arm64/v8 image (it has linux/amd64); pass platform= to compare another one" {
		t.Errorf("missing platform: %v (%q)", err, msg)
	}
	// Two single-platform images of another platform compare as they are;
	// of two different platforms, there is nothing to compare by default.
	armOne := report(t, "r.example/acme/app:4", map[string]v1.Image{"linux/arm64/v8": build(t, armBase, 1, arm64, nil)})
	armTwo := report(t, "r.example/acme/app:5", map[string]v1.Image{"linux/arm64/v8": build(t, armBase, 2, arm64, nil)})
	if d, err := analysis.DiffImages(armOne, armTwo, ""); err != nil || d.Platform != "linux/arm64/v8" || d.Shared.LayerCount != 2 {
		t.Errorf("single arm64 images: %s shared %d, %v", d.Platform, d.Shared.LayerCount, err)
	}
	if _, err := analysis.DiffImages(amdOnly, armOne, ""); !errors.Is(err, analysis.ErrInvalidRequest) {
		t.Errorf("amd64 against arm64 without platform=: %v, want invalid request", err)
	}
}

func TestForgeRepository(t *testing.T) {
	for _, tc := range []struct{ in, host, path string }{
		{"https://github.com/acme/app", "github.com", "/acme/app"},
		{"https://www.GitHub.com/acme/app.git", "github.com", "/acme/app"},
		{"git+https://github.com/acme/app/tree/main/cmd", "github.com", "/acme/app"},
		{"git@gitlab.com:acme/group/runtime.git", "gitlab.com", "/acme/group/runtime"},
		{"https://gitlab.com/acme/runtime/-/tree/main", "gitlab.com", "/acme/runtime"},
		{"https://github.com/acme", "", ""},
		{"not a url", "", ""},
		{"", "", ""},
	} {
		host, path, ok := analysis.ForgeRepository(tc.in)
		if host != tc.host || path != tc.path || ok != (tc.host != "") {
			t.Errorf("%q: %q %q %v, want %q %q", tc.in, host, path, ok, tc.host, tc.path)
		}
	}
}

// BenchmarkDiff60Layers compares two 60-layer images that share 58 layers
// (a rebuild of the last two steps), with metadata that differs: the pure
// work of every diff the API, the pages and the webhooks make.
func BenchmarkDiff60Layers(b *testing.B) {
	mk := func(seed string, shared int) analysis.Platform {
		p := analysis.Platform{Platform: "linux/amd64", Digest: syntheticDigest("manifest-"+seed, 0), LayerCount: 60,
			Metadata: analysis.Metadata{Version: "1.0." + seed, Revision: "abc" + seed, Source: "https://github.com/acme/app"}}
		for i := range 60 {
			kind := "layer"
			if i >= shared {
				kind = "layer-" + seed
			}
			p.Layers = append(p.Layers, analysis.Layer{Digest: syntheticDigest(kind+"-blob", i), DiffID: syntheticDigest(kind, i),
				Size: int64(1000 + i), CreatedBy: fmt.Sprintf("RUN step %d", i)})
			p.DownloadSize += int64(1000 + i)
		}
		return p
	}
	from, to := mk("1", 58), mk("2", 58)
	b.ReportAllocs()
	for b.Loop() {
		d := analysis.DiffPlatforms(&from, &to)
		if d.Shared.LayerCount != 58 || len(d.Added) != 2 {
			b.Fatalf("shared %d added %d", d.Shared.LayerCount, len(d.Added))
		}
	}
}
