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
type background struct {
	mu      sync.Mutex
	jobs    *lru.Cache[string, *job] // in flight, or failed within RetryFailedAfter
	running int
	closed  bool
	wg      sync.WaitGroup
}

// job is one background inspection, shared by every reader that asked for
// the same reference while it ran.
type job struct {
	done     chan struct{}
	err      error
	finished time.Time
}

func (b *background) init(size int) { b.jobs = mustLRU[string, *job](size) }

// failed is a finished job with err, never started.
func failed(err error) *job {
	j := &job{done: make(chan struct{}), err: err}
	close(j.done)
	return j
}

// start makes sure ref is being inspected, or failed a moment ago, and
// returns that inspection: the one in flight, the failure less than
// RetryFailedAfter old, or a new one. Past MaxInspections, or after Close,
// it returns a finished job failing with ErrBusy.
func (b *background) start(s *Service, ref analysis.Reference) *job {
	return b.do(s, ref.String(), func(ctx context.Context) error {
		_, err := s.resolve(ctx, ref, false, false)
		return err
	})
}

// startListing is start for a repository's tag listing.
func (b *background) startListing(s *Service, repo analysis.Repository) *job {
	return b.do(s, "tags\x00"+repo.String(), func(ctx context.Context) error {
		_, err := s.listed(ctx, repo, false, ReadOptions{})
		return err
	})
}

// do runs work under key as start describes.
func (b *background) do(s *Service, key string, work func(ctx context.Context) error) *job {
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
	if b.closed || b.running >= s.opts.MaxInspections {
		return failed(ErrBusy)
	}
	j := &job{done: make(chan struct{})}
	b.jobs.Add(key, j)
	b.running++
	b.wg.Go(func() { b.run(s, key, j, work) })
	return j
}

func (b *background) run(s *Service, key string, j *job, work func(ctx context.Context) error) {
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
	b.mu.Lock()
	defer b.mu.Unlock()
	j.err, j.finished = err, s.opts.Now()
	close(j.done)
	b.running--
	if err == nil {
		if cur, ok := b.jobs.Peek(key); ok && cur == j {
			b.jobs.Remove(key)
		}
	}
}

// wait waits for j up to limit (zero: no limit) or until ctx is done.
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
		return ErrNotYet
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops new inspections and waits for those in flight, until ctx is done.
func (b *background) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
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
