package contents_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/store"
)

func TestMain(m *testing.M) { stack.Main(m) }

type ent struct {
	name string
	typ  byte
	body string
	link string
}

func file(name string, size int, fill byte) ent {
	return ent{name: name, typ: tar.TypeReg, body: strings.Repeat(string(fill), size)}
}
func dir(name string) ent      { return ent{name: name, typ: tar.TypeDir} }
func whiteout(name string) ent { return ent{name: name, typ: tar.TypeReg} }

func layerOf(t testing.TB, ents ...ent) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		mode := int64(0o644)
		if e.typ == tar.TypeDir {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return stack.TarLayer(t, buf.Bytes())
}

func push(t testing.TB, ref string, layers ...v1.Layer) {
	t.Helper()
	stack.PushImage(t, stack.LayersImage(t, layers...), ref)
}

// platform reads ref through the one read path, as the routes do for an
// anonymous visitor (the test registry's images are public).
func platform(t testing.TB, s *stack.Stack, ref string) (analysis.Repository, *analysis.Platform) {
	t.Helper()
	r, err := analysis.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Images.Read(context.Background(), auth.Viewer{}, r, images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := a.Report.Select("")
	if !ok {
		t.Fatal("no platform")
	}
	return r.Repository, p
}

func analyse(t testing.TB, svc *contents.Service, repo analysis.Repository, p *analysis.Platform) contents.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := svc.Start(ctx, repo, p); err != nil {
		t.Fatal(err)
	}
	if err := svc.Wait(ctx, p.Digest); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Status(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The layers of the image most tests analyse: a base with a cache, a layer
// that removes the cache and hides a directory, and one that writes a file
// back; the expectations below are written by hand from them.
func fixture(t testing.TB) (base1, base2, cleanup, app v1.Layer) {
	base1 = layerOf(t, dir("etc/"), file("etc/passwd", 5, 'p'), dir("var/"), dir("var/cache/"), file("var/cache/pkg.bin", 1000, 'c'))
	base2 = layerOf(t, dir("opt/"), dir("opt/app/"), file("opt/app/old", 100, 'o'), dir("usr/"), file("usr/tool", 300, 't'))
	cleanup = layerOf(t, whiteout("var/cache/.wh.pkg.bin"), dir("opt/app/"), whiteout("opt/app/.wh..wh..opq"), file("opt/app/new", 40, 'n'))
	app = layerOf(t, file("var/cache/pkg.bin", 200, 'C'), file("etc/passwd", 6, 'P'))
	return
}

func TestAnalysis(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true})
		base1, base2, cleanup, app := fixture(t)
		ref := s.Registry.Host + "/acme/app:1"
		push(t, ref, base1, base2, cleanup, app)
		repo, p := platform(t, s, ref)
		svc := contents.New(contents.Options{Client: s.Client, Store: s.Store})
		t.Cleanup(svc.Close)

		if _, err := svc.Status(context.Background(), p); !errors.Is(err, contents.ErrNotAnalyzed) {
			t.Fatalf("before any request: %v, want ErrNotAnalyzed", err)
		}
		s.Registry.Requests()
		st := analyse(t, svc, repo, p)
		if st.State != store.ContentsDone || st.Result == nil {
			t.Fatalf("state = %+v", st)
		}
		r := st.Result
		// Shipped: 5+1000 + 100+300 + 40 + 200+6 = 1651; kept: passwd 6,
		// pkg.bin 200, tool 300, new 40 = 546.
		if r.LayerFilesSize != 1651 || r.TotalSize != 546 || r.WastedSize != 1105 || r.FileCount != 10 {
			t.Errorf("sizes: files %d total %d wasted %d count %d, want 1651 546 1105 10", r.LayerFilesSize, r.TotalSize, r.WastedSize, r.FileCount)
		}
		wantWasted := []contents.Wasted{
			{Path: "/var/cache/pkg.bin", Size: 1000, Copies: 2, Layers: []int{0, 3}},
			{Path: "/opt/app/old", Size: 100, Copies: 1, Layers: []int{1}},
			{Path: "/etc/passwd", Size: 5, Copies: 2, Layers: []int{0, 3}},
		}
		if diff := cmp.Diff(wantWasted, r.Wasted); diff != "" {
			t.Errorf("wasted (-want +got):\n%s", diff)
		}
		gotLayers := make([][6]int64, len(r.Layers))
		for i, l := range r.Layers {
			gotLayers[i] = [6]int64{int64(l.Added), int64(l.Modified), int64(l.Removed), l.AddedSize, l.ModifiedSize, l.RemovedSize}
			if l.Source != "stream" || l.Digest != p.Layers[i].Digest || l.DiffID == "" {
				t.Errorf("layer %d = %+v", i, l)
			}
		}
		wantLayers := [][6]int64{{5, 0, 0, 1005, 0, 0}, {5, 0, 0, 400, 0, 0}, {1, 1, 2, 40, 0, 1100}, {1, 1, 0, 200, 6, 0}}
		if diff := cmp.Diff(wantLayers, gotLayers); diff != "" {
			t.Errorf("per layer added, modified, removed and their sizes (-want +got):\n%s", diff)
		}
		if reqs := s.Registry.Requests("/blobs/"); len(reqs) != 4 {
			t.Errorf("blob requests %v, want each of the 4 layers read once", reqs)
		}

		// The filesystem after layer 2, with what layer 2 changed.
		tree, err := svc.Tree(context.Background(), p, contents.TreeOptions{Path: "/opt/app", Layer: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(tree.Entries) != 1 || tree.Entries[0].Name != "new" || *tree.Entries[0].Change != "added" || tree.Entries[0].Size != 40 {
			t.Errorf("tree of /opt/app after layer 2 = %+v", tree)
		}
		tree, err = svc.Tree(context.Background(), p, contents.TreeOptions{Path: "/opt/app", Layer: 2, Changes: true})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range tree.Entries {
			names = append(names, e.Name+" "+*e.Change)
		}
		if diff := cmp.Diff([]string{"new added", "old removed"}, names); diff != "" {
			t.Errorf("changes of layer 2 in /opt/app (-want +got):\n%s", diff)
		}
		tree, err = svc.Tree(context.Background(), p, contents.TreeOptions{Path: "/", Layer: -1})
		if err != nil {
			t.Fatal(err)
		}
		names = nil
		for _, e := range tree.Entries {
			names = append(names, e.Name+" "+e.Type)
		}
		if diff := cmp.Diff([]string{"etc dir", "opt dir", "usr dir", "var dir"}, names); diff != "" {
			t.Errorf("root (-want +got):\n%s", diff)
		}

		// A second image on the same base reads none of the base's bytes.
		ref2 := s.Registry.Host + "/acme/other:1"
		push(t, ref2, base1, base2, layerOf(t, file("srv/data", 10, 'd')))
		repo2, p2 := platform(t, s, ref2)
		s.Registry.Requests()
		st2 := analyse(t, svc, repo2, p2)
		if st2.State != store.ContentsDone {
			t.Fatalf("second image: %+v", st2)
		}
		reqs := s.Registry.Requests("/blobs/")
		if len(reqs) != 1 || !strings.Contains(reqs[0], p2.Layers[2].Digest) {
			t.Errorf("second image's blob requests %v, want only its own layer", reqs)
		}
		// /srv is named by no tar entry, only needed by /srv/data: the
		// listing of the root still shows it.
		tree, err = svc.Tree(context.Background(), p2, contents.TreeOptions{Path: "/", Layer: 2, Changes: true})
		if err != nil || len(tree.Entries) != 1 || tree.Entries[0].Name != "srv" || tree.Entries[0].Type != "dir" || *tree.Entries[0].Change != "added" {
			t.Errorf("root of the second image, changes of layer 2 = %+v, %v", tree.Entries, err)
		}
		// A third image of layers all known: the POST answers the result.
		ref3 := s.Registry.Host + "/acme/third:1"
		push(t, ref3, base1, base2)
		repo3, p3 := platform(t, s, ref3)
		s.Registry.Requests()
		st3, err := svc.Start(context.Background(), repo3, p3)
		if err != nil || st3.Result == nil || st3.Result.TotalSize != 1405 || st3.Result.FileCount != 10 {
			t.Errorf("an image of known layers: %+v, %v, want its result at once (1,405 bytes in 10 entries)", st3, err)
		}
		if reqs := s.Registry.Requests("/blobs/"); len(reqs) != 0 {
			t.Errorf("an image of known layers read blobs: %v", reqs)
		}
		d, err := svc.FilesDiff(context.Background(), p, p2)
		if err != nil || d == nil {
			t.Fatalf("files diff = %v, %v", d, err)
		}
		// /opt/app/old is back: the second image has no opaque layer.
		want := analysis.FilesDiff{
			Added:      []analysis.FileDiffEntry{{Path: "/opt/app/old", Size: 100}, {Path: "/srv"}, {Path: "/srv/data", Size: 10}},
			Removed:    []analysis.FileDiffEntry{{Path: "/opt/app/new", Size: 40}},
			Changed:    []analysis.FileDiffEntry{{Path: "/etc/passwd", Size: 5}, {Path: "/var/cache/pkg.bin", Size: 1000}},
			AddedCount: 3, RemovedCount: 1, ChangedCount: 2,
		}
		if diff := cmp.Diff(want, *d); diff != "" {
			t.Errorf("files diff (-want +got):\n%s", diff)
		}
	})
}

func TestAnalysisLimits(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true})
		base1, base2, cleanup, app := fixture(t)
		ref := s.Registry.Host + "/acme/app:1"
		push(t, ref, base1, base2, cleanup, app)
		repo, p := platform(t, s, ref)

		small := contents.New(contents.Options{Client: s.Client, Store: s.Store, MaxBytes: p.Layers[0].Size})
		t.Cleanup(small.Close)
		s.Registry.Requests()
		st := analyse(t, small, repo, p)
		if st.State != store.ContentsFailed || st.Reason != contents.ReasonTooLarge || !strings.Contains(st.Message, "--contents-max-bytes") {
			t.Fatalf("over the byte budget: %+v", st)
		}
		if reqs := s.Registry.Requests("/blobs/"); len(reqs) != 0 {
			t.Errorf("over the budget, blobs were read: %v", reqs)
		}
		infos, _ := s.Store.LayerContents(context.Background(), []string{p.Layers[0].Digest, p.Layers[1].Digest})
		if len(infos) != 0 {
			t.Errorf("layers kept for an image over budget: %+v", infos)
		}

		few := contents.New(contents.Options{Client: s.Client, Store: s.Store, MaxEntries: 4})
		t.Cleanup(few.Close)
		st = analyse(t, few, repo, p)
		if st.State != store.ContentsFailed || st.Reason != contents.ReasonTooLarge {
			t.Fatalf("over the entry limit: %+v", st)
		}
		if entries, _ := s.Store.LayerEntries(context.Background(), p.Layers[0].Digest); len(entries) != 0 {
			t.Errorf("entries kept of a layer over the limit: %d", len(entries))
		}

		// A new request with room enough retries and finishes.
		ok := contents.New(contents.Options{Client: s.Client, Store: s.Store})
		t.Cleanup(ok.Close)
		if st := analyse(t, ok, repo, p); st.State != store.ContentsDone {
			t.Fatalf("retry: %+v", st)
		}
	})
}

// Two processes asked for images sharing layers at once read each shared
// layer once between them.
func TestAnalysisSharedAcrossProcesses(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		db := stack.NewDatabase(t, engine)
		a := stack.New(t, stack.Options{DB: db, Registry: true})
		b := stack.New(t, stack.Options{DB: db})
		base1, base2, cleanup, app := fixture(t)
		ref := a.Registry.Host + "/acme/app:1"
		push(t, ref, base1, base2, cleanup, app)
		ref2 := a.Registry.Host + "/acme/other:1"
		push(t, ref2, base1, base2, app)
		repoA, pA := platform(t, a, ref)
		repoB, pB := platform(t, b, ref2)
		svcA := contents.New(contents.Options{Client: a.Client, Store: a.Store, Owner: "a"})
		svcB := contents.New(contents.Options{Client: b.Client, Store: b.Store, Owner: "b"})
		t.Cleanup(svcA.Close)
		t.Cleanup(svcB.Close)
		a.Registry.Requests()
		var wg sync.WaitGroup
		var stA, stB contents.Status
		wg.Go(func() { stA = analyse(t, svcA, repoA, pA) })
		wg.Go(func() { stB = analyse(t, svcB, repoB, pB) })
		wg.Wait()
		if stA.State != store.ContentsDone || stB.State != store.ContentsDone {
			t.Fatalf("states %+v %+v", stA, stB)
		}
		seen := map[string]int{}
		for _, r := range a.Registry.Requests("/blobs/") {
			seen[r]++
		}
		if len(seen) != 4 {
			t.Errorf("blob requests %v, want the 4 distinct layers", seen)
		}
		for r, n := range seen {
			if n != 1 {
				t.Errorf("%s read %d times", r, n)
			}
		}
	})
}

// A full queue refuses a new analysis with a message, and takes it once
// the queue has room again.
func TestAnalysisQueueBound(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true})
	base1, base2, cleanup, app := fixture(t)
	push(t, s.Registry.Host+"/acme/a:1", base1, base2)
	push(t, s.Registry.Host+"/acme/b:1", cleanup, app)
	repoA, pA := platform(t, s, s.Registry.Host+"/acme/a:1")
	repoB, pB := platform(t, s, s.Registry.Host+"/acme/b:1")
	s.Registry.Add(faultreg.Rule{PathContains: "/blobs/", Fault: faultreg.Hold})
	svc := contents.New(contents.Options{Client: s.Client, Store: s.Store, Queue: 1, Concurrency: 1})
	t.Cleanup(svc.Close)
	if _, err := svc.Start(context.Background(), repoA, pA); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Start(context.Background(), repoB, pB)
	if msg, _ := analysis.PublicMessage(err); !errors.Is(err, contents.ErrBusy) || !strings.Contains(msg, "already queued") {
		t.Fatalf("a second image with a queue of 1: %v, want ErrBusy saying so", err)
	}
	s.Registry.Reset()
	s.Registry.Release()
	if st := analyse(t, svc, repoA, pA); st.State != store.ContentsDone {
		t.Fatalf("first image: %+v", st)
	}
	if st := analyse(t, svc, repoB, pB); st.State != store.ContentsDone {
		t.Fatalf("second image once the queue had room: %+v", st)
	}
}
