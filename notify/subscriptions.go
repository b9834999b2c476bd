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
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/tagfilter"
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
	// ErrExists: the same subscriber already has an identical subscription
	// (409); the error is an *ExistsError naming it.
	ErrExists = errors.New("identical subscription exists")
)

// ExistsError names the identical subscription a request would duplicate,
// which its own subscriber made (never someone else's).
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
	Check(ctx context.Context, ref analysis.Reference, how images.ReadOptions) error
	Tags(ctx context.Context, repo analysis.Repository, how images.ReadOptions) (*analysis.TagList, error)
	Read(ctx context.Context, ref analysis.Reference, how images.ReadOptions) (images.Answer, error)
}

// SubscriptionsOptions holds the collaborators and limits of Subscriptions.
// Store, Images, Builder and Guard are required; zero limits mean the
// defaults named on them.
type SubscriptionsOptions struct {
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
	// (default DefaultCreationBurst a DefaultCreationPeriod).
	PerClient ratelimit.Limit
	// MaxPerImage caps the subscriptions (not disabled) of one tag or
	// repository (default DefaultMaxPerImage).
	MaxPerImage int
	// MaxPerSubscriber caps those one subscriber (a client address) may
	// hold of one tag or repository (default DefaultMaxPerSubscriber), so
	// that a few addresses cannot fill an image's cap for everyone.
	MaxPerSubscriber int
}

// Defaults of SubscriptionsOptions: the creations one client may make (a
// burst, refilled over a period), the cap of subscriptions per tag or
// repository, and the share of it one subscriber may hold: a twentieth,
// so that it takes twenty addresses, not ten, to fill an image's cap.
const (
	DefaultCreationBurst    = 10
	DefaultCreationPeriod   = time.Hour
	DefaultMaxPerImage      = 100
	DefaultMaxPerSubscriber = 5
)

func (c SubscriptionsOptions) withDefaults() SubscriptionsOptions {
	if c.LookupHost == nil {
		c.LookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PerClient.IsZero() {
		c.PerClient = ratelimit.Limit{Burst: DefaultCreationBurst, Period: DefaultCreationPeriod}
	}
	if c.MaxPerImage <= 0 {
		c.MaxPerImage = DefaultMaxPerImage
	}
	if c.MaxPerSubscriber <= 0 {
		c.MaxPerSubscriber = min(DefaultMaxPerSubscriber, c.MaxPerImage)
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
	maxPerSub   int
}

// NewSubscriptions returns a Subscriptions.
func NewSubscriptions(cfg SubscriptionsOptions) *Subscriptions {
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
		maxPerSub:   cfg.MaxPerSubscriber,
		limiter:     ratelimit.New(cfg.PerClient),
	}
}

// CreateRequest is a subscription as a person or script asks for it.
type CreateRequest struct {
	// Image is a reference with a tag, or a repository for every tag.
	Image string
	URL   string
	// Events defaults to image.updated and base.updated.
	Events []string
	// Format defaults to standardwebhooks (see Formats).
	Format string
	// Headers are extra request headers for the receiver, sent on every
	// attempt and never shown again.
	Headers []store.Header
	// Tags filters the tags of a repository-wide subscription.
	Tags tagfilter.Spec
	// Coalesce is a Go duration up to MaxCoalesce; "" is 0s.
	Coalesce string
	// Client is the requester's address: the key of the rate limit, and
	// the subscriber whose duplicates are refused and whose share of an
	// image's subscriptions is capped.
	Client string
	// Subscriber names the requester when known beyond the address (a
	// signed-in person, see SubscriberPerson); "" otherwise. A request is
	// a duplicate of a subscription the same subscriber made from any
	// address.
	Subscriber string
	// Authorize, when set, says whether the requester may subscribe to the
	// subject (the visibility check of the image service, with the
	// requester as its viewer); its error is the answer. It runs once the
	// request is otherwise valid and before anything about existing
	// subscriptions to the subject is told.
	Authorize func(ctx context.Context, subject analysis.Reference) error
}

// Limits of a subscription's options (docs/API.md).
const (
	MaxHeaders      = 8
	maxHeaderName   = 128
	maxHeaderValue  = 4096
	MaxCoalesce     = time.Hour
	coalesceQuantum = time.Millisecond
)

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
	events, err := parseEvents(req.Events, subject.Tag)
	if err != nil {
		return Created{}, err
	}
	format, err := parseFormat(req.Format, target)
	if err != nil {
		return Created{}, err
	}
	headers, err := parseHeaders(req.Headers)
	if err != nil {
		return Created{}, err
	}
	filter, err := parseTags(req.Tags, subject)
	if err != nil {
		return Created{}, err
	}
	window, err := parseCoalesce(req.Coalesce)
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
	if req.Authorize != nil {
		if err := req.Authorize(ctx, subject); err != nil {
			return Created{}, err
		}
	}
	sub := store.Subscription{
		ID:         newID("sub_"),
		Repo:       subject.Repository,
		Tag:        subject.Tag,
		URL:        target.String(),
		Events:     events,
		Secret:     NewSecret(),
		Status:     store.SubscriptionPending,
		Client:     req.Client,
		Subscriber: req.Subscriber,
		CreatedAt:  now,
		Format:     format,
		Headers:    headers,
		Tags:       store.TagFilter(req.Tags),
		Coalesce:   window,
	}
	// Only the subscriber's own duplicate is refused, and only it is named:
	// a subscription someone else made to the same URL is theirs.
	if id, err := s.store.SameSubscription(ctx, sub); err == nil {
		return Created{}, &analysis.Error{Kind: ErrExists, Err: &ExistsError{ID: id},
			Message: "you already have this subscription: " + id + " (same image, URL, events and headers); its secret and manage link were shown when it was created"}
	} else if !errors.Is(err, analysis.ErrNotFound) {
		return Created{}, err
	}
	n, mine, err := s.store.CountSubscriptions(ctx, subject.Repository, subject.Tag, req.Client)
	if err != nil {
		return Created{}, err
	}
	if mine >= s.maxPerSub {
		return Created{}, invalid("this address already holds %d subscriptions to %s, the most one subscriber may; delete one to make another",
			mine, subjectName(subject))
	}
	if n >= s.maxPerImage {
		return Created{}, invalid("%s already has the maximum of %d subscriptions", subjectName(subject), s.maxPerImage)
	}
	if err := s.baseline(ctx, subject, filter); err != nil {
		return Created{}, err
	}
	token := newToken()
	sub.TokenHash = hashToken(token)
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
	// The repository's hook token is made with its first subscription:
	// whoever subscribes is who may want pushes picked up at once.
	if _, err := s.store.MakeHookToken(ctx, subject.Repository, newToken, now); err != nil {
		return Created{}, err
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
// A filtered repository-wide subscription costs only its followed tags.
func (s *Subscriptions) baseline(ctx context.Context, subject analysis.Reference, filter *tagfilter.Filter) error {
	if subject.Tag != "" {
		_, err := s.images.Read(ctx, subject, images.ReadOptions{})
		return err
	}
	how := images.ReadOptions{Refresh: true}
	if !filter.Spec().IsZero() {
		how.Only, how.OnlyKey = filter.Follows, specKey(filter.Spec())
	}
	_, err := s.images.Tags(ctx, subject.Repository, how)
	return err
}

// specKey names a filter for sharing a listing among callers with the same.
func specKey(sp tagfilter.Spec) string {
	return sp.Include + "\x00" + sp.Exclude + "\x00" + sp.Semver
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

// HookToken returns repo's hook token: the token of its Docker Hub push
// webhook (POST /hooks/dockerhub/{token}) and of its MicroBadger-style
// refresh hook (POST /images/{repository}/{token}). It is made when the
// first subscription to the repository (or one of its tags) is, so that no
// read writes a row; before that the error wraps analysis.ErrNotFound. It
// is public by design: it only ever starts a refresh.
func (s *Subscriptions) HookToken(ctx context.Context, repo analysis.Repository) (string, error) {
	return s.store.HookToken(ctx, repo)
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

// SubscriberPerson is the Subscriber of a request a signed-in person
// makes, person being their identity.
func SubscriberPerson(person string) string {
	if person == "" {
		return ""
	}
	return "person:" + person
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

// parseEvents checks the event types asked for; none means the defaults.
// version.released is about a repository's new tags: a subscription to one
// tag cannot have it.
func parseEvents(in []string, tag string) ([]string, error) {
	all := EventTypes()
	if len(in) == 0 {
		return eventTypes(), nil
	}
	var out []string
	for _, e := range in {
		e = strings.TrimSpace(e)
		if !slices.Contains(all, e) {
			return nil, invalid("events: unknown event type %q (want %s)", e, strings.Join(all, ", "))
		}
		if e == TypeVersionReleased && tag != "" {
			return nil, invalid("events: version.released is for a subscription to every tag of a repository (leave the tag out of image); this one follows the tag %s", tag)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// parseFormat checks the delivery format and that the URL has the shape
// its receiver expects.
func parseFormat(f string, target *url.URL) (string, error) {
	f = strings.TrimSpace(f)
	if f == "" {
		return store.FormatStandard, nil
	}
	if !slices.Contains(Formats(), f) {
		return "", invalid("format: unknown format %q (want %s)", f, strings.Join(Formats(), ", "))
	}
	if hint := FormatURLHint(f); hint != "" && !urlFits(f, target) {
		return "", invalid("url: the %s format posts to %s", f, hint)
	}
	return f, nil
}

// urlFits reports whether target has the shape format's receiver expects:
// GitHub's dispatches endpoint of a repository, GitLab's pipeline trigger
// with its ref.
func urlFits(format string, target *url.URL) bool {
	parts := strings.Split(strings.Trim(target.Path, "/"), "/")
	switch format {
	case FormatGitHub:
		// …/repos/OWNER/REPO/dispatches (api.github.com, or /api/v3 of GitHub Enterprise).
		n := len(parts)
		return n >= 4 && parts[n-4] == "repos" && parts[n-3] != "" && parts[n-2] != "" && parts[n-1] == "dispatches"
	case FormatGitLab:
		i := slices.Index(parts, "projects")
		return i >= 2 && parts[i-2] == "api" && parts[i-1] == "v4" && len(parts) == i+4 && parts[i+1] != "" &&
			parts[i+2] == "trigger" && parts[i+3] == "pipeline" && target.Query().Get("ref") != ""
	}
	return true
}

// reservedHeaders are the request headers a subscription cannot set: the
// Standard Webhooks signature's, the body's framing and the connection's.
func reservedHeaders() []string {
	return []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type", "Content-Length",
		"Content-Encoding", "Transfer-Encoding", "Host", "Connection", "Keep-Alive", "Upgrade", "Te", "Trailer",
		"Proxy-Authorization", "Proxy-Connection", "User-Agent", "Expect"}
}

// parseHeaders checks the extra headers: at most MaxHeaders, each a valid
// HTTP field name and value, none reserved, no name twice. A message never
// repeats a value: it is a secret.
func parseHeaders(in []store.Header) ([]store.Header, error) {
	if len(in) > MaxHeaders {
		return nil, invalid("headers: at most %d headers, not %d", MaxHeaders, len(in))
	}
	var out []store.Header
	seen := map[string]bool{}
	for _, h := range in {
		name := strings.TrimSpace(h.Name)
		canon := http.CanonicalHeaderKey(name)
		switch {
		case name == "" || len(name) > maxHeaderName || !httpguts.ValidHeaderFieldName(name):
			return nil, invalid("headers: %q is not a valid header name", truncate(name, maxHeaderName))
		case slices.Contains(reservedHeaders(), canon):
			return nil, invalid("headers: %s is set by this service and cannot be given", canon)
		case seen[canon]:
			return nil, invalid("headers: %s is given twice", canon)
		case len(h.Value) > maxHeaderValue || !httpguts.ValidHeaderFieldValue(h.Value):
			return nil, invalid("headers: the value of %s is not a valid header value (printable, at most %d bytes)", canon, maxHeaderValue)
		}
		seen[canon] = true
		out = append(out, store.Header{Name: canon, Value: strings.TrimSpace(h.Value)})
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// parseTags checks the tag filters: only for a repository-wide
// subscription, each field as tagfilter parses it, the error naming it.
func parseTags(spec tagfilter.Spec, subject analysis.Reference) (*tagfilter.Filter, error) {
	if spec.IsZero() {
		return tagfilter.Parse(spec)
	}
	if subject.Tag != "" {
		return nil, invalid("tags: tag filters are for a subscription to every tag of a repository (leave the tag out of image); this one follows the tag %s", subject.Tag)
	}
	f, err := tagfilter.Parse(spec)
	if err != nil {
		return nil, invalid("%s", err.Error())
	}
	return f, nil
}

// parseCoalesce reads the coalescing window: a Go duration from 0s to
// MaxCoalesce.
func parseCoalesce(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalid("coalesce: %q is not a Go duration (e.g. \"30s\", \"5m\")", truncate(s, 32))
	}
	if d < 0 || d > MaxCoalesce {
		return 0, invalid("coalesce: %s is outside 0s to %s", d, MaxCoalesce)
	}
	return d.Truncate(coalesceQuantum), nil
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
