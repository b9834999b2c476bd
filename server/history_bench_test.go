package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// BenchmarkHistory10000 serves the history of a tag that moved 10,000
// times: the first page and a page deep in the history, as the JSON API and
// as the HTML page, each one index range read (the server time of one
// request, without the network).
func BenchmarkHistory10000(b *testing.B) {
	s := stack.New(b, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	repo := analysis.Repository{Registry: "registry.example", Name: "acme/app"}
	const moves = 10_000
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	digest := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	prev := ""
	var middle int64
	for batch := 0; batch < moves/1000; batch++ {
		records := make([]store.TagRecord, 1000)
		for j := range records {
			i := batch*1000 + j
			records[j] = store.TagRecord{Repo: repo, Tag: "latest", Previous: prev, To: analysis.Descriptor{Digest: digest(i), MediaType: "m"},
				At: at.Add(time.Duration(i) * time.Minute)}
			prev = digest(i)
		}
		if _, err := s.Store.RecordTags(b.Context(), records); err != nil {
			b.Fatal(err)
		}
	}
	changes, _, err := s.Store.History(b.Context(), store.HistoryQuery{Repo: repo, Tag: "latest", Limit: 1})
	if err != nil || len(changes) != 1 {
		b.Fatalf("history: %d changes, %v", len(changes), err)
	}
	// Changes are numbered in order: the cursor of the 5,000th newest.
	middle = changes[0].ID - moves/2
	for _, tc := range []struct{ name, path string }{
		{"api first page", "/api/v1/repositories/registry.example/acme/app/history?tag=latest"},
		{"api deep page", "/api/v1/repositories/registry.example/acme/app/history?tag=latest&before=" + strconv.FormatInt(middle, 10)},
		{"api 500 per page", "/api/v1/repositories/registry.example/acme/app/history?limit=500"},
		{"page first", "/repositories/registry.example/acme/app/history?tag=latest"},
		{"page deep", "/repositories/registry.example/acme/app/history?tag=latest&before=" + strconv.FormatInt(middle, 10)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %s", tc.path, rec.Code, rec.Body)
				}
			}
		})
	}
}
