package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/store"
)

// BenchmarkClaimDeliveries measures one claim of a worker (32 free slots,
// 16 per receiver) from an outbox of 20,000 pending deliveries to 10
// receivers, as a large fan-out leaves it: the claim runs once per batch of
// attempts, so its cost bounds the fan-out rate. The outbox is filled by
// moves of 2,000 deliveries each, as RecordTags writes them, so each engine
// does what it does after a large fan-out.
func BenchmarkClaimDeliveries(b *testing.B) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "ib.db"))
	const subs, moves = 2000, 10
	for i := range subs {
		sub := store.Subscription{ID: fmt.Sprintf("sub_%04d", i), Repo: subRepo, Tag: "1.0",
			URL:    fmt.Sprintf("http://127.0.0.%d:1/%d", 1+i%10, i),
			Events: []string{"image.updated"}, Secret: "whsec_c2VjcmV0", TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0}
		if _, err := s.CreateSubscription(ctx, sub, store.NewDelivery{}); err != nil {
			b.Fatal(err)
		}
	}
	for m := range moves {
		move(b, s, "1.0", fmt.Sprintf("sha256:%064d", m), fmt.Sprintf("msg_%d", m), "image.updated", t0.Add(time.Duration(m)*time.Second))
	}
	if c, err := s.DeliveryCounts(ctx); err != nil || c[store.DeliveryPending] != subs*moves {
		b.Fatalf("outbox %v (%v), want %d pending", c, err, subs*moves)
	}
	now := t0.Add(time.Hour)
	for b.Loop() {
		// Each claim's leases have run out by the next one: every claim
		// sees the same outbox.
		now = now.Add(time.Minute)
		cs, err := s.ClaimDeliveries(ctx, "w", now, time.Second, 32, 16)
		if err != nil || len(cs) != 32 {
			b.Fatalf("claimed %d (%v), want 32", len(cs), err)
		}
	}
}
