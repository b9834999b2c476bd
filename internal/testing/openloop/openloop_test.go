package openloop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			http.Error(w, `{"error":{"code":"registry_error"}}`, http.StatusBadGateway)
		case "/post":
			if r.Method != http.MethodPost || r.Header.Get("X-Test") != "1" {
				http.Error(w, "want a POST with X-Test", http.StatusBadRequest)
			}
		default:
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	classes := []Request{
		{Class: "ok", URL: srv.URL + "/ok"},
		{Class: "fail", URL: srv.URL + "/fail"},
		{Class: "post", Method: http.MethodPost, URL: srv.URL + "/post", Header: http.Header{"X-Test": {"1"}}, Body: []byte("{}")},
	}
	run, err := Send(context.Background(), Config{
		Rate: 300, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Next: func(i int) Request { return classes[i%len(classes)] },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Results) != 90 {
		t.Fatalf("%d results, want 90 (300/s for 300 ms, warm-up left out)", len(run.Results))
	}
	if run.Results[0].Due != 0 || run.Results[89].Due <= run.Results[0].Due {
		t.Errorf("due times %s … %s", run.Results[0].Due, run.Results[89].Due)
	}
	want := map[string]int{"ok": 200, "fail": 502, "post": 200}
	for _, r := range run.Results {
		if r.Err != nil || r.NotSent || r.Status != want[r.Class] {
			t.Fatalf("%+v", r)
		}
		if r.Latency < r.Service || r.Service <= 0 {
			t.Errorf("latency %s, service %s", r.Latency, r.Service)
		}
		if (r.Status >= 400) != strings.Contains(string(r.Body), "registry_error") {
			t.Errorf("%s kept body %q", r.Class, r.Body)
		}
	}
}

// TestSendNotSent: with one request allowed in flight and a server slower
// than the schedule, the requests due meanwhile are counted as not sent.
func TestSendNotSent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
	}))
	defer srv.Close()
	run, err := Send(context.Background(), Config{
		Rate: 100, Duration: 200 * time.Millisecond, MaxInFlight: 1,
		Next: func(int) Request { return Request{URL: srv.URL} },
	})
	if err != nil {
		t.Fatal(err)
	}
	var sent, notSent int
	for _, r := range run.Results {
		if r.NotSent {
			notSent++
		} else if r.Status == 200 {
			sent++
		}
	}
	if sent == 0 || notSent == 0 || sent+notSent != 20 {
		t.Errorf("%d sent, %d not sent of 20", sent, notSent)
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, 1000 * time.Millisecond}} {
		if got := Quantile(ds, tc.q); got != tc.want {
			t.Errorf("Quantile %.3f = %s, want %s", tc.q, got, tc.want)
		}
	}
	if Quantile(nil, 0.99) != 0 {
		t.Error("Quantile of nothing")
	}
}
