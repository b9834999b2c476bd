package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
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
// digest is already recorded costs nothing more; a new or moved one has
// its image read by digest (GETs only for digests never seen). What was
// found is then recorded as a registry listing's lookups are (recordFound:
// compare-and-sets, the tags moved to one image in one transaction), and tags Hub no longer lists are recorded as
// deleted. A tag Hub lists without a digest, or whose platform images Hub
// lists differently from the registry's index, is looked up against the
// registry as a listing without Hub would. Names and caps are as for a
// registry listing (plan); incomplete says why tags were left unrecorded.
func (s *Service) listFromHub(ctx context.Context, repo analysis.Repository, how ReadOptions) (incomplete string, err error) {
	at := s.opts.Now()
	listing, err := s.opts.Hub.Tags(ctx, repo)
	if err != nil {
		return "", err
	}
	byName := make(map[string]registry.HubTag, len(listing.Tags))
	names := make([]string, 0, len(listing.Tags))
	for _, t := range listing.Tags {
		if _, dup := byName[t.Name]; !dup {
			names = append(names, t.Name)
		}
		byName[t.Name] = t
	}
	slices.Sort(names)
	p, err := s.plan(ctx, repo, s.validTags(repo, names), listing.Stopped, how.Only)
	if err != nil {
		return "", err
	}
	stored := make(map[string]string, len(p.known))
	for _, k := range p.known {
		stored[k.Tag] = k.Digest
	}
	if err := s.recordGoneTags(ctx, repo, p.gone, lookedUp{at: at, notFound: analysis.ErrNotFound}); err != nil {
		return "", err
	}
	names = p.look
	found := make([]lookedUp, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(resolveParallel)
	for i, name := range names {
		g.Go(func() error {
			ref := repo.WithTag(name)
			l, err := s.lookupHub(gctx, ref, byName[name], stored[name], at, how.Polling)
			if errors.Is(err, errHubDisagrees) {
				l, err = s.lookup(gctx, ref, lookupMode{polling: how.Polling})
			}
			found[i] = l
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	return p.incomplete, s.recordFound(ctx, repo, names, found)
}

// errHubDisagrees: Docker Hub's listing of a tag cannot be used as it is;
// the registry is asked instead.
var errHubDisagrees = errors.New("images: Docker Hub's listing of the tag cannot be used")

// lookupHub is lookup from what Docker Hub says ref points at, without a
// registry request for the tag. previous is the digest stored for it when
// the listing began; polling marks a background poll's requests.
func (s *Service) lookupHub(ctx context.Context, ref analysis.Reference, t registry.HubTag, previous string, at time.Time, polling bool) (lookedUp, error) {
	if t.Digest == "" {
		return lookedUp{}, errHubDisagrees
	}
	rep, err := s.reportVia(ctx, ref.Repository, t.Digest, polling)
	if err != nil {
		if errors.Is(err, analysis.ErrNotFound) {
			// Hub lists a digest the registry does not have (yet, or any more).
			return lookedUp{}, errHubDisagrees
		}
		return lookedUp{}, err
	}
	if previous != t.Digest && !platformsAgree(rep, t.Images) {
		return lookedUp{}, errHubDisagrees
	}
	if err := s.indexReport(ctx, ref.Repository, rep); err != nil {
		return lookedUp{}, err
	}
	return lookedUp{previous: previous, rep: rep, at: at}, nil
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
