package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/badge"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
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
	// refs keeps the references of badge paths parsed, by their text (a
	// pure function of it, so never out of date): a README's badge is asked
	// for again and again, and parsing costs more than the rest of a kept
	// badge's answer.
	refs *lru.Cache[string, analysis.Reference]
}

func newBadges(cfg Options) *badges {
	o := cfg.Badges.withDefaults()
	refs, err := lru.New[string, analysis.Reference](o.CacheSize)
	if err != nil {
		panic(err) // only for a size below 1, which withDefaults rules out
	}
	return &badges{opts: o, svgs: badge.NewCache(o.CacheSize), refs: refs}
}

// parse is analysis.ParseReference through refs.
func (b *badges) parse(text string) (analysis.Reference, error) {
	if ref, ok := b.refs.Get(text); ok {
		return ref, nil
	}
	ref, err := analysis.ParseReference(text)
	if err == nil {
		b.refs.Add(text, ref)
	}
	return ref, err
}

// shown is what a badge request answers: the badge, and how its answer is
// sent.
type shown struct {
	key    badge.Key
	status int
	// cache is the Cache-Control: badges about to change (a first
	// inspection, a registry failure) are not cached.
	cache string
	// failed marks a badge that shows no value of the image (not found, a
	// registry failure, a mistake in the URL), for shields.io's isError.
	failed bool
}

// decideBadge says what the badge of kind for ref shows, from the one read
// path: it never waits on a registry for an image the store holds (a stale
// tag is refreshed in the background), so a badge says what the API says
// the moment the report changes. err is set only for internal failures.
func (s *Server) decideBadge(r *http.Request, kindText, refText, want string) (shown, error) {
	kind, ok := badge.ParseKind(kindText)
	if !ok {
		return shown{key: badge.Key{Badge: badge.Unknown()}, status: http.StatusNotFound, cache: badgeCacheControl, failed: true}, nil
	}
	grey := func(text, cache string) shown {
		return shown{key: badge.Key{Kind: kind, Badge: badge.Missing(kind, text)}, status: http.StatusOK, cache: cache, failed: true}
	}
	ref, err := s.badges.parse(refText)
	if err != nil || want != "" && !validPlatform(want) {
		return grey(badge.TextInvalid, badgeCacheControl), nil
	}
	a, err := s.images.Read(r.Context(), s.badgeViewer(r, ref.Repository), ref, images.ReadOptions{Wait: s.badges.opts.Wait, Client: clientAddr(r)})
	if err != nil {
		text, cache, ok := badgeFailureText(err)
		if !ok {
			return shown{}, err
		}
		code, _ := statusOf(err)
		s.log.InfoContext(r.Context(), "badge without report", "path", r.URL.Path, "code", code, "err", err)
		return grey(text, cache), nil
	}
	p, ok := a.Report.Select(want)
	if !ok {
		return grey(badge.TextNotFound, badgeCacheControl), nil
	}
	if kind == badge.Efficiency {
		return s.efficiencyBadge(r, p, grey)
	}
	return shown{key: badge.Key{Kind: kind, Digest: p.Digest, Platform: p.Platform, Badge: badge.For(kind, a.Report, p)},
		status: http.StatusOK, cache: badgeCacheControl}, nil
}

// badge answers GET /badges/{kind}/{reference}.svg. Every answer is an
// SVG, mistakes in the URL and failures included, because image proxies
// (GitHub's camo) show anything else as a broken image: an unknown kind is
// a 404 grey "unknown badge", a reference or ?platform= that does not parse
// a grey "invalid", an unknown image a grey "not found".
func (s *Server) badge(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	want := ""
	if r.URL.RawQuery != "" { // a README's badge has none: skip parsing an empty query
		want = r.URL.Query().Get("platform")
	}
	b, err := s.decideBadge(r, vars["kind"], vars["reference"], want)
	if err != nil {
		return err
	}
	s.writeBadge(w, r, b.status, s.badgeCache(r, b.cache), s.badges.svgs.Get(b.key))
	return nil
}

// shieldsEndpoint is shields.io's endpoint schema
// (https://shields.io/badges/endpoint-badge).
type shieldsEndpoint struct {
	SchemaVersion int    `json:"schemaVersion"`
	Label         string `json:"label"`
	Message       string `json:"message"`
	Color         string `json:"color"`
	IsError       bool   `json:"isError"`
}

// apiShields answers GET /api/v1/shields/{kind}/{reference}: the badge of
// kind in shields.io's endpoint schema, so a README can restyle it with
// shields. A mistake in the URL is a JSON error, as on every /api route.
func (s *Server) apiShields(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	if _, ok := badge.ParseKind(vars["kind"]); !ok {
		return &analysis.Error{Kind: analysis.ErrNotFound, Message: "there is no " + strconv.Quote(badge.Clean(vars["kind"], 40)) + " badge; the kinds are " + badge.KindNames()}
	}
	if _, err := analysis.ParseReference(vars["reference"]); err != nil {
		return err
	}
	if p := r.URL.Query().Get("platform"); p != "" && !validPlatform(p) {
		return invalidRequest("platform " + strconv.Quote(badge.Clean(p, 80)) + " is not os/arch[/variant]")
	}
	b, err := s.decideBadge(r, vars["kind"], vars["reference"], r.URL.Query().Get("platform"))
	if err != nil {
		return err
	}
	clean := b.key.Badge.Cleaned()
	w.Header().Set("Cache-Control", s.badgeCache(r, b.cache))
	return writeJSON(w, http.StatusOK, shieldsEndpoint{SchemaVersion: 1, Label: clean.Left, Message: clean.Right,
		Color: strings.TrimPrefix(string(clean.Color), "#"), IsError: b.failed})
}

// badgeFailureText is the grey badge's text for a failed read, and whether
// it may be cached: a deleted tag is "tag removed" (answered from the
// store, without asking the registry), an unknown image is "not found", a
// registry that wants credentials this service lacks "unauthorized"; a
// registry failure says what failed and is not cached.
// ok is false for failures that are not the image's or the registry's.
func badgeFailureText(err error) (text, cache string, ok bool) {
	if _, deleted := analysis.DeletedTag(err); deleted {
		return badge.TextTagRemoved, badgeCacheControl, true
	}
	switch {
	case errors.Is(err, images.ErrNotYet):
		return badge.TextNotFoundYet, badgeNoCacheControl, true
	case errors.Is(err, images.ErrBusy):
		return badge.TextTryAgain, badgeNoCacheControl, true
	case errors.Is(err, analysis.ErrNotFound):
		return badge.TextNotFound, badgeCacheControl, true
	case errors.Is(err, analysis.ErrUnauthorized):
		// Uncached: it turns into the image's badge once credentials are given.
		return badge.TextUnauthorized, badgeNoCacheControl, true
	case errors.Is(err, analysis.ErrForbidden):
		return "registry refused", badgeNoCacheControl, true
	case errors.Is(err, analysis.ErrRateLimited):
		return "rate limited", badgeNoCacheControl, true
	case errors.Is(err, analysis.ErrTimeout):
		return "registry timeout", badgeNoCacheControl, true
	case errors.Is(err, analysis.ErrUpstream):
		return "registry error", badgeNoCacheControl, true
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable", badgeNoCacheControl, true
	}
	return "", "", false
}

// Header values of every badge answer, made once (see writeBadge).
var (
	svgContentType = []string{"image/svg+xml"}
	nosniff        = []string{"nosniff"}
	badgeCSPValue  = []string{badgeCSP}
)

// writeBadge sends a rendered badge with the headers of docs/API.md, or 304 when
// the client already holds these bytes.
func (s *Server) writeBadge(w http.ResponseWriter, r *http.Request, status int, cacheControl string, out badge.Rendered) {
	h := w.Header()
	// The fixed values are shared slices set under their canonical names,
	// which is what Header.Set would store, without its allocations: a
	// kept badge is the service's hottest answer. Nothing writes into a
	// header's slice in place (Add appends, which copies a full one).
	h["Content-Type"] = svgContentType
	h["Etag"] = []string{out.ETag}
	h["Cache-Control"] = []string{cacheControl}
	h["X-Content-Type-Options"] = nosniff
	h["Content-Security-Policy"] = badgeCSPValue
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
