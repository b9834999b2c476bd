package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// TagRow is one tag of a repository as stored.
type TagRow struct {
	Tag       string
	Digest    string
	MediaType string
	Checked   time.Time
	Changed   time.Time
}

// RepositoryTags returns every known tag of repo, sorted by tag.
func (s *Store) RepositoryTags(ctx context.Context, repo analysis.Repository) ([]TagRow, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT tag, digest, media_type, checked_at, changed_at FROM tags
		WHERE registry = ? AND repository = ? ORDER BY tag`, repo.Registry, repo.Name)
	if err != nil {
		return nil, fmt.Errorf("store: tags of %s: %w", repo, err)
	}
	defer rows.Close()
	var out []TagRow
	for rows.Next() {
		var r TagRow
		var checked, changed int64
		if err := rows.Scan(&r.Tag, &r.Digest, &r.MediaType, &checked, &changed); err != nil {
			return nil, fmt.Errorf("store: tags of %s: %w", repo, err)
		}
		r.Checked, r.Changed = fromMillis(checked), fromMillis(changed)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RecordListing records that repo's tags were listed at time at.
func (s *Store) RecordListing(ctx context.Context, repo analysis.Repository, at time.Time) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO repositories (registry, repository, listed_at) VALUES (?, ?, ?)
		ON CONFLICT (registry, repository) DO UPDATE SET listed_at = excluded.listed_at`, repo.Registry, repo.Name, millis(at))
	if err != nil {
		return fmt.Errorf("store: record listing of %s: %w", repo, err)
	}
	return nil
}

// Listed returns when repo's tags were last listed, or an error wrapping
// analysis.ErrNotFound if never (a repository row with listed_at 0 holds
// only its visibility).
func (s *Store) Listed(ctx context.Context, repo analysis.Repository) (time.Time, error) {
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT listed_at FROM repositories WHERE registry = ? AND repository = ?`,
		repo.Registry, repo.Name).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && at == 0) {
		return time.Time{}, fmt.Errorf("store: listing of %s: %w", repo, analysis.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: listing of %s: %w", repo, err)
	}
	return fromMillis(at), nil
}
