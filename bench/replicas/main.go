// Command replicas measures a scaled-out deployment (several `imagebadger
// serve` processes on one PostgreSQL) against the embedded default (one
// process on SQLite), in the same run, on the real binary:
//
//  1. fan-out: 10,000 active subscriptions (100 on each of 100 tags, the
//     per-image cap), one listing that finds all 100 tags moved, and the
//     time until ten loopback receivers have verified all 10,000 signed
//     deliveries and the outbox holds nothing pending (target: at most 30 s
//     on PostgreSQL with three processes);
//  2. polling: 10,000 tracked tags (100 watched repositories of 100 tags)
//     behind a proxy that holds every registry request 30 ms, and the time
//     until every tag has been checked, with how many checks that took (one
//     a tag when the processes share the work);
//  3. latency: a push, then the refresh a registry's notification asks
//     for, and the time until the tag's subscriber has the image.updated,
//     200 times, with its p50 and p99 (target: p99 at most 100 ms on both
//     deployments).
//
// With -baseline REV the fan-out and the latency are measured for the code
// at git revision REV too, side by side in the same run (the deployments of
// the two builds interleaved), so a change is judged against what it
// replaced on the same machine at the same moment.
//
// The cached badge on each engine is measured by bench/loadbench (part 3).
// The registry is go-containerregistry's, in this process; PostgreSQL is a
// throwaway cluster of Debian's postgresql package with fsync on. Everything
// listens on 127.0.0.1 and every wait is bounded.
//
// Usage:
//
//	go run ./bench/replicas [-strict] [-baseline REV] [-parts fanout,polling,latency]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"golang.org/x/sync/errgroup"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/pgtest"
	"github.com/imagebadger/imagebadger/internal/testing/serveproc"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

const (
	fanTags      = 100 // tags of the fan-out repository
	perTag       = 100 // subscriptions per tag: the service's per-image cap
	receivers    = 10  // loopback receivers the subscriptions deliver to
	watchedRepos = 100 // repositories of the polling part
	tagsPerRepo  = 100
	registryRTT  = 30 * time.Millisecond
	fanOutTarget = 30 * time.Second
	waitLimit    = 5 * time.Minute
	// latencySamples is how many pushes the latency part times per build
	// and deployment; latencyTarget is its p99's.
	latencySamples = 200
	latencyTarget  = 100 * time.Millisecond
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	strict := flag.Bool("strict", false, "exit non-zero when a target is missed")
	parts := flag.String("parts", "fanout,polling,latency", "the parts to run")
	baseline := flag.String("baseline", "", "also measure the fan-out and the latency of the code at this git revision, side by side")
	only := flag.String("deployments", "", "run only the deployments whose name contains this")
	keep := flag.Bool("keep", false, "keep the working directory (databases, process logs) and say where")
	flag.Parse()
	missed, err := run(ctx, options{parts: *parts, only: *only, keep: *keep, baseline: *baseline}, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(1)
	}
	if len(missed) > 0 {
		fmt.Printf("targets missed: %s\n", strings.Join(missed, ", "))
		if *strict {
			os.Exit(1)
		}
	}
}

// deployment is one configuration measured: an engine and a process count.
type deployment struct {
	name  string
	procs int
	// db returns a new, empty database of the deployment's engine.
	db func() (string, error)
}

type options struct {
	parts, only, baseline string
	keep                  bool
}

// build is one binary measured: this tree's, or the baseline's.
type build struct {
	name, bin string
}

func run(ctx context.Context, o options, out io.Writer) ([]string, error) {
	dir, err := os.MkdirTemp("", "replicas-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(out, "replicas: working in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fmt.Fprintln(out, "replicas: building ./cmd/imagebadger…")
	bin, err := serveproc.Build(ctx, dir)
	if err != nil {
		return nil, err
	}
	builds := []build{{"", bin}}
	if o.baseline != "" {
		fmt.Fprintf(out, "replicas: building ./cmd/imagebadger at %s…\n", o.baseline)
		old, err := serveproc.BuildRevision(ctx, dir, o.baseline)
		if err != nil {
			return nil, err
		}
		builds = []build{{"before", old}, {"after", bin}}
	}
	cluster, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")

	n := 0
	sqlite := func() (string, error) { n++; return filepath.Join(dir, "sqlite-"+strconv.Itoa(n)+".db"), nil }
	postgres := func() (string, error) { return cluster.NewDatabase(ctx) }
	var deployments []deployment
	for _, d := range []deployment{
		{"sqlite, 1 process", 1, sqlite},
		{"postgres, 1 process", 1, postgres},
		{"postgres, 3 processes", 3, postgres},
	} {
		if strings.Contains(d.name, o.only) {
			deployments = append(deployments, d)
		}
	}
	e := &env{bin: bin, builds: builds, dir: dir, registry: regHost, out: out}

	var missed []string
	if strings.Contains(o.parts, "fanout") {
		m, err := e.fanOutPart(ctx, deployments)
		if err != nil {
			return nil, err
		}
		missed = append(missed, m...)
	}
	if strings.Contains(o.parts, "polling") {
		if err := e.pollingPart(ctx, deployments); err != nil {
			return nil, err
		}
	}
	if strings.Contains(o.parts, "latency") {
		m, err := e.latencyPart(ctx, deployments)
		if err != nil {
			return nil, err
		}
		missed = append(missed, m...)
	}
	return missed, nil
}

// fanOutPart is part 1.
func (e *env) fanOutPart(ctx context.Context, deployments []deployment) ([]string, error) {
	out := e.out
	var missed []string
	fmt.Fprintf(out, "fan-out: %d subscriptions (%d tags x %d), one listing finds every tag moved, %d receivers\n",
		fanTags*perTag, fanTags, perTag, receivers)
	if err := e.setupFanOut(ctx); err != nil {
		return nil, err
	}
	k := 0
	for _, d := range deployments {
		for _, b := range e.builds {
			took, err := e.fanOut(ctx, b, d, k)
			k++
			if err != nil {
				return nil, fmt.Errorf("fan-out on %s %s: %w", d.name, b.name, err)
			}
			fmt.Fprintf(out, "  %-22s %-6s %6.2f s  %7.0f deliveries/s\n", d.name, b.name, took.Seconds(), float64(fanTags*perTag)/took.Seconds())
			if d.procs == 3 && b.name != "before" {
				fmt.Fprintf(out, "FAN-OUT 10000 ON POSTGRES WITH 3 PROCESSES %.2f s (target <= %s)\n", took.Seconds(), fanOutTarget)
				if took > fanOutTarget {
					missed = append(missed, "fan-out")
				}
			}
		}
	}

	return missed, nil
}

// pollingPart is part 2, on one process on SQLite and on three on PostgreSQL.
func (e *env) pollingPart(ctx context.Context, deployments []deployment) error {
	out := e.out
	fmt.Fprintf(out, "polling: %d tracked tags (%d watched repositories x %d), every registry request held %s\n",
		watchedRepos*tagsPerRepo, watchedRepos, tagsPerRepo, registryRTT)
	if err := e.setupPolling(ctx); err != nil {
		return err
	}
	for _, d := range deployments {
		if d.name == "postgres, 1 process" {
			continue
		}
		took, checks, err := e.poll(ctx, d)
		if err != nil {
			return fmt.Errorf("polling on %s: %w", d.name, err)
		}
		fmt.Fprintf(out, "  %-22s every tag checked in %6.2f s, %d checks for %d tags (%.3f a tag)\n",
			d.name, took.Seconds(), checks, watchedRepos*tagsPerRepo, float64(checks)/float64(watchedRepos*tagsPerRepo))
	}
	return nil
}

type env struct {
	bin, dir, registry string
	builds             []build
	out                io.Writer

	// fan-out
	fanRepo  analysis.Repository
	template string // a SQLite database holding the subscriptions
	secrets  []*standardwebhooks.Webhook
	recv     []*httptest.Server
	verified atomic.Int64
	bad      atomic.Int64
	images   [2]v1.Image

	// polling
	proxy  string
	counts func() map[string]int
}

// setupFanOut pushes the fan-out repository, starts the receivers and
// writes the subscriptions into a template database once.
func (e *env) setupFanOut(ctx context.Context) error {
	e.fanRepo = analysis.Repository{Registry: e.registry, Name: "bench/fan"}
	for i := range e.images {
		img, err := random.Image(512, 2)
		if err != nil {
			return err
		}
		e.images[i] = img
	}
	if err := e.tagAll(ctx, "bench/fan", fanTags, e.images[0]); err != nil {
		return err
	}
	e.secrets = make([]*standardwebhooks.Webhook, fanTags*perTag)
	for range receivers {
		e.recv = append(e.recv, httptest.NewServer(http.HandlerFunc(e.receive)))
	}
	e.template = filepath.Join(e.dir, "template.db")
	st, err := store.Open(ctx, e.template)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range fanTags * perTag {
		sub := store.Subscription{ID: fmt.Sprintf("sub_bench%05d", i), Repo: e.fanRepo, Tag: fmt.Sprintf("t%02d", i/perTag),
			URL:    fmt.Sprintf("%s/%d", e.recv[i%receivers].URL, i),
			Events: []string{notify.TypeImageUpdated}, Secret: notify.NewSecret(), TokenHash: "bench",
			Status: store.SubscriptionActive, CreatedAt: time.Now()}
		if e.secrets[i], err = standardwebhooks.NewWebhook(sub.Secret); err != nil {
			return err
		}
		if _, err := st.CreateSubscription(ctx, sub, store.NewDelivery{}); err != nil {
			return err
		}
	}
	return nil
}

// receive verifies one delivery: its path names the subscription.
func (e *env) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil || i < 0 || i >= len(e.secrets) || e.secrets[i].Verify(body, r.Header) != nil {
		e.bad.Add(1)
	} else {
		e.verified.Add(1)
	}
	w.WriteHeader(http.StatusNoContent)
}

// tagAll pushes img as repo:t00 and tags it n-1 more times.
func (e *env) tagAll(ctx context.Context, repo string, n int, img v1.Image) error {
	width := len(strconv.Itoa(n - 1))
	tag := func(i int) (name.Tag, error) {
		return name.NewTag(fmt.Sprintf("%s/%s:t%0*d", e.registry, repo, width, i))
	}
	first, err := tag(0)
	if err != nil {
		return err
	}
	if err := remote.Write(first, img, remote.WithContext(ctx)); err != nil {
		return err
	}
	desc, err := remote.Get(first, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := 1; i < n; i++ {
		g.Go(func() error {
			t, err := tag(i)
			if err != nil {
				return err
			}
			return remote.Tag(t, desc, remote.WithContext(gctx))
		})
	}
	return g.Wait()
}

// fanOut runs deployment d on a copy of the template, records the listing
// that finds every tag at image k%2 (k counts the runs, so each run is a
// move), and returns how long the 10,000 deliveries took.
func (e *env) fanOut(ctx context.Context, b build, d deployment, k int) (time.Duration, error) {
	dsn, st, err := e.copyTemplate(ctx, d)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	procs, stop, err := e.start(ctx, b.bin, d, dsn, "fan"+b.name, "--poll-interval", "1h")
	if err != nil {
		return 0, err
	}
	defer stop()
	// The tags are where the last run left them: record them there first
	// (the subscriptions see each tag appear, and are told) and let those
	// deliveries finish.
	listing := procs[0].URL + "/api/v1/repositories/" + e.fanRepo.String() + "/tags?refresh=1"
	if err := get(ctx, listing); err != nil {
		return 0, err
	}
	if err := drained(ctx, st, time.Now().Add(waitLimit)); err != nil {
		return 0, err
	}
	if err := e.tagAll(ctx, "bench/fan", fanTags, e.images[(k+1)%2]); err != nil {
		return 0, err
	}
	want := e.verified.Load() + fanTags*perTag
	start := time.Now()
	if err := get(ctx, listing); err != nil {
		return 0, err
	}
	deadline := start.Add(waitLimit)
	for e.verified.Load() < want {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d delivered after %s", e.verified.Load()-(want-fanTags*perTag), fanTags*perTag, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := drained(ctx, st, deadline); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if n := e.bad.Load(); n > 0 {
		return 0, fmt.Errorf("%d deliveries did not verify", n)
	}
	return took, nil
}

// drained waits until the outbox holds nothing pending.
func drained(ctx context.Context, st *store.Store, deadline time.Time) error {
	for {
		c, err := st.DeliveryCounts(ctx)
		if err != nil {
			return err
		}
		if c[store.DeliveryPending] == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deliveries still pending after %s: %v", waitLimit, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// copyTemplate makes a new database of d's engine holding the template's
// subscriptions, and returns it with a store on it for the benchmark's own
// reads.
func (e *env) copyTemplate(ctx context.Context, d deployment) (string, *store.Store, error) {
	dsn, err := d.db()
	if err != nil {
		return "", nil, err
	}
	from, err := store.Open(ctx, e.template)
	if err != nil {
		return "", nil, err
	}
	defer from.Close()
	to, err := store.Open(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	if err := store.Copy(ctx, from, to, nil); err != nil {
		to.Close()
		return "", nil, err
	}
	return dsn, to, nil
}

// start runs d's processes of the binary bin on dsn with args.
func (e *env) start(ctx context.Context, bin string, d deployment, dsn, part string, args ...string) ([]*serveproc.Proc, func(), error) {
	var procs []*serveproc.Proc
	stop := func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(p.Stop)
		}
		wg.Wait()
	}
	for i := range d.procs {
		logPath := filepath.Join(e.dir, fmt.Sprintf("%s-%s-%d.log", part, strings.NewReplacer(" ", "", ",", "-").Replace(d.name), i))
		p, err := serveproc.Start(ctx, bin, dsn, logPath,
			append([]string{"--allow-private-registries", "--allow-private-webhooks"}, args...))
		if err != nil {
			stop()
			return nil, nil, err
		}
		procs = append(procs, p)
	}
	return procs, stop, nil
}

// setupPolling pushes the watched repositories and puts the slow, counting
// proxy in front of the registry.
func (e *env) setupPolling(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for r := range watchedRepos {
		g.Go(func() error {
			img, err := random.Image(256, 1)
			if err != nil {
				return err
			}
			return e.tagAll(gctx, fmt.Sprintf("bench/watched%03d", r), tagsPerRepo, img)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	proxy, counts, _, err := distreg.MeteredProxy(e.registry, registryRTT, distreg.ManifestTag)
	if err != nil {
		return err
	}
	e.proxy, e.counts = proxy, counts
	return nil
}

// poll runs d watching every repository through the proxy and returns how
// long until every tag was checked, and how many checks that took.
func (e *env) poll(ctx context.Context, d deployment) (time.Duration, int, error) {
	dsn, err := d.db()
	if err != nil {
		return 0, 0, err
	}
	var watch []string
	for r := range watchedRepos {
		watch = append(watch, fmt.Sprintf("%s/bench/watched%03d", e.proxy, r))
	}
	before := e.counts()
	start := time.Now()
	_, stop, err := e.start(ctx, e.bin, d, dsn, "poll", "--poll-interval", "30m", "--watch", strings.Join(watch, ","))
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	deadline := start.Add(waitLimit)
	for {
		seen, checks := 0, 0
		for k, n := range e.counts() {
			if n > before[k] {
				seen++
				checks += n - before[k]
			}
		}
		if seen == watchedRepos*tagsPerRepo {
			return time.Since(start), checks, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%d of %d tags checked after %s", seen, watchedRepos*tagsPerRepo, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get asks url and wants 200.
func get(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return errors.New("GET " + url + ": " + resp.Status + ": " + string(b))
	}
	return nil
}
