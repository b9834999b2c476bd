package faultreg_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
)

// withImage starts a registry holding acme/app:1, and forgets the push.
func withImage(t *testing.T) *faultreg.Registry {
	t.Helper()
	reg := faultreg.Start(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, reg.Host+"/acme/app:1"); err != nil {
		t.Fatal(err)
	}
	reg.Requests()
	return reg
}

func TestRequestsAreRecorded(t *testing.T) {
	reg := withImage(t)
	if _, err := crane.Head(reg.Host + "/acme/app:1"); err != nil {
		t.Fatal(err)
	}
	want := []string{"HEAD /v2/acme/app/manifests/1"}
	if got := reg.Peek("/manifests/"); !slices.Equal(got, want) {
		t.Errorf("Peek(/manifests/) = %v, want %v", got, want)
	}
	if got := reg.Peek(); len(got) < 2 || got[len(got)-1] != want[0] {
		t.Errorf("Peek() = %v, want the ping and %v", got, want)
	}
	if got := reg.WaitRequests(1, time.Second, "/manifests/", "/blobs/"); !slices.Equal(got, want) {
		t.Errorf("WaitRequests = %v, want %v", got, want)
	}
	if got := reg.Requests("/manifests/"); !slices.Equal(got, want) {
		t.Errorf("Requests(/manifests/) = %v, want %v", got, want)
	}
	if got := reg.Requests(); got != nil {
		t.Errorf("Requests after Requests = %v, want none", got)
	}
	start := time.Now()
	if got := reg.WaitRequests(1, 50*time.Millisecond); got != nil || time.Since(start) < 50*time.Millisecond {
		t.Errorf("WaitRequests with nothing coming = %v after %v", got, time.Since(start))
	}
}

func TestHoldUntilRelease(t *testing.T) {
	// Close releases what is still held; a request held at the end of the
	// test would otherwise hold up the server's Close.
	last := make(chan error, 1)
	started := false
	t.Cleanup(func() { // runs after the registry's Close
		if !started {
			return
		}
		if err := <-last; err != nil {
			t.Errorf("request held when the registry closed: %v", err)
		}
	})
	reg := withImage(t)
	reg.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})
	done := make(chan error, 1)
	go func() {
		_, err := crane.Head(reg.Host + "/acme/app:1")
		done <- err
	}()
	if got := reg.WaitRequests(1, 10*time.Second, "/manifests/"); len(got) != 1 {
		t.Fatalf("held requests %v, want one", got)
	}
	select {
	case err := <-done:
		t.Fatalf("a held request was answered (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	reg.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Released: the Hold rule is gone.
	if _, err := crane.Head(reg.Host + "/acme/app:1"); err != nil {
		t.Fatal(err)
	}

	// A held request ends with its context.
	reg.Add(faultreg.Rule{PathContains: "/manifests/", Fault: faultreg.Hold})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, reg.URL+"/v2/acme/app/manifests/1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a held request was answered %s", resp.Status)
	}
	started = true
	go func() {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Head(reg.URL + "/v2/acme/app/manifests/1")
		if err == nil {
			resp.Body.Close()
		}
		last <- err
	}()
	if got := reg.WaitRequests(4, 10*time.Second, "/manifests/"); len(got) != 4 {
		t.Fatalf("requests %v, want 4", got)
	}
}
