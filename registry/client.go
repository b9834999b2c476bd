package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imagebadger/imagebadger/analysis"
)

// Options configures a Client; zero fields take the defaults named on them.
// The zero value is usable but dials anything: the service always passes
// netguard's transport.
type Options struct {
	// Transport carries every registry request, redirects included. It is
	// where the network policy is enforced.
	Transport http.RoundTripper
	// Timeout is the deadline of one registry request (default 20s).
	Timeout time.Duration
	// Insecure lists registry hosts spoken to over plain HTTP, in addition to
	// loopback and RFC 1918 hosts, which go-containerregistry already treats so.
	Insecure []string
	// Keychain supplies credentials; nil means authn.DefaultKeychain, so a
	// `docker login` on the host makes private registries work.
	Keychain authn.Keychain
	// UserAgent is sent on every request.
	UserAgent string
	// Concurrency is the number of requests in flight at once per registry
	// host (default 8).
	Concurrency int
	// Endpoints sends the requests for a registry (by its name in
	// references, such as docker.io) to another host:port: a pull-through
	// mirror, or the loopback registry that stands in for Docker Hub in the
	// tests. Credentials are those the Docker config holds for the host
	// dialled, since that host is the one that sees them.
	Endpoints map[string]string
	// Now is the clock of the rate-limit budgets; nil means time.Now.
	Now func() time.Time
}

// Client reads manifests, configs and tag lists from registries. It keeps one
// go-containerregistry Puller, so the authentication handshake with a
// repository happens once and later requests cost exactly one round trip.
type Client struct {
	puller *remote.Puller
	// transport is what the puller sends through, for the range requests
	// the puller cannot make (tables of contents of layers).
	transport http.RoundTripper
	userAgent string
	// anonymous reads as anyone may, for the visibility check (Visibility).
	anonymous *remote.Puller
	timeout   time.Duration
	insecure  map[string]bool
	endpoints map[string]string
	keychain  authn.Keychain
	budgets   *budgets
	// poll marks the requests of a Polling client.
	poll bool
}

// Defaults of Options.
const (
	DefaultTimeout     = 20 * time.Second
	DefaultConcurrency = 8
	DefaultUserAgent   = "imagebadger"
)

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// New returns a Client.
func New(o Options) (*Client, error) {
	o = o.withDefaults()
	bud := newBudgets()
	limited := &limitTransport{next: o.Transport, max: analysis.MaxManifestBytes, hosts: newHostLimiter(o.Concurrency), budgets: bud, now: o.Now}
	guarded := &realmGuard{next: &listGuardTransport{next: limited}, keychain: o.Keychain}
	common := []remote.Option{
		remote.WithTransport(guarded),
		remote.WithUserAgent(o.UserAgent),
		remote.WithPageSize(listPageSize),
		// Retry only network flakes, once: a registry that is struggling is not
		// helped by more requests, and the caller's deadline must hold.
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
		remote.WithRetryStatusCodes(http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
	p, err := remote.NewPuller(append(slices.Clone(common), remote.WithAuthFromKeychain(o.Keychain))...)
	if err != nil {
		return nil, fmt.Errorf("registry: new puller: %w", err)
	}
	// The same options with no credentials.
	anon, err := remote.NewPuller(append(common, remote.WithAuth(authn.Anonymous))...)
	if err != nil {
		return nil, fmt.Errorf("registry: new anonymous puller: %w", err)
	}
	c := &Client{puller: p, anonymous: anon, transport: guarded, userAgent: o.UserAgent, timeout: o.Timeout, insecure: map[string]bool{}, endpoints: map[string]string{}, keychain: o.Keychain, budgets: bud}
	for _, h := range o.Insecure {
		if h = strings.TrimSpace(h); h != "" {
			c.insecure[h] = true
		}
	}
	for reg, host := range o.Endpoints {
		c.endpoints[reg] = host
	}
	return c, nil
}

// repository converts to go-containerregistry's name of repo, sent to its
// endpoint, with plain HTTP for the registries that speak it.
func (c *Client) repository(repo analysis.Repository) (name.Repository, error) {
	host := repo.Registry
	if h, ok := c.endpoints[repo.Registry]; ok {
		host = h
	}
	var opts []name.Option
	if c.insecure[repo.Registry] || c.insecure[host] {
		opts = append(opts, name.Insecure)
	}
	n, err := name.NewRepository(host+"/"+repo.Name, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("registry: repository %s: %w", repo, err)
	}
	return n, nil
}

// name converts back to go-containerregistry's names (see repository).
func (c *Client) name(r analysis.Reference) (name.Reference, error) {
	repo, err := c.repository(r.Repository)
	if err != nil {
		return nil, err
	}
	if r.Digest != "" {
		return repo.Digest(r.Digest), nil
	}
	return repo.Tag(r.Tag), nil
}

// tagged marks ctx with the registry its requests are for (see requestInfo).
func (c *Client) tagged(ctx context.Context, registry string, n name.Reference) context.Context {
	return withRequest(ctx, requestInfo{registry: registry, host: n.Context().RegistryStr(), poll: c.poll})
}

// Polling returns a client like c whose requests are a background poll's:
// they are refused, as rate limited, rather than spend the last PollReserve
// of a registry's known budget, so that polling never starves the reads
// people ask for. HEADs go first in every check and GETs only follow for
// digests never seen, so on Docker Hub, which counts only GETs, polling
// costs nothing until something changed. The two clients share their
// connections, limits and budgets.
func (c *Client) Polling() *Client {
	p := *c
	p.poll = true
	return &p
}

// Budgets returns the rate-limit budget of every registry that has sent
// one, sorted by registry, for /metrics and the status page.
func (c *Client) Budgets() []Budget { return c.budgets.list() }

// Budget returns registry's last known rate-limit budget.
func (c *Client) Budget(registry string) (Budget, bool) { return c.budgets.get(registry) }

// classify is the package's classify, with the unauthorized message saying
// whether the service had credentials for the registry and how to give it
// some, and an analysis.CredentialsRefused in its chain saying the same to
// code.
func (c *Client) classify(ctx context.Context, err error, n name.Reference, registry, what string) error {
	e := classify(err, registry, what)
	var ae *analysis.Error
	if !errors.Is(e, analysis.ErrUnauthorized) || !errors.As(e, &ae) || ae.Kind != analysis.ErrUnauthorized {
		return e
	}
	if fr := (*foreignRealmError)(nil); errors.As(err, &fr) {
		return e
	}
	host := n.Context().RegistryStr()
	msg := fmt.Sprintf("registry %s refused access to %s: it requires credentials this service does not have. "+
		"Give them with `docker login %s` as the user the service runs as, or in the Docker config it reads ($DOCKER_CONFIG/config.json: auths, credHelpers or credsStore)",
		registry, what, host)
	held := false
	if a, rerr := authn.Resolve(ctx, c.keychain, n.Context()); rerr == nil && a != authn.Anonymous {
		held = true
		msg = fmt.Sprintf("registry %s refused the credentials this service has for it (from the Docker config) for %s. "+
			"Check them with `docker login %s` as the user the service runs as", registry, what, host)
	}
	// The message says whether the service holds credentials; the
	// CredentialsRefused beside it lets the server tell anyone else less.
	return &analysis.Error{Kind: analysis.ErrUnauthorized, Message: msg,
		Err: &analysis.CredentialsRefused{Registry: registry, What: what, Held: held, Err: ae.Err}}
}

// Resolve asks the registry what ref points at now, with one HEAD request.
// Registries that refuse HEAD on manifests are asked with GET instead; the
// manifest then read is returned as body so it need not be fetched again.
func (c *Client) Resolve(ctx context.Context, ref analysis.Reference) (d analysis.Descriptor, body []byte, err error) {
	n, err := c.name(ref)
	if err != nil {
		return analysis.Descriptor{}, nil, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", ref)
	}
	what := "image " + ref.String()
	hctx, cancel := context.WithTimeout(c.tagged(ctx, ref.Registry, n), c.timeout)
	desc, err := c.puller.Head(hctx, n)
	cancel()
	if err == nil {
		if err := analysis.CheckMediaType(string(desc.MediaType), what); err != nil {
			return analysis.Descriptor{}, nil, err
		}
		return analysis.Descriptor{Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Size: desc.Size}, nil, nil
	}
	cerr := c.classify(ctx, err, n, ref.Registry, what)
	if errors.Is(cerr, analysis.ErrNotFound) {
		// An answer to HEAD has no body to say what is missing; asking
		// would cost every poll of a deleted tag a request.
		return analysis.Descriptor{}, nil, missing(cerr, ref, analysis.MissingUnclear)
	}
	if !errors.Is(cerr, analysis.ErrUpstream) {
		return analysis.Descriptor{}, nil, cerr
	}
	return c.Fetch(ctx, ref)
}

// Fetch reads what ref points at with one GET, for callers that need the
// manifest anyway and keep nothing between runs (the inspect command): it
// saves the HEAD that Resolve would spend.
func (c *Client) Fetch(ctx context.Context, ref analysis.Reference) (analysis.Descriptor, []byte, error) {
	n, err := c.name(ref)
	if err != nil {
		return analysis.Descriptor{}, nil, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", ref)
	}
	what := "image " + ref.String()
	ctx, cancel := context.WithTimeout(c.tagged(ctx, ref.Registry, n), c.timeout)
	defer cancel()
	got, err := c.puller.Get(ctx, n)
	if err != nil {
		cerr := c.classify(ctx, err, n, ref.Registry, what)
		if errors.Is(cerr, analysis.ErrNotFound) {
			return analysis.Descriptor{}, nil, missing(cerr, ref, c.missingPart(ctx, err, n.Context()))
		}
		return analysis.Descriptor{}, nil, cerr
	}
	if err := analysis.CheckMediaType(string(got.MediaType), what); err != nil {
		return analysis.Descriptor{}, nil, err
	}
	if err := analysis.CheckShape(string(got.MediaType), got.Manifest, what); err != nil {
		return analysis.Descriptor{}, nil, err
	}
	return analysis.Descriptor{Digest: got.Digest.String(), MediaType: string(got.MediaType), Size: got.Size}, got.Manifest, nil
}

// missingPart tells what a registry that answered a manifest read with
// "not found" (err) lacks. NAME_UNKNOWN, the distribution spec's code for
// an unknown repository, says the repository. Any other "not found" may
// still be one (distribution answers MANIFEST_UNKNOWN for a manifest of a
// repository it does not have), so the repository's tag list (one GET)
// decides: NAME_UNKNOWN or 404 there, no repository; a list, no such tag or
// digest.
func (c *Client) missingPart(ctx context.Context, err error, repo name.Repository) analysis.MissingPart {
	if hasCode(err, transport.NameUnknownErrorCode) {
		return analysis.MissingRepository
	}
	_, lerr := c.puller.Lister(ctx, repo)
	switch {
	case lerr == nil:
		return analysis.MissingImage
	case hasCode(lerr, transport.NameUnknownErrorCode), isStatus(lerr, http.StatusNotFound):
		return analysis.MissingRepository
	}
	return analysis.MissingUnclear
}

// missing turns the "not found" cerr of a read of ref into one that says
// which part is missing.
func missing(cerr error, ref analysis.Reference, part analysis.MissingPart) error {
	var cause error = cerr
	if ae := (*analysis.Error)(nil); errors.As(cerr, &ae) && ae.Err != nil {
		cause = ae.Err
	}
	return analysis.NewMissing(analysis.Missing{Ref: ref, Part: part, Err: cause})
}

// hasCode reports whether err is a registry answer carrying the
// distribution spec's error code.
func hasCode(err error, code transport.ErrorCode) bool {
	var te *transport.Error
	return errors.As(err, &te) && slices.ContainsFunc(te.Errors, func(d transport.Diagnostic) bool { return d.Code == code })
}

// isStatus reports whether err is a registry answer with that status.
func isStatus(err error, status int) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == status
}

// Manifest fetches the manifest or index with the given digest. The registry's
// answer is verified against the digest before it is returned.
func (c *Client) Manifest(ctx context.Context, repo analysis.Repository, digest string) (mediaType string, body []byte, err error) {
	what := "manifest " + repo.Name + "@" + analysis.ShortDigest(digest)
	n, err := c.name(repo.WithDigest(digest))
	if err != nil {
		return "", nil, analysis.Errorf(analysis.ErrInvalidReference, err, "%s is not a valid reference", repo.WithDigest(digest))
	}
	ctx, cancel := context.WithTimeout(c.tagged(ctx, repo.Registry, n), c.timeout)
	defer cancel()
	got, err := c.puller.Get(ctx, n)
	if err != nil {
		return "", nil, c.classify(ctx, err, n, repo.Registry, what)
	}
	if err := analysis.CheckMediaType(string(got.MediaType), what); err != nil {
		return "", nil, err
	}
	if err := analysis.CheckShape(string(got.MediaType), got.Manifest, what); err != nil {
		return "", nil, err
	}
	return string(got.MediaType), got.Manifest, nil
}

// Config fetches an image config blob of the declared size. The size is
// checked against the limit before any request, and the body is verified
// against the digest as it is read.
func (c *Client) Config(ctx context.Context, repo analysis.Repository, digest string, size int64) ([]byte, error) {
	return c.blob(ctx, repo, "config", digest, size, analysis.MaxConfigBytes)
}

// limitTransport bounds every response body the registry sends (manifests,
// indexes, configs, token answers) and turns 429 into an error that carries
// Retry-After, so no layer above ever retries a registry that asked us to wait.
type limitTransport struct {
	next    http.RoundTripper
	max     int64
	hosts   *hostLimiter
	budgets *budgets
	now     func() time.Time
}

// rateLimitError reports a 429 with the wait the registry asked for.
type rateLimitError struct{ retryAfter time.Duration }

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("registry answered 429 Too Many Requests (retry after %s)", e.retryAfter)
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	info, tagged := requestOf(req.Context())
	if tagged && info.absent != "" && strings.HasSuffix(req.URL.Path, "/manifests/"+info.absent) {
		if info.fellBack != nil {
			*info.fellBack = true
		}
		return absentManifest(req), nil
	}
	own := tagged && sameHost(host, info.host)
	if own && info.poll {
		if b, ok := t.budgets.allowPoll(info.registry, req.Method, t.now()); !ok {
			return nil, &budgetError{budget: b}
		}
	}
	release, err := t.hosts.acquire(req.Context(), host)
	if err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		release()
		return nil, err
	}
	t.hosts.observe(host, resp)
	if own {
		t.budgets.observe(info.registry, resp.Header, t.now())
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		resp.Body.Close()
		release()
		return nil, &rateLimitError{retryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	limit := t.max
	if tagged && info.maxBody > 0 {
		limit = info.maxBody
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		release()
		return nil, fmt.Errorf("%w: %d bytes declared", errManifestTooLarge, resp.ContentLength)
	}
	resp.Body = &releasingBody{limitedBody: &limitedBody{rc: resp.Body, left: limit, max: limit}, release: release}
	return resp, nil
}

// sameHost compares host[:port] forms, the default ports aside.
func sameHost(a, b string) bool {
	trim := func(h string) string {
		return strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(h), ":443"), ":80")
	}
	return trim(a) == trim(b)
}

// budgetError is a background poll refused because the registry's known
// budget is down to its reserve.
type budgetError struct{ budget Budget }

func (e *budgetError) Error() string {
	return fmt.Sprintf("%s has %d of %d requests left; polling leaves the last %d%% to reads", e.budget.Registry, e.budget.Remaining, e.budget.Limit, int(PollReserve*100))
}

// limitedBody fails once more than its budget has been read, rather than
// silently truncating, so a too-large answer is an error and never stored.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe for one more byte: exactly at the limit is fine.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", errManifestTooLarge, b.max)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
