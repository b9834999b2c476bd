// Command loadbench measures cached badges under load on loopback, against
// two yardsticks served by the same process in the same run: /healthz, the
// service's cheapest answer, through the same router, request log and
// metrics (the target's baseline), and the badge's very bytes written from
// memory outside them (what routing, logging and metrics cost):
//
//  1. throughput: Debian's wrk against the badge and both yardsticks, in
//     interleaved rounds, giving the ratio of their median requests/s, and
//     the server's CPU time per request on each (from /proc), a ratio that
//     other work on a shared machine hardly moves;
//  2. latency at a fixed 1,000 requests/s: an open-loop generator (wrk
//     cannot hold a rate) that sends on schedule whatever the answers do and
//     measures each request from the moment it was due, so a stall shows in
//     the percentiles instead of slowing the sender down;
//  3. engines: the same badge from a second child on PostgreSQL (a
//     throwaway cluster of Debian's postgresql package, fsync on), against
//     the child on SQLite, by both measures: a replica's cached badge should
//     cost what the embedded default's does (target: within 10%);
//  4. sign-in: the same badge, public, from a child with sign-in configured
//     (an OpenID provider, never reached, and a proxy header), against the
//     child without: who is asking is worked out for every request, and
//     for an anonymous one that must cost next to nothing (targets:
//     throughput within 5%, p99 at -rate req/s at most 3 ms).
//
// The server runs in a child process (this program started again with
// -child), wired as `imagebadger serve` wires it (store, registry client,
// images service, server, http.Server settings, a JSON request log) plus the
// route of withBaseline, which only this benchmark serves. The image lives
// in go-containerregistry's registry in this process; after the first badge
// no request reaches it. Everything listens on 127.0.0.1 and every loop is
// bounded in time.
//
// Usage:
//
//	go run ./bench/loadbench [-rounds 5] [-duration 3s] [-rate 1000] [-rate-duration 10s] [-strict]
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/badge"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/openloop"
	"github.com/imagebadger/imagebadger/internal/testing/pgtest"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// The version label of the benchmark image, and so the badge both routes serve.
const benchVersion = "1.0.3"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

type settings struct {
	rounds       int
	duration     time.Duration
	threads      int
	connections  int
	rate         int
	rateDuration time.Duration
	strict       bool
	cpuProfile   string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	var s settings
	fs.IntVar(&s.rounds, "rounds", 5, "rounds of each route, interleaved (wrk rounds, and chunks of the fixed-rate run)")
	fs.DurationVar(&s.duration, "duration", 3*time.Second, "length of one wrk round")
	fs.IntVar(&s.threads, "threads", 2, "wrk threads")
	fs.IntVar(&s.connections, "connections", 16, "wrk connections")
	fs.IntVar(&s.rate, "rate", 1000, "requests per second of the fixed-rate run")
	fs.DurationVar(&s.rateDuration, "rate-duration", 10*time.Second, "length of the fixed-rate run of each route, split into -rounds chunks")
	fs.BoolVar(&s.strict, "strict", false, "exit non-zero when a target is missed")
	child := fs.Bool("child", false, "internal: run the server (the parent starts this)")
	regHost := fs.String("registry", "", "internal: the registry the child reads")
	db := fs.String("db", "", "internal: the child's database")
	signIn := fs.Bool("signin", false, "internal: the child has sign-in configured")
	logPath := fs.String("log", "", "internal: the child's request log")
	fs.StringVar(&s.cpuProfile, "cpuprofile", "", "write the SQLite child's CPU profile (go tool pprof) to this file, to see where a badge's time goes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *child {
		return serveChild(ctx, *regHost, *db, *logPath, s.cpuProfile, *signIn, out)
	}
	if s.rounds < 1 || s.duration < time.Second || s.rate < 1 || s.rate > 20000 ||
		s.rateDuration < time.Duration(s.rounds)*time.Second || s.rateDuration > 5*time.Minute || s.duration > 5*time.Minute || s.rounds > 20 {
		return errors.New("flags out of range (rounds 1-20, durations 1s-5m with -rate-duration at least 1s per round, rate 1-20000)")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk not found (Debian package wrk): run `make deps`")
	}
	return bench(ctx, s, wrk, out)
}

// bench sets up the registry and the child server, then measures.
func bench(ctx context.Context, s settings, wrk string, out io.Writer) error {
	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	regHost, stopRegistry, err := startRegistry()
	if err != nil {
		return err
	}
	defer stopRegistry()
	ref := regHost + "/bench/app:1"
	if err := pushImage(ctx, ref); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}

	addr, childPID, stopChild, err := startChild(ctx, regHost, filepath.Join(dir, "imagebadger.db"), filepath.Join(dir, "requests.log"), s.cpuProfile, false)
	if err != nil {
		return err
	}
	defer stopChild()
	badgeURL := "http://" + addr + "/badges/version/" + ref + ".svg"
	baseURL := "http://" + addr + baselinePath
	routeURL := "http://" + addr + "/healthz"
	if err := warm(ctx, badgeURL, baseURL); err != nil {
		return err
	}

	fmt.Fprintf(out, "loadbench: cached badge vs /healthz and vs the same bytes from memory, one server process on loopback\n")
	fmt.Fprintf(out, "  badge %s\n  route %s\n  bytes %s\n", badgeURL, routeURL, baseURL)
	var missed []string

	// 1. Throughput, interleaved so that drift in machine load hits every
	// side alike. The target's yardstick is /healthz: the service's cheapest
	// answer, a few bytes from memory through the same router, request log
	// and metrics as the badge. The same bytes as the badge written outside
	// them are measured too, for what routing, logging and metrics cost.
	fmt.Fprintf(out, "throughput: wrk -t%d -c%d -d%s, %d rounds of each, interleaved\n", s.threads, s.connections, s.duration, s.rounds)
	fmt.Fprintf(out, "  route = %s, through the same router, request log and metrics; bytes = the badge's bytes outside them\n", routeURL)
	fmt.Fprintf(out, "  (cpu/req is the server process's CPU time per request, from /proc: unlike req/s it hardly depends on what else the machine runs)\n")
	type side struct {
		name, url string
		rps, cpu  []float64
		p99       []time.Duration
	}
	sides := []*side{{name: "badge", url: badgeURL}, {name: "route", url: routeURL}, {name: "bytes", url: baseURL}}
	var ratios []float64
	for i := 0; i < s.rounds; i++ {
		for _, sd := range sides {
			before := processCPU(childPID)
			r, err := runWrk(ctx, wrk, s, sd.url)
			if err != nil {
				return err
			}
			sd.rps, sd.p99 = append(sd.rps, r.rps), append(sd.p99, r.p99)
			if after := processCPU(childPID); before >= 0 && after >= 0 && r.requests > 0 {
				sd.cpu = append(sd.cpu, float64(after-before)/float64(time.Microsecond)/float64(r.requests))
			}
		}
		ratios = append(ratios, sides[0].rps[i]/sides[1].rps[i])
		fmt.Fprintf(out, "  round %d:", i+1)
		for _, sd := range sides {
			fmt.Fprintf(out, "   %s %8.0f req/s (p99 %s)", sd.name, sd.rps[i], sd.p99[i])
		}
		fmt.Fprintf(out, "   ratio %.3f\n", ratios[i])
	}
	badgeSide, routeSide, bytesSide := sides[0], sides[1], sides[2]
	if len(badgeSide.cpu) == s.rounds && len(routeSide.cpu) == s.rounds && len(bytesSide.cpu) == s.rounds {
		fmt.Fprintf(out, "  cpu/req: badge %.1f µs, route %.1f µs, bytes %.1f µs (medians); THROUGHPUT RATIO BY CPU %.3f (route cpu/req ÷ badge cpu/req)\n",
			median(badgeSide.cpu), median(routeSide.cpu), median(bytesSide.cpu), median(routeSide.cpu)/median(badgeSide.cpu))
	}
	ratio := median(badgeSide.rps) / median(routeSide.rps)
	lo, hi := slices.Min(ratios), slices.Max(ratios)
	fmt.Fprintf(out, "  median: badge %.0f req/s, route %.0f req/s, bytes %.0f req/s\n", median(badgeSide.rps), median(routeSide.rps), median(bytesSide.rps))
	fmt.Fprintf(out, "  badge ÷ bytes outside the router, log and metrics: %.3f (no target)\n", median(badgeSide.rps)/median(bytesSide.rps))
	fmt.Fprintf(out, "THROUGHPUT RATIO %.3f (badge ÷ route, target >= 0.80); per-round ratios %.3f-%.3f, noise ±%.1f%%\n",
		ratio, lo, hi, 100*(hi-lo)/2/ratio)
	if ratio < 0.80 {
		missed = append(missed, "throughput ratio")
	}

	// 2. Latency at a fixed rate, in interleaved chunks as well.
	chunk := s.rateDuration / time.Duration(s.rounds)
	fmt.Fprintf(out, "fixed rate: %d req/s, open loop, %d chunks of %s per route, interleaved\n", s.rate, s.rounds, chunk)
	fmt.Fprintf(out, "  latency from the scheduled send time (includes any lateness of the sender); service = from the actual send\n")
	var badgeRuns, baseRuns []chunkRun
	for i := 0; i < s.rounds; i++ {
		for _, side := range []struct {
			url  string
			runs *[]chunkRun
		}{{badgeURL, &badgeRuns}, {baseURL, &baseRuns}} {
			r, err := openLoop(ctx, side.url, s.rate, chunk)
			if err != nil {
				return err
			}
			*side.runs = append(*side.runs, r)
		}
		fmt.Fprintf(out, "  chunk %d: badge p99 %-9s bytes p99 %s\n", i+1,
			summarize(badgeRuns[i:i+1]).p99.Round(time.Microsecond), summarize(baseRuns[i:i+1]).p99.Round(time.Microsecond))
	}
	badgeLat, baseLat := summarize(badgeRuns), summarize(baseRuns)
	fmt.Fprintf(out, "  badge %s\n  bytes %s\n", badgeLat, baseLat)
	fmt.Fprintf(out, "BADGE P99 AT %d REQ/S %s (target <= 5ms; the bytes outside the router %s in the same run)\n", s.rate,
		badgeLat.p99.Round(time.Microsecond), baseLat.p99.Round(time.Microsecond))
	if badgeLat.p99 > 5*time.Millisecond || badgeLat.errors > 0 {
		missed = append(missed, "p99 at fixed rate")
	}
	engineMissed, err := compareEngines(ctx, s, wrk, regHost, ref, dir, badgeURL, out)
	if err != nil {
		return err
	}
	missed = append(missed, engineMissed...)
	signInMissed, err := compareSignIn(ctx, s, wrk, regHost, ref, dir, badgeURL, childPID, out)
	if err != nil {
		return err
	}
	missed = append(missed, signInMissed...)
	if len(missed) > 0 {
		fmt.Fprintf(out, "targets missed: %s\n", strings.Join(missed, ", "))
		if s.strict {
			return fmt.Errorf("targets missed: %s", strings.Join(missed, ", "))
		}
	}
	return nil
}

// compareEngines is part 3: the badge of ref from a child on PostgreSQL
// against sqliteBadge, the child on SQLite, interleaved round by round. It
// returns the targets missed; without PostgreSQL installed it says so and
// measures nothing.
func compareEngines(ctx context.Context, s settings, wrk, regHost, ref, dir, sqliteBadge string, out io.Writer) ([]string, error) {
	cluster, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
	if errors.Is(err, pgtest.ErrNotInstalled) {
		fmt.Fprintf(out, "engines: skipped, %v\n", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	dsn, err := cluster.NewDatabase(ctx)
	if err != nil {
		return nil, err
	}
	addr, pgPID, stop, err := startChild(ctx, regHost, dsn, filepath.Join(dir, "requests-postgres.log"), "", false)
	if err != nil {
		return nil, err
	}
	defer stop()
	pgBadge := "http://" + addr + "/badges/version/" + ref + ".svg"
	if err := warm(ctx, pgBadge, "http://"+addr+baselinePath); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "engines: the same cached badge from a child on SQLite and one on PostgreSQL, interleaved\n")
	var sqliteRPS, pgRPS, ratios []float64
	for i := 0; i < s.rounds; i++ {
		a, err := runWrk(ctx, wrk, s, sqliteBadge)
		if err != nil {
			return nil, err
		}
		before := processCPU(pgPID)
		b, err := runWrk(ctx, wrk, s, pgBadge)
		if err != nil {
			return nil, err
		}
		cpu := ""
		if after := processCPU(pgPID); before >= 0 && after >= 0 && b.requests > 0 {
			cpu = fmt.Sprintf(" (%.1f µs cpu/req)", float64(after-before)/float64(time.Microsecond)/float64(b.requests))
		}
		sqliteRPS, pgRPS, ratios = append(sqliteRPS, a.rps), append(pgRPS, b.rps), append(ratios, b.rps/a.rps)
		fmt.Fprintf(out, "  round %d: sqlite %8.0f req/s   postgres %8.0f req/s%s   ratio %.3f\n", i+1, a.rps, b.rps, cpu, ratios[i])
	}
	var missed []string
	ratio := median(pgRPS) / median(sqliteRPS)
	lo, hi := slices.Min(ratios), slices.Max(ratios)
	fmt.Fprintf(out, "ENGINE THROUGHPUT RATIO %.3f (postgres ÷ sqlite, target >= 0.90); per-round %.3f-%.3f, noise ±%.1f%%\n",
		ratio, lo, hi, 100*(hi-lo)/2/ratio)
	if ratio < 0.90 {
		missed = append(missed, "engine throughput ratio")
	}
	chunk := s.rateDuration / time.Duration(s.rounds)
	var sqliteRuns, pgRuns []chunkRun
	for i := 0; i < s.rounds; i++ {
		for _, side := range []struct {
			url  string
			runs *[]chunkRun
		}{{sqliteBadge, &sqliteRuns}, {pgBadge, &pgRuns}} {
			r, err := openLoop(ctx, side.url, s.rate, chunk)
			if err != nil {
				return nil, err
			}
			*side.runs = append(*side.runs, r)
		}
	}
	a, b := summarize(sqliteRuns), summarize(pgRuns)
	fmt.Fprintf(out, "  sqlite   %s\n  postgres %s\n", a, b)
	fmt.Fprintf(out, "ENGINE P99 AT %d REQ/S: postgres %s, sqlite %s (target: postgres within 10%% of sqlite)\n", s.rate,
		b.p99.Round(time.Microsecond), a.p99.Round(time.Microsecond))
	if float64(b.p99) > 1.10*float64(a.p99) || b.errors > 0 {
		missed = append(missed, "engine p99")
	}
	return missed, nil
}

// compareSignIn is part 4: the public badge of ref from a child with
// sign-in configured against noSignIn, the child without, interleaved
// round by round, by throughput (and CPU time per request, which load from
// elsewhere on the machine hardly moves) and by p99 at the fixed rate.
// noSignInPID is the child without's process. It returns the targets
// missed.
func compareSignIn(ctx context.Context, s settings, wrk, regHost, ref, dir, noSignIn string, noSignInPID int, out io.Writer) ([]string, error) {
	addr, signInPID, stop, err := startChild(ctx, regHost, filepath.Join(dir, "imagebadger-signin.db"), filepath.Join(dir, "requests-signin.log"), "", true)
	if err != nil {
		return nil, err
	}
	defer stop()
	withSignIn := "http://" + addr + "/badges/version/" + ref + ".svg"
	if err := warm(ctx, withSignIn, "http://"+addr+baselinePath); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "sign-in: the same cached public badge from a child with sign-in configured and one without, interleaved\n")
	var offRPS, onRPS, ratios, offCPU, onCPU []float64
	// round runs one wrk round against u and adds the CPU time per
	// request of pid to cpu.
	round := func(u string, pid int, cpu *[]float64) (wrkResult, error) {
		before := processCPU(pid)
		r, err := runWrk(ctx, wrk, s, u)
		if after := processCPU(pid); err == nil && before >= 0 && after >= 0 && r.requests > 0 {
			*cpu = append(*cpu, float64(after-before)/float64(time.Microsecond)/float64(r.requests))
		}
		return r, err
	}
	for i := 0; i < s.rounds; i++ {
		a, err := round(noSignIn, noSignInPID, &offCPU)
		if err != nil {
			return nil, err
		}
		b, err := round(withSignIn, signInPID, &onCPU)
		if err != nil {
			return nil, err
		}
		offRPS, onRPS, ratios = append(offRPS, a.rps), append(onRPS, b.rps), append(ratios, b.rps/a.rps)
		fmt.Fprintf(out, "  round %d: without %8.0f req/s   with sign-in %8.0f req/s   ratio %.3f\n", i+1, a.rps, b.rps, ratios[i])
	}
	if len(offCPU) == s.rounds && len(onCPU) == s.rounds {
		fmt.Fprintf(out, "  cpu/req: without %.1f µs, with sign-in %.1f µs (medians); SIGN-IN THROUGHPUT RATIO BY CPU %.3f (without ÷ with)\n",
			median(offCPU), median(onCPU), median(offCPU)/median(onCPU))
	}
	var missed []string
	ratio := median(onRPS) / median(offRPS)
	lo, hi := slices.Min(ratios), slices.Max(ratios)
	fmt.Fprintf(out, "SIGN-IN THROUGHPUT RATIO %.3f (with ÷ without, target >= 0.95); per-round %.3f-%.3f, noise ±%.1f%%\n",
		ratio, lo, hi, 100*(hi-lo)/2/ratio)
	if ratio < 0.95 {
		missed = append(missed, "sign-in throughput ratio")
	}
	chunk := s.rateDuration / time.Duration(s.rounds)
	var offRuns, onRuns []chunkRun
	for i := 0; i < s.rounds; i++ {
		for _, side := range []struct {
			url  string
			runs *[]chunkRun
		}{{noSignIn, &offRuns}, {withSignIn, &onRuns}} {
			r, err := openLoop(ctx, side.url, s.rate, chunk)
			if err != nil {
				return nil, err
			}
			*side.runs = append(*side.runs, r)
		}
	}
	a, b := summarize(offRuns), summarize(onRuns)
	fmt.Fprintf(out, "  without      %s\n  with sign-in %s\n", a, b)
	fmt.Fprintf(out, "SIGN-IN P99 AT %d REQ/S: with sign-in %s, without %s (target: with sign-in <= 3ms)\n", s.rate,
		b.p99.Round(time.Microsecond), a.p99.Round(time.Microsecond))
	if b.p99 > 3*time.Millisecond || b.errors > 0 {
		missed = append(missed, "sign-in p99")
	}
	return missed, nil
}

// startRegistry serves go-containerregistry's registry on loopback.
func startRegistry() (host string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	return ln.Addr().String(), func() { hs.Close() }, nil
}

// pushImage pushes a small labelled image: the badge's text comes from it.
func pushImage(ctx context.Context, ref string) error {
	img, err := random.Image(4096, 4)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"org.opencontainers.image.version": benchVersion}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img, remote.WithContext(ctx))
}

// startChild starts this program with -child and reads the address it
// listens on. stop sends SIGTERM and waits, killing after 10 s.
func startChild(ctx context.Context, regHost, db, logPath, cpuProfile string, signIn bool) (addr string, pid int, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(self, "-child", "-registry", regHost, "-db", db, "-log", logPath, "-cpuprofile", cpuProfile,
		"-signin="+strconv.FormatBool(signIn))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	done := make(chan struct{})
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case line := <-lines:
		a, ok := strings.CutPrefix(line, "listening ")
		if !ok {
			stop()
			return "", 0, nil, fmt.Errorf("child said %q", line)
		}
		return a, cmd.Process.Pid, stop, nil
	case <-done:
		return "", 0, nil, errors.New("the server child exited before listening")
	case <-time.After(30 * time.Second):
		stop()
		return "", 0, nil, errors.New("the server child did not listen within 30 s")
	case <-ctx.Done():
		stop()
		return "", 0, nil, ctx.Err()
	}
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processCPU returns the user plus system CPU time pid has used, or -1 where
// /proc cannot tell (not Linux).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * clockTick
}

// serveChild is the server side: the service wired as serve wires it, with
// the baseline route, until SIGTERM.
func serveChild(ctx context.Context, regHost, db, logPath, cpuProfile string, signIn bool, out io.Writer) error {
	if regHost == "" || db == "" || logPath == "" {
		return errors.New("-child needs -registry, -db and -log")
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := slog.New(slog.NewJSONHandler(logFile, nil))
	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	client, err := registry.New(registry.Options{
		Transport: netguard.New(true).Transport(),
		Timeout:   20 * time.Second,
		Keychain:  authn.NewMultiKeychain(),
	})
	if err != nil {
		return err
	}
	svc := images.New(images.Options{Client: client, Store: st, FreshFor: 15 * time.Minute, Logger: logger})
	if _, err := svc.LoadIndex(ctx); err != nil {
		return err
	}
	defer svc.Close(context.Background())
	opts := server.Options{Images: svc, Store: st, Logger: logger, Metrics: prometheus.NewRegistry()}
	if signIn {
		// Configured as a deployment would be: an OpenID provider (found on
		// the first sign-in only, so never reached here) and a proxy header
		// trusted from loopback, which the benchmark's requests never carry.
		a, err := auth.New(auth.Options{Store: st, BaseURL: "http://127.0.0.1", Logger: logger,
			OIDC: auth.OIDCOptions{Issuer: "http://127.0.0.1:9/never", ClientID: "bench", ClientSecret: "bench",
				Allowed: []string{"bench@example.com"}, Transport: netguard.New(true).Transport()},
			ProxyHeader: "X-Forwarded-Email", ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			BadgeKey: []byte("bench badge key")})
		if err != nil {
			return err
		}
		opts.Auth = a
	}
	srv := server.New(opts)
	hs := server.HTTPServer(withBaseline(srv, badge.Render(badge.Badge{Left: "version", Right: benchVersion, Color: badge.ColorValue})), logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "listening %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// withBaseline serves, at baselinePath, the rendered badge b from memory
// with the headers a cached badge is served with, and everything else from
// srv: the yardstick a cached badge is measured against. It lives here, in
// the benchmark, so that the service carries no benchmark route. It goes
// round the service's router, request log and metrics, so badge ÷ bytes
// shows the whole cost of serving a badge beyond writing its bytes.
const baselinePath = "/_bench/baseline.svg"

func withBaseline(srv http.Handler, b badge.Rendered) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != baselinePath {
			srv.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "image/svg+xml")
		h.Set("ETag", b.ETag)
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		h.Set("Content-Length", strconv.Itoa(len(b.SVG)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b.SVG)
	})
}

// warm makes the badge known (its first request inspects the image) and
// checks that both routes serve the very same bytes.
func warm(ctx context.Context, badgeURL, baseURL string) error {
	get := func(u string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return b, err
	}
	deadline := time.Now().Add(30 * time.Second)
	var badgeBody []byte
	for {
		b, err := get(badgeURL)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(">"+benchVersion+"<")) {
			badgeBody = b
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the badge never showed %s: %s", benchVersion, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	base, err := get(baseURL)
	if err != nil {
		return err
	}
	if !bytes.Equal(badgeBody, base) {
		return fmt.Errorf("the baseline serves other bytes than the badge:\n%s\n%s", badgeBody, base)
	}
	return nil
}

// wrkResult is what one wrk run measured.
type wrkResult struct {
	rps      float64
	requests int64
	p99      time.Duration
}

func runWrk(ctx context.Context, wrk string, s settings, url string) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, "-t"+strconv.Itoa(s.threads), "-c"+strconv.Itoa(s.connections),
		"-d"+strconv.Itoa(int(s.duration.Seconds()))+"s", "--latency", url)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, outb)
	}
	return parseWrk(string(outb))
}

var (
	wrkRPS    = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkCount  = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkP99    = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrors = regexp.MustCompile(`(?m)^\s*(Non-2xx or 3xx responses|Socket errors):.*$`)
)

// parseWrk reads wrk's summary; any error response or socket error fails the
// run, as a benchmark of failures is no benchmark.
func parseWrk(out string) (wrkResult, error) {
	if m := wrkErrors.FindString(out); m != "" {
		return wrkResult{}, fmt.Errorf("wrk reported errors: %s\n%s", strings.TrimSpace(m), out)
	}
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	rps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return wrkResult{}, err
	}
	r := wrkResult{rps: rps}
	if m := wrkCount.FindStringSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkP99.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[2]]
		r.p99 = time.Duration(v * float64(unit))
	}
	return r, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// chunkRun is what one fixed-rate chunk measured, request by request.
type chunkRun struct {
	sched, service  []time.Duration // from the scheduled time; from the actual send
	errors, notSent int
	elapsed         time.Duration
}

// latency summarises fixed-rate runs.
type latency struct {
	sent, errors, notSent int
	p50, p99, p999, max   time.Duration
	serviceP99, lateP99   time.Duration
	achieved              float64
}

func summarize(runs []chunkRun) latency {
	var l latency
	var sched, service, late []time.Duration
	var elapsed time.Duration
	for _, r := range runs {
		sched = append(sched, r.sched...)
		service = append(service, r.service...)
		for i := range r.sched {
			late = append(late, r.sched[i]-r.service[i])
		}
		l.errors += r.errors
		l.notSent += r.notSent
		elapsed += r.elapsed
	}
	l.sent = len(sched) + l.errors
	if elapsed > 0 {
		l.achieved = float64(l.sent) / elapsed.Seconds()
	}
	slices.Sort(sched)
	slices.Sort(service)
	slices.Sort(late)
	l.p50, l.p99, l.p999 = quantile(sched, 0.50), quantile(sched, 0.99), quantile(sched, 0.999)
	if len(sched) > 0 {
		l.max = sched[len(sched)-1]
	}
	l.serviceP99, l.lateP99 = quantile(service, 0.99), quantile(late, 0.99)
	return l
}

func (l latency) String() string {
	r := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	return fmt.Sprintf("p50 %-9s p99 %-9s p99.9 %-9s max %-9s (service p99 %s, sender lateness p99 %s)  %d sent at %.0f req/s, %d errors, %d not sent",
		r(l.p50), r(l.p99), r(l.p999), r(l.max), r(l.serviceP99), r(l.lateP99), l.sent, l.achieved, l.errors, l.notSent)
}

// openLoop sends GET url at rate per second for d after a 0.5 s warm-up at
// the same rate (internal/testing/openloop), each request on its own schedule
// whatever the answers do; any answer but 200 counts as an error.
func openLoop(ctx context.Context, url string, rate int, d time.Duration) (chunkRun, error) {
	run, err := openloop.Send(ctx, openloop.Config{
		Rate: rate, Duration: d, Warmup: time.Second / 2,
		Next: func(int) openloop.Request { return openloop.Request{URL: url} },
	})
	if err != nil {
		return chunkRun{}, err
	}
	r := chunkRun{elapsed: run.Elapsed}
	for _, res := range run.Results {
		switch {
		case res.NotSent:
			r.notSent++
		case res.Err != nil || res.Status != http.StatusOK:
			r.errors++
		default:
			r.sched = append(r.sched, res.Latency)
			r.service = append(r.service, res.Service)
		}
	}
	return r, nil
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration { return openloop.Quantile(sorted, q) }
