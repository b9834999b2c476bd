// Command attackbench replays, against the real `imagebadger serve` binary,
// the attacks a hostile-load probe of the service found, while a
// well-behaved client reads a cached badge and an image page at a fixed
// rate, and shows whether that client is hurt:
//
//  1. reads of a 64-platform × 2,000-layer index (the largest image inside
//     the service's limits) under -big-reads repository names at once,
//     then the server's resident memory (VmRSS), against -rss-bound-mb;
//  2. -slow-reads reads at once, and two a second after, of never-seen
//     images on a registry that sends one byte per -trickle-delay, while
//     another person reads never-seen images of a good registry: their
//     errors and "not found" badges;
//  3. one read of the tags of a repository of -tags tags that the registry
//     pages by Link (100 a page): the registry requests and database
//     growth it costs; and one of a repository whose tag list links to
//     itself: the list requests it causes;
//  4. -tokens wrong hook tokens through a reverse proxy for one client
//     (X-Forwarded-For), then the right one for another: its status;
//  5. -form-gets GETs of the subscription form: rows written;
//  6. subscription squatting from -squatters addresses, -squatters × 10
//     subscriptions to one image: may one more subscriber subscribe?
//
// Each attack is a phase during which the well-behaved client keeps its
// rate (open loop, internal/testing/openloop), on a server restarted for
// it, so that no attack inherits work or memory from the one before; the
// client's quiet time, before the first attack and before each, is its
// yardstick. The table gives, per attack, the client's error rate,
// its p99 against the quiet p99, the attack's own figure, and PASS or FAIL
// against the targets: no client error, p99 at most 2× quiet, and the
// attack's own target where the issue sets one. The service runs on
// SQLite with --trusted-proxies 127.0.0.1/32 when the binary has that flag.
// The registries are go-containerregistry's in process, behind
// internal/testing/faultreg for the faults. Everything listens on
// 127.0.0.1; each party sends from its own loopback address, as the
// service keys its limits by client address; every wait is bounded.
//
// Usage:
//
//	go run ./bench/attackbench [-rate 100] [-quiet 4s] [-quiet-slice 2s] [-window 10s] [-rss-bound-mb 400] [-strict] [-bin PATH]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/serveproc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "attackbench:", err)
		os.Exit(1)
	}
}

// settings are the flags.
type settings struct {
	bin           string
	rate          int
	quiet, window time.Duration
	quietSlice    time.Duration
	attackTimeout time.Duration
	rssBoundMB    int
	platforms     int
	layers        int
	bigReads      int
	tags          int
	slowReads     int
	trickleDelay  time.Duration
	tokens        int
	formGets      int
	squatters     int
	// tagsShareLayers makes the listed repositories' images variants of
	// the client's (its layers, another config).
	tagsShareLayers bool
	strict          bool
	// only lists the attack numbers to run (all when empty).
	only []int
}

// Repository names on the registries.
const (
	clientRepo   = "bench/app"      // the well-behaved client's image
	manyRepo     = "bench/many"     // -tags tags, paged by Link
	selfLinkRepo = "bench/selflink" // a tag list that links to itself
)

func bigRepo(i int) string   { return fmt.Sprintf("bench/big-%02d", i) }
func slowRepo(i int) string  { return fmt.Sprintf("bench/slow-%04d", i) }
func otherRepo(i int) string { return fmt.Sprintf("bench/other-%04d", i) }

// hookToken is the service's --hook-token.
const hookToken = "attackbench-hook-token"

// tagPage is the page size of the paged tag list.
const tagPage = 100

// trickleRule is the slow registry's fault: every manifest GET trickles.
func trickleRule(delay time.Duration) faultreg.Rule {
	return faultreg.Rule{Method: http.MethodGet, PathContains: "/manifests/", Fault: faultreg.Trickle, Delay: delay}
}

// env is what the attacks run against.
type env struct {
	s              settings
	out            io.Writer
	good, slow     *faultreg.Registry
	bin, dir       string
	args           []string // serve's flags
	server         *serveproc.Proc
	starts         int
	dbPath         string
	receiver       string // "http://127.0.0.1:PORT", answering 204 to every webhook
	trustedProxies bool
	client         *wellBehaved
	// Counters of never-seen images handed out; the setup pushed enough.
	slowN, otherN     atomic.Int64
	slowMax, otherMax int
}

func (e *env) nextSlow() int  { return int(e.slowN.Add(1)-1) % e.slowMax }
func (e *env) nextOther() int { return int(e.otherN.Add(1)-1) % e.otherMax }

// row is one line of the table.
type row struct {
	attack   string
	client   clientStats
	quietP99 time.Duration
	outcome
}

// pass is the row's verdict: no client error, p99 within 2× quiet, and the
// attack's own target.
func (r row) pass() bool {
	return r.client.errors == 0 && r.client.p99 <= 2*r.quietP99 && (r.target == "" || r.met)
}

// failed is how many rows missed a target.
func failed(rows []row) int {
	n := 0
	for _, r := range rows {
		if !r.pass() {
			n++
		}
	}
	return n
}

func run(ctx context.Context, args []string, out io.Writer) ([]row, error) {
	fs := flag.NewFlagSet("attackbench", flag.ContinueOnError)
	var s settings
	fs.StringVar(&s.bin, "bin", "", "the imagebadger binary to measure (default: go build ./cmd/imagebadger of this module)")
	fs.IntVar(&s.rate, "rate", 100, "requests per second of the well-behaved client")
	fs.DurationVar(&s.quiet, "quiet", 4*time.Second, "quiet time before the first attack; the client's yardstick is all the quiet time together")
	fs.DurationVar(&s.quietSlice, "quiet-slice", 2*time.Second, "quiet time before each attack, after the server's restart, so that drift in the machine's load falls on the yardstick as on the attacks (0: none)")
	fs.DurationVar(&s.window, "window", 10*time.Second, "shortest phase of each attack (the client runs until the attack is done); also how long the self-linking listing's client waits")
	fs.DurationVar(&s.attackTimeout, "attack-timeout", 45*time.Second, "longest phase of each attack, and the deadline of its requests")
	fs.IntVar(&s.rssBoundMB, "rss-bound-mb", 400, "the server's resident memory after the big index reads must stay at or under this (MB, 10^6 bytes)")
	fs.IntVar(&s.platforms, "platforms", 64, "platforms of the big index")
	fs.IntVar(&s.layers, "layers", 2000, "layers of each platform of the big index")
	fs.IntVar(&s.bigReads, "big-reads", 16, "repository names the big index is read under, at once")
	fs.IntVar(&s.tags, "tags", 10000, "tags of the paged repository")
	fs.BoolVar(&s.tagsShareLayers, "tags-share-layers", false, "give the listed repositories' images the client's layers (another config), which makes them parent candidates of the client's image: its reads then involve the listing")
	fs.IntVar(&s.slowReads, "slow-reads", 40, "reads at once of never-seen images on the trickling registry")
	fs.DurationVar(&s.trickleDelay, "trickle-delay", time.Second, "the trickling registry's time per byte")
	fs.IntVar(&s.tokens, "tokens", 20, "wrong tokens sent for one client behind the proxy")
	fs.IntVar(&s.formGets, "form-gets", 300, "GETs of the subscription form")
	fs.IntVar(&s.squatters, "squatters", 10, "addresses that each create 10 subscriptions to one image")
	fs.BoolVar(&s.strict, "strict", false, "exit non-zero when an attack misses its targets")
	keep := fs.Bool("keep", false, "keep the work directory (database, server logs) and print where it is")
	only := fs.String("only", "", "comma-separated attack numbers (1-6) to run; empty runs all")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, f := range strings.Split(*only, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 6 {
			return nil, fmt.Errorf("-only: %q is not an attack number 1-6", f)
		}
		s.only = append(s.only, n)
	}
	if s.rate < 1 || s.rate > 2000 || s.quiet < time.Second || s.window < time.Second || s.attackTimeout < s.window ||
		s.quietSlice < 0 || s.quietSlice > time.Minute ||
		s.quiet > 5*time.Minute || s.attackTimeout > 10*time.Minute || s.platforms < 1 || s.platforms > 64 ||
		s.layers < 1 || s.layers > 5000 || s.bigReads < 1 || s.bigReads > 64 || s.tags < 1 || s.tags > 100000 ||
		s.slowReads < 1 || s.slowReads > 500 || s.trickleDelay <= 0 || s.tokens < 1 || s.tokens > 1000 ||
		s.formGets < 1 || s.formGets > 10000 || s.squatters < 1 || s.squatters > 50 || s.rssBoundMB < 1 {
		return nil, errors.New("flags out of range (rate 1-2000, quiet and window 1s-5m, quiet-slice 0-1m, attack-timeout window-10m, platforms 1-64, layers 1-5000, big-reads 1-64, tags 1-100000, slow-reads 1-500, tokens 1-1000, form-gets 1-10000, squatters 1-50)")
	}
	dir, err := os.MkdirTemp("", "attackbench-")
	if err != nil {
		return nil, err
	}
	if *keep {
		fmt.Fprintf(out, "setup: work directory %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e, cleanup, err := setup(ctx, s, dir, out)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	rows, err := e.measure(ctx)
	if err == nil && s.strict && failed(rows) > 0 {
		err = fmt.Errorf("-strict: %d of %d attacks missed a target", failed(rows), len(rows))
	}
	return rows, err
}

// setup starts the registries with their fixtures, the webhook receiver
// and the server. cleanup is always safe to call.
func setup(ctx context.Context, s settings, dir string, out io.Writer) (*env, func(), error) {
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	e := &env{s: s, out: out, dbPath: filepath.Join(dir, "imagebadger.db")}
	e.good, e.slow = faultreg.New(), faultreg.New()
	stops = append(stops, e.good.Close, e.slow.Close)

	start := time.Now()
	if err := e.pushFixtures(ctx); err != nil {
		return nil, cleanup, err
	}
	fmt.Fprintf(out, "setup: fixtures pushed in %s\n", time.Since(start).Round(time.Millisecond))

	ln, err := net.Listen("tcp", wellBehavedAddr+":0")
	if err != nil {
		return nil, cleanup, err
	}
	recv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(http.StatusNoContent)
	})}
	go recv.Serve(ln)
	stops = append(stops, func() { recv.Close() })
	e.receiver = "http://" + ln.Addr().String()

	bin := s.bin
	if bin == "" {
		fmt.Fprintln(out, "setup: building ./cmd/imagebadger…")
		if bin, err = serveproc.Build(ctx, dir); err != nil {
			return nil, cleanup, err
		}
	}
	help, _ := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	e.trustedProxies = strings.Contains(string(help), "--trusted-proxies")
	e.bin, e.dir = bin, dir
	e.args = []string{"--allow-private-registries", "--allow-private-webhooks",
		"--insecure-registries", e.good.Host + "," + e.slow.Host, "--dockerhub-api", "", "--hook-token", hookToken}
	if e.trustedProxies {
		e.args = append(e.args, "--trusted-proxies", wellBehavedAddr+"/32")
	} else {
		fmt.Fprintln(out, "setup: this binary has no --trusted-proxies flag; the proxy attack runs without it, so every client behind the proxy is the proxy")
	}
	e.client = &wellBehaved{rate: s.rate, client: clientFrom(wellBehavedAddr, 10*time.Second)}
	stops = append(stops, e.client.client.CloseIdleConnections, func() {
		if e.server != nil {
			e.server.StopWithin(stopGrace)
		}
	})
	if err := e.restart(ctx); err != nil {
		return nil, cleanup, err
	}
	return e, cleanup, nil
}

// stopGrace is how long a server stopped between phases may take to shut
// down before it is killed: work an attack left running is not waited for.
const stopGrace = 2 * time.Second

// restart stops the server, if one runs, and starts a new process on the
// same database, so that each attack meets a server with nothing left
// running from the one before and with its memory and rate limits fresh;
// then it warms the client's reads (from the database into memory) and
// sends a second of the client's rate (less for a -window under 2 s),
// unmeasured, to open connections.
func (e *env) restart(ctx context.Context) error {
	if e.server != nil {
		e.server.StopWithin(stopGrace)
		e.server = nil
	}
	e.starts++
	srv, err := serveproc.Start(ctx, e.bin, e.dbPath, filepath.Join(e.dir, fmt.Sprintf("server-%d.log", e.starts)), e.args)
	if err != nil {
		return err
	}
	e.server = srv
	ref := e.good.Host + "/" + clientRepo + ":1"
	e.client.urls = []string{srv.URL + "/badges/version/" + ref + ".svg", srv.URL + "/images/" + ref}
	if err := e.warm(ctx); err != nil {
		return fmt.Errorf("%w\nserver log:\n%s", err, srv.Tail())
	}
	warmup := min(time.Second, e.s.window/2)
	_, err = e.client.during(ctx, warmup, warmup, func(context.Context) error { return nil })
	return err
}

// pushFixtures fills the registries (see the package comment) and installs
// their faults.
func (e *env) pushFixtures(ctx context.Context) error {
	// The client's image shares no layer with any other (unless
	// -tags-share-layers): an image whose layers equal another's is its
	// parent candidate, and reading it then involves the other's tags,
	// which would mix another matter into every attack. The other images are variants (configs of their own on
	// shared layers) of one base each, cheap to push by the hundred.
	small, err := pushSmall(ctx, e.good.Host, clientRepo, "1", clientVersion)
	if err != nil {
		return err
	}
	defer small.p.close()
	others, err := pushSmall(ctx, e.good.Host, otherRepo(0), "base", "2.0.0")
	if err != nil {
		return err
	}
	defer others.p.close()
	// Never-seen images of the good registry, for the other person's reads.
	e.otherMax = 4 * int((e.s.window+e.s.attackTimeout)/time.Second)
	if err := parallel(e.otherMax, 4, func(i int) error {
		_, err := others.variant(ctx, otherRepo(i), "1", fmt.Sprintf("2.0.%d", i))
		return err
	}); err != nil {
		return err
	}
	listed := small
	if !e.s.tagsShareLayers {
		if listed, err = pushSmall(ctx, e.good.Host, manyRepo, "base", "5.0.0"); err != nil {
			return err
		}
		defer listed.p.close()
	}
	many, err := listed.variant(ctx, manyRepo, "t00000", "5.0.1")
	if err != nil {
		return err
	}
	if err := parallel(e.s.tags-1, 8, func(i int) error { return listed.tag(ctx, manyRepo, fmt.Sprintf("t%05d", i+1), many) }); err != nil {
		return err
	}
	if _, err := listed.variant(ctx, selfLinkRepo, "1", "6.0.0"); err != nil {
		return err
	}
	big, err := buildBigIndex(ctx, small.p, "bench/big-configs", e.s.platforms, e.s.layers)
	if err != nil {
		return err
	}
	if err := parallel(e.s.bigReads, 4, func(i int) error { return big.push(ctx, small.p, bigRepo(i), "1") }); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "setup: big index %d platforms × %d layers, %.1f MB of manifests, under %d names; %d tags paged by %d\n",
		e.s.platforms, e.s.layers, mb(int64(big.size())), e.s.bigReads, e.s.tags, tagPage)

	slow, err := pushSmall(ctx, e.slow.Host, slowRepo(0), "1", "4.0.0")
	if err != nil {
		return err
	}
	defer slow.p.close()
	e.slowMax = e.s.slowReads + 2*int((e.s.window+e.s.attackTimeout)/time.Second) + 10
	if err := parallel(e.slowMax, 4, func(i int) error {
		_, err := slow.variant(ctx, slowRepo(i), "1", fmt.Sprintf("4.0.%d", i))
		return err
	}); err != nil {
		return err
	}
	e.good.Requests()
	e.slow.Requests()
	e.good.Add(faultreg.Rule{Method: http.MethodGet, PathContains: "/" + manyRepo + "/tags/list", Fault: faultreg.PageTags, Page: tagPage},
		faultreg.Rule{Method: http.MethodGet, PathContains: "/" + selfLinkRepo + "/tags/list", Fault: faultreg.LinkSelf})
	e.slow.Add(trickleRule(e.s.trickleDelay))
	return nil
}

// warm reads the client's badge until it shows the image's version, and
// its page once, so that the phases measure cached reads.
func (e *env) warm(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := send(ctx, e.client.client, http.MethodGet, e.client.urls[0], nil, nil)
		if a.status == http.StatusOK && strings.Contains(string(a.body), ">"+clientVersion+"<") {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the badge never showed %s: %s %s", clientVersion, statusText(a), a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := send(ctx, e.client.client, http.MethodGet, e.client.urls[1], nil, nil); a.status != http.StatusOK {
		return fmt.Errorf("the image page: %s", statusText(a))
	}
	return nil
}

// measure runs the quiet phase, then each attack after a quiet slice, and
// prints the table.
func (e *env) measure(ctx context.Context) ([]row, error) {
	quietNow := func(d time.Duration) (clientStats, error) {
		return e.client.during(ctx, d, d, func(context.Context) error { return nil })
	}
	quiet, err := quietNow(e.s.quiet)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.out, "imagebadger serve on %s (pid %d, restarted before each attack), SQLite, good registry %s, trickling registry %s\n",
		e.server.Addr, e.server.PID(), e.good.Host, e.slow.Host)
	fmt.Fprintf(e.out, "quiet: %d requests at %d req/s, %d errors, p50 %s, p99 %s\n",
		quiet.sent, e.s.rate, quiet.errors, quiet.p50.Round(time.Microsecond), quiet.p99.Round(time.Microsecond))
	var rows []row
	for _, a := range attacks(e.s) {
		if len(e.s.only) > 0 && !slices.Contains(e.s.only, a.number) {
			continue
		}
		restartStart := time.Now()
		if err := e.restart(ctx); err != nil {
			return rows, fmt.Errorf("restart before %s: %w", a.name, err)
		}
		restarted := time.Since(restartStart)
		if e.s.quietSlice > 0 {
			q, err := quietNow(e.s.quietSlice)
			if err != nil {
				return rows, err
			}
			quiet = quiet.merge(q)
		}
		var o outcome
		start := time.Now()
		st, err := e.client.during(ctx, e.s.window, e.s.attackTimeout, func(ctx context.Context) error {
			var err error
			o, err = a.run(e, ctx)
			return err
		})
		if err != nil {
			return rows, fmt.Errorf("%s: %w\nserver log:\n%s", a.name, err, e.server.Tail())
		}
		rows = append(rows, row{attack: a.name, client: st, outcome: o})
		fmt.Fprintf(e.out, "%s (%s; restart and warm-up %s): client %d requests, %d errors, p99 %s; %s\n", a.name,
			time.Since(start).Round(100*time.Millisecond), restarted.Round(100*time.Millisecond), st.sent, st.errors,
			st.p99.Round(time.Microsecond), o.figure)
		if len(st.firstErrors) > 0 {
			fmt.Fprintf(e.out, "  client errors, e.g.: %s\n", strings.Join(st.firstErrors, "; "))
		}
		if !o.exercised {
			fmt.Fprintf(e.out, "  NOTE: the attack did not reach its path; its row measures nothing\n")
		}
	}
	for i := range rows {
		rows[i].quietP99 = quiet.p99
	}
	if quiet.errors > 0 {
		fmt.Fprintf(e.out, "NOTE: the client had %d errors in quiet time (e.g. %s): the yardstick itself is off\n",
			quiet.errors, strings.Join(quiet.firstErrors, "; "))
	}
	printTable(e.out, rows, e.s, quiet)
	return rows, nil
}

// printTable writes the result table.
func printTable(out io.Writer, rows []row, s settings, quiet clientStats) {
	fmt.Fprintf(out, "\nattackbench: well-behaved client at %d req/s (cached badge and image page), quiet p99 %s (%d requests in quiet time before and between the attacks); targets: 0 client errors, p99 ≤ 2× quiet, and each attack's own\n",
		s.rate, quiet.p99.Round(time.Microsecond), quiet.sent)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTACK\tCLIENT ERRORS\tCLIENT P99\t× QUIET\tTARGET\tVERDICT\tATTACK'S FIGURE")
	for _, r := range rows {
		verdict := "PASS"
		if !r.pass() {
			verdict = "FAIL"
		}
		if !r.exercised {
			verdict += " (not exercised)"
		}
		target := r.target
		if target == "" {
			target = "— (figure only)"
		} else if !r.met {
			target += " ✗"
		}
		ratio := 0.0
		if r.quietP99 > 0 {
			ratio = float64(r.client.p99) / float64(r.quietP99)
		}
		fmt.Fprintf(tw, "%s\t%.2f%% (%d/%d)\t%s\t%.2f\t%s\t%s\t%s\n", r.attack, 100*r.client.errorRate(), r.client.errors, r.client.sent,
			r.client.p99.Round(10*time.Microsecond), ratio, target, verdict, r.figure)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d of %d attacks missed a target\n", failed(rows), len(rows))
}
