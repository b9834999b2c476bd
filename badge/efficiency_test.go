package badge_test

import (
	"testing"

	"github.com/imagebadger/imagebadger/badge"
)

func TestEfficiencyBadge(t *testing.T) {
	for _, tc := range []struct {
		eff   float64
		right string
		color badge.Color
	}{
		{1, "100%", badge.ColorEfficient},
		{0.996, "99%", badge.ColorEfficient},
		{0.96, "96%", badge.ColorGood},
		{0.9, "90%", badge.ColorFair},
		{0.8, "80%", badge.ColorPoor},
		{0.023, "2%", badge.ColorWasteful},
	} {
		b := badge.EfficiencyBadge(tc.eff)
		if b.Left != "efficiency" || b.Right != tc.right || b.Color != tc.color {
			t.Errorf("EfficiencyBadge(%v) = %+v, want %s in %s", tc.eff, b, tc.right, tc.color)
		}
	}
}
