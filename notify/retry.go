package notify

import (
	"net/http"
	"time"

	"github.com/imagebadger/imagebadger/registry"
)

// retryDelays are the waits before the 2nd, 3rd, … 10th attempt of a
// delivery (the 1st is immediate), as docs/API.md lists them: about 3 days in all,
// long enough for a receiver to come back from a weekend outage.
func retryDelays() []time.Duration {
	return []time.Duration{
		5 * time.Second,
		5 * time.Minute,
		30 * time.Minute,
		2 * time.Hour,
		5 * time.Hour,
		10 * time.Hour,
		14 * time.Hour,
		20 * time.Hour,
		24 * time.Hour,
	}
}

// MaxAttempts is how many times one delivery is tried before it fails.
const MaxAttempts = 10

// jitterFraction spreads retries by ±10% so that a receiver that failed a
// burst of deliveries is not hit by the whole burst again at one instant.
const jitterFraction = 0.10

// maxRetryAfter caps a receiver's Retry-After, which could otherwise park a
// delivery for ever.
const maxRetryAfter = 24 * time.Hour

// FailureWindow is how long every attempt of a subscription may fail before
// the subscription is disabled.
const FailureWindow = 5 * 24 * time.Hour

// nextDelay returns how long to wait before the next attempt after attempts
// failed ones (attempts ≥ 1), with jitter drawn from rnd (a number in
// [0, 1)) and at least retryAfter; ok is false when the delivery has had all
// its attempts.
func nextDelay(attempts int, rnd float64, retryAfter time.Duration) (d time.Duration, ok bool) {
	delays := retryDelays()
	if attempts < 1 || attempts > len(delays) {
		return 0, false
	}
	base := delays[attempts-1]
	d = time.Duration(float64(base) * (1 + jitterFraction*(2*rnd-1)))
	if retryAfter > maxRetryAfter {
		retryAfter = maxRetryAfter
	}
	if retryAfter > d {
		d = retryAfter
	}
	return d, true
}

// retryAfter reads Retry-After (seconds or an HTTP date) from a 429 or 503
// answer; other answers' Retry-After means nothing for a webhook.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0
	}
	return registry.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
}
