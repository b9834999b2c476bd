package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// Hub reads Docker Hub's web API (hub.docker.com, --dockerhub-api), which
// the registry protocol lacks: a repository's description, stars, pulls and
// last push, and tag listings with digests, 100 tags a request, which is
// what Renovate and shields use. Listing 1,000 tags this way costs 10
// requests where the registry needs 1,000 HEADs. Its answers are bounded in
// size and time like every registry answer; callers fall back to the
// registry when it fails, and the registry stays the truth when a refresh
// is asked for.
type Hub struct {
	base    *url.URL
	client  *http.Client
	timeout time.Duration
	agent   string
	now     func() time.Time
	mu      sync.Mutex
	// until is when the API may be asked again after a 429.
	until time.Time
}

// HubOptions configures a Hub.
type HubOptions struct {
	// BaseURL is the API's root (https://hub.docker.com).
	BaseURL string
	// Transport carries every request; the service passes netguard's.
	Transport http.RoundTripper
	// Timeout bounds one request (default 20s).
	Timeout time.Duration
	// UserAgent is sent on every request.
	UserAgent string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limits of what the web API may make the service read.
const (
	// hubPageSize is the largest page Docker Hub serves.
	hubPageSize = 100
	// maxHubBody bounds one answer: a page of 100 tags, each with a dozen
	// platform images, is about 150 KiB.
	maxHubBody = 4 << 20
	// maxHubPages bounds one listing (MaxListedTags tags).
	maxHubPages = MaxListedTags / hubPageSize
	// maxHubPause bounds how long one answer can silence the API.
	maxHubPause = 10 * time.Minute
)

// NewHub returns a Hub for the API at o.BaseURL, which must be an http or
// https URL.
func NewHub(o HubOptions) (*Hub, error) {
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry: Docker Hub API %q is not an http or https URL", o.BaseURL)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Hub{
		base: u,
		client: &http.Client{
			Transport: o.Transport,
			// Docker Hub's API answers in place; a redirect elsewhere is
			// not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: o.Timeout,
		agent:   o.UserAgent,
		now:     o.Now,
	}, nil
}

// HubTag is one tag as Docker Hub's tag listing gives it.
type HubTag struct {
	Name string
	// Digest is what the tag points at (an index for multi-platform
	// images); empty for the old schema 1 images Hub lists without one.
	Digest string
	// Images are the platform images, attestations included as Hub gives
	// them (os and architecture "unknown").
	Images []HubImage
	// LastUpdated and LastPushed are Hub's last_updated and tag_last_pushed.
	LastUpdated, LastPushed time.Time
}

// HubImage is one platform image of a HubTag.
type HubImage struct {
	Digest, OS, Architecture, Variant string
}

// hubRepository is the part of GET /v2/namespaces/{ns}/repositories/{repo}
// read here.
type hubRepository struct {
	Description string     `json:"description"`
	StarCount   *int64     `json:"star_count"`
	PullCount   *int64     `json:"pull_count"`
	LastUpdated *time.Time `json:"last_updated"`
}

// hubTagPage is one page of GET …/tags.
type hubTagPage struct {
	Count   *int    `json:"count"`
	Next    *string `json:"next"`
	Results []struct {
		Name          string     `json:"name"`
		Digest        string     `json:"digest"`
		LastUpdated   *time.Time `json:"last_updated"`
		TagLastPushed *time.Time `json:"tag_last_pushed"`
		Images        []struct {
			Digest       string  `json:"digest"`
			OS           string  `json:"os"`
			Architecture string  `json:"architecture"`
			Variant      *string `json:"variant"`
		} `json:"images"`
	} `json:"results"`
}

// hubPath splits a docker.io repository into Docker Hub's namespace and
// name ("library/python" → library, python).
func hubPath(repo analysis.Repository) (ns, name string, err error) {
	if repo.Registry != analysis.DockerHub {
		return "", "", fmt.Errorf("registry: %s is not a Docker Hub repository", repo)
	}
	ns, name, ok := strings.Cut(repo.Name, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("registry: %s is not a namespace/name Docker Hub repository", repo)
	}
	return ns, name, nil
}

// Repository returns Docker Hub's facts about repo.
func (h *Hub) Repository(ctx context.Context, repo analysis.Repository) (analysis.RepositoryInfo, error) {
	ns, name, err := hubPath(repo)
	if err != nil {
		return analysis.RepositoryInfo{}, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a Docker Hub repository", repo)
	}
	u := h.base.JoinPath("v2", "namespaces", ns, "repositories", name)
	what := "the Docker Hub page of " + repo.Short()
	body, err := h.get(ctx, u.String(), what)
	if err != nil {
		return analysis.RepositoryInfo{}, err
	}
	var r hubRepository
	if err := json.Unmarshal(body, &r); err != nil {
		return analysis.RepositoryInfo{}, analysis.Errorf(analysis.ErrUpstream, err, "Docker Hub sent a malformed answer for %s", what)
	}
	if r.StarCount == nil || r.PullCount == nil || *r.StarCount < 0 || *r.PullCount < 0 {
		return analysis.RepositoryInfo{}, analysis.Errorf(analysis.ErrUpstream, nil, "Docker Hub's answer for %s lacks star_count or pull_count", what)
	}
	info := analysis.RepositoryInfo{
		Source:      analysis.SourceDockerHub,
		Description: truncateText(r.Description, maxDescription),
		StarCount:   *r.StarCount,
		PullCount:   *r.PullCount,
	}
	if r.LastUpdated != nil && !r.LastUpdated.IsZero() {
		t := r.LastUpdated.UTC().Truncate(time.Second)
		info.LastUpdated = &t
	}
	return info, nil
}

// maxDescription bounds the description kept, in bytes.
const maxDescription = 1000

// HubListing is a repository's tags as one Docker Hub listing read them.
type HubListing struct {
	Tags []HubTag
	// Complete is false when the listing stopped before Hub's last page
	// (Stopped says why); a tag missing from Tags may still exist.
	Complete bool
	Stopped  string
}

// Tags lists the tags of repo with their digests, following Docker Hub's
// next links up to MaxListedTags tags. A next link that repeats a page
// already read or leaves the API's own scheme and host ends the listing
// after the page that named it, as does the tag limit: the listing keeps
// what it read and says it is not complete.
func (h *Hub) Tags(ctx context.Context, repo analysis.Repository) (HubListing, error) {
	ns, name, err := hubPath(repo)
	if err != nil {
		return HubListing{}, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a Docker Hub repository", repo)
	}
	what := "the Docker Hub tag list of " + repo.Short()
	u := h.base.JoinPath("v2", "namespaces", ns, "repositories", name, "tags")
	u.RawQuery = "page_size=" + strconv.Itoa(hubPageSize)
	next := u.String()
	out := HubListing{Complete: true}
	seen := map[string]bool{}
	asked := map[string]bool{}
	for page := 0; next != ""; page++ {
		if page >= maxHubPages {
			out.Complete, out.Stopped = false, fmt.Sprintf("Docker Hub lists more than %d pages", maxHubPages)
			break
		}
		asked[next] = true
		body, err := h.get(ctx, next, what)
		if err != nil {
			return HubListing{}, err
		}
		var p hubTagPage
		if err := json.Unmarshal(body, &p); err != nil {
			return HubListing{}, analysis.Errorf(analysis.ErrUpstream, err, "Docker Hub sent a malformed page of %s", what)
		}
		if p.Count == nil || p.Results == nil {
			return HubListing{}, analysis.Errorf(analysis.ErrUpstream, nil, "Docker Hub sent a page of %s without count or results", what)
		}
		for _, r := range p.Results {
			if r.Name == "" || seen[r.Name] {
				continue
			}
			if r.Digest != "" && !validDigest(r.Digest) {
				return HubListing{}, analysis.Errorf(analysis.ErrUpstream, nil, "Docker Hub lists tag %q of %s with a malformed digest", truncateText(r.Name, 128), repo.Short())
			}
			if len(out.Tags) >= MaxListedTags {
				out.Complete, out.Stopped = false, fmt.Sprintf("Docker Hub lists more than %d tags", MaxListedTags)
				return out, nil
			}
			seen[r.Name] = true
			t := HubTag{Name: r.Name, Digest: r.Digest}
			if r.LastUpdated != nil {
				t.LastUpdated = r.LastUpdated.UTC()
			}
			if r.TagLastPushed != nil {
				t.LastPushed = r.TagLastPushed.UTC()
			}
			for _, im := range r.Images {
				if im.Digest != "" && !validDigest(im.Digest) {
					return HubListing{}, analysis.Errorf(analysis.ErrUpstream, nil, "Docker Hub lists an image of tag %q of %s with a malformed digest", truncateText(r.Name, 128), repo.Short())
				}
				hi := HubImage{Digest: im.Digest, OS: im.OS, Architecture: im.Architecture}
				if im.Variant != nil {
					hi.Variant = *im.Variant
				}
				t.Images = append(t.Images, hi)
			}
			out.Tags = append(out.Tags, t)
		}
		next = ""
		if p.Next != nil && *p.Next != "" {
			n, err := h.sameAPI(*p.Next)
			switch {
			case err != nil:
				out.Complete, out.Stopped = false, "Docker Hub's next page is not on its own API: "+err.Error()
			case asked[n]:
				out.Complete, out.Stopped = false, "Docker Hub's next page repeats a page already read"
			case len(p.Results) == 0:
				out.Complete, out.Stopped = false, "Docker Hub sent an empty page with a link to another"
			default:
				next = n
			}
		}
	}
	return out, nil
}

// sameAPI checks that a next link stays on the API's scheme and host, so
// that an answer cannot send the service anywhere else.
func (h *Hub) sameAPI(raw string) (string, error) {
	u, err := h.base.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != h.base.Scheme || !strings.EqualFold(u.Host, h.base.Host) || u.User != nil {
		return "", fmt.Errorf("next link %q leaves %s", truncateText(raw, 200), h.base.Host)
	}
	return u.String(), nil
}

// errHubPaused is an ask while Docker Hub's API has told us to wait.
var errHubPaused = errors.New("docker hub's api asked to wait")

// get reads one answer of the API, bounded in time and size.
func (h *Hub) get(ctx context.Context, u, what string) ([]byte, error) {
	h.mu.Lock()
	wait := h.until.Sub(h.now())
	h.mu.Unlock()
	if wait > 0 {
		e := analysis.Errorf(analysis.ErrRateLimited, errHubPaused, "Docker Hub's API is rate limiting this service; try again later")
		e.RetryAfter = wait
		return nil, e
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("registry: Docker Hub request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", h.agent)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, h.classify(err, what)
	}
	defer resp.Body.Close()
	h.observe(resp)
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, analysis.Errorf(analysis.ErrNotFound, nil, "%s not found", what)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, analysis.Errorf(analysis.ErrUnauthorized, nil, "Docker Hub refused %s without credentials", what)
	case resp.StatusCode == http.StatusTooManyRequests:
		e := analysis.Errorf(analysis.ErrRateLimited, nil, "Docker Hub's API is rate limiting this service; try again later")
		e.RetryAfter = h.pauseLeft()
		return nil, e
	default:
		return nil, analysis.Errorf(analysis.ErrUpstream, nil, "Docker Hub answered %d for %s", resp.StatusCode, what)
	}
	if resp.ContentLength > maxHubBody {
		return nil, analysis.Errorf(analysis.ErrUpstream, nil, "Docker Hub sent %s larger than %d MiB", what, maxHubBody>>20)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHubBody+1))
	if err != nil {
		return nil, h.classify(err, what)
	}
	if len(body) > maxHubBody {
		return nil, analysis.Errorf(analysis.ErrUpstream, nil, "Docker Hub sent %s larger than %d MiB", what, maxHubBody>>20)
	}
	return body, nil
}

func (h *Hub) classify(err error, what string) error {
	err = scrubbed(err)
	var f refusal
	switch {
	case errors.As(err, &f) && f.Forbidden():
		return analysis.Errorf(analysis.ErrForbidden, err, "Docker Hub's API address is refused by this service's network policy")
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return analysis.Errorf(analysis.ErrTimeout, err, "Docker Hub's API did not answer in time for %s", what)
	}
	return analysis.Errorf(analysis.ErrUpstream, err, "reading %s failed", what)
}

// observe pauses the API after a 429 (for Retry-After, else until
// X-RateLimit-Reset, else a minute) and when X-RateLimit-Remaining says 0.
func (h *Hub) observe(resp *http.Response) {
	now := h.now()
	var d time.Duration
	reset := func() time.Duration {
		if s, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil && s > now.Unix() {
			return time.Unix(s, 0).Sub(now)
		}
		return 0
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if d = ParseRetryAfter(resp.Header.Get("Retry-After"), now); d == 0 {
			if d = reset(); d == 0 {
				d = time.Minute
			}
		}
	case strings.TrimSpace(resp.Header.Get("X-RateLimit-Remaining")) == "0":
		d = reset()
	}
	if d <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if until := now.Add(min(d, maxHubPause)); until.After(h.until) {
		h.until = until
	}
}

func (h *Hub) pauseLeft() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return max(h.until.Sub(h.now()), 0)
}

// validDigest accepts the sha256 digests Docker Hub lists.
func validDigest(d string) bool {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return false
	}
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// truncateText cuts s to at most n bytes, on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
