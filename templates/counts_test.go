package templates_test

import (
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/templates"
)

// TestCountsAgreeWithTheirNumber: a count on the image page reads "1 layer"
// for one and "4 layers" for four, in the table's total and in the layer
// bar's description for screen readers.
func TestCountsAgreeWithTheirNumber(t *testing.T) {
	for _, n := range []int{1, 4} {
		rep := report()
		p := &rep.Platforms[0]
		p.Layers, p.LayerCount, p.Parent = layers(n, "1"), n, nil
		doc := render(t, templates.Image(templates.NewImagePage(rep, "", nil, opts())))
		want := map[int]string{1: "1 layer", 4: "4 layers"}[n]
		if got := byID(doc, "layers-total").Text(); got != "Total, "+want {
			t.Errorf("%d layers: total %q, want %q", n, got, "Total, "+want)
		}
		if got := byID(doc, "layer-bar").AttrOr("aria-label", ""); got != "Layer sizes: "+want+", "+analysis.HumanSize(p.DownloadSize)+" in total" {
			t.Errorf("%d layers: bar described as %q", n, got)
		}
	}
	if got := analysis.Count(1, "tag") + ", " + analysis.Count(0, "image") + ", " + analysis.Count(2, "layer"); got != "1 tag, 0 images, 2 layers" {
		t.Errorf("Count: %q", got)
	}
}
