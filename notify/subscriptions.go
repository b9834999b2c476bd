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
	"imagebadger/netguard"
	"imagebadger/ratelimit"
	"imagebadger/store"
)

// Kinds of error raised by Subscriptions, besides analysis.ErrNotFound for
// a subscription that does not exist and analysis.ErrRateLimited for a
// client over its limit. The server maps them to API.md's codes.
var (
	// ErrInvalid: a field of the request is malformed or refused by policy
	// (400 invalid_request).
	ErrInvalid = errors.New("invalid subscription request")
	// ErrUnauthorized: the manage token is missing or wrong (401).
	ErrUnauthorized = errors.New("wrong or missing subscription token")
)

func invalid(format string, args ...any) error {
	return &analysis.Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// Resolver is what Subscriptions needs of images.Service: resolving the
// subscribed tag records where it points now, so that the subscriber is
// told of the next move and not of the tag's existence.
type Resolver interface {
	Image(ctx context.Context, ref analysis.Reference, refresh bool) (*analysis.Report, error)
}

// TagLister is implemented by images.Service once it lists a repository's
// tags. Subscriptions and the Watcher use it, when present, for
// repository-wide subscriptions and --watch.
type TagLister interface {
	Tags(ctx context.Context, repo analysis.Repository, refresh bool) (*analysis.TagList, error)
}

// Checker is implemented by an image service that can re-resolve a tag and
// record a move without assembling a whole report, which is all a poll needs.
type Checker interface {
	Check(ctx context.Context, ref analysis.Reference) error
}

// SubscriptionsConfig holds the collaborators and limits of Subscriptions.
// Store, Images, Builder and Guard are required.
type SubscriptionsConfig struct {
	Store   *store.Store
	Images  Resolver
	Builder *Builder
	// Worker, when set, sends a new subscription's ping before Create
	// returns; otherwise the ping waits for the worker's next poll.
	Worker *Worker
	// Guard is the webhook network policy, applied to the URL's addresses
	// at creation for a clear error (the worker's dialer applies it again
	// on every attempt).
	Guard *netguard.Guard
	// LookupHost resolves a URL's host name; nil means net.DefaultResolver.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
	Now        func() time.Time
	// PerClient subscriptions may be created by one client address per
	// PerClientPeriod (defaults 10 per hour).
	PerClient       int
	PerClientPeriod time.Duration
	// MaxPerImage caps the subscriptions (not disabled) of one tag or
	// repository (default 100).
	MaxPerImage int
}

// Subscriptions creates, shows and deletes webhook subscriptions.
type Subscriptions struct {
	store       *store.Store
	images      Resolver
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
	s := &Subscriptions{
		store:       cfg.Store,
		images:      cfg.Images,
		builder:     cfg.Builder,
		worker:      cfg.Worker,
		guard:       cfg.Guard,
		lookup:      cfg.LookupHost,
		now:         cfg.Now,
		maxPerImage: cfg.MaxPerImage,
	}
	if s.lookup == nil {
		s.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxPerImage <= 0 {
		s.maxPerImage = 100
	}
	perClient, period := cfg.PerClient, cfg.PerClientPeriod
	if perClient == 0 {
		perClient = 10
	}
	if period <= 0 {
		period = time.Hour
	}
	s.limiter = ratelimit.New(perClient, period)
	return s
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
	pingID, err := s.store.CreateSubscription(ctx, sub, store.NewDelivery{WebhookID: newID("msg_"), Type: TypePing, Payload: body})
	if err != nil {
		return Created{}, err
	}
	if s.worker != nil {
		sent, err := s.worker.DeliverNow(ctx, pingID)
		if err != nil {
			return Created{}, err
		}
		if !sent {
			// The background worker took the ping first: wait for its answer.
			s.waitForAttempt(ctx, sub.ID)
		}
		if stored, err := s.store.Subscription(ctx, sub.ID); err == nil {
			sub.Status = stored.Status
		}
	}
	return Created{Subscription: sub, Token: token}, nil
}

// waitForAttempt waits, at most one attempt's deadline, until the ping of
// subscription id has been attempted.
func (s *Subscriptions) waitForAttempt(ctx context.Context, id string) {
	deadline := time.Now().Add(s.worker.timeout + time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ds, err := s.store.Deliveries(ctx, id, 1)
		if err != nil || len(ds) == 0 || ds[0].Attempts > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// baseline records where the subscribed tags point now.
func (s *Subscriptions) baseline(ctx context.Context, subject analysis.Reference) error {
	if subject.Tag != "" {
		_, err := s.images.Image(ctx, subject, false)
		return err
	}
	if tl, ok := s.images.(TagLister); ok {
		_, err := tl.Tags(ctx, subject.Repository, true)
		return err
	}
	return nil
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

// DockerHubToken returns the token of repo's Docker Hub push webhook
// (POST /hooks/dockerhub/{token}), made on first use.
func (s *Subscriptions) DockerHubToken(ctx context.Context, repo analysis.Repository) (string, error) {
	return s.store.HookToken(ctx, repo, newToken, s.now())
}

// DockerHubRepository returns the repository whose Docker Hub hook token is
// tok, or an error of kind ErrUnauthorized.
func (s *Subscriptions) DockerHubRepository(ctx context.Context, tok string) (analysis.Repository, error) {
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
		if err := s.guard.Check(a); err != nil {
			return invalid("url: the address of %s is refused by this service's network policy", host)
		}
	}
	return nil
}

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
