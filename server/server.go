// Package server is imagebadger's HTTP face: pages, the JSON API, badges and
// hooks. Handlers return errors; one function (writeError) turns them into
// status codes and the JSON error shape of API.md.
package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"imagebadger/analysis"
	"imagebadger/images"
	"imagebadger/notify"
	"imagebadger/ratelimit"
	"imagebadger/store"
)

// Config holds what the server needs; every field is required unless noted,
// and zero optional fields mean the defaults named on them.
type Config struct {
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
	// default is DefaultRefreshLimit; a negative Burst means no limit.
	Refreshes ratelimit.Limit
}

// DefaultRefreshLimit is Config.Refreshes' default.
var DefaultRefreshLimit = ratelimit.Limit{Burst: 20, Period: 10 * time.Minute}

// Server routes requests to handlers.
type Server struct {
	images  *images.Service
	store   *store.Store
	log     *slog.Logger
	metrics *prometheus.Registry
	http    *httpMetrics
	router  *mux.Router
	pages   *pages
	badges  *badges
	subs    *notify.Subscriptions
	watcher *notify.Watcher
	// refreshes limits on-demand refreshes per client.
	refreshes *ratelimit.Keyed
	// hookToken is --hook-token.
	hookToken string
	// responses keeps encoded JSON reports and rendered image pages (32 MiB).
	responses *responseMemo
}

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	if cfg.Refreshes.IsZero() {
		cfg.Refreshes = DefaultRefreshLimit
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
		hookToken: cfg.HookToken,
		refreshes: ratelimit.New(cfg.Refreshes),
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

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
