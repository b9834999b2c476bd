package images

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// validTags returns the names a listing of repo may use: those outside the
// distribution spec's tag grammar are dropped with a log line each (the
// first loggedInvalidTags of them, then one line with how many more), so
// they are never asked for, stored or shown.
func (s *Service) validTags(repo analysis.Repository, names []string) []string {
	invalid := 0
	names = slices.DeleteFunc(names, func(t string) bool {
		p := analysis.TagProblem(t)
		if p == "" {
			return false
		}
		if invalid++; invalid <= loggedInvalidTags {
			s.opts.Logger.Warn("tags: skipped a tag name the registry listed that is not a valid tag",
				"repository", repo.String(), "tag", analysis.QuoteTag(t), "problem", p)
		}
		return true
	})
	if more := invalid - loggedInvalidTags; more > 0 {
		s.opts.Logger.Warn("tags: skipped more tag names the registry listed that are not valid tags",
			"repository", repo.String(), "count", more)
	}
	return names
}

// loggedInvalidTags bounds the invalid names one listing logs one by one,
// so a registry listing thousands cannot flood the log.
const loggedInvalidTags = 10

// listPlan is what a listing does with the tags it read.
type listPlan struct {
	// known are the repository's tags recorded when the listing began,
	// sorted by tag.
	known []store.TagRow
	// look are the tags to look up: every listed tag already recorded,
	// and as many new ones as the caps allow, sorted.
	look []string
	// gone are recorded tags the listing shows deleted.
	gone []store.TagRow
	// incomplete says why the listing leaves tags unrecorded ("" when it
	// records every tag the registry has).
	incomplete string
}

// plan decides what a listing of repo that read names (sorted; complete
// when the registry's every page was read) does: which recorded tags it
// shows deleted, only when complete, since a tag missing from a listing cut
// short may still exist; and which tags it looks up, every recorded one
// and at most MaxNewTags new ones, fewer when the repository would keep
// more than MaxRepositoryTags. only, when set, limits both to the tags it
// accepts. stopped is why the registry's listing ended early.
func (s *Service) plan(ctx context.Context, repo analysis.Repository, names []string, stopped string, only func(string) bool) (listPlan, error) {
	known, err := s.store.RepositoryTags(ctx, repo)
	if err != nil {
		return listPlan{}, err
	}
	p := listPlan{known: known, incomplete: stopped}
	if stopped != "" {
		s.opts.Logger.Warn("tags: the listing ended before the registry's last page; no tag is taken as deleted",
			"repository", repo.String(), "reason", stopped)
	}
	recorded := make(map[string]bool, len(known))
	for _, k := range known {
		recorded[k.Tag] = true
		if stopped != "" || (only != nil && !only(k.Tag)) {
			continue
		}
		if _, found := slices.BinarySearch(names, k.Tag); !found {
			p.gone = append(p.gone, k)
		}
	}
	room := min(s.opts.MaxNewTags, max(s.opts.MaxRepositoryTags-(len(known)-len(p.gone)), 0))
	skipped := 0
	for _, t := range names {
		switch {
		case only != nil && !only(t):
		case recorded[t]:
			p.look = append(p.look, t)
		case room > 0:
			p.look = append(p.look, t)
			room--
		default:
			skipped++
		}
	}
	if skipped > 0 {
		why := fmt.Sprintf("%d listed tags were not looked up: a listing records at most %d new tags, and a repository at most %d",
			skipped, s.opts.MaxNewTags, s.opts.MaxRepositoryTags)
		s.opts.Logger.Warn("tags: the listing holds more new tags than it records", "repository", repo.String(), "skipped", skipped,
			"max_new", s.opts.MaxNewTags, "max_repository", s.opts.MaxRepositoryTags)
		if p.incomplete == "" {
			p.incomplete = why
		} else {
			p.incomplete += "; " + why
		}
	}
	return p, nil
}

// recordGoneTags records the tags a listing showed deleted.
func (s *Service) recordGoneTags(ctx context.Context, repo analysis.Repository, gone []store.TagRow, l lookedUp) error {
	for _, k := range gone {
		l.previous = k.Digest
		if err := s.recordGone(ctx, repo.WithTag(k.Tag), l); err != nil && !errors.Is(err, analysis.ErrNotFound) {
			return err
		}
	}
	return nil
}
