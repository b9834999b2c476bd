package ratelimit_test

import (
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/ratelimit"
)

func TestKeyedBuckets(t *testing.T) {
	l := ratelimit.New(ratelimit.Limit{Burst: 3, Period: time.Hour})
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("event %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := l.Allow("a", t0)
	if ok || wait != 20*time.Minute {
		t.Errorf("4th event: ok=%v wait=%s, want refused with 20m (an hour / 3)", ok, wait)
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Error("another client shares a's bucket")
	}
	if ok, _ := l.Allow("a", t0.Add(20*time.Minute)); !ok {
		t.Error("a token did not come back after 20 minutes")
	}
	if ok, _ := ratelimit.New(ratelimit.Limit{Burst: 0, Period: time.Hour}).Allow("x", t0); !ok {
		t.Error("a zero burst should allow everything")
	}
}

// TestExhaustedTakesNothing: Exhausted says whether Allow would refuse,
// without using a token.
func TestExhaustedTakesNothing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.New(ratelimit.Limit{Burst: 2, Period: time.Minute})
	for range 5 {
		if ex, _ := l.Exhausted("a", now); ex {
			t.Fatal("exhausted before any use")
		}
	}
	l.Allow("a", now)
	l.Allow("a", now)
	ex, wait := l.Exhausted("a", now)
	if !ex || wait <= 0 || wait > 30*time.Second {
		t.Errorf("after the burst: exhausted %v, wait %s; want true and about 30 s", ex, wait)
	}
	if ex, _ := l.Exhausted("a", now.Add(31*time.Second)); ex {
		t.Error("still exhausted once a token came back")
	}
	if ex, _ := l.Exhausted("b", now); ex {
		t.Error("another key is exhausted")
	}
}
