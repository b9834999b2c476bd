package images_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
)

// TestCachesAreBoundedInBytes: six images of one shape (so of one cost c
// as a report, and one cost a as an answer) read through a service whose
// caches hold 3.5 c and 3.5 a keep three of each; with room for all six in
// bytes, the entry bound (two) still holds.
func TestCachesAreBoundedInBytes(t *testing.T) {
	reg := faultreg.Start(t)
	st := stack.OpenStore(t, stack.SQLite)
	var refs []analysis.Reference
	for i := range 6 {
		refs = append(refs, pushRandom(t, reg, fmt.Sprintf("acme/app%d:1", i)))
	}
	// One image's cost, measured on a service of its own.
	probe := stack.New(t, stack.Options{Store: st}).Images
	a, err := probe.Read(context.Background(), auth.Viewer{}, refs[0], images.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := probe.Report(context.Background(), refs[0].Repository, a.Report.Digest)
	if err != nil {
		t.Fatal(err)
	}
	c := images.ReportCost(shared)
	if c < 1000 {
		t.Fatalf("a one-layer image costs %d bytes: the estimate misses the report's own structs", c)
	}
	// An answer holds its report and a little more (its reference, tags,
	// supply chain): its cost, as kept.
	_, _, _, ac := probe.Cached()
	if ac < c {
		t.Fatalf("an answer costs %d bytes, less than its report's %d", ac, c)
	}
	readAll := func(svc *images.Service) {
		t.Helper()
		for _, ref := range refs {
			if _, err := svc.Read(context.Background(), auth.Viewer{}, ref, images.ReadOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name      string
		opts      images.Options
		wantKept  int
		wantBound [2]int64
	}{
		{"bytes", images.Options{ReportCacheBytes: c*3 + c/2, AnswerCacheBytes: ac*3 + ac/2}, 3, [2]int64{c*3 + c/2, ac*3 + ac/2}},
		{"entries", images.Options{CacheSize: 2, ReportCacheBytes: c * 100, AnswerCacheBytes: ac * 100}, 2, [2]int64{c * 100, ac * 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := stack.New(t, stack.Options{Store: st, Images: tc.opts}).Images
			readAll(svc)
			reports, answers, rb, ab := svc.Cached()
			if reports != tc.wantKept || answers != tc.wantKept {
				t.Errorf("kept %d reports and %d answers, want %d of each", reports, answers, tc.wantKept)
			}
			if rb > tc.wantBound[0] || ab > tc.wantBound[1] {
				t.Errorf("kept %d and %d bytes, over the bounds %v", rb, ab, tc.wantBound)
			}
		})
	}
}
