//go:build !unix

package registry_test

import "time"

// processCPU is not known here: the benchmarks report no CPU time.
func processCPU() time.Duration { return 0 }
