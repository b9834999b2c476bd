package analysis

import "fmt"

// HumanSize formats a byte count the way MicroBadger's badges did: decimal
// units with one decimal ("18.6 MB"). Pages, badges and the command line all
// use it, so a size reads the same everywhere.
func HumanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB", "PB"} {
		v /= unit
		if v < unit-0.05 || u == "PB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// Count writes n of unit as a person reads it: "1 layer", "3 layers",
// "0 tags". Pages and the command line all use it, so no count reads "1
// tags". unit is a noun whose plural adds an s.
func Count(n int, unit string) string {
	if n == 1 || n == -1 {
		return fmt.Sprintf("%d %s", n, unit)
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
