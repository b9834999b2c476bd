package images_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/store"
)

func digestOf(b []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
}

// storeLargestIndex puts into st the largest image the limits allow: an
// index of analysis.MaxPlatforms platform images (each with an attestation
// manifest beside it, analysis.MaxIndexManifests entries in all), each of
// analysis.MaxLayers layers whose history holds a 120-byte command, with a
// config of its own. It returns the index's digest.
func storeLargestIndex(tb testing.TB, st *store.Store) string {
	tb.Helper()
	ctx := context.Background()
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	created := v1.Time{Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	for p := range analysis.MaxPlatforms {
		cfg := v1.ConfigFile{OS: "linux", Architecture: fmt.Sprintf("arch%02d", p), Created: created,
			Config: v1.Config{Labels: map[string]string{"org.opencontainers.image.version": "1.0.0", "org.opencontainers.image.source": "https://example.test/acme/app"}}}
		m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
		for l := range analysis.MaxLayers {
			layer := []byte(fmt.Sprintf("platform %d layer %d", p, l))
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digestOf(append(layer, 'u')))
			cfg.History = append(cfg.History, v1.History{Created: created,
				CreatedBy: fmt.Sprintf("RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends package-%03d-%03d && rm -rf /var/lib/apt/lists/*", p, l)})
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer, Size: 1 << 20, Digest: digestOf(layer)})
		}
		cfg.RootFS.Type = "layers"
		cb, err := json.Marshal(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cb)), Digest: digestOf(cb)}
		mb, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		if err := st.PutConfig(ctx, m.Config.Digest.String(), cb); err != nil {
			tb.Fatal(err)
		}
		md := digestOf(mb)
		if err := st.PutManifest(ctx, md.String(), string(m.MediaType), mb); err != nil {
			tb.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests,
			v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(mb)), Digest: md, Platform: &v1.Platform{OS: "linux", Architecture: cfg.Architecture}},
			v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(mb)), Digest: md, Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": md.String()}})
	}
	ib, err := json.Marshal(idx)
	if err != nil {
		tb.Fatal(err)
	}
	d := digestOf(ib).String()
	if err := st.PutManifest(ctx, d, string(idx.MediaType), ib); err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkCachedReportsHeap reads the largest image the limits allow
// under 16 repository names (16 reports and answers to keep, as an
// attacker varying names would make) and reports the live heap it leaves
// after a collection, beside the caches' estimate of one report. With the
// default bounds ("bytes") the report and answer caches hold at most
// DefaultCacheBytes each, so the heap left stays under their sum; with a
// bound in entries alone ("entries") it grows with every name.
func BenchmarkCachedReportsHeap(b *testing.B) {
	reg := faultreg.Start(b)
	st := stack.OpenStore(b, stack.SQLite)
	digest := storeLargestIndex(b, st)
	for _, tc := range []struct {
		name  string
		opts  images.Options
		bound float64 // MiB; 0 for none
	}{
		{"bytes", images.Options{}, float64(2*images.DefaultCacheBytes) / (1 << 20)},
		{"entries", images.Options{ReportCacheBytes: 1 << 40, AnswerCacheBytes: 1 << 40}, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var live, one float64
			var cost int64
			for b.Loop() {
				svc := stack.New(b, stack.Options{Store: st, Images: tc.opts}).Images
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for i := range 16 {
					ref, err := analysis.ParseReference(fmt.Sprintf("%s/acme/app%02d@%s", reg.Host, i, digest))
					if err != nil {
						b.Fatal(err)
					}
					a, err := svc.Read(context.Background(), auth.Viewer{}, ref, images.ReadOptions{})
					if err != nil {
						b.Fatal(err)
					}
					if n := len(a.Report.Platforms); n != analysis.MaxPlatforms || len(a.Report.Platforms[0].Layers) != analysis.MaxLayers {
						b.Fatalf("%d platforms of %d layers, want %d of %d", n, len(a.Report.Platforms[0].Layers), analysis.MaxPlatforms, analysis.MaxLayers)
					}
					if i == 0 {
						shared, err := svc.Report(context.Background(), ref.Repository, digest)
						if err != nil {
							b.Fatal(err)
						}
						cost = images.ReportCost(shared)
						runtime.GC()
						var m runtime.MemStats
						runtime.ReadMemStats(&m)
						one = float64(int64(m.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				live = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
				reports, answers, rb, ab := svc.Cached()
				b.Logf("kept %d reports (%d MiB estimated) and %d answers (%d MiB estimated)", reports, rb>>20, answers, ab>>20)
				runtime.KeepAlive(svc)
			}
			b.ReportMetric(one, "oneReadHeapMiB")
			b.ReportMetric(float64(cost)/(1<<20), "reportCostMiB")
			b.ReportMetric(live, "liveHeapAfter16MiB")
			if tc.bound > 0 && live > tc.bound {
				b.Errorf("live heap after 16 reads %.0f MiB, over the caches' %.0f MiB", live, tc.bound)
			}
		})
	}
}
