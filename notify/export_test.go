package notify

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
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

// The fan-out's parts, for the tests of the payloads and of the worker.
type (
	Change         = change
	PlatformChange = platformChange
	Event          = event
)

// The audiences of an event.
const (
	AudienceAll        = int(audienceAll)
	AudienceTag        = int(audienceTag)
	AudienceRepository = int(audienceRepository)
)

// Audience is who among the subscriptions of e's repository hears it.
func (e Event) Audience() int { return int(e.audience) }

// Release reports whether e is a version.released candidate.
func (e Event) Release() bool { return e.release }

// testSets numbers the change sets of Events.
var testSets atomic.Int64

// Events are the events the fan-out makes of one described change c of a
// change set of its own, with the images it makes outdated.
func (b *Builder) Events(c Change, outdated []images.OutdatedImage) ([]Event, error) {
	return b.events(testSets.Add(1), c, outdated)
}

// EventsOfSet is Events for change set set.
func (b *Builder) EventsOfSet(set int64, c Change, outdated []images.OutdatedImage) ([]Event, error) {
	return b.events(set, c, outdated)
}

// Tell queues evs, events of a change set of repo, as the fan-out does once
// it has made them: every subscription that may hear each one judged, the
// deliveries written in steps of the fan-out's cursor (which is left where
// it is).
func Tell(ctx context.Context, st *store.Store, repo analysis.Repository, evs []Event) error {
	f := NewFanOut(FanOutOptions{Store: st, Builder: NewBuilder("http://imagebadger.test")})
	cur, err := st.ClaimFanOut(ctx, f.owner, time.Now(), time.Minute)
	if err != nil {
		return err
	}
	defer st.ReleaseFanOut(context.WithoutCancel(ctx), f.owner)
	_, err = f.tell(ctx, cur, cur, repo, 0, math.MaxInt64, evs)
	return err
}

// DeletionEvent is the tag.deleted the fan-out makes of a logged deletion
// (a change set of its own).
func (b *Builder) DeletionEvent(c store.TagChange) (Event, error) {
	return b.deletionEvent(testSets.Add(1), c)
}
