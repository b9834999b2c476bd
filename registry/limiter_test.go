package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
)

// politeRegistry answers /v2/ and HEAD manifest requests, records when each
// manifest request arrived and how many were in flight at most, and answers
// with the status and headers the test sets for the next requests.
type politeRegistry struct {
	*httptest.Server
	mu       sync.Mutex
	arrivals []time.Time
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	answer   func(n int, w http.ResponseWriter) bool // true: answered
	hold     time.Duration
}

func newPoliteRegistry(t *testing.T) *politeRegistry {
	p := &politeRegistry{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		n := p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		for {
			m := p.maxSeen.Load()
			if n <= m || p.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		p.mu.Lock()
		p.arrivals = append(p.arrivals, time.Now())
		count := len(p.arrivals)
		answer := p.answer
		p.mu.Unlock()
		time.Sleep(p.hold)
		if answer != nil && answer(count, w) {
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
		w.Header().Set("Content-Length", "2")
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *politeRegistry) ref(tag string) analysis.Reference {
	return must(analysis.ParseReference(strings.TrimPrefix(p.URL, "http://") + "/acme/app:" + tag))
}

// TestRetryAfterHoldsEveryRequest: after a 429 with Retry-After, the client
// sends nothing to that registry until the time is up.
func TestRetryAfterHoldsEveryRequest(t *testing.T) {
	p := newPoliteRegistry(t)
	p.answer = func(n int, w http.ResponseWriter) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	}
	c, _ := newInspector(t, registry.Options{})
	_, _, err := c.Resolve(context.Background(), p.ref("1"))
	var ae *analysis.Error
	if !errors.Is(err, analysis.ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter != time.Second {
		t.Fatalf("first HEAD: err %v, want rate limited with Retry-After 1s", err)
	}
	if _, _, err := c.Resolve(context.Background(), p.ref("2")); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.arrivals) != 2 {
		t.Fatalf("%d requests, want 2 (no retry of a 429)", len(p.arrivals))
	}
	if gap := p.arrivals[1].Sub(p.arrivals[0]); gap < 900*time.Millisecond {
		t.Errorf("second request %s after the 429, want it held for the 1 s asked", gap)
	}
}

// TestRateLimitRemainingZeroPauses: a registry announcing an empty budget
// (Docker Hub's RateLimit-Remaining: 0;w=21600) is left alone until its reset.
func TestRateLimitRemainingZeroPauses(t *testing.T) {
	p := newPoliteRegistry(t)
	p.answer = func(n int, w http.ResponseWriter) bool {
		if n == 1 {
			w.Header().Set("RateLimit-Remaining", "0;w=21600")
			w.Header().Set("RateLimit-Reset", "1")
		}
		return false
	}
	c, _ := newInspector(t, registry.Options{})
	for _, tag := range []string{"1", "2"} {
		if _, _, err := c.Resolve(context.Background(), p.ref(tag)); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if gap := p.arrivals[1].Sub(p.arrivals[0]); gap < 900*time.Millisecond {
		t.Errorf("second request %s after an empty budget, want it held until the 1 s reset", gap)
	}
}

// TestConcurrencyPerRegistry: however many callers, at most Concurrency
// requests are in flight at one registry.
func TestConcurrencyPerRegistry(t *testing.T) {
	p := newPoliteRegistry(t)
	p.hold = 20 * time.Millisecond
	c, _ := newInspector(t, registry.Options{Concurrency: 3})
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if _, _, err := c.Resolve(context.Background(), p.ref(fmt.Sprintf("t%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if m := p.maxSeen.Load(); m > 3 || m < 2 {
		t.Errorf("%d requests in flight at most, want 3 (the limit), and some concurrency", m)
	}
}
