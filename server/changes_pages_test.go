package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/templates"
)

// pushChangeFamily pushes acme/base:1 and two versions of acme/app built on
// it (2.2 with one layer of its own, 2.3 with two), reads them, and moves
// acme/app:latest from 2.2's image to 2.3's.
func pushChangeFamily(t *testing.T, s *stack.Stack) (base, v22, v23 v1.Image) {
	t.Helper()
	labels := func(v, rev string) map[string]string {
		return map[string]string{"org.opencontainers.image.version": v, "org.opencontainers.image.revision": rev,
			"org.opencontainers.image.source": "https://github.com/acme/app"}
	}
	base = stack.Image(t, nil, 3, nil)
	stack.PushImage(t, base, s.Registry.Host+"/acme/base:1")
	// Built a few weeks apart: the repository page orders its groups by
	// creation, newest first.
	v22 = must(mutate.CreatedAt(stack.Image(t, base, 1, labels("2.2.7", "3f9a1c5e7b2d")), v1.Time{Time: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}))
	v23 = must(mutate.CreatedAt(stack.Image(t, base, 2, labels("2.3.1", "0f3c2a9d8e7b")), v1.Time{Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}))
	stack.PushImage(t, v22, s.Registry.Host+"/acme/app:2.2", s.Registry.Host+"/acme/app:latest")
	stack.PushImage(t, v23, s.Registry.Host+"/acme/app:2.3")
	for _, ref := range []string{"acme/base:1", "acme/app:2.2", "acme/app:latest", "acme/app:2.3"} {
		if a := pageGet(t, s, "/images/"+s.Registry.Host+"/"+ref); a.status != 200 {
			t.Fatalf("%s: %d", ref, a.status)
		}
	}
	stack.PushImage(t, v23, s.Registry.Host+"/acme/app:latest")
	if a := pageGet(t, s, "/api/v1/images/"+s.Registry.Host+"/acme/app:latest?refresh=1"); a.status != 200 {
		t.Fatalf("refresh: %d", a.status)
	}
	return base, v22, v23
}

func texts(sel *goquery.Selection) []string {
	var out []string
	sel.Each(func(_ int, s *goquery.Selection) { out = append(out, strings.Join(strings.Fields(s.Text()), " ")) })
	return out
}

// TestDiffPage shows two images side by side: the shared base greyed, the
// removed and added layers marked with their commands, the size bars, the
// changed metadata and the forge link; a platform one side lacks is a
// friendly 400.
func TestDiffPage(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	_, v22, v23 := pushChangeFamily(t, s)
	from, to := s.Registry.Host+"/acme/app:2.2", s.Registry.Host+"/acme/app:2.3"
	a := pageGet(t, s, templates.DiffHref(from, to))
	if a.status != 200 {
		t.Fatalf("diff page: %d\n%s", a.status, a.body)
	}
	rows := a.testid("diff-row")
	if rows.Length() != 5 { // 3 shared, then 1 removed facing the first of 2 added, then the second added
		t.Errorf("%d rows, want 5", rows.Length())
	}
	if n := a.doc.Find(`[data-testid="diff-row"][data-kind="shared"]`).Length(); n != 3 {
		t.Errorf("%d shared rows, want the base's 3", n)
	}
	cf := must(v23.ConfigFile())
	added := texts(a.testid("diff-added"))
	if len(added) != 2 || !strings.Contains(added[0], templates.CleanCommand(cf.History[3].CreatedBy)) || !strings.Contains(added[1], templates.CleanCommand(cf.History[4].CreatedBy)) {
		t.Errorf("added layers %q, want the commands of 2.3's two own layers", added)
	}
	if removed := texts(a.testid("diff-removed")); len(removed) != 1 || !strings.Contains(removed[0], templates.CleanCommand(must(v22.ConfigFile()).History[3].CreatedBy)) {
		t.Errorf("removed layers %q", removed)
	}
	if n := a.testid("size-bars").Find("svg").Length(); n != 2 {
		t.Errorf("%d size bars, want 2", n)
	}
	if got := texts(a.testid("meta-change")); len(got) != 2 || !strings.Contains(got[0], "2.2.7") || !strings.Contains(got[0], "2.3.1") {
		t.Errorf("metadata changes %q", got)
	}
	if href, _ := a.testid("compare-url").Attr("href"); href != "https://github.com/acme/app/compare/3f9a1c5e7b2d...0f3c2a9d8e7b" {
		t.Errorf("compare link %q", href)
	}
	if got := a.testid("diff-parent-Before").Text(); !strings.Contains(got, s.Registry.Host+"/acme/base:1") || !strings.Contains(got, "shares its 3 layers") {
		t.Errorf("parent %q", got)
	}

	bad := pageGet(t, s, templates.DiffHref(from, to)+"&platform=linux/arm64")
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.testid("error-message").Text(), "has no linux/arm64 image") {
		t.Errorf("missing platform: %d %q", bad.status, bad.testid("error-message").Text())
	}
}

// TestHistoryPagesAndLinks: the history page lists the recorded changes
// with links to each move's diff, pages through them, and the image,
// repository and home pages link to it and to the diffs.
func TestHistoryPagesAndLinks(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	_, v22, v23 := pushChangeFamily(t, s)
	repo := s.Registry.Host + "/acme/app"
	wantDiff := templates.DiffHref(repo+"@"+must(v22.Digest()).String(), repo+"@"+must(v23.Digest()).String())

	h := pageGet(t, s, "/repositories/"+repo+"/history")
	if h.status != 200 {
		t.Fatalf("history page: %d", h.status)
	}
	entries := h.testid("history-entry")
	if entries.Length() != 4 {
		t.Errorf("%d entries, want 4 (three created, one moved)", entries.Length())
	}
	first := entries.First()
	if first.AttrOr("data-kind", "") != "moved" || first.Find(`[data-testid="history-tag"]`).Text() != "latest" {
		t.Errorf("newest entry %q", strings.Join(strings.Fields(first.Text()), " "))
	}
	if href, _ := first.Find(`[data-testid="history-diff"]`).Attr("href"); href != wantDiff {
		t.Errorf("diff link %q, want %q", href, wantDiff)
	}
	// One change per page: the older link leads on, without repeats.
	var seen []string
	next := "/repositories/" + repo + "/history?limit=1"
	for range 10 {
		p := pageGet(t, s, next)
		seen = append(seen, texts(p.testid("history-entry"))...)
		href, ok := p.testid("history-older").Attr("href")
		if !ok {
			break
		}
		next = href + "&limit=1"
	}
	if len(seen) != 4 || seen[0] != texts(entries.First())[0] {
		t.Errorf("paged entries %q", seen)
	}

	img := pageGet(t, s, "/images/"+repo+":latest")
	if got := img.testid("tag-history-list").Find(`[data-testid="history-entry"]`).Length(); got != 2 {
		t.Errorf("image page lists %d changes of latest, want 2", got)
	}
	if href, _ := img.testid("tag-history-list").Find(`[data-testid="history-diff"]`).Attr("href"); href != wantDiff {
		t.Errorf("image page's diff link %q", href)
	}
	if href, _ := img.testid("tag-history-all").Attr("href"); href != "/repositories/"+repo+"/history?tag=latest" {
		t.Errorf("full history link %q", href)
	}
	if got := img.testid("parent-why").Text(); got != "Why this parent: shares its 3 layers, matched by layer prefix." {
		t.Errorf("parent why %q", got)
	}

	// The repository page: groups newest first, each linked to the diff
	// from the next older one.
	rp := pageGet(t, s, "/repositories/"+repo)
	links := rp.testid("group-compare")
	if links.Length() != 1 {
		t.Fatalf("%d compare links, want 1 (two groups)", links.Length())
	}
	if href, _ := links.Attr("href"); href != wantDiff {
		t.Errorf("group compare link %q, want %q", href, wantDiff)
	}
	if href, _ := rp.testid("history-link").Attr("href"); href != "/repositories/"+repo+"/history" {
		t.Errorf("history link %q", href)
	}

	home := pageGet(t, s, "/")
	if href, _ := home.testid("recent-diff").First().Attr("href"); href != wantDiff {
		t.Errorf("home's first diff link %q", href)
	}
}

// TestSearchBox: a part of a name shows the known repositories containing
// it; a known image goes to its page; /search always lists.
func TestSearchBox(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	pushChangeFamily(t, s)
	a := pageGet(t, s, "/?q=acme")
	if a.status != 200 {
		t.Fatalf("search: %d", a.status)
	}
	got := texts(a.testid("search-result-link"))
	if strings.Join(got, ",") != s.Registry.Host+"/acme/app,"+s.Registry.Host+"/acme/base" {
		t.Errorf("results %q", got)
	}
	if a := pageGet(t, s, "/?q="+url.QueryEscape(s.Registry.Host+"/acme/app:2.3")); a.status != http.StatusSeeOther || a.header.Get("Location") != "/images/"+s.Registry.Host+"/acme/app:2.3" {
		t.Errorf("a known image: %d → %q", a.status, a.header.Get("Location"))
	}
	p := pageGet(t, s, "/search?q=BASE")
	if got := texts(p.testid("search-result-link")); strings.Join(got, ",") != s.Registry.Host+"/acme/base" {
		t.Errorf("search page results %q", got)
	}
	if p := pageGet(t, s, "/search?q=zz-nothing"); p.status != 200 || p.testid("search-none").Length() != 1 {
		t.Errorf("no result: %d", p.status)
	}
	if p := pageGet(t, s, "/search?q=a"); p.status != http.StatusBadRequest || p.testid("search-error").Length() != 1 {
		t.Errorf("one character: %d", p.status)
	}
}
