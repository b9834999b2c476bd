package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// RecordVisibility stores the verdict of repo's visibility check made at at.
// A verdict that differs from the stored one bumps the repository's change
// stamp in the same transaction, since whether anyone may be shown the
// repository's answers depends on it; one found unchanged only moves the
// check time. It reports whether the verdict changed.
func (s *Store) RecordVisibility(ctx context.Context, repo analysis.Repository, v analysis.Visibility, at time.Time) (changed bool, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: record visibility of %s: %w", repo, err)
	}
	defer tx.Rollback()
	var old string
	err = tx.QueryRowContext(ctx, `SELECT visibility FROM repositories WHERE registry = ? AND repository = ?`,
		repo.Registry, repo.Name).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("store: record visibility of %s: %w", repo, err)
	}
	changed = analysis.Visibility(old) != v
	if _, err := tx.ExecContext(ctx, `INSERT INTO repositories (registry, repository, listed_at, visibility, visibility_checked_at)
		VALUES (?, ?, 0, ?, ?)
		ON CONFLICT (registry, repository) DO UPDATE SET visibility = excluded.visibility,
			visibility_checked_at = excluded.visibility_checked_at`,
		repo.Registry, repo.Name, string(v), millis(at)); err != nil {
		return false, fmt.Errorf("store: record visibility of %s: %w", repo, err)
	}
	var given map[Scope]Stamp
	if changed {
		if given, err = s.bump(ctx, tx, RepositoryScope(repo)); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: record visibility of %s: %w", repo, err)
	}
	s.publish(given)
	return changed, nil
}

// Visibility returns the stored verdict of repo's visibility check and when
// it was reached; analysis.VisibilityUnknown (and the zero time) for a
// repository never checked, which is not an error.
func (s *Store) Visibility(ctx context.Context, repo analysis.Repository) (analysis.Visibility, time.Time, error) {
	var v string
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT visibility, visibility_checked_at FROM repositories WHERE registry = ? AND repository = ?`,
		repo.Registry, repo.Name).Scan(&v, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return analysis.VisibilityUnknown, time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store: visibility of %s: %w", repo, err)
	}
	if analysis.Visibility(v) == analysis.VisibilityUnknown {
		return analysis.VisibilityUnknown, time.Time{}, nil
	}
	return analysis.Visibility(v), fromMillis(at), nil
}
