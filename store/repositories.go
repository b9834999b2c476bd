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

// Listing is what is kept of a repository's last tag listing.
type Listing struct {
	// At is when the listing began.
	At time.Time
	// Incomplete says why the listing did not record every tag the
	// registry has ("" when it did): its pages were ended early, or the
	// repository holds more tags than the service records.
	Incomplete string
}

// RecordListing records repo's last tag listing.
func (s *Store) RecordListing(ctx context.Context, repo analysis.Repository, l Listing) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO repositories (registry, repository, listed_at, listing_incomplete) VALUES (?, ?, ?, ?)
		ON CONFLICT (registry, repository) DO UPDATE SET listed_at = excluded.listed_at, listing_incomplete = excluded.listing_incomplete`,
		repo.Registry, repo.Name, millis(l.At), l.Incomplete)
	if err != nil {
		return fmt.Errorf("store: record listing of %s: %w", repo, err)
	}
	return nil
}

// Listed returns repo's last tag listing, or an error wrapping
// analysis.ErrNotFound if there was none (a repository row with listed_at 0
// holds only its visibility).
func (s *Store) Listed(ctx context.Context, repo analysis.Repository) (Listing, error) {
	var at int64
	var l Listing
	err := s.read.QueryRowContext(ctx, `SELECT listed_at, listing_incomplete FROM repositories WHERE registry = ? AND repository = ?`,
		repo.Registry, repo.Name).Scan(&at, &l.Incomplete)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && at == 0) {
		return Listing{}, fmt.Errorf("store: listing of %s: %w", repo, analysis.ErrNotFound)
	}
	if err != nil {
		return Listing{}, fmt.Errorf("store: listing of %s: %w", repo, err)
	}
	l.At = fromMillis(at)
	return l, nil
}
