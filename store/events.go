package store

import (
	"context"
	"fmt"
	"time"
)

// enqueue stores events inside the transaction that recorded their cause,
// and with each event one pending delivery per active subscription that
// wants it (the outbox): the subscription names the event's repository and
// either its tag or no tag at all, and lists the event's type. A move is thus
// never recorded without its deliveries, and a delivery exists before any
// attempt to send it.
func (s *Store) enqueue(ctx context.Context, tx *tx, events []Event, at time.Time) error {
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, type, registry, repository, tag, payload, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Type, e.Registry, e.Repository, e.Tag, e.Payload, millis(at)); err != nil {
			return fmt.Errorf("store: save event %s %s: %w", e.Type, e.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries
			(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, last_error, created_at)
			SELECT s.id, ?, ?, ?, NULL, ?, 0, ?, '', ?
			FROM subscriptions s
			WHERE s.registry = ? AND s.repository = ? AND (s.tag = ? OR s.tag = '') AND s.status = ?
			AND EXISTS (SELECT 1 FROM subscription_events se WHERE se.subscription_id = s.id AND se.type = ?)`,
			e.ID, e.ID, e.Type, DeliveryPending, millis(at), millis(at),
			e.Registry, e.Repository, e.Tag, SubscriptionActive, e.Type); err != nil {
			return fmt.Errorf("store: queue deliveries of event %s %s: %w", e.Type, e.ID, err)
		}
	}
	return nil
}
