package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

var (
	repo = analysis.Repository{Registry: "127.0.0.1:5000", Name: "acme/base"}
	t0   = time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
)

// clock is a settable clock for the worker, so retry timing is tested by
// moving time rather than by sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	return stack.OpenStore(t, stack.SQLite)
}

// addSubscription stores an active subscription to repo:tag delivering to
// target, and returns it with its secret.
func addSubscription(t testing.TB, st *store.Store, id, tag, target string) store.Subscription {
	t.Helper()
	sub := store.Subscription{ID: id, Repo: repo, Tag: tag, URL: target, Events: []string{notify.TypeImageUpdated, notify.TypeBaseUpdated},
		Secret: notify.NewSecret(), TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0}
	if _, err := st.CreateSubscription(context.Background(), sub, store.NewDelivery{}); err != nil {
		t.Fatal(err)
	}
	return sub
}

// moveTag records repo:tag moving to digest and queues the events the
// fan-out makes of the move for the subscriptions that hear them, and
// returns the image.updated event's id ("" when the tag did not move).
func moveTag(t testing.TB, st *store.Store, tag, digest string, at time.Time) string {
	t.Helper()
	prev := ""
	if s, err := st.Tag(context.Background(), repo, tag); err == nil {
		prev = s.Digest
	}
	moved, err := recordTag(st, repo, tag, digest, at)
	if err != nil {
		t.Fatal(err)
	}
	if !moved {
		return ""
	}
	evs, err := notify.NewBuilder("http://localhost:8080").Events(change(tag, prev, digest, at), nil)
	if err != nil {
		t.Fatal(err)
	}
	tell(t, st, evs)
	return evs[0].ID
}

// tell queues evs for the subscriptions that hear them, as the fan-out does.
func tell(t testing.TB, st *store.Store, evs []notify.Event) {
	t.Helper()
	if len(evs) == 0 {
		return
	}
	if err := notify.Tell(context.Background(), st, analysis.Repository{Registry: evs[0].Registry, Name: evs[0].Repository}, evs); err != nil {
		t.Fatal(err)
	}
}

// recordTag records repo:tag at digest from wherever the store says it
// points, as images.Service does, and reports whether it moved.
func recordTag(st *store.Store, repo analysis.Repository, tag, digest string, at time.Time) (bool, error) {
	prev := ""
	if s, err := st.Tag(context.Background(), repo, tag); err == nil {
		prev = s.Digest
	}
	for {
		c, err := st.RecordTag(context.Background(), store.TagRecord{Repo: repo, Tag: tag, Previous: prev,
			To: analysis.Descriptor{Digest: digest, MediaType: "m"}, At: at})
		if errors.Is(err, store.ErrTagMoved) {
			prev = c.Previous
			continue
		}
		return c.Moved, err
	}
}

// received is one request a receiver got, already verified.
type received struct {
	ID     string
	Body   string
	Header http.Header
	Err    error
}

// receiver is a webhook endpoint on loopback that verifies every request
// with the Standard Webhooks library and answers with status().
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status func(n int) int
}

func newReceiver(t testing.TB, secret func() string, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 0, 512)
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
		var verr error
		if wh, err := standardwebhooks.NewWebhook(secret()); err != nil {
			verr = err
		} else {
			verr = wh.Verify(body, r.Header)
		}
		if r.Header.Get("Content-Type") != "application/json" {
			verr = errors.Join(verr, errors.New("Content-Type "+r.Header.Get("Content-Type")))
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{ID: r.Header.Get("webhook-id"), Body: string(body), Header: r.Header.Clone(), Err: verr})
		n := len(rc.got)
		rc.mu.Unlock()
		w.WriteHeader(rc.status(n))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func always(code int) func(int) int { return func(int) int { return code } }

// errSafetyNet is what a test transport returns if the guard under test let
// a non-loopback address through: tests never send packets off this host.
var errSafetyNet = errors.New("test safety net: refusing to dial a non-loopback address the guard permitted")

// guardedTransport is the webhook transport of production (netguard's
// Control on every dial) with a loopback-only safety net behind it; dialed
// records every address that got past the guard.
func guardedTransport(g *netguard.Guard, dialed *[]string, mu *sync.Mutex) *http.Transport {
	tr := g.Transport()
	d := g.Dialer()
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := g.Control(network, address, c); err != nil {
			return err
		}
		if mu != nil {
			mu.Lock()
			*dialed = append(*dialed, address)
			mu.Unlock()
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			return errSafetyNet
		}
		return nil
	}
	tr.DialContext = d.DialContext
	return tr
}

// loopbackTransport allows the loopback receivers of tests.
func loopbackTransport() *http.Transport {
	return guardedTransport(netguard.New(true), nil, nil)
}
