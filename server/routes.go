package server

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/docs"
)

// routes registers every route of docs/API.md in one place. A reference in
// a path may contain slashes, a colon and an @, so it is matched with .+ and
// routes with a suffix after it are registered first. Every route is
// registered with its full path on the one router: gorilla/mux subrouters
// lose a method mismatch to the next subrouter's "not found", which would
// answer 404 where docs/API.md wants 405.
func (s *Server) routes() {
	r := s.router
	r.NotFoundHandler = s.handle("not_found", func(w http.ResponseWriter, r *http.Request) error {
		return errNoRoute
	})
	r.MethodNotAllowedHandler = s.handle("method_not_allowed", s.methodNotAllowed)

	// Badges first: they are most of the traffic (every README view), and
	// gorilla/mux tries routes in order, one regular expression each. The
	// machine routes are quiet: logged at debug (see quietRoute).
	r.Handle("/badges/{kind}/{reference:.+}.svg", quiet(s.handle("badge", s.badge))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/healthz", quiet(s.handle("healthz", s.healthz))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", quiet(s.handle("readyz", s.readyz))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/healthz/registries", s.handle("healthz_registries", s.registriesStatus)).Methods(http.MethodGet, http.MethodHead)
	if !s.separateMetrics {
		r.Handle("/metrics", quiet(s.metricsExposition())).Methods(http.MethodGet)
	}

	r.Handle("/api/v1/openapi.yaml", s.handle("api_openapi", s.openAPI)).Methods(http.MethodGet, http.MethodHead)
	s.contentsRoutes()
	r.Handle("/api/v1/images/{reference:.+}/refresh", s.apiCrossOrigin().Handler(s.handle("api_refresh", s.apiRefresh))).Methods(http.MethodPost)
	r.Handle("/api/v1/images/{reference:.+}/sbom", s.handle("api_sbom", s.apiSBOM)).Methods(http.MethodGet)
	r.Handle("/api/v1/images/{reference:.+}", s.handle("api_image", s.apiImage)).Methods(http.MethodGet)
	r.Handle("/api/v1/repositories/{repository:.+}/tags", s.handle("api_tags", s.apiTags)).Methods(http.MethodGet)
	r.Handle("/api/v1/repositories/{repository:.+}/history", s.handle("api_history", s.apiHistory)).Methods(http.MethodGet)
	r.Handle("/api/v1/diff", s.handle("api_diff", s.apiDiff)).Methods(http.MethodGet)
	r.Handle("/api/v1/search", s.handle("api_search", s.apiSearch)).Methods(http.MethodGet)
	r.Handle("/api/v1/shields/{kind}/{reference:.+}", s.handle("api_shields", s.apiShields)).Methods(http.MethodGet)
	r.Handle("/v1/images/{repository:.+}/version/{digest}", s.handle("microbadger_version", s.microBadgerVersionRoute)).Methods(http.MethodGet)
	r.Handle("/v1/images/{reference:.+}", s.handle("microbadger_image", s.microBadgerV1)).Methods(http.MethodGet)
	s.pageRoutes()
	s.subscriptionRoutes()
	s.hookRoutes()
	s.signInRoutes()
	s.apiTokenRoutes()
	s.logEveryRoute()
}

// metricsExposition is the Prometheus text exposition of the service's
// registry.
func (s *Server) metricsExposition() http.Handler {
	return promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{})
}

// MetricsHandler serves GET /metrics alone, logged as the main router's
// /metrics would be, for a listener of its own (--metrics-addr): metrics
// then stay on an address that only the scraper reaches. Anything else
// there answers 404.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.logRequests(slog.LevelDebug, "/metrics", s.metricsExposition()))
	return mux
}

// methodNotAllowed answers a route asked with a method it does not take:
// 405 with the methods it does take in Allow.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil && match.Route != nil {
			allow = append(allow, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return &analysis.Error{Kind: errMethod, Message: r.Method + " is not allowed here; this route takes " + strings.Join(allow, ", ")}
}

// openAPI serves docs/openapi.yaml, the JSON API as a document.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/yaml")
	h.Set("Content-Length", strconv.Itoa(len(docs.OpenAPI)))
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(docs.OpenAPI)
	return err
}

// readyz answers 200 while the database answers, else 503: what a load
// balancer should send traffic by. /healthz, the liveness check, stays 200
// whatever the database does, so a database outage restarts nothing.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.store.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, werr := w.Write([]byte("the database does not answer\n"))
		return werr
	}
	_, err := w.Write([]byte("ok\n"))
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("ok\n"))
	return err
}
