package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/badge"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/templates"
)

// contentsRoutes registers the layer contents routes when the service
// analyses contents. The reference is resolved by images.Read, the one read
// path every route goes through.
func (s *Server) contentsRoutes() {
	if s.contents == nil {
		return
	}
	r := s.router
	r.Handle("/api/v1/images/{reference:.+}/contents/tree", s.handle("api_contents_tree", s.apiContentsTree)).Methods(http.MethodGet)
	r.Handle("/api/v1/images/{reference:.+}/contents", s.apiCrossOrigin().Handler(s.handle("api_contents_start", s.apiContentsStart))).Methods(http.MethodPost)
	r.Handle("/api/v1/images/{reference:.+}/contents", s.handle("api_contents", s.apiContents)).Methods(http.MethodGet)
}

// contentsPlatform reads the route's reference through the one read path,
// as the request's viewer (a private repository is answered as a missing
// one to a viewer who may not see it), and picks the platform image asked
// for (?platform=, linux/amd64 by default, or the only one).
func (s *Server) contentsPlatform(r *http.Request) (analysis.Reference, *analysis.Platform, error) {
	ref, err := analysis.ParseReference(mux.Vars(r)["reference"])
	if err != nil {
		return ref, nil, err
	}
	want := r.URL.Query().Get("platform")
	if want != "" && !validPlatform(want) {
		return ref, nil, invalidRequest(fmt.Sprintf("platform %q is not os/arch[/variant]", want))
	}
	a, err := s.images.Read(r.Context(), s.viewer(r), ref, images.ReadOptions{Client: clientAddr(r)})
	if err != nil {
		return ref, nil, err
	}
	p, ok := a.Report.Select(want)
	if !ok {
		return ref, nil, analysis.Errorf(analysis.ErrInvalidRequest, nil, "%s has no platform image %s", ref, want)
	}
	return ref, p, nil
}

// writeContents answers a contents state: 200 with the result or the
// failure, 202 with the progress (and Retry-After: 1) while it runs.
func writeContents(w http.ResponseWriter, st contents.Status) error {
	switch {
	case st.Result != nil:
		return writeJSON(w, http.StatusOK, st.Result)
	case st.State == "failed":
		return writeJSON(w, http.StatusOK, struct {
			State   string `json:"state"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}{st.State, st.Reason, st.Message})
	}
	w.Header().Set("Retry-After", "1")
	return writeJSON(w, http.StatusAccepted, struct {
		State string `json:"state"`
		contents.Progress
	}{st.State, st.Progress})
}

// contentsWritable is contentsPlatform for a start: an analysis changes
// what the service keeps of the repository, so it passes the check a
// refresh passes (images.MayWrite) after the read has settled the
// repository's visibility; a viewer who may see a private repository but
// not change it (a read token) is refused with forbidden.
func (s *Server) contentsWritable(r *http.Request) (analysis.Reference, *analysis.Platform, error) {
	ref, p, err := s.contentsPlatform(r)
	if err != nil {
		return ref, nil, err
	}
	if err := s.images.MayWrite(r.Context(), s.viewer(r), ref, 0); err != nil {
		return ref, nil, err
	}
	return ref, p, nil
}

// apiContentsStart answers POST …/contents: start or join the analysis.
func (s *Server) apiContentsStart(w http.ResponseWriter, r *http.Request) error {
	if err := s.allowRefresh(r); err != nil {
		return err
	}
	ref, p, err := s.contentsWritable(r)
	if err != nil {
		return err
	}
	st, err := s.contents.Start(r.Context(), ref.Repository, p)
	if err != nil {
		return err
	}
	return writeContents(w, st)
}

// apiContents answers GET …/contents.
func (s *Server) apiContents(w http.ResponseWriter, r *http.Request) error {
	_, p, err := s.contentsPlatform(r)
	if err != nil {
		return err
	}
	st, err := s.contents.Status(r.Context(), p)
	if err != nil {
		return err
	}
	return writeContents(w, st)
}

// apiContentsTree answers GET …/contents/tree.
func (s *Server) apiContentsTree(w http.ResponseWriter, r *http.Request) error {
	o, err := treeQuery(r)
	if err != nil {
		return err
	}
	_, p, err := s.contentsPlatform(r)
	if err != nil {
		return err
	}
	t, err := s.contents.Tree(r.Context(), p, o)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

// treeQuery reads path, layer, changes and cursor.
func treeQuery(r *http.Request) (contents.TreeOptions, error) {
	q := r.URL.Query()
	o := contents.TreeOptions{Path: q.Get("path"), Layer: -1, Cursor: q.Get("cursor")}
	if o.Path == "" {
		o.Path = "/"
	}
	if o.Path[0] != '/' {
		return o, invalidRequest("path must be absolute, such as /usr/lib")
	}
	if v := q.Get("layer"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return o, invalidRequest("layer must be a layer's index, 0 for the base")
		}
		o.Layer = n
	}
	switch q.Get("changes") {
	case "", "0", "false":
	case "1", "true":
		if o.Layer < 0 {
			return o, invalidRequest("changes=1 needs layer=N: the changes of which layer")
		}
		o.Changes = true
	default:
		return o, invalidRequest("changes is 1 or 0")
	}
	return o, nil
}

// filesDiff is the "files" member of a diff asked with files=1.
type filesDiff struct {
	Added   filesList `json:"added"`
	Removed filesList `json:"removed"`
	Changed filesList `json:"changed"`
}

type filesList struct {
	Count int             `json:"count"`
	Paths []filesDiffPath `json:"paths"`
}

type filesDiffPath struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

func newFilesList(entries []analysis.FileDiffEntry, count int) filesList {
	l := filesList{Count: count, Paths: make([]filesDiffPath, len(entries))}
	for i, e := range entries {
		l.Paths[i] = filesDiffPath{Path: e.Path, Size: e.Size}
	}
	return l
}

// diffWithFiles adds the file-level diff to a diff when both platform
// images' contents are analysed, and "files": null otherwise.
func (s *Server) diffWithFiles(r *http.Request, c images.Compared) (any, error) {
	out := struct {
		*analysis.Diff
		Files *filesDiff `json:"files"`
	}{Diff: c.Diff}
	if s.contents == nil {
		return out, nil
	}
	from, to := platformByDigest(c.From, c.Diff.From.PlatformDigest), platformByDigest(c.To, c.Diff.To.PlatformDigest)
	if from == nil || to == nil {
		return out, nil
	}
	d, err := s.contents.FilesDiff(r.Context(), from, to)
	if err != nil || d == nil {
		return out, err
	}
	out.Files = &filesDiff{Added: newFilesList(d.Added, d.AddedCount), Removed: newFilesList(d.Removed, d.RemovedCount), Changed: newFilesList(d.Changed, d.ChangedCount)}
	return out, nil
}

func platformByDigest(r *analysis.Report, digest string) *analysis.Platform {
	for i := range r.Platforms {
		if r.Platforms[i].Digest == digest {
			return &r.Platforms[i]
		}
	}
	return nil
}

// efficiencyBadge is the efficiency badge of platform image p: its
// contents' efficiency once analysed, grey "not analysed" until then.
func (s *Server) efficiencyBadge(r *http.Request, p *analysis.Platform, grey func(text, cache string) shown) (shown, error) {
	if s.contents == nil {
		return grey(badge.TextNotAnalysed, badgeCacheControl), nil
	}
	st, err := s.contents.Status(r.Context(), p)
	if err != nil && !errors.Is(err, contents.ErrNotAnalyzed) {
		return shown{}, err
	}
	if err != nil || st.Result == nil {
		return grey(badge.TextNotAnalysed, badgeCacheControl), nil
	}
	return shown{key: badge.Key{Kind: badge.Efficiency, Digest: p.Digest, Platform: p.Platform, Badge: badge.EfficiencyBadge(st.Result.Efficiency)},
		status: http.StatusOK, cache: badgeCacheControl}, nil
}

// contentsPageRoutes registers the contents page and its start button;
// they come before the image page's route, which would take their paths.
func (s *Server) contentsPageRoutes(cop *http.CrossOriginProtection) {
	if s.contents == nil {
		return
	}
	s.router.Handle("/images/{reference:.+}/contents", cop.Handler(s.handle("page_contents_start", s.contentsStartPage))).Methods(http.MethodPost)
	s.router.Handle("/images/{reference:.+}/contents", s.handle("page_contents", s.contentsPage)).Methods(http.MethodGet, http.MethodHead)
}

// contentsStartPage answers the start button: start the analysis, then
// show the page with its progress.
func (s *Server) contentsStartPage(w http.ResponseWriter, r *http.Request) error {
	if err := s.allowRefresh(r); err != nil {
		return err
	}
	ref, p, err := s.contentsWritable(r)
	if err != nil {
		return err
	}
	if _, err := s.contents.Start(r.Context(), ref.Repository, p); err != nil {
		return err
	}
	target := templates.ImageHref(canonicalRef(ref)) + "/contents"
	if q := r.URL.Query().Get("platform"); q != "" {
		target += "?platform=" + url.QueryEscape(q)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// contentsPage answers /images/{reference}/contents: the start button, the
// progress, or the result with one directory of the tree.
func (s *Server) contentsPage(w http.ResponseWriter, r *http.Request) error {
	ref, p, err := s.contentsPlatform(r)
	if err != nil {
		return err
	}
	opt := s.pages.options()
	page := templates.NewContentsPage(canonicalRef(ref), r.URL.Query().Get("platform"), opt)
	st, err := s.contents.Status(r.Context(), p)
	switch {
	case errors.Is(err, contents.ErrNotAnalyzed):
		return s.render(w, r, http.StatusOK, templates.Contents(page))
	case err != nil:
		return err
	}
	switch {
	case st.State == "failed":
		page.State, page.Reason, page.Message = st.State, st.Reason, st.Message
	case st.Result == nil:
		page.SetProgress(st.State, st.LayersDone, st.LayersTotal, st.BytesRead, st.BytesTotal)
	default:
		res := st.Result
		var wasted, largest []templates.ContentsPath
		for _, x := range res.Wasted {
			wasted = append(wasted, templates.ContentsPath{Path: x.Path, Size: analysis.HumanSize(x.Size), Detail: fmt.Sprintf("%d layers: %v", x.Copies, x.Layers)})
		}
		for _, x := range res.Largest {
			largest = append(largest, templates.ContentsPath{Path: x.Path, Size: analysis.HumanSize(x.Size), Detail: strconv.Itoa(x.Layer)})
		}
		page.SetResult(res.Efficiency, res.FileCount, res.TotalSize, res.LayerFilesSize, res.WastedSize, wasted, largest)
		o := pageTreeQuery(r)
		if o.Layer >= len(p.Layers) {
			o.Layer = -1
		}
		if o.Layer < 0 {
			o.Changes = false
		}
		tree, err := s.contents.Tree(r.Context(), p, o)
		if errors.Is(err, analysis.ErrNotFound) {
			o.Path = "/"
			tree, err = s.contents.Tree(r.Context(), p, o)
		}
		if err != nil {
			return err
		}
		names := make([]string, len(p.Layers))
		for i, l := range p.Layers {
			names[i] = analysis.ShortDigest(l.Digest)
			if c := templates.CleanCommand(l.CreatedBy); c != "" {
				names[i] = oneLine(c, 60)
			}
		}
		entries := make([]templates.ContentsTreeEntry, len(tree.Entries))
		for i, e := range tree.Entries {
			entries[i] = templates.ContentsTreeEntry{Name: e.Name, Type: e.Type, LinkTarget: e.LinkTarget, Size: e.Size, Layer: e.Layer}
			if e.Change != nil {
				entries[i].Change = *e.Change
			}
		}
		next := ""
		if tree.Next != nil {
			next = *tree.Next
		}
		page.SetTree(templates.ContentsQuery{Path: tree.Path, Layer: o.Layer, Changes: o.Changes}, names, entries, next)
	}
	return s.render(w, r, http.StatusOK, templates.Contents(page))
}

// pageTreeQuery is treeQuery for the page, where a person's odd query
// shows the root rather than an error.
func pageTreeQuery(r *http.Request) contents.TreeOptions {
	q := r.URL.Query()
	o := contents.TreeOptions{Path: q.Get("path"), Layer: -1, Cursor: q.Get("cursor")}
	if o.Path == "" || o.Path[0] != '/' {
		o.Path = "/" + o.Path
	}
	if n, err := strconv.Atoi(q.Get("layer")); err == nil && n >= 0 {
		o.Layer = n
	}
	o.Changes = q.Get("changes") == "1"
	return o
}

// oneLine shortens a command to n runes on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
