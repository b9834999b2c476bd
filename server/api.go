package server

import (
	"net/http"

	"github.com/gorilla/mux"

	"imagebadger/analysis"
)

// apiImage answers GET /api/v1/images/{reference}.
func (s *Server) apiImage(w http.ResponseWriter, r *http.Request) error {
	ref, err := analysis.ParseReference(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	refresh := wantsRefresh(r)
	if refresh {
		if err := s.allowRefresh(r); err != nil {
			return err
		}
	}
	rep, err := s.images.Image(r.Context(), ref, refresh)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// apiRefresh answers POST /api/v1/images/{reference}/refresh: re-resolve now.
func (s *Server) apiRefresh(w http.ResponseWriter, r *http.Request) error {
	ref, err := analysis.ParseReference(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	if err := s.allowRefresh(r); err != nil {
		return err
	}
	rep, err := s.images.Image(r.Context(), ref, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// wantsRefresh reports ?refresh=1 (or true).
func wantsRefresh(r *http.Request) bool {
	v := r.URL.Query().Get("refresh")
	return v == "1" || v == "true"
}
