package templates

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/imagebadger/imagebadger/analysis"
)

// ContentsPage is the page of what is inside an image's layers: a button
// to start the analysis, its live progress, then the summary, the wasted
// and largest files and a browsable tree with a layer selector.
type ContentsPage struct {
	Meta Meta
	// Ref is the image as people write it, ImageHref its page.
	Ref, ImageHref string
	// Platform is the platform image shown.
	Platform string
	// Action is where the start button posts; APIURL what the progress
	// script polls.
	Action, APIURL string
	// State is "" (never asked), queued, running, done or failed.
	State    string
	Progress ContentsProgress
	Reason   string
	Message  string
	Summary  ContentsSummary
	Wasted   []ContentsPath
	Largest  []ContentsPath
	Layers   []ContentsLayerOption
	// Changes shows only what the selected layer changed.
	Changes bool
	Tree    ContentsTree
}

// ContentsProgress is the progress bar's figures.
type ContentsProgress struct {
	LayersDone, LayersTotal int
	BytesRead, BytesTotal   int64
	Text                    string
}

// ContentsSummary is the result's figures, written for people.
type ContentsSummary struct {
	Efficiency, FileCount, TotalSize, LayerFilesSize, WastedSize string
}

// ContentsPath is one line of the wasted or largest list.
type ContentsPath struct {
	Path, Size, Detail string
}

// ContentsLayerOption is one choice of the layer selector.
type ContentsLayerOption struct {
	Value    string
	Text     string
	Selected bool
}

// ContentsTree is the listing of one directory.
type ContentsTree struct {
	Path    string
	Crumbs  []Link
	UpHref  string
	Entries []ContentsEntry
	// NextHref is the next page of a long directory, empty on the last.
	NextHref string
}

// ContentsEntry is one entry of the listing.
type ContentsEntry struct {
	Name, Type, Size, Change, Link, Href string
	Layer                                string
}

// ContentsTreeEntry is what the page needs of one listed entry.
type ContentsTreeEntry struct {
	Name, Type, LinkTarget, Change string
	Size                           int64
	Layer                          int
}

// ContentsQuery is what the tree shows: which directory, after which
// layer (-1: the final filesystem), only its changes or not.
type ContentsQuery struct {
	Path    string
	Layer   int
	Changes bool
}

// href is the page's address for another directory, layer or cursor.
func (p ContentsPage) href(q ContentsQuery, cursor string) string {
	v := url.Values{}
	if p.Platform != "" {
		v.Set("platform", p.Platform)
	}
	if q.Path != "" && q.Path != "/" {
		v.Set("path", q.Path)
	}
	if q.Layer >= 0 {
		v.Set("layer", strconv.Itoa(q.Layer))
	}
	if q.Changes {
		v.Set("changes", "1")
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	h := p.ImageHref + "/contents"
	if len(v) > 0 {
		h += "?" + v.Encode()
	}
	return h
}

// NewContentsPage makes the page's frame; the server fills the state.
func NewContentsPage(ref, platform string, opt Options) ContentsPage {
	p := ContentsPage{Ref: ref, ImageHref: ImageHref(ref), Platform: platform}
	q := ""
	if platform != "" {
		q = "?platform=" + url.QueryEscape(platform)
	}
	p.Action = p.ImageHref + "/contents" + q
	p.APIURL = "/api/v1/images/" + ref + "/contents" + q
	p.Meta = Meta{Title: "Contents of " + ref, Description: "What is inside the layers of " + ref + ": files, wasted space and efficiency.",
		BaseURL: opt.BaseURL, Version: opt.Version}
	return p
}

// SetProgress fills the progress bar.
func (p *ContentsPage) SetProgress(state string, layersDone, layersTotal int, bytesRead, bytesTotal int64) {
	p.State = state
	p.Progress = ContentsProgress{LayersDone: layersDone, LayersTotal: layersTotal, BytesRead: bytesRead, BytesTotal: max(bytesTotal, 1),
		Text: fmt.Sprintf("layer %d of %d, %s of %s read", min(layersDone+1, layersTotal), layersTotal, analysis.HumanSize(bytesRead), analysis.HumanSize(bytesTotal))}
	if state == "queued" {
		p.Progress.Text = "waiting for a free slot; " + p.Progress.Text
	}
}

// SetResult fills the summary and lists of a done analysis.
func (p *ContentsPage) SetResult(eff float64, files int, total, shipped, wasted int64, wastedPaths, largest []ContentsPath) {
	p.State = "done"
	p.Summary = ContentsSummary{Efficiency: strconv.FormatFloat(eff*100, 'f', 2, 64) + "%", FileCount: strconv.Itoa(files),
		TotalSize: analysis.HumanSize(total), LayerFilesSize: analysis.HumanSize(shipped), WastedSize: analysis.HumanSize(wasted)}
	p.Wasted, p.Largest = wastedPaths, largest
}

// SetTree fills the layer selector and the listing of one directory.
func (p *ContentsPage) SetTree(q ContentsQuery, layerNames []string, entries []ContentsTreeEntry, next string) {
	p.Changes = q.Changes
	p.Layers = append(p.Layers, ContentsLayerOption{Value: "", Text: "the final filesystem", Selected: q.Layer < 0})
	for i, n := range layerNames {
		p.Layers = append(p.Layers, ContentsLayerOption{Value: strconv.Itoa(i), Text: fmt.Sprintf("after layer %d: %s", i, n), Selected: q.Layer == i})
	}
	dir := q.Path
	if dir == "" {
		dir = "/"
	}
	t := ContentsTree{Path: dir}
	t.Crumbs = append(t.Crumbs, Link{Text: "/", Href: p.href(ContentsQuery{Path: "/", Layer: q.Layer, Changes: q.Changes}, "")})
	acc := ""
	for part := range strings.SplitSeq(strings.Trim(dir, "/"), "/") {
		if part == "" {
			continue
		}
		acc += "/" + part
		t.Crumbs = append(t.Crumbs, Link{Text: part, Href: p.href(ContentsQuery{Path: acc, Layer: q.Layer, Changes: q.Changes}, "")})
	}
	t.Crumbs[len(t.Crumbs)-1].Current = true
	for _, e := range entries {
		v := ContentsEntry{Name: e.Name, Type: e.Type, Change: e.Change, Link: e.LinkTarget, Layer: strconv.Itoa(e.Layer)}
		if e.Type == "file" {
			v.Size = analysis.HumanSize(e.Size)
		}
		if e.Type == "dir" && e.Change != "removed" {
			child := strings.TrimSuffix(dir, "/") + "/" + e.Name
			v.Href = p.href(ContentsQuery{Path: child, Layer: q.Layer, Changes: q.Changes}, "")
		}
		t.Entries = append(t.Entries, v)
	}
	if next != "" {
		t.NextHref = p.href(q, next)
	}
	p.Tree = t
}

// i64 writes a number for an attribute.
func i64(n int64) string { return strconv.FormatInt(n, 10) }
