package analysis_test

import (
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
)

// TestHumanSize: decimal units with one decimal, as docs/API.md's "18.6 MB".
func TestHumanSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{999, "999 B"},
		{1000, "1.0 kB"},
		{852_100, "852.1 kB"},
		{999_960, "1.0 MB"},
		{18_600_000, "18.6 MB"},
		{18_649_999, "18.6 MB"},
		{1_500_000_000, "1.5 GB"},
		{2_000_000_000_000, "2.0 TB"},
	} {
		if got := analysis.HumanSize(tc.n); got != tc.want {
			t.Errorf("HumanSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
