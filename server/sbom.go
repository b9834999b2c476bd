package server

import (
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
)

// apiSBOM answers GET /api/v1/images/{reference}/sbom: a page of the
// packages of the image's SBOM, read through the one read path.
func (s *Server) apiSBOM(w http.ResponseWriter, r *http.Request) error {
	ref, err := analysis.ParseReference(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	q := r.URL.Query()
	platform := q.Get("platform")
	if platform != "" && !validPlatform(platform) {
		return invalidRequest(fmt.Sprintf("platform %q is not os/arch[/variant]", platform))
	}
	page, err := s.images.SBOM(r.Context(), s.viewer(r), ref, platform, q.Get("q"), q.Get("cursor"), images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}
