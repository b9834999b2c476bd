// Package contents analyses what is inside an image's layers, on demand:
// reading layer blobs costs bandwidth, so nothing is read until someone
// asks, and what was read is kept for good by layer digest, so a base layer
// shared by a thousand images is read once for the whole deployment.
//
// A request for a platform image queues a job (a bounded number run at
// once, --contents-concurrency) that walks its layers: a layer already
// analysed is skipped, one another process is reading is waited for (its
// lease in the store says who), and the others are read by registry, a
// stream or a table of contents, within the image's byte budget and the
// entry limit. Once every layer is known, the image's summary is computed
// with analysis's filesystem model from the stored entries and kept. Jobs
// report their progress while they run; a process killed in the middle
// leaves a lease that runs out and no half-analysed layer, and the next
// request finishes the work.
//
// The caller resolves the reference (through images, the one read path,
// which decides who may see what) and hands this package the platform
// image to analyse.
package contents

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/store"
)

// Defaults of Options.
const (
	DefaultConcurrency = 2
	// DefaultMaxBytes is the compressed layer bytes one platform image's
	// analysis may read (4 GB).
	DefaultMaxBytes = 4_000_000_000
	// DefaultLease is how long a layer's analysis is held by its process
	// without renewal; it is renewed at a third of it.
	DefaultLease = 10 * time.Second
	// DefaultQueue bounds the jobs waiting for a free slot.
	DefaultQueue = 256
	// waitPoll is how often a job waiting on another process's layer
	// looks again.
	waitPoll = 250 * time.Millisecond
)

// The reasons a failed analysis gives, in the API's words.
const (
	ReasonTooLarge = "too_large"
	ReasonInvalid  = "invalid_layer"
	ReasonUpstream = "upstream"
)

// Errors of the service besides analysis's kinds.
var (
	// ErrNotAnalyzed: nobody has asked for this image's contents yet.
	ErrNotAnalyzed = errors.New("contents: not analysed")
	// ErrBusy: the queue of jobs is full.
	ErrBusy = errors.New("contents: too many analyses queued")
)

// Options configures a Service; Client and Store are required.
type Options struct {
	Client *registry.Client
	Store  *store.Store
	// Concurrency is how many analyses run at once in this process
	// (default DefaultConcurrency).
	Concurrency int
	// MaxBytes is the compressed bytes of the layers not yet known that one
	// platform image's analysis may read (default DefaultMaxBytes).
	MaxBytes int64
	// MaxEntries is the most entries one layer may hold (default
	// analysis.DefaultMaxLayerEntries).
	MaxEntries int
	// Lease is how long a layer's claim lasts unrenewed (default DefaultLease).
	Lease time.Duration
	// Owner names this process in leases (default: random).
	Owner string
	// Queue bounds the jobs waiting to run (default DefaultQueue).
	Queue  int
	Logger *slog.Logger
	Now    func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = analysis.DefaultMaxLayerEntries
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Owner = "contents-" + hex.EncodeToString(b[:])
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Service runs contents analyses and answers their state.
type Service struct {
	opts  Options
	slots chan struct{}
	queue chan struct{}

	mu   sync.Mutex
	jobs map[string]*job // by platform manifest digest

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service; Close stops its jobs.
func New(o Options) *Service {
	o = o.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{opts: o, slots: make(chan struct{}, o.Concurrency), queue: make(chan struct{}, o.Queue),
		jobs: map[string]*job{}, ctx: ctx, cancel: cancel}
}

// Close stops the running jobs and waits for them; their layers' leases run
// out and another request finishes them.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Status is an analysis's state as the API shows it: Progress while
// queued or running, Result when done, Reason and Message when failed.
type Status struct {
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Progress
	Result *Result `json:"-"`
}

// Progress is how far a running analysis is.
type Progress struct {
	LayersDone  int   `json:"layersDone"`
	LayersTotal int   `json:"layersTotal"`
	BytesRead   int64 `json:"bytesRead"`
	BytesTotal  int64 `json:"bytesTotal"`
}

// Result is a done analysis, as docs/API.md shows it.
type Result struct {
	State          string       `json:"state"`
	Digest         string       `json:"digest"`
	FileCount      int          `json:"fileCount"`
	TotalSize      int64        `json:"totalSize"`
	LayerFilesSize int64        `json:"layerFilesSize"`
	WastedSize     int64        `json:"wastedSize"`
	Efficiency     float64      `json:"efficiency"`
	Layers         []LayerStats `json:"layers"`
	Wasted         []Wasted     `json:"wasted"`
	Largest        []Largest    `json:"largest"`
}

// LayerStats is one layer's line of a Result.
type LayerStats struct {
	Digest       string `json:"digest"`
	DiffID       string `json:"diffId"`
	Size         int64  `json:"size"`
	Source       string `json:"source"`
	Added        int    `json:"added"`
	Modified     int    `json:"modified"`
	Removed      int    `json:"removed"`
	AddedSize    int64  `json:"addedSize"`
	ModifiedSize int64  `json:"modifiedSize"`
	RemovedSize  int64  `json:"removedSize"`
}

// Wasted is a path whose bytes the final filesystem does not show.
type Wasted struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Copies int    `json:"copies"`
	Layers []int  `json:"layers"`
}

// Largest is one of the largest files of the final filesystem.
type Largest struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Layer int    `json:"layer"`
}

// job is one platform image's analysis in this process.
type job struct {
	repo     analysis.Repository
	platform analysis.Platform
	mu       sync.Mutex
	progress Progress
	state    string
	done     chan struct{}
}

func (j *job) snapshot() (string, Progress) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state, j.progress
}

// Start asks for a platform image's contents: the result when every layer
// is known and the summary kept; otherwise the analysis is queued (or the
// one already running joined) and its progress returned.
func (s *Service) Start(ctx context.Context, repo analysis.Repository, p *analysis.Platform) (Status, error) {
	rec, err := s.opts.Store.RequestImageContents(ctx, p.Digest, s.opts.Now())
	if err != nil {
		return Status{}, err
	}
	if rec.State == store.ContentsDone {
		return statusOf(rec)
	}
	s.mu.Lock()
	_, running := s.jobs[p.Digest]
	s.mu.Unlock()
	if !running {
		// Every layer known already (they are shared with images analysed
		// before): the summary is computed now and the result answered.
		if st, done, err := s.summariseKnown(ctx, p); err != nil || done {
			return st, err
		}
	}
	s.mu.Lock()
	j, ok := s.jobs[p.Digest]
	if !ok {
		select {
		case s.queue <- struct{}{}:
		default:
			s.mu.Unlock()
			return Status{}, &analysis.Error{Kind: ErrBusy, Message: fmt.Sprintf("%d contents analyses are already queued; try again in a minute", s.opts.Queue)}
		}
		j = &job{repo: repo, platform: *p, state: store.ContentsQueued, done: make(chan struct{})}
		j.progress.LayersTotal = len(p.Layers)
		for _, l := range p.Layers {
			j.progress.BytesTotal += l.Size
		}
		s.jobs[p.Digest] = j
		s.wg.Add(1)
		go s.run(j)
	}
	s.mu.Unlock()
	state, pr := j.snapshot()
	return Status{State: state, Progress: pr}, nil
}

// Wait waits until the job of platform digest, if this process runs one,
// ends or ctx is done.
func (s *Service) Wait(ctx context.Context, digest string) error {
	s.mu.Lock()
	j, ok := s.jobs[digest]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status answers a platform image's contents state without starting
// anything: ErrNotAnalyzed when nobody asked.
func (s *Service) Status(ctx context.Context, p *analysis.Platform) (Status, error) {
	s.mu.Lock()
	j, ok := s.jobs[p.Digest]
	s.mu.Unlock()
	if ok {
		if state, pr := j.snapshot(); state == store.ContentsQueued || state == store.ContentsRunning {
			return Status{State: state, Progress: pr}, nil
		}
	}
	rec, err := s.opts.Store.ImageContents(ctx, p.Digest)
	if errors.Is(err, analysis.ErrNotFound) {
		return Status{}, ErrNotAnalyzed
	}
	if err != nil {
		return Status{}, err
	}
	if rec.State == store.ContentsQueued || rec.State == store.ContentsRunning {
		// Another process runs it, or one that died did: the layers the
		// store knows say how far it is.
		st := Status{State: rec.State}
		infos, err := s.opts.Store.LayerContents(ctx, layerDigests(p))
		if err != nil {
			return Status{}, err
		}
		st.LayersTotal = len(p.Layers)
		for _, l := range p.Layers {
			st.BytesTotal += l.Size
			if infos[l.Digest].State == store.ContentsDone {
				st.LayersDone++
				st.BytesRead += l.Size
			}
		}
		return st, nil
	}
	return statusOf(rec)
}

// summariseKnown computes and keeps the summary of an image whose layers
// are all analysed already; done is false when some layer is not.
func (s *Service) summariseKnown(ctx context.Context, p *analysis.Platform) (Status, bool, error) {
	infos, err := s.opts.Store.LayerContents(ctx, layerDigests(p))
	if err != nil {
		return Status{}, false, err
	}
	for _, l := range p.Layers {
		if infos[l.Digest].State != store.ContentsDone {
			return Status{}, false, nil
		}
	}
	r, err := s.summarise(ctx, p)
	if err != nil {
		return Status{}, false, nil // the job says why, as for any image
	}
	body, err := json.Marshal(r)
	if err != nil {
		return Status{}, false, err
	}
	if err := s.opts.Store.SetImageContents(ctx, p.Digest, store.ContentsDone, "", "", body, s.opts.Now()); err != nil {
		return Status{}, false, err
	}
	return Status{State: store.ContentsDone, Result: r}, true, nil
}

func statusOf(rec store.ImageContents) (Status, error) {
	st := Status{State: rec.State, Reason: rec.Reason, Message: rec.Message}
	if rec.State == store.ContentsDone {
		var r Result
		if err := json.Unmarshal(rec.Summary, &r); err != nil {
			return Status{}, fmt.Errorf("contents: summary of %s: %w", rec.Digest, err)
		}
		st.Result = &r
	}
	return st, nil
}

func layerDigests(p *analysis.Platform) []string {
	out := make([]string, len(p.Layers))
	for i, l := range p.Layers {
		out[i] = l.Digest
	}
	return out
}

// run is one job: wait for a slot, analyse, record.
func (s *Service) run(j *job) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.jobs, j.platform.Digest)
		s.mu.Unlock()
		<-s.queue
		close(j.done)
	}()
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	defer func() { <-s.slots }()
	j.mu.Lock()
	j.state = store.ContentsRunning
	j.mu.Unlock()
	ctx := s.ctx
	_ = s.opts.Store.SetImageContents(ctx, j.platform.Digest, store.ContentsRunning, "", "", nil, s.opts.Now())
	summary, err := s.analyse(ctx, j)
	if ctx.Err() != nil {
		return // stopping: the next request finishes the work
	}
	now := s.opts.Now()
	if err != nil {
		reason, msg := failure(err)
		s.opts.Logger.Warn("contents analysis failed", "image", j.repo.WithDigest(j.platform.Digest).String(), "reason", reason, "err", err)
		if err := s.opts.Store.SetImageContents(context.WithoutCancel(ctx), j.platform.Digest, store.ContentsFailed, reason, msg, nil, now); err != nil {
			s.opts.Logger.Error("contents: record failure", "err", err)
		}
		return
	}
	body, err := json.Marshal(summary)
	if err == nil {
		err = s.opts.Store.SetImageContents(context.WithoutCancel(ctx), j.platform.Digest, store.ContentsDone, "", "", body, now)
	}
	if err != nil {
		s.opts.Logger.Error("contents: record summary", "err", err)
	}
}

// failure turns an analysis error into the API's reason and a message fit
// for a person.
func failure(err error) (reason, message string) {
	msg, ok := analysis.PublicMessage(err)
	if !ok {
		msg = "the analysis failed"
	}
	if c, refused := analysis.CredentialsRefusedIn(err); refused {
		// The message is kept and shown to whoever asks, so it does not
		// say whether the service holds credentials (the log line of the
		// failure does).
		msg = c.Anonymous()
	}
	switch {
	case errors.Is(err, analysis.ErrTooLarge):
		return ReasonTooLarge, msg
	case errors.Is(err, analysis.ErrInvalidLayer):
		return ReasonInvalid, msg
	}
	return ReasonUpstream, msg
}

// analyse reads every layer not yet known and computes the summary.
func (s *Service) analyse(ctx context.Context, j *job) (*Result, error) {
	p := &j.platform
	infos, err := s.opts.Store.LayerContents(ctx, layerDigests(p))
	if err != nil {
		return nil, err
	}
	var need int64
	seen := map[string]bool{}
	for _, l := range p.Layers {
		if infos[l.Digest].State != store.ContentsDone && !seen[l.Digest] {
			need += l.Size
			seen[l.Digest] = true
		}
	}
	if need > s.opts.MaxBytes {
		return nil, analysis.Errorf(analysis.ErrTooLarge, nil, "the layers not yet analysed hold %d bytes, more than the %d bytes one image may read (--contents-max-bytes)", need, s.opts.MaxBytes)
	}
	annotations := s.layerAnnotations(ctx, p)
	var read int64
	for i, l := range p.Layers {
		base := read
		if err := s.layer(ctx, j, l, annotations[l.Digest], func(n int64) {
			j.mu.Lock()
			j.progress.BytesRead = base + n
			j.mu.Unlock()
		}); err != nil {
			return nil, err
		}
		read += l.Size
		j.mu.Lock()
		j.progress.LayersDone, j.progress.BytesRead = i+1, read
		j.mu.Unlock()
	}
	return s.summarise(ctx, p)
}

// layerAnnotations reads the layer descriptors' annotations from the
// stored manifest (where eStargz and zstd:chunked layers say so); without
// them every layer is streamed, which is always right.
func (s *Service) layerAnnotations(ctx context.Context, p *analysis.Platform) map[string]map[string]string {
	out := map[string]map[string]string{}
	_, body, err := s.opts.Store.Manifest(ctx, p.Digest)
	if err != nil {
		return out
	}
	m, err := v1.ParseManifest(bytes.NewReader(body))
	if err != nil {
		return out
	}
	for _, l := range m.Layers {
		if len(l.Annotations) > 0 {
			out[l.Digest.String()] = l.Annotations
		}
	}
	return out
}

// layer makes sure one layer's entries are in the store: already there,
// read by another process (waited for), or read now under this process's
// lease.
func (s *Service) layer(ctx context.Context, j *job, l analysis.Layer, annotations map[string]string, progress func(int64)) error {
	for {
		claimed, info, err := s.opts.Store.ClaimLayerContents(ctx, l.Digest, s.opts.Owner, s.opts.Now(), s.opts.Lease)
		if err != nil {
			return err
		}
		if claimed {
			return s.read(ctx, j, l, annotations, progress)
		}
		if info.State == store.ContentsDone {
			return nil
		}
		// Another process holds it: wait for it to finish or its lease to
		// run out.
		select {
		case <-time.After(waitPoll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// read reads a claimed layer, renewing the lease meanwhile, and keeps its
// entries or its failure.
func (s *Service) read(ctx context.Context, j *job, l analysis.Layer, annotations map[string]string, progress func(int64)) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(s.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				if ok, err := s.opts.Store.RenewLayerContents(rctx, l.Digest, s.opts.Owner, s.opts.Now().Add(s.opts.Lease)); err == nil && !ok {
					cancel() // another process took it over
					return
				}
			}
		}
	}()
	got, err := s.opts.Client.LayerContents(rctx, j.repo, registry.LayerBlob{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size, Annotations: annotations},
		registry.LayerOptions{MaxEntries: s.opts.MaxEntries, Progress: progress})
	if err == nil {
		// The tar must at least apply on its own: an entry escaping the
		// root fails the layer, whatever is below it.
		_, err = analysis.NewPartialFilesystem().Apply(got.Entries)
	}
	now := s.opts.Now()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // stopping: the lease runs out, nothing is kept
		}
		reason, msg := failure(err)
		if ferr := s.opts.Store.FailLayerContents(context.WithoutCancel(ctx), l.Digest, s.opts.Owner, reason, msg, now); ferr != nil {
			s.opts.Logger.Error("contents: record layer failure", "err", ferr)
		}
		return err
	}
	return s.opts.Store.FinishLayerContents(ctx, l.Digest, s.opts.Owner,
		store.LayerContentsInfo{Source: got.Source, Compression: got.Compression, BytesRead: got.BytesRead}, got.Entries, now)
}

// summarise builds the image's filesystem from the stored entries of its
// layers and computes its result.
func (s *Service) summarise(ctx context.Context, p *analysis.Platform) (*Result, error) {
	infos, err := s.opts.Store.LayerContents(ctx, layerDigests(p))
	if err != nil {
		return nil, err
	}
	fs := analysis.NewFilesystem()
	r := &Result{State: store.ContentsDone, Digest: p.Digest}
	for i, l := range p.Layers {
		entries, err := s.opts.Store.LayerEntries(ctx, l.Digest)
		if err != nil {
			return nil, err
		}
		ch, err := fs.Apply(entries)
		if err != nil {
			return nil, fmt.Errorf("contents: layer %d of %s: %w", i, p.Digest, err)
		}
		r.Layers = append(r.Layers, LayerStats{Digest: l.Digest, DiffID: l.DiffID, Size: l.Size, Source: infos[l.Digest].Source,
			Added: ch.Added, Modified: ch.Modified, Removed: ch.Removed,
			AddedSize: ch.AddedSize, ModifiedSize: ch.ModifiedSize, RemovedSize: ch.RemovedSize})
	}
	sum := fs.Summary()
	r.FileCount, r.TotalSize, r.LayerFilesSize, r.WastedSize, r.Efficiency = sum.FileCount, sum.TotalSize, sum.LayerFilesSize, sum.WastedSize, sum.Efficiency
	r.Wasted = make([]Wasted, 0, len(sum.Wasted))
	for _, w := range sum.Wasted {
		r.Wasted = append(r.Wasted, Wasted{Path: w.Path, Size: w.Size, Copies: w.Copies, Layers: w.Layers})
	}
	r.Largest = make([]Largest, 0, len(sum.Largest))
	for _, l := range sum.Largest {
		r.Largest = append(r.Largest, Largest{Path: l.Path, Size: l.Size, Layer: l.Layer})
	}
	return r, nil
}

func isNotAnalyzed(err error) bool { return errors.Is(err, ErrNotAnalyzed) }
