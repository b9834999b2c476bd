package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/registry"
)

// TestListingEnds: a tag list whose Link repeats a page already asked for
// (the same URL, the same URL written another way, the same `last`) or
// leaves the registry (another host or port, another scheme, a path outside
// the repository's tag list) ends the listing after the page that carried
// it: that page's tags are kept, the listing says it is not complete and
// why, the link is never dialled, and no page is asked for twice. A
// self-linking list therefore costs one request, and makes no repeat.
func TestListingEnds(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		fmt.Fprint(w, `{"name": "acme/app", "tags": ["stolen"]}`)
	}))
	defer other.Close()
	const list = "/v2/acme/app/tags/list"
	page := func(link string, times int, tags ...string) faultreg.Rule {
		return faultreg.Rule{Method: http.MethodGet, PathContains: list, Fault: faultreg.TagPage, Tags: tags, Link: link, Times: times}
	}
	for _, tc := range []struct {
		name     string
		pages    func(host string) []faultreg.Rule
		tags     []string
		requests int
		stopped  string // "" for a complete listing
	}{
		{"two good pages", func(string) []faultreg.Rule {
			return []faultreg.Rule{page(`<`+list+`?last=b&n=1000>; rel="next"`, 1, "a", "b"), page("", 0, "c")}
		}, []string{"a", "b", "c"}, 2, ""},
		{"a page linking itself", func(string) []faultreg.Rule {
			return []faultreg.Rule{page(`<`+list+`?n=1000>; rel="next"`, 0, "a", "b")}
		}, []string{"a", "b"}, 1, "repeats"},
		{"a page linking itself by its full URL, query reordered", func(host string) []faultreg.Rule {
			return []faultreg.Rule{page(`<`+list+`?last=b&n=1000>; rel="next"`, 1, "a", "b"),
				page(`<http://`+host+list+`?n=1000&last=b>; rel="next"`, 0, "c")}
		}, []string{"a", "b", "c"}, 2, "repeats"},
		{"the same last again", func(string) []faultreg.Rule {
			return []faultreg.Rule{page(`<`+list+`?last=b&n=1000>; rel="next"`, 1, "a", "b"),
				page(`<`+list+`?last=b&n=2>; rel="next"`, 0, "c")}
		}, []string{"a", "b", "c"}, 2, "repeats"},
		{"a cycle back to the first page", func(string) []faultreg.Rule {
			return []faultreg.Rule{page(`<`+list+`?last=b&n=1000>; rel="next"`, 1, "a", "b"),
				page(`<`+list+`?n=1000>; rel="next"`, 0, "c")}
		}, []string{"a", "b", "c"}, 2, "repeats"},
		{"another port", func(string) []faultreg.Rule {
			return []faultreg.Rule{page(`<`+other.URL+list+`?last=b>; rel="next"`, 0, "a", "b")}
		}, []string{"a", "b"}, 1, "leaves the registry"},
		{"another scheme", func(host string) []faultreg.Rule {
			return []faultreg.Rule{page(`<https://`+host+list+`?last=b>; rel="next"`, 0, "a", "b")}
		}, []string{"a", "b"}, 1, "leaves the registry"},
		{"another repository", func(string) []faultreg.Rule {
			return []faultreg.Rule{page(`</v2/acme/other/tags/list?last=b>; rel="next"`, 0, "a", "b")}
		}, []string{"a", "b"}, 1, "not this repository's tag list"},
		{"a path outside the API", func(string) []faultreg.Rule {
			return []faultreg.Rule{page(`<`+list+`/../../../../admin?last=b>; rel="next"`, 0, "a", "b")}
		}, []string{"a", "b"}, 1, "not this repository's tag list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			reg.Add(tc.pages(reg.Host)...)
			client, _ := newInspector(t, registry.Options{Timeout: 5 * time.Second})
			got, err := client.List(context.Background(), reg.ref(t, "acme/app:1").Repository)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Tags, tc.tags) {
				t.Errorf("tags = %q, want %q", got.Tags, tc.tags)
			}
			if asked := reg.Peek(list); len(asked) != tc.requests {
				t.Errorf("%d pages asked, want %d", len(asked), tc.requests)
			}
			if tc.stopped == "" {
				if !got.Complete || got.Stopped != "" {
					t.Errorf("complete=%v stopped=%q, want complete", got.Complete, got.Stopped)
				}
			} else if got.Complete || !strings.Contains(got.Stopped, tc.stopped) {
				t.Errorf("complete=%v stopped=%q, want not complete, stopped saying %q", got.Complete, got.Stopped, tc.stopped)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other server was asked %d times", n)
	}
}

// TestListingStopsAtTheTagLimit: a registry listing more than
// MaxListedTags tags is read up to the limit and no further; the listing
// says it is not complete.
func TestListingStopsAtTheTagLimit(t *testing.T) {
	reg := newTestRegistry(t)
	const list = "/v2/acme/app/tags/list"
	pages := registry.MaxListedTags/1000 + 2
	for p := range pages {
		tags := make([]string, 1000)
		for i := range tags {
			tags[i] = fmt.Sprintf("t%02d-%04d", p, i)
		}
		reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: list, Fault: faultreg.TagPage, Times: 1, Tags: tags,
			Link: fmt.Sprintf(`<%s?last=%s&n=1000>; rel="next"`, list, tags[999])})
	}
	client, _ := newInspector(t, registry.Options{Timeout: 5 * time.Second})
	got, err := client.List(context.Background(), reg.ref(t, "acme/app:1").Repository)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != registry.MaxListedTags || got.Complete || !strings.Contains(got.Stopped, "more than") {
		t.Errorf("%d tags, complete=%v, stopped=%q; want %d, not complete", len(got.Tags), got.Complete, got.Stopped, registry.MaxListedTags)
	}
	if asked := reg.Peek(list); len(asked) != registry.MaxListedTags/1000 {
		t.Errorf("%d pages asked, want %d", len(asked), registry.MaxListedTags/1000)
	}
}

// TestListingStopsAtThePageLimit: a registry that links a new page after
// every one of a tag each is read for 200 pages and no more; one that
// sends an empty page with a link is read no further.
func TestListingStopsAtThePageLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perPage  int
		requests int
		stopped  string
	}{
		{"a tag a page", 1, 200, "200 pages"},
		{"empty pages", 0, 1, "empty page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return
				}
				n := asked.Add(1)
				if n > 1000 {
					http.Error(w, "the test's bound", http.StatusInternalServerError)
					return
				}
				tags := []string{}
				if tc.perPage > 0 {
					tags = append(tags, fmt.Sprintf("t%04d", n))
				}
				w.Header().Set("Link", fmt.Sprintf(`</v2/acme/app/tags/list?last=t%04d&n=1000>; rel="next"`, n))
				fmt.Fprintf(w, `{"name": "acme/app", "tags": %q}`, tags)
			}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			client, _ := newInspector(t, registry.Options{Timeout: 5 * time.Second})
			repo, err := analysis.ParseRepository(host + "/acme/app")
			if err != nil {
				t.Fatal(err)
			}
			got, err := client.List(context.Background(), repo)
			if err != nil {
				t.Fatal(err)
			}
			if n := int(asked.Load()); n != tc.requests || len(got.Tags) != tc.requests*tc.perPage {
				t.Errorf("%d pages asked, %d tags; want %d and %d", n, len(got.Tags), tc.requests, tc.requests*tc.perPage)
			}
			if got.Complete || !strings.Contains(got.Stopped, tc.stopped) {
				t.Errorf("complete=%v stopped=%q, want not complete, saying %q", got.Complete, got.Stopped, tc.stopped)
			}
		})
	}
}

// TestListingOfDistribution: the CNCF distribution registry (2.8, which
// answers a tag list in one page, whatever n asks) is listed in one
// request, complete, with the tags crane lists.
func TestListingOfDistribution(t *testing.T) {
	ctx := context.Background()
	d, err := distreg.Start(ctx, distreg.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	addr, counts, stop, err := distreg.MeteredProxy(d.Addr, 0, func(r *http.Request) string { return r.Method + " " + r.URL.Path })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	push(t, d.Addr+"/acme/app:a", imageSpec{layers: 1}.build(t))
	for _, tag := range []string{"b", "c", "d", "e"} {
		if err := crane.Tag(d.Addr+"/acme/app:a", tag, crane.WithAuth(authn.Anonymous)); err != nil {
			t.Fatal(err)
		}
	}
	want, err := crane.ListTags(d.Addr+"/acme/app", crane.WithAuth(authn.Anonymous))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	client, _ := newInspector(t, registry.Options{Timeout: 5 * time.Second})
	repo, err := analysis.ParseRepository(addr + "/acme/app")
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.List(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Tags, want) || len(want) != 5 || !got.Complete || got.Stopped != "" {
		t.Errorf("listing %+v, want %q, complete", got, want)
	}
	if n := counts()["GET /v2/acme/app/tags/list"]; n != 1 {
		t.Errorf("%d pages asked, want 1", n)
	}
}
