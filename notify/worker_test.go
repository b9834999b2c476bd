package notify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

type workerEnv struct {
	st    *store.Store
	clock *clock
	sub   store.Subscription
	rc    *receiver
}

// newWorkerEnv stores one active subscription to repo:1.0 delivering to a
// verifying receiver answering status(n) to its n-th request.
func newWorkerEnv(t *testing.T, status func(int) int) *workerEnv {
	t.Helper()
	e := &workerEnv{st: openStore(t), clock: &clock{t: t0}}
	var secret atomic.Value
	e.rc = newReceiver(t, func() string { return secret.Load().(string) }, status)
	e.sub = addSubscription(t, e.st, "sub_a", "1.0", e.rc.URL+"/hook")
	secret.Store(e.sub.Secret)
	return e
}

func (e *workerEnv) worker(cfg notify.WorkerOptions) *notify.Worker {
	cfg.Store = e.st
	if cfg.Transport == nil {
		cfg.Transport = loopbackTransport()
	}
	cfg.Now = e.clock.Now
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0.5 } // no jitter
	}
	return notify.NewWorker(cfg)
}

func (e *workerEnv) deliveries(t *testing.T) []store.Delivery {
	t.Helper()
	ds, err := e.st.Deliveries(context.Background(), e.sub.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func runOnce(t *testing.T, w *notify.Worker) int {
	t.Helper()
	n, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeliveryIsSignedAndRecorded(t *testing.T) {
	e := newWorkerEnv(t, always(http.StatusNoContent))
	id := moveTag(t, e.st, "1.0", dNew, t0)
	if n := runOnce(t, e.worker(notify.WorkerOptions{})); n != 1 {
		t.Fatalf("attempts = %d", n)
	}
	got := e.rc.requests()
	if len(got) != 1 || got[0].Err != nil || got[0].ID != id || !strings.Contains(got[0].Body, `"type":"image.updated"`) {
		t.Fatalf("received %+v, want one verified image.updated with webhook-id %s", got, id)
	}
	ds := e.deliveries(t)
	if len(ds) != 1 || ds[0].Status != store.DeliveryDelivered || ds[0].Attempts != 1 || ds[0].LastStatusCode != 204 || ds[0].WebhookID != id {
		t.Errorf("delivery = %+v", ds)
	}
	if n := runOnce(t, e.worker(notify.WorkerOptions{})); n != 0 {
		t.Errorf("a delivered row was attempted again (%d)", n)
	}
}

// TestRetryScheduleWithInjectedClock walks a delivery that always fails
// through the whole schedule by moving the clock, never by sleeping.
func TestRetryScheduleWithInjectedClock(t *testing.T) {
	e := newWorkerEnv(t, always(http.StatusInternalServerError))
	id := moveTag(t, e.st, "1.0", dNew, t0)
	w := e.worker(notify.WorkerOptions{})
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
	now := t0
	for attempt := 1; attempt <= notify.MaxAttempts; attempt++ {
		if n := runOnce(t, w); n != 1 {
			t.Fatalf("attempt %d at %s: made %d attempts", attempt, now.Sub(t0), n)
		}
		d := e.deliveries(t)[0]
		if d.Attempts != attempt || d.LastStatusCode != 500 || d.LastError != "answered 500 Internal Server Error" {
			t.Fatalf("after attempt %d: %+v", attempt, d)
		}
		if attempt == notify.MaxAttempts {
			if d.Status != store.DeliveryFailed {
				t.Errorf("after the last attempt: status %s, want failed", d.Status)
			}
			break
		}
		if d.Status != store.DeliveryPending || !d.NextAttemptAt.Equal(now.Add(want[attempt-1])) {
			t.Fatalf("after attempt %d: %s, next in %s, want pending and %s", attempt, d.Status, d.NextAttemptAt.Sub(now), want[attempt-1])
		}
		// Nothing is sent a moment before the retry is due.
		e.clock.Set(d.NextAttemptAt.Add(-time.Millisecond))
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("retry %d sent %s early", attempt, time.Millisecond)
		}
		now = d.NextAttemptAt
		e.clock.Set(now)
	}
	got := e.rc.requests()
	if len(got) != notify.MaxAttempts {
		t.Fatalf("receiver got %d requests, want %d", len(got), notify.MaxAttempts)
	}
	for i, r := range got {
		if r.ID != id || r.Err != nil {
			t.Errorf("request %d: webhook-id %s (want the same %s on every retry), verify: %v", i+1, r.ID, id, r.Err)
		}
	}
	// A subscription failing for about three days is not disabled yet.
	if sub, _ := e.st.Subscription(context.Background(), e.sub.ID); sub.Status != store.SubscriptionActive {
		t.Errorf("subscription %s after %s of failures", sub.Status, now.Sub(t0))
	}
}

func TestRetryJitterStaysClose(t *testing.T) {
	for _, r := range []float64{0, 0.999999} {
		e := newWorkerEnv(t, always(http.StatusBadGateway))
		moveTag(t, e.st, "1.0", dNew, t0)
		runOnce(t, e.worker(notify.WorkerOptions{Rand: func() float64 { return r }}))
		got := e.deliveries(t)[0].NextAttemptAt.Sub(t0)
		if got < 4500*time.Millisecond || got > 5500*time.Millisecond {
			t.Errorf("rand %v: first retry after %s, want 5s ± 10%%", r, got)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"503 seconds", 503, "120", 120 * time.Second},
		{"429 date", 429, t0.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{"429 shorter than the schedule", 429, "1", 5 * time.Second},
		{"500 ignores it", 500, "3600", 5 * time.Second},
		{"capped at a day", 503, "999999", 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &workerEnv{st: openStore(t), clock: &clock{t: t0}}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.header)
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(srv.Close)
			e.sub = addSubscription(t, e.st, "sub_a", "1.0", srv.URL)
			moveTag(t, e.st, "1.0", dNew, t0)
			runOnce(t, e.worker(notify.WorkerOptions{}))
			if got := e.deliveries(t)[0].NextAttemptAt.Sub(t0); got != tc.want {
				t.Errorf("next attempt after %s, want %s", got, tc.want)
			}
		})
	}
}

func TestGoneDisablesTheSubscription(t *testing.T) {
	e := newWorkerEnv(t, always(http.StatusGone))
	moveTag(t, e.st, "1.0", dNew, t0)
	moveTag(t, e.st, "1.0", dOld, t0)
	w := e.worker(notify.WorkerOptions{Concurrency: 1})
	runOnce(t, w)
	sub, _ := e.st.Subscription(context.Background(), e.sub.ID)
	if sub.Status != store.SubscriptionDisabled {
		t.Fatalf("status after 410 = %s", sub.Status)
	}
	for _, d := range e.deliveries(t) {
		if d.Status != store.DeliveryFailed {
			t.Errorf("delivery %s is %s after the subscription was disabled", d.WebhookID, d.Status)
		}
	}
	// Later moves are not queued for it, and nothing more is sent.
	moveTag(t, e.st, "1.0", dNew, t0.Add(time.Hour))
	e.clock.Set(t0.Add(48 * time.Hour))
	if n := runOnce(t, w); n != 0 {
		t.Errorf("%d attempts to a disabled subscription", n)
	}
}

func TestFiveDaysOfFailuresDisable(t *testing.T) {
	e := newWorkerEnv(t, always(http.StatusInternalServerError))
	w := e.worker(notify.WorkerOptions{})
	moveTag(t, e.st, "1.0", dNew, t0)
	runOnce(t, w)
	// A new event every day; all fail.
	for day := 1; day <= 5; day++ {
		at := t0.Add(time.Duration(day) * 24 * time.Hour)
		e.clock.Set(at)
		moveTag(t, e.st, "1.0", []string{dOld, dNew}[day%2], at)
		runOnce(t, w)
		sub, _ := e.st.Subscription(context.Background(), e.sub.ID)
		if want := day < 5; (sub.Status == store.SubscriptionActive) != want {
			t.Fatalf("day %d: status %s", day, sub.Status)
		}
	}
}

func TestSuccessResetsTheFailureRun(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	e := newWorkerEnv(t, func(int) int {
		if fail.Load() {
			return 500
		}
		return 200
	})
	w := e.worker(notify.WorkerOptions{})
	moveTag(t, e.st, "1.0", dNew, t0)
	runOnce(t, w)
	fail.Store(false)
	e.clock.Set(t0.Add(4 * 24 * time.Hour))
	runOnce(t, w) // the retry succeeds
	fail.Store(true)
	e.clock.Set(t0.Add(6 * 24 * time.Hour))
	moveTag(t, e.st, "1.0", dOld, t0.Add(6*24*time.Hour))
	runOnce(t, w)
	if sub, _ := e.st.Subscription(context.Background(), e.sub.ID); sub.Status != store.SubscriptionActive {
		t.Errorf("status %s: a success in between must restart the five days", sub.Status)
	}
}

// TestRedirectIsNotFollowed: a 3xx is a failed attempt, and the address it
// points at (here cloud metadata) is never dialled.
func TestRedirectIsNotFollowed(t *testing.T) {
	e := &workerEnv{st: openStore(t), clock: &clock{t: t0}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	e.sub = addSubscription(t, e.st, "sub_a", "1.0", srv.URL)
	var mu sync.Mutex
	var dialed []string
	moveTag(t, e.st, "1.0", dNew, t0)
	runOnce(t, e.worker(notify.WorkerOptions{Transport: guardedTransport(netguard.New(true), &dialed, &mu)}))
	d := e.deliveries(t)[0]
	if d.Status != store.DeliveryPending || d.LastStatusCode != http.StatusTemporaryRedirect || d.Attempts != 1 {
		t.Errorf("delivery after a redirect = %+v, want a failed attempt with 307", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) != 1 || !strings.HasPrefix(dialed[0], "127.0.0.1:") {
		t.Errorf("dialled %v, want only the receiver", dialed)
	}
}

// TestRefusedTargetsAtDialTime sends deliveries to every kind of forbidden
// address. Each must be refused by netguard when dialling (nothing leaves
// this host: the test transport also refuses anything but loopback).
func TestRefusedTargetsAtDialTime(t *testing.T) {
	for _, tc := range []struct {
		name         string
		url          string
		allowPrivate bool
	}{
		{"loopback", "http://127.0.0.1:9/", false},
		{"10/8", "http://10.1.2.3/", false},
		{"172.16/12", "http://172.20.0.1/", false},
		{"192.168/16", "http://192.168.1.1/", false},
		{"100.64/10", "http://100.64.0.1/", false},
		{"metadata", "http://169.254.169.254/latest/meta-data/", false},
		{"metadata even when private is allowed", "http://169.254.169.254/", true},
		{"::1", "http://[::1]:9/", false},
		{"fc00::/7", "http://[fd12:3456::1]/", false},
		{"fe80::/10", "http://[fe80::1]/", false},
		{"fe80::/10 even when private is allowed", "http://[fe80::1]/", true},
		{"mapped metadata", "http://[::ffff:169.254.169.254]/", false},
		{"mapped metadata even when private is allowed", "http://[::ffff:169.254.169.254]/", true},
		{"a name resolving to 127.0.0.1", "http://localhost:9/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &workerEnv{st: openStore(t), clock: &clock{t: t0}}
			e.sub = addSubscription(t, e.st, "sub_a", "1.0", tc.url)
			var mu sync.Mutex
			var dialed []string
			moveTag(t, e.st, "1.0", dNew, t0)
			runOnce(t, e.worker(notify.WorkerOptions{Transport: guardedTransport(netguard.New(tc.allowPrivate), &dialed, &mu)}))
			d := e.deliveries(t)[0]
			if d.LastError != "the target address is refused by this service's network policy" || d.LastStatusCode != 0 || d.Status != store.DeliveryPending {
				t.Errorf("delivery = %+v, want refused by policy", d)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(dialed) != 0 {
				t.Errorf("addresses got past the guard: %v", dialed)
			}
		})
	}
}

// countingTransport counts the bytes read from answers' bodies.
type countingTransport struct {
	http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.RoundTripper.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestAnswerIsReadOnlyUpTo64KiB(t *testing.T) {
	e := &workerEnv{st: openStore(t), clock: &clock{t: t0}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		chunk := []byte(strings.Repeat("é", 512)) // 1 KiB of two-byte runes
		for range 4 << 10 {                       // 4 MiB in all
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	e.sub = addSubscription(t, e.st, "sub_a", "1.0", srv.URL)
	moveTag(t, e.st, "1.0", dNew, t0)
	ct := &countingTransport{RoundTripper: loopbackTransport()}
	runOnce(t, e.worker(notify.WorkerOptions{Transport: ct}))
	if n := ct.read.Load(); n > 64<<10 {
		t.Errorf("read %d bytes of the answer, want at most 64 KiB", n)
	}
	d := e.deliveries(t)[0]
	att, _ := e.st.Attempts(context.Background(), d.ID)
	if len(att) != 1 || len(att[0].Response) > 1024 || !strings.HasPrefix(att[0].Response, "éé") || !strings.HasSuffix(att[0].Response, "é") {
		t.Errorf("kept answer of %d bytes", len(att[0].Response))
	}
}

func TestAttemptDeadline(t *testing.T) {
	release := make(chan struct{})
	e := &workerEnv{st: openStore(t), clock: &clock{t: t0}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	e.sub = addSubscription(t, e.st, "sub_a", "1.0", srv.URL)
	moveTag(t, e.st, "1.0", dNew, t0)
	runOnce(t, e.worker(notify.WorkerOptions{Timeout: 200 * time.Millisecond}))
	if d := e.deliveries(t)[0]; d.LastError != "no answer within 200ms" || d.Status != store.DeliveryPending {
		t.Errorf("delivery = %+v", d)
	}
}

// TestTwoWorkersNeverSendTheSameAttempt runs two workers (as two processes
// sharing a database would) over many deliveries at once.
func TestTwoWorkersNeverSendTheSameAttempt(t *testing.T) {
	st := openStore(t)
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path+" "+r.Header.Get("webhook-id")]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	for i := range 40 {
		addSubscription(t, st, fmt.Sprintf("sub_%02d", i), "1.0", fmt.Sprintf("%s/%02d", srv.URL, i))
	}
	moveTag(t, st, "1.0", dNew, t0)
	moveTag(t, st, "1.0", dOld, t0)
	clk := &clock{t: t0}
	var wg sync.WaitGroup
	for range 2 {
		w := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: loopbackTransport(), Now: clk.Now, Concurrency: 4})
		wg.Go(func() {
			if _, err := w.RunOnce(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(seen) != 80 {
		t.Errorf("receiver saw %d distinct deliveries, want 80", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
}

// TestRunFinishesItsAttemptOnShutdown cancels Run while an attempt is in
// flight: Run returns only after the attempt is answered and recorded.
func TestRunFinishesItsAttemptOnShutdown(t *testing.T) {
	inFlight, release := make(chan struct{}), make(chan struct{})
	e := &workerEnv{st: openStore(t), clock: &clock{t: t0}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-release
	}))
	t.Cleanup(srv.Close)
	e.sub = addSubscription(t, e.st, "sub_a", "1.0", srv.URL)
	moveTag(t, e.st, "1.0", dNew, t0)
	w := e.worker(notify.WorkerOptions{PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker sent nothing")
	}
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned with an attempt in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := e.deliveries(t)[0]; d.Status != store.DeliveryDelivered {
		t.Errorf("delivery = %+v, want delivered and recorded", d)
	}
}

// TestRunPrunesOldDeliveries: a running worker deletes finished deliveries
// older than its Retention, keeping each subscription's latest
// DeliveryLogSize, which the delivery log shows.
func TestRunPrunesOldDeliveries(t *testing.T) {
	e := newWorkerEnv(t, always(http.StatusNoContent))
	extra := 5
	var ids []string
	for i := 0; i < notify.DeliveryLogSize+extra; i++ {
		ids = append(ids, moveTag(t, e.st, "1.0", fmt.Sprintf("sha256:%064x", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	w := e.worker(notify.WorkerOptions{PollInterval: 10 * time.Millisecond, Retention: 24 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
	e.clock.Set(t0.Add(time.Hour)) // every move due: all delivered before pruning
	for runOnce(t, w) > 0 {
	}
	ds := e.deliveries(t)
	if len(ds) != notify.DeliveryLogSize+extra {
		t.Fatalf("%d deliveries before pruning", len(ds))
	}
	for _, d := range ds {
		if d.Status != store.DeliveryDelivered {
			t.Fatalf("delivery %s is %s before pruning, want every one delivered", d.WebhookID, d.Status)
		}
	}
	e.clock.Set(t0.Add(48 * time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	var left []store.Delivery
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left = e.deliveries(t); len(left) == notify.DeliveryLogSize {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(left) != notify.DeliveryLogSize {
		t.Fatalf("%d deliveries after pruning, want the latest %d", len(left), notify.DeliveryLogSize)
	}
	kept := map[string]bool{}
	for _, d := range left {
		kept[d.WebhookID] = true
	}
	for i, id := range ids {
		if want := i >= extra; kept[id] != want {
			t.Errorf("move %d (%s): kept %v, want %v", i, id, kept[id], want)
		}
	}
}

// TestHungReceiverLeavesSlotsForOthers: a receiver that never answers (until
// the test lets it) holds at most PerReceiver of the worker's slots, so a
// delivery to another receiver, due after all of the hung one's, arrives at
// once instead of after the attempt timeout.
func TestHungReceiverLeavesSlotsForOthers(t *testing.T) {
	st := openStore(t)
	release := make(chan struct{})
	var hungCalls atomic.Int32
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hungCalls.Add(1)
		<-release
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	arrived := make(chan struct{}, 1)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ok.Close)
	addSubscription(t, st, "sub_hung", "1.0", hung.URL+"/hook")
	addSubscription(t, st, "sub_ok", "2.0", ok.URL+"/hook")
	for i := 0; i < 6; i++ {
		moveTag(t, st, "1.0", fmt.Sprintf("sha256:%064x", i), t0.Add(time.Duration(i)*time.Second))
	}
	moveTag(t, st, "2.0", dNew, t0.Add(time.Minute)) // due after every hung delivery

	clk := &clock{t: t0.Add(time.Hour)}
	w := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: loopbackTransport(), Now: clk.Now,
		Concurrency: 4, PerReceiver: 2, Timeout: time.Minute, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Error("the other receiver's delivery waited behind the hung receiver")
	}
	if n := hungCalls.Load(); n > 2 {
		t.Errorf("%d attempts in flight to the hung receiver, want at most PerReceiver (2)", n)
	}
	close(release)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
