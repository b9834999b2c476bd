package images_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/ratelimit"
)

// pushRandom pushes a new one-layer image to reg as repo:tag and returns
// its reference.
func pushRandom(t *testing.T, reg *faultreg.Registry, repoTag string) analysis.Reference {
	t.Helper()
	img := must(random.Image(64, 1))
	if err := remote.Write(must(name.ParseReference(reg.Host+"/"+repoTag)), img); err != nil {
		t.Fatal(err)
	}
	return must(analysis.ParseReference(reg.Host + "/" + repoTag))
}

// read is a plain read for client waiting up to wait.
func read(svc *images.Service, ref analysis.Reference, client string, wait time.Duration) error {
	_, err := svc.Read(context.Background(), auth.Viewer{}, ref, images.ReadOptions{Wait: wait, Client: client})
	return err
}

// wantBusy fails unless err is ErrBusy with a Retry-After and message.
func wantBusy(t *testing.T, what string, err error) {
	t.Helper()
	var ae *analysis.Error
	if !errors.Is(err, images.ErrBusy) || !errors.As(err, &ae) || ae.RetryAfter <= 0 || !strings.Contains(ae.Message, "try again") {
		t.Errorf("%s: err = %v, want ErrBusy with a Retry-After and a message", what, err)
	}
}

// TestSlowRegistryFillsOnlyItsShare: a registry that holds every manifest
// request gets at most its share of the inspections (2 of 4 here); two
// more of its reads wait for a slot in that share and answer ErrBusy, a
// third is refused at once, and meanwhile an image never seen on another
// registry is inspected and answered. Without the share, the slow
// registry's reads would hold all four slots.
func TestSlowRegistryFillsOnlyItsShare(t *testing.T) {
	slow, fast := faultreg.Start(t), faultreg.Start(t)
	s := stack.New(t, stack.Options{Images: images.Options{MaxInspections: 4, MaxInspectionsPerRegistry: 2, QueueWait: 3 * time.Second}})
	var refs []analysis.Reference
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		refs = append(refs, pushRandom(t, slow, "acme/slow:"+tag))
	}
	other := pushRandom(t, fast, "acme/other:1")
	slow.Requests()
	slow.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})

	// Each read comes from its own client, so only the registry's share
	// is in play.
	for i, ref := range refs[:2] {
		if err := read(s.Images, ref, "client"+ref.Tag, 50*time.Millisecond); !errors.Is(err, images.ErrNotYet) {
			t.Fatalf("read %d of the slow registry: err = %v, want ErrNotYet (inspection running)", i, err)
		}
	}
	if got := slow.WaitRequests(2, 5*time.Second, "/manifests/"); len(got) != 2 {
		t.Fatalf("the slow registry got %v, want the two running inspections' manifest requests", got)
	}
	// Two more wait for a slot in the share: their readers give up first
	// and are told the service is busy, while the jobs stay queued.
	for _, ref := range refs[2:4] {
		wantBusy(t, "a queued read of the slow registry", read(s.Images, ref, "client"+ref.Tag, 20*time.Millisecond))
	}
	// The share's queue is full: the next is refused without waiting.
	start := time.Now()
	wantBusy(t, "a read beyond the registry's queue", read(s.Images, refs[4], "client-e", 0))
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("the read beyond the queue waited %s", waited)
	}
	if err := read(s.Images, other, "client-other", 0); err != nil {
		t.Fatalf("an image on another registry, with the slow one's share full: %v", err)
	}
	if got := slow.Peek("/manifests/"); len(got) != 2 {
		t.Errorf("the slow registry got %d manifest requests, want only the 2 of its share: %v", len(got), got)
	}
	slow.Release()
	if err := read(s.Images, refs[0], "client-a", 0); err != nil {
		t.Errorf("after the registry answered: %v", err)
	}
}

// TestClientShare: one client holds at most its share of the inspections
// (2 here): its third read of a never-seen image waits and answers ErrBusy,
// while another client's read of the same registry starts at once.
func TestClientShare(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Images: images.Options{MaxInspections: 8, MaxInspectionsPerClient: 2, QueueWait: 100 * time.Millisecond}})
	var refs []analysis.Reference
	for _, tag := range []string{"a", "b", "c", "d"} {
		refs = append(refs, pushRandom(t, reg, "acme/app:"+tag))
	}
	reg.Requests()
	reg.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})
	t.Cleanup(reg.Release) // before the service's Close waits for the held inspections
	const greedy = "198.51.100.7"
	for _, ref := range refs[:2] {
		if err := read(s.Images, ref, greedy, 20*time.Millisecond); !errors.Is(err, images.ErrNotYet) {
			t.Fatalf("%s: err = %v, want ErrNotYet", ref, err)
		}
	}
	wantBusy(t, "the client's third read", read(s.Images, refs[2], greedy, 0))
	if err := read(s.Images, refs[3], "198.51.100.8", 20*time.Millisecond); !errors.Is(err, images.ErrNotYet) {
		t.Fatalf("another client's read: err = %v, want ErrNotYet (started)", err)
	}
	if got := strings.Join(reg.WaitRequests(3, 5*time.Second, "/manifests/"), " "); strings.Count(got, "GET") != 3 || !strings.Contains(got, "/manifests/d") || strings.Contains(got, "/manifests/c") {
		t.Errorf("manifest requests %v, want the greedy client's 2 and the other client's 1", got)
	}
}

// TestClientBudgetOfNewInspections: a client's reads that start registry
// work spend its budget (2 here); past it such a read answers rate limited
// with a Retry-After, while its reads of stored images and other clients'
// reads go on.
func TestClientBudgetOfNewInspections(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Images: images.Options{ClientInspections: ratelimit.Limit{Burst: 2, Period: time.Hour}}})
	a, b, c := pushRandom(t, reg, "acme/app:a"), pushRandom(t, reg, "acme/app:b"), pushRandom(t, reg, "acme/app:c")
	const client = "198.51.100.9"
	for _, ref := range []analysis.Reference{a, b} {
		if err := read(s.Images, ref, client, 0); err != nil {
			t.Fatal(err)
		}
	}
	reg.Requests()
	err := read(s.Images, c, client, 0)
	var ae *analysis.Error
	if !errors.Is(err, analysis.ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter <= 0 {
		t.Fatalf("third new image: err = %v, want rate limited with a Retry-After", err)
	}
	if got := reg.Requests(); len(got) != 0 {
		t.Errorf("the refused read asked the registry: %v", got)
	}
	for i := range 5 {
		if err := read(s.Images, a, client, 0); err != nil {
			t.Fatalf("stored image, read %d: %v", i, err)
		}
	}
	if err := read(s.Images, c, "198.51.100.10", 0); err != nil {
		t.Errorf("another client: %v", err)
	}
}
