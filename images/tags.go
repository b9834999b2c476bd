package images

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"imagebadger/analysis"
)

// resolveParallel bounds the tags of one listing resolved at once. The
// registry client further limits requests per registry host.
const resolveParallel = 32

// Tags returns repo's tags grouped by digest, by the read policy of Read:
// a repository listed before is answered from the store (and listed again
// in the background once the listing is older than FreshFor); one never
// listed is listed while the caller waits up to how.Wait; how.Refresh lists
// it now. A listing asks the registry for the tag list (paginated), then one
// HEAD per tag, concurrently; manifests and configs are fetched only for
// digests never seen. Each tag goes through Check, so its moves are recorded
// with their events.
func (s *Service) Tags(ctx context.Context, repo analysis.Repository, how ReadOptions) (*analysis.TagList, error) {
	if how.Refresh {
		listed, err := s.listed(ctx, repo, true, how.RegistryOnly)
		if err != nil {
			return nil, err
		}
		return s.groups(ctx, repo, listed)
	}
	listed, err := s.store.Listed(ctx, repo)
	if err == nil {
		if s.opts.Now().Sub(listed) >= s.opts.FreshFor {
			s.bg.startListing(s, repo)
		}
		return s.groups(ctx, repo, listed)
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return nil, err
	}
	if err := s.bg.startListing(s, repo).wait(ctx, how.Wait); err != nil {
		return nil, err
	}
	if listed, err = s.store.Listed(ctx, repo); err != nil {
		return nil, err
	}
	return s.groups(ctx, repo, listed)
}

// listed lists repo's tags from the registry, shared among concurrent
// callers, and returns when; without refresh, a listing younger than
// FreshFor (made meanwhile, by another caller or process) is kept instead.
func (s *Service) listed(ctx context.Context, repo analysis.Repository, refresh, registryOnly bool) (time.Time, error) {
	key := "tags\x00" + repo.String()
	if refresh {
		key += "\x00refresh"
	}
	if registryOnly {
		key += "\x00registry"
	}
	v, err, _ := s.flight.Do(key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if !refresh {
			if at, err := s.store.Listed(ctx, repo); err == nil && s.opts.Now().Sub(at) < s.opts.FreshFor {
				return at, nil
			}
		}
		return s.list(ctx, repo, registryOnly)
	})
	if err != nil {
		return time.Time{}, err
	}
	return v.(time.Time), nil
}

// list reads the tag list and resolves every tag: from Docker Hub's web
// API for docker.io when it is on and registryOnly is not asked, falling
// back to the registry when the web API fails; else from the registry.
func (s *Service) list(ctx context.Context, repo analysis.Repository, registryOnly bool) (time.Time, error) {
	at := s.opts.Now()
	s.refreshFacts(ctx, repo)
	if s.usesHub(repo) && !registryOnly {
		err := s.listFromHub(ctx, repo)
		if err == nil {
			if err := s.store.RecordListing(ctx, repo, at); err != nil {
				return time.Time{}, err
			}
			return at, nil
		}
		s.hubFallback(repo, err)
	}
	tags, err := s.client.ListTags(ctx, repo)
	if err != nil {
		return time.Time{}, err
	}
	known, err := s.store.RepositoryTags(ctx, repo)
	if err != nil {
		return time.Time{}, err
	}
	var gone []string
	for _, k := range known {
		if _, found := slices.BinarySearch(tags, k.Tag); !found {
			gone = append(gone, k.Tag)
		}
	}
	if err := s.store.ForgetTags(ctx, repo, gone); err != nil {
		return time.Time{}, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(resolveParallel)
	var mu sync.Mutex
	var missing []string
	for _, t := range tags {
		g.Go(func() error {
			err := s.Check(gctx, repo.WithTag(t))
			if errors.Is(err, analysis.ErrRateLimited) {
				// The client now holds every request to this registry until
				// its pause ends; try this tag once more after it.
				err = s.Check(gctx, repo.WithTag(t))
			}
			if errors.Is(err, analysis.ErrNotFound) {
				// Deleted between the listing and the HEAD.
				mu.Lock()
				missing = append(missing, t)
				mu.Unlock()
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return time.Time{}, err
	}
	if err := s.store.ForgetTags(ctx, repo, missing); err != nil {
		return time.Time{}, err
	}
	if err := s.store.RecordListing(ctx, repo, at); err != nil {
		return time.Time{}, err
	}
	return at, nil
}

// groups builds the grouped listing from the store.
func (s *Service) groups(ctx context.Context, repo analysis.Repository, listed time.Time) (*analysis.TagList, error) {
	rows, err := s.store.RepositoryTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := &analysis.TagList{Registry: repo.Registry, Repository: repo.Name, TagCount: len(rows),
		CheckedAt: listed.UTC().Truncate(time.Second), Groups: []analysis.TagGroup{}}
	byDigest := map[string]int{}
	for _, r := range rows {
		i, ok := byDigest[r.Digest]
		if !ok {
			i = len(out.Groups)
			byDigest[r.Digest] = i
			g := analysis.TagGroup{Digest: r.Digest, MediaType: r.MediaType, Platforms: []string{}}
			if rep, err := s.report(ctx, repo, r.Digest); err == nil {
				for _, p := range rep.Platforms {
					g.Platforms = append(g.Platforms, p.Platform)
					if p.Created != nil && (g.Created == nil || p.Created.After(*g.Created)) {
						g.Created = p.Created
					}
				}
			}
			out.Groups = append(out.Groups, g)
		}
		out.Groups[i].Tags = append(out.Groups[i].Tags, r.Tag)
	}
	for i := range out.Groups {
		analysis.SortTags(out.Groups[i].Tags)
	}
	// Newest images first; groups without a creation time last, by digest.
	slices.SortStableFunc(out.Groups, func(a, b analysis.TagGroup) int {
		switch {
		case a.Created != nil && b.Created != nil && !a.Created.Equal(*b.Created):
			return b.Created.Compare(*a.Created)
		case a.Created != nil && b.Created == nil:
			return -1
		case a.Created == nil && b.Created != nil:
			return 1
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	return out, nil
}

// Versions returns every known image of repo with the tags that point at it
// now, newest first, for MicroBadger's Versions list; the tags are listed
// first if they never were, as Tags does.
func (s *Service) Versions(ctx context.Context, repo analysis.Repository, how ReadOptions) ([]*analysis.Report, error) {
	list, err := s.Tags(ctx, repo, how)
	if err != nil {
		return nil, err
	}
	var out []*analysis.Report
	for _, g := range list.Groups {
		rep, err := s.report(ctx, repo, g.Digest)
		if err != nil {
			continue
		}
		rep = rep.Clone()
		rep.Tags = g.Tags
		out = append(out, rep)
	}
	return out, nil
}
