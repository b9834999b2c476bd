package notify

import (
	"context"
	"sync"
)

// Test-only wiring: what the tests of this package need and the service
// never does.

// RunOnce sends every delivery due at the worker's clock and returns once
// all of them have been attempted, with how many attempts it made. It is Run
// without the waiting, for tests that drive the clock themselves.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	total := 0
	for {
		limit := 4 * w.concurrency
		// Each batch is finished before the next is claimed; the bound per
		// receiver is Run's business.
		claims, err := w.store.ClaimDeliveries(ctx, w.owner, w.now(), w.lease, limit, 0)
		if err != nil {
			return total, err
		}
		var wg sync.WaitGroup
		slots := make(chan struct{}, w.concurrency)
		for _, c := range claims {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				w.deliver(ctx, c)
			}()
		}
		wg.Wait()
		total += len(claims)
		// Until nothing is due: a delivered ping makes its subscription's
		// queued deliveries claimable.
		if len(claims) == 0 {
			return total, nil
		}
	}
}
