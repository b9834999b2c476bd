package analysis_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
)

// TestChainIDs checks the OCI image spec's definition, computed here by hand.
func TestChainIDs(t *testing.T) {
	a := "sha256:" + strings.Repeat("a", 64)
	b := "sha256:" + strings.Repeat("b", 64)
	c := "sha256:" + strings.Repeat("c", 64)
	ab := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(a+" "+b)))
	abc := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(ab+" "+c)))
	if diff := cmp.Diff([]string{a, ab, abc}, analysis.ChainIDs([]string{a, b, c})); diff != "" {
		t.Errorf("ChainIDs (-want +got):\n%s", diff)
	}
}

func TestParentIndexLongestPrefixOtherRepository(t *testing.T) {
	x := analysis.NewParentIndex()
	l := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	chain := analysis.ChainIDs([]string{l(1), l(2), l(3), l(4)})
	base := analysis.Repository{Registry: "r", Name: "base"}
	runtime := analysis.Repository{Registry: "r", Name: "runtime"}
	app := analysis.Repository{Registry: "r", Name: "app"}
	x.Add(base, l(100), chain[1], 2, 1)
	x.Add(runtime, l(101), chain[2], 3, 2)
	x.Add(runtime, l(101), chain[2], 3, 2) // known: ignored
	x.Add(app, l(102), chain[3], 4, 3)
	if x.Len() != 3 {
		t.Errorf("Len = %d, want 3", x.Len())
	}
	if got := x.Lookup(app, chain); len(got) != 1 || got[0].Repository != runtime || got[0].Layers != 3 {
		t.Errorf("app's candidates = %+v, want runtime", got)
	}
	// Equal length counts, but never from the image's own repository.
	if got := x.Lookup(runtime, chain[:3]); len(got) != 1 || got[0].Repository != base {
		t.Errorf("runtime's candidates = %+v, want base", got)
	}
	if got := x.Lookup(base, chain[:2]); len(got) != 0 {
		t.Errorf("base's candidates = %+v, want none", got)
	}
	other := analysis.ChainIDs([]string{l(9), l(2)})
	if got := x.Lookup(app, other); len(got) != 0 {
		t.Errorf("unrelated image's candidates = %+v, want none", got)
	}
}
