package server

import (
	"net/http"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
)

// viewer is who r comes from, for the visibility check every read passes
// in images. Every handler asks here and nowhere else. Until sign-in is
// configured it is the anonymous visitor; sign-in fills it from the
// session, the authenticating proxy's header or the API token.
func (s *Server) viewer(r *http.Request) auth.Viewer {
	return auth.Viewer{}
}

// badgeViewer is viewer for the badge and shields routes of repository,
// which also honour a badge token (?token=) opening that repository's
// badges alone. Until badge tokens exist it is viewer.
func (s *Server) badgeViewer(r *http.Request, repository analysis.Repository) auth.Viewer {
	return s.viewer(r)
}

// signInConfigured reports whether anyone can sign in, and so be shown
// private images under the default policy; the not-found pages say how to
// change that when nobody can. None is configured until sign-in fills it.
func (s *Server) signInConfigured() bool { return false }
