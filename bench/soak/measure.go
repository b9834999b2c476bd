package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/openloop"
)

// badgeKinds are the badge kinds of docs/API.md.
var badgeKinds = []string{"image", "version", "commit", "license", "base"}

// The traffic classes.
const (
	classBadge = "badges"
	classPage  = "pages"
	classJSON  = "json"
)

var classes = []string{classBadge, classPage, classJSON}

// Targets of the load test: what a deployment may expect under it.
const (
	targetBadgeP99  = 10 * time.Millisecond
	targetRSSGrowth = 0.10
)

// plan returns n requests mixed as the load sends them: mix gives the
// percentages of badges (every kind, of the family and of storm tags alike),
// image pages and JSON image reports, each class spread over every
// reference of the traffic.
func plan(server string, familyRefs, stormRefs []string, mix [3]int, n int, rng *rand.Rand) []openloop.Request {
	ref := func() string {
		if rng.IntN(2) == 0 || len(stormRefs) == 0 {
			return familyRefs[rng.IntN(len(familyRefs))]
		}
		return stormRefs[rng.IntN(len(stormRefs))]
	}
	total := mix[0] + mix[1] + mix[2]
	out := make([]openloop.Request, n)
	for i := range out {
		switch x := rng.IntN(total); {
		case x < mix[0]:
			out[i] = openloop.Request{Class: classBadge, URL: server + "/badges/" + badgeKinds[rng.IntN(len(badgeKinds))] + "/" + ref() + ".svg"}
		case x < mix[0]+mix[1]:
			out[i] = openloop.Request{Class: classPage, URL: server + "/images/" + ref()}
		default:
			out[i] = openloop.Request{Class: classJSON, URL: server + "/api/v1/images/" + ref()}
		}
	}
	return out
}

// parseMix reads -mix: three non-negative integers, not all zero.
func parseMix(s string) ([3]int, error) {
	var mix [3]int
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return mix, fmt.Errorf("-mix %q: want three numbers, badges,pages,json", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 100 {
			return mix, fmt.Errorf("-mix %q: %q is not a number from 0 to 100", s, p)
		}
		mix[i] = n
	}
	if mix[0]+mix[1]+mix[2] == 0 {
		return mix, fmt.Errorf("-mix %q: all zero", s)
	}
	return mix, nil
}

// measurement is everything the run measured.
type measurement struct {
	results            []openloop.Result
	elapsed            time.Duration
	loadStart, loadEnd time.Time
	rss                []rssSample
	rssErr             error
	moves              []move
	lags               []time.Duration // per move, -1 when never delivered
	deliveries         map[string]int  // received from the load's start to the end of the drain
	setupDeliveries    map[string]int  // received before (the subscriptions' pings)
	webhookMetrics     []string
	cpu                cpuUse
	log                logSummary
	registry           registrySummary
}

// load runs the traffic and the refresh storm together and samples the
// server's RSS meanwhile.
func load(ctx context.Context, s settings, e *env) (*measurement, error) {
	rng := rand.New(rand.NewPCG(7, 11))
	reqs := plan(e.server.URL, e.familyRefs, e.stormRefs, s.mix, 20000, rng)
	tr := &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000, IdleConnTimeout: time.Minute, DisableCompression: true}
	defer tr.CloseIdleConnections()

	m := &measurement{}
	stopSampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { m.rss, m.rssErr = sampleRSS(e.server.PID(), time.Second, stopSampling) })
	stormCtx, stopStorm := context.WithCancel(ctx)
	defer stopStorm()
	var moves []move
	if s.push {
		wg.Go(func() { moves = e.runStorm(stormCtx, rand.New(rand.NewPCG(3, 5))) })
	}

	m.setupDeliveries = e.receiver.counts()
	cpuBefore := sampleCPU(e.server.PID())
	m.loadStart = time.Now()
	run, err := openloop.Send(ctx, openloop.Config{
		Rate: s.rate, Duration: s.duration, Warmup: time.Second,
		Next:   func(i int) openloop.Request { return reqs[i%len(reqs)] },
		Client: &http.Client{Transport: tr},
	})
	m.loadEnd = time.Now()
	m.cpu = sampleCPU(e.server.PID()).since(cpuBefore)
	stopStorm()
	close(stopSampling)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	m.results, m.elapsed, m.moves = run.Results, run.Elapsed, moves

	// Deliveries of the last moves may still be on their way.
	for deadline := time.Now().Add(10 * time.Second); ; {
		m.lags = e.receiver.delivered(m.moves)
		if !slices.Contains(m.lags, -1) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.deliveries = e.receiver.counts()
	for k, v := range m.setupDeliveries {
		if m.deliveries[k] -= v; m.deliveries[k] == 0 {
			delete(m.deliveries, k)
		}
	}
	m.webhookMetrics = scrapeMetrics(ctx, e.server.URL, "imagebadger_webhook_attempts_total")
	return m, nil
}

// dump writes one line per request: class, due time since the load's start
// (ms), status, latency and service time (ms), and the kept body of an error.
func dump(path string, m *measurement) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "class\tdue_ms\tstatus\tlatency_ms\tservice_ms\tnot_sent\terror")
	msf := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
	}
	for _, r := range m.results {
		errText := ""
		if r.Err != nil {
			errText = r.Err.Error()
		} else if r.Status >= 400 {
			errText = strconv.Quote(string(r.Body))
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%v\t%s\n", r.Class, msf(r.Due), r.Status, msf(r.Latency), msf(r.Service), r.NotSent, errText)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rssSample is the server's resident set size at a moment of the load.
type rssSample struct {
	at  time.Duration // since sampling started
	rss int64         // bytes
}

// sampleRSS reads pid's VmRSS now and every interval until stop is closed.
func sampleRSS(pid int, interval time.Duration, stop <-chan struct{}) ([]rssSample, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var out []rssSample
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return out, err
		}
		rss, err := parseVmRSS(b)
		if err != nil {
			return out, err
		}
		out = append(out, rssSample{at: time.Since(start), rss: rss})
		select {
		case <-stop:
			return out, nil
		case <-tick.C:
		}
	}
}

// parseVmRSS returns the VmRSS line of a /proc/PID/status file in bytes.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q is not \"N kB\"", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("VmRSS line %q: bad number", sc.Text())
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or a process that has exited)")
}

// rssGrowth compares the last sample with the one nearest the middle of the
// sampling (for a 60 s load: RSS at 60 s against RSS at 30 s).
func rssGrowth(samples []rssSample) (mid, end rssSample, growth float64, ok bool) {
	if len(samples) < 3 {
		return mid, end, 0, false
	}
	end = samples[len(samples)-1]
	half := end.at / 2
	mid = samples[0]
	for _, s := range samples {
		if absDuration(s.at-half) < absDuration(mid.at-half) {
			mid = s
		}
	}
	if mid.rss <= 0 {
		return mid, end, 0, false
	}
	return mid, end, float64(end.rss-mid.rss) / float64(mid.rss), true
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// clockTick is the unit of the CPU times in /proc (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuUse is CPU time used over a span, by the server, by this program (the
// load generator, proxy and receiver) and by the whole machine, whose other
// work (the registry, other people's builds) competes with both.
type cpuUse struct {
	wall                    time.Duration
	server, self            time.Duration
	machineBusy, machineAll time.Duration
	ok                      bool
}

func sampleCPU(serverPID int) cpuUse {
	c := cpuUse{wall: time.Duration(time.Now().UnixNano())}
	var err1, err2, err3 error
	c.server, err1 = readProcessCPU(fmt.Sprintf("/proc/%d/stat", serverPID))
	c.self, err2 = readProcessCPU("/proc/self/stat")
	c.machineBusy, c.machineAll, err3 = readMachineCPU("/proc/stat")
	c.ok = err1 == nil && err2 == nil && err3 == nil
	return c
}

func (c cpuUse) since(before cpuUse) cpuUse {
	return cpuUse{wall: c.wall - before.wall, server: c.server - before.server, self: c.self - before.self,
		machineBusy: c.machineBusy - before.machineBusy, machineAll: c.machineAll - before.machineAll, ok: c.ok && before.ok}
}

// readProcessCPU returns the user plus system time of a /proc/PID/stat file.
func readProcessCPU(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseProcessCPU(b)
}

func parseProcessCPU(stat []byte) (time.Duration, error) {
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th, stime the 13th.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name in stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// readMachineCPU returns the busy and total CPU time of all cores so far,
// from the "cpu" line of /proc/stat.
func readMachineCPU(path string) (busy, all time.Duration, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	return parseMachineCPU(b)
}

func parseMachineCPU(stat []byte) (busy, all time.Duration, err error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("no cpu line first in /proc/stat")
	}
	var total, idle int64
	for i, v := range f[1:] {
		if i >= 8 { // guest time is already counted in user time
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(total-idle) * clockTick, time.Duration(total) * clockTick, nil
}

// windowP99 returns the p99 latency of the answered requests of class in
// each window of the load.
func windowP99(results []openloop.Result, class string, window time.Duration) []time.Duration {
	var byWindow [][]time.Duration
	for _, r := range results {
		if r.Class != class || classify(class, r) == noAnswer || r.Due < 0 {
			continue
		}
		i := int(r.Due / window)
		for len(byWindow) <= i {
			byWindow = append(byWindow, nil)
		}
		byWindow[i] = append(byWindow[i], r.Latency)
	}
	out := make([]time.Duration, len(byWindow))
	for i, ls := range byWindow {
		slices.Sort(ls)
		out[i] = openloop.Quantile(ls, 0.99)
	}
	return out
}

// outcome is what an answer means for the targets.
type outcome int

const (
	// answered: any answer but a 5xx (a 4xx is shown in the histogram).
	answered outcome = iota
	// registryError: 502 registry_error or 504 registry_timeout, the
	// documented answers to a registry that failed (for an image page, the
	// same status with the HTML error page).
	registryError
	// failed5xx: any other 5xx, a failure.
	failed5xx
	// noAnswer: a transport error, a timeout, or not sent because too many
	// requests were in flight; a failure too.
	noAnswer
)

func (o outcome) String() string {
	return [...]string{"answered", "documented registry error", "undocumented 5xx", "no answer"}[o]
}

// classify judges one result of the given class.
func classify(class string, r openloop.Result) outcome {
	switch {
	case r.NotSent || r.Err != nil || r.Status == 0:
		return noAnswer
	case r.Status < 500:
		return answered
	case documentedRegistryError(class, r.Status, r.Body):
		return registryError
	}
	return failed5xx
}

// documentedRegistryError reports whether a 5xx answer is docs/API.md's answer
// to a failing registry: the JSON error body with code registry_error (502)
// or registry_timeout (504); image pages answer the same statuses with an
// HTML error page.
func documentedRegistryError(class string, status int, body []byte) bool {
	if status != http.StatusBadGateway && status != http.StatusGatewayTimeout {
		return false
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		return (status == http.StatusBadGateway && e.Error.Code == "registry_error") ||
			(status == http.StatusGatewayTimeout && e.Error.Code == "registry_timeout")
	}
	return class == classPage && bytes.HasPrefix(bytes.ToLower(bytes.TrimSpace(body)), []byte("<!doctype html"))
}

// classStats summarises one class of traffic.
type classStats struct {
	class                                   string
	count                                   int
	outcomes                                [4]int
	p50, p90, p99, max, serviceP99, lateP99 time.Duration
	answeredLatencies                       int
}

// summarize computes a class's figures. Latencies are those of the requests
// that got a whole answer, measured from when they were due.
func summarize(class string, results []openloop.Result) classStats {
	cs := classStats{class: class}
	var lat, service, late []time.Duration
	for _, r := range results {
		if r.Class != class {
			continue
		}
		cs.count++
		o := classify(class, r)
		cs.outcomes[o]++
		if o == noAnswer {
			continue
		}
		lat = append(lat, r.Latency)
		service = append(service, r.Service)
		late = append(late, r.Latency-r.Service)
	}
	slices.Sort(lat)
	slices.Sort(service)
	slices.Sort(late)
	cs.answeredLatencies = len(lat)
	cs.p50, cs.p90, cs.p99 = openloop.Quantile(lat, 0.5), openloop.Quantile(lat, 0.9), openloop.Quantile(lat, 0.99)
	cs.max = openloop.Quantile(lat, 1)
	cs.serviceP99, cs.lateP99 = openloop.Quantile(service, 0.99), openloop.Quantile(late, 0.99)
	return cs
}

// statusHistogram counts answers by status code; requests without one
// count under "no answer" and "not sent".
func statusHistogram(results []openloop.Result) (codes map[int]int, noAnswer, notSent int) {
	codes = map[int]int{}
	for _, r := range results {
		switch {
		case r.NotSent:
			notSent++
		case r.Err != nil || r.Status == 0:
			noAnswer++
		default:
			codes[r.Status]++
		}
	}
	return codes, noAnswer, notSent
}

// logSummary is what the server's log says about the load window.
type logSummary struct {
	requests   int // "http" lines
	byLevel    map[string]int
	warnings   map[string]int    // WARN and ERROR messages → count
	examples   map[string]string // one line of each
	unreadable int
	err        error
}

// scanServerLog reads the server's JSON log and summarises the lines
// logged between from and to.
func scanServerLog(path string, from, to time.Time) logSummary {
	f, err := os.Open(path)
	if err != nil {
		return logSummary{err: err}
	}
	defer f.Close()
	return summarizeLog(f, from, to)
}

func summarizeLog(r io.Reader, from, to time.Time) logSummary {
	ls := logSummary{byLevel: map[string]int{}, warnings: map[string]int{}, examples: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Time  time.Time `json:"time"`
			Level string    `json:"level"`
			Msg   string    `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			ls.unreadable++
			continue
		}
		if l.Time.Before(from) || l.Time.After(to) {
			continue
		}
		ls.byLevel[l.Level]++
		if l.Msg == "http" {
			ls.requests++
		}
		if l.Level == "WARN" || l.Level == "ERROR" {
			k := l.Level + " " + l.Msg
			ls.warnings[k]++
			if _, ok := ls.examples[k]; !ok {
				ls.examples[k] = truncate(sc.Text(), 400)
			}
		}
	}
	ls.err = sc.Err()
	return ls
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// registrySummary counts the requests imagebadger made to the registry
// (through the proxy: its user agent starts with "imagebadger") during the
// load, from the registry's own log.
type registrySummary struct {
	total    int
	byKind   map[string]int
	statuses map[int]int
	err      error
}

// kinds lists the request kinds, most frequent first.
func (rs registrySummary) kinds() string {
	var ks []string
	for k := range rs.byKind {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b string) int {
		if rs.byKind[a] != rs.byKind[b] {
			return rs.byKind[b] - rs.byKind[a]
		}
		return strings.Compare(a, b)
	})
	for i, k := range ks {
		ks[i] = fmt.Sprintf("%d %s", rs.byKind[k], k)
	}
	return strings.Join(ks, ", ")
}

func scanRegistryLog(path string, from, to time.Time) registrySummary {
	f, err := os.Open(path)
	if err != nil {
		return registrySummary{err: err}
	}
	defer f.Close()
	return summarizeRegistryLog(f, from, to)
}

var (
	regTime   = regexp.MustCompile(`\btime="([^"]+)"`)
	regMethod = regexp.MustCompile(`\bhttp\.request\.method=(\S+)`)
	regURI    = regexp.MustCompile(`\bhttp\.request\.uri="?([^"\s]+)`)
	regAgent  = regexp.MustCompile(`\bhttp\.request\.useragent="?([^"]*)`)
	regStatus = regexp.MustCompile(`\bhttp\.response\.status=(\d+)`)
)

// summarizeRegistryLog reads the distribution registry's text log: one
// `msg="response completed"` line per request (`… with error` for a 4xx or
// 5xx).
func summarizeRegistryLog(r io.Reader, from, to time.Time) registrySummary {
	rs := registrySummary{byKind: map[string]int{}, statuses: map[int]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `msg="response completed`) {
			continue
		}
		agent := regAgent.FindStringSubmatch(line)
		if agent == nil || !strings.HasPrefix(agent[1], "imagebadger") {
			continue
		}
		tm := regTime.FindStringSubmatch(line)
		if tm == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, tm[1])
		if err != nil || at.Before(from) || at.After(to) {
			continue
		}
		method, uri := regMethod.FindStringSubmatch(line), regURI.FindStringSubmatch(line)
		if method == nil || uri == nil {
			continue
		}
		rs.total++
		rs.byKind[registryRequestKind(method[1], uri[1])]++
		if st := regStatus.FindStringSubmatch(line); st != nil {
			n, _ := strconv.Atoi(st[1])
			rs.statuses[n]++
		}
	}
	rs.err = sc.Err()
	return rs
}

// registryRequestKind names a registry API request by what it does.
func registryRequestKind(method, uri string) string {
	path, _, _ := strings.Cut(uri, "?")
	switch {
	case strings.HasSuffix(path, "/tags/list"):
		return "tag listings"
	case strings.Contains(path, "/manifests/"):
		return method + " manifest"
	case strings.Contains(path, "/blobs/"):
		return method + " blob"
	}
	return method + " other"
}

// scrapeMetrics returns the lines of the server's /metrics that start with
// prefix.
func scrapeMetrics(ctx context.Context, server, prefix string) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// report prints the figures and the targets; it returns the targets missed.
func report(w io.Writer, s settings, e *env, m *measurement) (missed []string) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
	sent := 0
	for _, r := range m.results {
		if !r.NotSent {
			sent++
		}
	}
	fmt.Fprintf(w, "\nsoak: %s at %d req/s: %d requests scheduled, %d sent (%.0f req/s achieved)\n",
		s.duration, s.rate, len(m.results), sent, float64(sent)/m.elapsed.Seconds())
	fmt.Fprintf(w, "  latency is measured from each request's scheduled time (open loop); service from its actual send\n")
	fmt.Fprintf(w, "  %-7s %7s %7s %8s %8s %8s %8s %8s   %s\n", "class", "count", "answers", "p50", "p90", "p99", "max", "svc p99", "outcomes")
	stats := map[string]classStats{}
	var failures int
	for _, c := range classes {
		cs := summarize(c, m.results)
		stats[c] = cs
		failures += cs.outcomes[failed5xx] + cs.outcomes[noAnswer]
		fmt.Fprintf(w, "  %-7s %7d %7d %8s %8s %8s %8s %8s   %d registry errors, %d undocumented 5xx, %d no answer\n",
			c, cs.count, cs.answeredLatencies, ms(cs.p50), ms(cs.p90), ms(cs.p99), ms(cs.max), ms(cs.serviceP99),
			cs.outcomes[registryError], cs.outcomes[failed5xx], cs.outcomes[noAnswer])
	}
	var windows []string
	for _, p := range windowP99(m.results, classBadge, 10*time.Second) {
		windows = append(windows, ms(p))
	}
	fmt.Fprintf(w, "  badge p99 in each 10 s: %s\n", strings.Join(windows, " "))
	fmt.Fprintf(w, "  sender lateness p99 (scheduled → sent), badges: %s (the load generator shares the machine)\n", ms(stats[classBadge].lateP99))
	if c := m.cpu; c.ok && c.wall > 0 && c.machineAll > 0 {
		cores := func(d time.Duration) float64 { return float64(d) / float64(c.wall) }
		fmt.Fprintf(w, "  cpu during the load: server %.2f cores (%.0f µs per request), load generator+proxy+receiver %.2f cores; machine %.0f%% busy of %d cores (%.2f cores used by everything)\n",
			cores(c.server), float64(c.server)/float64(time.Microsecond)/float64(max(sent, 1)), cores(c.self),
			100*float64(c.machineBusy)/float64(c.machineAll), runtime.NumCPU(), cores(c.machineBusy))
	}

	codes, noAns, notSent := statusHistogram(m.results)
	var keys []int
	for k := range codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d: %d", k, codes[k]))
	}
	fmt.Fprintf(w, "  status codes: %s; no answer: %d; not sent: %d\n", strings.Join(parts, ", "), noAns, notSent)
	// Show one undocumented 5xx body of each class, if any.
	for _, c := range classes {
		for _, r := range m.results {
			if r.Class == c && classify(c, r) == failed5xx {
				fmt.Fprintf(w, "  first undocumented %d of %s: %.200q\n", r.Status, c, r.Body)
				break
			}
		}
	}

	// The storm.
	hooks := map[int]int{}
	for _, mv := range m.moves {
		hooks[mv.hookStatus]++
	}
	fmt.Fprintf(w, "storm: %d tag moves pushed (one every 1–2 s), announced on /hooks/registry: answers %v\n", len(m.moves), hooks)
	ls := m.log
	if ls.err != nil {
		fmt.Fprintf(w, "  server log: %v\n", ls.err)
	}
	rs := m.registry
	if rs.err != nil {
		fmt.Fprintf(w, "  registry log: %v\n", rs.err)
	}
	fmt.Fprintf(w, "  imagebadger's registry requests during the load (from the registry's log; each %s late through the proxy): %d (%.1f/s): %s; statuses %v\n",
		s.delay, rs.total, float64(rs.total)/m.loadEnd.Sub(m.loadStart).Seconds(), rs.kinds(), rs.statuses)
	fmt.Fprintf(w, "  (about %.1f polling rounds of the %d watched repositories: a round starts %s after the previous one ended)\n",
		float64(rs.byKind["tag listings"])/float64(len(e.storm)), len(e.storm), s.pollInterval)
	var delivered []time.Duration
	for _, l := range m.lags {
		if l >= 0 {
			delivered = append(delivered, l)
		}
	}
	slices.Sort(delivered)
	fmt.Fprintf(w, "webhooks: %d subscriptions (pings at setup: %v); received during the load and a drain of up to 10 s: %d deliveries %v\n",
		e.subs, m.setupDeliveries, sumValues(m.deliveries), m.deliveries)
	fmt.Fprintf(w, "  moves delivered: %d of %d (push → first image.updated: p50 %s, p99 %s, max %s)\n",
		len(delivered), len(m.moves), ms(openloop.Quantile(delivered, 0.5)), ms(openloop.Quantile(delivered, 0.99)), ms(openloop.Quantile(delivered, 1)))
	for _, l := range m.webhookMetrics {
		fmt.Fprintf(w, "  server: %s\n", l)
	}

	// Memory.
	mid, end, growth, rssOK := rssGrowth(m.rss)
	if m.rssErr != nil {
		fmt.Fprintf(w, "rss: sampling stopped: %v\n", m.rssErr)
	}
	if len(m.rss) > 0 {
		var series []string
		peak := m.rss[0].rss
		for i, smp := range m.rss {
			peak = max(peak, smp.rss)
			if i%10 == 0 || i == len(m.rss)-1 {
				series = append(series, fmt.Sprintf("%.0fs %.1f", smp.at.Seconds(), mib(smp.rss)))
			}
		}
		fmt.Fprintf(w, "rss (MiB, every 10 s of %d samples): %s; peak %.1f\n", len(m.rss), strings.Join(series, ", "), mib(peak))
	}

	// The server's own account.
	fmt.Fprintf(w, "server log during the load: %d request lines, levels %v", ls.requests, ls.byLevel)
	if ls.unreadable > 0 {
		fmt.Fprintf(w, ", %d lines not JSON", ls.unreadable)
	}
	fmt.Fprintln(w)
	var msgs []string
	for k := range ls.warnings {
		msgs = append(msgs, k)
	}
	slices.Sort(msgs)
	for _, k := range msgs {
		fmt.Fprintf(w, "  %d× %s, e.g. %s\n", ls.warnings[k], k, ls.examples[k])
	}

	// Targets.
	fmt.Fprintln(w, "targets:")
	check := func(name, got, target string, pass bool) {
		verdict := "PASS"
		if !pass {
			verdict = "MISS"
			missed = append(missed, name)
		}
		fmt.Fprintf(w, "  %-44s %-12s target %-10s %s\n", name, got, target, verdict)
	}
	check("failures (undocumented 5xx, no answer)", strconv.Itoa(failures), "0", failures == 0)
	badge := stats[classBadge]
	check("cached badge p99", ms(badge.p99), "<= "+ms(targetBadgeP99), badge.answeredLatencies > 0 && badge.p99 <= targetBadgeP99)
	if rssOK {
		check(fmt.Sprintf("RSS growth %.0fs→%.0fs (%.1f→%.1f MiB)", mid.at.Seconds(), end.at.Seconds(), mib(mid.rss), mib(end.rss)),
			fmt.Sprintf("%+.1f%%", 100*growth), fmt.Sprintf("< %.0f%%", 100*targetRSSGrowth), growth < targetRSSGrowth)
	} else {
		check("RSS growth over the second half", "unknown", fmt.Sprintf("< %.0f%%", 100*targetRSSGrowth), false)
	}
	return missed
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
