package distreg

import (
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
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

// MeteredProxy is LatencyProxy that also counts the requests it forwards
// by key(request) (by method when key is nil; a request whose key is ""
// is not counted), so a benchmark or test can check what a run cost the
// registry (no HEAD at all, say, or how often each tag was checked with
// ManifestTag) besides how long it took. counts returns a copy of the
// counts so far.
func MeteredProxy(target string, delay time.Duration, key func(*http.Request) string) (addr string, counts func() map[string]int, stop func(), err error) {
	if key == nil {
		key = func(r *http.Request) string { return r.Method }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	var mu sync.Mutex
	by := map[string]int{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k := key(r); k != "" {
				mu.Lock()
				by[k]++
				mu.Unlock()
			}
			time.Sleep(delay)
			rp.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	counts = func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(by)
	}
	return ln.Addr().String(), counts, func() { srv.Close() }, nil
}

// manifestByTag matches the path of a manifest request by tag.
var manifestByTag = regexp.MustCompile(`^/v2/(.+)/manifests/([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$`)

// ManifestTag is a MeteredProxy key: "repository:tag" for a manifest
// request by tag (HEAD or GET, a check of the tag), "" for anything else.
func ManifestTag(r *http.Request) string {
	if m := manifestByTag.FindStringSubmatch(r.URL.Path); m != nil {
		return m[1] + ":" + m[2]
	}
	return ""
}
