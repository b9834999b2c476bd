package server

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"imagebadger/analysis"
	"imagebadger/images"
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
	writeJSON(w, http.StatusOK, list)
	return nil
}

// tagList answers a repository's tags for the API and the page: re-listed
// when ?refresh=1 asks and the client's refresh budget allows.
func (s *Server) tagList(r *http.Request, repo analysis.Repository) (*analysis.TagList, error) {
	refresh := wantsRefresh(r)
	if refresh {
		if err := s.allowRefresh(r); err != nil {
			return nil, err
		}
	}
	return s.images.Tags(r.Context(), repo, refresh)
}

// microBadgerImage is MicroBadger's image answer, field for field, so that
// scripts written against api.microbadger.com keep working.
type microBadgerImage struct {
	ImageName     string               `json:"ImageName"`
	LatestSHA     string               `json:"LatestSHA"`
	LatestVersion string               `json:"LatestVersion"`
	LayerCount    int                  `json:"LayerCount"`
	DownloadSize  int64                `json:"DownloadSize"`
	Labels        map[string]string    `json:"Labels"`
	UpdatedAt     time.Time            `json:"UpdatedAt"`
	Versions      []microBadgerVersion `json:"Versions"`
}

type microBadgerVersion struct {
	SHA          string            `json:"SHA"`
	Tags         []microBadgerTag  `json:"Tags"`
	LayerCount   int               `json:"LayerCount"`
	DownloadSize int64             `json:"DownloadSize"`
	Labels       map[string]string `json:"Labels"`
	Created      *time.Time        `json:"Created,omitempty"`
}

type microBadgerTag struct {
	Tag string `json:"tag"`
}

// microBadgerV1 answers GET /v1/images/{reference}.
func (s *Server) microBadgerV1(w http.ResponseWriter, r *http.Request) error {
	ref, err := analysis.ParseReference(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	a, err := s.images.Read(r.Context(), ref, images.ReadOptions{})
	if err != nil {
		return err
	}
	rep := a.Report
	out := microBadgerImage{
		ImageName:     ref.Name,
		LatestSHA:     rep.Digest,
		LatestVersion: analysis.LatestVersion(rep.Tags),
		UpdatedAt:     rep.CheckedAt,
		Labels:        map[string]string{},
		Versions:      []microBadgerVersion{},
	}
	if ref.Registry != analysis.DockerHub {
		out.ImageName = ref.Repository.String()
	}
	if p, ok := rep.Select(""); ok {
		out.LayerCount, out.DownloadSize, out.Labels = p.LayerCount, p.DownloadSize, p.Labels
	}
	versions, err := s.images.Versions(r.Context(), ref.Repository)
	if err != nil {
		return err
	}
	for _, v := range versions {
		mv := microBadgerVersion{SHA: v.Digest, Tags: []microBadgerTag{}, Labels: map[string]string{}}
		for _, t := range v.Tags {
			mv.Tags = append(mv.Tags, microBadgerTag{Tag: t})
		}
		if p, ok := v.Select(""); ok {
			mv.LayerCount, mv.DownloadSize, mv.Labels, mv.Created = p.LayerCount, p.DownloadSize, p.Labels, p.Created
		}
		out.Versions = append(out.Versions, mv)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
