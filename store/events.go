package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/tagfilter"
)

// enqueue stores events inside the transaction that recorded their cause,
// and with each event one pending delivery per pending or active
// subscription that wants it (the outbox): the subscription names the
// event's repository and its tag, or no tag at all (as the event's Audience
// allows), lists the event's type, and, for a repository-wide one with tag
// filters, follows the event's tag. A move is thus never recorded without
// its deliveries, and a delivery exists before any attempt to send it. A
// pending subscription's deliveries wait for its ping (see
// ClaimDeliveries), so nothing that happens before a receiver first answers
// is lost.
//
// Subscriptions without filters or coalescing take one statement per event
// (a fan-out to thousands is one INSERT … SELECT); the others are judged
// one by one in Go, where the filters and the release rule live, so both
// engines decide alike:
//   - a release candidate (Event.Release) reaches a subscription only if
//     its tag is higher than every version tag the repository had, as the
//     subscription's filters count them;
//   - a subscription that coalesces, given an event with a CoalesceKey,
//     adds it to its delivery of that key still held for its window (the
//     delivery then sends the latest event, from the first one's previous
//     digest), or queues a new delivery held until the window's end.
//
// An event with a DedupKey already stored is not stored again: while none of
// the stored one's deliveries has been claimed or attempted, it takes the
// newer payload (which knows more, a base tag moved meanwhile), and either
// way no delivery is added.
func (s *Store) enqueue(ctx context.Context, tx *tx, events []Event, at time.Time) (int, error) {
	queued := 0
	var tags []string // the repository's tags ever, read once for release candidates
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
		match := `FROM subscriptions s
			WHERE s.registry = ? AND s.repository = ? AND ` + who + ` AND s.status IN (?, ?)
			AND EXISTS (SELECT 1 FROM subscription_events se WHERE se.subscription_id = s.id AND se.type = ?)`
		margs := append(append([]any{e.Registry, e.Repository}, args...), SubscriptionPending, SubscriptionActive, e.Type)
		const plain = ` AND s.tag_include = '' AND s.tag_exclude = '' AND s.tag_semver = '' AND s.coalesce_ms = 0`
		if !e.Release {
			res, err := tx.ExecContext(ctx, `INSERT INTO deliveries
				(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, last_error, created_at)
				SELECT s.id, ?, ?, ?, NULL, ?, 0, ?, '', ? `+match+plain,
				append([]any{e.ID, e.ID, e.Type, DeliveryPending, millis(at), millis(at)}, margs...)...)
			if err != nil {
				return 0, fmt.Errorf("store: queue deliveries of event %s %s: %w", e.Type, e.ID, err)
			}
			if n, err := res.RowsAffected(); err == nil {
				queued += int(n)
			}
		}
		q := `SELECT s.id, s.tag_include, s.tag_exclude, s.tag_semver, s.coalesce_ms ` + match
		if !e.Release {
			q += ` AND NOT (` + plain[len(" AND "):] + `)`
		}
		judged, err := judgedSubscriptions(ctx, tx, q, margs)
		if err != nil {
			return 0, fmt.Errorf("store: queue deliveries of event %s %s: %w", e.Type, e.ID, err)
		}
		if e.Release && len(judged) > 0 && tags == nil {
			if tags, err = repositoryTags(ctx, tx, e.Registry, e.Repository); err != nil {
				return 0, fmt.Errorf("store: queue deliveries of event %s %s: %w", e.Type, e.ID, err)
			}
		}
		for _, j := range judged {
			f := tagfilter.MustParse(j.filter)
			switch {
			case e.Release && !f.Releases(e.Tag, tags):
				continue
			case !e.Release && !follows(f, e):
				continue
			}
			if err := s.queueOne(ctx, tx, j, e, at); err != nil {
				return 0, fmt.Errorf("store: queue delivery of event %s %s to %s: %w", e.Type, e.ID, j.id, err)
			}
			queued++
		}
	}
	return queued, nil
}

// follows reports whether a subscription filtered by f gets e: its tag, or
// for an event about no one tag one of its Tags, is followed.
func follows(f *tagfilter.Filter, e Event) bool {
	if e.Tag != "" {
		return f.Follows(e.Tag)
	}
	if len(e.Tags) == 0 {
		return f.Spec().IsZero()
	}
	for _, t := range e.Tags {
		if f.Follows(t) {
			return true
		}
	}
	return false
}

// judged is a subscription whose deliveries are decided one by one.
type judged struct {
	id       string
	filter   tagfilter.Spec
	coalesce time.Duration
}

func judgedSubscriptions(ctx context.Context, tx *tx, q string, args []any) ([]judged, error) {
	rows, err := tx.QueryContext(ctx, q+` ORDER BY s.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []judged
	for rows.Next() {
		var j judged
		var ms int64
		if err := rows.Scan(&j.id, &j.filter.Include, &j.filter.Exclude, &j.filter.Semver, &ms); err != nil {
			return nil, err
		}
		j.coalesce = time.Duration(ms) * time.Millisecond
		out = append(out, j)
	}
	return out, rows.Err()
}

// repositoryTags returns every tag the repository ever had, from its
// history (the tags just recorded in this transaction included).
func repositoryTags(ctx context.Context, tx *tx, registry, repository string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT tag FROM tag_changes WHERE registry = ? AND repository = ?`, registry, repository)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// queueOne queues e for the subscription j: coalesced into j's delivery
// held for e's key, or as a new delivery (held for j's window when j
// coalesces).
func (s *Store) queueOne(ctx context.Context, tx *tx, j judged, e Event, at time.Time) error {
	if j.coalesce <= 0 || e.CoalesceKey == "" {
		_, err := tx.ExecContext(ctx, `INSERT INTO deliveries
			(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, last_error, created_at)
			VALUES (?, ?, ?, ?, NULL, ?, 0, ?, '', ?)`, j.id, e.ID, e.ID, e.Type, DeliveryPending, millis(at), millis(at))
		return err
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM deliveries
		WHERE subscription_id = ? AND coalesce_key = ? AND status = ? AND attempts = 0 AND lease_owner IS NULL AND next_attempt_at > ?
		ORDER BY id LIMIT 1`+s.engine.forUpdate(false),
		j.id, e.CoalesceKey, DeliveryPending, millis(at)).Scan(&id)
	switch {
	case err == nil:
		// The webhook-id stays the first event's: nothing was sent under it
		// yet, and it is what the delivery log has shown since.
		_, err = tx.ExecContext(ctx, `UPDATE deliveries SET event_id = ?, coalesced = coalesced + 1 WHERE id = ?`, e.ID, id)
		return err
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO deliveries
		(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, last_error, created_at,
		 coalesce_key, first_event_id, coalesced)
		VALUES (?, ?, ?, ?, NULL, ?, 0, ?, '', ?, ?, ?, 1)`,
		j.id, e.ID, e.ID, e.Type, DeliveryPending, millis(at.Add(j.coalesce)), millis(at), e.CoalesceKey, e.ID)
	return err
}

// outboxGrowth is how many deliveries queued by one commit make the engine
// look at the outbox again (outboxGrew).
const outboxGrowth = 1000
