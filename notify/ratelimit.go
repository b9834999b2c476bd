package notify

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterKeys bounds the memory one limiter may use; past it, clients
// whose buckets have refilled are forgotten (they would start full anyway).
const maxLimiterKeys = 10000

// keyedLimiter is a token bucket (golang.org/x/time/rate) per key, a client
// address: burst tokens, refilled at burst per period.
type keyedLimiter struct {
	mu      sync.Mutex
	burst   int
	every   rate.Limit
	buckets map[string]*rate.Limiter
}

func newKeyedLimiter(burst int, period time.Duration) *keyedLimiter {
	return &keyedLimiter{burst: burst, every: rate.Limit(float64(burst) / period.Seconds()), buckets: map[string]*rate.Limiter{}}
}

// allow takes one token of key's bucket at now. When none is left it
// returns false and how long until one is.
func (l *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l.burst <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxLimiterKeys {
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

// prune forgets buckets that have refilled by now.
func (l *keyedLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}
