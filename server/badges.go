package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"imagebadger/analysis"
	"imagebadger/badge"
	"imagebadger/images"
)

// BadgeOptions tunes the badge route; zero fields mean the defaults named
// on them.
type BadgeOptions struct {
	// CacheSize bounds the rendered badges kept in memory (default
	// DefaultBadgeCacheSize).
	CacheSize int
	// Wait bounds how long a badge for an image never seen waits for its
	// first inspection (default DefaultBadgeWait) before answering "not
	// found yet".
	Wait time.Duration
}

// Defaults of BadgeOptions.
const (
	DefaultBadgeCacheSize = 4096
	DefaultBadgeWait      = 3 * time.Second
)

func (o BadgeOptions) withDefaults() BadgeOptions {
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultBadgeCacheSize
	}
	if o.Wait <= 0 {
		o.Wait = DefaultBadgeWait
	}
	return o
}

// Cache-Control of badges. Badges are short-lived in caches (GitHub's image
// proxy honours max-age), so a moved tag shows within a minute or so; a
// badge that is about to change is not cached at all.
const (
	badgeCacheControl   = "public, max-age=60"
	badgeNoCacheControl = "no-cache, max-age=0"
	badgeCSP            = "default-src 'none'; style-src 'unsafe-inline'"
)

// badges is the state of the badge route: the rendered SVGs, by what they
// say (so never out of date).
type badges struct {
	opts BadgeOptions
	svgs *badge.Cache
}

func newBadges(cfg Config) *badges {
	o := cfg.Badges.withDefaults()
	return &badges{opts: o, svgs: badge.NewCache(o.CacheSize)}
}

// badge answers GET /badges/{kind}/{reference}.svg. It never waits on a
// registry for an image the store holds: the read path answers from memory
// or the store (refreshing a stale tag in the background), so a badge says
// what the API says the moment the report changes.
func (s *Server) badge(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	kind, ok := badge.ParseKind(vars["kind"])
	if !ok {
		return &analysis.Error{Kind: analysis.ErrNotFound, Message: fmt.Sprintf(
			"there is no %q badge; the kinds are %s", badge.Clean(vars["kind"], 40), badge.KindNames())}
	}
	ref, err := analysis.ParseReference(vars["reference"])
	if err != nil {
		return err
	}
	want := r.URL.Query().Get("platform")
	if want != "" && !validPlatform(want) {
		return invalidRequest(fmt.Sprintf("platform %q is not os/arch[/variant]", badge.Clean(want, 80)))
	}
	a, err := s.images.Read(r.Context(), ref, images.ReadOptions{Wait: s.badges.opts.Wait})
	if err != nil {
		return s.badgeFailure(w, r, kind, err)
	}
	bk := badge.Key{Kind: kind, Badge: badge.Missing(kind, badge.TextNotFound)}
	if p, ok := a.Report.Select(want); ok {
		bk = badge.Key{Kind: kind, Digest: p.Digest, Platform: p.Platform, Badge: badge.For(kind, a.Report, p)}
	}
	s.writeBadge(w, r, http.StatusOK, badgeCacheControl, s.badges.svgs.Get(bk))
	return nil
}

// badgeFailure answers a badge whose report could not be had. Badges are
// images in other sites' pages, so even failures are grey badges answered
// with 200: a deleted tag is "tag removed" (answered from the store, without
// asking the registry), an unknown image is "not found" as docs/API.md says (a registry that
// wants credentials counts as one, as Docker Hub answers so for missing
// repositories), and a registry failure says what failed, uncached. A
// non-2xx answer would show as a broken image wherever an image proxy
// (GitHub's camo) stands between the README and this service. Only
// mistakes in the URL and internal errors get the JSON error.
func (s *Server) badgeFailure(w http.ResponseWriter, r *http.Request, kind badge.Kind, err error) error {
	var text string
	if _, deleted := analysis.DeletedTag(err); deleted {
		s.writeBadge(w, r, http.StatusOK, badgeCacheControl, s.badges.svgs.Get(badge.Key{Kind: kind, Badge: badge.Missing(kind, badge.TextTagRemoved)}))
		return nil
	}
	switch {
	case errors.Is(err, images.ErrNotYet), errors.Is(err, images.ErrBusy):
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

// writeBadge sends a rendered badge with the headers of docs/API.md, or 304 when
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
