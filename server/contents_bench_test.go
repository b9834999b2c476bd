package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// BenchmarkContentsPage100000 measures the server's time to answer the
// contents page of an analysed image of 100,000 files (in 1,000
// directories under /usr/share, the root listed), through the whole route,
// and reports the page's weight with its stylesheet and script.
// Targets: at most 50 ms and 300 KB.
func BenchmarkContentsPage100000(b *testing.B) {
	s := stack.New(b, stack.Options{Registry: true, Server: &server.Options{}, Contents: &contents.Options{}})
	layer := tarLayer(b, 'x', "placeholder", 1)
	ref := s.Registry.Host + "/acme/big:1"
	nr, err := name.ParseReference(ref)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(nr, imageWith(b, layer)); err != nil {
		b.Fatal(err)
	}
	r, err := analysis.ParseReference(ref)
	if err != nil {
		b.Fatal(err)
	}
	a, err := s.Images.Read(context.Background(), auth.Viewer{}, r, images.ReadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p, _ := a.Report.Select("")
	ctx, now := context.Background(), time.Now()
	var entries []analysis.LayerEntry
	for d := range 1000 {
		for f := range 100 {
			entries = append(entries, analysis.LayerEntry{Path: fmt.Sprintf("usr/share/pkg%04d/file-%03d.dat", d, f), Type: analysis.TypeFile,
				Size: int64(1000 * (f + 1)), Mode: 0o644, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(fmt.Appendf(nil, "%d/%d", d, f)))})
		}
	}
	digest := p.Layers[0].Digest
	if ok, _, err := s.Store.ClaimLayerContents(ctx, digest, "bench", now, time.Minute); err != nil || !ok {
		b.Fatal(err)
	}
	if err := s.Store.FinishLayerContents(ctx, digest, "bench", store.LayerContentsInfo{Source: "stream"}, entries, now); err != nil {
		b.Fatal(err)
	}
	res := contents.Result{State: "done", Digest: p.Digest, FileCount: len(entries) + 1003, Efficiency: 1, Layers: []contents.LayerStats{{Digest: digest, Source: "stream"}}}
	for i := range 100 {
		res.Largest = append(res.Largest, contents.Largest{Path: entries[i].Path, Size: entries[i].Size})
		res.Wasted = append(res.Wasted, contents.Wasted{Path: entries[i].Path, Size: entries[i].Size, Copies: 2, Layers: []int{0}})
	}
	body, _ := json.Marshal(res)
	if _, err := s.Store.RequestImageContents(ctx, p.Digest, now); err != nil {
		b.Fatal(err)
	}
	if err := s.Store.SetImageContents(ctx, p.Digest, store.ContentsDone, "", "", body, now); err != nil {
		b.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d\n%s", path, rec.Code, rec.Body)
		}
		return rec
	}
	page := "/images/" + ref + "/contents"
	weight := get(page).Body.Len() + get("/static/style.css").Body.Len() + get("/static/app.js").Body.Len()
	for b.Loop() {
		get(page)
	}
	b.ReportMetric(float64(weight)/1000, "KB")
}
