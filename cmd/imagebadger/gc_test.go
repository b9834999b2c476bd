package main

import "testing"

// TestGCPercentFor: a small live heap gets at least gcHeadroom of growth
// (within the cap); a large one gets Go's default.
func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, gcPercentMax},
		{1 << 20, gcPercentMax},   // 32 MiB of room would be 3200%: capped
		{4 << 20, 800},            // 4 MiB live: 32 MiB is 800%
		{16 << 20, 200},           // 16 MiB live: 200%
		{32 << 20, gcPercentMin},  // 100% is already 32 MiB
		{512 << 20, gcPercentMin}, // never below Go's default
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
		// The headroom promise itself, independent of the table above.
		if got := gcPercentFor(tc.live); tc.live > 0 && got < gcPercentMax && tc.live*uint64(got)/100 < gcHeadroom {
			t.Errorf("gcPercentFor(%d MiB) = %d leaves less than %d MiB of room", tc.live>>20, got, gcHeadroom>>20)
		}
	}
}
