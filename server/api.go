package server

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
)

// apiImage answers GET /api/v1/images/{reference}.
func (s *Server) apiImage(w http.ResponseWriter, r *http.Request) error {
	ref, err := analysis.ParseReference(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	how := images.ReadOptions{Refresh: wantsRefresh(r), Client: clientAddr(r)}
	if how.Refresh {
		if err := s.allowRefresh(r); err != nil {
			return err
		}
	}
	a, err := s.images.Read(r.Context(), s.viewer(r), ref, how)
	if err != nil {
		return err
	}
	return s.writeReport(w, ref, a)
}

// writeReport writes the JSON report of an answer, encoded once per answer
// version.
func (s *Server) writeReport(w http.ResponseWriter, ref analysis.Reference, a images.Answer) error {
	key := "json\x00" + ref.String()
	body, ok := s.responses.get(key, a.Version)
	if !ok {
		var err error
		if body, err = encodeJSON(a.Report); err != nil {
			return err
		}
		s.responses.put(key, a.Version, body)
	}
	writeJSONBytes(w, http.StatusOK, body)
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
	a, err := s.images.Read(r.Context(), s.viewer(r), ref, images.ReadOptions{Refresh: true})
	if err != nil {
		return err
	}
	return s.writeReport(w, ref, a)
}

// wantsRefresh reports ?refresh=1 (or true).
func wantsRefresh(r *http.Request) bool {
	v := r.URL.Query().Get("refresh")
	return v == "1" || v == "true"
}
