package images

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/imagebadger/imagebadger/analysis"
)

// background runs the inspections that reads start and need not wait for:
// one at a time per reference, bounded in number, each with a deadline
// detached from the request that asked for it. A failed one answers for its
// reference for RetryFailedAfter (a per-reference back-off, so that a badge
// of a missing image does not cost a registry request per view); a
// successful one is forgotten at once, since its result is in the store.
//
// The pool is shared fairly: one registry may hold at most
// MaxInspectionsPerRegistry of its slots and one client address at most
// MaxInspectionsPerClient, so a registry that answers a byte a second, or
// one client asking for thousands of images, fills its own share and
// nobody else's. An inspection whose shares are full waits for a slot in
// them, up to QueueWait, as a queued job that readers wait on like a
// running one; the queue is bounded by the same shares, and beyond it a
// read is refused at once with ErrBusy.
type background struct {
	mu      sync.Mutex
	jobs    *lru.Cache[string, *job] // queued, in flight, or failed within RetryFailedAfter
	running int
	queued  int
	// byRegistry and byClient count the running and queued jobs of each
	// registry and client address; entries at zero are deleted.
	byRegistry map[string]*shareCount
	byClient   map[string]*shareCount
	// vacancy is closed, and replaced, whenever a slot is freed, waking the
	// queued jobs to try for it.
	vacancy chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

// shareCount is what one registry or client holds of the pool.
type shareCount struct{ running, queued int }

// owner is whom a job's slot is counted against: its registry, and the
// client address of the read that started it ("" for the service's own
// work, which has no client share).
type owner struct{ registry, client string }

// job is one background inspection, shared by every reader that asked for
// the same reference while it ran.
type job struct {
	who      owner
	done     chan struct{}
	started  chan struct{} // closed when it holds a slot
	err      error
	finished time.Time
}

func (b *background) init(size int) {
	b.jobs = mustLRU[string, *job](size)
	b.byRegistry = map[string]*shareCount{}
	b.byClient = map[string]*shareCount{}
	b.vacancy = make(chan struct{})
}

// failed is a finished job with err, never started.
func failed(err error) *job {
	j := &job{done: make(chan struct{}), started: make(chan struct{}), err: err}
	close(j.done)
	close(j.started)
	return j
}

// start makes sure ref is being inspected, or failed a moment ago, and
// returns that inspection: the one queued or in flight, the failure less
// than RetryFailedAfter old, or a new one, counted against client's
// shares and budget (see background). When no slot can be had or queued
// for, or after Close, it returns a finished job failing with ErrBusy;
// when client's budget of new inspections is spent, one failing with
// analysis.ErrRateLimited.
func (b *background) start(s *Service, ref analysis.Reference, client string) *job {
	return b.do(s, ref.String(), owner{ref.Registry, client}, func(ctx context.Context) error {
		_, err := s.resolve(ctx, ref, false, false)
		return err
	})
}

// startListing is start for a repository's tag listing, as the service's
// own work (the refresh of a stale listing).
func (b *background) startListing(s *Service, repo analysis.Repository) *job {
	return b.startListingFor(s, repo, "")
}

// startListingFor is startListing for a read of client's.
func (b *background) startListingFor(s *Service, repo analysis.Repository, client string) *job {
	return b.do(s, "tags\x00"+repo.String(), owner{repo.Registry, client}, func(ctx context.Context) error {
		_, err := s.listed(ctx, repo, false, ReadOptions{})
		return err
	})
}

// do runs work under key as start describes.
func (b *background) do(s *Service, key string, who owner, work func(ctx context.Context) error) *job {
	now := s.opts.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if j, ok := b.jobs.Get(key); ok {
		select {
		case <-j.done:
			if now.Sub(j.finished) < s.opts.RetryFailedAfter {
				return j
			}
		default:
			return j
		}
	}
	if b.closed {
		return failed(busyError("the service is shutting down"))
	}
	run := b.vacantLocked(s, who) == ""
	if !run {
		if why := b.queueFullLocked(s, who); why != "" {
			return failed(busyError(why))
		}
	}
	if who.client != "" {
		if ok, wait := s.clientBudget.Allow(who.client, now); !ok {
			return failed(&analysis.Error{Kind: analysis.ErrRateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("this address has started many inspections of images this service had not seen lately; try again in %s", roundUp(wait))})
		}
	}
	j := &job{who: who, done: make(chan struct{}), started: make(chan struct{})}
	b.jobs.Add(key, j)
	if run {
		b.takeLocked(who)
	} else {
		b.queueLocked(who)
	}
	b.wg.Go(func() {
		if !run && !b.waitForSlot(s, who) {
			b.finish(s, key, j, busyError(fmt.Sprintf("no inspection slot came free within %s", s.opts.QueueWait)), false)
			return
		}
		b.run(s, key, j, work)
	})
	return j
}

// vacantLocked says why who may not take a slot now, or "" when it may.
func (b *background) vacantLocked(s *Service, who owner) string {
	switch {
	case b.running >= s.opts.MaxInspections:
		return fmt.Sprintf("%d inspections are in flight, the most this service runs at once", b.running)
	case count(b.byRegistry, who.registry).running >= s.opts.MaxInspectionsPerRegistry:
		return fmt.Sprintf("%d inspections of images on %s are in flight, the most one registry may have", s.opts.MaxInspectionsPerRegistry, who.registry)
	case who.client != "" && count(b.byClient, who.client).running >= s.opts.MaxInspectionsPerClient:
		return fmt.Sprintf("this address has %d inspections in flight, the most one client may have", s.opts.MaxInspectionsPerClient)
	}
	return ""
}

// queueFullLocked says why who may not queue for a slot, or "" when it
// may: the queue is bounded by the same shares as the slots.
func (b *background) queueFullLocked(s *Service, who owner) string {
	switch {
	case b.queued >= s.opts.MaxInspections:
		return fmt.Sprintf("%d inspections are in flight and as many wait for a slot", b.running)
	case count(b.byRegistry, who.registry).queued >= s.opts.MaxInspectionsPerRegistry:
		return fmt.Sprintf("%d inspections of images on %s are in flight and as many wait, the most one registry may have", s.opts.MaxInspectionsPerRegistry, who.registry)
	case who.client != "" && count(b.byClient, who.client).queued >= s.opts.MaxInspectionsPerClient:
		return fmt.Sprintf("this address has %d inspections in flight and as many waiting, the most one client may have", s.opts.MaxInspectionsPerClient)
	}
	return ""
}

func count(m map[string]*shareCount, k string) shareCount {
	if c, ok := m[k]; ok {
		return *c
	}
	return shareCount{}
}

// adjust adds running and queued to k's count in m, deleting it at zero.
func adjust(m map[string]*shareCount, k string, running, queued int) {
	c, ok := m[k]
	if !ok {
		c = &shareCount{}
		m[k] = c
	}
	c.running += running
	c.queued += queued
	if c.running == 0 && c.queued == 0 {
		delete(m, k)
	}
}

func (b *background) takeLocked(who owner) {
	b.running++
	adjust(b.byRegistry, who.registry, 1, 0)
	if who.client != "" {
		adjust(b.byClient, who.client, 1, 0)
	}
}

func (b *background) queueLocked(who owner) {
	b.queued++
	adjust(b.byRegistry, who.registry, 0, 1)
	if who.client != "" {
		adjust(b.byClient, who.client, 0, 1)
	}
}

func (b *background) unqueueLocked(who owner) {
	b.queued--
	adjust(b.byRegistry, who.registry, 0, -1)
	if who.client != "" {
		adjust(b.byClient, who.client, 0, -1)
	}
}

// releaseLocked frees who's slot and wakes the queued jobs.
func (b *background) releaseLocked(who owner) {
	b.running--
	adjust(b.byRegistry, who.registry, -1, 0)
	if who.client != "" {
		adjust(b.byClient, who.client, -1, 0)
	}
	close(b.vacancy)
	b.vacancy = make(chan struct{})
}

// waitForSlot waits, up to QueueWait, until who may take a slot, and takes
// it; false means it gave up (and is no longer queued).
func (b *background) waitForSlot(s *Service, who owner) bool {
	timer := time.NewTimer(s.opts.QueueWait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		if !b.closed && b.vacantLocked(s, who) == "" {
			b.unqueueLocked(who)
			b.takeLocked(who)
			b.mu.Unlock()
			return true
		}
		vacancy := b.vacancy
		if b.closed {
			b.unqueueLocked(who)
			b.mu.Unlock()
			return false
		}
		b.mu.Unlock()
		select {
		case <-vacancy:
		case <-timer.C:
			b.mu.Lock()
			b.unqueueLocked(who)
			b.mu.Unlock()
			return false
		}
	}
}

func (b *background) run(s *Service, key string, j *job, work func(ctx context.Context) error) {
	close(j.started)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.InspectTimeout)
	defer cancel()
	err := work(ctx)
	switch {
	case err == nil:
	case errors.Is(err, analysis.ErrNotFound), errors.Is(err, analysis.ErrUnauthorized):
		s.opts.Logger.Info("background inspection: not found", "what", key, "err", err)
	default:
		s.opts.Logger.Warn("background inspection failed", "what", key, "err", err)
	}
	b.finish(s, key, j, err, true)
}

// finish records j's end; held says it held a slot, which is freed. A job that ended well, or never got a slot, is forgotten, so the
// next read starts another.
func (b *background) finish(s *Service, key string, j *job, err error, held bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j.err, j.finished = err, s.opts.Now()
	close(j.done)
	if held {
		b.releaseLocked(j.who)
	}
	if err == nil || errors.Is(err, ErrBusy) {
		if cur, ok := b.jobs.Peek(key); ok && cur == j {
			b.jobs.Remove(key)
		}
	}
}

// busyError is ErrBusy with why, and the Retry-After of a busy answer.
func busyError(why string) error {
	return &analysis.Error{Kind: ErrBusy, RetryAfter: BusyRetryAfter,
		Message: why + "; try again in a few seconds"}
}

// roundUp rounds d up to whole seconds, at least one.
func roundUp(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// wait waits for j up to limit (zero: no limit) or until ctx is done. A job
// still queued for a slot when limit passes answers ErrBusy, one running
// ErrNotYet.
func (j *job) wait(ctx context.Context, limit time.Duration) error {
	var timeout <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-j.done:
		return j.err
	case <-timeout:
		select {
		case <-j.started:
			return ErrNotYet
		default:
			return busyError("the inspection waits for a slot among the others of its registry or client")
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops new inspections and waits for those in flight, until ctx is done.
func (b *background) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	close(b.vacancy) // queued jobs give up
	b.vacancy = make(chan struct{})
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("images: background inspections still running: %w", ctx.Err())
	}
}
