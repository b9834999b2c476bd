package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/store"
)

func TestReceiverOf(t *testing.T) {
	for raw, want := range map[string]string{
		"https://CI.Example.com/hook":      "https://ci.example.com:443",
		"https://ci.example.com:443/other": "https://ci.example.com:443",
		"http://127.0.0.1:8080/a?b=c":      "http://127.0.0.1:8080",
		"http://[::1]/x":                   "http://[::1]:80",
		"not a url at all":                 "not a url at all",
	} {
		if got := store.ReceiverOf(raw); got != want {
			t.Errorf("ReceiverOf(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestClaimBoundsEachReceiver: with a bound per receiver, a receiver with
// many due deliveries gets only what its attempts in flight leave of the
// bound, and the other receivers' deliveries, due later, are claimed in
// the same batch instead of waiting behind it.
func TestClaimBoundsEachReceiver(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	add := func(id, tag, url string) {
		sub := store.Subscription{ID: id, Repo: subRepo, Tag: tag, URL: url, Events: []string{"image.updated"},
			Secret: "whsec_c2VjcmV0", TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0}
		if _, err := s.CreateSubscription(ctx, sub, store.NewDelivery{}); err != nil {
			t.Fatal(err)
		}
	}
	// Four subscriptions on the slow receiver, one elsewhere. (A
	// subscription has one attempt in flight at a time, so the bound is
	// about several subscriptions sharing a receiver.)
	add("sub_slow1", "1.0", "http://slow.example:8080/a")
	add("sub_slow2", "2.0", "http://SLOW.example:8080/b")
	add("sub_slow3", "2.0", "http://slow.example:8080/c")
	add("sub_slow4", "2.0", "http://slow.example:8080/d")
	add("sub_fast", "3.0", "https://fast.example/hook")
	for i := 0; i < 5; i++ {
		move(t, s, "1.0", fmt.Sprintf("sha256:a%d", i), fmt.Sprintf("msg_a%d", i), "image.updated", t0.Add(time.Duration(i)*time.Second))
		move(t, s, "2.0", fmt.Sprintf("sha256:b%d", i), fmt.Sprintf("msg_b%d", i), "image.updated", t0.Add(time.Duration(i)*time.Second))
	}
	move(t, s, "3.0", "sha256:c0", "msg_c0", "image.updated", t0.Add(time.Minute)) // due last
	now := t0.Add(time.Hour)
	slow, fast := "http://slow.example:8080", "https://fast.example:443"

	byReceiver := func(cs []store.Claim) map[string]int {
		out := map[string]int{}
		for _, c := range cs {
			out[c.Receiver]++
		}
		return out
	}
	// One attempt already in flight to the slow receiver (the oldest due,
	// leased by another worker), bound 3: two more.
	if cs, err := s.ClaimDeliveries(ctx, "w0", now, time.Minute, 1, 3); err != nil || len(cs) != 1 || cs[0].Receiver != slow {
		t.Fatalf("first claim %+v (%v), want one of %s", cs, err, slow)
	}
	cs, err := s.ClaimDeliveries(ctx, "w", now, time.Minute, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := byReceiver(cs); got[slow] != 2 || got[fast] != 1 || len(cs) != 3 {
		t.Errorf("claimed by receiver %v, want 2 of %s and 1 of %s", got, slow, fast)
	}
	if cs[0].WebhookID != "msg_a0" && cs[0].WebhookID != "msg_b0" {
		t.Errorf("first claim %s, want the oldest due", cs[0].WebhookID)
	}
	// The slow receiver at its bound (three leases, whoever holds them):
	// nothing of it is claimed.
	if cs, err := s.ClaimDeliveries(ctx, "w2", now, time.Minute, 10, 3); err != nil || len(cs) != 0 {
		t.Errorf("at its bound the slow receiver still got %d claims (%v)", len(cs), err)
	}
	// Once the leases have expired (their holders died), the bound counts
	// them no more.
	if cs, err := s.ClaimDeliveries(ctx, "w4", now.Add(2*time.Minute), time.Minute, 10, 3); err != nil || byReceiver(cs)[slow] != 3 {
		t.Errorf("after the leases expired: %v (%v), want 3 of %s", byReceiver(cs), err, slow)
	}
	// Without a bound, everything due and free is claimed.
	if cs, err := s.ClaimDeliveries(ctx, "w3", now.Add(4*time.Minute), time.Minute, 40, 0); err != nil || len(cs) != 21 {
		t.Errorf("unbounded claim: %d claims (%v), want all 21", len(cs), err)
	}
}

// TestReceiversOfOlderSubscriptionsAreFilled: subscriptions stored before
// receivers were recorded get theirs when the store is opened.
func TestReceiversOfOlderSubscriptionsAreFilled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	s := open(t, path)
	addSub(t, s, "sub_old", "1.0", store.SubscriptionActive)
	s.Close()
	if _, err := rawDB(t, path).Exec(`UPDATE subscriptions SET receiver = ''`); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	move(t, s, "1.0", "sha256:aa", "msg_1", "image.updated", t0)
	cs, err := s.ClaimDeliveries(ctx, "w", t0.Add(time.Hour), time.Minute, 10, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claimed %d (%v), want 1", len(cs), err)
	}
	if want := store.ReceiverOf(cs[0].URL); cs[0].Receiver != want || want == "" {
		t.Errorf("receiver %q, want %q", cs[0].Receiver, want)
	}
}
