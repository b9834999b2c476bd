package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// enqueue stores events inside the transaction that recorded their cause.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, events []Event, at time.Time) error {
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, type, registry, repository, tag, payload, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Type, e.Registry, e.Repository, e.Tag, e.Payload, millis(at)); err != nil {
			return fmt.Errorf("store: save event %s %s: %w", e.Type, e.ID, err)
		}
	}
	return nil
}
