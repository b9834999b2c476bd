package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"imagebadger/analysis"
	"imagebadger/registry"
)

// usesHub reports whether repo's listing and facts may come from Docker
// Hub's web API.
func (s *Service) usesHub(repo analysis.Repository) bool {
	return s.opts.Hub != nil && repo.Registry == analysis.DockerHub
}

// refreshFacts asks Docker Hub for repo's facts when those stored are older
// than FreshFor (or missing), one ask per repository at a time, and stores
// them. The facts are extras: a failure is logged and the answer goes on
// without them.
func (s *Service) refreshFacts(ctx context.Context, repo analysis.Repository) {
	if !s.usesHub(repo) {
		return
	}
	if _, at, err := s.store.RepositoryInfo(ctx, repo); err == nil && s.opts.Now().Sub(at) < s.opts.FreshFor {
		return
	}
	_, _, _ = s.flight.Do("facts\x00"+repo.String(), func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if _, at, err := s.store.RepositoryInfo(ctx, repo); err == nil && s.opts.Now().Sub(at) < s.opts.FreshFor {
			return nil, nil
		}
		at := s.opts.Now()
		info, err := s.opts.Hub.Repository(ctx, repo)
		if err != nil {
			s.opts.Logger.Info("docker hub: repository facts unavailable", "repository", repo.String(), "err", err)
			return nil, err
		}
		_, err = s.store.RecordRepositoryInfo(ctx, repo, info, at)
		return nil, err
	})
}

// repositoryInfo returns the stored facts of repo for an answer, nil when
// none are known.
func (s *Service) repositoryInfo(ctx context.Context, repo analysis.Repository) (*analysis.RepositoryInfo, error) {
	if repo.Registry != analysis.DockerHub {
		return nil, nil
	}
	info, _, err := s.store.RepositoryInfo(ctx, repo)
	if errors.Is(err, analysis.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// listFromHub lists repo's tags with their digests from Docker Hub's web
// API, 100 a request, instead of one registry HEAD per tag. A tag whose
// digest is already recorded costs nothing more; a new or moved one is
// recorded through recordTag (a compare-and-set carrying the move's events,
// as every other way of noticing a move), after its image has been read by
// digest (GETs only for digests never seen). A tag Hub lists without a
// digest, or whose platform images Hub lists differently from the
// registry's index, is resolved against the registry as a listing without
// Hub would.
func (s *Service) listFromHub(ctx context.Context, repo analysis.Repository) error {
	at := s.opts.Now()
	tags, err := s.opts.Hub.Tags(ctx, repo)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(tags))
	for _, t := range tags {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	known, err := s.store.RepositoryTags(ctx, repo)
	if err != nil {
		return err
	}
	stored := make(map[string]string, len(known))
	var gone []string
	for _, k := range known {
		stored[k.Tag] = k.Digest
		if _, found := slices.BinarySearch(names, k.Tag); !found {
			gone = append(gone, k.Tag)
		}
	}
	if err := s.store.ForgetTags(ctx, repo, gone); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(resolveParallel)
	var mu sync.Mutex
	var missing []string
	for _, t := range tags {
		g.Go(func() error {
			ref := repo.WithTag(t.Name)
			err := s.recordHubTag(gctx, ref, t, stored[t.Name], at)
			if errors.Is(err, errHubDisagrees) {
				err = s.Check(gctx, ref)
				if errors.Is(err, analysis.ErrNotFound) {
					mu.Lock()
					missing = append(missing, t.Name)
					mu.Unlock()
					return nil
				}
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := s.store.ForgetTags(ctx, repo, missing); err != nil {
		return err
	}
	return nil
}

// errHubDisagrees: Docker Hub's listing of a tag cannot be used as it is;
// the registry is asked instead.
var errHubDisagrees = errors.New("images: Docker Hub's listing of the tag cannot be used")

// recordHubTag records what Docker Hub says ref points at. previous is the
// digest stored for it when the listing began.
func (s *Service) recordHubTag(ctx context.Context, ref analysis.Reference, t registry.HubTag, previous string, at time.Time) error {
	if t.Digest == "" {
		return errHubDisagrees
	}
	rep, err := s.report(ctx, ref.Repository, t.Digest)
	if err != nil {
		if errors.Is(err, analysis.ErrNotFound) {
			// Hub lists a digest the registry does not have (yet, or any more).
			return errHubDisagrees
		}
		return err
	}
	if previous != t.Digest && !platformsAgree(rep, t.Images) {
		return errHubDisagrees
	}
	if err := s.indexReport(ctx, ref.Repository, rep); err != nil {
		return err
	}
	moved, err := s.recordTag(ctx, ref, previous, rep, at)
	if err != nil {
		return err
	}
	if moved {
		_, err = s.attachParents(ctx, ref.Repository, rep.Clone(), newReads(s.store))
	}
	return err
}

// platformsAgree reports whether every platform image Docker Hub lists for
// a tag (attestations and unknown/unknown entries aside) is one the
// registry's image has: Hub's per-platform digests vouch that its listing
// describes the same image.
func platformsAgree(rep *analysis.Report, images []registry.HubImage) bool {
	have := make(map[string]bool, len(rep.Platforms)+1)
	have[rep.Digest] = true
	for _, p := range rep.Platforms {
		have[p.Digest] = true
	}
	for _, im := range images {
		if im.Digest == "" || im.OS == "" || im.OS == "unknown" || im.Architecture == "unknown" {
			continue
		}
		if !have[im.Digest] {
			return false
		}
	}
	return true
}

// hubFallback logs why a listing went to the registry instead of Hub.
func (s *Service) hubFallback(repo analysis.Repository, err error) {
	s.opts.Logger.Info("docker hub: listing from the registry instead", "repository", repo.String(), "err", fmt.Errorf("images: %w", err))
}
