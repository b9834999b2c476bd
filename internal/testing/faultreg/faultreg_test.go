package faultreg_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

func TestPageTagsFollowsLinks(t *testing.T) {
	reg := withImage(t)
	var want []string
	for i := range 250 {
		tag := fmt.Sprintf("t%03d", i)
		if err := crane.Tag(reg.Host+"/acme/app:1", tag); err != nil {
			t.Fatal(err)
		}
		want = append(want, tag)
	}
	want = append(want, "1") // sorts first
	slices.Sort(want)
	reg.Add(faultreg.Rule{PathContains: "/tags/list", Fault: faultreg.PageTags, Page: 100})
	reg.Requests()

	// The first page, as a client sees it: 100 tags and a Link to the next.
	resp, err := http.Get(reg.URL + "/v2/acme/app/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	var page struct{ Tags []string }
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if wantLink := `</v2/acme/app/tags/list?last=t098&n=100>; rel="next"`; resp.Header.Get("Link") != wantLink ||
		!slices.Equal(page.Tags, want[:100]) {
		t.Errorf("first page: Link %q, tags %v…; want %q and the first 100", resp.Header.Get("Link"), page.Tags[:3], wantLink)
	}

	// go-containerregistry's lister follows the links to the whole list.
	got, err := crane.ListTags(reg.Host + "/acme/app")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %d tags, want the %d pushed", len(got), len(want))
	}
	if lists := reg.Requests("/tags/list"); len(lists) != 1+3 {
		t.Errorf("tag list requests %v, want 1 + 3 pages", lists)
	}
}

func TestLinkSelfRepeatsThePage(t *testing.T) {
	reg := withImage(t)
	reg.Add(faultreg.Rule{PathContains: "/tags/list", Fault: faultreg.LinkSelf, Times: 5})
	got, err := crane.ListTags(reg.Host + "/acme/app")
	if err != nil {
		t.Fatal(err)
	}
	// Five answers link to themselves, the sixth ends the list: a client
	// that follows blindly reads the one page six times.
	if want := []string{"1", "1", "1", "1", "1", "1"}; !slices.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
	lists := reg.Requests("/tags/list")
	if len(lists) != 6 || len(slices.Compact(slices.Clone(lists))) != 1 {
		t.Errorf("tag list requests %v, want the same one six times", lists)
	}
}

func TestTrickleSendsAByteAtATime(t *testing.T) {
	reg := withImage(t)
	whole, err := crane.Manifest(reg.Host + "/acme/app:1")
	if err != nil {
		t.Fatal(err)
	}
	const delay = time.Millisecond
	reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: "/manifests/", Fault: faultreg.Trickle, Delay: delay})
	start := time.Now()
	got, err := crane.Manifest(reg.Host + "/acme/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, whole) {
		t.Errorf("trickled manifest differs:\n%s\nwant\n%s", got, whole)
	}
	// A lower bound only: each byte after the first waited at least delay.
	if min := time.Duration(len(whole)-1) * delay; time.Since(start) < min {
		t.Errorf("the manifest came in %s, faster than a byte per %s allows (%s)", time.Since(start), delay, min)
	}

	// Reset sends the rest of a trickling answer at once.
	reg.Reset()
	reg.Requests()
	reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: "/manifests/", Fault: faultreg.Trickle, Delay: time.Hour})
	released := make(chan []byte, 1)
	go func() {
		b, err := crane.Manifest(reg.Host + "/acme/app:1")
		if err != nil {
			t.Error(err)
		}
		released <- b
	}()
	if got := reg.WaitRequests(1, 10*time.Second, "/manifests/"); len(got) != 1 {
		t.Fatalf("requests %v, want the manifest's GET", got)
	}
	reg.Reset()
	if got := <-released; !bytes.Equal(got, whole) {
		t.Errorf("manifest after Reset differs:\n%s\nwant\n%s", got, whole)
	}

	// A client that gives up ends the trickle: the registry's Close (at the
	// test's end) would wait for a handler still sending.
	reg.Add(faultreg.Rule{Method: http.MethodGet, PathContains: "/manifests/", Fault: faultreg.Trickle, Delay: time.Hour})
	c := &http.Client{Timeout: 100 * time.Millisecond}
	resp, err := c.Get(reg.URL + "/v2/acme/app/manifests/1")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a body trickled a byte an hour was read whole in 100 ms")
	}
}
