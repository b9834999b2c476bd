package notify

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/tagfilter"
)

// WatcherOptions holds a Watcher's collaborators; Images, Store and Interval
// are required, and other zero fields mean the defaults named on them.
type WatcherOptions struct {
	// Images checks tags through the same path as the API's refresh
	// (images.Service), so one move gives one event however it was noticed.
	Images Images
	Store  *store.Store
	// Interval is the poll interval (--poll-interval); each wait is spread
	// by ±10% so that many instances do not poll a registry in step.
	Interval time.Duration
	// Watched lists the repositories tracked as base-image candidates
	// (--watch): their tags are listed every round, the first at start-up,
	// so bases are known before their children are inspected and a rebuilt
	// base is noticed. Optional.
	Watched []analysis.Repository
	// Concurrency is how many tags are refreshed at once (default
	// DefaultWatchConcurrency); the registry client adds its own
	// per-registry limit.
	Concurrency int
	Logger      *slog.Logger
	Now         func() time.Time
	Rand        func() float64
}

// DefaultWatchConcurrency is WatcherOptions.Concurrency's default.
const DefaultWatchConcurrency = 4

func (c WatcherOptions) withDefaults() WatcherOptions {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultWatchConcurrency
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Watcher notices tag moves: by polling every subscribed tag, and
// on request (inbound hooks). It never records anything itself; each check
// is images.Service.Check, which records a move and its change, for the
// fan-out to tell.
type Watcher struct {
	images      Images
	watched     []analysis.Repository
	store       *store.Store
	interval    time.Duration
	concurrency int
	log         *slog.Logger
	now         func() time.Time
	rand        func() float64

	queue chan refreshRequest
	mu    sync.Mutex
	// queued holds the references in queue, so a burst of hooks for one tag
	// costs one refresh.
	queued map[string]bool
	// backoff holds, per registry, when it may be asked again after
	// answering 429.
	backoff map[string]time.Time
	// retries tracks the goroutines waiting to look at a hook's tag again,
	// so Run returns only once they have stopped.
	retries sync.WaitGroup
	// owner names this watcher's leases of tracked items.
	owner string
	// synced is when the wanted items were last recorded.
	synced time.Time
}

// queueSize bounds the refreshes waiting from hooks; past it a hook's
// request is dropped (the next poll catches the move anyway).
const queueSize = 256

// refreshRequest is a refresh asked for by a hook. Digest, when known, is
// where the hook says the tag points now.
type refreshRequest struct {
	ref    analysis.Reference
	digest string
	// deleted marks a hook's deletion of ref: the tag (or every tag at the
	// digest) is checked, and looked at again while it still resolves.
	deleted bool
	tries   int
	// since is when the hook asked; a refresh the database could not
	// record is tried again until it is storeOutageLimit old.
	since time.Time
}

// storeOutageLimit is how long a hook's refresh waits for a database that
// does not answer, tried every storeOutageRetry: an accepted hook is not
// lost to an outage shorter than this (the poller catches longer ones).
const (
	storeOutageLimit = 10 * time.Minute
	storeOutageRetry = time.Second
)

// hookRetries are the waits before looking again at a tag that does not yet
// point where its hook said: a distribution registry sends the push
// notification before it moves the tag, so the first look can be too early.
func hookRetries() []time.Duration {
	return []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
}

// NewWatcher returns a Watcher; call Run to start it.
func NewWatcher(cfg WatcherOptions) *Watcher {
	cfg = cfg.withDefaults()
	return &Watcher{
		images:      cfg.Images,
		watched:     cfg.Watched,
		store:       cfg.Store,
		interval:    cfg.Interval,
		concurrency: cfg.Concurrency,
		log:         cfg.Logger,
		now:         cfg.Now,
		rand:        cfg.Rand,
		queue:       make(chan refreshRequest, queueSize),
		queued:      map[string]bool{},
		backoff:     map[string]time.Time{},
		owner:       newID("wch_"),
	}
}

// Refresh asks for ref to be re-resolved soon, as an inbound hook does;
// digest, when the hook names it, is where the tag should now point, and the
// tag is looked at again a few times, over about 8 s, until it does. It
// never blocks; it reports false when the queue is full and the request was
// dropped.
func (w *Watcher) Refresh(ref analysis.Reference, digest string) bool {
	return w.enqueue(refreshRequest{ref: ref, digest: digest, since: w.now()})
}

// Deleted asks for the tags a hook says were deleted to be checked soon:
// ref's tag, or for a reference by digest every known tag pointing at that
// digest, so their deletion is recorded without waiting for a poll. Like
// Refresh, it never blocks and reports false when the request was dropped.
func (w *Watcher) Deleted(ref analysis.Reference) bool {
	return w.enqueue(refreshRequest{ref: ref, deleted: true, since: w.now()})
}

func (w *Watcher) enqueue(r refreshRequest) bool {
	key := r.key()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queued[key] {
		return true
	}
	select {
	case w.queue <- r:
		w.queued[key] = true
		return true
	default:
		return false
	}
}

// Run polls what is due, at once and then every tick, and serves Refresh
// requests, until ctx is cancelled; it returns when the work in progress
// has stopped. Several processes sharing a database each run one: the
// tracked items are claimed, so each is checked once per interval by one
// of them.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer w.retries.Wait()
	defer wg.Wait()
	for range 2 {
		wg.Go(func() { w.serveQueue(ctx) })
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("watcher: poll", "err", err)
		}
		timer.Reset(w.tick())
	}
}

// tick is how often Run looks for due items: a tenth of the interval
// (between 100 ms and 5 s), so an item is checked soon after it is due,
// whichever process frees it.
func (w *Watcher) tick() time.Duration {
	return min(max(w.interval/10, 100*time.Millisecond), 5*time.Second)
}

// lease is how long a claimed item is reserved to this process: half the
// interval (between 5 s and 10 min), so the items of a process that died are
// checked by the others within one interval.
func (w *Watcher) lease() time.Duration {
	return min(max(w.interval/2, 5*time.Second), 10*time.Minute)
}

func (w *Watcher) jittered() time.Duration {
	return time.Duration(float64(w.interval) * (1 + jitterFraction*(2*w.rand()-1)))
}

func (w *Watcher) serveQueue(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-w.queue:
			w.mu.Lock()
			delete(w.queued, r.key())
			w.mu.Unlock()
			var err error
			if r.deleted && r.ref.Digest != "" {
				err = w.checkDeletedDigest(ctx, r.ref)
			} else {
				err = w.check(ctx, r.ref)
			}
			if errors.Is(err, store.ErrUnavailable) && w.now().Sub(r.since) < storeOutageLimit {
				w.later(ctx, r, storeOutageRetry)
				continue
			}
			w.again(ctx, r)
		}
	}
}

// later queues r again after wait.
func (w *Watcher) later(ctx context.Context, r refreshRequest, wait time.Duration) {
	t := time.NewTimer(wait)
	w.retries.Go(func() {
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			w.enqueue(r)
		}
	})
}

func (r refreshRequest) key() string {
	k := r.ref.String() + "@" + r.digest
	if r.deleted {
		k += "\x00deleted"
	}
	return k
}

// checkDeletedDigest checks every known tag of ref's repository that points
// at ref's digest: a manifest deleted by digest takes its tags with it.
func (w *Watcher) checkDeletedDigest(ctx context.Context, ref analysis.Reference) error {
	tags, err := w.store.TagsAt(ctx, ref.Repository, ref.Digest)
	if err != nil {
		w.log.Warn("watcher: tags of a deleted digest", "image", ref.String(), "err", err)
		return err
	}
	var errs []error
	for _, t := range tags {
		errs = append(errs, w.check(ctx, ref.Repository.WithTag(t)))
	}
	return errors.Join(errs...)
}

// again queues another look at a hook's tag that does not point at the
// digest the hook named yet (or, for a deletion, still resolves), after a
// growing wait, until the tries run out.
func (w *Watcher) again(ctx context.Context, r refreshRequest) {
	waits := hookRetries()
	if r.ref.Tag == "" || r.ref.Digest != "" || r.tries >= len(waits) || (r.digest == "" && !r.deleted) {
		return
	}
	st, err := w.store.Tag(ctx, r.ref.Repository, r.ref.Tag)
	if r.deleted && err != nil {
		return // recorded as deleted (or unknown): done
	}
	if !r.deleted && err == nil && st.Digest == r.digest {
		return
	}
	r.tries++
	w.later(ctx, r, waits[r.tries-1])
}

// Poll checks what is due once: every subscribed tag, the tags of the
// parents of subscribed images (see store.SubscribedBases), and every tag of
// watched repositories and of repositories subscribed to as a whole (by
// listing them), that is due, claimed in batches from the items shared by
// every process of the deployment. A tag checked meanwhile by anything else
// (a hook, an API refresh, a listing) is not asked again until an interval
// after that check.
func (w *Watcher) Poll(ctx context.Context) error {
	if err := w.sync(ctx); err != nil {
		return err
	}
	// Claim only what can start now: an item claimed and left waiting
	// behind a long listing would sit on its lease while another process
	// could have checked it. What is being worked on is renewed, so a
	// listing longer than a lease is not taken up a second time.
	batch := w.concurrency
	defer w.renewing(ctx)()
	for ctx.Err() == nil {
		now := w.now()
		items, err := w.store.ClaimTracked(ctx, w.owner, now, w.lease(), batch)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			break
		}
		// Listings first: they check their tags, which then need no check
		// of their own.
		slices.SortStableFunc(items, func(a, b store.Tracked) int { return strings.Compare(a.Tag, b.Tag) })
		first := 0
		for first < len(items) && items[first].Tag == "" {
			first++
		}
		for _, part := range [][]store.Tracked{items[:first], items[first:]} {
			sem := make(chan struct{}, w.concurrency)
			var wg sync.WaitGroup
			for _, it := range part {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					next := w.poll(ctx, it, now)
					if err := w.store.RescheduleTracked(context.WithoutCancel(ctx), w.owner, it, next); err != nil {
						w.log.Warn("watcher: reschedule", "item", it.Repo.String()+":"+it.Tag, "err", err)
					}
				})
			}
			wg.Wait()
		}
		if len(items) < batch {
			break
		}
	}
	return ctx.Err()
}

// renewing renews the leases this process holds every third of a lease
// until the returned function is called.
func (w *Watcher) renewing(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.lease() / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := w.store.RenewTracked(ctx, w.owner, w.now().Add(w.lease())); err != nil && ctx.Err() == nil {
					w.log.Warn("watcher: renew leases", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// sync records what is wanted, once an interval: the subscribed tags and
// repositories, and the watched repositories; and drops what nobody has
// wanted for three intervals.
func (w *Watcher) sync(ctx context.Context) error {
	now := w.now()
	w.mu.Lock()
	due := w.synced.IsZero() || now.Sub(w.synced) >= w.interval || now.Before(w.synced)
	w.mu.Unlock()
	if !due {
		return nil
	}
	subjects, err := w.store.SubscribedImages(ctx)
	if err != nil {
		return err
	}
	// The bases of subscribed images are polled too: a rebuilt base is
	// what base.updated tells, and nobody need --watch it for that.
	bases, err := w.store.SubscribedBases(ctx)
	if err != nil {
		return err
	}
	items := make([]store.Tracked, 0, len(subjects)+len(bases)+len(w.watched))
	for _, r := range w.watched {
		items = append(items, store.Tracked{Repo: r})
	}
	for _, s := range slices.Concat(subjects, bases) {
		items = append(items, store.Tracked{Repo: s.Repository, Tag: s.Tag})
	}
	if err := w.store.WantTracked(ctx, items, now); err != nil {
		return err
	}
	if _, err := w.store.ForgetUnwanted(ctx, now.Add(-3*w.interval)); err != nil {
		return err
	}
	w.mu.Lock()
	w.synced = now
	w.mu.Unlock()
	return nil
}

// poll checks one item and returns when it is due again: a repository is
// listed, its tags checked by the listing; a tag checked since the last
// interval began (by anything) waits for an interval after that check.
func (w *Watcher) poll(ctx context.Context, it store.Tracked, now time.Time) time.Time {
	if it.Tag == "" {
		// The listing's own checks (one HEAD a tag) count; a tag it only
		// listed (Docker Hub's listing, say, which names digests) is
		// checked here, unless something checked it since now.
		sem := make(chan struct{}, w.concurrency)
		var wg sync.WaitGroup
		for _, ref := range w.listTags(ctx, it.Repo) {
			if st, err := w.store.Tag(ctx, ref.Repository, ref.Tag); err == nil && !st.Checked.Before(now.Truncate(time.Millisecond)) {
				continue
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				w.check(ctx, ref)
			})
		}
		wg.Wait()
		return now.Add(w.jittered())
	}
	ref := it.Repo.WithTag(it.Tag)
	if st, err := w.store.ReloadTag(ctx, ref.Repository, ref.Tag); err == nil && now.Sub(st.Checked) < w.interval-w.interval/10 {
		return st.Checked.Add(w.jittered())
	}
	w.check(ctx, ref)
	return now.Add(w.jittered())
}

// listTags returns the tags of repo that something follows, through
// images.Service so that the listing records what it learns. A watched
// repository, or one with a subscription to every tag, is listed whole; one
// followed only by filtered subscriptions costs one HEAD per followed tag
// alone (the tag list itself is one request a page either way).
func (w *Watcher) listTags(ctx context.Context, repo analysis.Repository) []analysis.Reference {
	if !w.allowed(repo.Registry) {
		return nil
	}
	how := images.ReadOptions{Refresh: true}
	follows, key, err := w.followed(ctx, repo)
	if err != nil {
		w.log.Warn("watcher: tag filters", "repository", repo.String(), "err", err)
	}
	if follows != nil {
		how.Only, how.OnlyKey = follows, key
	}
	// A poll: the registry client keeps the last part of a known
	// rate-limit budget for the reads people ask for.
	how.Polling = true
	list, err := w.images.Tags(ctx, repo, how)
	if err != nil {
		w.failed(repo.String(), repo.Registry, err)
		return nil
	}
	var out []analysis.Reference
	for _, g := range list.Groups {
		for _, t := range g.Tags {
			if follows == nil || follows(t) {
				out = append(out, repo.WithTag(t))
			}
		}
	}
	return out
}

// followed returns which tags of repo anything follows: nil (every tag)
// for a watched repository or one with an unfiltered repository-wide
// subscription, else the union of the subscriptions' filters, and a key
// naming it.
func (w *Watcher) followed(ctx context.Context, repo analysis.Repository) (func(string) bool, string, error) {
	if slices.Contains(w.watched, repo) {
		return nil, "", nil
	}
	specs, err := w.store.RepositoryFilters(ctx, repo)
	if err != nil || len(specs) == 0 {
		return nil, "", err
	}
	var filters []*tagfilter.Filter
	var keys []string
	for _, sp := range specs {
		if sp.IsZero() {
			return nil, "", nil
		}
		f, err := tagfilter.Parse(tagfilter.Spec(sp))
		if err != nil {
			// Checked when the subscription was made: one that no longer
			// parses follows nothing (the fan-out says so in the log).
			continue
		}
		filters = append(filters, f)
		keys = append(keys, specKey(tagfilter.Spec(sp)))
	}
	slices.Sort(keys)
	return func(tag string) bool {
		for _, f := range filters {
			if f.Follows(tag) {
				return true
			}
		}
		return false
	}, strings.Join(slices.Compact(keys), "\x01"), nil
}

// check re-resolves one reference (a digest is only looked up: it cannot
// move).
func (w *Watcher) check(ctx context.Context, ref analysis.Reference) error {
	if !w.allowed(ref.Registry) {
		return nil
	}
	err := w.images.Check(ctx, ref, images.ReadOptions{Polling: true})
	if err != nil && ctx.Err() == nil {
		w.failed(ref.String(), ref.Registry, err)
	}
	return err
}

// allowed reports whether registry may be asked now (it has not asked us to
// back off).
func (w *Watcher) allowed(registry string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	until, ok := w.backoff[registry]
	if ok && w.now().Before(until) {
		return false
	}
	delete(w.backoff, registry)
	return true
}

// failed logs a failed check; a registry that rate-limits us is left alone
// for as long as it asked, else for one interval.
func (w *Watcher) failed(what, registry string, err error) {
	if errors.Is(err, analysis.ErrRateLimited) {
		wait := w.interval
		var ae *analysis.Error
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			wait = ae.RetryAfter
		}
		w.mu.Lock()
		w.backoff[registry] = w.now().Add(wait)
		w.mu.Unlock()
	}
	level := slog.LevelWarn
	if errors.Is(err, analysis.ErrNotFound) {
		level = slog.LevelInfo
	}
	w.log.Log(context.Background(), level, "watcher: check failed", "image", what, "err", err)
}
