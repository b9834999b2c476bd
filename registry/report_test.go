package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
)

// expectedPlatform computes, from the image the test pushed, what the report
// must say about it: sizes and digests from go-containerregistry's view of
// the manifest, commands from the history the test wrote.
func expectedPlatform(t *testing.T, img v1.Image, platform string, commands []string) analysis.Platform {
	t.Helper()
	m := must(img.Manifest())
	cf := must(img.ConfigFile())
	d := must(img.Digest())
	mt := must(img.MediaType())
	parts := strings.Split(platform, "/")
	p := analysis.Platform{
		Platform:     platform,
		OS:           parts[0],
		Architecture: parts[1],
		Digest:       d.String(),
		MediaType:    string(mt),
		ConfigDigest: m.Config.Digest.String(),
		LayerCount:   len(m.Layers),
		Labels:       map[string]string{},
	}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if cf.Config.Labels != nil {
		p.Labels = cf.Config.Labels
	}
	created := cf.Created.Time.UTC()
	p.Created = &created
	seen := map[v1.Hash]bool{}
	nonEmpty := []v1.History{}
	for _, h := range cf.History {
		if !h.EmptyLayer {
			nonEmpty = append(nonEmpty, h)
		}
	}
	for i, l := range m.Layers {
		if !seen[l.Digest] {
			p.DownloadSize += l.Size
			seen[l.Digest] = true
		}
		layer := analysis.Layer{Digest: l.Digest.String(), DiffID: cf.RootFS.DiffIDs[i].String(), Size: l.Size, MediaType: string(l.MediaType)}
		if i < len(commands) {
			layer.CreatedBy = commands[i]
			c := nonEmpty[i].Created.Time.UTC()
			layer.Created = &c
		}
		p.Layers = append(p.Layers, layer)
	}
	return p
}

var ignoreDerived = cmp.Options{
	cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "Metadata" || s == "DiffIDs" || s == "Annotations"
	}, cmp.Ignore()),
}

func TestSinglePlatformImages(t *testing.T) {
	reg := newTestRegistry(t)
	for _, tc := range []struct {
		name string
		spec imageSpec
	}{
		{"docker schema 2", imageSpec{layers: 3}},
		{"oci manifest", imageSpec{layers: 2, oci: true}},
		{"arm variant", imageSpec{layers: 1, os: "linux", arch: "arm", variant: "v7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.spec.build(t)
			tag := strings.ReplaceAll(tc.name, " ", "-")
			push(t, reg.Host+"/acme/single:"+tag, img)
			_, in := newInspector(t, registry.Options{})
			rep, err := inspect(t, in, reg.ref(t, "acme/single:"+tag))
			if err != nil {
				t.Fatal(err)
			}
			if want := must(img.Digest()).String(); rep.Digest != want {
				t.Errorf("digest = %s, want %s", rep.Digest, want)
			}
			if want := string(must(img.MediaType())); rep.MediaType != want {
				t.Errorf("mediaType = %s, want %s", rep.MediaType, want)
			}
			if len(rep.Platforms) != 1 {
				t.Fatalf("got %d platforms, want 1", len(rep.Platforms))
			}
			platform := "linux/amd64"
			if tc.spec.os != "" {
				platform = tc.spec.os + "/" + tc.spec.arch
				if tc.spec.variant != "" {
					platform += "/" + tc.spec.variant
				}
			}
			var commands []string
			for i := 0; i < tc.spec.layers; i++ {
				commands = append(commands, "RUN step "+string(rune('a'+i)))
			}
			want := expectedPlatform(t, img, platform, commands)
			if diff := cmp.Diff(want, rep.Platforms[0], ignoreDerived); diff != "" {
				t.Errorf("platform (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHistoryWithEmptyLayers(t *testing.T) {
	reg := newTestRegistry(t)
	at := func(m int) v1.Time { return v1.Time{Time: time.Date(2026, 1, 2, 3, m, 0, 0, time.UTC)} }
	history := []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) ADD file:abc in /", Created: at(1)},
		{CreatedBy: `/bin/sh -c #(nop)  CMD ["sh"]`, Created: at(2), EmptyLayer: true},
		{CreatedBy: "/bin/sh -c #(nop)  ENV PATH=/usr/bin", Created: at(3), EmptyLayer: true},
		{CreatedBy: "/bin/sh -c apt-get install -y curl", Created: at(4)},
		{CreatedBy: "LABEL a=b", Created: at(5), EmptyLayer: true},
		{CreatedBy: "COPY app /app", Created: at(6)},
		{CreatedBy: `ENTRYPOINT ["/app"]`, Created: at(7), EmptyLayer: true},
	}
	img := imageSpec{layers: 3, history: history}.build(t)
	push(t, reg.Host+"/acme/hist:1", img)
	_, in := newInspector(t, registry.Options{})
	rep := must(inspect(t, in, reg.ref(t, "acme/hist:1")))
	want := expectedPlatform(t, img, "linux/amd64", []string{
		"/bin/sh -c #(nop) ADD file:abc in /",
		"/bin/sh -c apt-get install -y curl",
		"COPY app /app",
	})
	if diff := cmp.Diff(want, rep.Platforms[0], ignoreDerived); diff != "" {
		t.Errorf("platform (-want +got):\n%s", diff)
	}
}

func TestHistoryThatDoesNotLineUp(t *testing.T) {
	reg := newTestRegistry(t)
	for _, tc := range []struct {
		name    string
		history []v1.History
		want    []string
	}{
		{"no history", []v1.History{}, []string{"", "", ""}},
		{"too short", []v1.History{{CreatedBy: "ADD a"}}, []string{"ADD a", "", ""}},
		{"all empty", []v1.History{{CreatedBy: "ENV a", EmptyLayer: true}}, []string{"", "", ""}},
		{"too long", []v1.History{{CreatedBy: "1"}, {CreatedBy: "2"}, {CreatedBy: "3"}, {CreatedBy: "4"}}, []string{"1", "2", "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := imageSpec{layers: 3, history: tc.history}.build(t)
			tag := strings.ReplaceAll(tc.name, " ", "-")
			push(t, reg.Host+"/acme/odd:"+tag, img)
			_, in := newInspector(t, registry.Options{})
			rep := must(inspect(t, in, reg.ref(t, "acme/odd:"+tag)))
			var got []string
			for _, l := range rep.Platforms[0].Layers {
				got = append(got, l.CreatedBy)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("createdBy (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMultiPlatformIndex(t *testing.T) {
	for _, oci := range []bool{false, true} {
		name := "docker manifest list"
		if oci {
			name = "oci index"
		}
		t.Run(name, func(t *testing.T) {
			reg := newTestRegistry(t)
			amd := imageSpec{layers: 2, os: "linux", arch: "amd64", oci: oci}.build(t)
			arm := imageSpec{layers: 3, os: "linux", arch: "arm64", variant: "v8", oci: oci}.build(t)
			att := imageSpec{layers: 1, os: "unknown", arch: "unknown", oci: true}.build(t)
			base := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
			if oci {
				base = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
			}
			// arm64 first, to check that linux/amd64 is still listed first.
			idx := mutate.AppendManifests(base,
				mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
				mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
				mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
					Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
					Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": must(amd.Digest()).String()},
				}},
			)
			pushIndex(t, reg.Host+"/acme/multi:1", idx)
			_, in := newInspector(t, registry.Options{})
			rep := must(inspect(t, in, reg.ref(t, "acme/multi:1")))
			if want := must(idx.Digest()).String(); rep.Digest != want {
				t.Errorf("digest = %s, want %s", rep.Digest, want)
			}
			if want := string(must(idx.MediaType())); rep.MediaType != want {
				t.Errorf("mediaType = %s, want %s", rep.MediaType, want)
			}
			cmds := []string{"RUN step a", "RUN step b", "RUN step c"}
			want := []analysis.Platform{
				expectedPlatform(t, amd, "linux/amd64", cmds[:2]),
				expectedPlatform(t, arm, "linux/arm64/v8", cmds),
			}
			if diff := cmp.Diff(want, rep.Platforms, ignoreDerived); diff != "" {
				t.Errorf("platforms (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMetadataPrecedence(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageSpec{
		layers: 1, oci: true,
		labels: map[string]string{
			"org.opencontainers.image.version":  "from-oci-label",
			"org.label-schema.version":          "from-label-schema",
			"org.opencontainers.image.revision": "abc1234",
			"org.label-schema.vcs-ref":          "ignored",
			"org.label-schema.vcs-url":          "https://github.com/acme/app",
			"org.label-schema.license":          "MIT",
			"org.label-schema.name":             "app",
			"org.label-schema.build-date":       "2026-11-20T10:00:00Z",
			"org.label-schema.usage":            "https://acme.example/docs",
			"org.label-schema.description":      "an app",
			"org.label-schema.url":              "https://acme.example",
			"org.label-schema.vendor":           "Acme",
		},
		annotations: map[string]string{
			"org.opencontainers.image.licenses": "Apache-2.0",
			"org.opencontainers.image.title":    "App from annotation",
		},
	}.build(t)
	push(t, reg.Host+"/acme/meta:1", img)
	_, in := newInspector(t, registry.Options{})
	rep := must(inspect(t, in, reg.ref(t, "acme/meta:1")))
	want := analysis.Metadata{
		Version: "from-oci-label", Revision: "abc1234", Source: "https://github.com/acme/app",
		Licenses: "Apache-2.0", Title: "App from annotation", Description: "an app",
		URL: "https://acme.example", Vendor: "Acme", Created: "2026-11-20T10:00:00Z",
		Documentation: "https://acme.example/docs",
	}
	if diff := cmp.Diff(want, rep.Platforms[0].Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

func TestRepeatedLayerCountedOnceInDownloadSize(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageSpec{layers: 1}.build(t)
	layers := must(img.Layers())
	img, err := mutate.AppendLayers(img, layers[0])
	if err != nil {
		t.Fatal(err)
	}
	push(t, reg.Host+"/acme/dup:1", img)
	_, in := newInspector(t, registry.Options{})
	rep := must(inspect(t, in, reg.ref(t, "acme/dup:1")))
	p := rep.Platforms[0]
	size := must(layers[0].Size())
	if p.LayerCount != 2 || p.DownloadSize != size {
		t.Errorf("layerCount=%d downloadSize=%d, want 2 and %d", p.LayerCount, p.DownloadSize, size)
	}
}

func TestErrors(t *testing.T) {
	reg := newTestRegistry(t)
	push(t, reg.Host+"/acme/app:1", imageSpec{layers: 1}.build(t))
	_, in := newInspector(t, registry.Options{Timeout: 5 * time.Second})
	for _, tc := range []struct {
		ref  string
		kind error
	}{
		{"acme/app:nope", analysis.ErrNotFound},
		{"acme/nothing:1", analysis.ErrNotFound},
		{"acme/app@sha256:" + strings.Repeat("0", 64), analysis.ErrNotFound},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := inspect(t, in, reg.ref(t, tc.ref))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
		})
	}
	_ = context.Background()
}
