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
	refresh := r.URL.Query().Get("refresh")
	rep, err := s.images.Image(r.Context(), ref, refresh == "1" || refresh == "true")
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
	rep, err := s.images.Image(r.Context(), ref, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
