package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The service's live heap is small (a few MiB for a registry's worth of
// reports) while every page and JSON answer allocates, so with Go's default
// GOGC=100 the collector ran several times a second under load, and each
// cycle's pauses and mark assists showed in the tail latency of cached
// badges (bench/soak measures it). The heap is therefore given at least
// gcHeadroom of room to grow between collections: the collection percentage
// is raised while the live heap is small and falls back to Go's 100 as it
// grows (a service holding a million images' parent index collects as Go
// would). An operator's GOGC in the environment is respected as it is.
//
// Every process gets the rule, one-off commands too: before the first
// collection the live heap reads as nothing, so the percentage starts at
// gcPercentMax, and a command such as inspect, whose packages' initialisation
// alone allocates nearly 3 MiB, no longer runs a collection in its middle
// for Go's 4 MiB starting goal (2–5 % of an inspect's time, interleaved
// runs: docs/PERFORMANCE.md). A command that keeps allocating (contents,
// copy-db) is collected as its heap grows.
const (
	gcHeadroom    = 32 << 20
	gcPercentMin  = 100
	gcPercentMax  = 1000
	gcTuneEvery   = 5 * time.Second
	liveHeapBytes = "/gc/heap/live:bytes"
)

// gcPercentFor returns the GOGC that gives a live heap of live bytes at
// least gcHeadroom of growth before the next collection.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return gcPercentMax
	}
	p := int(min(uint64(gcHeadroom)*100/live, gcPercentMax))
	return max(p, gcPercentMin)
}

// tuneGC keeps the collection percentage at gcPercentFor(live heap) until
// ctx ends, unless GOGC is set in the environment.
func tuneGC(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: liveHeapBytes}}
	set := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetGCPercent(gcPercentFor(sample[0].Value.Uint64()))
		}
	}
	set()
	go func() {
		tick := time.NewTicker(gcTuneEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				set()
			}
		}
	}()
}
