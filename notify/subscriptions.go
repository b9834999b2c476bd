package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"imagebadger/analysis"
	"imagebadger/images"
	"imagebadger/netguard"
	"imagebadger/ratelimit"
	"imagebadger/store"
)

// Kinds of error raised by Subscriptions, besides analysis.ErrNotFound for
// a subscription that does not exist and analysis.ErrRateLimited for a
// client over its limit. The server maps them to docs/API.md's codes.
var (
	// ErrInvalid: a field of the request is malformed or refused by policy
	// (400 invalid_request).
	ErrInvalid = errors.New("invalid subscription request")
	// ErrUnauthorized: the manage token is missing or wrong (401).
	ErrUnauthorized = errors.New("wrong or missing subscription token")
	// ErrExists: an identical subscription exists (409); the error is an
	// *ExistsError naming it.
	ErrExists = errors.New("identical subscription exists")
)

// ExistsError names the identical subscription a request would duplicate.
type ExistsError struct{ ID string }

func (e *ExistsError) Error() string { return "subscription " + e.ID + " exists" }

// Unwrap makes an ExistsError match ErrExists.
func (e *ExistsError) Unwrap() error { return ErrExists }

func invalid(format string, args ...any) error {
	return &analysis.Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// Images is what notify needs of images.Service: re-resolving a tag (or
// looking up a digest) and recording what it finds, a move with its events
// included; listing a repository's tags the same way; and a plain read,
// which makes an image known without asking the registry when it already
// is. Every check and listing goes through it, so one move gives one event
// however it was noticed.
type Images interface {
	Check(ctx context.Context, ref analysis.Reference) error
	Tags(ctx context.Context, repo analysis.Repository, how images.ReadOptions) (*analysis.TagList, error)
	Read(ctx context.Context, ref analysis.Reference, how images.ReadOptions) (images.Answer, error)
}

// SubscriptionsConfig holds the collaborators and limits of Subscriptions.
// Store, Images, Builder and Guard are required; zero limits mean the
// defaults named on them.
type SubscriptionsConfig struct {
	Store   *store.Store
	Images  Images
	Builder *Builder
	// Worker, when set, sends a new subscription's ping before Create
	// returns; otherwise the ping waits for a worker's next poll.
	Worker *Worker
	// Guard is the webhook network policy, applied to the URL's addresses
	// at creation for a clear error (the worker's dialer applies it again
	// on every attempt).
	Guard *netguard.Guard
	// LookupHost resolves a URL's host name; nil means net.DefaultResolver.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
	Now        func() time.Time
	// PerClient bounds the subscriptions one client address may create
	// (default DefaultCreationLimit).
	PerClient ratelimit.Limit
	// MaxPerImage caps the subscriptions (not disabled) of one tag or
	// repository (default DefaultMaxPerImage).
	MaxPerImage int
}

// Defaults of SubscriptionsConfig.
var (
	DefaultCreationLimit = ratelimit.Limit{Burst: 10, Period: time.Hour}
)

// DefaultMaxPerImage is the default cap of subscriptions per tag or repository.
const DefaultMaxPerImage = 100

func (c SubscriptionsConfig) withDefaults() SubscriptionsConfig {
	if c.LookupHost == nil {
		c.LookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PerClient.IsZero() {
		c.PerClient = DefaultCreationLimit
	}
	if c.MaxPerImage <= 0 {
		c.MaxPerImage = DefaultMaxPerImage
	}
	return c
}

// Subscriptions creates, shows and deletes webhook subscriptions.
type Subscriptions struct {
	store       *store.Store
	images      Images
	builder     *Builder
	worker      *Worker
	guard       *netguard.Guard
	lookup      func(ctx context.Context, host string) ([]netip.Addr, error)
	now         func() time.Time
	limiter     *ratelimit.Keyed
	maxPerImage int
}

// NewSubscriptions returns a Subscriptions.
func NewSubscriptions(cfg SubscriptionsConfig) *Subscriptions {
	cfg = cfg.withDefaults()
	return &Subscriptions{
		store:       cfg.Store,
		images:      cfg.Images,
		builder:     cfg.Builder,
		worker:      cfg.Worker,
		guard:       cfg.Guard,
		lookup:      cfg.LookupHost,
		now:         cfg.Now,
		maxPerImage: cfg.MaxPerImage,
		limiter:     ratelimit.New(cfg.PerClient),
	}
}

// CreateRequest is a subscription as a person or script asks for it.
type CreateRequest struct {
	// Image is a reference with a tag, or a repository for every tag.
	Image string
	URL   string
	// Events defaults to every event type.
	Events []string
	// Client is the requester's address, the key of the rate limit.
	Client string
}

// Created is a new subscription with its manage token, which exists only
// here: the store keeps its hash.
type Created struct {
	store.Subscription
	Token string
}

// maxURLLength bounds a webhook URL; real ones are far shorter.
const maxURLLength = 2048

// Create validates req, records the subscribed image's current state,
// stores the subscription (pending) with its ping, and sends the ping: a
// 2xx answer makes the subscription active before Create returns.
func (s *Subscriptions) Create(ctx context.Context, req CreateRequest) (Created, error) {
	subject, err := ParseSubject(req.Image)
	if err != nil {
		return Created{}, err
	}
	target, err := parseTarget(req.URL)
	if err != nil {
		return Created{}, err
	}
	events, err := parseEvents(req.Events)
	if err != nil {
		return Created{}, err
	}
	now := s.now()
	if ok, wait := s.limiter.Allow(req.Client, now); !ok {
		return Created{}, &analysis.Error{Kind: analysis.ErrRateLimited, RetryAfter: wait,
			Message: "too many subscriptions created from this address; try again later"}
	}
	if err := s.checkTarget(ctx, target); err != nil {
		return Created{}, err
	}
	if id, err := s.store.SameSubscription(ctx, subject.Repository, subject.Tag, target.String(), events); err == nil {
		return Created{}, &analysis.Error{Kind: ErrExists, Err: &ExistsError{ID: id},
			Message: "an identical subscription exists: " + id + " (same image, URL and events); its secret and manage link were shown when it was created"}
	} else if !errors.Is(err, analysis.ErrNotFound) {
		return Created{}, err
	}
	n, err := s.store.CountSubscriptions(ctx, subject.Repository, subject.Tag)
	if err != nil {
		return Created{}, err
	}
	if n >= s.maxPerImage {
		return Created{}, invalid("%s already has the maximum of %d subscriptions", subjectName(subject), s.maxPerImage)
	}
	if err := s.baseline(ctx, subject); err != nil {
		return Created{}, err
	}
	token := newToken()
	sub := store.Subscription{
		ID:        newID("sub_"),
		Repo:      subject.Repository,
		Tag:       subject.Tag,
		URL:       target.String(),
		Events:    events,
		Secret:    NewSecret(),
		TokenHash: hashToken(token),
		Status:    store.SubscriptionPending,
		Client:    req.Client,
		CreatedAt: now,
	}
	body, err := s.builder.PingPayload(sub, now)
	if err != nil {
		return Created{}, fmt.Errorf("notify: ping of %s: %w", sub.ID, err)
	}
	ping := store.NewDelivery{WebhookID: newID("msg_"), Type: TypePing, Payload: body}
	if s.worker != nil {
		// Stored leased to this process's worker, which sends it before the
		// answer: the answer says whether the receiver accepted it.
		ping.LeaseOwner, ping.LeaseUntil = s.worker.owner, now.Add(s.worker.lease)
	}
	claim, err := s.store.CreateSubscription(ctx, sub, ping)
	if err != nil {
		return Created{}, err
	}
	if s.worker != nil && s.worker.Send(ctx, claim) {
		sub.Status = store.SubscriptionActive
	}
	return Created{Subscription: sub, Token: token}, nil
}

// baseline makes the subscribed tags known, so that the subscriber is told
// of the next move and not of the tags' existence. A known tag costs the
// registry nothing: a hundred subscriptions to one tag are one HEAD at most.
func (s *Subscriptions) baseline(ctx context.Context, subject analysis.Reference) error {
	if subject.Tag != "" {
		_, err := s.images.Read(ctx, subject, images.ReadOptions{})
		return err
	}
	_, err := s.images.Tags(ctx, subject.Repository, images.ReadOptions{Refresh: true})
	return err
}

// Get returns the subscription id with its latest deliveries, if token is
// its manage token.
func (s *Subscriptions) Get(ctx context.Context, id, token string) (store.Subscription, []store.Delivery, error) {
	sub, err := s.authorize(ctx, id, token)
	if err != nil {
		return store.Subscription{}, nil, err
	}
	ds, err := s.store.Deliveries(ctx, id, DeliveryLogSize)
	if err != nil {
		return store.Subscription{}, nil, err
	}
	return sub, ds, nil
}

// Delete removes the subscription id, if token is its manage token.
func (s *Subscriptions) Delete(ctx context.Context, id, token string) error {
	if _, err := s.authorize(ctx, id, token); err != nil {
		return err
	}
	return s.store.DeleteSubscription(ctx, id)
}

func (s *Subscriptions) authorize(ctx context.Context, id, token string) (store.Subscription, error) {
	if token == "" {
		return store.Subscription{}, &analysis.Error{Kind: ErrUnauthorized, Message: "this subscription's token is required"}
	}
	sub, err := s.store.Subscription(ctx, id)
	if err != nil {
		if errors.Is(err, analysis.ErrNotFound) {
			return store.Subscription{}, &analysis.Error{Kind: analysis.ErrNotFound, Message: "no such subscription", Err: err}
		}
		return store.Subscription{}, err
	}
	if subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(sub.TokenHash)) != 1 {
		return store.Subscription{}, &analysis.Error{Kind: ErrUnauthorized, Message: "wrong token for this subscription"}
	}
	return sub, nil
}

// HookToken returns repo's hook token, made on first use: the token of its
// Docker Hub push webhook (POST /hooks/dockerhub/{token}) and of its
// MicroBadger-style refresh hook (POST /images/{repository}/{token}). It is
// public by design: it only ever starts a refresh.
func (s *Subscriptions) HookToken(ctx context.Context, repo analysis.Repository) (string, error) {
	return s.store.HookToken(ctx, repo, newToken, s.now())
}

// HookRepository returns the repository whose hook token is tok, or an
// error of kind ErrUnauthorized.
func (s *Subscriptions) HookRepository(ctx context.Context, tok string) (analysis.Repository, error) {
	repo, err := s.store.HookRepository(ctx, tok)
	if errors.Is(err, analysis.ErrNotFound) {
		return analysis.Repository{}, &analysis.Error{Kind: ErrUnauthorized, Message: "unknown hook token"}
	}
	return repo, err
}

// ParseSubject parses what a subscription names: a reference with a tag,
// or a repository alone (Tag empty) for every tag. A digest is refused: the
// image it names never changes.
func ParseSubject(s string) (analysis.Reference, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return analysis.Reference{}, invalid("image is required")
	}
	if strings.Contains(s, "@") {
		return analysis.Reference{}, invalid("subscribe to a tag or a repository: the image a digest names never changes")
	}
	if repo, err := analysis.ParseRepository(s); err == nil {
		return analysis.Reference{Repository: repo}, nil
	}
	return analysis.ParseReference(s)
}

// parseTarget checks the syntax of a webhook URL.
func parseTarget(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, invalid("url is required")
	}
	if len(raw) > maxURLLength {
		return nil, invalid("url is longer than %d characters", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid("url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, invalid("url must be an http or https URL")
	}
	if u.Hostname() == "" {
		return nil, invalid("url has no host")
	}
	if u.User != nil {
		return nil, invalid("url must not carry a user name or password")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// checkTarget refuses a URL whose host is, or resolves to, an address the
// webhook policy refuses.
func (s *Subscriptions) checkTarget(ctx context.Context, u *url.URL) error {
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		addrs, err = s.lookup(lctx, host)
		if err != nil || len(addrs) == 0 {
			return invalid("url: host %s cannot be resolved", host)
		}
	}
	for _, a := range addrs {
		err := s.guard.Check(a)
		var refused *netguard.Error
		switch {
		case err == nil:
		case errors.As(err, &refused) && refused.Private():
			return invalid("url: %s (%s) is on a loopback or private network; this service sends webhooks there only when started with %s",
				host, a, AllowPrivateWebhooksFlag)
		case errors.As(err, &refused):
			return invalid("url: %s (%s) is refused: %s", host, a, refused.Reason)
		default:
			return invalid("url: the address of %s is refused", host)
		}
	}
	return nil
}

// AllowPrivateWebhooksFlag is the setting that lets the service deliver to
// loopback and private networks, named in the messages that refuse one.
const AllowPrivateWebhooksFlag = "--allow-private-webhooks"

// parseEvents checks the event types asked for; none means all.
func parseEvents(in []string) ([]string, error) {
	all := eventTypes()
	if len(in) == 0 {
		return all, nil
	}
	var out []string
	for _, e := range in {
		e = strings.TrimSpace(e)
		if !slices.Contains(all, e) {
			return nil, invalid("unknown event type %q (want %s)", e, strings.Join(all, " or "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// subjectName is how a subject is written back to people and in JSON: the
// reference, or the repository alone for every tag.
func subjectName(r analysis.Reference) string {
	if r.Tag == "" {
		return r.Repository.String()
	}
	return r.String()
}

// SubjectName is the image field of a subscription in API answers.
func SubjectName(sub store.Subscription) string { return subjectName(sub.Reference()) }

// newToken returns 256 random bits, URL-safe.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how tokens are stored: SHA-256 suffices for 256 random bits,
// which no dictionary can guess.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
