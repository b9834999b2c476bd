package images

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/store"
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
// in the change log. The answer passes Read's visibility check for viewer,
// and a refresh is a write, as Read's is.
func (s *Service) Tags(ctx context.Context, viewer auth.Viewer, repo analysis.Repository, how ReadOptions) (*analysis.TagList, error) {
	ref := analysis.Reference{Repository: repo}
	var notBefore time.Time
	if how.Refresh && !how.Polling {
		if err := s.mayWrite(ctx, viewer, ref); err != nil {
			return nil, err
		}
		notBefore = s.opts.Now().Truncate(time.Millisecond) // as the store keeps it
	}
	list, err := s.tags(ctx, repo, how)
	if err := s.guard(ctx, viewer, ref, err, notBefore); err != nil {
		return nil, err
	}
	return list, nil
}

// tags is Tags without the visibility check.
func (s *Service) tags(ctx context.Context, repo analysis.Repository, how ReadOptions) (*analysis.TagList, error) {
	if how.Refresh {
		at, err := s.listed(ctx, repo, true, how)
		if err != nil {
			return nil, err
		}
		listed := store.Listing{At: at}
		if l, err := s.store.Listed(ctx, repo); err == nil {
			listed.Incomplete = l.Incomplete
		}
		return s.groups(ctx, repo, listed)
	}
	listed, err := s.store.Listed(ctx, repo)
	if err == nil {
		if s.opts.Now().Sub(listed.At) >= s.opts.FreshFor {
			s.bg.startListing(s, repo)
		}
		return s.groups(ctx, repo, listed)
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return nil, err
	}
	if err := s.bg.startListingFor(s, repo, how.Client).wait(ctx, how.Wait); err != nil {
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
func (s *Service) listed(ctx context.Context, repo analysis.Repository, refresh bool, how ReadOptions) (time.Time, error) {
	key := "tags\x00" + repo.String()
	if refresh {
		key += "\x00refresh"
	}
	if how.RegistryOnly {
		key += "\x00registry"
	}
	if how.Only != nil {
		key += "\x00only\x00" + how.OnlyKey
	}
	v, err, _ := s.flight.Do(key, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		if !refresh {
			if l, err := s.store.Listed(ctx, repo); err == nil && s.opts.Now().Sub(l.At) < s.opts.FreshFor {
				return l.At, nil
			}
		}
		return s.list(ctx, repo, how)
	})
	if err != nil {
		return time.Time{}, err
	}
	return v.(time.Time), nil
}

// list reads the tag list and resolves every tag: from Docker Hub's web
// API for docker.io when it is on and how.RegistryOnly is not asked
// (falling back to the registry when the web API fails), else from the
// registry, in two steps: every tag is looked up at once (one HEAD each, or
// Hub's listing, content fetched only for digests never seen), then what was
// found is recorded, tags that moved to the same image together in one
// transaction, so a base rebuild that moves several tags is one change set,
// told as one set of base.updated events whose data.base.tags lists them
// all. Tags the registry no longer lists, or answers "not found" for, are
// recorded as deleted; a listing cut short infers no deletions. Names
// outside the tag grammar are skipped, and new tags are looked up within
// the caps (plan). how.Only limits the listing to the tags it accepts.
func (s *Service) list(ctx context.Context, repo analysis.Repository, how ReadOptions) (time.Time, error) {
	at := s.opts.Now()
	only := how.Only
	s.refreshFacts(ctx, repo)
	if s.usesHub(repo) && !how.RegistryOnly {
		incomplete, err := s.listFromHub(ctx, repo, how)
		if err == nil {
			if only == nil {
				if err := s.store.RecordListing(ctx, repo, store.Listing{At: at, Incomplete: incomplete}); err != nil {
					return time.Time{}, err
				}
			}
			return at, nil
		}
		s.hubFallback(repo, err)
	}
	client, _ := s.reader(how.Polling)
	listing, err := client.List(ctx, repo)
	if err != nil {
		return time.Time{}, err
	}
	// Read with the service's credentials: whether anyone may, is known
	// before anything of the repository is recorded.
	if err := s.learnVisibility(ctx, analysis.Reference{Repository: repo}); err != nil {
		return time.Time{}, err
	}
	p, err := s.plan(ctx, repo, s.validTags(repo, listing.Tags), listing.Stopped, only)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.recordGoneTags(ctx, repo, p.gone, lookedUp{at: at, notFound: analysis.ErrNotFound}); err != nil {
		return time.Time{}, err
	}
	tags := p.look
	found := make([]lookedUp, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(resolveParallel)
	mode := lookupMode{polling: how.Polling}
	for i, t := range tags {
		g.Go(func() error {
			l, err := s.lookup(gctx, repo.WithTag(t), mode)
			if errors.Is(err, analysis.ErrRateLimited) {
				// The client now holds every request to this registry until
				// its pause ends; try this tag once more after it.
				l, err = s.lookup(gctx, repo.WithTag(t), mode)
			}
			found[i] = l
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return time.Time{}, err
	}
	if err := s.recordFound(ctx, repo, tags, found); err != nil {
		return time.Time{}, err
	}
	if only == nil {
		if err := s.store.RecordListing(ctx, repo, store.Listing{At: at, Incomplete: p.incomplete}); err != nil {
			return time.Time{}, err
		}
	}
	return at, nil
}

// recordFound records a listing's lookups: deletions (tags gone between the
// listing and their HEAD), checks of tags that did not move (one
// transaction), and the moves, one batch per new image.
func (s *Service) recordFound(ctx context.Context, repo analysis.Repository, tags []string, found []lookedUp) error {
	var same []store.TagRecord
	var batches [][]int
	byDigest := map[string]int{}
	for i, l := range found {
		ref := repo.WithTag(tags[i])
		switch {
		case l.rep == nil:
			if err := s.recordGone(ctx, ref, l); err != nil && !errors.Is(err, analysis.ErrNotFound) {
				return err
			}
		case l.previous == l.rep.Digest:
			same = append(same, store.TagRecord{Repo: repo, Tag: tags[i], Previous: l.previous,
				To: analysis.Descriptor{Digest: l.rep.Digest, MediaType: l.rep.MediaType}, At: l.at})
		default:
			b, ok := byDigest[l.rep.Digest]
			if !ok {
				b = len(batches)
				byDigest[l.rep.Digest] = b
				batches = append(batches, nil)
			}
			batches[b] = append(batches[b], i)
		}
	}
	if len(same) > 0 {
		if _, err := s.store.RecordTags(ctx, same); errors.Is(err, store.ErrTagMoved) {
			// Another writer moved one of them meanwhile: record each on its own.
			for _, r := range same {
				if _, err := s.recordTag(ctx, repo.WithTag(r.Tag), r.Previous, found[slices.Index(tags, r.Tag)].rep, r.At); err != nil {
					return err
				}
			}
		} else if err != nil {
			return err
		}
	}
	for _, b := range batches {
		if err := s.recordMoves(ctx, repo, tags, found, b); err != nil {
			return err
		}
	}
	return nil
}

// recordMoves records the tags tags[i] for i in batch, all moved to one new
// image, in one transaction: one change set, told as one. Should another
// writer have moved one of the tags meanwhile, each is recorded on its own
// instead. The new image's parents are then looked for, as Check does.
func (s *Service) recordMoves(ctx context.Context, repo analysis.Repository, tags []string, found []lookedUp, batch []int) error {
	rep := found[batch[0]].rep
	desc := analysis.Descriptor{Digest: rep.Digest, MediaType: rep.MediaType}
	records := make([]store.TagRecord, len(batch))
	for j, i := range batch {
		records[j] = store.TagRecord{Repo: repo, Tag: tags[i], Previous: found[i].previous, To: desc, At: found[i].at}
	}
	_, err := s.store.RecordTags(ctx, records)
	if errors.Is(err, store.ErrTagMoved) {
		for _, r := range records {
			if _, err := s.recordTag(ctx, repo.WithTag(r.Tag), r.Previous, rep, r.At); err != nil {
				return err
			}
		}
	} else if err != nil {
		return err
	}
	_, err = s.attachParents(ctx, repo, rep.Clone(), newReads(s.store))
	return err
}

// groups builds the grouped listing from the store.
func (s *Service) groups(ctx context.Context, repo analysis.Repository, listed store.Listing) (*analysis.TagList, error) {
	rows, err := s.store.RepositoryTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := &analysis.TagList{Registry: repo.Registry, Repository: repo.Name, TagCount: len(rows),
		CheckedAt: listed.At.UTC().Truncate(time.Second), Groups: []analysis.TagGroup{},
		Complete: listed.Incomplete == "", Incomplete: listed.Incomplete}
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
// first if they never were, as Tags does, whose visibility check for
// viewer the answer passes.
func (s *Service) Versions(ctx context.Context, viewer auth.Viewer, repo analysis.Repository, how ReadOptions) ([]*analysis.Report, error) {
	list, err := s.Tags(ctx, viewer, repo, how)
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
