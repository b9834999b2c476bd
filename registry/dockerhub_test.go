package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/hubapi"
	"github.com/imagebadger/imagebadger/registry"
)

func hubDigest(i int) string { return fmt.Sprintf("sha256:%064x", i) }

// hubRepo is a repository of n tags over four images, two of them
// multi-platform, as the double serves them.
func hubRepo(n int) hubapi.Repository {
	pushed := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	r := hubapi.Repository{Description: "A small base image", Stars: 42, Pulls: 1_234_567, LastUpdated: pushed}
	for i := range n {
		img := i % 4
		t := hubapi.Tag{Name: fmt.Sprintf("v%d", i), Digest: hubDigest(img + 1), LastUpdated: pushed, LastPushed: pushed}
		t.Images = []hubapi.Image{{Digest: hubDigest(100 + img), OS: "linux", Architecture: "amd64"}}
		if img < 2 {
			t.Images = append(t.Images, hubapi.Image{Digest: hubDigest(200 + img), OS: "linux", Architecture: "arm64", Variant: "v8"},
				hubapi.Image{Digest: hubDigest(300 + img), OS: "unknown", Architecture: "unknown"})
		}
		r.Tags = append(r.Tags, t)
	}
	return r
}

func newHub(t *testing.T, base string) *registry.Hub {
	t.Helper()
	h, err := registry.NewHub(registry.HubOptions{BaseURL: base, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var library = analysis.Repository{Registry: analysis.DockerHub, Name: "library/alpine"}

func TestHubListsTagsWithDigestsAHundredARequest(t *testing.T) {
	d := hubapi.Start()
	defer d.Close()
	d.Put("library/alpine", hubRepo(1000))
	listing, err := newHub(t, d.URL).Tags(context.Background(), library)
	if err != nil {
		t.Fatal(err)
	}
	tags := listing.Tags
	if !listing.Complete || listing.Stopped != "" {
		t.Errorf("listing complete=%v stopped=%q, want complete", listing.Complete, listing.Stopped)
	}
	if len(tags) != 1000 {
		t.Fatalf("%d tags, want 1000", len(tags))
	}
	if _, pages := d.Requests(); pages != 10 {
		t.Errorf("%d tag pages asked, want 10 (100 a request)", pages)
	}
	got := tags[5] // v5: image 1, multi-platform
	if got.Name != "v5" || got.Digest != hubDigest(2) || len(got.Images) != 3 ||
		got.Images[1] != (registry.HubImage{Digest: hubDigest(201), OS: "linux", Architecture: "arm64", Variant: "v8"}) {
		t.Errorf("tag v5 = %+v", got)
	}
	if !got.LastPushed.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("tag_last_pushed read as %s", got.LastPushed)
	}
}

func TestHubRepositoryFacts(t *testing.T) {
	d := hubapi.Start()
	defer d.Close()
	d.Put("library/alpine", hubRepo(1))
	info, err := newHub(t, d.URL).Repository(context.Background(), library)
	if err != nil {
		t.Fatal(err)
	}
	if info.Source != "dockerhub" || info.Description != "A small base image" || info.StarCount != 42 || info.PullCount != 1_234_567 ||
		info.LastUpdated == nil || !info.LastUpdated.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("facts = %+v", info)
	}
	if _, err := newHub(t, d.URL).Repository(context.Background(), analysis.Repository{Registry: analysis.DockerHub, Name: "acme/none"}); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("unknown repository: err = %v, want not found", err)
	}
}

func TestHubFailures(t *testing.T) {
	t.Run("429 pauses the API", func(t *testing.T) {
		d := hubapi.Start()
		defer d.Close()
		d.Put("library/alpine", hubRepo(10))
		d.TooManyRequests(1)
		h := newHub(t, d.URL)
		_, err := h.Tags(context.Background(), library)
		var ae *analysis.Error
		if !errors.Is(err, analysis.ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter <= 0 {
			t.Fatalf("err = %v, want rate limited with a wait", err)
		}
		// Asked again at once: answered from the pause, without a request.
		_, before := d.Requests()
		if _, err := h.Tags(context.Background(), library); !errors.Is(err, analysis.ErrRateLimited) {
			t.Errorf("during the pause: err = %v, want rate limited", err)
		}
		if _, after := d.Requests(); after != before {
			t.Errorf("%d requests sent during the pause", after-before)
		}
	})
	t.Run("malformed page", func(t *testing.T) {
		d := hubapi.Start()
		defer d.Close()
		d.Put("library/alpine", hubRepo(250))
		d.MalformPage(2)
		_, err := newHub(t, d.URL).Tags(context.Background(), library)
		if !errors.Is(err, analysis.ErrUpstream) {
			t.Fatalf("err = %v, want registry error", err)
		}
	})
	t.Run("next link to another host ends the listing after its page", func(t *testing.T) {
		var elsewhere atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
		defer other.Close()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"count": 2, "next": "`+other.URL+`/v2/x?page=2", "results": [{"name": "1", "digest": "`+hubDigest(1)+`", "images": []}]}`)
		}))
		defer srv.Close()
		listing, err := newHub(t, srv.URL).Tags(context.Background(), library)
		if err != nil {
			t.Fatal(err)
		}
		if listing.Complete || !strings.Contains(listing.Stopped, "leaves") || len(listing.Tags) != 1 || listing.Tags[0].Name != "1" {
			t.Fatalf("listing = %+v, want the first page's tag, not complete, stopped as leaving the API", listing)
		}
		if n := elsewhere.Load(); n != 0 {
			t.Errorf("the other host was asked %d times", n)
		}
	})
	t.Run("next link repeating a page ends the listing", func(t *testing.T) {
		var asked atomic.Int32
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := asked.Add(1)
			// Page 1 links page 2, which links back to page 1.
			next, name := srv.URL+"/v2/namespaces/library/repositories/alpine/tags?page=2", "1"
			if r.URL.Query().Get("page") == "2" {
				next, name = srv.URL+"/v2/namespaces/library/repositories/alpine/tags?page_size=100", "2"
			}
			if n > 10 {
				next = "" // bounds the test should the listing not end
			}
			fmt.Fprint(w, `{"count": 2, "next": "`+next+`", "results": [{"name": "`+name+`", "digest": "`+hubDigest(1)+`", "images": []}]}`)
		}))
		defer srv.Close()
		listing, err := newHub(t, srv.URL).Tags(context.Background(), library)
		if err != nil {
			t.Fatal(err)
		}
		if listing.Complete || !strings.Contains(listing.Stopped, "repeats") || len(listing.Tags) != 2 {
			t.Fatalf("listing = %+v, want both pages' tags, not complete, stopped as repeating", listing)
		}
		if n := asked.Load(); n != 2 {
			t.Errorf("%d pages asked, want 2 (none again)", n)
		}
	})
	t.Run("oversized answer", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"count": 1, "results": [], "pad": "`+strings.Repeat("x", 5<<20)+`"}`)
		}))
		defer srv.Close()
		_, err := newHub(t, srv.URL).Tags(context.Background(), library)
		if !errors.Is(err, analysis.ErrUpstream) || !strings.Contains(err.Error(), "larger") {
			t.Fatalf("err = %v, want a refusal of the oversized page", err)
		}
	})
}

// TestBudgetsFromRateLimitHeaders: Docker Hub's ratelimit-limit and
// ratelimit-remaining ("100;w=21600") are read from every answer, and a
// poll is refused once no more than 20% is left, while a read still goes.
func TestBudgetsFromRateLimitHeaders(t *testing.T) {
	p := newPoliteRegistry(t)
	remaining := 90
	p.answer = func(n int, w http.ResponseWriter) bool {
		w.Header().Set("ratelimit-limit", "100;w=21600")
		w.Header().Set("ratelimit-remaining", fmt.Sprintf("%d;w=21600", remaining))
		return false
	}
	c, _ := newInspector(t, registry.Options{})
	host := strings.TrimPrefix(p.URL, "http://")
	if _, _, err := c.Resolve(context.Background(), p.ref("1")); err != nil {
		t.Fatal(err)
	}
	b, ok := c.Budget(host)
	if !ok || b.Limit != 100 || b.Remaining != 90 || b.Window != 6*time.Hour || b.Low() {
		t.Fatalf("budget = %+v (known %v), want 90 of 100 per 6h", b, ok)
	}
	remaining = 20
	if _, _, err := c.Polling().Resolve(context.Background(), p.ref("2")); err != nil {
		t.Fatal(err)
	}
	if b, _ := c.Budget(host); !b.Low() {
		t.Fatalf("budget %+v not low at 20%%", b)
	}
	arrivals := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.arrivals)
	}
	before := arrivals()
	_, _, err := c.Polling().Resolve(context.Background(), p.ref("3"))
	if !errors.Is(err, analysis.ErrRateLimited) {
		t.Fatalf("poll at 20%%: err = %v, want rate limited", err)
	}
	if arrivals() != before {
		t.Errorf("the refused poll reached the registry")
	}
	if _, _, err := c.Resolve(context.Background(), p.ref("4")); err != nil {
		t.Errorf("a read at 20%%: %v, want it to go", err)
	}
}
