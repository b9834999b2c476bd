// Package ratelimit gives each client (an address) its own token bucket,
// built on golang.org/x/time/rate: subscription creation and on-demand
// refreshes are the two things one client could otherwise use to make this
// service hammer registries or webhook receivers.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxKeys bounds the memory one limiter may use; past it, clients whose
// buckets have refilled are forgotten (they would start full anyway).
const maxKeys = 10000

// Limit is how many events one key may have: Burst at once, refilled at
// Burst per Period. The zero Limit is "not set", for options structs whose
// zero values mean their defaults; a negative Burst allows everything.
type Limit struct {
	Burst  int
	Period time.Duration
}

// IsZero reports whether l is unset.
func (l Limit) IsZero() bool { return l == Limit{} }

// Keyed is a token bucket per key: burst tokens, refilled at burst per period.
type Keyed struct {
	mu      sync.Mutex
	burst   int
	every   rate.Limit
	buckets map[string]*rate.Limiter
}

// New returns a limiter allowing each key l.Burst events per l.Period. A
// burst of zero or less allows everything.
func New(l Limit) *Keyed {
	if l.Period <= 0 {
		l.Period = time.Hour
	}
	return &Keyed{burst: l.Burst, every: rate.Limit(float64(l.Burst) / l.Period.Seconds()), buckets: map[string]*rate.Limiter{}}
}

// Allow takes one token of key's bucket at now. When none is left it
// returns false and how long until one is, for a Retry-After.
func (l *Keyed) Allow(key string, now time.Time) (bool, time.Duration) {
	if l.burst <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxKeys {
			l.prune(now)
		}
		b = rate.NewLimiter(l.every, l.burst)
		l.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Exhausted reports whether key has no token left at now, without taking
// one, and how long until it has: for limits counted by failures, where a
// request is refused while the failures so far have used the bucket up.
func (l *Keyed) Exhausted(key string, now time.Time) (bool, time.Duration) {
	if l.burst <= 0 {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return false, 0
	}
	if tokens := b.TokensAt(now); tokens < 1 {
		return true, time.Duration((1 - tokens) / float64(l.every) * float64(time.Second))
	}
	return false, 0
}

// prune forgets buckets that have refilled by now.
func (l *Keyed) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}
