package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

var (
	subRepo = analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/base"}
	t0      = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
)

func addSub(t testing.TB, s *store.Store, id, tag, status string, events ...string) {
	t.Helper()
	if len(events) == 0 {
		events = []string{"image.updated", "base.updated"}
	}
	sub := store.Subscription{ID: id, Repo: subRepo, Tag: tag, URL: "http://127.0.0.1:1/" + id, Events: events,
		Secret: "whsec_c2VjcmV0", TokenHash: "h", Status: status, CreatedAt: t0}
	if _, err := s.CreateSubscription(context.Background(), sub, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
}

// move records repo:tag moving to digest and, when it moved, tells one
// event of type typ (webhook-id eventID) to every subscription the store
// selects for it, as notify's fan-out does for subscriptions without
// filters.
func move(t testing.TB, s *store.Store, tag, digest, eventID, typ string, at time.Time) {
	t.Helper()
	if c := record(t, s, subRepo, tag, analysis.Descriptor{Digest: digest, MediaType: "m"}, at); !c.Moved {
		return
	}
	subs, err := s.Subscribers(context.Background(), store.SubscriberQuery{Repo: subRepo, Type: typ, Tag: tag,
		Tagged: true, RepositoryWide: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ds []store.EventDelivery
	for _, sub := range subs {
		ds = append(ds, store.EventDelivery{SubscriptionID: sub.ID})
	}
	tell(t, s, store.OutboxEvent{Key: eventID, ID: eventID, Type: typ, Registry: subRepo.Registry, Repository: subRepo.Name, Tag: tag,
		Payload: []byte(`{"type":"` + typ + `"}`), At: at}, ds...)
}

// tell stores e with its deliveries ds (their event and type filled in)
// in one step of the fan-out, as notify's does.
func tell(t testing.TB, s *store.Store, e store.OutboxEvent, ds ...store.EventDelivery) int {
	t.Helper()
	ctx := context.Background()
	cur, err := s.ClaimFanOut(ctx, "test", e.At, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ds {
		ds[i].EventKey, ds[i].Type, ds[i].At = e.Key, e.Type, e.At
	}
	n, err := s.CommitFanOut(ctx, store.FanOutStep{Owner: "test", From: cur, To: cur, Now: e.At, Lease: time.Minute,
		Events: []store.OutboxEvent{e}, Deliveries: ds})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseFanOut(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	return n
}

func deliveredTo(t *testing.T, s *store.Store, subs ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, id := range subs {
		ds, err := s.Deliveries(context.Background(), id, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			out[id] = append(out[id], d.WebhookID)
		}
		sort.Strings(out[id])
	}
	return out
}

// TestSubscribersOfAnEvent checks which subscriptions the store offers the
// fan-out for an event: every pending or active subscription of its tag or
// of its whole repository that wants its type, and no other (a pending
// one's wait for its ping: TestPendingSubscriptionsBacklog); an audience of
// the tag's alone or the repository's alone narrows it.
func TestSubscribersOfAnEvent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addSub(t, s, "sub_tag", "1.0", store.SubscriptionActive)
	addSub(t, s, "sub_repo", "", store.SubscriptionActive)
	addSub(t, s, "sub_other_tag", "2.0", store.SubscriptionActive)
	addSub(t, s, "sub_pending", "1.0", store.SubscriptionPending)
	addSub(t, s, "sub_disabled", "1.0", store.SubscriptionDisabled)
	addSub(t, s, "sub_base_only", "1.0", store.SubscriptionActive, "base.updated")

	move(t, s, "1.0", "sha256:aa", "msg_1", "image.updated", t0)
	move(t, s, "2.0", "sha256:bb", "msg_2", "image.updated", t0)
	move(t, s, "1.0", "sha256:cc", "msg_3", "base.updated", t0)
	// No move, nothing to tell.
	move(t, s, "1.0", "sha256:cc", "msg_never", "image.updated", t0)

	got := deliveredTo(t, s, "sub_tag", "sub_repo", "sub_other_tag", "sub_pending", "sub_disabled", "sub_base_only")
	want := map[string][]string{
		"sub_tag":       {"msg_1", "msg_3"},
		"sub_repo":      {"msg_1", "msg_2", "msg_3"},
		"sub_other_tag": {"msg_2"},
		"sub_pending":   {"msg_1", "msg_3"},
		"sub_base_only": {"msg_3"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries by subscription (-want +got):\n%s", diff)
	}
	// Events of other repositories reach nobody here.
	other := analysis.Repository{Registry: subRepo.Registry, Name: "acme/other"}
	if subs, err := s.Subscribers(context.Background(), store.SubscriberQuery{Repo: other, Type: "image.updated", Tag: "1.0",
		Tagged: true, RepositoryWide: true, Limit: 10}); err != nil || len(subs) != 0 {
		t.Errorf("subscribers of another repository: %v, %v", subs, err)
	}
	for _, tc := range []struct {
		tagged, repositoryWide bool
		want                   []string
	}{
		{true, false, []string{"sub_base_only", "sub_pending", "sub_tag"}},
		{false, true, []string{"sub_repo"}},
		{true, true, []string{"sub_base_only", "sub_pending", "sub_repo", "sub_tag"}},
	} {
		var ids []string
		for after := ""; ; {
			subs, err := s.Subscribers(context.Background(), store.SubscriberQuery{Repo: subRepo, Type: "base.updated", Tag: "1.0",
				Tagged: tc.tagged, RepositoryWide: tc.repositoryWide, After: after, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(subs) == 0 {
				break
			}
			ids, after = append(ids, subs[0].ID), subs[0].ID
		}
		if diff := cmp.Diff(tc.want, ids); diff != "" {
			t.Errorf("tagged %v, repository-wide %v, one a page (-want +got):\n%s", tc.tagged, tc.repositoryWide, diff)
		}
	}
}

// TestFanOutStepIsAllOrNothing checks the fan-out's atomicity: a step that
// cannot be written (a delivery naming no event of the step) writes
// nothing, and leaves the cursor where it was.
func TestFanOutStepIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addSub(t, s, "sub_tag", "1.0", store.SubscriptionActive)
	move(t, s, "1.0", "sha256:aa", "msg_first", "image.updated", t0)
	cur, err := s.ClaimFanOut(ctx, "test", t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CommitFanOut(ctx, store.FanOutStep{Owner: "test", From: cur, To: store.FanOutCursor{Position: cur.Position + 1}, Now: t0,
		Lease: time.Minute, Events: []store.OutboxEvent{{Key: "k-new", ID: "msg_new", Type: "image.updated", Registry: subRepo.Registry,
			Repository: subRepo.Name, Tag: "1.0", Payload: []byte(`{}`), At: t0}},
		Deliveries: []store.EventDelivery{{SubscriptionID: "sub_tag", EventKey: "k-new", Type: "image.updated"},
			{SubscriptionID: "sub_tag", EventKey: "k-nowhere", Type: "image.updated"}}})
	if err == nil {
		t.Fatal("want an error for a delivery of no event")
	}
	if got := deliveredTo(t, s, "sub_tag"); !cmp.Equal(got["sub_tag"], []string{"msg_first"}) {
		t.Errorf("deliveries = %v, want only the first event's", got)
	}
	if again, err := s.ClaimFanOut(ctx, "test", t0, time.Minute); err != nil || again != cur {
		t.Errorf("cursor after the failed step: %+v, %v; want %+v", again, err, cur)
	}
}

func TestClaimLeasesAndAttempts(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addSub(t, s, "sub_a", "1.0", store.SubscriptionActive)
	for i, id := range []string{"msg_1", "msg_2", "msg_3"} {
		move(t, s, "1.0", "sha256:"+id, id, "image.updated", t0.Add(time.Duration(i)*time.Second))
	}
	lease := time.Minute
	now := t0.Add(10 * time.Second)

	// Not due yet: nothing to claim.
	if cs, err := s.ClaimDeliveries(ctx, "w1", t0.Add(-time.Second), lease, 10, 0); err != nil || len(cs) != 0 {
		t.Fatalf("claim before due = %d, %v", len(cs), err)
	}
	cs, err := s.ClaimDeliveries(ctx, "w1", now, lease, 2, 0)
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	if cs[0].WebhookID != "msg_1" || cs[0].URL != "http://127.0.0.1:1/sub_a" || cs[0].Secret != "whsec_c2VjcmV0" ||
		string(cs[0].Payload) != `{"type":"image.updated"}` || cs[0].Attempts != 0 {
		t.Errorf("claim[0] = %+v", cs[0])
	}
	// A second worker gets only what is left.
	cs2, err := s.ClaimDeliveries(ctx, "w2", now, lease, 10, 0)
	if err != nil || len(cs2) != 1 || cs2[0].WebhookID != "msg_3" {
		t.Fatalf("second claim = %+v, %v", cs2, err)
	}
	// w2 cannot record w1's attempt.
	err = s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: cs[0].ID, Owner: "w2", StartedAt: now, Delivered: true})
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("record by non-owner: err = %v, want ErrLeaseLost", err)
	}
	// w1 fails msg_1 (retry later) and delivers msg_2.
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: cs[0].ID, Owner: "w1", StartedAt: now, Duration: 3 * time.Millisecond,
		StatusCode: 500, Error: "answered 500", Response: "oops", NextAttemptAt: now.Add(5 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: cs[1].ID, Owner: "w1", StartedAt: now, StatusCode: 204, Delivered: true}); err != nil {
		t.Fatal(err)
	}
	// msg_3's holder dies: after its lease expires, another worker takes it.
	if cs, _ := s.ClaimDeliveries(ctx, "w3", now.Add(lease-time.Millisecond), lease, 10, 0); len(cs) != 1 || cs[0].WebhookID != "msg_1" {
		t.Fatalf("claim before lease expiry = %+v, want only msg_1 (due again)", cs)
	}
	cs3, _ := s.ClaimDeliveries(ctx, "w3", now.Add(lease), lease, 10, 0)
	if len(cs3) != 1 || cs3[0].WebhookID != "msg_3" {
		t.Fatalf("claim after lease expiry = %+v, want msg_3", cs3)
	}
	att, err := s.Attempts(ctx, cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Attempt{{Attempt: 1, StartedAt: now, Duration: 3 * time.Millisecond, StatusCode: 500, Error: "answered 500", Response: "oops"}}
	if diff := cmp.Diff(want, att); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	ds, _ := s.Deliveries(ctx, "sub_a", 10)
	status := map[string]string{}
	for _, d := range ds {
		status[d.WebhookID] = d.Status
	}
	if diff := cmp.Diff(map[string]string{"msg_1": "pending", "msg_2": "delivered", "msg_3": "pending"}, status); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

// TestConcurrentClaimsNeverOverlap has several workers claim at once; every
// delivery must be claimed by exactly one.
func TestConcurrentClaimsNeverOverlap(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	for i := range 20 {
		addSub(t, s, "sub_"+string(rune('a'+i)), "1.0", store.SubscriptionActive)
	}
	move(t, s, "1.0", "sha256:aa", "msg_1", "image.updated", t0)
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 5 {
		owner := "w" + string(rune('0'+w))
		wg.Go(func() {
			for {
				cs, err := s.ClaimDeliveries(ctx, owner, t0, time.Minute, 3, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					if prev, ok := seen[c.ID]; ok {
						t.Errorf("delivery %d claimed by %s and %s", c.ID, prev, owner)
					}
					seen[c.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Errorf("claimed %d deliveries, want 20", len(seen))
	}
}

func TestSubscriptionLifecycle(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	sub := store.Subscription{ID: "sub_x", Repo: subRepo, Tag: "", URL: "https://example.com/h", Events: []string{"image.updated"},
		Secret: "whsec_c2VjcmV0", TokenHash: "abc", Status: store.SubscriptionPending, Client: "192.0.2.1", CreatedAt: t0}
	c, err := s.CreateSubscription(ctx, sub, store.NewDelivery{WebhookID: "msg_ping", Type: "webhook.ping", Payload: []byte(`{"p":1}`),
		LeaseOwner: "w", LeaseUntil: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	pingID := c.ID
	got, err := s.Subscription(ctx, "sub_x")
	if err != nil {
		t.Fatal(err)
	}
	sub.Format = store.FormatStandard // the default, stored as such
	if diff := cmp.Diff(sub, got); diff != "" {
		t.Errorf("subscription (-want +got):\n%s", diff)
	}
	if refs, _ := s.SubscribedImages(ctx); !cmp.Equal(refs, []analysis.Reference{{Repository: subRepo}}) {
		t.Errorf("subscribed images = %v", refs)
	}
	if n, mine, _ := s.CountSubscriptions(ctx, subRepo, "", sub.Client); n != 1 || mine != 1 {
		t.Errorf("count = %d, %d from its client", n, mine)
	}
	if n, mine, _ := s.CountSubscriptions(ctx, subRepo, "", "192.0.2.99"); n != 1 || mine != 0 {
		t.Errorf("count = %d, %d from another client", n, mine)
	}
	// The ping is due at once, carries its own payload and is leased to its
	// creator's worker, so no other claims it; a 2xx activates.
	if string(c.Payload) != `{"p":1}` || c.SubscriptionStatus != store.SubscriptionPending || c.URL != sub.URL || c.Secret != sub.Secret {
		t.Fatalf("ping claim = %+v", c)
	}
	if cs, _ := s.ClaimDeliveries(ctx, "w2", t0, time.Minute, 10, 0); len(cs) != 0 {
		t.Errorf("a ping leased to its creator was claimed by another worker: %+v", cs)
	}
	if cs, _ := s.ClaimDeliveries(ctx, "w2", t0.Add(2*time.Minute), time.Minute, 10, 0); len(cs) != 1 || cs[0].ID != pingID {
		t.Errorf("once the creator's lease expired, the ping was not claimable: %+v", cs)
	}
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: pingID, Owner: "w", StartedAt: t0, StatusCode: 200, Delivered: true}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("the creator recorded an attempt after losing its lease: %v", err)
	}
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: pingID, Owner: "w2", StartedAt: t0, StatusCode: 200, Delivered: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Subscription(ctx, "sub_x"); got.Status != store.SubscriptionActive {
		t.Errorf("status after ping = %s", got.Status)
	}
	if err := s.DeleteSubscription(ctx, "sub_x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscription(ctx, "sub_x"); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("after delete: err = %v", err)
	}
	if err := s.DeleteSubscription(ctx, "sub_x"); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("second delete: err = %v", err)
	}
	if ds, _ := s.Deliveries(ctx, "sub_x", 10); len(ds) != 0 {
		t.Errorf("deliveries survive their subscription: %v", ds)
	}
}

func TestDisablingFailsPendingDeliveries(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	addSub(t, s, "sub_a", "1.0", store.SubscriptionActive)
	move(t, s, "1.0", "sha256:aa", "msg_1", "image.updated", t0)
	move(t, s, "1.0", "sha256:bb", "msg_2", "image.updated", t0)
	cs, _ := s.ClaimDeliveries(ctx, "w", t0, time.Minute, 1, 0)
	window := 5 * 24 * time.Hour
	// A first failure starts the run; not yet disabled.
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: cs[0].ID, Owner: "w", StartedAt: t0, StatusCode: 500,
		NextAttemptAt: t0.Add(window), FailureWindow: window}); err != nil {
		t.Fatal(err)
	}
	if sub, _ := s.Subscription(ctx, "sub_a"); sub.Status != store.SubscriptionActive || !sub.FailingSince.Equal(t0) {
		t.Fatalf("after one failure: %s since %v", sub.Status, sub.FailingSince)
	}
	// Five days of failures later, the next failure disables it.
	later := t0.Add(window)
	cs, _ = s.ClaimDeliveries(ctx, "w", later, time.Minute, 10, 0)
	if len(cs) != 2 {
		t.Fatalf("claimed %d", len(cs))
	}
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: cs[0].ID, Owner: "w", StartedAt: later, StatusCode: 500,
		NextAttemptAt: later.Add(time.Hour), FailureWindow: window}); err != nil {
		t.Fatal(err)
	}
	sub, _ := s.Subscription(ctx, "sub_a")
	if sub.Status != store.SubscriptionDisabled || sub.StatusReason == "" {
		t.Errorf("after 5 days of failures: %s (%s)", sub.Status, sub.StatusReason)
	}
	if c, _ := s.DeliveryCounts(ctx); c[store.DeliveryFailed] != 2 || c[store.DeliveryPending] != 0 {
		t.Errorf("delivery counts = %v, want all failed", c)
	}
	// A disabled subscription's deliveries are never claimed again.
	if cs, _ := s.ClaimDeliveries(ctx, "w", later.Add(48*time.Hour), time.Minute, 10, 0); len(cs) != 0 {
		t.Errorf("claimed %d deliveries of a disabled subscription", len(cs))
	}
}

// A pending subscription whose ping fails every attempt can never become
// active; it is disabled, and what was queued for it while pending fails
// with it instead of waiting for ever.
func TestAPingFailedForGoodDisablesThePendingSubscription(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	sub := store.Subscription{ID: "sub_p", Repo: subRepo, Tag: "1.0", URL: "http://127.0.0.1:1/p", Events: []string{"image.updated"},
		Secret: "whsec_c2VjcmV0", TokenHash: "h", Status: store.SubscriptionPending, CreatedAt: t0}
	ping, err := s.CreateSubscription(ctx, sub, store.NewDelivery{WebhookID: "msg_ping", Type: "webhook.ping", Payload: []byte(`{}`),
		LeaseOwner: "w", LeaseUntil: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	move(t, s, "1.0", "sha256:aa", "msg_1", "image.updated", t0)
	// A failure with a next attempt leaves it pending …
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: ping.ID, Owner: "w", StartedAt: t0, StatusCode: 500,
		NextAttemptAt: t0.Add(time.Hour), FailureWindow: 5 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Subscription(ctx, "sub_p"); got.Status != store.SubscriptionPending {
		t.Fatalf("after a failed ping with retries left: %s", got.Status)
	}
	// … the last one (no next attempt) disables it.
	cs, _ := s.ClaimDeliveries(ctx, "w", t0.Add(time.Hour), time.Minute, 10, 0)
	if len(cs) != 1 || cs[0].ID != ping.ID {
		t.Fatalf("claimed %+v, want the ping alone", cs)
	}
	if err := s.RecordAttempt(ctx, store.AttemptResult{DeliveryID: ping.ID, Owner: "w", StartedAt: t0.Add(time.Hour), StatusCode: 500,
		FailureWindow: 5 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Subscription(ctx, "sub_p")
	if got.Status != store.SubscriptionDisabled || !strings.Contains(got.StatusReason, "ping") {
		t.Errorf("after the ping failed for good: %s (%q)", got.Status, got.StatusReason)
	}
	if c, _ := s.DeliveryCounts(ctx); c[store.DeliveryFailed] != 2 || c[store.DeliveryPending] != 0 {
		t.Errorf("delivery counts = %v, want the ping and the queued event failed", c)
	}
}

func TestHookTokens(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	repo := analysis.Repository{Registry: "docker.io", Name: "acme/app"}
	n := 0
	gen := func() string { n++; return "tok" + string(rune('0'+n)) }
	// Reading writes nothing: no token until one is made.
	if tok, err := s.HookToken(ctx, repo); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("before any was made: %q, %v; want not found", tok, err)
	}
	if n != 0 {
		t.Fatal("reading a hook token made one")
	}
	tok, err := s.MakeHookToken(ctx, repo, gen, t0)
	if err != nil || tok != "tok1" {
		t.Fatalf("token = %q, %v", tok, err)
	}
	if again, _ := s.MakeHookToken(ctx, repo, gen, t0); again != tok || n != 1 {
		t.Errorf("second call gave %q (%d made), want the same token %q", again, n, tok)
	}
	if read, err := s.HookToken(ctx, repo); err != nil || read != tok {
		t.Errorf("read %q, %v; want %q", read, err, tok)
	}
	if got, err := s.HookRepository(ctx, tok); err != nil || got != repo {
		t.Errorf("repository of token = %v, %v", got, err)
	}
	if _, err := s.HookRepository(ctx, "nope"); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("unknown token: err = %v", err)
	}
}
