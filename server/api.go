package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"imagebadger/analysis"
	"imagebadger/images"
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
	if refresh {
		rep, err := s.images.Image(r.Context(), ref, true)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	a, err := s.read(r.Context(), ref)
	if err != nil {
		return err
	}
	key := "json\x00" + ref.String()
	body, ok := s.responses.get(key, a.Version)
	if !ok {
		body = encodeJSON(a.Report)
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

// read answers a plain read (pages, the JSON API without ?refresh=1, the
// MicroBadger API) the way badges are answered: a stored report at once, a
// stale one refreshed in the background for the next reader, and only an
// image never seen inspected while the reader waits (that answer has no
// Version). Making readers wait on a registry HEAD whenever the poll
// interval had passed cost every page a registry round trip, and released
// those waits in bursts that delayed the cheap requests around them (the
// issue 7 load test).
func (s *Server) read(ctx context.Context, ref analysis.Reference) (images.Answer, error) {
	a, err := s.images.Answer(ctx, ref)
	if err == nil {
		if a.Stale {
			s.badges.refresher.RefreshInBackground(ref)
		}
		return a, nil
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return images.Answer{}, err
	}
	rep, err := s.images.Image(ctx, ref, false)
	return images.Answer{Report: rep}, err
}
