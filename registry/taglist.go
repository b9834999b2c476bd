package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagebadger/imagebadger/analysis"
)

// Limits of one tag listing. A registry chooses the pages and where the next
// one is (the Link header), so without them an answer could keep the
// service reading for ever: a Link to the same page, a chain of empty pages,
// or more tags than anyone keeps.
const (
	// MaxListedTags bounds the tags one listing reads: Docker Hub's largest
	// official repositories (library/node, library/python) hold a few
	// thousand tags, so 10,000 leaves room for them and stops a registry
	// that invents tags page after page.
	MaxListedTags = 10000
	// maxListPages bounds the pages of one listing: 10,000 tags at 50 a
	// page, so a registry serving pages far smaller than asked is still
	// read to its 10,000th tag, and one linking a page of a tag after
	// another stops at 200 requests.
	maxListPages = MaxListedTags / 50
	// listPageSize is the page size asked of registries (n=1000); a
	// registry may send fewer a page, and the Link to the next.
	listPageSize = 1000
)

// TagListing is a repository's tag list as one listing read it.
type TagListing struct {
	// Tags are the tags read, sorted and without repeats.
	Tags []string
	// Complete is false when the listing stopped before the registry's
	// last page (Stopped says why): a tag missing from Tags may still
	// exist, so nothing may be taken as deleted for its absence.
	Complete bool
	// Stopped says why an incomplete listing ended early.
	Stopped string
}

// listGuard watches one listing's pages and ends the listing, by taking
// the Link header off the page that names a bad next page, after the page
// that repeats a page already asked for (the same URL, or the same `last`),
// leaves the registry (another scheme, host or port, or a path other than
// the repository's tag list), or would pass maxListPages. The page that
// carried the bad Link is kept; the link is never dialled.
type listGuard struct {
	scheme, host, path string

	mu      sync.Mutex
	asked   map[string]bool
	lasts   map[string]bool
	pages   int
	stopped string
}

func newListGuard(r name.Repository) *listGuard {
	return &listGuard{
		scheme: r.Scheme(),
		host:   r.RegistryStr(),
		path:   "/v2/" + r.RepositoryStr() + "/tags/list",
		asked:  map[string]bool{},
		lasts:  map[string]bool{},
	}
}

// mine reports whether req is one of the listing's page requests.
func (g *listGuard) mine(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == g.path && sameHost(req.URL.Host, g.host)
}

// asking records a page request about to be sent.
func (g *listGuard) asking(u *url.URL) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked[pageKey(u)] = true
	if last := u.Query().Get("last"); last != "" {
		g.lasts[last] = true
	}
}

// answered checks the next-page link of a page that answered 200 and takes
// it off when it must not be followed.
func (g *listGuard) answered(resp *http.Response) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pages++
	link := resp.Header.Get("Link")
	if link == "" {
		return
	}
	if why := g.refuse(resp.Request.URL, link); why != "" {
		resp.Header.Del("Link")
		g.stopped = why
	}
}

// refuse returns why the Link of a page asked at from must not be followed,
// "" when it may. It reads the link as go-containerregistry does: the
// first <…>, resolved against the page's URL.
func (g *listGuard) refuse(from *url.URL, link string) string {
	if g.pages >= maxListPages {
		return fmt.Sprintf("the listing reached %d pages", maxListPages)
	}
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start != 0 || end < 0 {
		return "the registry's Link header is malformed"
	}
	target, err := url.Parse(link[1:end])
	if err != nil {
		return "the registry's Link header is malformed"
	}
	target = from.ResolveReference(target)
	switch {
	case target.Scheme != g.scheme || target.Host != g.host || target.User != nil:
		// As strict as go-containerregistry, which would fail the whole
		// listing on a link it refuses.
		return fmt.Sprintf("the registry's next page %q leaves the registry", truncateText(target.Redacted(), 200))
	case target.Path != g.path:
		return fmt.Sprintf("the registry's next page %q is not this repository's tag list", truncateText(target.Redacted(), 200))
	case g.asked[pageKey(target)]:
		return "the registry's next page repeats a page already read"
	case g.lasts[target.Query().Get("last")]:
		return "the registry's next page repeats a page already read (the same last tag)"
	}
	return ""
}

// pageKey is a page's URL with its query in one order, so that the same
// page written twice is one key.
func pageKey(u *url.URL) string {
	return u.Path + "?" + u.Query().Encode()
}

// result is what the guard ended, if anything.
func (g *listGuard) result() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopped
}

// listGuardTransport applies a request's listGuard (see requestInfo) to the
// pages it asks for.
type listGuardTransport struct{ next http.RoundTripper }

func (t *listGuardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	info, ok := requestOf(req.Context())
	if !ok || info.listing == nil || !info.listing.mine(req) {
		return t.next.RoundTrip(req)
	}
	info.listing.asking(req.URL)
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK {
		if resp.Request == nil {
			resp.Request = req
		}
		info.listing.answered(resp)
	}
	return resp, err
}

// ListTags lists every tag of repo as List does, for callers that want the
// names alone.
func (c *Client) ListTags(ctx context.Context, repo analysis.Repository) ([]string, error) {
	l, err := c.List(ctx, repo)
	return l.Tags, err
}

// List lists the tags of repo, following the registry's pagination within
// the listing limits (MaxListedTags tags, maxListPages pages, no page
// twice, never off the registry); a listing ended by one of them keeps
// what it read and says so (Complete false, Stopped).
func (c *Client) List(ctx context.Context, repo analysis.Repository) (TagListing, error) {
	what := "tags of " + repo.Name
	r, err := c.repository(repo)
	if err != nil {
		return TagListing{}, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid repository", repo)
	}
	guard := newListGuard(r)
	info := requestInfo{registry: repo.Registry, host: r.RegistryStr(), poll: c.poll, listing: guard}
	// Each page gets the request deadline; the whole listing gets one per
	// page a registry serving whole pages needs.
	ctx, cancel := context.WithTimeout(withRequest(ctx, info), c.timeout*time.Duration(1+MaxListedTags/listPageSize))
	defer cancel()
	lister, err := c.puller.Lister(ctx, r)
	if err != nil {
		cerr := c.classify(ctx, err, r.Tag("latest"), repo.Registry, what)
		if errors.Is(cerr, analysis.ErrNotFound) {
			return TagListing{}, missing(cerr, analysis.Reference{Repository: repo}, analysis.MissingRepository)
		}
		return TagListing{}, cerr
	}
	var tags []string
	out := TagListing{Complete: true}
	for lister.HasNext() {
		if len(tags) >= MaxListedTags {
			out.Complete, out.Stopped = false, fmt.Sprintf("the registry lists more than %d tags", MaxListedTags)
			break
		}
		pctx, pcancel := context.WithTimeout(ctx, c.timeout)
		page, err := lister.Next(pctx)
		pcancel()
		if err != nil {
			return TagListing{}, c.classify(ctx, err, r.Tag("latest"), repo.Registry, what)
		}
		tags = append(tags, page.Tags...)
		if len(page.Tags) == 0 && page.Next != "" {
			// An empty page has no last tag to go on from; following its
			// link could go on for as long as the registry likes.
			out.Complete, out.Stopped = false, "the registry sent an empty page with a link to another"
			break
		}
	}
	if why := guard.result(); why != "" && out.Complete {
		out.Complete, out.Stopped = false, why
	}
	if len(tags) > MaxListedTags {
		tags = tags[:MaxListedTags]
		out.Complete, out.Stopped = false, fmt.Sprintf("the registry lists more than %d tags", MaxListedTags)
	}
	slices.Sort(tags)
	out.Tags = slices.Compact(tags)
	return out, nil
}
