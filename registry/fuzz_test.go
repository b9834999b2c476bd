package registry_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
)

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
		content := registry.NewMemoryContent()
		client, err := registry.New(registry.Options{Transport: refuseAll{}})
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
		repo := analysis.Repository{Registry: "registry.invalid", Name: "fuzz/app"}
		rep, err := registry.NewInspector(client, content).Report(ctx, repo, digestOf(top))
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
