package images_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
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
	e.svc = stack.New(t, stack.Options{Images: images.Options{Now: e.now, RetryFailedAfter: time.Minute, MaxInspections: 2}}).Images
	return e
}

// read is a plain read, as the pages and the API make it.
func (e *cachedEnv) read(t *testing.T, ref string) (*analysis.Report, bool, error) {
	t.Helper()
	a, err := e.svc.Read(context.Background(), auth.Viewer{}, e.ref(t, ref), images.ReadOptions{})
	return a.Report, a.Stale, err
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

func TestPlainReadsNeverAskTheRegistryOnceKnown(t *testing.T) {
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

	// Never seen: the read does not wait past its limit for the first
	// inspection, which goes on in the background.
	e.reg.Add(holdRegistry...)
	if _, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/app:2"), images.ReadOptions{Wait: 10 * time.Millisecond}); !errors.Is(err, images.ErrNotYet) {
		t.Fatalf("read of an image never seen, registry held: %v, want ErrNotYet", err)
	}
	e.reg.Reset()
	e.reg.Release()

	if _, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/base:1"), images.ReadOptions{Refresh: true}); err != nil {
		t.Fatal(err)
	}
	wantA, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/app:2"), images.ReadOptions{Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	want := wantA.Report
	if want.Platforms[0].Parent == nil {
		t.Fatal("the app's parent was not found; the comparison below would be weaker")
	}
	e.reg.Requests()
	e.reg.Add(holdRegistry...) // from here on, any registry request would hang the test

	got, stale, err := e.read(t, "acme/app:2")
	if err != nil || stale {
		t.Fatalf("plain read: stale %v, err %v", stale, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plain read differs from the refreshed one (-refreshed +plain):\n%s", diff)
	}
	byDigest, _, err := e.read(t, "acme/app@"+want.Digest)
	if err != nil || byDigest.Digest != want.Digest || byDigest.Platforms[0].Parent == nil {
		t.Errorf("plain read by digest: %+v, %v", byDigest, err)
	}
	e.advance(2 * time.Hour)
	if _, stale, err := e.read(t, "acme/app:2"); err != nil || !stale {
		t.Errorf("plain read past FreshFor: stale %v, err %v; want stale", stale, err)
	}
	// The stale read started a refresh in the background, which waits on
	// the held registry; the read itself answered without it.
	if got := e.reg.WaitRequests(1, 5*time.Second, "/manifests/"); len(got) != 1 || !strings.HasPrefix(got[0], "HEAD /v2/acme/app/manifests/2") {
		t.Errorf("the stale read's background refresh asked %v, want one HEAD of the tag", got)
	}
	e.reg.Reset()
	e.reg.Release()
}

func TestBackgroundInspectionsOnePerReference(t *testing.T) {
	e := newCachedEnv(t)
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.push(t, "acme/app:1", img)
	e.push(t, "acme/other:1", img)
	e.push(t, "acme/third:1", img)
	e.push(t, "acme/closing:1", img)
	e.reg.Requests()
	ctx := context.Background()
	quick := images.ReadOptions{Wait: time.Millisecond}

	e.reg.Add(holdRegistry...)
	app := e.ref(t, "acme/app:1")
	for range 10 {
		if _, err := e.svc.Read(ctx, auth.Viewer{}, app, quick); !errors.Is(err, images.ErrNotYet) {
			t.Fatalf("read while the registry is held: %v, want ErrNotYet", err)
		}
	}
	if _, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/other:1"), quick); !errors.Is(err, images.ErrNotYet) {
		t.Fatalf("second reference: %v, want ErrNotYet", err)
	}
	if _, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/third:1"), quick); !errors.Is(err, images.ErrBusy) {
		t.Errorf("third inspection over MaxInspections 2: %v, want ErrBusy (queued for a slot)", err)
	}
	e.reg.Release()

	a, err := e.svc.Read(ctx, auth.Viewer{}, app, images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); a.Report.Digest != d.String() {
		t.Errorf("digest %s, want %s", a.Report.Digest, d)
	}
	if _, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/other:1"), images.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	heads := 0
	for _, r := range e.reg.Requests("/manifests/", "/blobs/") {
		if strings.HasPrefix(r, "HEAD /v2/acme/app/manifests/1") || strings.HasPrefix(r, "GET /v2/acme/app/manifests/1") {
			heads++
		}
	}
	if heads != 1 {
		t.Errorf("the tag was resolved %d times for 11 reads", heads)
	}

	// A failure is remembered for RetryFailedAfter, then tried again.
	missing := e.ref(t, "acme/missing:1")
	if _, err := e.svc.Read(ctx, auth.Viewer{}, missing, images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("missing image: %v", err)
	}
	e.reg.Requests()
	if _, err := e.svc.Read(ctx, auth.Viewer{}, missing, images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("missing image again: %v", err)
	}
	if got := e.reg.Requests("/manifests/", "/blobs/"); len(got) != 0 {
		t.Errorf("a remembered failure asked the registry %v", got)
	}
	e.advance(2 * time.Minute)
	if _, err := e.svc.Read(ctx, auth.Viewer{}, missing, images.ReadOptions{}); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("second try: %v", err)
	}
	if got := e.reg.Requests("/manifests/"); len(got) == 0 {
		t.Error("a failure was remembered past RetryFailedAfter")
	}

	// Close waits for inspections in flight and refuses new ones.
	e.reg.Add(holdRegistry...)
	third := e.ref(t, "acme/closing:1")
	if _, err := e.svc.Read(ctx, auth.Viewer{}, third, quick); !errors.Is(err, images.ErrNotYet) {
		t.Fatalf("closing: %v, want ErrNotYet", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- e.svc.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an inspection was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	e.reg.Release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Read(ctx, auth.Viewer{}, third, images.ReadOptions{}); err != nil {
		t.Errorf("the inspection in flight at Close did not finish: %v", err)
	}
	if _, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/fourth:1"), images.ReadOptions{}); !errors.Is(err, images.ErrBusy) {
		t.Errorf("after Close: %v, want ErrBusy", err)
	}
}
