package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/static"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/templates"
)

// Limits of what one page shows.
const (
	recentOnHome = 8
	// recentChangeRows is how many recorded changes are read to fill
	// recentOnHome entries: tags that changed together are one entry.
	recentChangeRows = 200
	// searchOnPage is how many search results a page shows.
	searchOnPage = 20
	// historyOnImagePage is how many of a tag's latest changes its image
	// page lists; removedOnRepositoryPage how many removed tags a
	// repository page names.
	historyOnImagePage      = 5
	removedOnRepositoryPage = 20
	// maxPooledPage is the largest render buffer kept for reuse.
	maxPooledPage = 1 << 20
	// groupsWithSizes bounds how many tag groups of a repository page get
	// their sizes looked up; later groups list their platforms only.
	groupsWithSizes = 200
	// pageClockStep is the step of the clock image pages are rendered
	// against ("checked 5 minutes ago"), so a rendered page can be kept.
	pageClockStep = 10 * time.Second
)

// pageCSP is the Content-Security-Policy of every HTML page: only this
// origin's stylesheet, script and images, no inline code, no framing.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// pages holds what the HTML pages need besides the image service.
type pages struct {
	baseURL string
	// version is the serving build as the footer shows it.
	version string
	watched []analysis.Repository
	now     func() time.Time
	// contents says the contents pages are served, so pages link to them.
	contents bool
	// etags of the embedded static files, computed once at start-up.
	etags map[string]string
	// bufs recycles the buffers pages are rendered into: a page is tens of
	// kilobytes, and allocating and clearing that per request shows.
	bufs sync.Pool
}

func newPages(cfg Options) *pages {
	p := &pages{
		baseURL:  strings.TrimRight(cfg.BaseURL, "/"),
		version:  cfg.Build.Display(),
		watched:  cfg.Watched,
		now:      cfg.Now,
		contents: cfg.Contents != nil,
		etags:    map[string]string{},
	}
	if p.now == nil {
		p.now = time.Now
	}
	err := fs.WalkDir(static.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static.FS, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.etags[path] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	if err != nil {
		// The files are compiled into the binary: failing to read them is
		// a broken build, not a condition to serve pages without styles in.
		panic(fmt.Sprintf("server: read the embedded static files: %v", err))
	}
	return p
}

func (p *pages) options() templates.Options {
	return templates.Options{BaseURL: p.baseURL, Now: p.now(), Version: p.version, Contents: p.contents}
}

// pageRoutes registers the HTML pages and their static files. They live
// outside /api, /v1, /badges and /hooks, which stay machine routes.
func (s *Server) pageRoutes() {
	r := s.router
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so it was refused. Use the button on this site instead.")
	}))
	r.Handle("/", s.handle("page_home", s.homePage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/images/{reference:.+}/refresh", cop.Handler(s.handle("page_refresh", s.refreshPage))).Methods(http.MethodPost)
	s.contentsPageRoutes(cop)
	r.Handle("/images/{reference:.+}", s.handle("page_image", s.imagePage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/repositories/{repository:.+}/history", s.handle("page_history", s.historyPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/repositories/{repository:.+}", s.handle("page_repository", s.repositoryPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/diff", s.handle("page_diff", s.diffPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/search", s.handle("page_search", s.searchPage)).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/static/").Handler(s.staticFiles()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/favicon.ico", http.RedirectHandler("/static/favicon.svg", http.StatusMovedPermanently)).Methods(http.MethodGet, http.MethodHead)
}

// render writes a page. It renders into a buffer first, so a failure while
// rendering still becomes a proper error page rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) error {
	return s.renderKept(w, r, status, c, "", "")
}

// renderKept is render that also keeps a copy of the page in the response
// memo under key at version (see responseMemo); an empty version keeps
// nothing.
func (s *Server) renderKept(w http.ResponseWriter, r *http.Request, status int, c templ.Component, key, version string) error {
	buf, _ := s.pages.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= maxPooledPage {
			buf.Reset()
			s.pages.bufs.Put(buf)
		}
	}()
	if err := c.Render(r.Context(), buf); err != nil {
		return fmt.Errorf("server: render %s: %w", r.URL.Path, err)
	}
	if version != "" {
		s.responses.put(key, version, bytes.Clone(buf.Bytes()))
	}
	return s.writePage(w, status, buf.Bytes())
}

// writePage writes a rendered page with the headers of every page.
func (s *Server) writePage(w http.ResponseWriter, status int, body []byte) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if h.Get("Cache-Control") == "" {
		// A page holding a secret (a subscription's) has set no-store.
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// homePage answers / : the search box, recent changes and watched bases.
// A search (?q=) for an image this service knows, or for a reference that
// matches no known repository, goes to the image page; a part of a name
// shows the known repositories containing it; anything else is shown again
// with the reason next to the box.
func (s *Server) homePage(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path != "/" {
		return errNoRoute
	}
	opt := s.pages.options()
	page := templates.HomePage{Meta: templates.Meta{
		Title:          "",
		Description:    "Inspect any container image: layers, sizes, labels, tags, parent image and README badges.",
		BaseURL:        opt.BaseURL,
		NoHeaderSearch: true,
		Version:        opt.Version,
	}}
	status := http.StatusOK
	if q, ok := r.URL.Query()["q"]; ok {
		page.Query = cleanQuery(strings.Join(q, ""))
		ref, refErr := analysis.ParseReference(page.Query)
		if page.Query == "" {
			page.Error = "Type an image reference, for example alpine:3.20, or a part of a name."
			status = http.StatusBadRequest
		} else {
			if refErr == nil {
				known, err := s.images.KnownRepository(r.Context(), s.viewer(r), ref.Repository)
				if err != nil {
					return err
				}
				if known {
					http.Redirect(w, r, templates.ImageHref(canonicalRef(ref)), http.StatusSeeOther)
					return nil
				}
			}
			results, err := s.search(r, page.Query, searchOnPage)
			if err != nil {
				return err
			}
			switch {
			case len(results) > 0:
				page.Results = templates.NewSearchItems(results, opt.Now)
				if refErr == nil {
					page.InspectHref = templates.ImageHref(canonicalRef(ref))
				}
			case refErr == nil:
				http.Redirect(w, r, templates.ImageHref(canonicalRef(ref)), http.StatusSeeOther)
				return nil
			default:
				page.Error, _ = analysis.PublicMessage(refErr)
				if page.Error == "" {
					page.Error = "That is not an image reference."
				}
				page.NoMatch = true
				status = http.StatusBadRequest
			}
		}
	}
	recent, err := s.images.RecentChanges(r.Context(), s.viewer(r), recentChangeRows)
	if err != nil {
		return err
	}
	rc := make([]templates.RecentChange, len(recent))
	for i, c := range recent {
		rc[i] = templates.RecentChange{Registry: c.Registry, Repository: c.Repository, Tag: c.Tag, Kind: c.Kind,
			Digest: c.Digest, Previous: c.Previous, At: c.At}
	}
	page.Recent = templates.NewRecentItems(rc, recentOnHome, opt.Now)
	for _, repo := range s.pages.watched {
		a, err := s.images.RepositoryActivity(r.Context(), s.viewer(r), repo)
		if err != nil {
			return err
		}
		name := repo.Short()
		page.Watched = append(page.Watched, templates.WatchedItem{
			Repository: name,
			Href:       templates.RepositoryHref(name),
			TagCount:   a.Tags,
			Changed:    templates.NewTimeView(a.Changed, opt.Now),
		})
	}
	return s.render(w, r, status, templates.Home(page))
}

// search runs a search of the known repositories for a page or the API; a
// term too short finds nothing.
func (s *Server) search(r *http.Request, term string, limit int) ([]templates.SearchResult, error) {
	if len(term) < store.MinSearchTerm {
		return nil, nil
	}
	found, err := s.images.Search(r.Context(), s.viewer(r), term, limit)
	if err != nil {
		return nil, err
	}
	out := make([]templates.SearchResult, len(found))
	for i, f := range found {
		out[i] = templates.SearchResult{Registry: f.Repo.Registry, Repository: f.Repo.Name, Tag: f.Tag, TagCount: f.TagCount, Changed: f.Changed}
	}
	return out, nil
}

// cleanQuery removes what people paste around a reference: spaces, a
// "docker pull" in front, a scheme.
func cleanQuery(q string) string {
	q = strings.TrimSpace(q)
	for _, p := range []string{"docker pull ", "podman pull ", "https://", "http://"} {
		if rest, ok := strings.CutPrefix(q, p); ok {
			q = strings.TrimSpace(rest)
		}
	}
	return q
}

// canonicalRef is the form of ref used in page URLs: short for Docker Hub,
// and by digest alone when a digest is given (the digest wins over the tag).
func canonicalRef(ref analysis.Reference) string {
	if ref.Digest != "" {
		return templates.DisplayReference(ref.Registry, ref.Name, "", ref.Digest)
	}
	return templates.DisplayReference(ref.Registry, ref.Name, ref.Tag, "")
}

// imagePage answers /images/{reference}; ?platform= picks the platform image
// of a multi-platform image.
func (s *Server) imagePage(w http.ResponseWriter, r *http.Request) error {
	raw := mux.Vars(r)["reference"]
	ref, err := analysis.ParseReference(raw)
	if err != nil {
		return err
	}
	if canon := canonicalRef(ref); canon != raw {
		redirectTo(w, r, templates.ImageHref(canon))
		return nil
	}
	a, err := s.images.Read(r.Context(), s.viewer(r), ref, images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return err
	}
	// The page shows times relative to now; it is rendered against now in
	// steps of pageClockStep, so a rendered page is the same for everyone
	// reading the same answer within one step and can be served again.
	opt := s.pages.options()
	opt.Now = opt.Now.Truncate(pageClockStep)
	platform := r.URL.Query().Get("platform")
	limited := r.URL.Query().Get("notice") == noticeRefreshLimited
	// The registry's rate-limit budget is said on the page when low; it is
	// part of what the kept page was made from.
	notice := s.budgetNotice(ref.Registry)
	// A signed-in person is shown a private repository's badge token; the
	// page made with it is kept under it, never served to anyone else.
	badgeToken, err := s.pageBadgeToken(r, ref.Repository)
	if err != nil {
		return err
	}
	key := "page\x00" + ref.String() + "\x00" + platform + "\x00" + strconv.FormatBool(limited) + "\x00" + notice + "\x00" + badgeToken
	version := ""
	if a.Version != "" {
		version = a.Version + "/" + strconv.FormatInt(opt.Now.Unix(), 10)
	}
	if body, ok := s.responses.get(key, version); ok {
		return s.writePage(w, http.StatusOK, body)
	}
	// The tag's latest changes: they change only with the repository's
	// stamp, which the answer's version holds, so the kept page stays true.
	var history []templates.TagChange
	if ref.Tag != "" {
		changes, _, err := s.images.History(r.Context(), s.viewer(r), store.HistoryQuery{Repo: ref.Repository, Tag: ref.Tag, Limit: historyOnImagePage})
		if err != nil {
			return err
		}
		history = tagChanges(changes)
	}
	page := templates.NewImagePage(a.Report, platform, history, opt)
	if limited {
		page.Notice = "This address has asked for many refreshes lately, so this one was not made: the page shows the stored report. Try again in a few minutes."
	}
	page.Hub = templates.NewHubView(a.Report.RepositoryInfo, a.Report.Repository, opt.Now)
	page.BudgetNotice = notice
	if badgeToken != "" {
		page.WithBadgeToken(badgeToken)
	}
	return s.renderKept(w, r, http.StatusOK, templates.Image(page), key, version)
}

// noticeRefreshLimited is the ?notice= of an image page whose refresh
// button was refused by the rate limit.
const noticeRefreshLimited = "refresh-limited"

// refreshPage answers the refresh button: re-resolve the tag now, then go
// back to the page (303, so reloading does not post again).
func (s *Server) refreshPage(w http.ResponseWriter, r *http.Request) error {
	ref, err := analysis.ParseReference(mux.Vars(r)["reference"])
	if err != nil {
		return err
	}
	q := url.Values{}
	if p := r.PostFormValue("platform"); p != "" {
		q.Set("platform", p)
	}
	if err := s.allowRefresh(r); err != nil {
		// Back to the page, which says so, rather than an error page.
		q.Set("notice", noticeRefreshLimited)
	} else if _, err := s.images.Read(r.Context(), s.viewer(r), ref, images.ReadOptions{Refresh: true}); err != nil {
		return err
	}
	target := templates.ImageHref(canonicalRef(ref))
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// repositoryPage answers /repositories/{repository}: the tags grouped by
// digest, each group with its platforms and their sizes.
func (s *Server) repositoryPage(w http.ResponseWriter, r *http.Request) error {
	raw := mux.Vars(r)["repository"]
	repo, err := analysis.ParseRepository(raw)
	if err != nil {
		return err
	}
	if canon := repo.Short(); canon != raw {
		redirectTo(w, r, templates.RepositoryHref(canon))
		return nil
	}
	list, err := s.tagList(r, repo)
	if err != nil {
		return err
	}
	digests := make([]string, 0, min(len(list.Groups), groupsWithSizes))
	for _, g := range list.Groups[:min(len(list.Groups), groupsWithSizes)] {
		digests = append(digests, g.Digest)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	sizes := s.images.Platforms(ctx, s.viewer(r), repo, digests)
	removed, err := s.images.Deleted(r.Context(), s.viewer(r), repo, removedOnRepositoryPage)
	if err != nil {
		return err
	}
	page := templates.NewRepositoryPage(list, sizes, removed, s.pages.options())
	return s.render(w, r, http.StatusOK, templates.Repository(page))
}

// redirectTo sends a GET to the canonical URL of the same page, keeping the
// query.
func redirectTo(w http.ResponseWriter, r *http.Request, path string) {
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, path, http.StatusFound)
}

// staticFiles serves the embedded stylesheet, script and icons with an ETag
// and an hour of caching.
func (s *Server) staticFiles() http.Handler {
	files := http.FileServerFS(static.FS)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		etag, ok := s.pages.etags[r.URL.Path]
		if !ok {
			s.renderError(w, r, http.StatusNotFound, "Not found", "There is no file at this address.")
			return
		}
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}

// isMachineRequest reports whether r is for the JSON API, the MicroBadger
// API, the badges or the hooks (the refresh hook among them: a POST under
// /images/ that is not a page's refresh button), whose errors are JSON;
// every other request is for a page and gets an HTML error page.
func isMachineRequest(r *http.Request) bool {
	path := r.URL.Path
	for _, p := range []string{"/api/", "/v1/", "/hooks/", "/badges/"} {
		if strings.HasPrefix(path, p) || path+"/" == p {
			return true
		}
	}
	if r.Method == http.MethodPost && strings.HasPrefix(path, "/images/") && !strings.HasSuffix(strings.TrimRight(path, "/"), "/refresh") {
		return true
	}
	return path == "/healthz" || path == "/healthz/registries" || path == "/readyz" || path == "/metrics"
}

// writeErrorPage answers a failed page request with a friendly page and the
// status code the error maps to; msg is the public message.
func (s *Server) writeErrorPage(w http.ResponseWriter, r *http.Request, err error, status int, msg string) {
	if d, ok := analysis.DeletedTag(err); ok {
		page := templates.NewTagRemovedPage(d, s.pages.options())
		page.Status = status
		if page.Query == "" {
			page.Query = mux.Vars(r)["reference"]
		}
		s.renderErrorPage(w, r, page)
		return
	}
	heading, text := errorText(err, status, msg)
	page := s.errorPage(r, status, heading, text)
	if errors.Is(err, analysis.ErrUnauthorized) {
		page.CredentialsFor = registryOf(r)
	}
	if status == http.StatusNotFound && s.images.Policy() == images.PrivateToSignedIn && !s.signInConfigured() {
		page.PrivateHelp = true
	}
	if m, ok := analysis.MissingIn(err); ok && m.Part != analysis.MissingRepository && (m.Ref.Tag != "" || m.Ref.Digest != "") {
		// The tag or digest is not there: the repository's page lists
		// those that are.
		repo := templates.DisplayRepository(m.Ref.Registry, m.Ref.Name)
		page.Links = append(page.Links, templates.Link{Text: "All tags of " + repo, Href: templates.RepositoryHref(repo)})
	}
	s.renderErrorPage(w, r, page)
}

// registryOf names the registry of the page's reference or repository,
// "" when the path names none.
func registryOf(r *http.Request) string {
	vars := mux.Vars(r)
	if ref, err := analysis.ParseReference(vars["reference"]); vars["reference"] != "" && err == nil {
		return ref.Registry
	}
	if repo, err := analysis.ParseRepository(vars["repository"]); vars["repository"] != "" && err == nil {
		return repo.Registry
	}
	return ""
}

func (s *Server) errorPage(r *http.Request, status int, heading, text string) templates.ErrorPage {
	page := templates.ErrorPage{
		Meta:    templates.Meta{Title: heading, BaseURL: s.pages.baseURL, NoHeaderSearch: true, Version: s.pages.version},
		Status:  status,
		Heading: heading,
		Message: text,
	}
	if ref, ok := mux.Vars(r)["reference"]; ok {
		page.Query = ref
	}
	return page
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	s.renderErrorPage(w, r, s.errorPage(r, status, heading, text))
}

func (s *Server) renderErrorPage(w http.ResponseWriter, r *http.Request, page templates.ErrorPage) {
	status, text := page.Status, page.Message
	if err := s.render(w, r, status, templates.Error(page)); err != nil {
		s.log.ErrorContext(r.Context(), "render error page", "err", err)
		http.Error(w, text, status)
	}
}

// errorText chooses the heading and the explanation of an error page.
func errorText(err error, status int, msg string) (heading, text string) {
	switch {
	case errors.Is(err, errNoRoute):
		return "Page not found", "There is no page at this address."
	case errors.Is(err, analysis.ErrInvalidReference):
		return "Not an image reference", msg
	case errors.Is(err, analysis.ErrNotFound):
		if m, ok := analysis.MissingIn(err); ok && m.Part == analysis.MissingRepository {
			return "Repository not found", msg
		}
		return "Image not found", msg
	case errors.Is(err, analysis.ErrForbidden):
		return "Registry not allowed", msg
	case errors.Is(err, analysis.ErrUnauthorized):
		return "Registry needs credentials", msg
	case errors.Is(err, analysis.ErrRateLimited):
		return "Too many requests", msg + " Try again in a minute."
	case errors.Is(err, analysis.ErrTimeout):
		return "The registry did not answer in time", msg
	case errors.Is(err, analysis.ErrUnreachable):
		return "The registry cannot be reached", msg
	case errors.Is(err, analysis.ErrUpstream):
		return "The registry answered with an error", msg
	case errors.Is(err, store.ErrUnavailable):
		return "The database does not answer", "This page needs the service's database, which does not answer just now. Try again in a moment."
	case status == http.StatusBadRequest:
		return "Bad request", msg
	}
	return "Something went wrong", "The page could not be shown. The error has been logged; please try again later."
}

// tagChanges turns stored changes into the pages' view of them.
func tagChanges(cs []store.TagChange) []templates.TagChange {
	out := make([]templates.TagChange, len(cs))
	for i, c := range cs {
		out[i] = templates.TagChange{Tag: c.Tag, Kind: c.Kind, Digest: c.Digest, Previous: c.Previous, At: c.At}
	}
	return out
}

// historyPage answers /repositories/{repository}/history[?tag=&before=]:
// one page of the recorded changes, newest first.
func (s *Server) historyPage(w http.ResponseWriter, r *http.Request) error {
	raw := mux.Vars(r)["repository"]
	repo, err := analysis.ParseRepository(raw)
	if err != nil {
		return err
	}
	if canon := repo.Short(); canon != raw {
		redirectTo(w, r, templates.HistoryHref(canon, ""))
		return nil
	}
	q, err := s.historyQuery(r)
	if err != nil {
		return err
	}
	changes, more, err := s.images.History(r.Context(), s.viewer(r), q)
	if err != nil {
		return err
	}
	next := ""
	if more {
		next = strconv.FormatInt(changes[len(changes)-1].ID, 10)
	}
	page := templates.NewHistoryPage(repo.Registry, repo.Name, q.Tag, tagChanges(changes), next, q.Before > 0, s.pages.options())
	return s.render(w, r, http.StatusOK, templates.History(page))
}

// diffPage answers /diff?from=&to=[&platform=]: the diff API's answer as a
// page.
func (s *Server) diffPage(w http.ResponseWriter, r *http.Request) error {
	from, to, platform, err := diffQuery(r)
	if err != nil {
		return err
	}
	c, err := s.images.Diff(r.Context(), s.viewer(r), from, to, platform, images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return err
	}
	page := templates.NewDiffPage(c.Diff, c.From, c.To, s.pages.options())
	return s.render(w, r, http.StatusOK, templates.Diff(page))
}

// searchPage answers /search?q=: the known repositories whose name holds
// the term.
func (s *Server) searchPage(w http.ResponseWriter, r *http.Request) error {
	opt := s.pages.options()
	page := templates.HomePage{Meta: templates.Meta{Title: "Search", BaseURL: opt.BaseURL, Version: opt.Version}, Query: cleanQuery(r.URL.Query().Get("q"))}
	status := http.StatusOK
	switch {
	case page.Query == "":
	case len(page.Query) < store.MinSearchTerm:
		page.Error = fmt.Sprintf("Type at least %d characters of a repository's name.", store.MinSearchTerm)
		status = http.StatusBadRequest
	default:
		results, err := s.search(r, page.Query, searchOnPage)
		if err != nil {
			return err
		}
		page.Results = templates.NewSearchItems(results, opt.Now)
		if ref, err := analysis.ParseReference(page.Query); err == nil {
			page.InspectHref = templates.ImageHref(canonicalRef(ref))
		}
	}
	return s.render(w, r, status, templates.SearchPage(page))
}
