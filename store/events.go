package store

import (
	"context"
	"fmt"
	"time"
)

// enqueue stores events inside the transaction that recorded their cause,
// and with each event one pending delivery per active subscription that
// wants it (the outbox): the subscription names the event's repository and
// its tag, or no tag at all (as the event's Audience allows), and lists the
// event's type. A move is thus never recorded without its deliveries, and a
// delivery exists before any attempt to send it.
//
// An event with a DedupKey already stored is not stored again: while none of
// the stored one's deliveries has been claimed or attempted, it takes the
// newer payload (which knows more, a base tag moved meanwhile), and either
// way no delivery is added.
//
// It returns how many deliveries it queued.
func (s *Store) enqueue(ctx context.Context, tx *tx, events []Event, at time.Time) (int, error) {
	queued := 0
	for _, e := range events {
		var key any
		if e.DedupKey != "" {
			key = e.DedupKey
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO events (id, type, registry, repository, tag, payload, created_at, dedup_key)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING`,
			e.ID, e.Type, e.Registry, e.Repository, e.Tag, e.Payload, millis(at), key)
		if err != nil {
			return 0, fmt.Errorf("store: save event %s %s: %w", e.Type, e.ID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE events SET payload = ? WHERE dedup_key = ?
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND (d.attempts > 0 OR d.lease_owner IS NOT NULL))`,
				e.Payload, e.DedupKey); err != nil {
				return 0, fmt.Errorf("store: update event %s %s: %w", e.Type, e.DedupKey, err)
			}
			continue
		}
		who, args := `(s.tag = ? OR s.tag = '')`, []any{e.Tag}
		switch e.Audience {
		case AudienceTag:
			who = `s.tag = ? AND s.tag != ''`
		case AudienceRepository:
			who, args = `s.tag = ''`, nil
		}
		args = append([]any{e.ID, e.ID, e.Type, DeliveryPending, millis(at), millis(at), e.Registry, e.Repository}, args...)
		args = append(args, SubscriptionActive, e.Type)
		res, err = tx.ExecContext(ctx, `INSERT INTO deliveries
			(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, last_error, created_at)
			SELECT s.id, ?, ?, ?, NULL, ?, 0, ?, '', ?
			FROM subscriptions s
			WHERE s.registry = ? AND s.repository = ? AND `+who+` AND s.status = ?
			AND EXISTS (SELECT 1 FROM subscription_events se WHERE se.subscription_id = s.id AND se.type = ?)`,
			args...)
		if err != nil {
			return 0, fmt.Errorf("store: queue deliveries of event %s %s: %w", e.Type, e.ID, err)
		}
		if n, err := res.RowsAffected(); err == nil {
			queued += int(n)
		}
	}
	return queued, nil
}

// outboxGrowth is how many deliveries queued by one commit make the engine
// look at the outbox again (outboxGrew).
const outboxGrowth = 1000
