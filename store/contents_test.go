package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

func contentsDigest(i int) string { return fmt.Sprintf("sha256:%064x", i) }

// TestLayerContentsClaimAndKeep: one analyser at a time per layer, a lease
// that runs out passes the layer on, entries are kept only with "done" and
// come back as they were given (paths cleaned), whole or by directory.
func TestLayerContentsClaimAndKeep(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	layer := contentsDigest(1)

	ok, info, err := s.ClaimLayerContents(ctx, layer, "a", t0, time.Minute)
	if err != nil || !ok || info.State != store.ContentsRunning || info.LeaseOwner != "a" {
		t.Fatalf("first claim = %v %+v %v, want a running claim by a", ok, info, err)
	}
	if ok, info, _ := s.ClaimLayerContents(ctx, layer, "b", t0.Add(30*time.Second), time.Minute); ok || info.LeaseOwner != "a" {
		t.Fatalf("b claimed a layer a holds: %v %+v", ok, info)
	}
	// a dies; its lease runs out and b takes the layer over.
	if ok, _, _ := s.ClaimLayerContents(ctx, layer, "b", t0.Add(2*time.Minute), time.Minute); !ok {
		t.Fatal("b could not take over a lease that ran out")
	}
	entries := []analysis.LayerEntry{
		{Path: "./etc/", Type: analysis.TypeDir, Mode: 0o755},
		{Path: "etc/hosts", Type: analysis.TypeFile, Size: 12, Mode: 0o644, UID: 1, GID: 2, Digest: contentsDigest(7)},
		{Path: "bin", Type: analysis.TypeSymlink, Mode: 0o777, LinkTarget: "usr/bin"},
		{Path: "etc/.wh.old", Type: analysis.TypeFile, Digest: contentsDigest(8)},
		{Path: "usr/lib/x", Type: analysis.TypeHardlink, LinkTarget: "etc/hosts"},
		{Path: "./", Type: analysis.TypeDir, Mode: 0o755},
	}
	if err := s.FinishLayerContents(ctx, layer, "a", store.LayerContentsInfo{}, entries, t0); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a finished a layer b holds: %v", err)
	}
	if got, _ := s.LayerEntries(ctx, layer); len(got) != 0 {
		t.Fatalf("entries kept before the layer was done: %v", got)
	}
	if err := s.FinishLayerContents(ctx, layer, "b", store.LayerContentsInfo{Source: "stream", Compression: "gzip", BytesRead: 99}, entries, t0); err != nil {
		t.Fatal(err)
	}
	if ok, info, _ := s.ClaimLayerContents(ctx, layer, "c", t0.Add(time.Hour), time.Minute); ok || info.State != store.ContentsDone ||
		info.EntryCount != 6 || info.Source != "stream" || info.BytesRead != 99 {
		t.Fatalf("a done layer: claimed %v, %+v", ok, info)
	}
	want := []analysis.LayerEntry{
		{Path: "/etc", Type: analysis.TypeDir, Mode: 0o755},
		{Path: "/etc/hosts", Type: analysis.TypeFile, Size: 12, Mode: 0o644, UID: 1, GID: 2, Digest: contentsDigest(7)},
		{Path: "/bin", Type: analysis.TypeSymlink, Mode: 0o777, LinkTarget: "usr/bin"},
		{Path: "/etc/.wh.old", Type: analysis.TypeFile, Digest: contentsDigest(8)},
		// The directories /usr/lib/x needs, which the tar does not hold.
		{Path: "/usr", Type: analysis.TypeDir, Mode: 0o755, Implicit: true},
		{Path: "/usr/lib", Type: analysis.TypeDir, Mode: 0o755, Implicit: true},
		{Path: "/usr/lib/x", Type: analysis.TypeHardlink, LinkTarget: "etc/hosts"},
	}
	got, err := s.LayerEntries(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	got, err = s.LayerDirEntries(ctx, layer, []string{"/etc", "/usr/lib"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]analysis.LayerEntry{want[1], want[3], want[6]}, got); diff != "" {
		t.Errorf("entries of /etc and /usr/lib (-want +got):\n%s", diff)
	}

	// A failure is kept with its reason until a claim retries it.
	other := contentsDigest(2)
	if ok, _, _ := s.ClaimLayerContents(ctx, other, "a", t0, time.Minute); !ok {
		t.Fatal("claim of a new layer failed")
	}
	if err := s.FailLayerContents(ctx, other, "a", "too_large", "over 10 bytes", t0); err != nil {
		t.Fatal(err)
	}
	infos, err := s.LayerContents(ctx, []string{layer, other, contentsDigest(3)})
	if err != nil || len(infos) != 2 || infos[other].State != store.ContentsFailed || infos[other].Reason != "too_large" {
		t.Fatalf("infos = %+v, %v", infos, err)
	}
	if ok, _, _ := s.ClaimLayerContents(ctx, other, "b", t0, time.Minute); !ok {
		t.Fatal("a failed layer could not be retried")
	}
}

func TestImageContentsRequests(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ib.db"))
	img := contentsDigest(10)
	if _, err := s.ImageContents(ctx, img); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("never requested: err = %v, want ErrNotFound", err)
	}
	c, err := s.RequestImageContents(ctx, img, t0)
	if err != nil || c.State != store.ContentsQueued || !c.RequestedAt.Equal(t0) {
		t.Fatalf("request = %+v, %v", c, err)
	}
	if err := s.SetImageContents(ctx, img, store.ContentsFailed, "too_large", "over", nil, t0); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.RequestImageContents(ctx, img, t0.Add(time.Minute)); c.State != store.ContentsQueued || c.Reason != "" {
		t.Fatalf("a failed analysis requested again = %+v, want queued", c)
	}
	if err := s.SetImageContents(ctx, img, store.ContentsDone, "", "", []byte(`{"x":1}`), t0); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.RequestImageContents(ctx, img, t0.Add(time.Hour)); c.State != store.ContentsDone || string(c.Summary) != `{"x":1}` {
		t.Fatalf("a done analysis requested again = %+v, want it kept", c)
	}
}
