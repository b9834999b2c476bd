package analysis_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"imagebadger/analysis"
)

// FuzzParseReference: any text either parses to a reference whose canonical
// form parses back to itself, or fails with ErrInvalidReference; never a panic.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"python", "library/python:3.12-slim", "ghcr.io/acme/app:1.2", "127.0.0.1:5000/acme/app@sha256:" + fmt.Sprintf("%064x", 1),
		"localhost:5000/a/b/c:tag@sha256:" + fmt.Sprintf("%064x", 2), "UPPER/case", "a:b:c", "", "@", "x/../y", "[::1]:5000/r:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := analysis.ParseReference(s)
		if err != nil {
			if !errors.Is(err, analysis.ErrInvalidReference) {
				t.Fatalf("ParseReference(%q) error %v is not ErrInvalidReference", s, err)
			}
			return
		}
		again, err := analysis.ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, but its String %q parses to %+v, %v", s, ref, ref.String(), again, err)
		}
	})
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// FuzzReport builds reports from arbitrary manifests, indexes and configs
// (stored in advance, so no registry is asked): it must never panic, and
// every failure must carry one of the package's kinds.
func FuzzReport(f *testing.F) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"org.label-schema.version":"1"}},` +
		`"rootfs":{"type":"layers","diff_ids":["sha256:` + fmt.Sprintf("%064x", 9) + `"]},` +
		`"history":[{"created_by":"ADD x /"},{"created_by":"CMD sh","empty_layer":true}]}`)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":` + fmt.Sprint(len(cfg)) + `,"digest":"` + digestOf(cfg) + `"},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":10,"digest":"sha256:` + fmt.Sprintf("%064x", 3) + `"}]}`)
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":` + fmt.Sprint(len(manifest)) + `,"digest":"` + digestOf(manifest) + `","platform":{"os":"linux","architecture":"amd64"}},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:` + fmt.Sprintf("%064x", 4) + `","platform":{"os":"unknown","architecture":"unknown"}}]}`)
	f.Add(manifest, cfg, false)
	f.Add(index, cfg, true)
	f.Add([]byte(`{"schemaVersion":2,"config":{"size":-1,"digest":"sha256:x"},"layers":null}`), []byte(`{"history":[{"empty_layer":true}]}`), false)
	f.Add([]byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json"}]}`), []byte(`null`), true)
	f.Add([]byte(`[]`), []byte(`{"rootfs":{"diff_ids":["a","b","c"]}}`), false)
	f.Fuzz(func(t *testing.T, top, config []byte, isIndex bool) {
		ctx := context.Background()
		content := analysis.NewMemoryContent()
		client, err := analysis.NewClient(analysis.ClientOptions{Transport: refuseAll{}})
		if err != nil {
			t.Fatal(err)
		}
		mt := "application/vnd.oci.image.manifest.v1+json"
		if isIndex {
			mt = "application/vnd.oci.image.index.v1+json"
			// The index's children: the seed manifest, stored under its digest.
			content.PutManifest(ctx, digestOf(manifest), "application/vnd.oci.image.manifest.v1+json", manifest)
		}
		content.PutManifest(ctx, digestOf(top), mt, top)
		// The config is stored under every digest a manifest could name for it.
		content.PutConfig(ctx, digestOf(config), config)
		content.PutConfig(ctx, digestOf(cfg), config)
		ref := analysis.Reference{Repository: analysis.Repository{Registry: "registry.invalid", Name: "fuzz/app"}, Tag: "1"}
		rep, err := analysis.NewInspector(client, content).Report(ctx, ref, analysis.Descriptor{Digest: digestOf(top), MediaType: mt}, nil)
		if err != nil {
			var kinds = []error{analysis.ErrUpstream, analysis.ErrNotFound, analysis.ErrTimeout, analysis.ErrForbidden, analysis.ErrInvalidReference, analysis.ErrUnauthorized, analysis.ErrRateLimited}
			for _, k := range kinds {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("error without a kind: %v", err)
		}
		for _, p := range rep.Platforms {
			if len(p.Layers) != p.LayerCount || p.DownloadSize < 0 && p.LayerCount == 0 {
				t.Fatalf("platform %s: %d layers listed, layerCount %d", p.Platform, len(p.Layers), p.LayerCount)
			}
		}
	})
}

// refuseAll is a transport that never reaches the network: fuzzed content
// must be answered from what was stored, or fail cleanly.
type refuseAll struct{}

func (refuseAll) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("fuzz: no network")
}
