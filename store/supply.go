package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// SupplyRecord is what the last look at a platform image's signatures and
// attestations found, as the images package keeps it: the report's part
// (JSON, which the store does not read) and the content blob of its SBOM.
type SupplyRecord struct {
	Body       []byte
	SBOMDigest string
	Checked    time.Time
}

// RecordSupplyChain stores what a look at the platform image digest of repo
// found. When it differs from what was stored, the repository's change
// stamp is bumped in the same transaction, since every answer about the
// repository's images shows it; a look that found the same only moves
// checked_at. It reports whether it changed.
func (s *Store) RecordSupplyChain(ctx context.Context, repo analysis.Repository, digest string, r SupplyRecord) (changed bool, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: record supply chain of %s: %w", repo.WithDigest(digest), err)
	}
	defer tx.Rollback()
	var oldBody, oldSBOM string
	err = tx.QueryRowContext(ctx, `SELECT body, sbom_digest FROM supply_chains WHERE registry = ? AND repository = ? AND digest = ?`,
		repo.Registry, repo.Name, digest).Scan(&oldBody, &oldSBOM)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("store: record supply chain of %s: %w", repo.WithDigest(digest), err)
	}
	changed = err != nil || !bytes.Equal([]byte(oldBody), r.Body) || oldSBOM != r.SBOMDigest
	if _, err := tx.ExecContext(ctx, `INSERT INTO supply_chains (registry, repository, digest, body, sbom_digest, checked_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (registry, repository, digest) DO UPDATE SET body = excluded.body, sbom_digest = excluded.sbom_digest,
			checked_at = excluded.checked_at`,
		repo.Registry, repo.Name, digest, string(r.Body), r.SBOMDigest, millis(r.Checked)); err != nil {
		return false, fmt.Errorf("store: record supply chain of %s: %w", repo.WithDigest(digest), err)
	}
	var given map[Scope]Stamp
	if changed {
		if given, err = s.bump(ctx, tx, RepositoryScope(repo)); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: record supply chain of %s: %w", repo.WithDigest(digest), err)
	}
	s.publish(given)
	return changed, nil
}

// SupplyChain returns what the last look at the platform image digest of
// repo found, or an error wrapping analysis.ErrNotFound when it was never
// looked at.
func (s *Store) SupplyChain(ctx context.Context, repo analysis.Repository, digest string) (SupplyRecord, error) {
	var r SupplyRecord
	var body string
	var checked int64
	err := s.read.QueryRowContext(ctx, `SELECT body, sbom_digest, checked_at FROM supply_chains WHERE registry = ? AND repository = ? AND digest = ?`,
		repo.Registry, repo.Name, digest).Scan(&body, &r.SBOMDigest, &checked)
	if errors.Is(err, sql.ErrNoRows) {
		return SupplyRecord{}, fmt.Errorf("store: supply chain of %s: %w", repo.WithDigest(digest), analysis.ErrNotFound)
	}
	if err != nil {
		return SupplyRecord{}, fmt.Errorf("store: supply chain of %s: %w", repo.WithDigest(digest), err)
	}
	r.Body, r.Checked = []byte(body), fromMillis(checked)
	return r, nil
}
