package analysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ClientOptions configures a Client. The zero value is usable but dials
// anything; the service always passes netguard's transport.
type ClientOptions struct {
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
}

// Client reads manifests and configs from registries. It keeps one
// go-containerregistry Puller, so the authentication handshake with a
// repository happens once and later requests cost exactly one round trip.
type Client struct {
	puller   *remote.Puller
	timeout  time.Duration
	insecure map[string]bool
}

// NewClient returns a Client.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.UserAgent == "" {
		o.UserAgent = "imagebadger"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	opts := []remote.Option{
		remote.WithTransport(&limitTransport{next: o.Transport, max: maxManifestBytes, hosts: newHostLimiter(o.Concurrency)}),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithUserAgent(o.UserAgent),
		remote.WithPageSize(listPageSize),
		// Retry only network flakes, once: a registry that is struggling is not
		// helped by more requests, and the caller's deadline must hold.
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
		remote.WithRetryStatusCodes(http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
	p, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, fmt.Errorf("analysis: new puller: %w", err)
	}
	c := &Client{puller: p, timeout: o.Timeout, insecure: map[string]bool{}}
	for _, h := range o.Insecure {
		if h = strings.TrimSpace(h); h != "" {
			c.insecure[h] = true
		}
	}
	return c, nil
}

// Descriptor is what a tag or digest resolves to.
type Descriptor struct {
	Digest    string
	MediaType string
	Size      int64
}

func (c *Client) name(r Reference) (name.Reference, error) {
	return nameFor(r, c.insecure[r.Registry])
}

// Resolve asks the registry what ref points at now, with one HEAD request.
// Registries that refuse HEAD on manifests are asked with GET instead; the
// manifest then read is returned as body so it need not be fetched again.
func (c *Client) Resolve(ctx context.Context, ref Reference) (d Descriptor, body []byte, err error) {
	n, err := c.name(ref)
	if err != nil {
		return Descriptor{}, nil, newError(ErrInvalidReference, err, "%s is not a valid reference", ref)
	}
	what := "image " + ref.String()
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	desc, err := c.puller.Head(hctx, n)
	cancel()
	if err == nil {
		if err := checkMediaType(string(desc.MediaType), what); err != nil {
			return Descriptor{}, nil, err
		}
		return Descriptor{Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Size: desc.Size}, nil, nil
	}
	if cerr := classify(err, ref.Registry, what); !errors.Is(cerr, ErrUpstream) {
		return Descriptor{}, nil, cerr
	}
	return c.Fetch(ctx, ref)
}

// Fetch reads what ref points at with one GET, for callers that need the
// manifest anyway and keep nothing between runs (the inspect command): it
// saves the HEAD that Resolve would spend.
func (c *Client) Fetch(ctx context.Context, ref Reference) (Descriptor, []byte, error) {
	n, err := c.name(ref)
	if err != nil {
		return Descriptor{}, nil, newError(ErrInvalidReference, err, "%s is not a valid reference", ref)
	}
	what := "image " + ref.String()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	got, err := c.puller.Get(ctx, n)
	if err != nil {
		return Descriptor{}, nil, classify(err, ref.Registry, what)
	}
	if err := checkMediaType(string(got.MediaType), what); err != nil {
		return Descriptor{}, nil, err
	}
	return Descriptor{Digest: got.Digest.String(), MediaType: string(got.MediaType), Size: got.Size}, got.Manifest, nil
}

// Manifest fetches the manifest or index with the given digest. The registry's
// answer is verified against the digest before it is returned.
func (c *Client) Manifest(ctx context.Context, repo Repository, digest string) (mediaType string, body []byte, err error) {
	what := "manifest " + repo.Name + "@" + shortDigest(digest)
	n, err := c.name(repo.WithDigest(digest))
	if err != nil {
		return "", nil, newError(ErrInvalidReference, err, "%s is not a valid reference", repo.WithDigest(digest))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	got, err := c.puller.Get(ctx, n)
	if err != nil {
		return "", nil, classify(err, repo.Registry, what)
	}
	if err := checkMediaType(string(got.MediaType), what); err != nil {
		return "", nil, err
	}
	return string(got.MediaType), got.Manifest, nil
}

// Config fetches an image config blob of the declared size. The size is
// checked against the limit before any request, and the body is verified
// against the digest as it is read.
func (c *Client) Config(ctx context.Context, repo Repository, digest string, size int64) ([]byte, error) {
	what := "config " + repo.Name + "@" + shortDigest(digest)
	if size < 0 || size > maxConfigBytes {
		return nil, newError(ErrUpstream, nil, "%s declares %d bytes, more than the %d MiB limit", what, size, maxConfigBytes>>20)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, newError(ErrUpstream, err, "%s has an invalid digest", what)
	}
	repoName, err := c.name(repo.WithDigest(h.String()))
	if err != nil {
		return nil, newError(ErrInvalidReference, err, "%s is not a valid reference", repo)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	layer, err := c.puller.Layer(ctx, repoName.(name.Digest))
	if err != nil {
		return nil, classify(err, repo.Registry, what)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, classify(err, repo.Registry, what)
	}
	defer rc.Close()
	// Reading to EOF makes go-containerregistry verify the digest.
	body, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, classify(err, repo.Registry, what)
	}
	if int64(len(body)) != size {
		return nil, newError(ErrUpstream, nil, "%s is %d bytes but its manifest declares %d", what, len(body), size)
	}
	return body, nil
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)+12]
	}
	return d
}

// limitTransport bounds every response body the registry sends (manifests,
// indexes, configs, token answers) and turns 429 into an error that carries
// Retry-After, so no layer above ever retries a registry that asked us to wait.
type limitTransport struct {
	next  http.RoundTripper
	max   int64
	hosts *hostLimiter
}

// rateLimitError reports a 429 with the wait the registry asked for.
type rateLimitError struct{ retryAfter time.Duration }

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("registry answered 429 Too Many Requests (retry after %s)", e.retryAfter)
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
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
	if resp.StatusCode == http.StatusTooManyRequests {
		resp.Body.Close()
		release()
		return nil, &rateLimitError{retryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		release()
		return nil, fmt.Errorf("%w: %d bytes declared", errManifestTooLarge, resp.ContentLength)
	}
	resp.Body = &releasingBody{limitedBody: &limitedBody{rc: resp.Body, left: t.max}, release: release}
	return resp, nil
}

// limitedBody fails once more than its budget has been read, rather than
// silently truncating, so a too-large answer is an error and never stored.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe for one more byte: exactly at the limit is fine.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", errManifestTooLarge, maxManifestBytes)
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
