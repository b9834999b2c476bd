package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"imagebadger/analysis"
)

// RecentTag is a tag as the home page lists it: where it points, where it
// pointed before its last move, and when it moved.
type RecentTag struct {
	Registry, Repository, Tag string
	Digest                    string
	// Previous is the digest before the last move; empty for a tag that has
	// not moved since it was first seen.
	Previous string
	Changed  time.Time
}

// RecentTags returns the tags that moved (or appeared) most recently, newest
// first, at most limit of them, so the home page can show what is changing.
func (s *Store) RecentTags(ctx context.Context, limit int) ([]RecentTag, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT t.registry, t.repository, t.tag, t.digest, t.changed_at,
			(SELECT h.old_digest FROM tag_history h
			 WHERE h.registry = t.registry AND h.repository = t.repository AND h.tag = t.tag
			 ORDER BY h.id DESC LIMIT 1)
		FROM tags t ORDER BY t.changed_at DESC, t.registry, t.repository, t.tag LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent tags: %w", err)
	}
	defer rows.Close()
	var out []RecentTag
	for rows.Next() {
		var r RecentTag
		var changed int64
		var prev sql.NullString
		if err := rows.Scan(&r.Registry, &r.Repository, &r.Tag, &r.Digest, &changed, &prev); err != nil {
			return nil, fmt.Errorf("store: recent tags: %w", err)
		}
		r.Changed, r.Previous = fromMillis(changed), prev.String
		if r.Previous == r.Digest {
			r.Previous = ""
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recent tags: %w", err)
	}
	return out, nil
}

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
