package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// Limits of one delivery attempt (docs/API.md, "Webhook deliveries").
const (
	// DefaultTimeout bounds one attempt from dial to the end of the answer.
	DefaultTimeout = 15 * time.Second
	// maxAnswer is how much of a receiver's answer is read; the rest is
	// dropped with the connection.
	maxAnswer = 64 << 10
	// keptAnswer is how much of the answer the delivery log keeps.
	keptAnswer = 1 << 10
)

// WorkerOptions holds a Worker's collaborators; Store and Transport are
// required.
type WorkerOptions struct {
	Store *store.Store
	// Transport carries webhook requests. It must be netguard's, so that
	// every dial is judged on its resolved address.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Metrics, when set, receives the worker's collectors.
	Metrics prometheus.Registerer
	// Now is the clock deciding what is due and when to retry; nil means
	// time.Now. Tests inject one to check retry timing without sleeping.
	Now func() time.Time
	// Rand returns numbers in [0, 1) for retry jitter; nil means
	// math/rand/v2.Float64.
	Rand func() float64
	// Concurrency is how many attempts may be in flight at once (default 32).
	Concurrency int
	// PerReceiver bounds the attempts in flight to one receiver (scheme,
	// host and port; default half of Concurrency), so a receiver that is
	// slow to answer, or never does until the timeout, cannot hold every
	// slot while deliveries to everyone else wait.
	PerReceiver int
	// PollInterval is how often the outbox is checked for due rows when
	// nobody calls Wake (default 1 s).
	PollInterval time.Duration
	// Timeout bounds one attempt (default 15 s).
	Timeout time.Duration
	// Lease is how long a claimed row is reserved to this worker; it must
	// outlast an attempt and its recording (default Timeout + 15 s). A row
	// whose holder died is claimable again once its lease has expired.
	Lease time.Duration
	// Retention is how long finished deliveries (beyond the latest
	// DeliveryLogSize of each subscription) and their events are kept
	// (default 30 days); Run prunes older ones every hour. Negative keeps
	// everything.
	Retention time.Duration
	// Builder and Differ describe a delivery that coalesced several events
	// from its first image to its last (Builder.Coalesced); without a
	// Builder such a delivery is sent as its latest event. Optional.
	Builder *Builder
	Differ  Differ
}

// DeliveryLogSize is how many of a subscription's latest deliveries its
// delivery log shows; pruning always keeps at least these.
const DeliveryLogSize = 50

// pruneEvery is how often Run prunes the outbox.
const pruneEvery = time.Hour

// Worker sends the outbox's deliveries. Several workers, in one process or
// in several sharing a database, may run at once: each row is leased to one
// of them before it is sent.
type Worker struct {
	store        *store.Store
	client       *http.Client
	log          *slog.Logger
	now          func() time.Time
	rand         func() float64
	concurrency  int
	perReceiver  int
	pollInterval time.Duration
	timeout      time.Duration
	lease        time.Duration
	owner        string
	retention    time.Duration
	lastPrune    time.Time
	wake         chan struct{}
	builder      *Builder
	differ       Differ
	attempts     *prometheus.CounterVec
	duration     prometheus.Histogram
}

// Defaults of WorkerOptions.
const (
	DefaultConcurrency  = 32
	DefaultPollInterval = time.Second
	DefaultRetention    = 30 * 24 * time.Hour
)

func (c WorkerOptions) withDefaults() WorkerOptions {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.PerReceiver <= 0 || c.PerReceiver > c.Concurrency {
		c.PerReceiver = max(1, c.Concurrency/2)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Lease <= c.Timeout {
		c.Lease = c.Timeout + 15*time.Second
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// NewWorker returns a Worker; call Run to start it.
func NewWorker(cfg WorkerOptions) *Worker {
	cfg = cfg.withDefaults()
	w := &Worker{
		store:        cfg.Store,
		log:          cfg.Logger,
		now:          cfg.Now,
		rand:         cfg.Rand,
		concurrency:  cfg.Concurrency,
		perReceiver:  cfg.PerReceiver,
		pollInterval: cfg.PollInterval,
		timeout:      cfg.Timeout,
		lease:        cfg.Lease,
		retention:    cfg.Retention,
		owner:        newID("wrk_"),
		wake:         make(chan struct{}, 1),
		builder:      cfg.Builder,
		differ:       cfg.Differ,
	}
	w.client = &http.Client{
		Transport: cfg.Transport,
		// A redirect is an answer like any other: following it would let a
		// receiver point the service at an address of its choosing.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	w.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagebadger_webhook_attempts_total",
		Help: "Webhook delivery attempts, by outcome (delivered, retry, failed).",
	}, []string{"outcome"})
	w.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "imagebadger_webhook_attempt_duration_seconds",
		Help:    "Time from sending a webhook to the end of the receiver's answer.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	})
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(w.attempts, w.duration)
	}
	return w
}

// Wake makes a running worker look for due deliveries now rather than at its
// next poll, so a move is delivered without waiting for the poll interval.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends due deliveries until ctx is cancelled, keeping up to
// Concurrency attempts in flight, at most PerReceiver of them to one
// receiver. On cancellation it claims nothing more and returns once the
// attempts in flight have finished and been recorded (each within its own
// deadline), so the database may be closed after it.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, w.concurrency)
	freed := make(chan struct{}, w.concurrency)
	tick := time.NewTicker(w.pollInterval)
	defer tick.Stop()
	for {
		free := w.concurrency - len(slots)
		if free == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-freed:
			}
			continue
		}
		// The store counts the attempts in flight to each receiver from the
		// leases every worker (of every process) holds.
		claims, err := w.store.ClaimDeliveries(ctx, w.owner, w.now(), w.lease, free, w.perReceiver)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Error("webhook worker: claim deliveries", "err", err)
		}
		for _, c := range claims {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.deliver(ctx, c)
				<-slots
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
		}
		if err == nil && len(claims) == free {
			continue // more may be due: take them as slots free up
		}
		w.pruneIfDue(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-tick.C:
		case <-freed:
			// A receiver at its bound may have room again.
		}
	}
}

// Send makes one attempt of a delivery leased to this worker (a
// subscription's ping, stored leased to it) and records it; it reports
// whether the receiver accepted it.
func (w *Worker) Send(ctx context.Context, c store.Claim) bool {
	return w.deliver(ctx, c).Delivered
}

// deliver makes one attempt of a claimed delivery, records it and returns
// its outcome. The attempt and its record are not cut short by ctx's
// cancellation (a shutdown): an attempt once started is finished and
// recorded, within its own deadline.
func (w *Worker) deliver(ctx context.Context, c store.Claim) store.AttemptResult {
	ctx = context.WithoutCancel(ctx)
	start := w.now()
	res := store.AttemptResult{DeliveryID: c.ID, Owner: w.owner, StartedAt: start}
	// The signature's timestamp is the real time of sending whatever the
	// scheduling clock says: receivers compare it with their own clock.
	begun := time.Now()
	resp, answer, err := w.send(ctx, c, begun)
	res.Duration = time.Since(begun)
	w.duration.Observe(res.Duration.Seconds())
	attempt := c.Attempts + 1
	switch {
	case err != nil:
		res.Error = describe(err, w.timeout)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.Delivered = true
	case resp.StatusCode == http.StatusGone:
		res.Error = "answered 410 Gone"
		res.Disable = "the receiver answered 410 Gone"
	default:
		res.Error = "answered " + resp.Status
	}
	if resp != nil {
		res.StatusCode = resp.StatusCode
		res.Response = keep(answer)
	}
	outcome := "delivered"
	if !res.Delivered && res.Disable == "" {
		if d, ok := nextDelay(attempt, w.rand(), retryAfter(resp, start)); ok {
			res.NextAttemptAt = start.Add(d)
			outcome = "retry"
		} else {
			outcome = "failed"
		}
	} else if !res.Delivered {
		outcome = "failed"
	}
	res.FailureWindow = FailureWindow
	w.attempts.WithLabelValues(outcome).Inc()
	if err := w.store.RecordAttempt(ctx, res); err != nil {
		level := slog.LevelError
		if errors.Is(err, analysis.ErrNotFound) {
			level = slog.LevelInfo // the subscription was deleted meanwhile
		}
		w.log.Log(ctx, level, "webhook worker: record attempt", "delivery", c.ID, "webhook_id", c.WebhookID, "err", err)
		return store.AttemptResult{}
	}
	level := slog.LevelInfo
	if !res.Delivered {
		level = slog.LevelWarn
	}
	w.log.Log(ctx, level, "webhook attempt", "delivery", c.ID, "webhook_id", c.WebhookID, "type", c.Type,
		"subscription", c.SubscriptionID, "attempt", attempt, "status", res.StatusCode, "outcome", outcome,
		"receiver", RedactURL(c.URL), "error", res.Error, "detail", redactedError(err, c.URL), "duration_ms", res.Duration.Milliseconds())
	return res
}

// send POSTs the delivery in its subscription's format, signed, with the
// subscription's headers, and reads at most maxAnswer bytes of the answer.
func (w *Worker) send(ctx context.Context, c store.Claim, at time.Time) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := w.request(ctx, c, at)
	if err != nil {
		return nil, nil, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		// The status line arrived; a broken body does not change the outcome.
		w.log.Debug("webhook worker: read answer", "delivery", c.ID, "err", redactedError(err, c.URL))
	}
	return resp, answer, nil
}

// request makes the HTTP request of one attempt: the payload (described
// from its first event when it coalesced several) in the subscription's
// format, the Standard Webhooks headers signing the body as sent, the
// format's headers, then the subscription's own.
func (w *Worker) request(ctx context.Context, c store.Claim, at time.Time) (*http.Request, error) {
	raw := c.Payload
	if len(c.FirstPayload) > 0 && w.builder != nil {
		merged, err := w.builder.Coalesced(ctx, c.FirstPayload, c.Payload, w.differ)
		if err != nil {
			return nil, err
		}
		raw = merged
	}
	out, headers, err := encode(c.Format, raw, c.Headers)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(out.body))
	if err != nil {
		return nil, fmt.Errorf("notify: request to %s: %w", RedactURL(c.URL), err)
	}
	if err := SignedHeaders(req.Header, c.Secret, c.WebhookID, at, out.body); err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", out.contentType)
	req.Header.Set("User-Agent", "imagebadger-webhooks/1")
	for k, vs := range out.header {
		req.Header[k] = vs
	}
	for _, h := range headers {
		req.Header.Set(h.Name, h.Value)
	}
	return req, nil
}

// forbidder is implemented by netguard's refusal error.
type forbidder interface{ Forbidden() bool }

// describe says what went wrong in words fit for the subscriber's delivery
// log: no internal detail, which is logged instead.
func describe(err error, timeout time.Duration) string {
	var f forbidder
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &f) && f.Forbidden():
		return "the target address is refused by this service's network policy"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &dns):
		return "the host name could not be resolved"
	case errors.Is(err, errBadSecret):
		return "the subscription's secret is malformed"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	}
	return "the request failed before an answer was received"
}

// keep returns the start of an answer as valid UTF-8 for the delivery log.
func keep(b []byte) string {
	if len(b) > keptAnswer {
		b = b[:keptAnswer]
		// Drop a rune cut in half by the limit (at most 3 bytes of it).
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// pruneIfDue deletes what Retention no longer keeps, at most once per
// pruneEvery (and once at start).
func (w *Worker) pruneIfDue(ctx context.Context) {
	now := w.now()
	if w.retention < 0 || (!w.lastPrune.IsZero() && now.Sub(w.lastPrune) < pruneEvery) {
		return
	}
	w.lastPrune = now
	p, err := w.store.PruneDeliveries(ctx, now.Add(-w.retention), DeliveryLogSize)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Error("webhook worker: prune", "err", err)
		}
		return
	}
	if p.Deliveries > 0 || p.Events > 0 {
		w.log.Info("webhook worker: pruned", "deliveries", p.Deliveries, "events", p.Events, "older_than", now.Add(-w.retention))
	}
}
