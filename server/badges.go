package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"imagebadger/analysis"
	"imagebadger/badge"
	"imagebadger/images"
)

// BadgeOptions tunes the badge route; the zero value gives the defaults.
type BadgeOptions struct {
	// CacheSize bounds the rendered badges kept in memory (default 4096).
	CacheSize int
	// Answers bounds the badge answers kept in memory, by request (default 4096).
	Answers int
	// ReportTTL is how long an answer made from a stored report is served
	// again before the store is read again (default 5 s): a popular badge
	// then costs neither a database read nor a reference parse, and a tag
	// move shows within this time.
	ReportTTL time.Duration
	// Wait bounds how long a badge for an image never seen waits for its
	// first inspection (default 3 s) before answering "not found yet".
	Wait time.Duration
	// Baseline, when set, is rendered once and served at GET
	// /_bench/baseline.svg with the badge headers: the from-memory baseline
	// that bench/loadbench compares cached badges with. The service never
	// sets it.
	Baseline *badge.Badge
}

// Cache-Control of badges. Badges are short-lived in caches (GitHub's image
// proxy honours max-age), so a moved tag shows within a minute or so; a
// badge that is about to change is not cached at all.
const (
	badgeCacheControl   = "public, max-age=60"
	badgeNoCacheControl = "no-cache, max-age=0"
	badgeCSP            = "default-src 'none'; style-src 'unsafe-inline'"
)

// errNotYet is the outcome of a first inspection that did not finish within
// BadgeOptions.Wait.
var errNotYet = errors.New("first inspection still running")

// badges is the state of the badge route: rendered SVGs, recent answers
// and the background inspections.
type badges struct {
	opts      BadgeOptions
	svgs      *badge.Cache
	answers   *answerMemo
	refresher *images.Refresher
	baseline  badge.Rendered
}

func newBadges(cfg Config) *badges {
	o := cfg.Badges
	if o.CacheSize <= 0 {
		o.CacheSize = 4096
	}
	if o.Answers <= 0 {
		o.Answers = 4096
	}
	if o.ReportTTL <= 0 {
		o.ReportTTL = 5 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = 3 * time.Second
	}
	rf := cfg.Refresher
	if rf == nil {
		rf = images.NewRefresher(cfg.Images, images.RefresherOptions{Logger: cfg.Logger})
	}
	b := &badges{
		opts:      o,
		svgs:      badge.NewCache(o.CacheSize),
		answers:   &answerMemo{max: o.Answers, ttl: o.ReportTTL, items: map[answerKey]answer{}},
		refresher: rf,
	}
	if o.Baseline != nil {
		b.baseline = badge.Render(*o.Baseline)
	}
	return b
}

// badge answers GET /badges/{kind}/{reference}.svg. It never waits on a
// registry for an image the store holds: the stored report answers, and a
// stale one is refreshed in the background for the next request.
func (s *Server) badge(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	// The hot path: this very request was answered a moment ago.
	key := answerKey{kind: vars["kind"], ref: vars["reference"], query: r.URL.RawQuery}
	now := time.Now()
	if a, ok := s.badges.answers.get(key, now); ok {
		if a.stale {
			s.badges.refresher.RefreshInBackground(a.ref)
		}
		s.writeBadge(w, r, http.StatusOK, badgeCacheControl, a.out)
		return nil
	}

	kind, ok := badge.ParseKind(vars["kind"])
	if !ok {
		return &analysis.Error{Kind: analysis.ErrNotFound, Message: fmt.Sprintf(
			"there is no %q badge; the kinds are image, version, commit, license and base", badge.Clean(vars["kind"], 40))}
	}
	ref, err := analysis.ParseReference(vars["reference"])
	if err != nil {
		return err
	}
	want := r.URL.Query().Get("platform")
	if want != "" && !validPlatform(want) {
		return invalidRequest(fmt.Sprintf("platform %q is not os/arch[/variant]", badge.Clean(want, 80)))
	}
	rep, stale, err := s.badgeReport(r.Context(), ref)
	if err != nil {
		return s.badgeFailure(w, r, kind, err)
	}
	bk := badge.Key{Kind: kind, Badge: badge.Missing(kind, badge.TextNotFound)}
	if p, ok := rep.Select(want); ok {
		bk = badge.Key{Kind: kind, Digest: p.Digest, Platform: p.Platform, Badge: badge.For(kind, rep, p)}
	}
	out := s.badges.svgs.Get(bk)
	s.badges.answers.put(key, answer{out: out, ref: ref, stale: stale, read: now})
	s.writeBadge(w, r, http.StatusOK, badgeCacheControl, out)
	return nil
}

// badgeReport returns the report a badge describes: from the store
// (refreshing a stale one in the background), else from a first inspection
// that is waited for at most BadgeOptions.Wait.
func (s *Server) badgeReport(ctx context.Context, ref analysis.Reference) (rep *analysis.Report, stale bool, err error) {
	rep, stale, err = s.images.Stored(ctx, ref)
	if err == nil {
		if stale {
			s.badges.refresher.RefreshInBackground(ref)
		}
		return rep, stale, nil
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return nil, false, err
	}
	job := s.badges.refresher.RefreshInBackground(ref)
	timer := time.NewTimer(s.badges.opts.Wait)
	defer timer.Stop()
	select {
	case <-job.Done():
	case <-timer.C:
		return nil, false, errNotYet
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	if rep, err = job.Result(); err != nil {
		return nil, false, err
	}
	return rep, false, nil
}

// badgeFailure answers a badge whose report could not be had. Badges are
// images in other sites' pages, so even failures are grey badges answered
// with 200: an unknown image is "not found" as API.md says (a registry that
// wants credentials counts as one, as Docker Hub answers so for missing
// repositories), and a registry failure says what failed, uncached. A
// non-2xx answer would show as a broken image wherever an image proxy
// (GitHub's camo) stands between the README and this service. Only
// mistakes in the URL and internal errors get the JSON error.
func (s *Server) badgeFailure(w http.ResponseWriter, r *http.Request, kind badge.Kind, err error) error {
	var text string
	switch {
	case errors.Is(err, errNotYet), errors.Is(err, images.ErrBusy):
		s.writeBadge(w, r, http.StatusOK, badgeNoCacheControl, s.badges.svgs.Get(badge.Key{Kind: kind, Badge: badge.Missing(kind, badge.TextNotFoundYet)}))
		return nil
	case errors.Is(err, analysis.ErrNotFound), errors.Is(err, analysis.ErrUnauthorized):
		s.writeBadge(w, r, http.StatusOK, badgeCacheControl, s.badges.svgs.Get(badge.Key{Kind: kind, Badge: badge.Missing(kind, badge.TextNotFound)}))
		return nil
	case errors.Is(err, analysis.ErrForbidden):
		text = "registry refused"
	case errors.Is(err, analysis.ErrRateLimited):
		text = "rate limited"
	case errors.Is(err, analysis.ErrTimeout):
		text = "registry timeout"
	case errors.Is(err, analysis.ErrUpstream):
		text = "registry error"
	default:
		return err
	}
	code, _ := statusOf(err)
	s.log.InfoContext(r.Context(), "badge without report", "path", r.URL.Path, "code", code, "err", err)
	s.writeBadge(w, r, http.StatusOK, badgeNoCacheControl, s.badges.svgs.Get(badge.Key{Kind: kind, Badge: badge.Missing(kind, text)}))
	return nil
}

// writeBadge sends a rendered badge with the headers of API.md, or 304 when
// the client already holds these bytes.
func (s *Server) writeBadge(w http.ResponseWriter, r *http.Request, status int, cacheControl string, out badge.Rendered) {
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("ETag", out.ETag)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", badgeCSP)
	if status == http.StatusOK && etagMatches(r.Header.Get("If-None-Match"), out.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(out.SVG)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(out.SVG)
	}
}

// benchBaseline serves BadgeOptions.Baseline exactly as a cached badge is
// served, minus finding the badge: the yardstick of bench/loadbench.
func (s *Server) benchBaseline(w http.ResponseWriter, r *http.Request) error {
	s.writeBadge(w, r, http.StatusOK, badgeCacheControl, s.badges.baseline)
	return nil
}

// etagMatches implements If-None-Match's weak comparison against one strong
// ETag: any listed tag, with or without W/, or "*".
func etagMatches(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}

// validPlatform accepts os/arch[/variant] with short lower-case words, the
// form of analysis.Platform.Platform.
func validPlatform(s string) bool {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 32 {
			return false
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// answerMemo keeps recent badge answers by request (kind, reference and
// query as written in the URL), bounded in entries, so that serving a
// popular badge costs a map lookup: no reference parse, no database read,
// no registry. Only answers made from a stored report are kept.
type answerMemo struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	items map[answerKey]answer
}

type answerKey struct{ kind, ref, query string }

type answer struct {
	out   badge.Rendered
	ref   analysis.Reference
	stale bool // the report was older than the poll interval when read
	read  time.Time
}

func (m *answerMemo) get(k answerKey, now time.Time) (answer, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.items[k]
	if !ok || now.Sub(a.read) >= m.ttl {
		return answer{}, false
	}
	return a, true
}

// put stores a; when full it drops expired entries and, if that is not
// enough, arbitrary ones (Go's map order), which costs no bookkeeping on the
// hot path and only a store read when an evicted badge is asked again.
func (m *answerMemo) put(k answerKey, a answer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[k]; !ok && len(m.items) >= m.max {
		for old, e := range m.items {
			if a.read.Sub(e.read) >= m.ttl {
				delete(m.items, old)
			}
		}
		for old := range m.items {
			if len(m.items) < m.max {
				break
			}
			delete(m.items, old)
		}
	}
	m.items[k] = a
}

// benchRoutes registers GET /_bench/baseline.svg when BadgeOptions.Baseline
// is set (bench/loadbench only), right after the badge route so that both
// cost the router the same.
func (s *Server) benchRoutes() {
	if s.badges.baseline.SVG != nil {
		s.router.Handle("/_bench/baseline.svg", s.handle("bench_baseline", s.benchBaseline)).Methods(http.MethodGet)
	}
}
