package images_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/hubapi"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/registry"
)

// hubEnv is env whose registry stands in for docker.io, with the Docker Hub
// API double beside it.
type hubEnv struct {
	*env
	hub *hubapi.Server
}

func newHubEnv(t *testing.T) *hubEnv {
	t.Helper()
	e := newEnv(t)
	h := &hubEnv{env: e, hub: hubapi.Start()}
	t.Cleanup(h.hub.Close)
	hub, err := registry.NewHub(registry.HubOptions{BaseURL: h.hub.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = stack.New(t, stack.Options{Store: e.store, Endpoints: map[string]string{analysis.DockerHub: e.host},
		Images: images.Options{Hub: hub}}).Images
	return h
}

// serve makes the double list tags (tag → image) of library/base as Docker
// Hub would: each tag's digest, and the image as its one platform.
func (h *hubEnv) serve(tags map[string]v1.Image) {
	repo := hubapi.Repository{Description: "The base of everything", Stars: 12, Pulls: 3456789,
		LastUpdated: time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)}
	names := mapsKeys(tags)
	slices.Sort(names)
	for _, name := range names {
		d := must(tags[name].Digest()).String()
		repo.Tags = append(repo.Tags, hubapi.Tag{Name: name, Digest: d, LastPushed: repo.LastUpdated,
			Images: []hubapi.Image{{Digest: d, OS: "linux", Architecture: "amd64"}}})
	}
	h.hub.Put("library/base", repo)
}

func mapsKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func heads(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, "HEAD ") {
			n++
		}
	}
	return n
}

var base = analysis.Repository{Registry: analysis.DockerHub, Name: "library/base"}

func TestDockerHubListing(t *testing.T) {
	h := newHubEnv(t)
	a, b := layered(t, nil, 1, "linux/amd64"), layered(t, nil, 2, "linux/amd64")
	tags := map[string]v1.Image{"1": a, "2": b, "latest": b}
	for name, img := range tags {
		h.push("library/base:"+name, img)
	}
	h.serve(tags)
	h.reg.Requests()
	ctx := context.Background()

	list, err := h.svc.Tags(ctx, auth.Viewer{}, base, images.ReadOptions{Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, g := range list.Groups {
		got[g.Digest] = g.Tags
	}
	if !slices.Equal(got[must(a.Digest()).String()], []string{"1"}) || !slices.Equal(got[must(b.Digest()).String()], []string{"latest", "2"}) {
		t.Errorf("groups %v, want 1 → a, 2 and latest → b", got)
	}
	if n := heads(h.reg.Requests()); n != 0 {
		t.Errorf("the listing sent %d HEADs to the registry, want 0", n)
	}
	if _, pages := h.hub.Requests(); pages != 1 {
		t.Errorf("%d tag pages asked of Docker Hub, want 1", pages)
	}
	if c := slices.Concat(h.log.take(t)...); len(c) != 3 {
		t.Errorf("%d changes recorded for three new tags, want 3", len(c))
	}

	// The report carries Docker Hub's facts.
	ans, err := h.svc.Read(ctx, auth.Viewer{}, base.WithTag("1"), images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ri := ans.Report.RepositoryInfo
	if ri == nil || ri.Source != "dockerhub" || ri.Description != "The base of everything" || ri.StarCount != 12 || ri.PullCount != 3456789 ||
		ri.LastUpdated == nil || !ri.LastUpdated.Equal(time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)) {
		t.Errorf("repositoryInfo = %+v", ri)
	}

	// A push moves tag 2: the next listing records one move, one change.
	c := layered(t, nil, 3, "linux/amd64")
	h.push("library/base:2", c)
	tags["2"] = c
	h.serve(tags)
	if _, err := h.svc.Tags(ctx, auth.Viewer{}, base, images.ReadOptions{Refresh: true}); err != nil {
		t.Fatal(err)
	}
	if ch := slices.Concat(h.log.take(t)...); len(ch) != 1 || ch[0].Tag != "2" || ch[0].Digest != must(c.Digest()).String() {
		t.Errorf("changes after moving tag 2: %+v, want one for tag 2", ch)
	}
	if _, err := h.svc.Tags(ctx, auth.Viewer{}, base, images.ReadOptions{Refresh: true}); err != nil {
		t.Fatal(err)
	}
	if ch := slices.Concat(h.log.take(t)...); len(ch) != 0 {
		t.Errorf("listing again without a push recorded %d changes", len(ch))
	}
}

// TestDockerHubFallsBackAndYieldsToTheRegistry: when the web API answers
// 429 or a malformed page, the listing comes from the registry (HEADs); a
// refresh of a tag asks the registry even when Docker Hub says otherwise.
func TestDockerHubFallsBackAndYieldsToTheRegistry(t *testing.T) {
	for _, fail := range []string{"429", "malformed"} {
		t.Run(fail, func(t *testing.T) {
			h := newHubEnv(t)
			a := layered(t, nil, 1, "linux/amd64")
			h.push("library/base:1", a)
			h.serve(map[string]v1.Image{"1": a})
			if fail == "429" {
				h.hub.TooManyRequests(10)
			} else {
				h.hub.MalformPage(1)
			}
			h.reg.Requests()
			list, err := h.svc.Tags(context.Background(), auth.Viewer{}, base, images.ReadOptions{Refresh: true})
			if err != nil {
				t.Fatal(err)
			}
			if list.TagCount != 1 || list.Groups[0].Digest != must(a.Digest()).String() {
				t.Errorf("listing %+v, want tag 1 at the pushed image", list)
			}
			if n := heads(h.reg.Requests()); n != 1 {
				t.Errorf("%d HEADs to the registry, want 1 (the fallback)", n)
			}
		})
	}
	t.Run("refresh asks the registry", func(t *testing.T) {
		h := newHubEnv(t)
		a, b := layered(t, nil, 1, "linux/amd64"), layered(t, nil, 2, "linux/amd64")
		h.push("library/base:1", a)
		h.serve(map[string]v1.Image{"1": a})
		ctx := context.Background()
		if _, err := h.svc.Tags(ctx, auth.Viewer{}, base, images.ReadOptions{Refresh: true}); err != nil {
			t.Fatal(err)
		}
		h.push("library/base:1", b) // Docker Hub's listing still says a
		ans, err := h.svc.Read(ctx, auth.Viewer{}, base.WithTag("1"), images.ReadOptions{Refresh: true})
		if err != nil {
			t.Fatal(err)
		}
		if ans.Report.Digest != must(b.Digest()).String() {
			t.Errorf("refreshed digest %s, want the registry's %s", ans.Report.Digest, must(b.Digest()))
		}
	})
}

// TestDockerHubListingSkipsTagNamesOutsideTheGrammar: Docker Hub's listing
// is held to the tag grammar as the registry's is: a CR/LF name Hub lists
// is neither looked up nor stored.
func TestDockerHubListingSkipsTagNamesOutsideTheGrammar(t *testing.T) {
	h := newHubEnv(t)
	a := layered(t, nil, 1, "linux/amd64")
	h.push("library/base:1", a)
	h.serve(map[string]v1.Image{"1": a, "bad\r\nX-Injected: 1": a, "../../etc": a})
	h.reg.Requests()
	list, err := h.svc.Tags(context.Background(), auth.Viewer{}, base, images.ReadOptions{Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if list.TagCount != 1 || len(list.Groups) != 1 || !slices.Equal(list.Groups[0].Tags, []string{"1"}) || !list.Complete {
		t.Errorf("groups %+v (complete %v), want tag 1 alone, complete", list.Groups, list.Complete)
	}
	rows, err := h.store.RepositoryTags(context.Background(), base)
	if err != nil || len(rows) != 1 || rows[0].Tag != "1" {
		t.Errorf("stored %+v %v, want tag 1 alone", rows, err)
	}
	for _, r := range h.reg.Requests() {
		if strings.Contains(r, "/manifests/") && !strings.Contains(r, "sha256:") {
			t.Errorf("the registry was asked %q", r)
		}
	}
}
