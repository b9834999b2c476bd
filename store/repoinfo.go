package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// RecordRepositoryInfo stores what a registry's web API said of repo at at.
// When the facts differ from those stored, the repository's change stamp is
// bumped in the same transaction, since every answer about the repository
// shows them; facts found unchanged only move fetched_at. It reports whether
// they changed.
func (s *Store) RecordRepositoryInfo(ctx context.Context, repo analysis.Repository, info analysis.RepositoryInfo, at time.Time) (changed bool, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: record repository info of %s: %w", repo, err)
	}
	defer tx.Rollback()
	var lastUpdated int64
	if info.LastUpdated != nil {
		lastUpdated = millis(*info.LastUpdated)
	}
	var old struct {
		source, description string
		pulls, stars, last  int64
	}
	err = tx.QueryRowContext(ctx, `SELECT source, description, pull_count, star_count, last_updated FROM repository_info
		WHERE registry = ? AND repository = ?`, repo.Registry, repo.Name).Scan(&old.source, &old.description, &old.pulls, &old.stars, &old.last)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("store: record repository info of %s: %w", repo, err)
	}
	changed = !found || old.source != info.Source || old.description != info.Description ||
		old.pulls != info.PullCount || old.stars != info.StarCount || old.last != lastUpdated
	if _, err := tx.ExecContext(ctx, `INSERT INTO repository_info (registry, repository, source, description, pull_count, star_count, last_updated, fetched_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (registry, repository) DO UPDATE SET source = excluded.source, description = excluded.description,
			pull_count = excluded.pull_count, star_count = excluded.star_count, last_updated = excluded.last_updated,
			fetched_at = excluded.fetched_at`,
		repo.Registry, repo.Name, info.Source, info.Description, info.PullCount, info.StarCount, lastUpdated, millis(at)); err != nil {
		return false, fmt.Errorf("store: record repository info of %s: %w", repo, err)
	}
	var given map[Scope]Stamp
	if changed {
		if given, err = s.bump(ctx, tx, RepositoryScope(repo)); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: record repository info of %s: %w", repo, err)
	}
	s.publish(given)
	return changed, nil
}

// RepositoryInfo returns the stored web-API facts of repo and when they were
// fetched, or an error wrapping analysis.ErrNotFound when none are.
func (s *Store) RepositoryInfo(ctx context.Context, repo analysis.Repository) (analysis.RepositoryInfo, time.Time, error) {
	var info analysis.RepositoryInfo
	var last, fetched int64
	err := s.read.QueryRowContext(ctx, `SELECT source, description, pull_count, star_count, last_updated, fetched_at FROM repository_info
		WHERE registry = ? AND repository = ?`, repo.Registry, repo.Name).
		Scan(&info.Source, &info.Description, &info.PullCount, &info.StarCount, &last, &fetched)
	if errors.Is(err, sql.ErrNoRows) {
		return analysis.RepositoryInfo{}, time.Time{}, fmt.Errorf("store: repository info of %s: %w", repo, analysis.ErrNotFound)
	}
	if err != nil {
		return analysis.RepositoryInfo{}, time.Time{}, fmt.Errorf("store: repository info of %s: %w", repo, err)
	}
	if last != 0 {
		t := fromMillis(last)
		info.LastUpdated = &t
	}
	return info, fromMillis(fetched), nil
}
