// Package server is imagebadger's HTTP face: pages, the JSON API, badges and
// hooks. Handlers return errors; one function (writeError) turns them into
// status codes and the JSON error shape of docs/API.md.
package server

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/store"
)

// Options holds what the server needs; every field is required unless noted,
// and zero optional fields mean the defaults named on them.
type Options struct {
	Images *images.Service
	// Store answers the pages' listings that are not image reads: recent
	// changes and the watched bases' activity.
	Store  *store.Store
	Logger *slog.Logger
	// Metrics is the registry /metrics exposes; the server adds its own
	// collectors to it.
	Metrics *prometheus.Registry
	// BaseURL is the public URL of the service, used in the copy-paste badge
	// snippets of the pages.
	BaseURL string
	// Watched lists the repositories tracked as bases (--watch), shown on the
	// home page. Optional.
	Watched []analysis.Repository
	// Now is the pages' clock for "3 days ago"; nil means time.Now.
	Now func() time.Time
	// Badges tunes the badge route; the zero value gives the defaults.
	Badges BadgeOptions
	// Subscriptions serves the webhook subscription API and pages; nil
	// leaves those routes out. Optional.
	Subscriptions *notify.Subscriptions
	// Watcher takes the refreshes the inbound hooks ask for; nil leaves the
	// hooks out. Optional.
	Watcher *notify.Watcher
	// HookToken is the bearer token of POST /hooks/registry (--hook-token);
	// empty disables that route.
	HookToken string
	// Refreshes bounds the refreshes one client may ask for (the refresh
	// route and button, ?refresh=1): each costs registry requests. The
	// default is DefaultRefreshBurst a DefaultRefreshPeriod; a negative Burst means no limit.
	Refreshes ratelimit.Limit
	// HookRefreshes bounds the refresh hook (POST /images/{repository}/{token})
	// per repository: each call re-reads every tag of the repository from
	// its registry. The default is DefaultHookRefreshBurst a DefaultHookRefreshPeriod.
	HookRefreshes ratelimit.Limit
	// TokenFailures bounds the wrong tokens one client may try on the token
	// routes (a subscription's API and page, the inbound hooks, the refresh
	// hook) before it is answered 429; the default is
	// DefaultTokenFailureBurst a DefaultTokenFailurePeriod.
	TokenFailures ratelimit.Limit
	// SeparateMetrics leaves /metrics off the router (it answers 404
	// there): the process serves MetricsHandler on an address of its own
	// (--metrics-addr), so the metrics are not public wherever the pages
	// are.
	SeparateMetrics bool
	// Contents analyses layer contents on demand; nil leaves the contents
	// routes, page and badge out. Optional.
	Contents *contents.Service
	// Build names the binary that serves, for the page footer and the
	// imagebadger_build_info gauge. Optional.
	Build BuildInfo
	// Auth tells who a request comes from (sessions, the proxy's header,
	// API and badge tokens); nil when no sign-in is configured, and then
	// every request is anonymous. Optional.
	Auth *auth.Auth
	// TrustedProxies are the networks of reverse proxies (--trusted-proxies)
	// whose Forwarded or X-Forwarded-For header names the client that
	// rate limits and the request log are keyed by (see clientaddr.go);
	// empty keys them by the TCP peer. Optional.
	TrustedProxies []netip.Prefix
}

// BuildInfo is what a binary knows of its own making: set at link time
// (-ldflags -X) or read from the module's build information. It is shown
// in the page footer and exported as imagebadger_build_info, so a person
// reporting a problem, or a dashboard, can say which build answered.
type BuildInfo struct {
	// Version is a release (v1.2.3), a pseudo-version, or "devel".
	Version string
	// Commit is the VCS revision the binary was built from, empty when
	// unknown.
	Commit string
	// Date is when it was built or committed (RFC 3339), empty when
	// unknown.
	Date string
}

// Display is the build as the page footer shows it: the version, with the
// commit's first 12 characters when the version does not name it.
func (b BuildInfo) Display() string {
	c := b.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if c == "" || strings.Contains(b.Version, c) {
		return b.Version
	}
	if b.Version == "" {
		return c
	}
	return b.Version + " (" + c + ")"
}

// Defaults of Options: each limit's burst and the period over which it
// refills.
const (
	DefaultRefreshBurst      = 20
	DefaultRefreshPeriod     = 10 * time.Minute
	DefaultHookRefreshBurst  = 3
	DefaultHookRefreshPeriod = time.Minute
	// DefaultTokenFailureBurst: 20 wrong tokens, then one every 30 s. A
	// token is 256 random bits, so this only stops a client hammering the
	// routes; a person who mistyped a link is never held up.
	DefaultTokenFailureBurst  = 20
	DefaultTokenFailurePeriod = 10 * time.Minute
)

// Server routes requests to handlers.
type Server struct {
	images   *images.Service
	store    *store.Store
	log      *slog.Logger
	metrics  *prometheus.Registry
	http     *httpMetrics
	router   *mux.Router
	pages    *pages
	badges   *badges
	subs     *notify.Subscriptions
	watcher  *notify.Watcher
	contents *contents.Service
	// refreshes limits on-demand refreshes per client, hookRefreshes the
	// refresh hook per repository.
	refreshes, hookRefreshes *ratelimit.Keyed
	// tokenFailures counts wrong tokens per client (see tokenGuarded).
	tokenFailures *ratelimit.Keyed
	// hookToken is --hook-token.
	hookToken string
	// responses keeps encoded JSON reports and rendered image pages (32 MiB).
	responses *responseMemo
	// separateMetrics is Options.SeparateMetrics.
	separateMetrics bool
	// auth is Options.Auth.
	auth *auth.Auth
	// trustedProxies is Options.TrustedProxies.
	trustedProxies []netip.Prefix
}

// New returns a Server with every route registered.
func New(cfg Options) *Server {
	if cfg.Refreshes.IsZero() {
		cfg.Refreshes = ratelimit.Limit{Burst: DefaultRefreshBurst, Period: DefaultRefreshPeriod}
	}
	if cfg.HookRefreshes.IsZero() {
		cfg.HookRefreshes = ratelimit.Limit{Burst: DefaultHookRefreshBurst, Period: DefaultHookRefreshPeriod}
	}
	if cfg.TokenFailures.IsZero() {
		cfg.TokenFailures = ratelimit.Limit{Burst: DefaultTokenFailureBurst, Period: DefaultTokenFailurePeriod}
	}
	s := &Server{
		images:    cfg.Images,
		store:     cfg.Store,
		log:       cfg.Logger,
		metrics:   cfg.Metrics,
		http:      newHTTPMetrics(cfg.Metrics),
		router:    mux.NewRouter(),
		pages:     newPages(cfg),
		badges:    newBadges(cfg),
		responses: newResponseMemo(32 << 20),

		subs:      cfg.Subscriptions,
		watcher:   cfg.Watcher,
		contents:  cfg.Contents,
		hookToken: cfg.HookToken,
		refreshes: ratelimit.New(cfg.Refreshes),

		hookRefreshes: ratelimit.New(cfg.HookRefreshes),
		tokenFailures: ratelimit.New(cfg.TokenFailures),

		separateMetrics: cfg.SeparateMetrics,
		auth:            cfg.Auth,
		trustedProxies:  cfg.TrustedProxies,
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(newBudgetCollector(cfg.Images.Budgets), newBuildInfoGauge(cfg.Build))
	}
	s.routes()
	return s
}

// allowRefresh takes one of the client's refreshes, or says how long to wait.
func (s *Server) allowRefresh(r *http.Request) error {
	if ok, wait := s.refreshes.Allow(clientAddr(r), time.Now()); !ok {
		return &analysis.Error{Kind: analysis.ErrRateLimited, RetryAfter: wait,
			Message: "too many refreshes from this address; the stored answer is served without one, or try again later"}
	}
	return nil
}

// tokenGuarded wraps a route that takes a token: a client whose wrong
// tokens have used up its TokenFailures is answered 429 rate_limited (with
// Retry-After) before the token is looked at, and every answer 401 counts
// one more. Guessing a token is thus as slow as the limit makes it.
func (s *Server) tokenGuarded(name string, next http.Handler) http.Handler {
	refuse := s.handle(name, func(w http.ResponseWriter, r *http.Request) error {
		_, wait := s.tokenFailures.Exhausted(clientAddr(r), time.Now())
		return &analysis.Error{Kind: analysis.ErrRateLimited, RetryAfter: wait,
			Message: "too many wrong tokens from this address; try again later"}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientAddr(r)
		if ex, _ := s.tokenFailures.Exhausted(client, time.Now()); ex {
			refuse.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusUnauthorized {
			s.tokenFailures.Allow(client, time.Now())
		}
	})
}

// apiCrossOrigin is the CrossOriginProtection of the state-changing JSON
// routes, the forms' own: a browser's cross-site request (a "simple" POST
// of any content type that a page elsewhere makes) is refused with 403,
// while scripts and CI, which send neither Origin nor Sec-Fetch-Site, pass.
func (s *Server) apiCrossOrigin() *http.CrossOriginProtection {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(s.handle("cross_origin", func(w http.ResponseWriter, r *http.Request) error {
		return &analysis.Error{Kind: errCrossOrigin,
			Message: "this request came from a page of another site, so it was refused; call the API from a script, or use this site's own pages"}
	}))
	return cop
}

// ServeHTTP implements http.Handler. The client address is resolved first
// (see clientaddr.go), once for every limit and log line of the request. A
// trailing slash is accepted on every /v1 and /images route (MicroBadger's
// clients wrote them so), by routing the path without it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = s.withClient(r)
	if p := r.URL.Path; len(p) > len("/images/") && strings.HasSuffix(p, "/") &&
		(strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/images/")) {
		r = r.Clone(r.Context())
		r.URL.Path = strings.TrimRight(p, "/")
		r.URL.RawPath = strings.TrimRight(r.URL.RawPath, "/")
	}
	s.router.ServeHTTP(w, r)
}

// HTTPServer wraps h in the http.Server every imagebadger process serves
// with: bounded header, read, write and idle times, so a slow or idle client
// cannot hold a connection (and its goroutine) open indefinitely, and
// net/http's own complaints go to log at warning level.
func HTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
