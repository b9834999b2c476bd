package store

import (
	"context"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// Tracked is one thing the watcher polls: a tag, or with Tag empty the
// listing of a repository (its tags, checked by the listing itself).
type Tracked struct {
	Repo analysis.Repository
	Tag  string
}

// WantTracked records that items are wanted as of at: new ones are due at
// once, known ones keep when they are due.
func (s *Store) WantTracked(ctx context.Context, items []Tracked, at time.Time) error {
	if len(items) == 0 {
		return nil
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: want tracked: %w", err)
	}
	defer tx.Rollback()
	for _, it := range items {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tracked (registry, repository, tag, wanted_at, next_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (registry, repository, tag) DO UPDATE SET wanted_at = excluded.wanted_at`,
			it.Repo.Registry, it.Repo.Name, it.Tag, millis(at), millis(at)); err != nil {
			return fmt.Errorf("store: want %s:%s: %w", it.Repo, it.Tag, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: want tracked: %w", err)
	}
	return nil
}

// ForgetUnwanted drops the items nobody has wanted since before.
func (s *Store) ForgetUnwanted(ctx context.Context, before time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM tracked WHERE wanted_at < ?`, millis(before))
	n, err := rowsAffected(res, err)
	if err != nil {
		return 0, fmt.Errorf("store: forget unwanted tracked: %w", err)
	}
	return int(n), nil
}

// ClaimTracked leases up to limit items due at now, and free (or whose
// lease expired: their holder died), to owner until now+lease, the longest
// overdue first. Claims by several processes never overlap.
func (s *Store) ClaimTracked(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Tracked, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: claim tracked: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT registry, repository, tag FROM tracked
		WHERE next_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
		ORDER BY next_at, registry, repository, tag LIMIT ?`+s.engine.forUpdate(true), millis(now), millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim tracked: %w", err)
	}
	var out []Tracked
	for rows.Next() {
		var it Tracked
		if err := rows.Scan(&it.Repo.Registry, &it.Repo.Name, &it.Tag); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: claim tracked: %w", err)
		}
		out = append(out, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim tracked: %w", err)
	}
	for _, it := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE tracked SET lease_owner = ?, lease_until = ?
			WHERE registry = ? AND repository = ? AND tag = ?`,
			owner, millis(now.Add(lease)), it.Repo.Registry, it.Repo.Name, it.Tag); err != nil {
			return nil, fmt.Errorf("store: claim tracked: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: claim tracked: %w", err)
	}
	return out, nil
}

// RenewTracked extends to until every lease owner holds, so that an item
// that takes longer than its lease (a listing of a large repository, a
// slow registry) is not claimed by another process while it is worked on.
// A lease another process has taken since is left to it.
func (s *Store) RenewTracked(ctx context.Context, owner string, until time.Time) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE tracked SET lease_until = ? WHERE lease_owner = ?`,
		millis(until), owner); err != nil {
		return fmt.Errorf("store: renew tracked leases: %w", err)
	}
	return nil
}

// RescheduleTracked makes an item owner holds due again at next and frees
// it; an item whose lease another has taken since is left to them.
func (s *Store) RescheduleTracked(ctx context.Context, owner string, it Tracked, next time.Time) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE tracked SET next_at = ?, lease_owner = NULL, lease_until = NULL
		WHERE registry = ? AND repository = ? AND tag = ? AND lease_owner = ?`,
		millis(next), it.Repo.Registry, it.Repo.Name, it.Tag, owner); err != nil {
		return fmt.Errorf("store: reschedule %s:%s: %w", it.Repo, it.Tag, err)
	}
	return nil
}

// MaxSubscribedBases bounds SubscribedBases: the base tags polled for the
// sake of subscriptions, beside the subscribed tags themselves.
const MaxSubscribedBases = 10_000

// SubscribedBases returns the tags of the parents of the images that
// subscriptions (not disabled) follow now: for each tag a subscription
// names (or every tag of a repository-wide one), the parent recorded for
// its image's platforms, by whatever method it was found, and that parent
// image's tags as they point now. The watcher polls them, so that a base
// rebuilt under its tag is noticed and its children's subscribers hear
// base.updated, though nobody asked for the base to be watched. Once the
// tag has moved it no longer points at the parent, and is no longer
// wanted for that child, until a rebuild of the child records a new one.
func (s *Store) SubscribedBases(ctx context.Context) ([]analysis.Reference, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT bt.registry, bt.repository, bt.tag
		FROM subscriptions s
		JOIN tags ct ON ct.registry = s.registry AND ct.repository = s.repository AND (s.tag = '' OR ct.tag = s.tag)
		JOIN parents p ON p.registry = ct.registry AND p.repository = ct.repository AND p.digest = ct.digest
		JOIN platform_images pi ON pi.registry = p.parent_registry AND pi.repository = p.parent_repository
			AND pi.platform_digest = p.parent_platform_digest
		JOIN tags bt ON bt.registry = pi.registry AND bt.repository = pi.repository AND bt.digest = pi.digest
		WHERE s.status <> ?
		ORDER BY bt.registry, bt.repository, bt.tag LIMIT ?`, SubscriptionDisabled, MaxSubscribedBases)
	if err != nil {
		return nil, fmt.Errorf("store: subscribed bases: %w", err)
	}
	defer rows.Close()
	var out []analysis.Reference
	for rows.Next() {
		var r analysis.Reference
		if err := rows.Scan(&r.Registry, &r.Name, &r.Tag); err != nil {
			return nil, fmt.Errorf("store: subscribed bases: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: subscribed bases: %w", err)
	}
	return out, nil
}
