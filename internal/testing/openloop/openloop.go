// Package openloop sends HTTP requests at a fixed rate whatever the answers
// do (an open loop, unlike wrk's closed one, whose connections each wait for
// an answer before sending again and so slow down with the server) and
// measures each request from the moment it was due. A server that stalls
// then shows the stall in every request scheduled during it, instead of
// hiding it by sending fewer (coordinated omission). The badge benchmark
// (bench/loadbench) and the load test (bench/soak) share it.
package openloop

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// Request is one request of the schedule. Class groups results (a route, a
// kind of traffic); the generator only copies it.
type Request struct {
	Class  string
	Method string // empty means GET
	URL    string
	Header http.Header
	Body   []byte
}

// Config describes one fixed-rate run.
type Config struct {
	// Rate is the requests sent per second (1 to 100,000).
	Rate int
	// Duration is how long the measured part lasts.
	Duration time.Duration
	// Warmup is sent at the same rate before the measured part and not
	// counted, so the first measured requests find connections open.
	Warmup time.Duration
	// Next returns the i-th request of the schedule (warm-up included, from
	// 0). It runs on the sender's schedule, so it must be cheap.
	Next func(i int) Request
	// MaxInFlight bounds the concurrent requests (default 1000): a server
	// that stalls longer than MaxInFlight/Rate makes requests count as not
	// sent rather than piling up goroutines and sockets.
	MaxInFlight int
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
	// Client sends the requests; nil means a client of its own whose idle
	// connections are closed at the end.
	Client *http.Client
}

// KeepBody is how much of an answer with status 400 or more a Result keeps:
// enough to tell a documented error body from another.
const KeepBody = 512

// Result is what happened to one scheduled request.
type Result struct {
	Class string
	// Due is when the request was due, from the start of the measured part.
	Due time.Duration
	// Status is the answer's status code, 0 when there was none.
	Status int
	// Err is a transport error or an error reading the body.
	Err error
	// Body holds the first KeepBody bytes of an answer with status >= 400.
	Body []byte
	// Latency runs from the scheduled time to the end of the body: it
	// includes any lateness of the sender. Service runs from the actual send.
	Latency, Service time.Duration
	// NotSent is set when MaxInFlight requests were already in flight at
	// the scheduled time.
	NotSent bool
}

// Run is the outcome of a fixed-rate run.
type Run struct {
	// Results holds the measured requests (warm-up left out), in schedule
	// order.
	Results []Result
	// Elapsed runs from the first measured due time to the last answer.
	Elapsed time.Duration
}

// Send runs cfg: each request goes out at its scheduled time on its own
// goroutine. It returns when every answer is in, or ctx's error after the
// requests in flight have ended when ctx is cancelled.
func Send(ctx context.Context, cfg Config) (Run, error) {
	maxInFlight := cfg.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = 1000
	}
	client := cfg.Client
	if client == nil {
		tr := &http.Transport{MaxIdleConns: maxInFlight, MaxIdleConnsPerHost: maxInFlight,
			IdleConnTimeout: time.Minute, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	rate := min(max(cfg.Rate, 1), 100000)
	interval := time.Second / time.Duration(rate)
	warmup := int(cfg.Warmup / interval)
	n := warmup + int(cfg.Duration/interval)
	results := make([]Result, n)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	measured := start.Add(time.Duration(warmup) * interval)
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			wg.Wait()
			return Run{}, ctx.Err()
		}
		req := cfg.Next(i)
		results[i] = Result{Class: req.Class, Due: due.Sub(measured)}
		select {
		case sem <- struct{}{}:
		default:
			results[i].NotSent = true
			continue
		}
		wg.Add(1)
		go func(res *Result, due time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			do(ctx, client, timeout, req, res, due)
		}(&results[i], due)
	}
	wg.Wait()
	return Run{Results: results[warmup:], Elapsed: time.Since(measured)}, nil
}

// do sends req and fills res.
func do(ctx context.Context, client *http.Client, timeout time.Duration, req Request, res *Result, due time.Time) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	sent := time.Now()
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err == nil {
		for k, vs := range req.Header {
			hr.Header[k] = vs
		}
		var resp *http.Response
		if resp, err = client.Do(hr); err == nil {
			res.Status = resp.StatusCode
			if resp.StatusCode >= 400 {
				res.Body, err = io.ReadAll(io.LimitReader(resp.Body, KeepBody))
			}
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
		}
	}
	end := time.Now()
	res.Err, res.Latency, res.Service = err, end.Sub(due), end.Sub(sent)
}

// Quantile is the nearest-rank quantile q (0 to 1) of sorted durations; 0
// for none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
