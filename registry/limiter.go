package registry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hostLimiter keeps the service a polite client: at most n requests in
// flight per registry host, and none at all while a registry has asked us to
// wait (429 with Retry-After, or RateLimit-Remaining: 0 until its reset).
type hostLimiter struct {
	n     int
	now   func() time.Time
	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	slots chan struct{}
	until time.Time // no request before this time
}

func newHostLimiter(n int) *hostLimiter {
	if n < 1 {
		n = 1
	}
	return &hostLimiter{n: n, now: time.Now, hosts: map[string]*hostState{}}
}

func (l *hostLimiter) state(host string) *hostState {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.hosts[host]
	if !ok {
		h = &hostState{slots: make(chan struct{}, l.n)}
		l.hosts[host] = h
	}
	return h
}

// acquire waits for a slot and for any pause the host asked for.
func (l *hostLimiter) acquire(ctx context.Context, host string) (release func(), err error) {
	h := l.state(host)
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		l.mu.Lock()
		wait := h.until.Sub(l.now())
		l.mu.Unlock()
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			<-h.slots
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-h.slots }) }, nil
}

// pause stops requests to host for d (the longest pause asked wins).
func (l *hostLimiter) pause(host string, d time.Duration) {
	if d <= 0 {
		return
	}
	h := l.state(host)
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.now().Add(d); until.After(h.until) {
		h.until = until
	}
}

// observe reads a response's rate-limit headers and pauses the host when it
// has no budget left.
func (l *hostLimiter) observe(host string, resp *http.Response) {
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		d := ParseRetryAfter(resp.Header.Get("Retry-After"), l.now())
		if d == 0 && resp.StatusCode == http.StatusTooManyRequests {
			d = 5 * time.Second
		}
		l.pause(host, min(d, maxPause))
	case leadingInt(resp.Header.Get("RateLimit-Remaining")) == 0:
		// Docker Hub: "RateLimit-Remaining: 0;w=21600"; the budget comes
		// back at the reset (seconds), else after Retry-After.
		d := time.Duration(leadingInt(resp.Header.Get("RateLimit-Reset"))) * time.Second
		if d <= 0 {
			d = ParseRetryAfter(resp.Header.Get("Retry-After"), l.now())
		}
		if d <= 0 {
			d = time.Second
		}
		l.pause(host, min(d, maxPause))
	}
}

// maxPause bounds how long one answer can silence a registry, so a wrong
// header cannot stop the service for hours.
const maxPause = 10 * time.Minute

// leadingInt parses the integer at the start of v ("12;w=60" → 12); -1 when absent.
func leadingInt(v string) int {
	v = strings.TrimSpace(v)
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(v[:end])
	if err != nil {
		return -1
	}
	return n
}

// limitedRelease releases the host slot when the body is closed.
type releasingBody struct {
	*limitedBody
	release func()
}

func (b *releasingBody) Close() error {
	err := b.limitedBody.Close()
	b.release()
	return err
}
