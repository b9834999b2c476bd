package images

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"imagebadger/analysis"
)

// Watch lists the tags of repos now and then every interval (with up to 10%
// jitter, so many instances do not poll in step) until ctx ends. Watched
// repositories are the base images people build on: knowing their tags
// before the children arrive is what lets a child's parent be found, and
// what lets a rebuilt base be noticed.
func (s *Service) Watch(ctx context.Context, repos []analysis.Repository, interval time.Duration, log *slog.Logger) {
	if len(repos) == 0 {
		return
	}
	for {
		for _, repo := range repos {
			if ctx.Err() != nil {
				return
			}
			start := time.Now()
			list, err := s.Tags(ctx, repo, true)
			if err != nil {
				log.WarnContext(ctx, "watch: listing tags failed", "repository", repo.String(), "err", err)
				continue
			}
			log.InfoContext(ctx, "watch: listed tags", "repository", repo.String(), "tags", list.TagCount,
				"images", len(list.Groups), "duration_ms", time.Since(start).Milliseconds())
		}
		jitter := time.Duration(rand.Int64N(int64(interval)/10 + 1))
		t := time.NewTimer(interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
