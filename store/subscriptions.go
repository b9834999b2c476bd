package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// Subscription statuses. A subscription starts pending and becomes active
// when its ping is answered with a 2xx. Events are queued for pending and
// active subscriptions alike, but those of a pending one wait until its
// ping is delivered, then go in the order they were queued. A disabled one
// is kept (its delivery log stays readable) but gets nothing more.
const (
	SubscriptionPending  = "pending"
	SubscriptionActive   = "active"
	SubscriptionDisabled = "disabled"
)

// Subscription is a webhook subscription to one tag, or to every tag of a
// repository when Tag is empty.
type Subscription struct {
	ID   string
	Repo analysis.Repository
	// Tag is "" for a subscription to every tag of Repo.
	Tag    string
	URL    string
	Events []string
	// Secret is the Standard Webhooks signing secret ("whsec_…").
	Secret string
	// TokenHash is the hex SHA-256 of the manage token; the token itself is
	// never stored.
	TokenHash string
	Status    string
	// StatusReason says why a subscription was disabled.
	StatusReason string
	// Client is the address that created the subscription, for abuse reports
	// and to tell one subscriber's duplicate from another's subscription.
	Client string
	// Subscriber names who made it when known beyond the address (a
	// signed-in person: "person:" and their identity); "" for anyone else.
	Subscriber string
	CreatedAt  time.Time
	// FailingSince is when the current run of failed attempts began; zero
	// while the last attempt succeeded.
	FailingSince time.Time
	// Format is how deliveries are shaped for the receiver ("" is read as
	// FormatStandard).
	Format string
	// Headers are sent with every attempt; their values are secrets,
	// shown to nobody once stored.
	Headers []Header
	// Tags filters the tags a repository-wide subscription follows.
	Tags TagFilter
	// Coalesce is the window within which the moves of one image are sent
	// as one delivery; zero sends each at once.
	Coalesce time.Duration
}

// TagFilter is the filter of the tags a repository-wide subscription
// follows, as stored (docs/API.md: tags.include, tags.exclude, tags.semver);
// notify reads it with package tagfilter. Empty fields do not filter.
type TagFilter struct {
	Include, Exclude, Semver string
}

// IsZero reports whether f follows every tag.
func (f TagFilter) IsZero() bool { return f == TagFilter{} }

// FormatStandard is the default delivery format: the Standard Webhooks
// payload of docs/API.md.
const FormatStandard = "standardwebhooks"

// Header is one extra request header of a subscription's deliveries.
type Header struct {
	Name, Value string
}

// HeaderNames returns the names of sub's extra headers, which answers and
// pages may show (their values never).
func (s Subscription) HeaderNames() []string {
	out := make([]string, 0, len(s.Headers))
	for _, h := range s.Headers {
		out = append(out, h.Name)
	}
	return out
}

func encodeHeaders(hs []Header) (string, error) {
	pairs := make([][2]string, 0, len(hs))
	for _, h := range hs {
		pairs = append(pairs, [2]string{h.Name, h.Value})
	}
	b, err := json.Marshal(pairs)
	return string(b), err
}

func decodeHeaders(s string) ([]Header, error) {
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, err
	}
	var out []Header
	for _, p := range pairs {
		out = append(out, Header{Name: p[0], Value: p[1]})
	}
	return out, nil
}

// Reference returns the subscribed image: repo:tag, or the repository alone
// (Tag empty) for a repository-wide subscription.
func (s Subscription) Reference() analysis.Reference {
	return analysis.Reference{Repository: s.Repo, Tag: s.Tag}
}

// NewDelivery is a delivery stored together with something else (a ping with
// its subscription), with its payload carried by the row itself.
type NewDelivery struct {
	WebhookID string
	Type      string
	Payload   []byte
	// LeaseOwner, when set, stores the delivery already leased to that
	// worker until LeaseUntil: the creator then sends it itself and learns
	// its outcome, and no other worker may take it meanwhile. Should the
	// creator die first, the lease expires and any worker retries it.
	LeaseOwner string
	LeaseUntil time.Time
}

// CreateSubscription stores sub and, in the same transaction, the ping
// delivery that confirms it, due at sub.CreatedAt. The ping is stored before
// it is sent, like every delivery, so it survives a crash. It returns the
// ping as a Claim, for the worker holding its lease (ping.LeaseOwner).
func (s *Store) CreateSubscription(ctx context.Context, sub Subscription, ping NewDelivery) (Claim, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return Claim{}, fmt.Errorf("store: create subscription: %w", err)
	}
	defer tx.Rollback()
	receiver := ReceiverOf(sub.URL)
	if sub.Format == "" {
		sub.Format = FormatStandard
	}
	headers, err := encodeHeaders(sub.Headers)
	if err != nil {
		return Claim{}, fmt.Errorf("store: create subscription %s: %w", sub.ID, err)
	}
	// A subscription hears the changes logged after it was made: its
	// since_change is the log's last change now.
	if _, err := tx.ExecContext(ctx, `INSERT INTO subscriptions
		(id, registry, repository, tag, url, receiver, secret, token_hash, status, status_reason, client, subscriber, created_at, failing_since,
		 format, headers, tag_include, tag_exclude, tag_semver, coalesce_ms, since_change)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(id), 0) FROM tag_changes))`,
		sub.ID, sub.Repo.Registry, sub.Repo.Name, sub.Tag, sub.URL, receiver, sub.Secret, sub.TokenHash,
		sub.Status, sub.StatusReason, sub.Client, sub.Subscriber, millis(sub.CreatedAt),
		sub.Format, headers, sub.Tags.Include, sub.Tags.Exclude, sub.Tags.Semver, sub.Coalesce.Milliseconds()); err != nil {
		return Claim{}, fmt.Errorf("store: create subscription %s: %w", sub.ID, err)
	}
	for _, e := range sub.Events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscription_events (subscription_id, type) VALUES (?, ?)`, sub.ID, e); err != nil {
			return Claim{}, fmt.Errorf("store: create subscription %s: %w", sub.ID, err)
		}
	}
	var c Claim
	if ping.WebhookID != "" {
		var owner, until any
		if ping.LeaseOwner != "" {
			owner, until = ping.LeaseOwner, millis(ping.LeaseUntil)
		}
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO deliveries
			(subscription_id, event_id, webhook_id, type, payload, status, attempts, next_attempt_at, lease_owner, lease_until, last_error, created_at)
			VALUES (?, NULL, ?, ?, ?, ?, 0, ?, ?, ?, '', ?) RETURNING id`,
			sub.ID, ping.WebhookID, ping.Type, ping.Payload, DeliveryPending, millis(sub.CreatedAt), owner, until, millis(sub.CreatedAt)).Scan(&id); err != nil {
			return Claim{}, fmt.Errorf("store: create ping of %s: %w", sub.ID, err)
		}
		at := fromMillis(millis(sub.CreatedAt))
		c = Claim{
			Delivery: Delivery{ID: id, SubscriptionID: sub.ID, WebhookID: ping.WebhookID, Type: ping.Type,
				Status: DeliveryPending, NextAttemptAt: at, CreatedAt: at, Coalesced: 1},
			URL: sub.URL, Receiver: receiver, Secret: sub.Secret, SubscriptionStatus: sub.Status,
			Payload: ping.Payload, LeaseUntil: fromMillis(millis(ping.LeaseUntil)),
			Format: sub.Format, Headers: sub.Headers,
		}
	}
	if err := tx.Commit(); err != nil {
		return Claim{}, fmt.Errorf("store: create subscription %s: %w", sub.ID, err)
	}
	return c, nil
}

const subscriptionColumns = `id, registry, repository, tag, url, secret, token_hash, status, status_reason, client, subscriber, created_at, failing_since,
	format, headers, tag_include, tag_exclude, tag_semver, coalesce_ms`

type scanner interface {
	Scan(dest ...any) error
}

func scanSubscription(row scanner) (Subscription, error) {
	var sub Subscription
	var created int64
	var failing sql.NullInt64
	var headers string
	var coalesce int64
	if err := row.Scan(&sub.ID, &sub.Repo.Registry, &sub.Repo.Name, &sub.Tag, &sub.URL, &sub.Secret, &sub.TokenHash,
		&sub.Status, &sub.StatusReason, &sub.Client, &sub.Subscriber, &created, &failing,
		&sub.Format, &headers, &sub.Tags.Include, &sub.Tags.Exclude, &sub.Tags.Semver, &coalesce); err != nil {
		return Subscription{}, err
	}
	var err error
	if sub.Headers, err = decodeHeaders(headers); err != nil {
		return Subscription{}, fmt.Errorf("headers: %w", err)
	}
	sub.CreatedAt, sub.Coalesce = fromMillis(created), time.Duration(coalesce)*time.Millisecond
	if failing.Valid {
		sub.FailingSince = fromMillis(failing.Int64)
	}
	return sub, nil
}

// Subscription returns the subscription id, or an error wrapping
// analysis.ErrNotFound.
func (s *Store) Subscription(ctx context.Context, id string) (Subscription, error) {
	sub, err := scanSubscription(s.read.QueryRowContext(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, fmt.Errorf("store: subscription %s: %w", id, analysis.ErrNotFound)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("store: subscription %s: %w", id, err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT type FROM subscription_events WHERE subscription_id = ? ORDER BY type DESC`, id)
	if err != nil {
		return Subscription{}, fmt.Errorf("store: events of subscription %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return Subscription{}, fmt.Errorf("store: events of subscription %s: %w", id, err)
		}
		sub.Events = append(sub.Events, t)
	}
	if err := rows.Err(); err != nil {
		return Subscription{}, fmt.Errorf("store: events of subscription %s: %w", id, err)
	}
	return sub, nil
}

// DeleteSubscription removes the subscription id with its deliveries and
// their attempts; it returns an error wrapping analysis.ErrNotFound when
// there is no such subscription.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM subscriptions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: delete subscription %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: delete subscription %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("store: delete subscription %s: %w", id, analysis.ErrNotFound)
	}
	return nil
}

// SameSubscription returns the id of a subscription that is not disabled,
// made by the same subscriber (from sub.Client, the address it came from,
// or by sub.Subscriber, the same signed-in person, when known), and
// naming sub's repo:tag, URL, format, tag filters, coalescing window, extra
// headers (names and values, in any order) and exactly its event types (in
// any order), or an error wrapping analysis.ErrNotFound when there is none:
// the same subscriber asking twice would only have everything sent twice.
// Another subscriber's subscription to the same URL is never the same one:
// anyone can guess a receiver's URL, and must not be able to take it from
// its owner by subscribing first.
func (s *Store) SameSubscription(ctx context.Context, sub Subscription) (string, error) {
	repo, tag, url, events := sub.Repo, sub.Tag, sub.URL, sub.Events
	format := sub.Format
	if format == "" {
		format = FormatStandard
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id, headers FROM subscriptions WHERE registry = ? AND repository = ? AND tag = ? AND url = ?
		AND status <> ? AND (client = ? OR (CAST(? AS TEXT) <> '' AND subscriber = ?)) AND format = ? AND tag_include = ? AND tag_exclude = ? AND tag_semver = ? AND coalesce_ms = ?
		ORDER BY created_at, id`,
		repo.Registry, repo.Name, tag, url, SubscriptionDisabled, sub.Client, sub.Subscriber, sub.Subscriber,
		format, sub.Tags.Include, sub.Tags.Exclude, sub.Tags.Semver, sub.Coalesce.Milliseconds())
	if err != nil {
		return "", fmt.Errorf("store: same subscription as %s:%s: %w", repo, tag, err)
	}
	type candidate struct{ id, headers string }
	var cands []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.headers); err != nil {
			rows.Close()
			return "", fmt.Errorf("store: same subscription as %s:%s: %w", repo, tag, err)
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("store: same subscription as %s:%s: %w", repo, tag, err)
	}
	want := sortedUnique(events)
	wantHeaders := headerSet(sub.Headers)
	for _, c := range cands {
		hs, err := decodeHeaders(c.headers)
		if err != nil {
			return "", fmt.Errorf("store: headers of subscription %s: %w", c.id, err)
		}
		if !slices.Equal(headerSet(hs), wantHeaders) {
			continue
		}
		types, err := s.strings(ctx, `SELECT type FROM subscription_events WHERE subscription_id = ? ORDER BY type`, c.id)
		if err != nil {
			return "", err
		}
		if slices.Equal(types, want) {
			return c.id, nil
		}
	}
	// The URL is left out: it may hold the receiver's secret.
	return "", fmt.Errorf("store: same subscription as %s:%s: %w", repo, tag, analysis.ErrNotFound)
}

// headerSet is hs as comparable text, in a fixed order.
func headerSet(hs []Header) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, strings.ToLower(h.Name)+"\x00"+h.Value)
	}
	slices.Sort(out)
	return out
}

// CountSubscriptions returns how many subscriptions that are not disabled
// name repo:tag exactly (tag "" counts repository-wide ones), and how many
// of those client made, for the caps per image and per subscriber.
func (s *Store) CountSubscriptions(ctx context.Context, repo analysis.Repository, tag, client string) (total, fromClient int, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN client = ? THEN 1 ELSE 0 END), 0) FROM subscriptions
		WHERE registry = ? AND repository = ? AND tag = ? AND status <> ?`,
		client, repo.Registry, repo.Name, tag, SubscriptionDisabled).Scan(&total, &fromClient)
	if err != nil {
		return 0, 0, fmt.Errorf("store: count subscriptions of %s:%s: %w", repo, tag, err)
	}
	return total, fromClient, nil
}

// SubscribedImages returns what subscriptions that are not disabled ask to
// be watched: tags (Tag set) and whole repositories (Tag empty), each once,
// for the watcher's polling.
func (s *Store) SubscribedImages(ctx context.Context) ([]analysis.Reference, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT registry, repository, tag FROM subscriptions
		WHERE status <> ? ORDER BY registry, repository, tag`, SubscriptionDisabled)
	if err != nil {
		return nil, fmt.Errorf("store: subscribed images: %w", err)
	}
	defer rows.Close()
	var out []analysis.Reference
	for rows.Next() {
		var r analysis.Reference
		if err := rows.Scan(&r.Registry, &r.Name, &r.Tag); err != nil {
			return nil, fmt.Errorf("store: subscribed images: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: subscribed images: %w", err)
	}
	return out, nil
}

// RepositoryFilters returns the tag filters of the subscriptions to every
// tag of repo that are not disabled, one each (a zero TagFilter for one that
// follows every tag), for the watcher to poll only followed tags.
func (s *Store) RepositoryFilters(ctx context.Context, repo analysis.Repository) ([]TagFilter, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT tag_include, tag_exclude, tag_semver FROM subscriptions
		WHERE registry = ? AND repository = ? AND tag = '' AND status <> ? ORDER BY id`, repo.Registry, repo.Name, SubscriptionDisabled)
	if err != nil {
		return nil, fmt.Errorf("store: tag filters of %s: %w", repo, err)
	}
	defer rows.Close()
	var out []TagFilter
	for rows.Next() {
		var f TagFilter
		if err := rows.Scan(&f.Include, &f.Exclude, &f.Semver); err != nil {
			return nil, fmt.Errorf("store: tag filters of %s: %w", repo, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tag filters of %s: %w", repo, err)
	}
	return out, nil
}

// HookToken returns repo's hook token, or an error wrapping
// analysis.ErrNotFound when none was made yet. It only reads: pages and
// answers that show the token call it on every request.
func (s *Store) HookToken(ctx context.Context, repo analysis.Repository) (string, error) {
	var tok string
	err := s.read.QueryRowContext(ctx, `SELECT token FROM hook_tokens WHERE registry = ? AND repository = ?`,
		repo.Registry, repo.Name).Scan(&tok)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: hook token of %s: %w", repo, analysis.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: hook token of %s: %w", repo, err)
	}
	return tok, nil
}

// MakeHookToken returns repo's hook token, creating it with newToken when
// there is none, so a repository keeps one URL for good. It is called when
// a subscription is made, never by a read.
func (s *Store) MakeHookToken(ctx context.Context, repo analysis.Repository, newToken func() string, at time.Time) (string, error) {
	if tok, err := s.HookToken(ctx, repo); err == nil || !errors.Is(err, analysis.ErrNotFound) {
		return tok, err
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO hook_tokens (token, registry, repository, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (registry, repository) DO NOTHING`, newToken(), repo.Registry, repo.Name, millis(at)); err != nil {
		return "", fmt.Errorf("store: hook token of %s: %w", repo, err)
	}
	// Read back through the writer: another request may have won the race,
	// and the read pool may not see the insert yet.
	var tok string
	if err := s.write.QueryRowContext(ctx, `SELECT token FROM hook_tokens WHERE registry = ? AND repository = ?`,
		repo.Registry, repo.Name).Scan(&tok); err != nil {
		return "", fmt.Errorf("store: hook token of %s: %w", repo, err)
	}
	return tok, nil
}

// HookRepository returns the repository whose Docker Hub hook token is tok,
// or an error wrapping analysis.ErrNotFound.
func (s *Store) HookRepository(ctx context.Context, tok string) (analysis.Repository, error) {
	var repo analysis.Repository
	err := s.read.QueryRowContext(ctx, `SELECT registry, repository FROM hook_tokens WHERE token = ?`, tok).
		Scan(&repo.Registry, &repo.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return analysis.Repository{}, fmt.Errorf("store: hook token: %w", analysis.ErrNotFound)
	}
	if err != nil {
		return analysis.Repository{}, fmt.Errorf("store: hook token: %w", err)
	}
	return repo, nil
}

// placeholders returns "?, ?, …" for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
