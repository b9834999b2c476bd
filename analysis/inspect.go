package analysis

import (
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Content keeps manifests and configs by digest. Content addressed by digest
// never changes, so whatever is stored here is never fetched again. The store
// package implements it on SQLite; MemoryContent serves one-off commands.
type Content interface {
	// Manifest returns a stored manifest or index, or an error wrapping ErrNotFound.
	Manifest(ctx context.Context, digest string) (mediaType string, body []byte, err error)
	PutManifest(ctx context.Context, digest, mediaType string, body []byte) error
	// Config returns a stored config, or an error wrapping ErrNotFound.
	Config(ctx context.Context, digest string) ([]byte, error)
	PutConfig(ctx context.Context, digest string, body []byte) error
}

// Inspector builds image reports, asking the registry only for what Content
// does not hold yet.
type Inspector struct {
	client  *Client
	content Content
}

// NewInspector returns an Inspector reading through client into content.
func NewInspector(client *Client, content Content) *Inspector {
	return &Inspector{client: client, content: content}
}

// Client returns the registry client, for resolving tags.
func (in *Inspector) Client() *Client { return in.client }

// fetchParallel bounds how many manifests or configs of one index are fetched at once.
const fetchParallel = 4

// Report returns the report of the image d in ref's repository. body, when
// not nil, is the manifest already read while resolving (a GET fallback).
// Reference-level fields that depend on tag state (Tags, CheckedAt) are left
// for the caller.
func (in *Inspector) Report(ctx context.Context, ref Reference, d Descriptor, body []byte) (*Report, error) {
	if body != nil {
		if err := in.content.PutManifest(ctx, d.Digest, d.MediaType, body); err != nil {
			return nil, err
		}
	}
	mt, top, err := in.manifest(ctx, ref.Repository, d.Digest)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Reference:  ref.String(),
		Registry:   ref.Registry,
		Repository: ref.Name,
		Tag:        ref.Tag,
		Digest:     d.Digest,
		MediaType:  mt,
		Tags:       []string{},
	}
	what := "image " + ref.String()
	if !IsIndex(mt) {
		p, err := in.platform(ctx, ref.Repository, d.Digest, mt, top, nil, nil)
		if err != nil {
			return nil, err
		}
		r.Platforms = []Platform{p}
		return r, nil
	}
	idx, entries, err := indexEntries(top, what)
	if err != nil {
		return nil, err
	}
	r.Platforms = make([]Platform, len(entries))
	errs := make([]error, len(entries))
	sem := make(chan struct{}, fetchParallel)
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r.Platforms[i], errs[i] = in.platform(ctx, ref.Repository, e.Digest.String(), "", nil, e.Platform, idx.Annotations)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, firstError(errs)
	}
	sortPlatforms(r.Platforms)
	return r, nil
}

// firstError keeps the kind of the first failure, which errors.Join would hide
// behind a combined message.
func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// platform builds one platform image's report. mt and body are given when the
// caller already holds the manifest.
func (in *Inspector) platform(ctx context.Context, repo Repository, digest, mt string, body []byte, plat *v1.Platform, indexAnnotations map[string]string) (Platform, error) {
	if body == nil {
		var err error
		if mt, body, err = in.manifest(ctx, repo, digest); err != nil {
			return Platform{}, err
		}
	}
	what := "manifest " + repo.Name + "@" + shortDigest(digest)
	if !IsImageManifest(mt) {
		return Platform{}, newError(ErrUpstream, nil, "%s is listed as a platform image but has media type %q", what, truncate(mt, 100))
	}
	m, err := parseManifest(body, what)
	if err != nil {
		return Platform{}, err
	}
	cfgBody, err := in.config(ctx, repo, m.Config.Digest.String(), m.Config.Size)
	if err != nil {
		return Platform{}, err
	}
	cfg, err := parseConfig(cfgBody, what)
	if err != nil {
		return Platform{}, err
	}
	return buildPlatform(digest, mt, m, cfg, plat, indexAnnotations), nil
}

func (in *Inspector) manifest(ctx context.Context, repo Repository, digest string) (string, []byte, error) {
	mt, body, err := in.content.Manifest(ctx, digest)
	if err == nil {
		return mt, body, nil
	}
	if !errors.Is(err, ErrNotFound) {
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

func (in *Inspector) config(ctx context.Context, repo Repository, digest string, size int64) ([]byte, error) {
	body, err := in.content.Config(ctx, digest)
	if err == nil {
		return body, nil
	}
	if !errors.Is(err, ErrNotFound) {
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

// MemoryContent is a Content held in memory, for one-off commands that need
// no database.
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
		return "", nil, fmt.Errorf("manifest %s: %w", digest, ErrNotFound)
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
		return nil, fmt.Errorf("config %s: %w", digest, ErrNotFound)
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
