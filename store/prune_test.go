package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/store"
)

// TestPruneDeliveries: finished deliveries older than the cut-off go, with
// their attempts, except each subscription's latest keep (its delivery
// log); pending ones stay whatever their age; events go once no delivery
// refers to them, and only when old.
func TestPruneDeliveries(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addSub(t, s, "sub_a", "1.0", store.SubscriptionActive)
	addSub(t, s, "sub_b", "2.0", store.SubscriptionActive)
	day := 24 * time.Hour
	// sub_a: 6 old moves, 2 recent; sub_b: 1 old move. Days count from t0.
	ids := map[string]int64{}
	for i := 0; i < 8; i++ {
		at := t0.Add(time.Duration(i) * day)
		if i >= 6 {
			at = t0.Add(time.Duration(60+i) * day)
		}
		move(t, s, "1.0", fmt.Sprintf("sha256:a%d", i), fmt.Sprintf("msg_a%d", i), "image.updated", at)
	}
	move(t, s, "2.0", "sha256:b0", "msg_b0", "image.updated", t0)
	// An event nobody is subscribed to (sub_c's tag has no subscription).
	move(t, s, "3.0", "sha256:c0", "msg_c0", "image.updated", t0)

	// Deliver everything but msg_a1, which stays pending (failing, retried).
	now := t0.Add(100 * day)
	cs, err := s.ClaimDeliveries(ctx, "w", now, time.Minute, 100, 0)
	if err != nil || len(cs) != 9 {
		t.Fatalf("claimed %d, %v; want 9", len(cs), err)
	}
	for _, c := range cs {
		ids[c.WebhookID] = c.ID
		r := store.AttemptResult{DeliveryID: c.ID, Owner: "w", StartedAt: now, StatusCode: 204, Delivered: true}
		if c.WebhookID == "msg_a1" {
			r = store.AttemptResult{DeliveryID: c.ID, Owner: "w", StartedAt: now, StatusCode: 500, Error: "answered 500", NextAttemptAt: now.Add(time.Hour)}
		}
		if err := s.RecordAttempt(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	// Cut-off: 30 days after t0; keep the latest 3 of each subscription.
	p, err := s.PruneDeliveries(ctx, t0.Add(30*day), 3)
	if err != nil {
		t.Fatal(err)
	}
	// sub_a's latest 3 are a7, a6 (recent) and a5 (old but in the log);
	// a1 is pending. Gone: a0, a2, a3, a4. sub_b's only one is its latest.
	got := deliveredTo(t, s, "sub_a", "sub_b")
	want := map[string][]string{"sub_a": {"msg_a1", "msg_a5", "msg_a6", "msg_a7"}, "sub_b": {"msg_b0"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deliveries left = %v, want %v", got, want)
	}
	// Events gone: the four pruned deliveries' and msg_c0 (old, never
	// delivered to anyone).
	if p.Deliveries != 4 || p.Events != 5 {
		t.Errorf("pruned %+v, want 4 deliveries and 5 events", p)
	}
	if att, err := s.Attempts(ctx, ids["msg_a0"]); err != nil || len(att) != 0 {
		t.Errorf("attempts of a pruned delivery: %v, %v; want none", att, err)
	}
	if att, err := s.Attempts(ctx, ids["msg_a5"]); err != nil || len(att) != 1 {
		t.Errorf("attempts of a kept delivery: %v, %v; want 1", att, err)
	}
	// Nothing more to do the second time.
	if p, err := s.PruneDeliveries(ctx, t0.Add(30*day), 3); err != nil || p != (store.Pruned{}) {
		t.Errorf("second prune = %+v, %v; want nothing", p, err)
	}
}
