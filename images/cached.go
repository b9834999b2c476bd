package images

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"imagebadger/analysis"
	"imagebadger/store"
)

// Stored returns the report of ref from what the store already holds, without
// a single registry request: badges are embedded in pages that must not wait
// on a registry. stale is true when the tag's stored resolution is older than
// FreshFor, the cue to refresh it in the background. An image whose tag was
// never resolved (or whose content was never read) gives an error wrapping
// analysis.ErrNotFound.
func (s *Service) Stored(ctx context.Context, ref analysis.Reference) (rep *analysis.Report, stale bool, err error) {
	a, err := s.Answer(ctx, ref)
	return a.Report, a.Stale, err
}

// Answer is a plain read's answer: the report, whether it is stale (see
// Stored), and its version.
type Answer struct {
	Report *analysis.Report
	Stale  bool
	// Version names the answer's content: two answers for the same
	// reference with the same Version are equal, so what was made from one
	// (an encoded response, a rendered page) serves for the other.
	Version string
}

// Answer is Stored with the answer's version.
func (s *Service) Answer(ctx context.Context, ref analysis.Reference) (Answer, error) {
	var out Answer
	digest, checked := ref.Digest, s.now()
	if digest == "" {
		st, err := s.store.Tag(ctx, ref.Repository, ref.Tag)
		if err != nil {
			return Answer{}, err
		}
		digest, checked = st.Digest, st.Checked
		out.Stale = s.now().Sub(st.Checked) >= s.freshFor
	}
	checked = checked.UTC().Truncate(time.Second)
	key, since := ref.String(), s.answers.start()
	if a, at, ok := s.answers.get(key, digest); ok {
		out.Report = a.Clone()
		out.Report.CheckedAt = checked
		out.Version = answerVersion(at, digest, checked)
		return out, nil
	}
	shared, err := s.storedReport(ctx, ref.Repository.WithDigest(digest))
	if err != nil {
		return Answer{}, err
	}
	rep, read, err := s.finish(ctx, ref, shared, checked)
	if err != nil {
		return Answer{}, err
	}
	s.answers.put(key, digest, since, read, rep.Clone())
	out.Report, out.Version = rep, answerVersion(since, digest, checked)
	return out, nil
}

// answerVersion names an answer by what it was made from: the memo's
// counter before it was assembled (no change that could alter it came
// after, or it would not be current), the digest and the check time shown.
func answerVersion(since uint64, digest string, checked time.Time) string {
	return strconv.FormatUint(since, 10) + "/" + digest + "/" + strconv.FormatInt(checked.Unix(), 10)
}

// storedReport is cachedReport without the registry: the digest-level report
// from the in-memory cache, else assembled from stored manifests and configs.
// The result is shared; callers clone it before changing it.
func (s *Service) storedReport(ctx context.Context, ref analysis.Reference) (*analysis.Report, error) {
	key := ref.String()
	if rep, ok := s.reports.get(key); ok {
		return rep, nil
	}
	mt, _, err := s.store.Manifest(ctx, ref.Digest)
	if err != nil {
		return nil, err
	}
	// The Inspector asks the registry only for what its Content reports as
	// missing with ErrNotFound; storedOnly never does, so nothing is fetched.
	rep, err := analysis.NewInspector(s.client, storedOnly{s.store}).Report(ctx, ref, analysis.Descriptor{Digest: ref.Digest, MediaType: mt}, nil)
	if errors.Is(err, errNotStored) {
		return nil, fmt.Errorf("images: stored report of %s: %w (%w)", ref, analysis.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	s.reports.put(key, rep)
	return rep, nil
}

// errNotStored stands in for analysis.ErrNotFound inside storedOnly, so that
// the Inspector treats missing content as a failure instead of fetching it.
var errNotStored = errors.New("content not stored")

// storedOnly is the store seen as read-only analysis.Content that never
// reports content as merely missing.
type storedOnly struct{ st *store.Store }

func (c storedOnly) Manifest(ctx context.Context, digest string) (string, []byte, error) {
	mt, body, err := c.st.Manifest(ctx, digest)
	if errors.Is(err, analysis.ErrNotFound) {
		return "", nil, fmt.Errorf("manifest %s: %w", digest, errNotStored)
	}
	return mt, body, err
}

func (c storedOnly) Config(ctx context.Context, digest string) ([]byte, error) {
	body, err := c.st.Config(ctx, digest)
	if errors.Is(err, analysis.ErrNotFound) {
		return nil, fmt.Errorf("config %s: %w", digest, errNotStored)
	}
	return body, err
}

func (storedOnly) PutManifest(context.Context, string, string, []byte) error {
	return errors.New("images: stored-only content is read-only")
}

func (storedOnly) PutConfig(context.Context, string, []byte) error {
	return errors.New("images: stored-only content is read-only")
}

// ErrBusy is the result of a background inspection that was not started
// because too many are already running; the caller may try again later.
var ErrBusy = errors.New("images: too many background inspections in flight")

// RefresherOptions configures a Refresher; zero fields take the defaults.
type RefresherOptions struct {
	// Logger receives failed inspections; nil discards them.
	Logger *slog.Logger
	// Timeout is the deadline of the context a background inspection is
	// started with (default 2 minutes). Service.Image shares one inspection
	// between its callers and lets it run to its end, so what really bounds
	// it is the registry client's deadline on each request.
	Timeout time.Duration
	// RetryAfter is how long the outcome of an inspection, a failure
	// included, answers further requests for the same reference before a new
	// inspection may start (default 30 s). It keeps a badge for a missing or
	// unreachable image from costing a registry request per view.
	RetryAfter time.Duration
	// MaxRunning bounds the inspections in flight at once (default 32), so a
	// flood of badge requests for unknown images cannot start unbounded work.
	MaxRunning int
}

// Refresher runs inspections in the background for callers that must answer
// now (badges): one at a time per reference, bounded in number, each with a
// deadline detached from the request that asked for it.
type Refresher struct {
	svc  *Service
	opts RefresherOptions
	now  func() time.Time

	mu      sync.Mutex
	jobs    map[string]*Refresh
	running int
	closed  bool
	wg      sync.WaitGroup
}

// maxRememberedJobs bounds the finished inspections kept for RetryAfter.
const maxRememberedJobs = 4096

// NewRefresher returns a Refresher that inspects through svc.
func NewRefresher(svc *Service, opts RefresherOptions) *Refresher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 30 * time.Second
	}
	if opts.MaxRunning <= 0 {
		opts.MaxRunning = 32
	}
	return &Refresher{svc: svc, opts: opts, now: svc.now, jobs: map[string]*Refresh{}}
}

// Refresh is one background inspection, shared by every caller that asked
// for the same reference while it ran or shortly after.
type Refresh struct {
	done     chan struct{}
	rep      *analysis.Report
	err      error
	finished time.Time
}

// Done is closed when the inspection has finished.
func (r *Refresh) Done() <-chan struct{} { return r.done }

// Result returns the inspection's report or error; call it after Done is
// closed. Each call returns a report of its own, safe to change.
func (r *Refresh) Result() (*analysis.Report, error) {
	<-r.done
	if r.err != nil {
		return nil, r.err
	}
	return r.rep.Clone(), nil
}

// RefreshInBackground makes sure ref is being inspected, or was a moment
// ago, and returns that inspection without waiting for it: the one in
// flight, the one that finished less than RetryAfter ago, or a new one. A
// stored tag is re-resolved with one HEAD; an image never seen is read in
// full. When MaxRunning inspections are in flight, or after Close, the
// result is a finished Refresh failing with ErrBusy.
func (rf *Refresher) RefreshInBackground(ref analysis.Reference) *Refresh {
	key := ref.String()
	now := rf.now()
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if j, ok := rf.jobs[key]; ok && (!isDone(j) || now.Sub(j.finished) < rf.opts.RetryAfter) {
		return j
	}
	if rf.closed || rf.running >= rf.opts.MaxRunning {
		j := &Refresh{done: make(chan struct{}), err: ErrBusy, finished: now}
		close(j.done)
		return j
	}
	if len(rf.jobs) >= maxRememberedJobs {
		rf.forgetLocked(now)
	}
	j := &Refresh{done: make(chan struct{})}
	rf.jobs[key] = j
	rf.running++
	rf.wg.Add(1)
	go rf.run(ref, j)
	return j
}

func (rf *Refresher) run(ref analysis.Reference, j *Refresh) {
	defer rf.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), rf.opts.Timeout)
	defer cancel()
	rep, err := rf.svc.Image(ctx, ref, false)
	switch {
	case err == nil:
	case errors.Is(err, analysis.ErrNotFound), errors.Is(err, analysis.ErrUnauthorized):
		rf.opts.Logger.Info("background inspection: image not found", "ref", ref.String(), "err", err)
	default:
		rf.opts.Logger.Warn("background inspection failed", "ref", ref.String(), "err", err)
	}
	rf.mu.Lock()
	j.rep, j.err, j.finished = rep, err, rf.now()
	close(j.done)
	rf.running--
	rf.mu.Unlock()
}

// forgetLocked drops finished inspections past RetryAfter and, if that is not
// enough, any finished one: remembering outcomes is an optimisation, and
// inspections in flight are bounded by MaxRunning.
func (rf *Refresher) forgetLocked(now time.Time) {
	for k, j := range rf.jobs {
		if isDone(j) && now.Sub(j.finished) >= rf.opts.RetryAfter {
			delete(rf.jobs, k)
		}
	}
	for k, j := range rf.jobs {
		if len(rf.jobs) < maxRememberedJobs/2 {
			return
		}
		if isDone(j) {
			delete(rf.jobs, k)
		}
	}
}

// isDone reports whether j has finished; the caller holds rf.mu, under which
// finished is set before done is closed.
func isDone(j *Refresh) bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// Close stops new background inspections from starting and waits for those
// in flight, so the store they write to can be closed after it returns. It
// gives up when ctx is done.
func (rf *Refresher) Close(ctx context.Context) error {
	rf.mu.Lock()
	rf.closed = true
	rf.mu.Unlock()
	done := make(chan struct{})
	go func() {
		rf.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("images: background inspections still running: %w", ctx.Err())
	}
}
