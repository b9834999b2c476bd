package e2e_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// fromAddress is an HTTP client whose connections leave from the loopback
// address ip (Linux routes all of 127.0.0.0/8 to lo), so that a proxy in
// front of the service sees distinct clients.
func fromAddress(ip string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// TestLockOutBehindAReverseProxy runs the binary behind Go's reverse proxy
// (httputil.ReverseProxy, which appends the address it was reached from to
// X-Forwarded-For) with --trusted-proxies naming the proxy: 20 wrong hook
// tokens from one client, each with a different forged X-Forwarded-For,
// lock that client out of the registry hook (429 with the right token) and
// leave another client's right token working (202).
func TestLockOutBehindAReverseProxy(t *testing.T) {
	const token = "right-hook-token"
	srv := testenv.Serve(t, testenv.Binary(t), "--hook-token", token, "--trusted-proxies", "127.0.0.1/32")
	backend, err := url.Parse(srv)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(backend))
	t.Cleanup(proxy.Close)

	hook := func(c *http.Client, tok, forged string) int {
		t.Helper()
		r, err := http.NewRequest("POST", proxy.URL+"/hooks/registry", strings.NewReader(`{"events":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		if forged != "" {
			r.Header.Set("X-Forwarded-For", forged)
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	attacker, other := fromAddress("127.0.0.5"), fromAddress("127.0.0.6")
	for i := range 20 {
		if code := hook(attacker, fmt.Sprintf("wrong-%d", i), fmt.Sprintf("198.51.100.%d", i+1)); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i+1, code)
		}
	}
	if code := hook(attacker, token, "198.51.100.99"); code != http.StatusTooManyRequests {
		t.Errorf("the right token from the client that sent 20 wrong ones: %d, want 429", code)
	}
	if code := hook(other, token, ""); code != http.StatusAccepted {
		t.Errorf("the right token from another client behind the same proxy: %d, want 202", code)
	}
}
