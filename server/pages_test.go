package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// pushPageFamily pushes acme/base:1 and acme/app:1.0 (also latest) built on it.
func pushPageFamily(t *testing.T, s *stack.Stack) {
	t.Helper()
	base := stack.Image(t, nil, 2, nil)
	stack.PushImage(t, base, s.Registry.Host+"/acme/base:1")
	app := stack.Image(t, base, 3, map[string]string{
		"org.opencontainers.image.version":  "1.0.4",
		"org.opencontainers.image.revision": "0f3c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a",
		"org.opencontainers.image.source":   "https://github.com/acme/app",
	})
	stack.PushImage(t, app, s.Registry.Host+"/acme/app:1.0", s.Registry.Host+"/acme/app:latest")
}

type pageAnswer struct {
	status int
	header http.Header
	body   string
	doc    *goquery.Document
}

// noRedirects is the pages' client: a redirect is an answer to check.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// pageDo sends req to the pages and reads the answer.
func pageDo(t *testing.T, req *http.Request) pageAnswer {
	t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := pageAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if a.doc, err = goquery.NewDocumentFromReader(strings.NewReader(a.body)); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// pageGet gets the page at path of s.
func pageGet(t *testing.T, s *stack.Stack, path string) pageAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pageDo(t, req)
}

func (a pageAnswer) testid(id string) *goquery.Selection {
	if a.doc == nil {
		return &goquery.Selection{}
	}
	return a.doc.Find(`[data-testid="` + id + `"]`)
}

func TestPagesAnswerHTMLWithTheirContent(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	pushPageFamily(t, s)
	app := "/images/" + s.Registry.Host + "/acme/app:1.0"

	// The base first, so it is known as a parent candidate.
	if a := pageGet(t, s, "/images/"+s.Registry.Host+"/acme/base:1"); a.status != http.StatusOK {
		t.Fatalf("base page: %d\n%s", a.status, a.body)
	}
	pageGet(t, s, "/images/"+s.Registry.Host+"/acme/app:latest") // a second known tag on the same image
	a := pageGet(t, s, app)
	if a.status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", app, a.status, a.body)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if got := a.testid("reference").Text(); got != s.Registry.Host+"/acme/app:1.0" {
		t.Errorf("reference %q", got)
	}
	if n := a.testid("layer-row").Length(); n != 5 {
		t.Errorf("%d layers, want 5", n)
	}
	if got := a.testid("parent-link").Text(); got != s.Registry.Host+"/acme/base:1" {
		t.Errorf("parent %q", got)
	}
	if got := a.testid("meta-Version").Text(); got != "1.0.4" {
		t.Errorf("version %q", got)
	}
	md, _ := a.testid("badge-version").Find("[data-testid=snippet-markdown]").Attr("value")
	if !strings.Contains(md, "https://badger.example/badges/version/"+s.Registry.Host+"/acme/app:1.0.svg") {
		t.Errorf("snippet without the base URL: %s", md)
	}
	var tags []string
	a.testid("tags").Find("a").Each(func(_ int, sel *goquery.Selection) { tags = append(tags, sel.Text()) })
	if strings.Join(tags, ",") != "latest,1.0" {
		t.Errorf("tags %v", tags)
	}

	// A reference without a tag is the latest tag, under its canonical URL.
	a = pageGet(t, s, "/images/"+s.Registry.Host+"/acme/app?x=1")
	if a.status != http.StatusFound || a.header.Get("Location") != "/images/"+s.Registry.Host+"/acme/app:latest?x=1" {
		t.Errorf("no-tag reference: %d → %q", a.status, a.header.Get("Location"))
	}

	home := pageGet(t, s, "/")
	if home.status != http.StatusOK {
		t.Fatalf("home: %d", home.status)
	}
	var recent []string
	home.testid("recent-item").Find("a.ref").Each(func(_ int, sel *goquery.Selection) { recent = append(recent, sel.Text()) })
	if strings.Join(recent, ",") != s.Registry.Host+"/acme/app,"+s.Registry.Host+"/acme/base" {
		t.Errorf("recently changed %v", recent)
	}
	if got := home.testid("watched-item").Text(); !strings.Contains(got, s.Registry.Host+"/acme/base") || !strings.Contains(got, "1 tag known") {
		t.Errorf("watched %q", got)
	}

	repo := pageGet(t, s, "/repositories/"+s.Registry.Host+"/acme/app")
	if repo.status != http.StatusOK {
		t.Fatalf("repository: %d\n%s", repo.status, repo.body)
	}
	if n := repo.testid("group").Length(); n != 1 {
		t.Errorf("%d groups, want 1", n)
	}
	if got := repo.testid("group-platforms").Text(); !strings.Contains(got, "linux/amd64") || !strings.Contains(got, "5 layers") {
		t.Errorf("group platforms %q", got)
	}
	if href, _ := repo.testid("group-link").Attr("href"); href != "/images/"+s.Registry.Host+"/acme/app:1.0" {
		t.Errorf("group link %q", href)
	}
}

func TestSearch(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	for _, tc := range []struct {
		q        string
		status   int
		location string
		error    string
	}{
		{"Not A Reference!", http.StatusBadRequest, "", "is not an image reference"},
		{"   ", http.StatusBadRequest, "", "Type an image reference"},
		{"alpine", http.StatusSeeOther, "/images/alpine:latest", ""},
		{"docker pull docker.io/library/python:3.12-slim", http.StatusSeeOther, "/images/python:3.12-slim", ""},
		{"https://ghcr.io/acme/app:1.2", http.StatusSeeOther, "/images/ghcr.io/acme/app:1.2", ""},
		{"ghcr.io/acme/app:1.2@sha256:" + strings.Repeat("a", 64), http.StatusSeeOther, "/images/ghcr.io/acme/app@sha256:" + strings.Repeat("a", 64), ""},
	} {
		t.Run(tc.q, func(t *testing.T) {
			a := pageGet(t, s, "/?q="+url.QueryEscape(tc.q))
			if a.status != tc.status || a.header.Get("Location") != tc.location {
				t.Fatalf("%d → %q, want %d → %q", a.status, a.header.Get("Location"), tc.status, tc.location)
			}
			if got := a.testid("search-error").Text(); !strings.Contains(got, tc.error) || (tc.error == "") != (got == "") {
				t.Errorf("inline error %q, want one containing %q", got, tc.error)
			}
		})
	}
}

func TestRefreshForm(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	pushPageFamily(t, s)
	path := "/images/" + s.Registry.Host + "/acme/app:1.0"
	post := func(site string) pageAnswer {
		req, err := http.NewRequest(http.MethodPost, s.URL+path+"/refresh", strings.NewReader("platform=linux%2Famd64"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
		return pageDo(t, req)
	}
	if a := post("cross-site"); a.status != http.StatusForbidden || a.testid("error").Length() != 1 {
		t.Errorf("cross-site refresh: %d\n%s", a.status, a.body)
	}
	a := post("same-origin")
	if want := path + "?platform=linux%2Famd64"; a.status != http.StatusSeeOther || a.header.Get("Location") != want {
		t.Errorf("refresh: %d → %q, want 303 → %q", a.status, a.header.Get("Location"), want)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/images/"+s.Registry.Host+"/acme/gone:1/refresh", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if a := pageDo(t, req); a.status != http.StatusNotFound || a.testid("error").Length() != 1 {
		t.Errorf("refresh of a missing image: %d", a.status)
	}
	// Past the client's refresh limit (20 in 10 minutes), the button goes
	// back to the page, which says the refresh was not made.
	var last pageAnswer
	for range 20 {
		last = post("same-origin")
	}
	want := path + "?notice=refresh-limited&platform=linux%2Famd64"
	if last.status != http.StatusSeeOther || last.header.Get("Location") != want {
		t.Fatalf("refresh past the limit: %d → %q, want 303 → %q", last.status, last.header.Get("Location"), want)
	}
	page := pageGet(t, s, want)
	if page.status != 200 || !strings.Contains(page.testid("notice").Text(), "this one was not made") {
		t.Errorf("the page after a refused refresh: %d, notice %q", page.status, page.testid("notice").Text())
	}
}

func TestPageErrorsAreFriendlyHTML(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	for _, tc := range []struct {
		path    string
		status  int
		heading string
	}{
		{"/images/" + "REG/acme/nothing:1", http.StatusNotFound, "Repository not found"},
		{"/images/UPPER/Case:1", http.StatusBadRequest, "Not an image reference"},
		{"/images/169.254.169.254/x:1", http.StatusForbidden, "Registry not allowed"},
		{"/repositories/REG/acme/nothing", http.StatusNotFound, "Repository not found"},
		{"/no/such/page", http.StatusNotFound, "Page not found"},
		{"/static/nothing.css", http.StatusNotFound, "Not found"},
	} {
		path := strings.ReplaceAll(tc.path, "REG", s.Registry.Host)
		t.Run(path, func(t *testing.T) {
			a := pageGet(t, s, path)
			if a.status != tc.status {
				t.Errorf("status %d, want %d", a.status, tc.status)
			}
			if a.doc == nil {
				t.Fatalf("not HTML: %s %q", a.header.Get("Content-Type"), a.body)
			}
			if got := a.doc.Find("h1").Text(); got != tc.heading {
				t.Errorf("heading %q, want %q", got, tc.heading)
			}
			if got := a.testid("error-status").Text(); got != fmt.Sprintf("Error %d", tc.status) {
				t.Errorf("status line %q", got)
			}
			if strings.Contains(a.body, "http://") || strings.Contains(a.body, "goroutine") {
				t.Errorf("page leaks internals:\n%s", a.body)
			}
		})
	}
	// Machine routes keep the JSON error shape.
	for _, path := range []string{"/api/v1/nothing", "/v1/nothing", "/hooks/nothing"} {
		a := pageGet(t, s, path)
		if a.status != http.StatusNotFound || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s", path, a.status, a.header.Get("Content-Type"))
		}
	}
}

func TestStaticFiles(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	for path, ctype := range map[string]string{
		"/static/style.css":   "text/css; charset=utf-8",
		"/static/app.js":      "text/javascript; charset=utf-8",
		"/static/favicon.svg": "image/svg+xml",
	} {
		a := pageGet(t, s, path)
		if a.status != http.StatusOK || a.header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q", path, a.status, a.header.Get("Content-Type"))
			continue
		}
		etag := a.header.Get("ETag")
		if etag == "" || !strings.Contains(a.header.Get("Cache-Control"), "max-age") {
			t.Errorf("%s: ETag %q, Cache-Control %q", path, etag, a.header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("If-None-Match", etag)
		if a := pageDo(t, req); a.status != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d, want 304", path, a.status)
		}
	}
	if a := pageGet(t, s, "/static/"); a.status != http.StatusNotFound {
		t.Errorf("/static/ lists the folder: %d", a.status)
	}
	if a := pageGet(t, s, "/favicon.ico"); a.status != http.StatusMovedPermanently || a.header.Get("Location") != "/static/favicon.svg" {
		t.Errorf("favicon.ico: %d %q", a.status, a.header.Get("Location"))
	}
}

// BenchmarkImagePage measures the server's time to answer GET
// /images/{reference} for a stored image of 60 layers on a parent, through
// the whole route (store reads, parent lookup, view model, templ), and
// reports the page weight: the HTML plus the stylesheet and script it loads.
// Targets: at most 2 ms and 100 KB.
func BenchmarkImagePage(b *testing.B) {
	s := stack.New(b, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	labels := map[string]string{}
	for _, k := range []string{"title", "description", "version", "revision", "source", "licenses", "vendor", "url", "documentation", "created"} {
		labels["org.opencontainers.image."+k] = "a realistic value for " + k
	}
	labels["org.opencontainers.image.source"] = "https://github.com/acme/app"
	labels["org.opencontainers.image.revision"] = "0f3c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a"
	base := stack.Image(b, nil, 12, nil)
	app := stack.Image(b, base, 48, labels)
	stack.PushImage(b, base, s.Registry.Host+"/acme/base:1")
	stack.PushImage(b, app, s.Registry.Host+"/acme/app:1.0", s.Registry.Host+"/acme/app:1", s.Registry.Host+"/acme/app:latest")

	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d\n%s", path, rec.Code, rec.Body)
		}
		return rec
	}
	get("/images/" + s.Registry.Host + "/acme/base:1")
	page := "/images/" + s.Registry.Host + "/acme/app:1.0"
	html := get(page).Body.Len()
	if !strings.Contains(get(page).Body.String(), `data-testid="parent-link"`) {
		b.Fatal("the benchmark page has no parent")
	}
	weight := html + get("/static/style.css").Body.Len() + get("/static/app.js").Body.Len()

	// rendered: every read renders the page, as the first read of a new
	// answer does (a platform the image lacks makes each request its own
	// page, shown with a notice); kept: reads of one answer, served from
	// the response memo.
	b.Run("rendered", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			rec := httptest.NewRecorder()
			s.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, page+"?platform=plan9/amd64/v"+strconv.Itoa(i), nil))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
		b.ReportMetric(float64(html), "html-bytes")
		b.ReportMetric(float64(weight), "page-bytes")
	})
	b.Run("kept", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			s.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, page, nil))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	})
}
