package notify

import (
	"sync"
	"time"
)

// maxLimiterKeys bounds the memory one limiter may use; past it, clients
// whose buckets have refilled are forgotten (they would start full anyway).
const maxLimiterKeys = 10000

// keyedLimiter is a token bucket per key (a client address): burst tokens,
// refilled at burst per period. It is small enough not to need a
// dependency, and it keeps no state beyond its own map.
type keyedLimiter struct {
	mu      sync.Mutex
	burst   float64
	period  time.Duration
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newKeyedLimiter(burst int, period time.Duration) *keyedLimiter {
	return &keyedLimiter{burst: float64(burst), period: period, buckets: map[string]*bucket{}}
}

// allow takes one token of key's bucket at now. When none is left it
// returns false and how long until one is.
func (l *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l.burst <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rate := l.burst / l.period.Seconds() // tokens per second
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxLimiterKeys {
			l.prune(now, rate)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed*rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return false, wait
}

// prune forgets buckets that have refilled by now.
func (l *keyedLimiter) prune(now time.Time, rate float64) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}
