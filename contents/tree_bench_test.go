package contents_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/store"
)

// BenchmarkTree5000 lists a directory of 5,000 files (the first page of
// 1,000) of an image of three layers, each with other directories beside
// it, as the tree route does: the server time of one listing.
func BenchmarkTree5000(b *testing.B) {
	ctx := context.Background()
	st := stack.OpenStore(b, stack.SQLite)
	now := time.Now()
	p := &analysis.Platform{Digest: "sha256:" + fmt.Sprintf("%064x", 1)}
	for l := range 3 {
		var entries []analysis.LayerEntry
		for d := range 50 {
			for f := range 200 {
				entries = append(entries, analysis.LayerEntry{Path: fmt.Sprintf("opt/pkg%d-%d/file%d", l, d, f), Type: analysis.TypeFile, Size: 10,
					Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(fmt.Appendf(nil, "%d-%d-%d", l, d, f)))})
			}
		}
		if l == 1 {
			for f := range 5000 {
				entries = append(entries, analysis.LayerEntry{Path: fmt.Sprintf("usr/lib/lib%05d.so", f), Type: analysis.TypeFile, Size: int64(f),
					Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(fmt.Appendf(nil, "lib%d", f)))})
			}
		}
		digest := fmt.Sprintf("sha256:%064x", 100+l)
		if ok, _, err := st.ClaimLayerContents(ctx, digest, "bench", now, time.Minute); err != nil || !ok {
			b.Fatal(err)
		}
		if err := st.FinishLayerContents(ctx, digest, "bench", store.LayerContentsInfo{}, entries, now); err != nil {
			b.Fatal(err)
		}
		p.Layers = append(p.Layers, analysis.Layer{Digest: digest})
	}
	if _, err := st.RequestImageContents(ctx, p.Digest, now); err != nil {
		b.Fatal(err)
	}
	if err := st.SetImageContents(ctx, p.Digest, store.ContentsDone, "", "", []byte(`{"state":"done"}`), now); err != nil {
		b.Fatal(err)
	}
	svc := contents.New(contents.Options{Store: st})
	b.Cleanup(svc.Close)
	for b.Loop() {
		t, err := svc.Tree(ctx, p, contents.TreeOptions{Path: "/usr/lib", Layer: -1})
		if err != nil || len(t.Entries) != contents.TreePageSize || t.Next == nil {
			b.Fatalf("%d entries, %v", len(t.Entries), err)
		}
	}
}

// TestTreePages: a directory of 2,500 entries comes in pages of 1,000,
// sorted by name, each starting after the last one's cursor.
func TestTreePages(t *testing.T) {
	ctx := context.Background()
	st := stack.OpenStore(t, stack.SQLite)
	now := time.Now()
	var entries []analysis.LayerEntry
	for f := 2499; f >= 0; f-- { // written in reverse, listed sorted
		entries = append(entries, analysis.LayerEntry{Path: fmt.Sprintf("data/f%04d", f), Type: analysis.TypeFile, Size: 1, Digest: fmt.Sprintf("sha256:%064x", f)})
	}
	digest := fmt.Sprintf("sha256:%064x", 7)
	if ok, _, err := st.ClaimLayerContents(ctx, digest, "t", now, time.Minute); err != nil || !ok {
		t.Fatal(err)
	}
	if err := st.FinishLayerContents(ctx, digest, "t", store.LayerContentsInfo{}, entries, now); err != nil {
		t.Fatal(err)
	}
	p := &analysis.Platform{Digest: fmt.Sprintf("sha256:%064x", 8), Layers: []analysis.Layer{{Digest: digest}}}
	if _, err := st.RequestImageContents(ctx, p.Digest, now); err != nil {
		t.Fatal(err)
	}
	if err := st.SetImageContents(ctx, p.Digest, store.ContentsDone, "", "", []byte(`{"state":"done"}`), now); err != nil {
		t.Fatal(err)
	}
	svc := contents.New(contents.Options{Store: st})
	t.Cleanup(svc.Close)
	var names []string
	cursor := ""
	for page := 0; page < 5; page++ {
		tr, err := svc.Tree(ctx, p, contents.TreeOptions{Path: "/data", Layer: -1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tr.Entries {
			names = append(names, e.Name)
		}
		if want := []int{1000, 1000, 500}[page]; len(tr.Entries) != want {
			t.Fatalf("page %d has %d entries, want %d", page, len(tr.Entries), want)
		}
		if tr.Next == nil {
			break
		}
		cursor = *tr.Next
	}
	if len(names) != 2500 {
		t.Fatalf("%d names in all", len(names))
	}
	for i, n := range names {
		if want := fmt.Sprintf("f%04d", i); n != want {
			t.Fatalf("entry %d is %s, want %s", i, n, want)
		}
	}
}
