// Command soak is the service's load test: the whole service, as
// `imagebadger serve` runs it, under a minute of mixed traffic while its
// registry is slow and busy and webhooks flow, with the figures that say
// whether it holds up.
//
// Setup, all on loopback:
//   - Debian's distribution registry (internal/testing/distreg) behind a proxy adding
//     30 ms to every request (distreg.LatencyProxy); imagebadger only ever
//     sees the proxy's address;
//   - a family (soak/base, soak/app built on it, with OCI labels) and
//     -storm-repos "storm" repositories of -storm-tags tags over a few digests;
//   - a webhook receiver that answers 204 and counts what it gets;
//   - the binary built from this tree, `imagebadger serve` with its own
//     database, --watch on the storm repositories, --poll-interval 5s and a
//     hook token; warmed (every report, page and badge of the traffic read
//     once) and given -subscriptions webhook subscriptions to storm tags.
//
// Load: -duration of open-loop traffic (internal/testing/openloop) at -rate requests/s,
// 60% cached badges of every kind, 20% image pages, 20% JSON image reports
// (-mix),
// while a refresh storm runs: the watcher re-lists the watched repositories
// every poll interval through the proxy, a pusher moves a storm tag to another
// image every 1–2 s and announces it on POST /hooks/registry, and the moves'
// webhooks are delivered to the receiver. The server's RSS is sampled every
// second from /proc.
//
// It prints per class latency percentiles, the status codes, the failures (a
// 5xx that is not a documented registry error, or no answer at all), the
// webhooks and the RSS, and each target with PASS or MISS; -strict makes a
// miss exit non-zero. Every loop is bounded in time and every address is
// 127.0.0.0/8.
//
// Usage:
//
//	go run ./bench/soak [-duration 60s] [-rate 1000] [-strict]
//	go run ./bench/soak -duration 20s -mix 100,0,0 -push=false   # one factor at a time
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The load generator's own garbage collection shows in what it measures
	// (each cycle stops its goroutines for a moment); its heap is small, so
	// collect less often. The server keeps the default.
	debug.SetGCPercent(400)
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// settings are the command line.
type settings struct {
	duration      time.Duration
	rate          int
	strict        bool
	delay         time.Duration
	pollInterval  time.Duration
	stormRepos    int
	stormTags     int
	subscriptions int
	bin           string
	keep          bool
	dump          string
	mix           [3]int
	push          bool
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var s settings
	fs.DurationVar(&s.duration, "duration", 60*time.Second, "length of the load (5s-10m); RSS growth compares its end with its middle")
	fs.IntVar(&s.rate, "rate", 1000, "requests per second of the load, all classes together (1-5000)")
	fs.BoolVar(&s.strict, "strict", false, "exit non-zero when a target is missed")
	fs.DurationVar(&s.delay, "registry-delay", 30*time.Millisecond, "latency the proxy adds to every registry request")
	fs.DurationVar(&s.pollInterval, "poll-interval", 5*time.Second, "imagebadger's --poll-interval: how often the watched repositories are re-listed")
	fs.IntVar(&s.stormRepos, "storm-repos", 10, "watched repositories whose tags move during the load (1-50)")
	fs.IntVar(&s.stormTags, "storm-tags", 20, "tags of each storm repository (2-100)")
	fs.IntVar(&s.subscriptions, "subscriptions", 50, "webhook subscriptions to storm tags (0-200)")
	fs.StringVar(&s.bin, "imagebadger", "", "use this imagebadger binary instead of building ./cmd/imagebadger")
	fs.BoolVar(&s.keep, "keep", false, "keep the working directory (server log, database, registry) and print where it is")
	mix := fs.String("mix", "60,20,20", "percentages of badges, image pages and JSON image reports in the traffic")
	fs.BoolVar(&s.push, "push", true, "move storm tags (and announce them on /hooks/registry) during the load; -push=false leaves only the watcher's polling")
	fs.StringVar(&s.dump, "dump", "", "write every request's class, due time, status and latencies to this file (tab-separated), for a closer look")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("soak takes no arguments")
	}
	var err error
	if s.mix, err = parseMix(*mix); err != nil {
		return err
	}
	if s.duration < 5*time.Second || s.duration > 10*time.Minute || s.rate < 1 || s.rate > 5000 ||
		s.delay < 0 || s.delay > time.Second || s.pollInterval < time.Second || s.pollInterval > time.Minute ||
		s.stormRepos < 1 || s.stormRepos > 50 || s.stormTags < 2 || s.stormTags > 100 ||
		s.subscriptions < 0 || s.subscriptions > maxSubscriptions {
		return fmt.Errorf("flags out of range (duration 5s-10m, rate 1-5000, registry-delay 0-1s, poll-interval 1s-1m, "+
			"storm-repos 1-50, storm-tags 2-100, subscriptions 0-%d)", maxSubscriptions)
	}
	// Setup takes well under a minute; the whole run is bounded all the same.
	ctx, cancel := context.WithTimeout(ctx, s.duration+10*time.Minute)
	defer cancel()
	return soak(ctx, s, out)
}

// soak sets up, loads, measures and reports.
func soak(ctx context.Context, s settings, out io.Writer) error {
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return err
	}
	if s.keep {
		fmt.Fprintf(out, "working directory (kept): %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e, cleanup, err := setup(ctx, s, dir, out)
	defer cleanup()
	if err != nil {
		return err
	}

	storm := "the watcher's polling and a tag moved every 1–2 s"
	if !s.push {
		storm = "the watcher's polling only (-push=false)"
	}
	fmt.Fprintf(out, "load: %s at %d req/s, open loop (%d%% badges, %d%% image pages, %d%% JSON reports), during a refresh storm: %s…\n",
		s.duration, s.rate, s.mix[0], s.mix[1], s.mix[2], storm)
	m, err := load(ctx, s, e)
	if err != nil {
		return err
	}
	e.server.Stop()
	m.log = scanServerLog(e.server.LogPath, m.loadStart, m.loadEnd)
	m.registry = scanRegistryLog(e.registryLog, m.loadStart, m.loadEnd)

	if s.dump != "" {
		if err := dump(s.dump, m); err != nil {
			return err
		}
	}
	missed := report(out, s, e, m)
	if len(missed) > 0 && s.strict {
		return fmt.Errorf("targets missed: %v", missed)
	}
	return nil
}
