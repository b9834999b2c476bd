package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// The fan-out's side of the store (docs/DESIGN.md, "Change"): the change
// log read in order, the subscriptions an event may reach, and the one
// transaction that writes a batch of events and deliveries together with
// the fan-out's place in the log. Who hears what is decided in notify; the
// store only keeps the rows it is handed, so a change is never fanned out
// twice nor lost: the place moves only with the deliveries it covers.

// fanOutName names the one cursor of the change log.
const fanOutName = "notify"

// FanOutCursor is the fan-out's place in the change log.
type FanOutCursor struct {
	// Position is the ID of the last change whose deliveries are all
	// written.
	Position int64
	// EventKey and SubscriptionID are, within the change set after
	// Position, the last (event, subscription) pair judged: a large set is
	// written in several transactions, and whoever goes on goes on from
	// here. Both empty at the start of a set.
	EventKey       string
	SubscriptionID string
}

// ErrFanOutHeld is ClaimFanOut's answer while another process holds the
// fan-out's lease.
var ErrFanOutHeld = errors.New("store: another process holds the fan-out")

// ErrFanOutLost is CommitFanOut's answer when the caller no longer holds
// the lease, or the cursor is not where the caller saw it: another process
// took over (the caller stalled past its lease), and what it wrote counts.
// Nothing of the refused step is written.
var ErrFanOutLost = errors.New("store: the fan-out lease was lost")

// ClaimFanOut leases the fan-out to owner until now+lease, or renews the
// lease owner holds, and returns the cursor; ErrFanOutHeld when another
// owner's lease has not expired.
func (s *Store) ClaimFanOut(ctx context.Context, owner string, now time.Time, lease time.Duration) (FanOutCursor, error) {
	for range 2 {
		var c FanOutCursor
		err := s.write.QueryRowContext(ctx, `UPDATE fanout_cursors SET lease_owner = ?, lease_until = ?
			WHERE name = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)
			RETURNING position, event_key, subscription_id`,
			owner, millis(now.Add(lease)), fanOutName, owner, millis(now)).Scan(&c.Position, &c.EventKey, &c.SubscriptionID)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return FanOutCursor{}, fmt.Errorf("store: claim the fan-out: %w", err)
		}
		// Held by another, or no cursor yet: a database created from the
		// schema template has none (one migrated from before the change log
		// was given its place then), and gets it at 0.
		res, err := s.write.ExecContext(ctx, `INSERT INTO fanout_cursors (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING`,
			fanOutName)
		if n, err := rowsAffected(res, err); err != nil {
			return FanOutCursor{}, fmt.Errorf("store: claim the fan-out: %w", err)
		} else if n == 0 {
			return FanOutCursor{}, ErrFanOutHeld
		}
	}
	return FanOutCursor{}, ErrFanOutHeld
}

// FanOutBehind reports whether the log holds changes past the fan-out's
// cursor: a read, so a process with nothing to do writes nothing.
func (s *Store) FanOutBehind(ctx context.Context) (bool, error) {
	var behind bool
	err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tag_changes
		WHERE id > COALESCE((SELECT position FROM fanout_cursors WHERE name = ?), 0))`, fanOutName).Scan(&behind)
	if err != nil {
		return false, fmt.Errorf("store: is the fan-out behind: %w", err)
	}
	return behind, nil
}

// ReleaseFanOut gives up owner's lease, so another process (or this one,
// restarted) goes on at once rather than when the lease would expire.
func (s *Store) ReleaseFanOut(ctx context.Context, owner string) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE fanout_cursors SET lease_owner = NULL, lease_until = NULL
		WHERE name = ? AND lease_owner = ?`, fanOutName, owner); err != nil {
		return fmt.Errorf("store: release the fan-out: %w", err)
	}
	return nil
}

const changeColumns = `id, registry, repository, tag, kind, digest, previous_digest, at, COALESCE(change_set, id)`

func scanLogged(rows *sql.Rows) ([]TagChange, error) {
	defer rows.Close()
	var out []TagChange
	for rows.Next() {
		var c TagChange
		var digest, prev sql.NullString
		var at int64
		if err := rows.Scan(&c.ID, &c.Registry, &c.Repository, &c.Tag, &c.Kind, &digest, &prev, &at, &c.Set); err != nil {
			return nil, err
		}
		c.Digest, c.Previous, c.At = digest.String, prev.String, fromMillis(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// NextChangeSet returns the changes of the first change set logged after
// position, in order, or none when the log holds nothing newer. A set's
// changes were recorded in one transaction, so the set is whole once its
// first change is visible.
func (s *Store) NextChangeSet(ctx context.Context, position int64) ([]TagChange, error) {
	// Sets are whole and in order in the log, so the first change after
	// position begins a set; it holds no change_set (it is the set's
	// number), and the others name it.
	rows, err := s.read.QueryContext(ctx, `SELECT `+changeColumns+` FROM tag_changes
		WHERE id = (SELECT MIN(id) FROM tag_changes WHERE id > ?) OR change_set = (SELECT MIN(id) FROM tag_changes WHERE id > ?)
		ORDER BY id`, position, position)
	if err != nil {
		return nil, fmt.Errorf("store: change log after %d: %w", position, err)
	}
	set, err := scanLogged(rows)
	if err != nil {
		return nil, fmt.Errorf("store: change log after %d: %w", position, err)
	}
	return set, nil
}

// TagsUpTo returns every tag repo had up to and including the change at
// position, sorted: the tags a new version is compared with.
func (s *Store) TagsUpTo(ctx context.Context, repo analysis.Repository, position int64) ([]string, error) {
	tags, err := s.strings(ctx, `SELECT DISTINCT tag FROM tag_changes WHERE registry = ? AND repository = ? AND id <= ?`,
		repo.Registry, repo.Name, position)
	if err != nil {
		return nil, err
	}
	return sortedUnique(tags), nil
}

// SubscriberQuery selects the subscriptions that may hear one event: those
// of Repo that are pending or active, list Type, and were made before the
// event's change was logged.
type SubscriberQuery struct {
	Repo analysis.Repository
	Type string
	// Change is the ID of the first change of the event's change set: a
	// subscription made after it was logged does not hear it (as one made
	// after a move was recorded never heard of it). 0 selects every one.
	Change int64
	// Tag is the event's tag; Tagged selects the subscriptions to it,
	// RepositoryWide those to every tag of Repo (both may be set).
	Tag                    string
	Tagged, RepositoryWide bool
	// After pages: subscriptions whose ID is greater, in ID order.
	After string
	Limit int
}

// Subscriber is a subscription as the fan-out judges it.
type Subscriber struct {
	ID string
	// Tag is "" for a repository-wide subscription.
	Tag      string
	Tags     TagFilter
	Coalesce time.Duration
}

// Subscribers returns one page of the subscriptions q selects.
func (s *Store) Subscribers(ctx context.Context, q SubscriberQuery) ([]Subscriber, error) {
	var who string
	args := []any{q.Repo.Registry, q.Repo.Name}
	switch {
	case q.Tagged && q.RepositoryWide:
		who, args = `(s.tag = ? OR s.tag = '')`, append(args, q.Tag)
	case q.Tagged:
		who, args = `s.tag = ? AND s.tag <> ''`, append(args, q.Tag)
	case q.RepositoryWide:
		who = `s.tag = ''`
	default:
		return nil, nil
	}
	change := q.Change
	if change <= 0 {
		change = 1<<63 - 1
	}
	args = append(args, SubscriptionPending, SubscriptionActive, change, q.After, q.Type, max(q.Limit, 1))
	rows, err := s.read.QueryContext(ctx, `SELECT s.id, s.tag, s.tag_include, s.tag_exclude, s.tag_semver, s.coalesce_ms
		FROM subscriptions s
		WHERE s.registry = ? AND s.repository = ? AND `+who+` AND s.status IN (?, ?) AND s.since_change < ? AND s.id > ?
		AND EXISTS (SELECT 1 FROM subscription_events se WHERE se.subscription_id = s.id AND se.type = ?)
		ORDER BY s.id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: subscribers of %s %s: %w", q.Type, q.Repo, err)
	}
	defer rows.Close()
	var out []Subscriber
	for rows.Next() {
		var sub Subscriber
		var ms int64
		if err := rows.Scan(&sub.ID, &sub.Tag, &sub.Tags.Include, &sub.Tags.Exclude, &sub.Tags.Semver, &ms); err != nil {
			return nil, fmt.Errorf("store: subscribers of %s %s: %w", q.Type, q.Repo, err)
		}
		sub.Coalesce = time.Duration(ms) * time.Millisecond
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: subscribers of %s %s: %w", q.Type, q.Repo, err)
	}
	return out, nil
}

// OutboxEvent is an event to keep for its deliveries: Payload is what they
// send (webhook-id ID). Key makes it one of a kind: an event whose Key is
// stored already is not stored again, and deliveries naming the Key go to
// the stored one, so a step written again after a crash reuses its events.
type OutboxEvent struct {
	Key, ID, Type             string
	Registry, Repository, Tag string
	Payload                   []byte
	At                        time.Time
}

// EventDelivery is one delivery of an event (named by its Key) to one
// subscription, due from At, the event's time.
type EventDelivery struct {
	SubscriptionID string
	EventKey       string
	Type           string
	At             time.Time
	// CoalesceKey, when set, joins the delivery to the subscription's
	// delivery of the same key still held and never attempted (it then
	// sends this event, and the first one's start), or else holds a new
	// one until HoldUntil.
	CoalesceKey string
	HoldUntil   time.Time
}

// FanOutStep is one transaction of the fan-out: its events and deliveries,
// and the cursor moved from From to To.
type FanOutStep struct {
	Owner      string
	From, To   FanOutCursor
	Now        time.Time
	Lease      time.Duration
	Events     []OutboxEvent
	Deliveries []EventDelivery
	// Queued is how many deliveries the earlier steps of the same change
	// set queued: a set whose deliveries pass outboxGrowth has the engine
	// look at the outbox again (outboxGrew).
	Queued int
}

// fanOutBatch is how many deliveries one INSERT carries: ten columns each,
// well inside both engines' limits on parameters.
const fanOutBatch = 500

// CommitFanOut writes step in one transaction, if owner still holds the
// lease and the cursor is at step.From (else ErrFanOutLost, writing
// nothing), renewing the lease; it returns how many deliveries it queued
// (a delivery joined to a held one counts none). A delivery a subscription
// already has for the same event is not queued again.
func (s *Store) CommitFanOut(ctx context.Context, step FanOutStep) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: fan out: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE fanout_cursors SET position = ?, event_key = ?, subscription_id = ?, lease_until = ?
		WHERE name = ? AND lease_owner = ? AND position = ? AND event_key = ? AND subscription_id = ?`,
		step.To.Position, step.To.EventKey, step.To.SubscriptionID, millis(step.Now.Add(step.Lease)),
		fanOutName, step.Owner, step.From.Position, step.From.EventKey, step.From.SubscriptionID)
	if n, err := rowsAffected(res, err); err != nil {
		return 0, fmt.Errorf("store: fan out: %w", err)
	} else if n == 0 {
		return 0, ErrFanOutLost
	}
	ids, err := s.keepEvents(ctx, tx, step.Events)
	if err != nil {
		return 0, err
	}
	queued, err := s.queueDeliveries(ctx, tx, step, ids)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: fan out: %w", err)
	}
	if step.Queued < outboxGrowth && step.Queued+queued >= outboxGrowth {
		s.engine.outboxGrew(ctx, s)
	}
	return queued, nil
}

// keepEvents stores the events not stored yet and returns the ID of each
// Key's stored event.
func (s *Store) keepEvents(ctx context.Context, tx *tx, events []OutboxEvent) (map[string]string, error) {
	ids := make(map[string]string, len(events))
	for start := 0; start < len(events); start += fanOutBatch {
		part := events[start:min(start+fanOutBatch, len(events))]
		args := make([]any, 0, 8*len(part))
		keys := make([]any, 0, len(part))
		for _, e := range part {
			args = append(args, e.ID, e.Type, e.Registry, e.Repository, e.Tag, e.Payload, millis(e.At), e.Key)
			keys = append(keys, e.Key)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, type, registry, repository, tag, payload, created_at, dedup_key)
			VALUES `+rowsOf(len(part), 8)+` ON CONFLICT (dedup_key) DO NOTHING`, args...); err != nil {
			return nil, fmt.Errorf("store: fan out: save events: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT dedup_key, id FROM events WHERE dedup_key IN (`+placeholders(len(keys))+`)`, keys...)
		if err != nil {
			return nil, fmt.Errorf("store: fan out: read events: %w", err)
		}
		for rows.Next() {
			var k, id string
			if err := rows.Scan(&k, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: fan out: read events: %w", err)
			}
			ids[k] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: fan out: read events: %w", err)
		}
	}
	return ids, nil
}

// queueDeliveries writes step's deliveries: the plain ones in batches, the
// coalescing ones one by one.
func (s *Store) queueDeliveries(ctx context.Context, tx *tx, step FanOutStep, ids map[string]string) (int, error) {
	queued := 0
	var plain []any
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO deliveries
			(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, last_error, created_at)
			VALUES `+rowsOf(n, 10)+` ON CONFLICT (subscription_id, webhook_id) DO NOTHING`, plain...)
		if err != nil {
			return fmt.Errorf("store: fan out: queue deliveries: %w", err)
		}
		if k, err := res.RowsAffected(); err == nil {
			queued += int(k)
		}
		plain, n = plain[:0], 0
		return nil
	}
	for _, d := range step.Deliveries {
		id, ok := ids[d.EventKey]
		if !ok {
			return 0, fmt.Errorf("store: fan out: a delivery to %s names no event of the step (%s)", d.SubscriptionID, d.EventKey)
		}
		at := millis(d.At)
		if d.CoalesceKey != "" {
			joined, err := s.queueHeld(ctx, tx, d, id, at)
			if err != nil {
				return 0, fmt.Errorf("store: fan out: queue delivery of %s to %s: %w", id, d.SubscriptionID, err)
			}
			if !joined {
				queued++
			}
			continue
		}
		plain = append(plain, d.SubscriptionID, id, id, d.Type, nil, DeliveryPending, 0, at, "", at)
		n++
		if n == fanOutBatch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return queued, nil
}

// queueHeld joins the event id to the subscription's delivery held for d's
// coalesce key and never attempted, or holds a new one until d.HoldUntil;
// joined reports the former (or that a delivery of the subscription carries
// the event already: a step judged again). The webhook-id stays the first
// event's: nothing was sent under it yet, and it is what the delivery log
// has shown since.
func (s *Store) queueHeld(ctx context.Context, tx *tx, d EventDelivery, id string, at int64) (joined bool, err error) {
	var held int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM deliveries WHERE subscription_id = ? AND (event_id = ? OR first_event_id = ?) LIMIT 1`,
		d.SubscriptionID, id, id).Scan(&held)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	err = tx.QueryRowContext(ctx, `SELECT id FROM deliveries
		WHERE subscription_id = ? AND coalesce_key = ? AND status = ? AND attempts = 0 AND lease_owner IS NULL AND next_attempt_at > ?
		ORDER BY id LIMIT 1`+s.engine.forUpdate(false),
		d.SubscriptionID, d.CoalesceKey, DeliveryPending, at).Scan(&held)
	switch {
	case err == nil:
		_, err = tx.ExecContext(ctx, `UPDATE deliveries SET event_id = ?, coalesced = coalesced + 1 WHERE id = ?`, id, held)
		return err == nil, err
	case !errors.Is(err, sql.ErrNoRows):
		return false, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO deliveries
		(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, last_error, created_at,
		 coalesce_key, first_event_id, coalesced)
		VALUES (?, ?, ?, ?, NULL, ?, 0, ?, '', ?, ?, ?, 1) ON CONFLICT (subscription_id, webhook_id) DO NOTHING`,
		d.SubscriptionID, id, id, d.Type, DeliveryPending, millis(d.HoldUntil), at, d.CoalesceKey, id)
	return false, err
}

// rowsOf is the VALUES list of n rows of cols placeholders each.
func rowsOf(n, cols int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// outboxGrowth is how many deliveries queued by one commit make the engine
// look at the outbox again (outboxGrew).
const outboxGrowth = 1000
