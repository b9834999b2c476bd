package images

import (
	"context"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/store"
)

// The reads below answer from what the store recorded of repositories
// (their history, search, the recent changes), each through the same
// visibility check as Read: a repository viewer may not see is one the
// service knows nothing of. A repository the store knows was read with
// the service's credentials, so its visibility is learnt here when it is
// not known yet (once per repository).

// shown reports whether viewer may be shown what the store holds of repo.
// A repository whose visibility cannot be learnt now is left out.
func (s *Service) shown(ctx context.Context, viewer auth.Viewer, repo analysis.Repository) bool {
	if s.opts.PrivateImages == PrivateToEveryone {
		return true
	}
	v, err := s.verdict(ctx, analysis.Reference{Repository: repo}, true, time.Time{})
	if err != nil {
		s.opts.Logger.Info("repository left out: its visibility is not known", "repository", repo.String(), "err", err)
		return false
	}
	return !s.hiddenFrom(v, viewer, repo)
}

// KnownRepository reports whether any change of repo's tags was recorded
// (store.Store.KnownRepository) and viewer may see it.
func (s *Service) KnownRepository(ctx context.Context, viewer auth.Viewer, repo analysis.Repository) (bool, error) {
	known, err := s.store.KnownRepository(ctx, repo)
	if err != nil || !known {
		return false, err
	}
	return s.shown(ctx, viewer, repo), nil
}

// History returns one page of q.Repo's recorded changes
// (store.Store.History); none for a repository viewer may not see.
func (s *Service) History(ctx context.Context, viewer auth.Viewer, q store.HistoryQuery) ([]store.TagChange, bool, error) {
	changes, more, err := s.store.History(ctx, q)
	if err != nil || len(changes) == 0 || s.shown(ctx, viewer, q.Repo) {
		return changes, more, err
	}
	return nil, false, nil
}

// Search finds known repositories by part of their name
// (store.Store.Search), leaving out those viewer may not see. When some
// were left out of a full page, the store is asked once more for a longer
// one, so that hidden repositories do not crowd out the visible ones.
func (s *Service) Search(ctx context.Context, viewer auth.Viewer, term string, limit int) ([]store.SearchResult, error) {
	ask := limit
	var out []store.SearchResult
	for try := range 2 {
		found, err := s.store.Search(ctx, term, ask)
		if err != nil {
			return nil, err
		}
		out = out[:0]
		for _, f := range found {
			if len(out) < limit && s.shown(ctx, viewer, f.Repo) {
				out = append(out, f)
			}
		}
		if len(out) >= limit || len(found) < ask || try == 1 {
			break
		}
		ask = limit * hiddenOverfetch
	}
	return out, nil
}

// hiddenOverfetch is how many times the asked number of rows a second
// read of search results or recent changes asks for, when the first left
// some out.
const hiddenOverfetch = 4

// RecentChanges returns the latest changes of every repository
// (store.Store.RecentChanges), leaving out those of repositories viewer
// may not see, and reading once more, further back, when that left the
// list short.
func (s *Service) RecentChanges(ctx context.Context, viewer auth.Viewer, limit int) ([]store.TagChange, error) {
	ask := limit
	var out []store.TagChange
	for try := range 2 {
		changes, err := s.store.RecentChanges(ctx, ask)
		if err != nil {
			return nil, err
		}
		out = out[:0]
		for _, c := range changes {
			if len(out) < limit && s.shown(ctx, viewer, analysis.Repository{Registry: c.Registry, Name: c.Repository}) {
				out = append(out, c)
			}
		}
		if len(out) >= limit || len(changes) < ask || try == 1 {
			break
		}
		ask = limit * hiddenOverfetch
	}
	return out, nil
}

// RepositoryActivity returns repo's tag count and latest change
// (store.Store.RepositoryActivity); nothing for a repository viewer may
// not see.
func (s *Service) RepositoryActivity(ctx context.Context, viewer auth.Viewer, repo analysis.Repository) (store.Activity, error) {
	if !s.shown(ctx, viewer, repo) {
		return store.Activity{}, nil
	}
	return s.store.RepositoryActivity(ctx, repo)
}

// Deleted returns repo's tags recorded as deleted (store.Store.Deleted);
// none for a repository viewer may not see.
func (s *Service) Deleted(ctx context.Context, viewer auth.Viewer, repo analysis.Repository, limit int) ([]analysis.TagDeleted, error) {
	if !s.shown(ctx, viewer, repo) {
		return nil, nil
	}
	return s.store.Deleted(ctx, repo, limit)
}

// TagState returns the stored state of ref's tag (store.Store.Tag) through
// the visibility check of Read.
func (s *Service) TagState(ctx context.Context, viewer auth.Viewer, ref analysis.Reference) (store.TagState, error) {
	st, err := s.store.Tag(ctx, ref.Repository, ref.Tag)
	if gerr := s.guard(ctx, viewer, ref, err, time.Time{}); gerr != nil {
		return store.TagState{}, gerr
	}
	return st, nil
}
