package distreg

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// LatencyProxy forwards plain HTTP to the registry at target ("host:port"),
// holding every request for delay first: a registry across a network, on
// loopback. The whole-process benchmarks (bench/benchcmp) and the load test
// (bench/soak) put it in front of the distribution registry so that what a
// request costs in round trips shows as it would in production. addr is
// "127.0.0.1:PORT", usable in image references; stop closes the listener and
// every connection.
func LatencyProxy(target string, delay time.Duration) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			rp.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

// CountingProxy forwards plain HTTP to the registry at target ("host:port")
// and counts the requests it forwards, so a test can say how many requests
// reached the registry (a ping, a HEAD, a GET). addr is "127.0.0.1:PORT";
// count returns the requests so far; stop closes everything.
func CountingProxy(target string) (addr string, count func() int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	var mu sync.Mutex
	n := 0
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			n++
			mu.Unlock()
			rp.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	count = func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	return ln.Addr().String(), count, func() { srv.Close() }, nil
}

// MeteredProxy is LatencyProxy that also counts the requests it forwards by
// method, so a benchmark can check what a run cost the registry (no HEAD at
// all, say) besides how long it took.
func MeteredProxy(target string, delay time.Duration) (addr string, counts func() map[string]int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	var mu sync.Mutex
	by := map[string]int{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			by[r.Method]++
			mu.Unlock()
			time.Sleep(delay)
			rp.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	counts = func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]int, len(by))
		for k, v := range by {
			out[k] = v
		}
		return out
	}
	return ln.Addr().String(), counts, func() { srv.Close() }, nil
}
