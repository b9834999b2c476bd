package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// Delivery statuses of docs/API.md.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// ErrLeaseLost is returned by RecordAttempt when the delivery's lease is no
// longer held by the caller (it expired and another worker claimed the row):
// the other worker's outcome is the one that counts.
var ErrLeaseLost = errors.New("store: delivery lease lost")

// Delivery is one (event, subscription) pair of the outbox with the outcome
// of its latest attempt.
type Delivery struct {
	ID             int64
	SubscriptionID string
	// WebhookID is sent as webhook-id on every attempt: the event id, or the
	// ping's own id.
	WebhookID     string
	Type          string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	// LastStatusCode is 0 when the last attempt got no answer (or there was
	// none yet); LastError says what went wrong, "" after a success.
	LastStatusCode int
	LastError      string
	LastAttemptAt  time.Time
	CreatedAt      time.Time
	// Coalesced is how many events the delivery carries: more than one when
	// a coalescing subscription's moves of one image became one delivery.
	Coalesced int
	// HeldUntil is, for a delivery held to coalesce and not yet attempted,
	// the end of its window (its NextAttemptAt); zero otherwise.
	HeldUntil time.Time
}

// Claim is a delivery leased to one worker, with what it needs to send it.
type Claim struct {
	Delivery
	URL string
	// Receiver is ReceiverOf(URL), as stored with the subscription.
	Receiver string
	Secret   string
	// SubscriptionStatus is the subscription's status at claim time.
	SubscriptionStatus string
	Payload            []byte
	LeaseUntil         time.Time
	// Format and Headers are the subscription's (see Subscription).
	Format  string
	Headers []Header
	// FirstPayload is, for a delivery that coalesced several events, the
	// first event's payload (Payload is the latest's); nil otherwise.
	FirstPayload []byte
}

const claimColumns = `d.id, d.subscription_id, d.webhook_id, d.type, d.status, d.attempts, d.next_attempt_at,
	COALESCE(d.last_status_code, 0), d.last_error, COALESCE(d.last_attempt_at, 0), d.created_at, d.coalesced,
	s.url, s.receiver, s.secret, s.status, COALESCE(d.payload, e.payload), d.lease_until, s.format, s.headers,
	CASE WHEN d.coalesced > 1 THEN fe.payload END`

func scanClaim(row scanner) (Claim, error) {
	var c Claim
	var next, last, created, lease int64
	var headers string
	if err := row.Scan(&c.ID, &c.SubscriptionID, &c.WebhookID, &c.Type, &c.Status, &c.Attempts, &next,
		&c.LastStatusCode, &c.LastError, &last, &created, &c.Coalesced,
		&c.URL, &c.Receiver, &c.Secret, &c.SubscriptionStatus, &c.Payload, &lease, &c.Format, &headers,
		&c.FirstPayload); err != nil {
		return Claim{}, err
	}
	var err error
	if c.Headers, err = decodeHeaders(headers); err != nil {
		return Claim{}, fmt.Errorf("headers of %s: %w", c.SubscriptionID, err)
	}
	c.NextAttemptAt, c.CreatedAt, c.LeaseUntil = fromMillis(next), fromMillis(created), fromMillis(lease)
	if last != 0 {
		c.LastAttemptAt = fromMillis(last)
	}
	return c, nil
}

// ClaimDeliveries leases up to limit pending deliveries that are due at now
// and not leased by anyone (or whose lease expired: its holder crashed or
// hung), to owner until now+lease, oldest due first. Deliveries of disabled
// subscriptions are never claimed, and of a pending subscription only its
// ping: what was queued for it meanwhile waits until a ping is delivered. Claims are serialised across every
// process sharing the database and the rows are locked as they are taken
// (FOR UPDATE SKIP LOCKED on PostgreSQL), so two workers never hold the same
// row at once.
//
// With perReceiver > 0, no receiver (see ReceiverOf) is given more than
// perReceiver attempts in flight, counting every lease held now by any
// worker of any process: the oldest due rows of the other receivers are
// claimed instead. Rows are picked among the oldest due of receivers below
// their bound, a few times limit of them, so a claim stays cheap however
// long the queue. With perReceiver > 0 (the worker's way) a subscription
// also has at most one attempt in flight, its oldest due delivery first, so
// a receiver gets one subscription's deliveries in the order they were
// queued (a backlog queued while it was pending included).
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit, perReceiver int) ([]Claim, error) {
	if perReceiver <= 0 {
		return s.claim(ctx, owner, now, lease, `SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
			WHERE d.status = ? AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
				AND (s.status = ? OR (s.status = ? AND d.event_id IS NULL))
			ORDER BY d.next_attempt_at, d.id LIMIT ?`, DeliveryPending, millis(now), millis(now),
			SubscriptionActive, SubscriptionPending, limit)
	}
	// busy counts the attempts in flight to each receiver, from every
	// process's leases: a lease is held only by a pending row being
	// attempted (recording the attempt, or failing the row, clears it), so
	// lease_until alone finds them, through deliveries_leased, never by
	// scanning the pending rows, which a fan-out makes thousands. It is
	// computed once per claim; counted per candidate row, as it first was,
	// a claim over 20,000 pending rows took a second instead of a
	// millisecond. A subscription has one attempt in flight at a time, its
	// oldest due first, so its receiver gets its deliveries in order; a
	// pending subscription's only its ping.
	return s.claim(ctx, owner, now, lease, `WITH busy AS (
			SELECT s2.receiver, COUNT(*) AS n FROM deliveries d2 JOIN subscriptions s2 ON s2.id = d2.subscription_id
			WHERE d2.lease_until > ? GROUP BY s2.receiver)
		SELECT ranked.id FROM (
			SELECT id, next_attempt_at, receiver,
				ROW_NUMBER() OVER (PARTITION BY receiver ORDER BY next_attempt_at, id) AS nth
			FROM (
				SELECT id, next_attempt_at, receiver,
					ROW_NUMBER() OVER (PARTITION BY subscription_id ORDER BY next_attempt_at, id) AS nth_of_subscription
				FROM (
					SELECT d.id, d.next_attempt_at, d.subscription_id, s.receiver FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
					WHERE d.status = ? AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
						AND (s.status = ? OR (s.status = ? AND d.event_id IS NULL))
						AND s.receiver NOT IN (SELECT receiver FROM busy WHERE n >= ?)
						AND NOT EXISTS (SELECT 1 FROM deliveries d4 WHERE d4.subscription_id = d.subscription_id AND d4.lease_until > ?)
					ORDER BY d.next_attempt_at, d.id LIMIT ?) due) firsts
			WHERE nth_of_subscription = 1) ranked
		LEFT JOIN busy ON busy.receiver = ranked.receiver
		WHERE ranked.nth <= ? - COALESCE(busy.n, 0)
		ORDER BY ranked.next_attempt_at, ranked.id LIMIT ?`,
		millis(now),
		DeliveryPending, millis(now), millis(now), SubscriptionActive, SubscriptionPending, perReceiver,
		millis(now),
		max(64, 8*limit),
		perReceiver,
		limit)
}

func (s *Store) claim(ctx context.Context, owner string, now time.Time, lease time.Duration, pick string, args ...any) ([]Claim, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	defer tx.Rollback()
	if err := s.engine.lockClaims(ctx, tx); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	ids, err := s.ids(ctx, tx, pick, args...)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	// Lock the picked rows that are still free: a row another transaction
	// holds (an attempt being recorded) is skipped, not waited for.
	in := placeholders(len(ids))
	if ids, err = s.ids(ctx, tx, `SELECT id FROM deliveries WHERE id IN (`+in+`) AND status = ?
		AND (lease_until IS NULL OR lease_until <= ?)`+s.engine.forUpdate(true),
		append(ids, DeliveryPending, millis(now))...); err != nil || len(ids) == 0 {
		return nil, err
	}
	return s.lease(ctx, tx, owner, now, lease, ids)
}

// ids reads a column of ids.
func (s *Store) ids(ctx context.Context, tx *tx, q string, args ...any) ([]any, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: claim deliveries: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	return ids, nil
}

// lease leases the locked rows ids to owner and returns them as claims.
func (s *Store) lease(ctx context.Context, tx *tx, owner string, now time.Time, lease time.Duration, ids []any) ([]Claim, error) {
	in := placeholders(len(ids))
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE id IN (`+in+`)`,
		append([]any{owner, millis(now.Add(lease))}, ids...)...); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+claimColumns+` FROM deliveries d
		JOIN subscriptions s ON s.id = d.subscription_id
		LEFT JOIN events e ON e.id = d.event_id
		LEFT JOIN events fe ON fe.id = d.first_event_id
		WHERE d.id IN (`+in+`) ORDER BY d.next_attempt_at, d.id`, ids...)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	defer rows.Close()
	out := make([]Claim, 0, len(ids))
	for rows.Next() {
		c, err := scanClaim(rows)
		if err != nil {
			return nil, fmt.Errorf("store: claim deliveries: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	return out, nil
}

// AttemptResult is the outcome of one attempt and what follows from it, as
// decided by the delivery worker.
type AttemptResult struct {
	DeliveryID int64
	// Owner must still hold the delivery's lease for the result to count.
	Owner      string
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int
	Error      string
	// Response is the start of the answer's body, for the delivery log.
	Response  string
	Delivered bool
	// NextAttemptAt is when to try again after a failure; zero means the
	// delivery has failed for good.
	NextAttemptAt time.Time
	// Disable, when set, disables the subscription with this reason (the
	// receiver answered 410 Gone).
	Disable string
	// FailureWindow disables a subscription whose attempts have all failed
	// for this long; zero never does.
	FailureWindow time.Duration
}

// RecordAttempt stores one attempt and its consequences in one transaction:
// the delivery's new status, the release of its lease, and the
// subscription's state (active after its first success, its run of failures,
// disabled with its pending deliveries failed). It returns ErrLeaseLost when
// owner no longer holds the lease.
func (s *Store) RecordAttempt(ctx context.Context, r AttemptResult) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: record attempt of delivery %d: %w", r.DeliveryID, err)
	}
	defer tx.Rollback()
	var attempts int
	var subID string
	var owner sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT attempts, subscription_id, lease_owner FROM deliveries WHERE id = ?`, r.DeliveryID).
		Scan(&attempts, &subID, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		// The subscription was deleted while the attempt was in flight.
		return fmt.Errorf("store: record attempt of delivery %d: %w", r.DeliveryID, analysis.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: record attempt of delivery %d: %w", r.DeliveryID, err)
	}
	if owner.String != r.Owner {
		return fmt.Errorf("store: record attempt of delivery %d: %w", r.DeliveryID, ErrLeaseLost)
	}
	attempt := attempts + 1
	if _, err := tx.ExecContext(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, response)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.DeliveryID, attempt, millis(r.StartedAt), r.Duration.Milliseconds(), r.StatusCode, r.Error, r.Response); err != nil {
		return fmt.Errorf("store: record attempt of delivery %d: %w", r.DeliveryID, err)
	}
	status, next := DeliveryPending, r.NextAttemptAt
	switch {
	case r.Delivered:
		status, next = DeliveryDelivered, r.StartedAt
	case next.IsZero():
		status, next = DeliveryFailed, r.StartedAt
	}
	var code any
	if r.StatusCode != 0 {
		code = r.StatusCode
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET attempts = ?, status = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
		last_status_code = ?, last_error = ?, last_attempt_at = ? WHERE id = ?`,
		attempt, status, millis(next), code, r.Error, millis(r.StartedAt), r.DeliveryID); err != nil {
		return fmt.Errorf("store: record attempt of delivery %d: %w", r.DeliveryID, err)
	}
	if r.Delivered {
		if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET failing_since = NULL,
			status = CASE WHEN status = ? THEN ? ELSE status END WHERE id = ?`,
			SubscriptionPending, SubscriptionActive, subID); err != nil {
			return fmt.Errorf("store: record success of subscription %s: %w", subID, err)
		}
		return s.commit(tx, r.DeliveryID)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?) WHERE id = ?`,
		millis(r.StartedAt), subID); err != nil {
		return fmt.Errorf("store: record failure of subscription %s: %w", subID, err)
	}
	reason := r.Disable
	if reason == "" && status == DeliveryFailed {
		// A pending subscription's only claimable delivery is its ping: once
		// that has failed for good nothing can make the subscription active,
		// and what was queued behind the ping would wait for ever.
		var subStatus string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM subscriptions WHERE id = ?`, subID).Scan(&subStatus); err != nil {
			return fmt.Errorf("store: record failure of subscription %s: %w", subID, err)
		}
		if subStatus == SubscriptionPending {
			reason = fmt.Sprintf("the receiver never answered the ping (%d attempts)", attempt)
		}
	}
	if reason == "" && r.FailureWindow > 0 {
		var since int64
		if err := tx.QueryRowContext(ctx, `SELECT failing_since FROM subscriptions WHERE id = ?`, subID).Scan(&since); err != nil {
			return fmt.Errorf("store: record failure of subscription %s: %w", subID, err)
		}
		if r.StartedAt.Sub(fromMillis(since)) >= r.FailureWindow {
			reason = fmt.Sprintf("every delivery failed for %s", r.FailureWindow)
		}
	}
	if reason != "" {
		if err := disable(ctx, tx, subID, reason); err != nil {
			return err
		}
	}
	return s.commit(tx, r.DeliveryID)
}

func (s *Store) commit(tx *tx, id int64) error {
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: record attempt of delivery %d: %w", id, err)
	}
	return nil
}

// disable disables a subscription and fails its pending deliveries, which
// would otherwise wait forever.
func disable(ctx context.Context, tx *tx, subID, reason string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET status = ?, status_reason = ? WHERE id = ?`,
		SubscriptionDisabled, reason, subID); err != nil {
		return fmt.Errorf("store: disable subscription %s: %w", subID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL
		WHERE subscription_id = ? AND status = ?`,
		DeliveryFailed, "subscription disabled: "+reason, subID, DeliveryPending); err != nil {
		return fmt.Errorf("store: disable subscription %s: %w", subID, err)
	}
	return nil
}

const deliveryColumns = `id, subscription_id, webhook_id, type, status, attempts, next_attempt_at,
	COALESCE(last_status_code, 0), last_error, COALESCE(last_attempt_at, 0), created_at, coalesced,
	CASE WHEN coalesce_key IS NOT NULL AND attempts = 0 AND status = 'pending' THEN 1 ELSE 0 END`

func scanDelivery(row scanner) (Delivery, error) {
	var d Delivery
	var next, last, created int64
	var held int
	if err := row.Scan(&d.ID, &d.SubscriptionID, &d.WebhookID, &d.Type, &d.Status, &d.Attempts, &next,
		&d.LastStatusCode, &d.LastError, &last, &created, &d.Coalesced, &held); err != nil {
		return Delivery{}, err
	}
	d.NextAttemptAt, d.CreatedAt = fromMillis(next), fromMillis(created)
	if held == 1 {
		d.HeldUntil = d.NextAttemptAt
	}
	if last != 0 {
		d.LastAttemptAt = fromMillis(last)
	}
	return d, nil
}

// Deliveries returns the latest limit deliveries of a subscription, newest
// first, for its delivery log.
func (s *Store) Deliveries(ctx context.Context, subID string, limit int) ([]Delivery, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE subscription_id = ? ORDER BY id DESC LIMIT ?`, subID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries of %s: %w", subID, err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: deliveries of %s: %w", subID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: deliveries of %s: %w", subID, err)
	}
	return out, nil
}

// Attempt is one recorded attempt of a delivery.
type Attempt struct {
	Attempt    int
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int
	Error      string
	Response   string
}

// Attempts returns every attempt of a delivery, first first.
func (s *Store) Attempts(ctx context.Context, deliveryID int64) ([]Attempt, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT attempt, started_at, duration_ms, status_code, error, response
		FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("store: attempts of delivery %d: %w", deliveryID, err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var started, dur int64
		if err := rows.Scan(&a.Attempt, &started, &dur, &a.StatusCode, &a.Error, &a.Response); err != nil {
			return nil, fmt.Errorf("store: attempts of delivery %d: %w", deliveryID, err)
		}
		a.StartedAt, a.Duration = fromMillis(started), time.Duration(dur)*time.Millisecond
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: attempts of delivery %d: %w", deliveryID, err)
	}
	return out, nil
}

// DeliveryCounts returns how many deliveries are in each status, for
// metrics and for tests and benchmarks that wait for an outbox to drain.
func (s *Store) DeliveryCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT status, COUNT(*) FROM deliveries GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("store: count deliveries: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: count deliveries: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count deliveries: %w", err)
	}
	return out, nil
}
