package notify_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imagebadger/imagebadger/notify"
)

// TestRunLeavesNothingRunning: the watcher's Run returns only once every
// goroutine it started has stopped, the hook retries waiting on their
// timers included, and the worker's Run only once its attempts have; after
// both, no goroutine of theirs is left (so the store can be closed).
func TestRunLeavesNothingRunning(t *testing.T) {
	st := openStore(t)
	before := goleak.IgnoreCurrent()
	clk := &clock{t: t0}
	f := &fakeImages{st: st, now: clk.Now, digest: func(int) string { return dOld }} // never where the hook says
	w := notify.NewWatcher(notify.WatcherOptions{Images: f, Store: st, Interval: time.Hour, Now: clk.Now})
	worker := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: loopbackTransport(), PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- w.Run(ctx) }()
	go func() { done <- worker.Run(ctx) }()
	// A hook whose tag never moves schedules retries seconds away.
	w.Refresh(repo.WithTag("1.0"), dNew)
	deadline := time.Now().Add(5 * time.Second)
	for len(f.taken()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// Checked at once, with no grace: Run has returned, so nothing it
	// started may still be running, even on its way out.
	if stacks := running("github.com/imagebadger/imagebadger/notify."); stacks != "" {
		t.Errorf("goroutines of notify still running after Run returned:\n%s", stacks)
	}
	goleak.VerifyNone(t, before)
}

// running returns the stacks of the goroutines (other than this one) with a
// frame in a function whose name starts with prefix.
func running(prefix string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, prefix) && !strings.Contains(g, "notify_test.running") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
