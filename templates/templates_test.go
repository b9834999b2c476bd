package templates_test

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/templates"
)

var now = time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)

func opts() templates.Options {
	return templates.Options{BaseURL: "https://badger.example", Now: now}
}

// render renders c and parses the result.
func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func byID(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

func ptr[T any](v T) *T { return &v }

func digest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

// layers makes n layers with sizes 1000, 2000, … and one command each.
func layers(n int, prefix string) []analysis.Layer {
	out := make([]analysis.Layer, n)
	for i := range out {
		out[i] = analysis.Layer{
			Digest:    "sha256:" + strings.Repeat(prefix, 1) + strings.Repeat("0", 62) + string(rune('a'+i%26)),
			Size:      int64(i+1) * 1000,
			MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
			CreatedBy: "/bin/sh -c echo layer " + string(rune('a'+i%26)),
			Created:   ptr(now.Add(-time.Duration(n-i) * time.Hour)),
		}
	}
	return out
}

// report is a two-platform image built on an outdated parent, with labels
// that exercise linking and escaping.
func report() *analysis.Report {
	amd := analysis.Platform{
		Platform: "linux/amd64", OS: "linux", Architecture: "amd64",
		Digest: digest('a'), ConfigDigest: digest('c'), Created: ptr(now.Add(-3 * 24 * time.Hour)),
		LayerCount: 4, DownloadSize: 10000, Layers: layers(4, "1"),
		Labels: map[string]string{
			"org.opencontainers.image.source": "https://github.com/acme/app",
			"evil":                            `<script>alert(1)</script>`,
		},
		Metadata: analysis.Metadata{
			Version: "2.3.1", Revision: "0f3c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a", Source: "https://github.com/acme/app.git",
			Licenses: "Apache-2.0", Title: "app", Description: "Order tracking.", URL: "javascript:alert(1)",
		},
		Parent: &analysis.Parent{
			Registry: "ghcr.io", Repository: "acme/runtime", Tags: []string{"1.4", "1.4.2", "latest"},
			Digest: digest('p'), LayerCount: 2, Method: "layers", Outdated: true, CurrentDigest: digest('n'),
			MovedTags: []string{"1.4", "latest"},
		},
	}
	arm := amd
	arm.Platform, arm.Architecture, arm.Variant = "linux/arm64/v8", "arm64", "v8"
	arm.Digest, arm.Layers, arm.LayerCount, arm.Parent = digest('b'), layers(3, "2"), 3, nil
	return &analysis.Report{
		Reference: "ghcr.io/acme/app:2.3", Registry: "ghcr.io", Repository: "acme/app", Tag: "2.3",
		Digest: digest('i'), MediaType: "application/vnd.oci.image.index.v1+json",
		Tags: []string{"2.3", "latest", "2.3.1"}, CheckedAt: now.Add(-5 * time.Minute),
		Platforms: []analysis.Platform{amd, arm},
	}
}

func TestImagePage(t *testing.T) {
	page := templates.NewImagePage(report(), "", nil, opts())
	doc := render(t, templates.Image(page))

	if got := byID(doc, "reference").Text(); got != "ghcr.io/acme/app:2.3" {
		t.Errorf("reference %q", got)
	}
	if got, _ := byID(doc, "digest").Attr("value"); got != digest('i') {
		t.Errorf("digest %q", got)
	}
	if got := doc.Find("head > title").Text(); got != "ghcr.io/acme/app:2.3 · imagebadger" {
		t.Errorf("title %q", got)
	}
	var platforms, current []string
	byID(doc, "platform-link").Each(func(_ int, s *goquery.Selection) {
		platforms = append(platforms, s.Text())
		if v, _ := s.Attr("aria-current"); v == "page" {
			current = append(current, s.Text())
		}
		if href, _ := s.Attr("href"); !strings.HasPrefix(href, "/images/ghcr.io/acme/app:2.3?platform=linux%2F") {
			t.Errorf("platform link %q", href)
		}
	})
	if !cmp.Equal(platforms, []string{"linux/amd64", "linux/arm64/v8"}) || !cmp.Equal(current, []string{"linux/amd64"}) {
		t.Errorf("platform links %v, current %v", platforms, current)
	}
	if n := byID(doc, "layer-row").Length(); n != 4 {
		t.Errorf("%d layer rows, want 4", n)
	}
	if n := byID(doc, "layer-bar").Find("rect").Length(); n != 4 {
		t.Errorf("%d bar segments, want 4", n)
	}
	if n := byID(doc, "layer-bar").Find(`a[tabindex="-1"]`).Length(); n != 4 {
		t.Errorf("%d of 4 bar links kept out of the tab order", n)
	}
	if n := byID(doc, "refresh-form").Find(`input[name=platform]`).Length(); n != 0 {
		t.Error("the refresh form names a platform though the default one is shown")
	}
	if got := byID(doc, "badge-license").Find(`label`).First().Text(); got != "Markdown of the license badge" {
		t.Errorf("snippet label %q", got)
	}
	if n := doc.Find(`tr.inherited`).Length(); n != 2 {
		t.Errorf("%d inherited rows, want the parent's 2", n)
	}
	if got := byID(doc, "layer-row").First().Find(".cmd code").Text(); got != "RUN echo layer a" {
		t.Errorf("first command %q", got)
	}
	if got := byID(doc, "total-size").Text(); got != "10.0 kB" {
		t.Errorf("total %q", got)
	}
	if href, _ := byID(doc, "meta-Revision").Find("a").Attr("href"); href != "https://github.com/acme/app/commit/0f3c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a" {
		t.Errorf("revision link %q", href)
	}
	if n := byID(doc, "meta-Website").Find("a").Length(); n != 0 {
		t.Error("a javascript: URL label became a link")
	}
	if got := byID(doc, "labels").Find("td").Text(); !strings.Contains(got, "<script>alert(1)</script>") {
		t.Errorf("label value not shown as text: %q", got)
	}
	if doc.Find("script").FilterFunction(func(_ int, s *goquery.Selection) bool { _, ok := s.Attr("src"); return !ok }).Length() != 0 {
		t.Error("page holds an inline script")
	}
	if got := byID(doc, "parent-link").Text(); got != "ghcr.io/acme/runtime:1.4.2" {
		t.Errorf("parent %q", got)
	}
	// The link names the parent by its most specific tag, not by the
	// platform manifest's digest.
	if href, _ := byID(doc, "parent-link").Attr("href"); href != "/images/ghcr.io/acme/runtime:1.4.2" {
		t.Errorf("parent link %q", href)
	}
	rep := report()
	rep.Platforms[1].Parent = rep.Platforms[0].Parent
	armPage := templates.NewImagePage(rep, "linux/arm64/v8", nil, opts())
	if href, _ := byID(render(t, templates.Image(armPage)), "parent-link").Attr("href"); href != "/images/ghcr.io/acme/runtime:1.4.2?platform=linux%2Farm64%2Fv8" {
		t.Errorf("arm64's parent link %q, want the parent's tag at the same platform", href)
	}
	warning := byID(doc, "outdated").Text()
	if !strings.Contains(warning, "ghcr.io/acme/runtime:1.4 has moved") || !strings.Contains(warning, "sha256:nnnnnnnnnnnn") {
		t.Errorf("outdated warning %q", warning)
	}
	if href, _ := byID(doc, "current-digest").Attr("href"); href != "/images/ghcr.io/acme/runtime@"+digest('n') {
		t.Errorf("current digest link %q", href)
	}
	var tags []string
	byID(doc, "tags").Find("a").Each(func(_ int, s *goquery.Selection) { tags = append(tags, s.Text()) })
	if !cmp.Equal(tags, []string{"latest", "2.3", "2.3.1"}) {
		t.Errorf("tags %v", tags)
	}
	// docs/API.md's nine kinds: image, version, commit, license, base,
	// efficiency, signed, sbom and provenance.
	if n := byID(doc, "badges").Find("img").Length(); n != 9 {
		t.Errorf("%d badges, want 9", n)
	}
	img := byID(doc, "badge-base").Find("img")
	if src, _ := img.Attr("src"); src != "/badges/base/ghcr.io/acme/app:2.3.svg" {
		t.Errorf("badge src %q", src)
	}
	if alt, _ := img.Attr("alt"); alt == "" {
		t.Error("badge without alt text")
	}
	md, _ := byID(doc, "badge-image").Find(`[data-testid=snippet-markdown]`).Attr("value")
	if want := "[![image badge of ghcr.io/acme/app:2.3](https://badger.example/badges/image/ghcr.io/acme/app:2.3.svg)](https://badger.example/images/ghcr.io/acme/app:2.3)"; md != want {
		t.Errorf("markdown snippet\n got %s\nwant %s", md, want)
	}
	html, _ := byID(doc, "badge-image").Find(`[data-testid=snippet-html]`).Attr("value")
	if want := `<a href="https://badger.example/images/ghcr.io/acme/app:2.3"><img src="https://badger.example/badges/image/ghcr.io/acme/app:2.3.svg" alt="image badge of ghcr.io/acme/app:2.3"></a>`; html != want {
		t.Errorf("html snippet\n got %s\nwant %s", html, want)
	}
	if action, _ := byID(doc, "refresh-form").Attr("action"); action != "/images/ghcr.io/acme/app:2.3/refresh" {
		t.Errorf("refresh action %q", action)
	}
	if method, _ := byID(doc, "refresh-form").Attr("method"); method != "post" {
		t.Errorf("refresh method %q", method)
	}
	if href, _ := byID(doc, "subscribe").Attr("href"); href != "/subscriptions/new?image=ghcr.io%2Facme%2Fapp%3A2.3" {
		t.Errorf("subscribe %q", href)
	}
	if got := byID(doc, "checked").Text(); !strings.Contains(got, "5 minutes ago") {
		t.Errorf("checked %q", got)
	}
	// Every form control and copy field has a label.
	doc.Find("input").Each(func(_ int, s *goquery.Selection) {
		id, _ := s.Attr("id")
		if id == "" || doc.Find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("input %q has no label", id)
		}
	})
}

func TestImagePagePlatform(t *testing.T) {
	for _, tc := range []struct {
		want, shown, notice string
	}{
		{"linux/arm64/v8", "linux/arm64/v8", ""},
		{"linux/arm64", "linux/arm64/v8", ""},
		{"windows/amd64", "linux/amd64", "This image has no windows/amd64 platform; showing linux/amd64 instead."},
	} {
		t.Run(tc.want, func(t *testing.T) {
			page := templates.NewImagePage(report(), tc.want, nil, opts())
			doc := render(t, templates.Image(page))
			if got := byID(doc, "platform-current").Text(); got != tc.shown {
				t.Errorf("shown %q, want %q", got, tc.shown)
			}
			if got := strings.TrimSpace(byID(doc, "notice").Text()); got != tc.notice {
				t.Errorf("notice %q, want %q", got, tc.notice)
			}
			if tc.shown == "linux/arm64/v8" {
				if n := byID(doc, "parent").Length(); n != 0 {
					t.Error("arm64 without a parent shows one")
				}
				if src, _ := byID(doc, "badge-image").Find("img").Attr("src"); src != "/badges/image/ghcr.io/acme/app:2.3.svg?platform=linux%2Farm64%2Fv8" {
					t.Errorf("badge of another platform: %q", src)
				}
				if v, _ := byID(doc, "refresh-form").Find(`input[name=platform]`).Attr("value"); v != "linux/arm64/v8" {
					t.Errorf("the refresh form forgets the platform: %q", v)
				}
			}
		})
	}
}

func TestImagePageByDigestAndSinglePlatform(t *testing.T) {
	rep := report()
	rep.Tag, rep.Reference = "", "docker.io/library/alpine@"+digest('i')
	rep.Registry, rep.Repository = "docker.io", "library/alpine"
	rep.Platforms = rep.Platforms[:1]
	rep.Platforms[0].Parent = nil
	rep.Platforms[0].Metadata = analysis.Metadata{}
	doc := render(t, templates.Image(templates.NewImagePage(rep, "", nil, opts())))
	if got := byID(doc, "reference").Text(); got != "alpine@"+digest('i') {
		t.Errorf("reference %q", got)
	}
	if byID(doc, "platforms").Length() != 0 {
		t.Error("a single-platform image shows a platform switcher")
	}
	if href, _ := byID(doc, "repository-link").Attr("href"); href != "/repositories/alpine" {
		t.Errorf("repository link %q", href)
	}
	if got := byID(doc, "metadata").Find(".empty").Length(); got != 1 {
		t.Error("no hint for an image without metadata")
	}
}

func TestHomePage(t *testing.T) {
	recent := templates.NewRecentItems([]templates.RecentChange{
		// One push moved two tags (noticed a few seconds apart): one entry.
		{Registry: "ghcr.io", Repository: "acme/app", Tag: "latest", Kind: "moved", Digest: digest('b'), Previous: digest('a'), At: now.Add(-2 * time.Hour)},
		{Registry: "ghcr.io", Repository: "acme/app", Tag: "2.3", Kind: "moved", Digest: digest('b'), Previous: digest('a'), At: now.Add(-2*time.Hour - 3*time.Second)},
		// A tag that moved to the same image from elsewhere is another change.
		{Registry: "ghcr.io", Repository: "acme/app", Tag: "2", Kind: "moved", Digest: digest('b'), Previous: digest('e'), At: now.Add(-2*time.Hour - 4*time.Second)},
		{Registry: "docker.io", Repository: "library/alpine", Tag: "3.19", Kind: "deleted", Previous: digest('c'), At: now.Add(-49 * time.Hour)},
		{Registry: "docker.io", Repository: "library/debian", Tag: "12", Kind: "created", Digest: digest('d'), At: now.Add(-50 * time.Hour)},
		// The same move as the first entry's, but a day earlier: its own entry.
		{Registry: "ghcr.io", Repository: "acme/app", Tag: "2.2", Kind: "moved", Digest: digest('b'), Previous: digest('a'), At: now.Add(-26 * time.Hour)},
	}, 4, now)
	page := templates.HomePage{
		Meta:   templates.Meta{NoHeaderSearch: true},
		Query:  "Bad Ref",
		Error:  `"Bad Ref" is not an image reference`,
		Recent: recent,
		Watched: []templates.WatchedItem{
			{Repository: "alpine", Href: "/repositories/alpine", TagCount: 12, Changed: templates.NewTimeView(now.Add(-time.Hour), now)},
		},
	}
	doc := render(t, templates.Home(page))
	if got := strings.TrimSpace(byID(doc, "search-error").Text()); got != page.Error+"." {
		t.Errorf("error %q", got)
	}
	input := byID(doc, "search-input")
	if v, _ := input.Attr("value"); v != "Bad Ref" {
		t.Errorf("query not kept: %q", v)
	}
	if v, _ := input.Attr("aria-invalid"); v != "true" {
		t.Error("input not marked invalid")
	}
	if v, _ := input.Attr("aria-describedby"); v != "q-error" {
		t.Errorf("aria-describedby %q", v)
	}
	if doc.Find("header .header-search").Length() != 0 {
		t.Error("home page shows a second search box in the header")
	}
	items := byID(doc, "recent-item")
	if items.Length() != 4 {
		t.Fatalf("%d recent items, want 4 (one per change event, limited)", items.Length())
	}
	var tags []string
	items.First().Find("[data-testid=recent-tags] a").Each(func(_ int, s *goquery.Selection) { tags = append(tags, s.Text()) })
	if !cmp.Equal(tags, []string{"latest", "2.3"}) {
		t.Errorf("first item tags %v", tags)
	}
	if href, _ := items.First().Find("a.ref").Attr("href"); href != "/repositories/ghcr.io/acme/app" {
		t.Errorf("first item links to %q", href)
	}
	if got := items.First().Find(".digest-move").Text(); !strings.Contains(got, "sha256:aaaaaaaaaaaa") || !strings.Contains(got, "sha256:bbbbbbbbbbbb") {
		t.Errorf("move %q", got)
	}
	if href, _ := items.First().Find("[data-testid=recent-diff]").Attr("href"); href != "/diff?from=ghcr.io%2Facme%2Fapp%40"+url.QueryEscape(digest('a'))+"&to=ghcr.io%2Facme%2Fapp%40"+url.QueryEscape(digest('b')) {
		t.Errorf("first item's diff link %q", href)
	}
	if got := items.Eq(1).Find("[data-testid=recent-from]").Text(); got != "sha256:eeeeeeeeeeee" {
		t.Errorf("second item moved from %q", got)
	}
	if got := items.Eq(2).Find("a.ref").Text(); got != "alpine" || items.Eq(2).AttrOr("data-kind", "") != "deleted" {
		t.Errorf("third item %q (%s)", got, items.Eq(2).AttrOr("data-kind", ""))
	}
	if got := items.Eq(2).Find(".digest-move").Text(); !strings.Contains(got, "removed") || !strings.Contains(got, "sha256:cccccccccccc") {
		t.Errorf("deletion %q", got)
	}
	if items.Eq(2).Find("[data-testid=recent-diff]").Length() != 0 {
		t.Error("a deletion links a diff")
	}
	if got := items.Eq(2).Find("time").Text(); got != "2 days ago" {
		t.Errorf("third item time %q", got)
	}
	if got := items.Eq(3).Find(".digest-move").Text(); !strings.Contains(got, "new at") {
		t.Errorf("fourth item %q", got)
	}
	if got := byID(doc, "watched-item").Text(); !strings.Contains(got, "12 tags known") || !strings.Contains(got, "1 hour ago") {
		t.Errorf("watched %q", got)
	}
}

func TestRepositoryPage(t *testing.T) {
	list := &analysis.TagList{
		Registry: "docker.io", Repository: "library/alpine", TagCount: 4, CheckedAt: now,
		Groups: []analysis.TagGroup{
			{Digest: digest('b'), MediaType: "application/vnd.oci.image.index.v1+json", Tags: []string{"3", "3.20", "latest"},
				Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Created: ptr(now.Add(-24 * time.Hour))},
			{Digest: digest('a'), MediaType: "application/vnd.docker.distribution.manifest.v2+json", Tags: []string{"3.19"}, Platforms: []string{"linux/amd64"}},
		},
	}
	sizes := templates.GroupSizes{digest('b'): {{Platform: "linux/amd64", DownloadSize: 3_400_000, LayerCount: 1}}}
	doc := render(t, templates.Repository(templates.NewRepositoryPage(list, sizes, nil, opts())))
	if got := byID(doc, "tag-count").Text(); got != "4 tags on 2 images" {
		t.Errorf("count %q", got)
	}
	groups := byID(doc, "group")
	if groups.Length() != 2 {
		t.Fatalf("%d groups", groups.Length())
	}
	if href, _ := groups.First().Find("[data-testid=group-link]").Attr("href"); href != "/images/alpine:3.20" {
		t.Errorf("group link %q", href)
	}
	if got := groups.First().Find("[data-testid=group-platforms] li").First().Text(); !strings.Contains(got, "linux/amd64") || !strings.Contains(got, "3.4 MB") || !strings.Contains(got, "1 layer") {
		t.Errorf("platform size %q", got)
	}
	if got := groups.First().Find("[data-testid=group-platforms] li").Eq(1).Find(".platform-size").Length(); got != 0 {
		t.Error("a platform with no known size shows one")
	}
	if got := groups.Eq(1).Find("[data-testid=group-tags] a").Text(); got != "3.19" {
		t.Errorf("second group tags %q", got)
	}
	if byID(doc, "listing-incomplete").Length() != 0 {
		t.Error("a whole listing says it is incomplete")
	}
	list.Incomplete = "the registry's next page repeats a page already read"
	doc = render(t, templates.Repository(templates.NewRepositoryPage(list, sizes, nil, opts())))
	if got := byID(doc, "listing-incomplete").Text(); got != "Not every tag the registry lists is shown: the registry's next page repeats a page already read." {
		t.Errorf("incomplete listing notice %q", got)
	}
}

func TestErrorPage(t *testing.T) {
	doc := render(t, templates.Error(templates.ErrorPage{
		Meta: templates.Meta{Title: "Image not found", NoHeaderSearch: true}, Status: 404,
		Heading: "Image not found", Message: "image ghcr.io/acme/app:9 not found", Query: "ghcr.io/acme/app:9",
	}))
	if got := byID(doc, "error-status").Text(); got != "Error 404" {
		t.Errorf("status %q", got)
	}
	if got := byID(doc, "error-message").Text(); got != "image ghcr.io/acme/app:9 not found" {
		t.Errorf("message %q", got)
	}
	if v, _ := doc.Find("#q").Attr("value"); v != "ghcr.io/acme/app:9" {
		t.Errorf("search box %q", v)
	}
}

func TestLayoutLinksOnlyLocalAssets(t *testing.T) {
	doc := render(t, templates.Layout(templates.Meta{Title: "x", Description: "d"}))
	doc.Find("link[href], script[src], img[src]").Each(func(_ int, s *goquery.Selection) {
		u, ok := s.Attr("href")
		if !ok {
			u, _ = s.Attr("src")
		}
		if !strings.HasPrefix(u, "/static/") {
			t.Errorf("asset %q is not served by this service", u)
		}
	})
	if lang, _ := doc.Find("html").Attr("lang"); lang != "en" {
		t.Errorf("lang %q", lang)
	}
	if v, _ := doc.Find(`meta[name=viewport]`).Attr("content"); !strings.Contains(v, "width=device-width") {
		t.Errorf("viewport %q", v)
	}
}

func TestCommitURL(t *testing.T) {
	const rev = "0f3c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a"
	for _, tc := range []struct{ source, revision, want string }{
		{"https://github.com/acme/app", rev, "https://github.com/acme/app/commit/" + rev},
		{"https://github.com/acme/app.git", rev, "https://github.com/acme/app/commit/" + rev},
		{"https://www.github.com/acme/app/", rev, "https://github.com/acme/app/commit/" + rev},
		{"git@github.com:acme/app.git", rev, "https://github.com/acme/app/commit/" + rev},
		{"git+https://gitlab.com/group/sub/app.git", "abc1234", "https://gitlab.com/group/sub/app/-/commit/abc1234"},
		{"https://codeberg.org/acme/app", rev, "https://codeberg.org/acme/app/commit/" + rev},
		{"https://bitbucket.org/acme/app", rev, "https://bitbucket.org/acme/app/commits/" + rev},
		{"https://git.example.com/acme/app", rev, ""},
		{"https://github.com/acme", rev, ""},
		{"https://github.com/acme/app", "main", ""},
		{"https://github.com/acme/app", "v1.2.3", ""},
		{"javascript:alert(1)//github.com/a/b", rev, ""},
		{"", rev, ""},
	} {
		if got := templates.CommitURL(tc.source, tc.revision); got != tc.want {
			t.Errorf("CommitURL(%q, %q) = %q, want %q", tc.source, tc.revision, got, tc.want)
		}
	}
}

func TestCleanCommand(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/bin/sh -c #(nop) ADD file:0123 in / ", "ADD file:0123 in /"},
		{`/bin/sh -c #(nop)  CMD ["sh"]`, `CMD ["sh"]`},
		{"/bin/sh -c apt-get update && apt-get install -y curl", "RUN apt-get update && apt-get install -y curl"},
		{"RUN /bin/sh -c apk add curl # buildkit", "RUN apk add curl"},
		{"RUN |2 A=1 B=2 /bin/sh -c make all # buildkit", "RUN make all"},
		{"|1 V=2 /bin/sh -c make", "RUN make"},
		{"COPY . /app # buildkit", "COPY . /app"},
		{"ENV PATH=/usr/bin", "ENV PATH=/usr/bin"},
		{"", ""},
	} {
		if got := templates.CleanCommand(tc.in); got != tc.want {
			t.Errorf("CleanCommand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRelativeTimes(t *testing.T) {
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{10 * time.Second, "just now"},
		{90 * time.Second, "2 minutes ago"},
		{time.Hour, "1 hour ago"},
		{47 * time.Hour, "2 days ago"},
		{20 * 24 * time.Hour, "20 days ago"},
		{95 * 24 * time.Hour, "3 months ago"},
		{800 * 24 * time.Hour, "2 years ago"},
		{-2 * time.Hour, "in 2 hours"},
	} {
		if got := templates.NewTimeView(now.Add(-tc.ago), now).Relative; got != tc.want {
			t.Errorf("%s ago: %q, want %q", tc.ago, got, tc.want)
		}
	}
	if !templates.NewTimeView(time.Time{}, now).IsZero() {
		t.Error("zero time is not zero")
	}
}

// BenchmarkRenderImagePage measures the template alone (view model and
// HTML) for an image of 60 layers; server/pages_test.go measures the route.
func BenchmarkRenderImagePage(b *testing.B) {
	rep := report()
	rep.Platforms[0].Layers = layers(60, "3")
	rep.Platforms[0].LayerCount = 60
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		page := templates.NewImagePage(rep, "", nil, opts())
		if err := templates.Image(page).Render(context.Background(), &buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "html-bytes")
}

// TestRefPartsBreakAtSeparatorsOnly: a reference in a page title may wrap
// after a slash or before its tag or digest, never inside a registry's
// port, a repository name or a tag.
func TestRefPartsBreakAtSeparatorsOnly(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"ghcr.io/acme/app:2.3.1-slim", []string{"ghcr.io/", "acme/", "app", ":2.3.1-slim"}},
		{"127.0.0.1:5000/acme/app:1.0", []string{"127.0.0.1:5000/", "acme/", "app", ":1.0"}},
		{"alpine@sha256:abc", []string{"alpine", "@sha256:abc"}},
		{"127.0.0.1:5000/app", []string{"127.0.0.1:5000/", "app"}},
	} {
		if diff := cmp.Diff(tc.want, templates.RefParts(tc.in)); diff != "" {
			t.Errorf("RefParts(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	doc := render(t, templates.Image(templates.NewImagePage(report(), "", nil, opts())))
	h1, _ := byID(doc, "reference").Html()
	if got := strings.Count(h1, "<wbr/>"); got != 4 || !strings.Contains(h1, "app<wbr/>:2.3") {
		t.Errorf("title %q, want a break opportunity before each part (4) and none inside the tag", h1)
	}
}

// TestImagePageSupplyChain: the "Supply chain" section says who signed the
// image and whether it verified, links the SBOM's packages, and shows the
// provenance's source, revision, builder and materials, each image
// material linked to its page; the parent found by provenance says why.
func TestImagePageSupplyChain(t *testing.T) {
	rep := report()
	yes, no := true, false
	p := &rep.Platforms[0]
	p.SupplyChain = &analysis.SupplyChain{
		Signatures: []analysis.Signature{
			{Format: "cosign", Digest: digest('1'), FoundBy: "tag", Verified: &yes, Signer: "cosign.pub (sha256:0123)"},
			{Format: "cosign", Digest: digest('2'), FoundBy: "tag", Verified: &no, Reason: "no trusted key verifies the signature"},
			{Format: "notation", Digest: digest('3'), FoundBy: "referrers"},
		},
		Attestations: []analysis.Attestation{{Kind: "provenance"}, {Kind: "sbom"}},
		SBOM:         &analysis.SBOMSummary{Format: "spdx", Packages: 212, Generator: "syft-v1.18.1"},
		Provenance: &analysis.Provenance{
			PredicateType: "https://slsa.dev/provenance/v1", Builder: "https://github.com/acme/app/actions/runs/7",
			Source: "https://github.com/acme/app", Revision: "0f3c0f3c",
			Materials: []analysis.Material{
				{URI: "pkg:docker/alpine@3.20?platform=linux%2Farm64", Digest: digest('a')},
				{URI: "https://github.com/acme/app.git#main", Digest: "sha1:0f3c"},
			},
		},
	}
	p.Parent = &analysis.Parent{Registry: "docker.io", Repository: "library/alpine", Tags: []string{"3.20"}, Digest: digest('b'), LayerCount: 2, MatchedLayers: 2, Method: "provenance"}
	doc := render(t, templates.Image(templates.NewImagePage(rep, "", nil, opts())))
	sec := byID(doc, "supply-chain")
	if sec.Length() != 1 {
		t.Fatal("no supply chain section")
	}
	var statuses []string
	sec.Find(`[data-testid="signature"]`).Each(func(_ int, s *goquery.Selection) {
		st, _ := s.Attr("data-status")
		statuses = append(statuses, st)
	})
	if strings.Join(statuses, ",") != "verified,not verified,not checked" {
		t.Errorf("signature statuses %v", statuses)
	}
	if got := byID(doc, "signer").Text(); !strings.Contains(got, "cosign.pub (sha256:0123)") {
		t.Errorf("signer %q", got)
	}
	if got := byID(doc, "signature-reason").Text(); !strings.Contains(got, "no trusted key verifies the signature") {
		t.Errorf("reason %q", got)
	}
	link := byID(doc, "sbom-link")
	if href, _ := link.Attr("href"); href != "/api/v1/images/"+rep.Reference+"/sbom?platform=linux%2Famd64" || link.Text() != "212 packages" {
		t.Errorf("SBOM link %q %q", href, link.Text())
	}
	if got := byID(doc, "sbom").Text(); !strings.Contains(got, "SPDX") || !strings.Contains(got, "syft-v1.18.1") {
		t.Errorf("SBOM %q", got)
	}
	if byID(doc, "provenance-kind").Text() != "SLSA v1" || byID(doc, "provenance-revision").Text() != "0f3c0f3c" ||
		byID(doc, "provenance-builder").Text() != "https://github.com/acme/app/actions/runs/7" {
		t.Errorf("provenance %q", byID(doc, "provenance").Text())
	}
	if href, _ := byID(doc, "provenance-source").Find("a").Attr("href"); href != "https://github.com/acme/app" {
		t.Errorf("source link %q", href)
	}
	mats := byID(doc, "material")
	if mats.Length() != 2 {
		t.Fatalf("%d materials", mats.Length())
	}
	if href, _ := mats.Eq(0).Find("a").Attr("href"); href != "/images/alpine@"+digest('a')+"?platform=linux%2Farm64" {
		t.Errorf("image material link %q", href)
	}
	if mats.Eq(1).Find("a").Length() != 0 {
		t.Error("a Git material is linked as an image")
	}
	if got := byID(doc, "parent-why").Text(); !strings.Contains(got, "provenance") {
		t.Errorf("parent why %q", got)
	}
	// Never looked at: no section.
	if n := byID(render(t, templates.Image(templates.NewImagePage(report(), "", nil, opts()))), "supply-chain").Length(); n != 0 {
		t.Error("a supply chain section for an image never looked at")
	}
}
