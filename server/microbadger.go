package server

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/templates"
)

// MicroBadger's image answer, field for field (names, JSON types and
// omitempty as MicroBadger's database.Image and database.ImageVersion had
// them), so that scripts and badge services written against
// api.microbadger.com keep working once the host is swapped. Numbers are
// always present (docs/API.md); times are always present, since omitempty
// never left out a time in MicroBadger either.
type microBadgerImage struct {
	ImageName     string               `json:"ImageName,omitempty"`
	ID            string               `json:"Id,omitempty"`
	LatestSHA     string               `json:"LatestSHA"`
	LatestVersion string               `json:"LatestVersion,omitempty"`
	ImageURL      string               `json:"ImageURL,omitempty"`
	Author        string               `json:"Author,omitempty"`
	Description   string               `json:"Description,omitempty"`
	WebhookURL    string               `json:"WebhookURL,omitempty"`
	LastUpdated   time.Time            `json:"LastUpdated"`
	UpdatedAt     time.Time            `json:"UpdatedAt"`
	PullCount     int64                `json:"PullCount"`
	StarCount     int64                `json:"StarCount"`
	LayerCount    int                  `json:"LayerCount"`
	DownloadSize  int64                `json:"DownloadSize"`
	Labels        map[string]string    `json:"Labels,omitempty"`
	Versions      []microBadgerVersion `json:"Versions,omitempty"`
}

type microBadgerVersion struct {
	SHA            string              `json:"SHA"`
	Tags           []microBadgerTag    `json:"Tags"`
	ImageName      string              `json:"ImageName"`
	Author         string              `json:"Author"`
	LayerCount     int                 `json:"LayerCount"`
	DownloadSize   int64               `json:"DownloadSize"`
	Labels         map[string]string   `json:"Labels,omitempty"`
	Created        time.Time           `json:"Created"`
	Layers         []microBadgerLayer  `json:"Layers,omitempty"`
	License        *microBadgerLicense `json:"License,omitempty"`
	VersionControl *microBadgerVCS     `json:"VersionControl,omitempty"`
	MicrobadgerURL string              `json:"MicrobadgerURL,omitempty"`
}

type microBadgerTag struct {
	Tag string `json:"tag"`
}

type microBadgerLayer struct {
	BlobSum      string `json:"BlobSum"`
	Command      string `json:"Command"`
	DownloadSize int64  `json:"DownloadSize"`
}

type microBadgerLicense struct {
	Code string `json:"Code,omitempty"`
	URL  string `json:"URL,omitempty"`
}

type microBadgerVCS struct {
	Type   string `json:"Type"`
	URL    string `json:"URL"`
	Commit string `json:"Commit"`
}

// parseMicroBadger parses a /v1 path's image as MicroBadger wrote it: a
// Docker Hub official image may be written python, library/python or
// _/python.
func parseMicroBadger(s string) (analysis.Reference, error) {
	return analysis.ParseReference(officialName(s))
}

// parseMicroBadgerRepository is parseMicroBadger for a repository alone.
func parseMicroBadgerRepository(s string) (analysis.Repository, error) {
	return analysis.ParseRepository(officialName(s))
}

func officialName(s string) string {
	if rest, ok := strings.CutPrefix(s, "_/"); ok {
		return "library/" + rest
	}
	return s
}

// microBadgerV1 answers GET /v1/images/{reference}: the requested tag (or
// latest) and every known version of its repository. The repository's tags
// are listed first if they never were, so the answer is complete on the
// first request.
func (s *Server) microBadgerV1(w http.ResponseWriter, r *http.Request) error {
	ref, err := parseMicroBadger(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	ctx := r.Context()
	// The listing first, so the requested image's tags are all known.
	versions, err := s.images.Versions(ctx, s.viewer(r), ref.Repository, images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return err
	}
	a, err := s.images.Read(ctx, s.viewer(r), ref, images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return err
	}
	rep := a.Report
	out := microBadgerImage{
		ImageName:     ref.Repository.Short(),
		ID:            rep.Digest,
		LatestSHA:     rep.Digest,
		LatestVersion: analysis.LongestTag(rep.Tags),
		ImageURL:      s.pages.baseURL + templates.ImageHref(canonicalRef(ref)),
		UpdatedAt:     rep.CheckedAt,
		LastUpdated:   s.lastUpdated(r, ref, rep),
	}
	if p, ok := rep.Select(""); ok {
		out.LayerCount, out.DownloadSize, out.Labels = p.LayerCount, p.DownloadSize, nonEmpty(p.Labels)
		out.Author = author(p)
		out.Description = p.Metadata.Description
	}
	// Docker Hub's facts for docker.io, where known (docs/API.md).
	if info := rep.RepositoryInfo; info != nil {
		if info.Description != "" {
			out.Description = info.Description
		}
		out.PullCount, out.StarCount = info.PullCount, info.StarCount
	}
	out.WebhookURL = s.refreshHookURL(r, ref.Repository)
	for _, v := range versions {
		out.Versions = append(out.Versions, s.microBadgerVersion(ref.Repository, v))
	}
	return writeJSON(w, http.StatusOK, out)
}

// microBadgerVersionRoute answers GET /v1/images/{repository}/version/{digest}:
// one Versions entry.
func (s *Server) microBadgerVersionRoute(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	repo, err := parseMicroBadgerRepository(vars["repository"])
	if err != nil {
		return err
	}
	digest := vars["digest"]
	if !digestPattern.MatchString(digest) {
		return &analysis.Error{Kind: analysis.ErrInvalidReference, Message: "the version must be a digest, sha256: and 64 hexadecimal digits"}
	}
	versions, err := s.images.Versions(r.Context(), s.viewer(r), repo, images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return err
	}
	for _, v := range versions {
		if v.Digest == digest {
			return writeJSON(w, http.StatusOK, s.microBadgerVersion(repo, v))
		}
	}
	return &analysis.Error{Kind: analysis.ErrNotFound, Message: "no tag of " + repo.Short() + " points at " + analysis.ShortDigest(digest)}
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (s *Server) microBadgerVersion(repo analysis.Repository, v *analysis.Report) microBadgerVersion {
	mv := microBadgerVersion{SHA: v.Digest, Tags: []microBadgerTag{}, ImageName: repo.Short(),
		MicrobadgerURL: s.pages.baseURL + templates.ImageHref(canonicalRef(repo.WithDigest(v.Digest)))}
	for _, t := range v.Tags {
		mv.Tags = append(mv.Tags, microBadgerTag{Tag: t})
	}
	p, ok := v.Select("")
	if !ok {
		return mv
	}
	mv.Author, mv.LayerCount, mv.DownloadSize, mv.Labels = author(p), p.LayerCount, p.DownloadSize, nonEmpty(p.Labels)
	if p.Created != nil {
		mv.Created = *p.Created
	}
	for _, l := range p.Layers {
		mv.Layers = append(mv.Layers, microBadgerLayer{BlobSum: l.Digest, Command: l.CreatedBy, DownloadSize: l.Size})
	}
	if code := p.Metadata.Licenses; code != "" {
		mv.License = &microBadgerLicense{Code: code, URL: licenseURL(code)}
	}
	if src, rev := p.Metadata.Source, p.Metadata.Revision; src != "" && rev != "" {
		mv.VersionControl = &microBadgerVCS{Type: "git", URL: commitURL(src, rev), Commit: rev}
	}
	return mv
}

// lastUpdated is Docker Hub's last push for docker.io where known, else
// when the requested tag last moved, else when its image was created
// (docs/API.md).
func (s *Server) lastUpdated(r *http.Request, ref analysis.Reference, rep *analysis.Report) time.Time {
	if info := rep.RepositoryInfo; info != nil && info.LastUpdated != nil && !info.LastUpdated.IsZero() {
		return info.LastUpdated.UTC()
	}
	if ref.Digest == "" {
		if st, err := s.images.TagState(r.Context(), s.viewer(r), ref); err == nil && !st.Changed.IsZero() {
			return st.Changed.UTC().Truncate(time.Second)
		}
	}
	if p, ok := rep.Select(""); ok && p.Created != nil {
		return *p.Created
	}
	return rep.CheckedAt
}

// refreshHookURL is the repository's refresh hook, as MicroBadger's
// WebhookURL gave it; empty when the service has no hooks, or when the
// repository has no hook token yet (it is made with the first
// subscription: a read never writes one).
func (s *Server) refreshHookURL(r *http.Request, repo analysis.Repository) string {
	if s.subs == nil {
		return ""
	}
	tok, err := s.subs.HookToken(r.Context(), repo)
	if errors.Is(err, analysis.ErrNotFound) {
		return ""
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "hook token", "repository", repo.String(), "err", err)
		return ""
	}
	return s.pages.baseURL + "/images/" + hookPath(repo) + "/" + url.PathEscape(tok)
}

// hookPath is how a repository is written in a refresh hook's path:
// Docker Hub's with its library/ kept, as MicroBadger's hooks were.
func hookPath(repo analysis.Repository) string {
	if repo.Registry == analysis.DockerHub {
		return repo.Name
	}
	return repo.String()
}

// author is the config's author, else the vendor of the metadata.
func author(p *analysis.Platform) string {
	if p.Author != "" {
		return p.Author
	}
	return p.Metadata.Vendor
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

var spdxID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)

// licenseURL is the SPDX page of a single SPDX license identifier, as
// MicroBadger linked a license code to its text; "" for an expression.
func licenseURL(code string) string {
	if !spdxID.MatchString(code) {
		return ""
	}
	return "https://spdx.org/licenses/" + code + ".html"
}

// commitURL links a source repository at a commit, as MicroBadger did for
// GitHub: SSH form to HTTPS, ".git" left out, "/tree/{commit}" added.
// Sources on other hosts are given as they are.
func commitURL(source, rev string) string {
	u := strings.TrimSuffix(strings.Replace(source, "git@github.com:", "https://github.com/", 1), ".git")
	if strings.HasPrefix(u, "https://github.com/") {
		return strings.TrimRight(u, "/") + "/tree/" + url.PathEscape(rev)
	}
	return source
}

// refreshHook answers POST /images/{repository}/{token}, the refresh hook
// of hooks.microbadger.com: with the repository's hook token, it re-lists
// and re-resolves every tag of the repository, with any or no body, and
// answers 200 {"status": "ok"} once done.
func (s *Server) refreshHook(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	repo, err := s.subs.HookRepository(r.Context(), vars["token"])
	if err != nil {
		return subscriptionError(err)
	}
	named, err := parseMicroBadgerRepository(vars["repository"])
	if err != nil {
		return err
	}
	if named != repo {
		return &analysis.Error{Kind: errUnauthorized, Message: "this hook token is for another repository"}
	}
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxHookBody)); err != nil {
		return bodyError(err, maxHookBody)
	}
	if ok, wait := s.hookRefreshes.Allow(repo.String(), time.Now()); !ok {
		return &analysis.Error{Kind: analysis.ErrRateLimited, RetryAfter: wait,
			Message: "this repository was refreshed a moment ago; try again later"}
	}
	// Sent right after a push: the registry, not a web API that may lag
	// it, says where the tags point. The hook's token is handed to anyone
	// on the subscription form, so it proves nothing about who may see the
	// repository: the refresh is the request's viewer's, and of a private
	// repository it answers as of a missing one.
	if _, err := s.images.Tags(r.Context(), s.viewer(r), repo, images.ReadOptions{Refresh: true, RegistryOnly: true}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// bodyError is the error of a failed body read: 413 when it was over limit.
func bodyError(err error, limit int64) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return tooLargeError(limit)
	}
	return invalidRequest("the body could not be read")
}
