package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// TestPastedURLIsAnsweredWithTheReferenceToWrite: a reference pasted as a
// URL in the API's path or an image page's path is an invalid reference
// whose message says to drop the scheme and gives the reference without it;
// the home page's search box drops it itself.
func TestPastedURLIsAnsweredWithTheReferenceToWrite(t *testing.T) {
	const pasted = "http://127.0.0.1:5055/me/app:1"
	const want = "write the reference without http://: 127.0.0.1:5055/me/app:1"
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	var body errorBody
	if code := getJSON(t, s.URL+"/api/v1/images/"+pasted, &body); code != http.StatusBadRequest || body.Error.Code != "invalid_reference" || !strings.Contains(body.Error.Message, want) {
		t.Errorf("API: %d %+v, want 400 invalid_reference saying %q", code, body.Error, want)
	}
	p := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	// The router answers a path with "//" by a redirect to its clean form,
	// which a browser follows.
	a := pageGet(t, p, "/images/"+pasted)
	if loc := a.header.Get("Location"); a.status == http.StatusMovedPermanently && loc != "" {
		a = pageGet(t, p, loc)
	}
	if a.status != http.StatusBadRequest || !strings.Contains(a.testid("error-message").Text(), want) {
		t.Errorf("image page: %d, message %q, want 400 saying %q", a.status, a.testid("error-message").Text(), want)
	}
	a = pageGet(t, p, "/?q="+url.QueryEscape(pasted))
	if loc := a.header.Get("Location"); a.status != http.StatusSeeOther || loc != "/images/127.0.0.1:5055/me/app:1" {
		t.Errorf("search box: %d → %q, want 303 → the image page of the reference without http://", a.status, loc)
	}
}

// TestNotFoundSaysWhetherRepositoryOrTagIsMissing: a reference the registry
// lacks answers 404 not_found saying whether its repository or its tag is
// missing, as crane's listing of the repository judges; the page of a
// missing tag links the repository's page, which lists the tags there are.
func TestNotFoundSaysWhetherRepositoryOrTagIsMissing(t *testing.T) {
	p := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	stack.PushImage(t, stack.Image(t, nil, 1, nil), p.Registry.Host+"/acme/app:1")
	if _, err := crane.ListTags(p.Registry.Host+"/acme/nothing", crane.WithAuth(authn.Anonymous)); err == nil {
		t.Fatal("crane lists acme/nothing, which the test needs missing")
	}
	if tags, err := crane.ListTags(p.Registry.Host+"/acme/app", crane.WithAuth(authn.Anonymous)); err != nil || slices.Contains(tags, "nope") {
		t.Fatalf("crane lists acme/app as %v, %v; the test needs it without the tag nope", tags, err)
	}
	for _, tc := range []struct {
		ref, heading, says, link string
	}{
		{p.Registry.Host + "/acme/app:nope", "Image not found", "repository " + p.Registry.Host + "/acme/app has no tag nope", "/repositories/" + p.Registry.Host + "/acme/app"},
		{p.Registry.Host + "/acme/nothing:1", "Repository not found", "repository " + p.Registry.Host + "/acme/nothing does not exist", ""},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			var body errorBody
			resp, err := http.Get(p.URL + "/api/v1/images/" + tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusNotFound || body.Error.Code != "not_found" || body.Error.Message != tc.says {
				t.Errorf("API: %d %+v, want 404 not_found saying %q", resp.StatusCode, body.Error, tc.says)
			}
			a := pageGet(t, p, "/images/"+tc.ref)
			if a.status != http.StatusNotFound || a.doc.Find("h1").Text() != tc.heading || a.testid("error-message").Text() != tc.says {
				t.Errorf("page: %d, %q: %q; want 404, %q: %q", a.status, a.doc.Find("h1").Text(), a.testid("error-message").Text(), tc.heading, tc.says)
			}
			var links []string
			a.testid("error-links").Find("a").Each(func(_ int, s *goquery.Selection) { links = append(links, s.AttrOr("href", "")) })
			if tc.link != "" && !slices.Contains(links, tc.link) || tc.link == "" && len(links) > 0 {
				t.Errorf("page links %v, want %q", links, tc.link)
			}
			if tc.link != "" {
				if repo := pageGet(t, p, tc.link); repo.status != http.StatusOK {
					t.Errorf("the linked repository page answers %d", repo.status)
				}
			}
		})
	}
}

// TestRefusedSearchReadsAsSentences: the home page's answer to a query that
// is neither a reference nor part of a known name says both, as two
// sentences, the first closed by its full stop.
func TestRefusedSearchReadsAsSentences(t *testing.T) {
	p := stack.New(t, stack.Options{Registry: true, Watch: []string{"acme/base"}, Server: &server.Options{BaseURL: "https://badger.example"}})
	a := pageGet(t, p, "/?q="+url.QueryEscape("UPPER/Case:1"))
	text := strings.Join(strings.Fields(a.testid("search-error").Text()), " ")
	first, second, ok := strings.Cut(text, ". ")
	if a.status != http.StatusBadRequest || !ok || !strings.Contains(first, "upper-case letters") || second != "No known repository's name contains it either." {
		t.Errorf("%d, search error %q: want two sentences, the reference's problem and that no name contains it", a.status, text)
	}
}
