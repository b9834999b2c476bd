package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes registers every route of API.md in one place. A reference in a path
// may contain slashes, a colon and an @, so it is matched with .+ and routes
// with a suffix after it are registered first.
func (s *Server) routes() {
	r := s.router
	r.Use(s.logRequests)
	r.NotFoundHandler = s.handle("not_found", func(w http.ResponseWriter, r *http.Request) error {
		return errNoRoute
	})

	r.Handle("/healthz", s.handle("healthz", s.healthz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.Handle("/badges/{kind}/{reference:.+}.svg", s.handle("badge", s.badge)).Methods(http.MethodGet, http.MethodHead)

	api := r.PathPrefix("/api/v1").Subrouter()
	api.Handle("/images/{reference:.+}/refresh", s.handle("api_refresh", s.apiRefresh)).Methods(http.MethodPost)
	api.Handle("/images/{reference:.+}", s.handle("api_image", s.apiImage)).Methods(http.MethodGet)
	api.Handle("/repositories/{repository:.+}/tags", s.handle("api_tags", s.apiTags)).Methods(http.MethodGet)
	r.Handle("/v1/images/{reference:.+}", s.handle("microbadger_image", s.microBadgerV1)).Methods(http.MethodGet)
	s.pageRoutes()
	s.subscriptionRoutes()
	s.hookRoutes()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("ok\n"))
	return err
}
