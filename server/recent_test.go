package server_test

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// recentItems reads the home page's "Recently changed" entries: each one's
// tags (the chips) and its whole text.
func recentItems(t *testing.T, s *stack.Stack) (tags [][]string, texts []string) {
	t.Helper()
	a := pageGet(t, s, "/")
	if a.status != 200 {
		t.Fatalf("home: %d", a.status)
	}
	a.testid("recent-item").Each(func(_ int, it *goquery.Selection) {
		var ts []string
		it.Find(`[data-testid="recent-tags"] a`).Each(func(_ int, c *goquery.Selection) { ts = append(ts, strings.TrimSpace(c.Text())) })
		tags = append(tags, ts)
		texts = append(texts, strings.Join(strings.Fields(it.Text()), " "))
	})
	return tags, texts
}

// TestCopyOfOneTagOntoAnotherShowsThatMoveAlone: after `crane copy app:2.2
// app:2.3`, "Recently changed" shows exactly that move (2.3, from where it
// pointed to 2.2's image) on top, and the entries before it are what they
// were: the feed lists recorded changes, not a regrouping of where the tags
// point today.
func TestCopyOfOneTagOntoAnotherShowsThatMoveAlone(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	appRepo := s.Registry.Host + "/acme/app"
	v22 := stack.Image(t, nil, 2, nil)
	v23 := stack.Image(t, nil, 2, nil)
	stack.PushImage(t, v22, appRepo+":2.2", appRepo+":2.2.7")
	stack.PushImage(t, v23, appRepo+":2.3", appRepo+":2.3.1")
	if a := pageGet(t, s, "/api/v1/repositories/"+appRepo+"/tags?refresh=1"); a.status != 200 {
		t.Fatalf("list: %d", a.status)
	}
	beforeTags, beforeTexts := recentItems(t, s)
	if len(beforeTags) == 0 {
		t.Fatal("nothing recently changed after the first listing")
	}

	if err := crane.Copy(appRepo+":2.2", appRepo+":2.3"); err != nil {
		t.Fatal(err)
	}
	if a := pageGet(t, s, "/api/v1/repositories/"+appRepo+"/tags?refresh=1"); a.status != 200 {
		t.Fatalf("list: %d", a.status)
	}
	tags, texts := recentItems(t, s)
	if len(tags) == 0 {
		t.Fatal("nothing recently changed")
	}
	if !cmp.Equal(tags[0], []string{"2.3"}) {
		t.Errorf("top entry's tags = %v, want [2.3]: only 2.3 moved", tags[0])
	}
	from, to := analysis.ShortDigest(must(v23.Digest()).String()), analysis.ShortDigest(must(v22.Digest()).String())
	if i, j := strings.Index(texts[0], from), strings.Index(texts[0], to); i < 0 || j < 0 || i > j {
		t.Errorf("top entry %q does not say it moved from %s to %s", texts[0], from, to)
	}
	if diff := cmp.Diff(beforeTags, tags[1:]); diff != "" {
		t.Errorf("older entries' tags changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforeTexts, texts[1:]); diff != "" {
		t.Errorf("older entries changed (-before +after):\n%s", diff)
	}
}
