package store

import (
	"context"
	"fmt"
	"time"
)

// pruneBatch bounds the rows one pruning statement deletes, so the write
// lock is held for milliseconds at a time and tag moves recorded meanwhile
// are not held up behind a large delete.
const pruneBatch = 500

// Pruned counts what PruneDeliveries deleted.
type Pruned struct {
	Deliveries int // with their attempts
	Events     int
}

// PruneDeliveries bounds the outbox's growth: it deletes finished
// (delivered or failed) deliveries created before olderThan, with their
// attempts, except the latest keep of each subscription, which its
// delivery log shows; then the events created before olderThan that no
// delivery refers to any more. Pending deliveries are never deleted, nor
// is the tag history. It deletes in batches, each its own transaction.
func (s *Store) PruneDeliveries(ctx context.Context, olderThan time.Time, keep int) (Pruned, error) {
	var p Pruned
	for {
		n, err := s.deleteBatch(ctx, `DELETE FROM deliveries WHERE id IN (
			SELECT id FROM (
				SELECT id, status, created_at,
					ROW_NUMBER() OVER (PARTITION BY subscription_id ORDER BY id DESC) AS newest
				FROM deliveries) numbered
			WHERE status != ? AND created_at < ? AND newest > ?
			LIMIT ?)`, DeliveryPending, millis(olderThan), keep, pruneBatch)
		p.Deliveries += n
		if err != nil {
			return p, fmt.Errorf("store: prune deliveries: %w", err)
		}
		if n < pruneBatch {
			break
		}
	}
	for {
		n, err := s.deleteBatch(ctx, `DELETE FROM events WHERE id IN (
			SELECT e.id FROM events e
			WHERE e.created_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.first_event_id = e.id)
			LIMIT ?)`, millis(olderThan), pruneBatch)
		p.Events += n
		if err != nil {
			return p, fmt.Errorf("store: prune events: %w", err)
		}
		if n < pruneBatch {
			break
		}
	}
	return p, nil
}

func (s *Store) deleteBatch(ctx context.Context, query string, args ...any) (int, error) {
	res, err := s.write.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
