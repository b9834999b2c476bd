package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

// fanOut is the number of subscriptions of the fan-out benchmark (the
// target: 10,000 delivered within 30 s on the project's 2 cores).
const fanOut = 10000

// BenchmarkFanOut10000 measures one image update fanned out to 10,000
// active subscriptions: the move is recorded, the fan-out judges the 10,000
// subscriptions and writes their deliveries in steps, then the worker signs
// and POSTs each to a loopback receiver that verifies every signature, and
// records every attempt. One iteration ends when the receiver has verified
// all 10,000 and the outbox holds nothing pending. (bench/replicas measures
// the same through the real binary, events made from the registry's images.)
func BenchmarkFanOut10000(b *testing.B) { benchFanOut(b, notify.FormatStandard) }

// BenchmarkFanOutMixed10000 is BenchmarkFanOut10000 with the formats
// mixed: of the 10,000 subscriptions a third each take standardwebhooks,
// slack and github (the last with an Authorization header), so each
// delivery is also encoded from its stored payload at send time. The
// receiver verifies every signature over the body as sent. The target is
// the same: all delivered within 30 s on 2 cores, on SQLite.
func BenchmarkFanOutMixed10000(b *testing.B) {
	benchFanOut(b, notify.FormatStandard, notify.FormatSlack, notify.FormatGitHub)
}

// benchFanOut is the fan-out benchmark with subscription i in
// formats[i%len(formats)].
func benchFanOut(b *testing.B, formats ...string) {
	ctx := context.Background()
	st := openStore(b)
	secrets := make([]*standardwebhooks.Webhook, fanOut)
	var received, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var i int
		if _, err := fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/"), "%d", &i); err != nil || i < 0 || i >= fanOut ||
			secrets[i].Verify(body, r.Header) != nil {
			bad.Add(1)
		}
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	for i := range fanOut {
		f := formats[i%len(formats)]
		url := fmt.Sprintf("%s/%d", srv.URL, i)
		var headers []store.Header
		if f == notify.FormatGitHub {
			url = fmt.Sprintf("%s/%d/repos/acme/app/dispatches", srv.URL, i)
			headers = []store.Header{{Name: "Authorization", Value: "Bearer ghp_bench"}}
		}
		sub := store.Subscription{ID: fmt.Sprintf("sub_%05d", i), Repo: repo, Tag: "1.0", URL: url,
			Events: []string{notify.TypeImageUpdated, notify.TypeBaseUpdated}, Secret: notify.NewSecret(), TokenHash: "h",
			Status: store.SubscriptionActive, CreatedAt: t0, Format: f, Headers: headers}
		if _, err := st.CreateSubscription(ctx, sub, store.NewDelivery{}); err != nil {
			b.Fatal(err)
		}
		wh, err := standardwebhooks.NewWebhook(sub.Secret)
		if err != nil {
			b.Fatal(err)
		}
		secrets[i] = wh
	}
	tr := loopbackTransport()
	tr.MaxIdleConnsPerHost = 64
	// The worker as serve configures it: 32 attempts in flight, 16 per receiver.
	w := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: tr})
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(wctx) })
	b.Cleanup(func() { stop(); wg.Wait() })

	digests := []string{dOld, dNew}
	var total time.Duration
	iter := 0
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		want := received.Load() + fanOut
		moveTag(b, st, "1.0", digests[iter%2], time.Now())
		iter++
		w.Wake()
		deadline := time.Now().Add(5 * time.Minute)
		for received.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d delivered after 5 minutes", received.Load()-(want-fanOut), fanOut)
			}
			time.Sleep(2 * time.Millisecond)
		}
		for {
			c, err := st.DeliveryCounts(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if c[store.DeliveryPending] == 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		total += time.Since(start)
	}
	if n := bad.Load(); n != 0 {
		b.Fatalf("%d deliveries failed verification", n)
	}
	c, _ := st.DeliveryCounts(ctx)
	if c[store.DeliveryDelivered] != fanOut*iter {
		b.Fatalf("outbox = %v, want %d delivered", c, fanOut*iter)
	}
	per := total / time.Duration(iter)
	b.ReportMetric(per.Seconds(), "s/fanout")
	b.ReportMetric(float64(fanOut)/per.Seconds(), "deliveries/s")
}
