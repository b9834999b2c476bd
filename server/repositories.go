package server

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
)

// apiTags answers GET /api/v1/repositories/{repository}/tags.
func (s *Server) apiTags(w http.ResponseWriter, r *http.Request) error {
	repo, err := analysis.ParseRepository(mux.Vars(r)["repository"])
	if err != nil {
		return err
	}
	list, err := s.tagList(r, repo)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

// tagList answers a repository's tags for the API and the page: re-listed
// when ?refresh=1 asks and the client's refresh budget allows.
func (s *Server) tagList(r *http.Request, repo analysis.Repository) (*analysis.TagList, error) {
	how := images.ReadOptions{Refresh: wantsRefresh(r), Client: clientAddr(r)}
	if how.Refresh {
		if err := s.allowRefresh(r); err != nil {
			return nil, err
		}
	}
	return s.images.Tags(r.Context(), s.viewer(r), repo, how)
}
