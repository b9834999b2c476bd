package images_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"go.uber.org/goleak"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
)

// TestCloseLeavesNothingRunning: Close returns only once every background
// inspection and listing has stopped, so the store they write to can be
// closed after it.
func TestCloseLeavesNothingRunning(t *testing.T) {
	e := newCachedEnv(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.push(t, "acme/app:1", img)
	before := goleak.IgnoreCurrent()
	e.reg.Add(holdRegistry...)
	ctx := context.Background()
	quick := images.ReadOptions{Wait: time.Millisecond}
	if _, err := e.svc.Read(ctx, auth.Viewer{}, e.ref(t, "acme/app:1"), quick); !errors.Is(err, images.ErrNotYet) {
		t.Fatalf("read with the registry held: %v", err)
	}
	repo := e.ref(t, "acme/app:1").Repository
	if _, err := e.svc.Tags(ctx, auth.Viewer{}, repo, quick); !errors.Is(err, images.ErrNotYet) {
		t.Fatalf("listing with the registry held: %v", err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		e.reg.Release()
	}()
	if err := e.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The registry's own connections may linger a moment after the answers.
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}
