package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

const wrkOutput = `Running 5s test @ http://127.0.0.1:39487/badges/version/x.svg
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.10us    1.02ms  21.51ms   95.36%
    Req/Sec    13.20k     1.10k   15.98k    80.00%
  Latency Distribution
     50%  401.00us
     75%  550.00us
     90%  812.00us
     99%    5.23ms
  131412 requests in 5.00s, 190.10MB read
Requests/sec:  26281.97
Transfer/sec:     38.01MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 26281.97 || r.requests != 131412 || r.p99 != 5230*time.Microsecond {
		t.Errorf("got %+v", r)
	}
	withErrors := strings.Replace(wrkOutput, "Requests/sec:", "  Non-2xx or 3xx responses: 12\nRequests/sec:", 1)
	if _, err := parseWrk(withErrors); err == nil {
		t.Error("error responses were not reported")
	}
	if _, err := parseWrk("garbage"); err == nil {
		t.Error("output without Requests/sec was accepted")
	}
}

func TestQuantileAndMedian(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, 1000 * time.Millisecond}} {
		if got := quantile(ds, tc.q); got != tc.want {
			t.Errorf("quantile %.3f = %s, want %s", tc.q, got, tc.want)
		}
	}
	if quantile(nil, 0.99) != 0 {
		t.Error("quantile of nothing")
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestProcessCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before := processCPU(os.Getpid())
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	if after := processCPU(os.Getpid()); before < 0 || after < before {
		t.Errorf("processCPU went from %s to %s", before, after)
	}
}
