package notify_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

// fakeImages stands in for images.Service: it records what it is asked and
// records each resolution in the store as the real one does.
type fakeImages struct {
	st    *store.Store
	now   func() time.Time
	mu    sync.Mutex
	calls []string
	err   func(ref analysis.Reference) error
	// digest, when set, says where the n-th resolution (from 1) finds a tag.
	digest func(n int) string
}

func (f *fakeImages) Check(ctx context.Context, ref analysis.Reference, _ images.ReadOptions) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s check", ref))
	d := dNew
	if f.digest != nil {
		d = f.digest(len(f.calls))
	}
	f.mu.Unlock()
	if f.err != nil {
		if err := f.err(ref); err != nil {
			return err
		}
	}
	if ref.Tag != "" && ref.Digest == "" {
		_, err := recordTag(f.st, ref.Repository, ref.Tag, d, f.now())
		return err
	}
	return nil
}

// Read is a plain read: it records the tag as Check does when the store
// does not know it yet.
func (f *fakeImages) Read(ctx context.Context, ref analysis.Reference, _ images.ReadOptions) (images.Answer, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s read", ref))
	f.mu.Unlock()
	if _, err := f.st.Tag(ctx, ref.Repository, ref.Tag); err == nil || ref.Tag == "" {
		return images.Answer{Report: &analysis.Report{Digest: dNew}}, nil
	}
	if _, err := recordTag(f.st, ref.Repository, ref.Tag, dNew, f.now()); err != nil {
		return images.Answer{}, err
	}
	return images.Answer{Report: &analysis.Report{Digest: dNew}}, nil
}

// Tags lists no tags: only fakeLister has some.
func (f *fakeImages) Tags(ctx context.Context, repo analysis.Repository, how images.ReadOptions) (*analysis.TagList, error) {
	return &analysis.TagList{Registry: repo.Registry, Repository: repo.Name}, nil
}

func (f *fakeImages) taken() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	slices.Sort(out)
	return out
}

// fakeLister lists tags: it checks every tag of the listing through Check,
// as images.Service.Tags does, when resolve is set.
type fakeLister struct {
	*fakeImages
	tags    []string
	resolve bool
	lists   atomic.Int32
}

func (f *fakeLister) Tags(ctx context.Context, repo analysis.Repository, how images.ReadOptions) (*analysis.TagList, error) {
	f.lists.Add(1)
	if f.resolve {
		for _, t := range f.tags {
			if err := f.Check(ctx, repo.WithTag(t), how); err != nil {
				return nil, err
			}
		}
	}
	return &analysis.TagList{Registry: repo.Registry, Repository: repo.Name, Groups: []analysis.TagGroup{{Digest: dNew, Tags: f.tags}}}, nil
}

// newWatcher is a watcher on st; logged counts the moves its checks log,
// each of which wakes the fan-out.
func newWatcher(t *testing.T, images notify.Images, st *store.Store, clk *clock, logged *atomic.Int32) *notify.Watcher {
	t.Helper()
	st.OnChangeLogged(func() { logged.Add(1) })
	return notify.NewWatcher(notify.WatcherOptions{Images: images, Store: st, Interval: time.Minute, Now: clk.Now})
}

func TestPollRefreshesSubscribedTags(t *testing.T) {
	st := openStore(t)
	clk := &clock{t: t0}
	addSubscription(t, st, "sub_1", "1.0", "http://x")
	addSubscription(t, st, "sub_2", "2.0", "http://x")
	addSubscription(t, st, "sub_3", "1.0", "http://x") // same tag: one check
	addDisabledSubscription(t, st, "sub_4", "3.0")
	f := &fakeImages{st: st, now: clk.Now}
	var wakes atomic.Int32
	w := newWatcher(t, f, st, clk, &wakes)
	if err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:5000/acme/base:1.0 check", "127.0.0.1:5000/acme/base:2.0 check"}
	if diff := cmp.Diff(want, f.taken()); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if wakes.Load() == 0 {
		t.Error("the fan-out was not woken by the poll's moves")
	}
	// Checked again by the next round: an interval later, spread by at
	// most 10 % (the jitter of the wait until an item is due again).
	clk.Set(t0.Add(time.Minute + time.Minute/10))
	if err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.taken(); len(got) != 2 {
		t.Errorf("second round checked %v", got)
	}
}

// addDisabledSubscription stores a subscription whose ping was answered 410.
func addDisabledSubscription(t *testing.T, st *store.Store, id, tag string) {
	t.Helper()
	ctx := context.Background()
	sub := store.Subscription{ID: id, Repo: repo, Tag: tag, URL: "http://x", Events: []string{notify.TypeImageUpdated},
		Secret: notify.NewSecret(), TokenHash: "h", Status: store.SubscriptionPending, CreatedAt: t0}
	ping, err := st.CreateSubscription(ctx, sub, store.NewDelivery{WebhookID: "msg_" + id, Type: notify.TypePing, Payload: []byte(`{}`),
		LeaseOwner: "w", LeaseUntil: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAttempt(ctx, store.AttemptResult{DeliveryID: ping.ID, Owner: "w", StartedAt: t0, StatusCode: 410, Disable: "gone"}); err != nil {
		t.Fatal(err)
	}
}

func TestPollListsRepositoryWideSubscriptions(t *testing.T) {
	for _, resolve := range []bool{true, false} {
		t.Run(fmt.Sprintf("listing resolves tags=%v", resolve), func(t *testing.T) {
			st := openStore(t)
			clk := &clock{t: t0}
			addSubscription(t, st, "sub_repo", "", "http://x")
			addSubscription(t, st, "sub_tag", "b", "http://x")
			f := &fakeLister{fakeImages: &fakeImages{st: st, now: clk.Now}, tags: []string{"a", "b"}, resolve: resolve}
			var wakes atomic.Int32
			w := newWatcher(t, f, st, clk, &wakes)
			if err := w.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if f.lists.Load() != 1 {
				t.Errorf("listed %d times", f.lists.Load())
			}
			// Each tag is asked once per round, whoever asks.
			want := []string{"127.0.0.1:5000/acme/base:a check", "127.0.0.1:5000/acme/base:b check"}
			if diff := cmp.Diff(want, f.taken()); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateLimitedRegistryIsLeftAlone(t *testing.T) {
	st := openStore(t)
	clk := &clock{t: t0}
	addSubscription(t, st, "sub_1", "1.0", "http://x")
	limited := true
	f := &fakeImages{st: st, now: clk.Now, err: func(analysis.Reference) error {
		if limited {
			return &analysis.Error{Kind: analysis.ErrRateLimited, Message: "slow down", RetryAfter: 10 * time.Minute}
		}
		return nil
	}}
	var wakes atomic.Int32
	w := newWatcher(t, f, st, clk, &wakes)
	_ = w.Poll(context.Background())
	if got := f.taken(); len(got) != 1 {
		t.Fatalf("first round: %v", got)
	}
	limited = false
	clk.Set(t0.Add(5 * time.Minute))
	_ = w.Poll(context.Background())
	if got := f.taken(); len(got) != 0 {
		t.Errorf("asked a registry that asked for 10 minutes of quiet after 5: %v", got)
	}
	clk.Set(t0.Add(11 * time.Minute))
	_ = w.Poll(context.Background())
	if got := f.taken(); len(got) != 1 {
		t.Errorf("after the pause: %v", got)
	}
}

func TestRefreshRequestsAreServed(t *testing.T) {
	st := openStore(t)
	clk := &clock{t: t0}
	f := &fakeImages{st: st, now: clk.Now}
	var wakes atomic.Int32
	st.OnChangeLogged(func() { wakes.Add(1) })
	w := notify.NewWatcher(notify.WatcherOptions{Images: f, Store: st, Interval: time.Hour, Now: clk.Now})
	tag := repo.WithTag("1.0")
	for range 3 {
		if !w.Refresh(tag, "") {
			t.Fatal("refresh refused")
		}
	}
	w.Refresh(repo.WithDigest(dOld), "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for time.Now().Before(deadline) && len(got) < 2 {
		time.Sleep(10 * time.Millisecond)
		f.mu.Lock()
		got = append([]string(nil), f.calls...)
		f.mu.Unlock()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"127.0.0.1:5000/acme/base:1.0 check", "127.0.0.1:5000/acme/base@" + dOld + " check"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("refreshes (-want +got):\n%s", diff)
	}
	if wakes.Load() == 0 {
		t.Error("the fan-out was not woken by the refresh's move")
	}
}

// TestHookRefreshWaitsForTheTag: a registry notifies a push before the tag
// moves; the watcher looks again until the tag points where the hook said.
func TestHookRefreshWaitsForTheTag(t *testing.T) {
	st := openStore(t)
	clk := &clock{t: t0}
	f := &fakeImages{st: st, now: clk.Now, digest: func(n int) string {
		if n < 3 {
			return dOld // the registry has not moved the tag yet
		}
		return dNew
	}}
	w := notify.NewWatcher(notify.WatcherOptions{Images: f, Store: st, Interval: time.Hour, Now: clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	w.Refresh(repo.WithTag("1.0"), dNew)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, err := st.Tag(ctx, repo, "1.0"); err == nil && s.Digest == dNew {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tag was not looked at again until it moved")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond)
	if got := f.taken(); len(got) != 3 {
		t.Errorf("looked %d times (%v), want 3: no more once the tag is where the hook said", len(got), got)
	}
}
