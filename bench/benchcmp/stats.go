package main

import (
	"fmt"
	"slices"
	"time"
)

// summary describes one side's wall times.
type summary struct {
	median, p10, p90 time.Duration
	noise            float64 // (p90-p10)/median
}

func (s summary) String() string {
	return fmt.Sprintf("median %v  p10 %v  p90 %v  noise %.1f%%",
		s.median.Round(10*time.Microsecond), s.p10.Round(10*time.Microsecond),
		s.p90.Round(10*time.Microsecond), 100*s.noise)
}

func summarize(ds []time.Duration) summary {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	s := summary{
		median: quantile(sorted, 0.5),
		p10:    quantile(sorted, 0.1),
		p90:    quantile(sorted, 0.9),
	}
	if s.median > 0 {
		s.noise = float64(s.p90-s.p10) / float64(s.median)
	}
	return s
}

// quantile interpolates linearly between the closest ranks of sorted (the method R
// and NumPy use by default), so the median of an even count is the mean of the middle two.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(i)
	return sorted[i] + time.Duration(frac*float64(sorted[i+1]-sorted[i]))
}
