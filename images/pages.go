package images

import (
	"context"

	"imagebadger/analysis"
	"imagebadger/store"
)

// Reads that only the web pages need. They answer from the store and the
// report cache and never ask a registry about tags, so a page listing many
// images stays fast.

// RecentTags returns the tags that moved most recently, newest first.
func (s *Service) RecentTags(ctx context.Context, limit int) ([]store.RecentTag, error) {
	return s.store.RecentTags(ctx, limit)
}

// Activity returns how many tags of repo are known and when one last moved.
func (s *Service) Activity(ctx context.Context, repo analysis.Repository) (store.Activity, error) {
	return s.store.RepositoryActivity(ctx, repo)
}

// PlatformsOf returns the platform images of each of repo's images named by
// digests, for showing sizes next to a tag listing. Content by digest never
// changes, so this reads the store (fetching only what it has never seen);
// an image whose report cannot be built is left out rather than failing the
// whole page. The platforms are shared with the cache: callers must not
// change them.
func (s *Service) PlatformsOf(ctx context.Context, repo analysis.Repository, digests []string) map[string][]analysis.Platform {
	out := make(map[string][]analysis.Platform, len(digests))
	for _, d := range digests {
		if ctx.Err() != nil {
			break
		}
		rep, err := s.cachedReport(ctx, repo.WithDigest(d))
		if err != nil {
			continue
		}
		out[d] = rep.Platforms
	}
	return out
}

// TagsAt returns the tags of repo that point at digest now, so a page can say
// which of an outdated parent's tags has moved.
func (s *Service) TagsAt(ctx context.Context, repo analysis.Repository, digest string) ([]string, error) {
	return s.store.TagsAt(ctx, repo, digest)
}
