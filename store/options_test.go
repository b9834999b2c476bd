package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// The subscription options in the store: what is kept, how held deliveries
// coalesce, and how a pending subscription's backlog waits. (Which
// subscriptions hear an event is notify's to decide: its fan-out tests.)
// Run on both engines.

func addOpt(t *testing.T, s *store.Store, sub store.Subscription) {
	t.Helper()
	sub.Repo, sub.Secret, sub.TokenHash, sub.CreatedAt = subRepo, "whsec_c2VjcmV0", "h", t0
	if sub.URL == "" {
		sub.URL = "http://127.0.0.1:1/" + sub.ID
	}
	if sub.Status == "" {
		sub.Status = store.SubscriptionActive
	}
	if _, err := s.CreateSubscription(context.Background(), sub, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
}

func TestSubscriptionOptionsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	want := store.Subscription{ID: "sub_o", Repo: subRepo, URL: "https://api.github.com/repos/a/b/dispatches", Events: []string{"version.released"},
		Secret: "whsec_c2VjcmV0", TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0, Format: "github",
		Headers:  []store.Header{{Name: "Authorization", Value: "Bearer x"}, {Name: "X-Two", Value: "2"}},
		Tags:     store.TagFilter{Include: `^1\.`, Exclude: "-rc", Semver: "~1.4"},
		Coalesce: 90 * time.Second}
	if _, err := s.CreateSubscription(ctx, want, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Subscription(ctx, "sub_o")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("subscription (-want +got):\n%s", diff)
	}
	if got.HeaderNames()[0] != "Authorization" {
		t.Errorf("names %v", got.HeaderNames())
	}
	addOpt(t, s, store.Subscription{ID: "sub_all", Events: []string{"image.updated"}})
	specs, err := s.RepositoryFilters(ctx, subRepo)
	// In id order: sub_all (every tag), then sub_o.
	if err != nil || len(specs) != 2 || !specs[0].IsZero() || specs[1] != want.Tags {
		t.Errorf("repository filters %v, %v", specs, err)
	}
	// The same request again is the same subscription; other options are another.
	if id, err := s.SameSubscription(ctx, want); err != nil || id != "sub_o" {
		t.Errorf("same subscription: %q, %v", id, err)
	}
	other := want
	other.Tags.Semver = "~1.5"
	if _, err := s.SameSubscription(ctx, other); err == nil {
		t.Error("a subscription with other filters counted as the same")
	}
	// Headers count, in any order; so does who asked.
	reordered := want
	reordered.Headers = []store.Header{{Name: "x-two", Value: "2"}, {Name: "Authorization", Value: "Bearer x"}}
	if id, err := s.SameSubscription(ctx, reordered); err != nil || id != "sub_o" {
		t.Errorf("the same headers in another order: %q, %v", id, err)
	}
	for name, change := range map[string]func(*store.Subscription){
		"another credential": func(o *store.Subscription) {
			o.Headers = []store.Header{{Name: "Authorization", Value: "Bearer y"}, {Name: "X-Two", Value: "2"}}
		},
		"no headers":         func(o *store.Subscription) { o.Headers = nil },
		"another subscriber": func(o *store.Subscription) { o.Client = "192.0.2.7" },
	} {
		o := want
		change(&o)
		if id, err := s.SameSubscription(ctx, o); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("%s: counted as the same (%q, %v)", name, id, err)
		}
	}
	// A signed-in person is the same subscriber from any address; anyone
	// else, or another person, is not.
	byPerson := want
	byPerson.ID, byPerson.URL, byPerson.Client, byPerson.Subscriber = "sub_p", "https://api.github.com/repos/p/q/dispatches", "192.0.2.1", "person:alice"
	if _, err := s.CreateSubscription(ctx, byPerson, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Subscription(ctx, "sub_p"); got.Subscriber != "person:alice" {
		t.Errorf("subscriber %q kept", got.Subscriber)
	}
	for who, same := range map[[2]string]bool{
		{"192.0.2.9", "person:alice"}: true,
		{"192.0.2.1", ""}:             true,
		{"192.0.2.9", ""}:             false,
		{"192.0.2.9", "person:bob"}:   false,
	} {
		o := byPerson
		o.Client, o.Subscriber = who[0], who[1]
		id, err := s.SameSubscription(ctx, o)
		if same && (err != nil || id != "sub_p") || !same && !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("from %s as %q: %q, %v; want the same: %v", who[0], who[1], id, err, same)
		}
	}
}

// TestCoalescedDeliveries: the events of one key within a subscription's
// window become one delivery, held until the window's end, carrying the
// latest event and the first one's payload; an event after the window
// starts another; a subscription without a window gets each. The fan-out
// says which deliveries coalesce (and until when); the store joins them.
func TestCoalescedDeliveries(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addOpt(t, s, store.Subscription{ID: "sub_held", Tag: "1.0", Events: []string{"image.updated"}, Coalesce: time.Minute})
	addOpt(t, s, store.Subscription{ID: "sub_each", Tag: "1.0", Events: []string{"image.updated"}})
	moveAt := func(id, digest string, at time.Time) {
		record(t, s, subRepo, "1.0", analysis.Descriptor{Digest: digest, MediaType: "m"}, at)
		tell(t, s, store.OutboxEvent{Key: id, ID: id, Type: "image.updated", Registry: subRepo.Registry, Repository: subRepo.Name,
			Tag: "1.0", Payload: []byte(`{"id":"` + id + `"}`), At: at},
			store.EventDelivery{SubscriptionID: "sub_held", CoalesceKey: "image.updated " + subRepo.WithTag("1.0").String(), HoldUntil: at.Add(time.Minute)},
			store.EventDelivery{SubscriptionID: "sub_each"})
	}
	moveAt("msg_1", "sha256:a", t0)
	moveAt("msg_2", "sha256:b", t0.Add(20*time.Second))
	moveAt("msg_3", "sha256:c", t0.Add(40*time.Second))
	ds, err := s.Deliveries(ctx, "sub_held", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Coalesced != 3 || !ds[0].HeldUntil.Equal(t0.Add(time.Minute)) || ds[0].WebhookID != "msg_1" {
		t.Fatalf("held deliveries %+v, want one coalescing three, held until %s", ds, t0.Add(time.Minute))
	}
	if each, _ := s.Deliveries(ctx, "sub_each", 10); len(each) != 3 {
		t.Errorf("without a window: %d deliveries, want 3", len(each))
	}
	// Not claimable before the window's end.
	cs, err := s.ClaimDeliveries(ctx, "w", t0.Add(59*time.Second), time.Minute, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.SubscriptionID == "sub_held" {
			t.Errorf("claimed the held delivery before its window ended")
		}
	}
	cs, err = s.ClaimDeliveries(ctx, "w2", t0.Add(time.Minute), time.Minute, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var held *store.Claim
	for i := range cs {
		if cs[i].SubscriptionID == "sub_held" {
			held = &cs[i]
		}
	}
	if held == nil || string(held.Payload) != `{"id":"msg_3"}` || string(held.FirstPayload) != `{"id":"msg_1"}` {
		t.Fatalf("held claim %+v, want the last payload with the first's", held)
	}
	// Claimed: a later event no longer joins it.
	moveAt("msg_4", "sha256:d", t0.Add(61*time.Second))
	if ds, _ := s.Deliveries(ctx, "sub_held", 10); len(ds) != 2 || ds[0].Coalesced != 1 || ds[0].HeldUntil.IsZero() {
		t.Errorf("after the window: %+v, want a second delivery, held anew", ds)
	}
}

// TestPendingSubscriptionsBacklog: what is queued for a pending
// subscription waits for its ping; once the ping is delivered the backlog
// is claimable, and with a per-receiver bound one at a time, oldest first.
func TestPendingSubscriptionsBacklog(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	sub := store.Subscription{ID: "sub_p", Repo: subRepo, Tag: "1.0", URL: "http://127.0.0.1:1/p", Events: []string{"image.updated"},
		Secret: "whsec_c2VjcmV0", TokenHash: "h", Status: store.SubscriptionPending, CreatedAt: t0}
	ping, err := s.CreateSubscription(ctx, sub, store.NewDelivery{WebhookID: "msg_ping", Type: "webhook.ping", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		move(t, s, "1.0", fmt.Sprintf("sha256:%d", i), fmt.Sprintf("msg_%d", i), "image.updated", t0.Add(time.Duration(i)*time.Second))
	}
	for _, bound := range []int{0, 16} {
		cs, err := s.ClaimDeliveries(ctx, fmt.Sprintf("w%d", bound), t0.Add(time.Hour), time.Minute, 10, bound)
		if err != nil || len(cs) != 1 || cs[0].ID != ping.ID {
			t.Fatalf("bound %d: claimed %+v (%v), want the ping alone", bound, cs, err)
		}
		if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: cs[0].ID, Owner: fmt.Sprintf("w%d", bound), StartedAt: t0.Add(time.Hour),
			StatusCode: 503, Error: "answered 503", NextAttemptAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	cs, _ := s.ClaimDeliveries(ctx, "w", t0.Add(time.Hour), time.Minute, 10, 16)
	if len(cs) != 1 || cs[0].ID != ping.ID {
		t.Fatalf("claimed %+v, want the ping", cs)
	}
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: ping.ID, Owner: "w", StartedAt: t0.Add(time.Hour), StatusCode: 200, Delivered: true}); err != nil {
		t.Fatal(err)
	}
	var order []string
	now := t0.Add(time.Hour)
	for range 4 {
		cs, err := s.ClaimDeliveries(ctx, "w", now, time.Minute, 10, 16)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) > 1 {
			t.Fatalf("claimed %d deliveries of one subscription at once", len(cs))
		}
		if len(cs) == 0 {
			break
		}
		order = append(order, cs[0].WebhookID)
		// While one is in flight, nothing else of the subscription is claimed.
		if more, _ := s.ClaimDeliveries(ctx, "w2", now, time.Minute, 10, 16); len(more) != 0 {
			t.Errorf("claimed %s while %s was in flight", more[0].WebhookID, cs[0].WebhookID)
		}
		if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: cs[0].ID, Owner: "w", StartedAt: now, StatusCode: 200, Delivered: true}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"msg_0", "msg_1", "msg_2"}, order); diff != "" {
		t.Errorf("backlog order (-want +got):\n%s", diff)
	}
}
