package templates

import (
	"strconv"
	"time"

	"imagebadger/analysis"
)

// HomePage is the view model of /.
type HomePage struct {
	Meta Meta
	// Query is what was searched, kept in the box when it was refused.
	Query string
	// Error says why Query was refused; empty when nothing was searched.
	Error   string
	Recent  []RecentItem
	Watched []WatchedItem
}

// RecentItem is one image whose tags moved (or appeared) recently: the tags
// that moved to it together are shown as one entry.
type RecentItem struct {
	Repository     string
	RepositoryHref string
	// Href is the image page, by its most specific tag.
	Href        string
	Tags        []Link
	ShortDigest string
	// Previous is the short digest the tags pointed at before; empty for tags
	// seen the first time.
	Previous string
	Changed  TimeView
}

// RecentTag is a tag move as the home page needs it, decoupled from the store.
type RecentTag struct {
	Registry, Repository, Tag string
	Digest, Previous          string
	Changed                   time.Time
}

// NewRecentItems groups recent tag moves (newest first) by repository and
// digest, keeping at most limit entries.
func NewRecentItems(tags []RecentTag, limit int, now time.Time) []RecentItem {
	var out []RecentItem
	index := map[string]int{}
	for _, t := range tags {
		key := t.Registry + "/" + t.Repository + "@" + t.Digest
		i, ok := index[key]
		if !ok {
			if len(out) == limit {
				continue
			}
			repo := DisplayRepository(t.Registry, t.Repository)
			i = len(out)
			index[key] = i
			out = append(out, RecentItem{
				Repository:     repo,
				RepositoryHref: RepositoryHref(repo),
				ShortDigest:    analysis.ShortDigest(t.Digest),
				Changed:        NewTimeView(t.Changed, now),
			})
		}
		it := &out[i]
		it.Tags = append(it.Tags, Link{Text: t.Tag, Href: ImageHref(DisplayReference(t.Registry, t.Repository, t.Tag, ""))})
		if it.Previous == "" && t.Previous != "" {
			it.Previous = analysis.ShortDigest(t.Previous)
		}
	}
	for i := range out {
		it := &out[i]
		names := make([]string, len(it.Tags))
		for j, l := range it.Tags {
			names[j] = l.Text
		}
		analysisSortLinks(it.Tags)
		best := longest(names)
		for _, l := range it.Tags {
			if l.Text == best {
				it.Href = l.Href
			}
		}
	}
	return out
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
}

// GroupView is a set of tags sharing one digest.
type GroupView struct {
	// Title names the group by its most specific tag (or short digest).
	Title       string
	Href        string
	Digest      string
	ShortDigest string
	MediaType   string
	Tags        []Link
	Platforms   []PlatformSize
	Created     TimeView
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

// NewRepositoryPage builds the repository page from a tag listing and the
// platform reports found for its digests.
func NewRepositoryPage(list *analysis.TagList, sizes GroupSizes, opt Options) RepositoryPage {
	repo := DisplayRepository(list.Registry, list.Repository)
	p := RepositoryPage{
		Meta: Meta{
			Title:       repo,
			Description: "Tags of " + repo + " grouped by the image they point at.",
			BaseURL:     opt.BaseURL,
		},
		Repository: repo,
		Href:       RepositoryHref(repo),
		Registry:   list.Registry,
		TagCount:   list.TagCount,
		Checked:    NewTimeView(list.CheckedAt, opt.Now),
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
	// CredentialsFor, when set, names the registry that wants credentials
	// this service lacks: the page then says how to give them.
	CredentialsFor string
}

// StatusText is the status line shown small above the heading.
func (e ErrorPage) StatusText() string {
	return "Error " + strconv.Itoa(e.Status)
}
