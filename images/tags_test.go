package images_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
)

func TestThousandTagsOverFewDigests(t *testing.T) {
	e := newEnv(t)
	imgs := []v1.Image{
		layered(t, nil, 1, "linux/amd64"),
		layered(t, nil, 2, "linux/amd64"),
		layered(t, nil, 1, "linux/arm64/v8"),
		layered(t, nil, 3, "linux/amd64"),
	}
	// The expectation is built from what was pushed: tag i → image i%4.
	want := map[string][]string{}
	for i, img := range imgs {
		e.push(fmt.Sprintf("acme/many:seed%d", i), img)
		d := must(img.Digest()).String()
		want[d] = append(want[d], fmt.Sprintf("seed%d", i))
	}
	for i := 0; i < 996; i++ {
		img := imgs[i%len(imgs)]
		tag := fmt.Sprintf("v%d", i)
		if err := remote.Tag(must(name.NewTag(e.host+"/acme/many:"+tag)), img); err != nil {
			t.Fatal(err)
		}
		d := must(img.Digest()).String()
		want[d] = append(want[d], tag)
	}
	repo := must(analysis.ParseRepository(e.host + "/acme/many"))
	e.reg.Requests()
	list, err := e.svc.Tags(context.Background(), auth.Viewer{}, repo, images.ReadOptions{Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if list.TagCount != 1000 || len(list.Groups) != len(imgs) {
		t.Fatalf("tagCount %d, %d groups; want 1000 and %d", list.TagCount, len(list.Groups), len(imgs))
	}
	got := map[string][]string{}
	seen := map[string]int{}
	for _, g := range list.Groups {
		got[g.Digest] = g.Tags
		for _, tg := range g.Tags {
			seen[tg]++
		}
	}
	for tg, n := range seen {
		if n != 1 {
			t.Errorf("tag %s appears in %d groups", tg, n)
		}
	}
	sortAll := cmp.Transformer("sort", func(in []string) []string {
		out := append([]string(nil), in...)
		analysis.SortTags(out)
		return out
	})
	if diff := cmp.Diff(want, got, sortAll); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	// Content is fetched once per digest never seen: a manifest and a config each.
	if n := countGETs(e.reg.Requests()); n != 2*len(imgs) {
		t.Errorf("first listing made %d content GETs, want %d", n, 2*len(imgs))
	}
	// Listing again when nothing changed: the tag list, one HEAD per tag, no other GET.
	if _, err := e.svc.Tags(context.Background(), auth.Viewer{}, repo, images.ReadOptions{Refresh: true}); err != nil {
		t.Fatal(err)
	}
	reqs := e.reg.Requests()
	heads := 0
	for _, r := range reqs {
		switch {
		case strings.HasPrefix(r, "HEAD /v2/acme/many/manifests/"):
			heads++
		case strings.HasPrefix(r, "GET /v2/acme/many/tags/list"):
		default:
			t.Errorf("second listing made %s", r)
		}
	}
	if heads != 1000 {
		t.Errorf("second listing made %d HEADs, want 1000", heads)
	}
}

func countGETs(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, "GET /v2/acme/many/manifests/") || strings.HasPrefix(r, "GET /v2/acme/many/blobs/") {
			n++
		}
	}
	return n
}
