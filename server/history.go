package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
)

// Limits of the history, diff and search routes.
const (
	defaultHistoryLimit = 50
	defaultSearchLimit  = 20
	maxSearchLimit      = 100
)

// historyAnswer is GET /api/v1/repositories/{repository}/history's answer.
type historyAnswer struct {
	Registry   string          `json:"registry"`
	Repository string          `json:"repository"`
	Changes    []historyChange `json:"changes"`
	Next       string          `json:"next,omitempty"`
}

// historyChange is one recorded change; a digest it has not is null.
type historyChange struct {
	Tag            string    `json:"tag"`
	Kind           string    `json:"kind"`
	Digest         *string   `json:"digest"`
	PreviousDigest *string   `json:"previousDigest"`
	At             time.Time `json:"at"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// historyQuery reads the repository, tag, limit and cursor of a history
// request; a malformed one is invalid_request, a repository never seen is
// not_found.
func (s *Server) historyQuery(r *http.Request) (store.HistoryQuery, error) {
	repo, err := analysis.ParseRepository(mux.Vars(r)["repository"])
	if err != nil {
		return store.HistoryQuery{}, err
	}
	q := store.HistoryQuery{Repo: repo, Tag: r.URL.Query().Get("tag"), Limit: defaultHistoryLimit}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxHistoryPage {
			return store.HistoryQuery{}, invalidRequest(fmt.Sprintf("limit must be a whole number from 1 to %d", store.MaxHistoryPage))
		}
		q.Limit = n
	}
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return store.HistoryQuery{}, invalidRequest("before must be the next cursor of an earlier page")
		}
		q.Before = n
	}
	known, err := s.images.KnownRepository(r.Context(), s.viewer(r), repo)
	if err != nil {
		return store.HistoryQuery{}, err
	}
	if !known {
		return store.HistoryQuery{}, &analysis.Error{Kind: analysis.ErrNotFound,
			Message: "no change of " + repo.String() + " is recorded: this service has not seen the repository; open one of its images to start following it"}
	}
	return q, nil
}

// apiHistory answers GET /api/v1/repositories/{repository}/history.
func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) error {
	q, err := s.historyQuery(r)
	if err != nil {
		return err
	}
	changes, more, err := s.images.History(r.Context(), s.viewer(r), q)
	if err != nil {
		return err
	}
	out := historyAnswer{Registry: q.Repo.Registry, Repository: q.Repo.Name, Changes: make([]historyChange, len(changes))}
	for i, c := range changes {
		out.Changes[i] = historyChange{Tag: c.Tag, Kind: c.Kind, Digest: nullable(c.Digest), PreviousDigest: nullable(c.Previous), At: c.At}
	}
	if more {
		out.Next = strconv.FormatInt(changes[len(changes)-1].ID, 10)
	}
	return writeJSON(w, http.StatusOK, out)
}

// diffQuery reads the two references and the platform of a diff request.
func diffQuery(r *http.Request) (from, to analysis.Reference, platform string, err error) {
	q := r.URL.Query()
	fromText, toText := strings.TrimSpace(q.Get("from")), strings.TrimSpace(q.Get("to"))
	if fromText == "" || toText == "" {
		return from, to, "", invalidRequest("from and to are both required: the references of the two images to compare")
	}
	if from, err = analysis.ParseReference(fromText); err != nil {
		return from, to, "", err
	}
	if to, err = analysis.ParseReference(toText); err != nil {
		return from, to, "", err
	}
	platform = q.Get("platform")
	if platform != "" && !validPlatform(platform) {
		return from, to, "", invalidRequest(fmt.Sprintf("platform %q is not os/arch[/variant]", platform))
	}
	return from, to, platform, nil
}

// apiDiff answers GET /api/v1/diff.
func (s *Server) apiDiff(w http.ResponseWriter, r *http.Request) error {
	from, to, platform, err := diffQuery(r)
	if err != nil {
		return err
	}
	c, err := s.images.Diff(r.Context(), s.viewer(r), from, to, platform, images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return err
	}
	if v := r.URL.Query().Get("files"); v == "1" || v == "true" {
		out, err := s.diffWithFiles(r, c)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, out)
	}
	return writeJSON(w, http.StatusOK, c.Diff)
}

// searchAnswer is GET /api/v1/search's answer.
type searchAnswer struct {
	Results []searchResult `json:"results"`
}

type searchResult struct {
	Registry   string    `json:"registry"`
	Repository string    `json:"repository"`
	Reference  string    `json:"reference"`
	TagCount   int       `json:"tagCount"`
	ChangedAt  time.Time `json:"changedAt"`
}

// apiSearch answers GET /api/v1/search.
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) error {
	term := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(term) < store.MinSearchTerm {
		return invalidRequest(fmt.Sprintf("q must hold at least %d characters of a repository's name", store.MinSearchTerm))
	}
	limit := defaultSearchLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return invalidRequest("limit must be a positive whole number")
		}
		limit = min(n, maxSearchLimit)
	}
	found, err := s.images.Search(r.Context(), s.viewer(r), term, limit)
	if err != nil {
		return err
	}
	out := searchAnswer{Results: make([]searchResult, len(found))}
	for i, f := range found {
		ref := f.Repo.String()
		if f.Tag != "" {
			ref = f.Repo.WithTag(f.Tag).String()
		}
		out.Results[i] = searchResult{Registry: f.Repo.Registry, Repository: f.Repo.Name, Reference: ref, TagCount: f.TagCount, ChangedAt: f.Changed}
	}
	return writeJSON(w, http.StatusOK, out)
}
