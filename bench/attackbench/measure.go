package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver the service's SQLite store uses

	"github.com/imagebadger/imagebadger/internal/testing/openloop"
)

// The loopback addresses each party sends from: the service keys its
// limits by client address, so an attacker must not share the well-behaved
// client's. Linux answers on all of 127.0.0.0/8.
const (
	wellBehavedAddr = "127.0.0.1" // also the "reverse proxy" of the token attack
	attackerAddr    = "127.0.0.2"
	otherAddr       = "127.0.0.3"
)

// squatterAddr is the address of the i-th squatter (0-based); the last
// subscriber of the squatting attack is squatterAddr(squatters).
func squatterAddr(i int) string { return "127.0.1." + strconv.Itoa(10+i) }

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, each request bounded by timeout.
func clientFrom(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024,
		IdleConnTimeout: time.Minute, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// answer is one request's outcome: the status (0 for a transport error)
// and the first bytes of the body.
type answer struct {
	status int
	body   []byte
	err    error
}

// send sends method url with header and body from c and reads at most 64 KiB of the
// answer.
func send(ctx context.Context, c *http.Client, method, url string, header http.Header, body []byte) answer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return answer{status: resp.StatusCode, body: b, err: err}
}

// statusCounts tallies statuses ("200", "500", "no answer"), or other
// outcomes by name, for a figure.
type statusCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *statusCounts) add(a answer) {
	key := strconv.Itoa(a.status)
	if a.status == 0 {
		key = "no answer"
	}
	s.addKey(key)
}

// addKey counts one of key, a status or another name of an outcome.
func (s *statusCounts) addKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[key]++
}

// non2xx is how many answers were not 2xx (transport errors included).
func (s *statusCounts) non2xx() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	bad := 0
	for k, v := range s.n {
		if !strings.HasPrefix(k, "2") {
			bad += v
		}
	}
	return bad
}

// count is how many of key there were.
func (s *statusCounts) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[key]
}

func (s *statusCounts) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := 0
	for _, v := range s.n {
		t += v
	}
	return t
}

// String is "200×38 500×2", statuses in order.
func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.n))
	for k := range s.n {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s×%d", k, s.n[k])
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// wellBehaved is the client whose experience the benchmark measures: a
// fixed rate of reads of a cached badge and the image page, alternating,
// from its own address, sent open loop (internal/testing/openloop).
type wellBehaved struct {
	rate   int
	urls   []string
	client *http.Client
}

// clientChunk is how often a new open-loop schedule starts (more often in
// a phase shorter than that); schedules start on time whatever the
// previous one is waiting for, so a stall of the server shows in the
// requests due during it.
const clientChunk = time.Second

// clientStats is what the well-behaved client saw in one phase.
type clientStats struct {
	sent, errors int
	p50, p99     time.Duration
	elapsed      time.Duration
	firstErrors  []string        // a few of the failed answers, for the log
	lat          []time.Duration // of the answers 200, sorted
}

// merge is the stats of a and b's requests together.
func (c clientStats) merge(o clientStats) clientStats {
	m := clientStats{sent: c.sent + o.sent, errors: c.errors + o.errors, elapsed: c.elapsed + o.elapsed,
		lat: append(slices.Clone(c.lat), o.lat...)}
	for _, e := range append(slices.Clone(c.firstErrors), o.firstErrors...) {
		m.note(e)
	}
	slices.Sort(m.lat)
	m.p50, m.p99 = openloop.Quantile(m.lat, 0.50), openloop.Quantile(m.lat, 0.99)
	return m
}

func (c clientStats) errorRate() float64 {
	if c.sent == 0 {
		return 0
	}
	return float64(c.errors) / float64(c.sent)
}

// during runs the client while attack runs, for at least minDur and until
// attack has returned, but never longer than maxDur; it returns what the
// client saw and the attack's error.
func (w *wellBehaved) during(ctx context.Context, minDur, maxDur time.Duration, attack func(context.Context) error) (clientStats, error) {
	attackDone := make(chan error, 1)
	actx, cancel := context.WithTimeout(ctx, maxDur)
	defer cancel()
	go func() { attackDone <- attack(actx) }()

	var (
		mu   sync.Mutex
		runs []openloop.Run
		wg   sync.WaitGroup
		errs []error
	)
	start := time.Now()
	var attackErr error
	finished := false
	chunk := min(clientChunk, maxDur)
	tick := time.NewTicker(chunk)
	defer tick.Stop()
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := openloop.Send(ctx, openloop.Config{
				Rate: w.rate, Duration: chunk, Client: w.client, Timeout: 10 * time.Second,
				Next: func(j int) openloop.Request { return openloop.Request{URL: w.urls[j%len(w.urls)]} },
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			runs = append(runs, run)
		}()
		select {
		case <-tick.C:
		case <-ctx.Done():
			wg.Wait()
			return clientStats{}, ctx.Err()
		}
		if !finished {
			select {
			case attackErr = <-attackDone:
				finished = true
			default:
			}
		}
		if elapsed := time.Since(start); (finished && elapsed >= minDur) || elapsed >= maxDur {
			break
		}
	}
	wg.Wait()
	if !finished {
		attackErr = <-attackDone // its context has ended: it returns promptly
	}
	if len(errs) > 0 {
		return clientStats{}, errs[0]
	}
	return summarize(runs, time.Since(start)), attackErr
}

// summarize reduces the client's runs: every answer but 200 is an error,
// and so is a request not sent because too many were in flight (the
// server stalled for seconds).
func summarize(runs []openloop.Run, elapsed time.Duration) clientStats {
	var st clientStats
	var lat []time.Duration
	for _, run := range runs {
		for _, r := range run.Results {
			st.sent++
			switch {
			case r.NotSent:
				st.errors++
				st.note("not sent: too many in flight")
			case r.Err != nil:
				st.errors++
				st.note(r.Err.Error())
			case r.Status != http.StatusOK:
				st.errors++
				st.note(fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)))
			default:
				lat = append(lat, r.Latency)
			}
		}
	}
	slices.Sort(lat)
	st.lat = lat
	st.p50, st.p99 = openloop.Quantile(lat, 0.50), openloop.Quantile(lat, 0.99)
	st.elapsed = elapsed
	return st
}

func (c *clientStats) note(s string) {
	if len(c.firstErrors) < 3 && !slices.Contains(c.firstErrors, s) {
		c.firstErrors = append(c.firstErrors, s)
	}
}

// procMemory is a process's resident set now and at its peak, in bytes,
// from /proc/PID/status (VmRSS, VmHWM).
type procMemory struct{ rss, peak int64 }

func readProcMemory(pid int) (procMemory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return procMemory{}, err
	}
	return parseProcMemory(b)
}

func parseProcMemory(status []byte) (procMemory, error) {
	var m procMemory
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		var into *int64
		switch {
		case !ok:
			continue
		case key == "VmRSS":
			into = &m.rss
		case key == "VmHWM":
			into = &m.peak
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return procMemory{}, fmt.Errorf("%s line %q is not \"N kB\"", key, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return procMemory{}, fmt.Errorf("%s line %q: bad number", key, sc.Text())
		}
		*into = kb << 10
		found++
	}
	if found != 2 {
		return procMemory{}, errors.New("no VmRSS and VmHWM lines (a kernel thread, or a process that has exited)")
	}
	return m, nil
}

// dbState is the size of an SQLite database: its rows (all tables) and
// bytes (the file and its write-ahead log).
type dbState struct{ rows, bytes int64 }

// readDB counts path's rows through a read-only connection, beside the
// server's own (SQLite in WAL mode lets readers in while it writes).
func readDB(ctx context.Context, path string) (dbState, error) {
	var st dbState
	for _, f := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			st.bytes += fi.Size()
		}
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return st, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return st, err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return st, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(t, `"`, `""`)+`"`).Scan(&n); err != nil {
			return st, fmt.Errorf("count %s: %w", t, err)
		}
		st.rows += n
	}
	return st, nil
}

// mb is bytes in MB (10^6), for the table.
func mb(b int64) float64 { return float64(b) / 1e6 }
