package templates

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// HomePage is the view model of /.
type HomePage struct {
	Meta Meta
	// Query is what was searched, kept in the box when it was refused.
	Query string
	// Error says why Query was refused; empty when nothing was searched.
	Error string
	// NoMatch, with Error, adds that no known repository's name contains
	// Query either, so it was not taken as a search.
	NoMatch bool
	// Results are the known repositories whose name contains Query, when
	// it named no image this service knows.
	Results []SearchItem
	// InspectHref, with Results, is the image page of Query read as a
	// reference, for a person who meant exactly that.
	InspectHref string
	Recent      []RecentItem
	Watched     []WatchedItem
}

// SearchResult is one repository a search found, decoupled from the store.
type SearchResult struct {
	Registry, Repository string
	// Tag is its most recently changed tag ("" when it has none left).
	Tag      string
	TagCount int
	Changed  time.Time
}

// SearchItem is one search result as a page shows it.
type SearchItem struct {
	Repository string
	Href       string
	// Latest links the most recently changed tag's image page.
	Latest   Link
	TagCount string
	Changed  TimeView
}

// NewSearchItems builds the result list of a search.
func NewSearchItems(rs []SearchResult, now time.Time) []SearchItem {
	out := make([]SearchItem, len(rs))
	for i, r := range rs {
		repo := DisplayRepository(r.Registry, r.Repository)
		out[i] = SearchItem{Repository: repo, Href: RepositoryHref(repo), TagCount: plural(r.TagCount, "tag"), Changed: NewTimeView(r.Changed, now)}
		if r.Tag != "" {
			out[i].Latest = Link{Text: ":" + r.Tag, Href: ImageHref(DisplayReference(r.Registry, r.Repository, r.Tag, ""))}
		}
	}
	return out
}

// RecentItem is one change event of "Recently changed": the tags of one
// repository that changed together (the same kind, from the same image to
// the same image, within RecentWindow of each other), as they were recorded.
type RecentItem struct {
	Repository     string
	RepositoryHref string
	// Kind is "created", "moved" or "deleted".
	Kind string
	// Href is the image page of the change's image (by digest, so it shows
	// what the tags pointed at then), or the history for a deletion.
	Href string
	Tags []Link
	// ShortDigest is where the tags point after the change (empty for a
	// deletion), Previous where they pointed before (empty for a creation).
	ShortDigest string
	Previous    string
	// DiffHref compares the two images of a move; empty otherwise.
	DiffHref string
	Changed  TimeView
}

// RecentChange is one recorded tag change as the home page needs it,
// decoupled from the store.
type RecentChange struct {
	Registry, Repository, Tag string
	Kind                      string
	Digest, Previous          string
	At                        time.Time
}

// RecentWindow is how close in time changes of one event are: the tags a
// push or a rebuild moves are noticed by one listing, poll or hook burst.
const RecentWindow = 10 * time.Minute

// NewRecentItems groups recorded changes (newest first) into change events,
// keeping at most limit of them. Nothing is regrouped by where tags point
// now: an entry says what happened when it happened.
func NewRecentItems(changes []RecentChange, limit int, now time.Time) []RecentItem {
	var out []RecentItem
	type open struct {
		item   int
		oldest time.Time
	}
	groups := map[string]open{}
	for _, c := range changes {
		key := c.Registry + "/" + c.Repository + "\x00" + c.Kind + "\x00" + c.Previous + "\x00" + c.Digest
		if g, ok := groups[key]; ok && g.oldest.Sub(c.At) <= RecentWindow {
			it := &out[g.item]
			if !slices.ContainsFunc(it.Tags, func(l Link) bool { return l.Text == c.Tag }) {
				it.Tags = append(it.Tags, Link{Text: c.Tag, Href: ImageHref(DisplayReference(c.Registry, c.Repository, c.Tag, ""))})
			}
			g.oldest = c.At
			groups[key] = g
			continue
		}
		if len(out) == limit {
			continue
		}
		repo := DisplayRepository(c.Registry, c.Repository)
		it := RecentItem{
			Repository:     repo,
			RepositoryHref: RepositoryHref(repo),
			Kind:           c.Kind,
			Tags:           []Link{{Text: c.Tag, Href: ImageHref(DisplayReference(c.Registry, c.Repository, c.Tag, ""))}},
			ShortDigest:    analysis.ShortDigest(c.Digest),
			Previous:       analysis.ShortDigest(c.Previous),
			Changed:        NewTimeView(c.At, now),
		}
		switch {
		case c.Digest == "":
			it.Href = HistoryHref(repo, "")
		default:
			it.Href = ImageHref(DisplayReference(c.Registry, c.Repository, "", c.Digest))
		}
		if c.Kind == "moved" && c.Previous != "" && c.Digest != "" {
			it.DiffHref = DiffHref(DisplayReference(c.Registry, c.Repository, "", c.Previous), DisplayReference(c.Registry, c.Repository, "", c.Digest))
		}
		groups[key] = open{item: len(out), oldest: c.At}
		out = append(out, it)
	}
	for i := range out {
		analysisSortLinks(out[i].Tags)
	}
	return out
}

// Summary says what happened, in words.
func (r RecentItem) Summary() string {
	switch r.Kind {
	case "created":
		return "new at"
	case "deleted":
		return "removed; it pointed at"
	}
	return "moved"
}

// analysisSortLinks orders tag links as analysis.SortTags orders tags.
func analysisSortLinks(links []Link) {
	names := make([]string, len(links))
	byName := make(map[string]Link, len(links))
	for i, l := range links {
		names[i] = l.Text
		byName[l.Text] = l
	}
	analysis.SortTags(names)
	for i, n := range names {
		links[i] = byName[n]
	}
}

// WatchedItem is one repository tracked with --watch.
type WatchedItem struct {
	Repository string
	Href       string
	TagCount   int
	Changed    TimeView
}

// TagCountText says how many tags are known, in words.
func (w WatchedItem) TagCountText() string {
	if w.TagCount == 0 {
		return "no tags seen yet"
	}
	return plural(w.TagCount, "tag") + " known"
}

// RepositoryPage is the view model of /repositories/{repository}.
type RepositoryPage struct {
	Meta       Meta
	Repository string
	Href       string
	Registry   string
	TagCount   int
	Checked    TimeView
	Groups     []GroupView
	// HistoryHref is the repository's tag history; Removed its tags that
	// the registry no longer has, newest removal first.
	HistoryHref string
	Removed     []RemovedTag
	// Incomplete says why the last listing left tags of the registry out
	// of the page; empty when it did not.
	Incomplete string
}

// RemovedTag is a deleted tag as the repository page mentions it.
type RemovedTag struct {
	Tag     Link
	Removed TimeView
}

// GroupView is a set of tags sharing one digest.
type GroupView struct {
	// Title names the group by its most specific tag (or short digest).
	Title string
	// CompareHref is the diff against the next older group; empty for
	// the oldest.
	CompareHref  string
	CompareTitle string
	Href         string
	Digest       string
	ShortDigest  string
	MediaType    string
	Tags         []Link
	Platforms    []PlatformSize
	Created      TimeView
}

// PlatformSize is one platform of a group with its download size, when known.
type PlatformSize struct {
	Platform string
	Size     string
	Layers   string
}

// GroupSizes gives the per-platform sizes of a group's image, looked up by the
// caller; missing entries show the platform without a size.
type GroupSizes map[string][]analysis.Platform

// NewRepositoryPage builds the repository page from a tag listing, the
// platform reports found for its digests, and its removed tags.
func NewRepositoryPage(list *analysis.TagList, sizes GroupSizes, removed []analysis.TagDeleted, opt Options) RepositoryPage {
	repo := DisplayRepository(list.Registry, list.Repository)
	p := RepositoryPage{
		Meta: Meta{
			Title:       repo,
			Description: "Tags of " + repo + " grouped by the image they point at.",
			BaseURL:     opt.BaseURL,
			Version:     opt.Version,
		},
		Repository:  repo,
		Href:        RepositoryHref(repo),
		Registry:    list.Registry,
		TagCount:    list.TagCount,
		Checked:     NewTimeView(list.CheckedAt, opt.Now),
		HistoryHref: HistoryHref(repo, ""),
	}
	if !list.Complete {
		p.Incomplete = list.Incomplete
	}
	for _, d := range removed {
		p.Removed = append(p.Removed, RemovedTag{Tag: Link{Text: d.Ref.Tag, Href: HistoryHref(repo, d.Ref.Tag)}, Removed: NewTimeView(d.At, opt.Now)})
	}
	for _, g := range list.Groups {
		tags := sortTags(g.Tags)
		gv := GroupView{
			Digest:      g.Digest,
			ShortDigest: analysis.ShortDigest(g.Digest),
			MediaType:   MediaTypeName(g.MediaType),
			Created:     timeViewPtr(g.Created, opt.Now),
		}
		primary := longest(tags)
		if primary == "" {
			gv.Title = gv.ShortDigest
			gv.Href = ImageHref(DisplayReference(list.Registry, list.Repository, "", g.Digest))
		} else {
			gv.Title = ":" + primary
			gv.Href = ImageHref(DisplayReference(list.Registry, list.Repository, primary, ""))
		}
		for _, t := range tags {
			gv.Tags = append(gv.Tags, Link{Text: t, Href: ImageHref(DisplayReference(list.Registry, list.Repository, t, ""))})
		}
		known := map[string]analysis.Platform{}
		for _, pl := range sizes[g.Digest] {
			known[pl.Platform] = pl
		}
		for _, name := range g.Platforms {
			ps := PlatformSize{Platform: name}
			if pl, ok := known[name]; ok {
				ps.Size = analysis.HumanSize(pl.DownloadSize)
				ps.Layers = plural(pl.LayerCount, "layer")
			}
			gv.Platforms = append(gv.Platforms, ps)
		}
		if len(g.Platforms) == 0 {
			for _, pl := range sizes[g.Digest] {
				gv.Platforms = append(gv.Platforms, PlatformSize{Platform: pl.Platform, Size: analysis.HumanSize(pl.DownloadSize), Layers: plural(pl.LayerCount, "layer")})
			}
		}
		p.Groups = append(p.Groups, gv)
	}
	// Groups are newest first: each links the diff from the next older one.
	for i := 0; i+1 < len(p.Groups); i++ {
		older := p.Groups[i+1]
		p.Groups[i].CompareTitle = older.Title
		p.Groups[i].CompareHref = DiffHref(DisplayReference(list.Registry, list.Repository, "", older.Digest),
			DisplayReference(list.Registry, list.Repository, "", p.Groups[i].Digest))
	}
	return p
}

// TagCountText says how many tags and images the page lists.
func (p RepositoryPage) TagCountText() string {
	return plural(p.TagCount, "tag") + " on " + plural(len(p.Groups), "image")
}

// ErrorPage is the view model of an error answered as HTML.
type ErrorPage struct {
	Meta    Meta
	Status  int
	Heading string
	Message string
	// Query, when set, pre-fills a search box so the person can try again.
	Query string
	// Links are ways on from here (for a removed tag: the image it pointed
	// at, its history).
	Links []Link
	// CredentialsFor, when set, names the registry that wants credentials
	// this service lacks: the page then says how to give them.
	CredentialsFor string
	// PrivateHelp, on a not-found page, says that private images are shown
	// to nobody here (the default policy and no sign-in configured) and
	// how the operator changes that. Every not-found page says it, so it
	// tells nothing of the image asked for.
	PrivateHelp bool
}

// StatusText is the status line shown small above the heading.
func (e ErrorPage) StatusText() string {
	return "Error " + strconv.Itoa(e.Status)
}

// NewTagRemovedPage is the page of a tag its registry no longer has: when
// the removal was noticed, where the tag last pointed (whose image is still
// readable by digest), and its history.
func NewTagRemovedPage(d *analysis.TagDeleted, opt Options) ErrorPage {
	ref := DisplayReference(d.Ref.Registry, d.Ref.Name, d.Ref.Tag, "")
	repo := DisplayRepository(d.Ref.Registry, d.Ref.Name)
	at := NewTimeView(d.At, opt.Now)
	return ErrorPage{
		Meta:    Meta{Title: ref + " removed", BaseURL: opt.BaseURL, NoHeaderSearch: true, Version: opt.Version},
		Heading: "Tag removed",
		Message: fmt.Sprintf("%s was removed from its registry %s (%s). It last pointed at %s.", ref, at.Relative, at.Absolute, d.Digest),
		Query:   ref,
		Links: []Link{
			{Text: "The image it pointed at, " + analysis.ShortDigest(d.Digest), Href: ImageHref(DisplayReference(d.Ref.Registry, d.Ref.Name, "", d.Digest))},
			{Text: "History of " + d.Ref.Tag, Href: HistoryHref(repo, d.Ref.Tag)},
			{Text: "All tags of " + repo, Href: RepositoryHref(repo)},
		},
	}
}
