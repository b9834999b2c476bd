package images_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"imagebadger/analysis"
	"imagebadger/images"
	"imagebadger/internal/testing/faultreg"
	"imagebadger/store"
)

// cachedEnv is a service on a SQLite store in front of the test registry,
// with a clock the test moves.
type cachedEnv struct {
	reg   *faultreg.Registry
	host  string
	svc   *images.Service
	clock atomic.Int64 // Unix nanoseconds
}

// holdRegistry holds the manifest and blob requests, which the tests below
// count, until the registry's Release.
var holdRegistry = []faultreg.Rule{
	{PathContains: "/manifests/", Fault: faultreg.Hold},
	{PathContains: "/blobs/", Fault: faultreg.Hold},
}

func newCachedEnv(t *testing.T) *cachedEnv {
	t.Helper()
	e := &cachedEnv{}
	e.clock.Store(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano())
	e.reg = faultreg.Start(t)
	e.host = e.reg.Host
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	client, err := analysis.NewClient(analysis.ClientOptions{Keychain: authn.NewMultiKeychain(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = images.New(images.Config{Client: client, Store: st, FreshFor: time.Hour, Now: e.now})
	return e
}

func (e *cachedEnv) now() time.Time          { return time.Unix(0, e.clock.Load()).UTC() }
func (e *cachedEnv) advance(d time.Duration) { e.clock.Add(int64(d)) }

func (e *cachedEnv) ref(t *testing.T, s string) analysis.Reference {
	t.Helper()
	r, err := analysis.ParseReference(e.host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *cachedEnv) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(e.host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestStoredNeverAsksTheRegistry(t *testing.T) {
	e := newCachedEnv(t)
	base, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	top, err := random.Layer(512, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	app, err := mutate.AppendLayers(base, top)
	if err != nil {
		t.Fatal(err)
	}
	e.push(t, "acme/base:1", base)
	e.push(t, "acme/app:2", app)
	ctx := context.Background()

	// Never seen: not found, and nothing asked of the registry.
	e.reg.Requests()
	if _, _, err := e.svc.Stored(ctx, e.ref(t, "acme/app:2")); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("Stored of an image never seen: %v, want ErrNotFound", err)
	}
	if got := e.reg.Requests("/manifests/", "/blobs/"); len(got) != 0 {
		t.Errorf("Stored asked the registry %v", got)
	}

	if _, err := e.svc.Image(ctx, e.ref(t, "acme/base:1"), false); err != nil {
		t.Fatal(err)
	}
	want, err := e.svc.Image(ctx, e.ref(t, "acme/app:2"), false)
	if err != nil {
		t.Fatal(err)
	}
	if want.Platforms[0].Parent == nil {
		t.Fatal("the app's parent was not found; the comparison below would be weaker")
	}
	e.reg.Requests()
	e.reg.Add(holdRegistry...) // from here on, any registry request would hang the test

	got, stale, err := e.svc.Stored(ctx, e.ref(t, "acme/app:2"))
	if err != nil || stale {
		t.Fatalf("Stored: stale %v, err %v", stale, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stored differs from Image (-Image +Stored):\n%s", diff)
	}
	byDigest, _, err := e.svc.Stored(ctx, e.ref(t, "acme/app@"+want.Digest))
	if err != nil || byDigest.Digest != want.Digest || byDigest.Platforms[0].Parent == nil {
		t.Errorf("Stored by digest: %+v, %v", byDigest, err)
	}
	e.advance(2 * time.Hour)
	if _, stale, err := e.svc.Stored(ctx, e.ref(t, "acme/app:2")); err != nil || !stale {
		t.Errorf("Stored past FreshFor: stale %v, err %v; want stale", stale, err)
	}
	if got := e.reg.Requests("/manifests/", "/blobs/"); len(got) != 0 {
		t.Errorf("Stored asked the registry %v", got)
	}
}

func TestRefresherRunsOneInspectionPerReference(t *testing.T) {
	e := newCachedEnv(t)
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.push(t, "acme/app:1", img)
	e.push(t, "acme/other:1", img)
	e.push(t, "acme/third:1", img)
	rf := images.NewRefresher(e.svc, images.RefresherOptions{RetryAfter: time.Minute, MaxRunning: 2})
	e.reg.Requests()

	e.reg.Add(holdRegistry...)
	app := e.ref(t, "acme/app:1")
	first := rf.RefreshInBackground(app)
	for range 10 {
		if j := rf.RefreshInBackground(app); j != first {
			t.Fatal("a second inspection of the same reference started")
		}
	}
	other := rf.RefreshInBackground(e.ref(t, "acme/other:1"))
	busy := rf.RefreshInBackground(e.ref(t, "acme/third:1"))
	select {
	case <-busy.Done():
		if _, err := busy.Result(); !errors.Is(err, images.ErrBusy) {
			t.Errorf("third inspection over MaxRunning 2: %v, want ErrBusy", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an inspection over MaxRunning was started")
	}
	e.reg.Release()

	rep, err := first.Result()
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); rep.Digest != d.String() {
		t.Errorf("digest %s, want %s", rep.Digest, d)
	}
	if _, err := other.Result(); err != nil {
		t.Fatal(err)
	}
	reqs := e.reg.Requests("/manifests/", "/blobs/")
	heads := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, "HEAD /v2/acme/app/manifests/1") || strings.HasPrefix(r, "GET /v2/acme/app/manifests/1") {
			heads++
		}
	}
	if heads != 1 {
		t.Errorf("the tag was resolved %d times for 11 calls: %v", heads, reqs)
	}

	// A failure is remembered for RetryAfter, then tried again.
	missing := e.ref(t, "acme/missing:1")
	j := rf.RefreshInBackground(missing)
	if _, err := j.Result(); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("missing image: %v", err)
	}
	e.reg.Requests()
	if again := rf.RefreshInBackground(missing); again != j {
		t.Error("a failed inspection was started again within RetryAfter")
	}
	if got := e.reg.Requests("/manifests/", "/blobs/"); len(got) != 0 {
		t.Errorf("remembered failure asked the registry %v", got)
	}
	e.advance(2 * time.Minute)
	if again := rf.RefreshInBackground(missing); again == j {
		t.Error("a failure was remembered past RetryAfter")
	} else if _, err := again.Result(); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("second try: %v", err)
	}

	// Close waits for inspections in flight and refuses new ones.
	e.reg.Add(holdRegistry...)
	e.advance(2 * time.Minute)
	inFlight := rf.RefreshInBackground(e.ref(t, "acme/third:1")) // never read: it needs the registry
	closed := make(chan error, 1)
	go func() { closed <- rf.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an inspection was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	e.reg.Release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFlight.Done():
	default:
		t.Error("Close returned before the inspection finished")
	}
	if _, err := rf.RefreshInBackground(e.ref(t, "acme/fourth:1")).Result(); !errors.Is(err, images.ErrBusy) {
		t.Errorf("after Close: %v, want ErrBusy", err)
	}
}
