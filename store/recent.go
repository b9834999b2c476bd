package store

import (
	"context"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// Activity summarises what is known of a repository: how many tags, and when
// one last moved (zero when none is known).
type Activity struct {
	Tags    int
	Changed time.Time
}

// RepositoryActivity returns the Activity of repo, for the watched bases of
// the home page.
func (s *Store) RepositoryActivity(ctx context.Context, repo analysis.Repository) (Activity, error) {
	var a Activity
	var changed int64
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(changed_at), 0) FROM tags
		WHERE registry = ? AND repository = ?`, repo.Registry, repo.Name).Scan(&a.Tags, &changed)
	if err != nil {
		return Activity{}, fmt.Errorf("store: activity of %s: %w", repo, err)
	}
	if changed > 0 {
		a.Changed = fromMillis(changed)
	}
	return a, nil
}
