package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/openloop"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestTinyRun runs the whole benchmark in a tiny mode against the binary of
// this tree, so that it keeps working: every attack must reach the path it
// attacks (the registry saw its requests, the service answered), whatever
// the verdicts, which depend on the fixes the binary has.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server binary and its registries (about 30 s)")
	}
	bin := testenv.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rows, err := run(ctx, []string{"-bin", bin, "-rate", "20", "-quiet", "1s", "-quiet-slice", "0s", "-window", "1s", "-attack-timeout", "20s",
		"-platforms", "4", "-layers", "20", "-big-reads", "2", "-tags", "250", "-slow-reads", "4", "-tokens", "5",
		"-form-gets", "10", "-squatters", "1"}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(attacks(settings{})) {
		t.Fatalf("%d rows, want one for each of the %d attacks", len(rows), len(attacks(settings{})))
	}
	for _, r := range rows {
		if !r.exercised {
			t.Errorf("%s: the attack did not reach its path: %s", r.attack, r.figure)
		}
		if r.client.sent == 0 {
			t.Errorf("%s: the well-behaved client sent nothing", r.attack)
		}
		if !strings.Contains(out.String(), r.attack+"  ") {
			t.Errorf("the table has no line for %s", r.attack)
		}
	}
}

func TestPass(t *testing.T) {
	quiet := 10 * time.Millisecond
	ok := row{client: clientStats{sent: 100, p99: 20 * time.Millisecond}, quietP99: quiet, outcome: outcome{target: "t", met: true}}
	if !ok.pass() {
		t.Error("a row within every target failed")
	}
	for name, r := range map[string]row{
		"client error": {client: clientStats{sent: 100, errors: 1, p99: quiet}, quietP99: quiet},
		"p99 over 2×":  {client: clientStats{sent: 100, p99: 20*time.Millisecond + 1}, quietP99: quiet},
		"own target":   {client: clientStats{sent: 100, p99: quiet}, quietP99: quiet, outcome: outcome{target: "t"}},
	} {
		if r.pass() {
			t.Errorf("%s: passed", name)
		}
	}
	noTarget := row{client: clientStats{sent: 100, p99: quiet}, quietP99: quiet}
	if !noTarget.pass() {
		t.Error("a row without a target of its own failed on the client's figures alone")
	}
}

func TestSummarize(t *testing.T) {
	var run openloop.Run
	for i := 1; i <= 200; i++ {
		run.Results = append(run.Results, openloop.Result{Status: 200, Latency: time.Duration(i) * time.Millisecond})
	}
	run.Results = append(run.Results,
		openloop.Result{Status: 500, Body: []byte(`{"error":{"code":"internal"}}`)},
		openloop.Result{Err: errors.New("context deadline exceeded")},
		openloop.Result{NotSent: true})
	st := summarize([]openloop.Run{run}, time.Second)
	if st.sent != 203 || st.errors != 3 {
		t.Errorf("sent %d, errors %d; want 203 and 3", st.sent, st.errors)
	}
	// The latencies of the 200 answers only: nearest rank 0.99 × 200 = 198.
	if st.p99 != 198*time.Millisecond || st.p50 != 100*time.Millisecond {
		t.Errorf("p50 %s p99 %s, want 100ms and 198ms", st.p50, st.p99)
	}
	if len(st.firstErrors) != 3 {
		t.Errorf("first errors %q, want the three kinds", st.firstErrors)
	}
	if r := st.errorRate(); r < 0.0147 || r > 0.0148 {
		t.Errorf("error rate %.4f, want 3/203", r)
	}

	// The quiet time is summed up from slices: merging them is summarizing
	// all their requests at once.
	half := len(run.Results) / 2
	a := summarize([]openloop.Run{{Results: run.Results[:half]}}, time.Second)
	b := summarize([]openloop.Run{{Results: run.Results[half:]}}, time.Second)
	if m := b.merge(a); m.sent != st.sent || m.errors != st.errors || m.p50 != st.p50 || m.p99 != st.p99 || len(m.firstErrors) != 3 {
		t.Errorf("merged halves: %+v; want %+v", m, st)
	}
}

const procStatus = `Name:	imagebadger
State:	S (sleeping)
VmPeak:	 1912340 kB
VmHWM:	   31204 kB
VmRSS:	   28416 kB
Threads:	12
`

func TestParseProcMemory(t *testing.T) {
	m, err := parseProcMemory([]byte(procStatus))
	if err != nil || m.rss != 28416<<10 || m.peak != 31204<<10 {
		t.Errorf("parseProcMemory = %+v, %v; want rss %d, peak %d", m, err, 28416<<10, 31204<<10)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmRSS:\t12 MB\nVmHWM:\t12 kB\n", "VmRSS:\t12 kB\n"} {
		if _, err := parseProcMemory([]byte(bad)); err == nil {
			t.Errorf("parseProcMemory(%q) gave no error", bad)
		}
	}
}

func TestStatusCounts(t *testing.T) {
	var s statusCounts
	for _, a := range []answer{{status: 200}, {status: 500}, {status: 200}, {err: errors.New("reset")}, {status: 202}} {
		s.add(a)
	}
	if got, want := s.String(), "200×2 202×1 500×1 no answer×1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if s.non2xx() != 2 || s.total() != 5 {
		t.Errorf("non2xx %d total %d, want 2 and 5", s.non2xx(), s.total())
	}
	if got := statusText(answer{status: http.StatusTooManyRequests, body: []byte(`{"error":{"code":"rate_limited","message":"m"}}`)}); got != "429 rate_limited" {
		t.Errorf("statusText = %q", got)
	}
}

func TestBadgeText(t *testing.T) {
	svg := func(right string) []byte {
		return []byte(`<svg xmlns="http://www.w3.org/2000/svg"><text>version</text><text>` + right + `</text></svg>`)
	}
	for _, tc := range []struct {
		a    answer
		want string
	}{
		{answer{status: 200, body: svg("2.0.7")}, badgeVersion},
		{answer{status: 200, body: svg("not found yet")}, badgeNotFound},
		{answer{status: 200, body: svg("not found")}, badgeNotFound},
		{answer{status: 200, body: svg("try again")}, badgeOther},
		{answer{status: 200, body: svg("2.0.70")}, badgeOther},
		{answer{status: 404, body: svg("unknown badge")}, "404"},
	} {
		if got := badgeText(tc.a, "2.0.7"); got != tc.want {
			t.Errorf("badgeText(%s) = %q, want %q", tc.a.body, got, tc.want)
		}
	}
}
