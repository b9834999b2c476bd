package templates

import (
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// TagChange is one recorded change of a tag as pages need it, decoupled
// from the store.
type TagChange struct {
	Tag              string
	Kind             string
	Digest, Previous string
	At               time.Time
}

// HistoryEntry is one row of a tag history: what happened to which tag,
// from which image to which, and when, with the diff of a move.
type HistoryEntry struct {
	Tag Link
	// Kind is "created", "moved" or "deleted"; Verb says it in words.
	Kind, Verb string
	// To and From link the images after and before the change (by digest,
	// so they show what the tag pointed at then); the zero Link where the
	// change has no such side.
	To, From Link
	DiffHref string
	At       TimeView
}

// NewHistoryEntries builds the rows of a repository's history.
func NewHistoryEntries(registry, repository string, changes []TagChange, now time.Time) []HistoryEntry {
	out := make([]HistoryEntry, len(changes))
	for i, c := range changes {
		e := HistoryEntry{
			Tag:  Link{Text: c.Tag, Href: ImageHref(DisplayReference(registry, repository, c.Tag, ""))},
			Kind: c.Kind,
			At:   NewTimeView(c.At, now),
		}
		switch c.Kind {
		case "created":
			e.Verb = "created at"
		case "deleted":
			e.Verb = "removed; it pointed at"
		default:
			e.Verb = "moved"
		}
		if c.Digest != "" {
			e.To = Link{Text: analysis.ShortDigest(c.Digest), Href: ImageHref(DisplayReference(registry, repository, "", c.Digest))}
		}
		if c.Previous != "" {
			e.From = Link{Text: analysis.ShortDigest(c.Previous), Href: ImageHref(DisplayReference(registry, repository, "", c.Previous))}
		}
		if c.Digest != "" && c.Previous != "" {
			e.DiffHref = DiffHref(DisplayReference(registry, repository, "", c.Previous), DisplayReference(registry, repository, "", c.Digest))
		}
		out[i] = e
	}
	return out
}

// HistoryPage is the view model of /repositories/{repository}/history.
type HistoryPage struct {
	Meta           Meta
	Repository     string
	RepositoryHref string
	// Tag is the tag the page is limited to; empty for every tag.
	Tag string
	// AllHref is the whole repository's history (for a page limited to a
	// tag); NewestHref the first page (for a later one).
	AllHref    string
	NewestHref string
	Entries    []HistoryEntry
	// OlderHref is the next page; empty on the last.
	OlderHref string
}

// NewHistoryPage builds one page of a repository's (or a tag's) history;
// next is the cursor of the following page ("" on the last), paged whether
// this page is not the first.
func NewHistoryPage(registry, repository, tag string, changes []TagChange, next string, paged bool, opt Options) HistoryPage {
	repo := DisplayRepository(registry, repository)
	title := "History of " + repo
	if tag != "" {
		title = "History of " + repo + ":" + tag
	}
	p := HistoryPage{
		Meta:           Meta{Title: title, Description: "Every recorded change of the tags of " + repo + ": created, moved, removed.", BaseURL: opt.BaseURL, Version: opt.Version},
		Repository:     repo,
		RepositoryHref: RepositoryHref(repo),
		Tag:            tag,
		Entries:        NewHistoryEntries(registry, repository, changes, opt.Now),
	}
	if tag != "" {
		p.AllHref = HistoryHref(repo, "")
	}
	base := HistoryHref(repo, tag)
	if paged {
		p.NewestHref = base
	}
	if next != "" {
		sep := "?"
		if tag != "" {
			sep = "&"
		}
		p.OlderHref = base + sep + "before=" + next
	}
	return p
}
