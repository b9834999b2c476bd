package server

import (
	"net/http"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
)

// viewer is who r comes from, for the visibility check every read passes
// in images. Every handler asks here and nowhere else. Without sign-in
// configured it is the anonymous visitor; with it, the API token, the
// authenticating proxy's header or the session (see requestViewer).
func (s *Server) viewer(r *http.Request) auth.Viewer {
	return s.requestViewer(r)
}

// badgeViewer is viewer for the badge and shields routes of repository,
// which also honour a badge token (?token=) opening that repository's
// badges alone. A token that is not the repository's current one leaves
// the viewer as it was: a badge answers as for anyone, never 401.
func (s *Server) badgeViewer(r *http.Request, repository analysis.Repository) auth.Viewer {
	v := s.viewer(r)
	tok := r.URL.Query().Get("token")
	if s.auth == nil || tok == "" {
		return v
	}
	bv, err := s.auth.BadgeViewer(r.Context(), repository.Registry, repository.Name, tok)
	if err != nil {
		s.log.WarnContext(r.Context(), "badge token", "repository", repository.String(), "err", err)
		return v
	}
	v.BadgeRepository = bv.BadgeRepository
	return v
}

// signInConfigured reports whether anyone can sign in, and so be shown
// private images under the default policy; the not-found pages say how to
// change that when nobody can.
func (s *Server) signInConfigured() bool { return s.auth != nil && s.auth.SignInConfigured() }
