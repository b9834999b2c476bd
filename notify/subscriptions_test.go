package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/store"
)

type subsEnv struct {
	st     *store.Store
	clock  *clock
	images *fakeImages
	subs   *notify.Subscriptions
}

func newSubsEnv(t *testing.T, allowPrivate bool, cfg notify.SubscriptionsOptions) *subsEnv {
	t.Helper()
	e := &subsEnv{st: openStore(t), clock: &clock{t: t0}}
	e.images = &fakeImages{st: e.st, now: e.clock.Now}
	cfg.Store, cfg.Images, cfg.Now = e.st, e.images, e.clock.Now
	cfg.Builder = notify.NewBuilder("http://localhost:8080")
	cfg.Guard = netguard.New(allowPrivate)
	cfg.Worker = notify.NewWorker(notify.WorkerOptions{Store: e.st, Transport: loopbackTransport(), Now: e.clock.Now,
		Rand: func() float64 { return 0.5 }})
	if cfg.LookupHost == nil {
		cfg.LookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			switch host {
			case "localhost":
				return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}, nil
			case "hooks.example.com":
				return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
			case "inward.example.com":
				return []netip.Addr{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("10.0.0.5")}, nil
			}
			return nil, errors.New("no such host")
		}
	}
	e.subs = notify.NewSubscriptions(cfg)
	return e
}

func TestCreatePingsAndActivates(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{})
	var secret atomic.Value
	secret.Store("whsec_AAAA")
	rc := newReceiver(t, func() string { return secret.Load().(string) }, always(200))
	// The secret is known only once Create returns: the ping is verified
	// below, from what the receiver kept.
	c, err := e.subs.Create(context.Background(), notify.CreateRequest{Image: "127.0.0.1:5000/acme/base:1.0", URL: rc.URL + "/hook", Client: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != store.SubscriptionActive || !strings.HasPrefix(c.ID, "sub_") || !strings.HasPrefix(c.Secret, "whsec_") || c.Token == "" {
		t.Errorf("created = %+v", c)
	}
	if strings.Join(c.Events, ",") != "image.updated,base.updated" {
		t.Errorf("events = %v, want both by default", c.Events)
	}
	got := rc.requests()
	if len(got) != 1 || !strings.Contains(got[0].Body, `"type":"webhook.ping"`) || !strings.Contains(got[0].Body, `"subscription":"`+c.ID+`"`) {
		t.Fatalf("receiver got %+v, want one ping", got)
	}
	// Verify the ping now that the secret is known.
	wh, _ := standardwebhooks.NewWebhook(c.Secret)
	if err := wh.Verify([]byte(got[0].Body), got[0].Header); err != nil {
		t.Errorf("ping: %v", err)
	}
	// The subscribed tag was resolved first, so its current state is no news.
	if calls := e.images.taken(); len(calls) != 1 || calls[0] != "127.0.0.1:5000/acme/base:1.0 read" {
		t.Errorf("baseline calls = %v", calls)
	}
	// The token opens it; nothing else does.
	sub, ds, err := e.subs.Get(context.Background(), c.ID, c.Token)
	if err != nil || sub.ID != c.ID || len(ds) != 1 || ds[0].Type != notify.TypePing || ds[0].Status != store.DeliveryDelivered {
		t.Errorf("get = %+v %+v %v", sub, ds, err)
	}
	for _, tok := range []string{"", "wrong", c.Token + "x"} {
		if _, _, err := e.subs.Get(context.Background(), c.ID, tok); !errors.Is(err, notify.ErrUnauthorized) {
			t.Errorf("token %q: err = %v, want unauthorized", tok, err)
		}
		if err := e.subs.Delete(context.Background(), c.ID, tok); !errors.Is(err, notify.ErrUnauthorized) {
			t.Errorf("delete with token %q: err = %v, want unauthorized", tok, err)
		}
	}
	if _, _, err := e.subs.Get(context.Background(), "sub_nope", c.Token); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("unknown id: err = %v", err)
	}
	if err := e.subs.Delete(context.Background(), c.ID, c.Token); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.subs.Get(context.Background(), c.ID, c.Token); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("after delete: err = %v", err)
	}
}

// TestFailedPingLeavesPendingAndRetries: a ping the receiver refuses leaves
// the subscription pending, the ping retried in 5 s. Events that happen
// meanwhile are queued, not dropped, and wait for
// the receiver: once the ping is delivered they follow, in order.
func TestFailedPingLeavesPendingAndRetries(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{})
	var secret atomic.Value
	secret.Store("whsec_AAAA")
	var code atomic.Int32
	code.Store(500)
	rc := newReceiver(t, func() string { return secret.Load().(string) }, func(int) int { return int(code.Load()) })
	c, err := e.subs.Create(context.Background(), notify.CreateRequest{Image: "127.0.0.1:5000/acme/base", URL: rc.URL, Events: []string{"image.updated"}, Client: "c"})
	if err != nil {
		t.Fatal(err)
	}
	secret.Store(c.Secret)
	if c.Status != store.SubscriptionPending || c.Tag != "" {
		t.Fatalf("created = %+v, want pending and repository-wide", c)
	}
	_, ds, _ := e.subs.Get(context.Background(), c.ID, c.Token)
	if len(ds) != 1 || ds[0].Status != store.DeliveryPending || !ds[0].NextAttemptAt.Equal(t0.Add(5*time.Second)) {
		t.Errorf("ping delivery = %+v, want pending, retried in 5 s", ds)
	}
	// Two moves while pending: queued, and not sent while the ping waits.
	first := moveTag(t, e.st, "1.0", dNew, t0)
	second := moveTag(t, e.st, "1.0", dOld, t0.Add(time.Second))
	if _, ds, _ := e.subs.Get(context.Background(), c.ID, c.Token); len(ds) != 3 {
		t.Fatalf("a pending subscription has %d deliveries, want the ping and two events", len(ds))
	}
	w := notify.NewWorker(notify.WorkerOptions{Store: e.st, Transport: loopbackTransport(), Now: e.clock.Now, Rand: func() float64 { return 0.5 }})
	e.clock.Set(t0.Add(2 * time.Second))
	if n, err := w.RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("before the ping's retry: %d attempts (%v), want none: the events wait for the ping", n, err)
	}
	// The receiver recovers; the ping's retry is delivered, then the events.
	code.Store(200)
	e.clock.Set(t0.Add(5 * time.Second))
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	var ids []string
	for i, r := range got {
		// The first ping left before its secret was known here.
		if r.Err != nil && i > 0 {
			t.Errorf("request %s: %v", r.ID, r.Err)
		}
		ids = append(ids, r.ID)
	}
	ping := ds[0].WebhookID
	if len(ids) != 4 || ids[0] != ping || ids[1] != ping || !slices.Contains(ids[2:], first) || !slices.Contains(ids[2:], second) {
		t.Errorf("requests %v, want the refused ping, the ping again, then %s and %s", ids, first, second)
	}
	if sub, _, _ := e.subs.Get(context.Background(), c.ID, c.Token); sub.Status != store.SubscriptionActive {
		t.Errorf("status %s after the ping was delivered", sub.Status)
	}
}

func TestCreateRefusals(t *testing.T) {
	for _, tc := range []struct {
		name         string
		req          notify.CreateRequest
		allowPrivate bool
		kind         error
	}{
		{"ftp", notify.CreateRequest{Image: "acme/app:1", URL: "ftp://hooks.example.com/"}, true, notify.ErrInvalid},
		{"no scheme", notify.CreateRequest{Image: "acme/app:1", URL: "hooks.example.com/x"}, true, notify.ErrInvalid},
		{"no host", notify.CreateRequest{Image: "acme/app:1", URL: "http:///x"}, true, notify.ErrInvalid},
		{"credentials", notify.CreateRequest{Image: "acme/app:1", URL: "https://u:p@hooks.example.com/"}, true, notify.ErrInvalid},
		{"no url", notify.CreateRequest{Image: "acme/app:1"}, true, notify.ErrInvalid},
		{"loopback", notify.CreateRequest{Image: "acme/app:1", URL: "http://127.0.0.1:8080/"}, false, notify.ErrInvalid},
		{"private", notify.CreateRequest{Image: "acme/app:1", URL: "http://192.168.0.10/"}, false, notify.ErrInvalid},
		{"name resolving to loopback", notify.CreateRequest{Image: "acme/app:1", URL: "http://localhost/"}, false, notify.ErrInvalid},
		{"one inward address", notify.CreateRequest{Image: "acme/app:1", URL: "https://inward.example.com/"}, false, notify.ErrInvalid},
		{"metadata whatever the setting", notify.CreateRequest{Image: "acme/app:1", URL: "http://169.254.169.254/"}, true, notify.ErrInvalid},
		{"unresolvable", notify.CreateRequest{Image: "acme/app:1", URL: "https://nowhere.invalid/"}, true, notify.ErrInvalid},
		{"digest", notify.CreateRequest{Image: "acme/app@sha256:" + strings.Repeat("a", 64), URL: "https://hooks.example.com/"}, true, notify.ErrInvalid},
		{"no image", notify.CreateRequest{URL: "https://hooks.example.com/"}, true, notify.ErrInvalid},
		{"bad image", notify.CreateRequest{Image: "UPPER/Case:1", URL: "https://hooks.example.com/"}, true, analysis.ErrInvalidReference},
		{"unknown event", notify.CreateRequest{Image: "acme/app:1", URL: "https://hooks.example.com/", Events: []string{"image.deleted"}}, true, notify.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newSubsEnv(t, tc.allowPrivate, notify.SubscriptionsOptions{})
			_, err := e.subs.Create(context.Background(), tc.req)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if msg, ok := analysis.PublicMessage(err); !ok || msg == "" {
				t.Errorf("no public message in %v", err)
			}
			if n, _ := e.st.SubscribedImages(context.Background()); len(n) != 0 {
				t.Errorf("a refused request stored %v", n)
			}
		})
	}
}

func TestCreateIsRateLimitedPerClient(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{PerClient: ratelimit.Limit{Burst: 3, Period: time.Hour}, MaxPerImage: 100})
	rc := newReceiver(t, func() string { return "whsec_AAAA" }, always(200))
	n := 0
	create := func(client string) error {
		n++ // a receiver path each, so that no two are identical subscriptions
		_, err := e.subs.Create(context.Background(), notify.CreateRequest{Image: "127.0.0.1:5000/acme/base:1.0", URL: fmt.Sprintf("%s/%d", rc.URL, n), Client: client})
		return err
	}
	for i := range 3 {
		if err := create("192.0.2.1"); err != nil {
			t.Fatalf("creation %d: %v", i+1, err)
		}
	}
	err := create("192.0.2.1")
	var ae *analysis.Error
	if !errors.Is(err, analysis.ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter <= 0 || ae.RetryAfter > 20*time.Minute {
		t.Fatalf("4th creation: err = %v, want rate limited with a Retry-After of about 20 minutes", err)
	}
	if err := create("192.0.2.2"); err != nil {
		t.Errorf("another client: %v", err)
	}
	e.clock.Set(t0.Add(20 * time.Minute))
	if err := create("192.0.2.1"); err != nil {
		t.Errorf("after a third of the period: %v", err)
	}
}

func TestCreateIsCappedPerImage(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{MaxPerImage: 2})
	rc := newReceiver(t, func() string { return "whsec_AAAA" }, always(200))
	for i := range 3 {
		_, err := e.subs.Create(context.Background(), notify.CreateRequest{Image: "127.0.0.1:5000/acme/base:1.0", URL: fmt.Sprintf("%s/%d", rc.URL, i), Client: fmt.Sprint(i)})
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("third subscription: err = %v, want refused", err)
		}
	}
	// The cap is per image: another tag still has room.
	if _, err := e.subs.Create(context.Background(), notify.CreateRequest{Image: "127.0.0.1:5000/acme/base:2.0", URL: rc.URL, Client: "x"}); err != nil {
		t.Error(err)
	}
}

// TestCreateIsCappedPerSubscriber: one address holds at most its share of
// an image's subscriptions; others still have room until the image's cap.
func TestCreateIsCappedPerSubscriber(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{MaxPerImage: 4, MaxPerSubscriber: 2})
	rc := newReceiver(t, func() string { return "whsec_AAAA" }, always(200))
	n := 0
	create := func(client string) error {
		n++
		_, err := e.subs.Create(context.Background(), notify.CreateRequest{Image: "127.0.0.1:5000/acme/base:1.0", URL: fmt.Sprintf("%s/%d", rc.URL, n), Client: client})
		return err
	}
	for _, step := range []struct {
		client string
		ok     bool
	}{{"a", true}, {"a", true}, {"a", false}, {"b", true}, {"b", true}, {"c", false}} {
		err := create(step.client)
		if step.ok != (err == nil) || (err != nil && !errors.Is(err, notify.ErrInvalid)) {
			t.Errorf("subscription %d from %s: %v, want ok %v", n, step.client, err, step.ok)
		}
	}
}

// TestDuplicateIsTheSameSubscribers: the same request is a duplicate only
// from the same address, or by the same signed-in person from another; the
// duplicate is named, and it is the requester's own.
func TestDuplicateIsTheSameSubscribers(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{})
	rc := newReceiver(t, func() string { return "whsec_AAAA" }, always(200))
	req := func(client, subscriber string) notify.CreateRequest {
		return notify.CreateRequest{Image: "127.0.0.1:5000/acme/base:1.0", URL: rc.URL + "/hook", Client: client, Subscriber: subscriber}
	}
	alice := notify.SubscriberPerson("alice")
	first, err := e.subs.Create(context.Background(), req("192.0.2.1", alice))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		client, subscriber string
		dup                bool
	}{{"192.0.2.1", "", true}, {"192.0.2.2", alice, true}, {"192.0.2.2", notify.SubscriberPerson("bob"), false}, {"192.0.2.3", "", false}} {
		_, err := e.subs.Create(context.Background(), req(c.client, c.subscriber))
		var exists *notify.ExistsError
		switch {
		case c.dup && (!errors.As(err, &exists) || exists.ID != first.ID):
			t.Errorf("from %s as %q: %v, want the duplicate of %s", c.client, c.subscriber, err, first.ID)
		case !c.dup && err != nil:
			t.Errorf("from %s as %q: %v, want a new subscription", c.client, c.subscriber, err)
		}
	}
}

func TestRepositoryWideBaselineListsTags(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{})
	lister := &fakeLister{fakeImages: e.images, tags: []string{"a"}, resolve: true}
	subs := notify.NewSubscriptions(notify.SubscriptionsOptions{Store: e.st, Images: lister, Builder: notify.NewBuilder("http://x"),
		Guard: netguard.New(true), Now: e.clock.Now})
	if _, err := subs.Create(context.Background(), notify.CreateRequest{Image: "127.0.0.1:5000/acme/base", URL: "http://127.0.0.1:9/", Client: "c"}); err != nil {
		t.Fatal(err)
	}
	if lister.lists.Load() != 1 {
		t.Errorf("listed %d times, want once", lister.lists.Load())
	}
}

// TestHookTokens: a repository has no hook token until a subscription to
// it is made, and asking for it makes none; the subscription makes it.
func TestHookTokens(t *testing.T) {
	e := newSubsEnv(t, true, notify.SubscriptionsOptions{})
	r := repo
	for range 3 {
		if tok, err := e.subs.HookToken(context.Background(), r); !errors.Is(err, analysis.ErrNotFound) {
			t.Fatalf("before any subscription: token %q, %v; want not found", tok, err)
		}
	}
	rc := newReceiver(t, func() string { return "whsec_AAAA" }, always(200))
	if _, err := e.subs.Create(context.Background(), notify.CreateRequest{Image: r.String() + ":1.0", URL: rc.URL, Client: "c"}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.subs.HookToken(context.Background(), r)
	if err != nil || len(tok) < 40 {
		t.Fatalf("token %q, %v", tok, err)
	}
	if got, err := e.subs.HookRepository(context.Background(), tok); err != nil || got != r {
		t.Errorf("repository = %v, %v", got, err)
	}
	if _, err := e.subs.HookRepository(context.Background(), "nope"); !errors.Is(err, notify.ErrUnauthorized) {
		t.Errorf("unknown token: %v", err)
	}
}
