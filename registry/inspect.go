package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/imagebadger/imagebadger/analysis"
)

// Content keeps manifests and configs by digest. Content addressed by digest
// never changes, so whatever is stored here is never fetched again. The store
// package implements it on the database.
type Content interface {
	// Manifest returns a stored manifest or index, or an error wrapping
	// analysis.ErrNotFound.
	Manifest(ctx context.Context, digest string) (mediaType string, body []byte, err error)
	PutManifest(ctx context.Context, digest, mediaType string, body []byte) error
	// Config returns a stored config, or an error wrapping analysis.ErrNotFound.
	Config(ctx context.Context, digest string) ([]byte, error)
	PutConfig(ctx context.Context, digest string, body []byte) error
}

// Inspector builds image reports, asking the registry only for what Content
// does not hold yet. The report itself is analysis's pure work; the
// Inspector only gathers the bytes it is made from.
type Inspector struct {
	client   *Client
	content  Content
	verifier Verifier
	// refused keeps, by digest, the images this service will not read
	// (over the limits on their shape, or content it does not read), so
	// that the same refused image under another name, or read again, costs
	// no request: content by digest never changes.
	refused *lru.Cache[string, error]
}

// refusedSize bounds Inspector.refused.
const refusedSize = 1024

// Verifier judges cosign key signatures under trust rules (the trust
// package implements it). Verification dials nothing: the payload is read
// here, through the registry client, and only for a repository a rule
// covers.
type Verifier interface {
	// Applies reports whether a rule with keys covers repo.
	Applies(repo analysis.Repository) bool
	// VerifyCosign judges sig (base64) over payload, which must name
	// subject; reason says why it did not verify.
	VerifyCosign(repo analysis.Repository, payload []byte, sig, subject string) (verified bool, signer, reason string)
	// AppliesNotation reports whether a rule with a Notation trust store
	// covers repo.
	AppliesNotation(repo analysis.Repository) bool
	// VerifyNotation judges a Notation signature envelope of mediaType,
	// which must sign subject.
	VerifyNotation(repo analysis.Repository, mediaType string, envelope []byte, subject string) (verified bool, signer, reason string)
	// AppliesKeyless reports whether a rule with a keyless trusted root
	// covers repo.
	AppliesKeyless(repo analysis.Repository) bool
	// VerifyCosignKeyless judges a cosign keyless signature: sig (base64)
	// over payload, with the certificate, chain, Rekor bundle and
	// timestamp annotations of its layer; payload must name subject.
	VerifyCosignKeyless(repo analysis.Repository, payload []byte, sig string, annotations map[string]string, subject string) (verified bool, signer, reason string)
	// AppliesBundle reports whether a rule that could judge a sigstore
	// bundle (keyless, or with keys) covers repo.
	AppliesBundle(repo analysis.Repository) bool
	// VerifyBundle judges a sigstore bundle (JSON), which must sign
	// subject; judged is false when the rule has nothing to judge that
	// kind of bundle by (a keyless one under keys alone, or the reverse).
	VerifyBundle(repo analysis.Repository, bundle []byte, subject string) (judged, verified bool, signer, reason string)
}

// WithVerifier returns an Inspector like in that judges the signatures it
// finds with v; nil leaves every signature unjudged (verified null).
func (in *Inspector) WithVerifier(v Verifier) *Inspector {
	c := *in
	c.verifier = v
	return &c
}

// NewInspector returns an Inspector reading through client into content.
func NewInspector(client *Client, content Content) *Inspector {
	refused, err := lru.New[string, error](refusedSize)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &Inspector{client: client, content: content, refused: refused}
}

// fetchParallel bounds how many manifests or configs of one index are fetched at once.
const fetchParallel = 4

// Report returns the digest-level report of the image digest in repo (see
// analysis.NewReport): its manifest or index, and for each platform image
// its manifest and config, each read from Content or else fetched and kept.
func (in *Inspector) Report(ctx context.Context, repo analysis.Repository, digest string) (*analysis.Report, error) {
	if err, ok := in.refused.Get(digest); ok {
		return nil, err
	}
	rep, err := in.report(ctx, repo, digest)
	if errors.Is(err, analysis.ErrUnsupportedContent) {
		in.refused.Add(digest, err)
	}
	return rep, err
}

func (in *Inspector) report(ctx context.Context, repo analysis.Repository, digest string) (*analysis.Report, error) {
	mt, top, err := in.manifest(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	what := "image " + repo.WithDigest(digest).String()
	if !analysis.IsIndex(mt) {
		p, err := in.platform(ctx, repo, digest, mt, top, nil, nil)
		if err != nil {
			return nil, err
		}
		return analysis.NewReport(repo, digest, mt, []analysis.Platform{p}), nil
	}
	annotations, entries, err := analysis.ParseIndex(top, what)
	if err != nil {
		return nil, err
	}
	platforms := make([]analysis.Platform, len(entries))
	sem := make(chan struct{}, fetchParallel)
	// The first platform image that fails fails the report, with its own
	// error (its kind kept): the others are not fetched, and those in
	// flight are stopped.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for i, e := range entries {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if pctx.Err() != nil {
				return
			}
			p, err := in.platform(pctx, repo, e.Digest.String(), "", nil, e.Platform, annotations)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
				return
			}
			platforms[i] = p
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return analysis.NewReport(repo, digest, mt, platforms), nil
}

// platform builds one platform image's report. mt and body are given when the
// caller already holds the manifest.
func (in *Inspector) platform(ctx context.Context, repo analysis.Repository, digest, mt string, body []byte, plat *v1.Platform, indexAnnotations map[string]string) (analysis.Platform, error) {
	if body == nil {
		var err error
		if mt, body, err = in.manifest(ctx, repo, digest); err != nil {
			return analysis.Platform{}, err
		}
	}
	what := "manifest " + repo.Name + "@" + analysis.ShortDigest(digest)
	if !analysis.IsImageManifest(mt) {
		// BuildPlatform says so too; refusing here saves fetching a config.
		return analysis.BuildPlatform(digest, mt, nil, nil, plat, indexAnnotations, what)
	}
	m, err := analysis.ParseManifest(body, what)
	if err != nil {
		return analysis.Platform{}, err
	}
	cfg, err := in.config(ctx, repo, m.Config.Digest.String(), m.Config.Size)
	if err != nil {
		return analysis.Platform{}, err
	}
	return analysis.BuildPlatform(digest, mt, m, cfg, plat, indexAnnotations, what)
}

func (in *Inspector) manifest(ctx context.Context, repo analysis.Repository, digest string) (string, []byte, error) {
	mt, body, err := in.content.Manifest(ctx, digest)
	if err == nil {
		return mt, body, nil
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return "", nil, err
	}
	mt, body, err = in.client.Manifest(ctx, repo, digest)
	if err != nil {
		return "", nil, err
	}
	if err := in.content.PutManifest(ctx, digest, mt, body); err != nil {
		return "", nil, err
	}
	return mt, body, nil
}

func (in *Inspector) config(ctx context.Context, repo analysis.Repository, digest string, size int64) ([]byte, error) {
	body, err := in.content.Config(ctx, digest)
	if err == nil {
		return body, nil
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return nil, err
	}
	body, err = in.client.Config(ctx, repo, digest, size)
	if err != nil {
		return nil, err
	}
	if err := in.content.PutConfig(ctx, digest, body); err != nil {
		return nil, err
	}
	return body, nil
}

// MemoryContent is a Content held in memory, for tests and fuzzing that
// need no database.
type MemoryContent struct {
	mu        sync.Mutex
	manifests map[string]memManifest
	configs   map[string][]byte
}

type memManifest struct {
	mediaType string
	body      []byte
}

// NewMemoryContent returns an empty MemoryContent.
func NewMemoryContent() *MemoryContent {
	return &MemoryContent{manifests: map[string]memManifest{}, configs: map[string][]byte{}}
}

// Manifest implements Content.
func (c *MemoryContent) Manifest(_ context.Context, digest string) (string, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.manifests[digest]
	if !ok {
		return "", nil, fmt.Errorf("manifest %s: %w", digest, analysis.ErrNotFound)
	}
	return m.mediaType, m.body, nil
}

// PutManifest implements Content.
func (c *MemoryContent) PutManifest(_ context.Context, digest, mediaType string, body []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.manifests[digest] = memManifest{mediaType, body}
	return nil
}

// Config implements Content.
func (c *MemoryContent) Config(_ context.Context, digest string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.configs[digest]
	if !ok {
		return nil, fmt.Errorf("config %s: %w", digest, analysis.ErrNotFound)
	}
	return b, nil
}

// PutConfig implements Content.
func (c *MemoryContent) PutConfig(_ context.Context, digest string, body []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.configs[digest] = body
	return nil
}
