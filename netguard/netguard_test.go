package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// errSafetyNet is returned by loopbackOnly when the guard under test let a
// non-loopback address through. It is deliberately not an *Error, so a test
// that expected the guard to refuse fails instead of sending traffic.
var errSafetyNet = errors.New("test safety net: refusing to dial a non-loopback address the guard permitted")

// loopbackOnly adds a second Control after the guard's own, so that a broken
// guard can never make these tests send packets anywhere but loopback: this
// machine has no route out, and tests must not try.
func loopbackOnly(d *net.Dialer) *net.Dialer {
	guard := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := guard(network, address, c); err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			return errSafetyNet
		}
		return nil
	}
	return d
}

// safeTransport is g.Transport() with the loopback-only safety net on its
// dialer, for tests that ask for a non-loopback address.
func safeTransport(g *Guard) *http.Transport {
	tr := g.Transport()
	tr.DialContext = loopbackOnly(g.Dialer()).DialContext
	return tr
}

// watchedListener records every connection a listener accepts, to prove that
// refused dials never reached it.
type watchedListener struct {
	ln    net.Listener
	conns chan net.Conn
}

func watch(t *testing.T, network, address string) (*watchedListener, error) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	w := &watchedListener{ln: ln, conns: make(chan net.Conn, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case w.conns <- c:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(w.conns)
		for c := range w.conns {
			c.Close()
		}
	})
	return w, nil
}

// assertUntouched proves nothing connected to the listener: it connects a
// sentinel itself and checks that the sentinel is the first connection
// accepted. Connections are accepted in arrival order, so an earlier,
// unguarded connection would come out first.
func (w *watchedListener) assertUntouched(t *testing.T) {
	t.Helper()
	sentinel, err := net.Dial(w.ln.Addr().Network(), w.ln.Addr().String())
	if err != nil {
		t.Fatalf("sentinel dial to %s: %v", w.ln.Addr(), err)
	}
	defer sentinel.Close()
	select {
	case got := <-w.conns:
		defer got.Close()
		if got.RemoteAddr().String() != sentinel.LocalAddr().String() {
			t.Errorf("listener %s accepted a connection from %s before the sentinel", w.ln.Addr(), got.RemoteAddr())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("listener %s did not accept the sentinel", w.ln.Addr())
	}
}

// assertRefused checks that err carries an *Error, found through wrapping
// both as the concrete type and as the Forbidden interface other packages
// use, and returns it.
func assertRefused(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want a refusal")
	}
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("error %v (%T) does not wrap *netguard.Error", err, err)
	}
	var f interface{ Forbidden() bool }
	if !errors.As(err, &f) || !f.Forbidden() {
		t.Errorf("error %v is not found as Forbidden() == true", err)
	}
	if ge.Reason == "" {
		t.Errorf("refusal %v has no reason", ge)
	}
	return ge
}

func TestDialRefusesForbiddenAddresses(t *testing.T) {
	v4, err := watch(t, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(v4.ln.Addr().(*net.TCPAddr).Port)
	// Also watch ::1 on the same port where the machine has IPv6 loopback,
	// so that the IPv6 loopback case is proved not to connect too.
	v6, err := watch(t, "tcp6", net.JoinHostPort("::1", port))
	if err != nil {
		t.Logf("no IPv6 loopback listener (%v); [::1] is checked for the refusal only", err)
	}

	tests := []struct {
		name string
		host string
	}{
		{"IPv4 loopback", "127.0.0.1"},
		{"RFC 1918 10/8", "10.0.0.1"},
		{"RFC 1918 172.16/12", "172.16.0.1"},
		{"RFC 1918 192.168/16", "192.168.1.1"},
		{"CGNAT 100.64/10", "100.64.0.1"},
		{"cloud metadata IPv4", "169.254.169.254"},
		{"IPv6 loopback", "::1"},
		{"IPv6 unique local", "fc00::1"},
		{"cloud metadata IPv6", "fd00:ec2::254"},
		{"IPv6 link-local", "fe80::1"},
		{"IPv4-mapped metadata", "::ffff:169.254.169.254"},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1"},
		{"localhost by name", "localhost"},
	}
	g := New(false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			d := loopbackOnly(g.Dialer())
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(tt.host, port))
			if err == nil {
				conn.Close()
				t.Fatalf("dial %s succeeded, want a refusal", tt.host)
			}
			assertRefused(t, err)
		})
	}

	v4.assertUntouched(t)
	if v6 != nil {
		v6.assertUntouched(t)
	}
}

func TestDialRefusesOtherNetworks(t *testing.T) {
	// Both dials are to local endpoints only: a UDP "connect" sends nothing,
	// and the unix socket path does not exist.
	tests := []struct {
		name    string
		network string
		address string
	}{
		{"udp", "udp", "127.0.0.1:53"},
		{"udp4", "udp4", "127.0.0.1:53"},
		{"unix", "unix", filepath.Join(t.TempDir(), "sock")},
	}
	g := New(true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := g.Dialer().DialContext(t.Context(), tt.network, tt.address)
			if err == nil {
				conn.Close()
				t.Fatalf("dial %s %s succeeded, want a refusal", tt.network, tt.address)
			}
			ge := assertRefused(t, err)
			if !strings.Contains(ge.Reason, "network") {
				t.Errorf("reason %q does not name the network as the cause", ge.Reason)
			}
		})
	}
}

func TestAllowPrivate(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	t.Run("loopback permitted", func(t *testing.T) {
		tr := New(true).Transport()
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("GET %s: %v", srv.URL, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Errorf("GET %s = %d %q, want 200 \"ok\"", srv.URL, resp.StatusCode, body)
		}
	})

	tests := []struct {
		name string
		host string
		want netip.Addr // the refused address, compared unmapped
	}{
		{"cloud metadata IPv4", "169.254.169.254", netip.MustParseAddr("169.254.169.254")},
		{"IPv6 link-local", "[fe80::1]", netip.MustParseAddr("fe80::1")},
		{"IPv4-mapped metadata", "[::ffff:169.254.169.254]", netip.MustParseAddr("169.254.169.254")},
		{"cloud metadata IPv6", "[fd00:ec2::254]", netip.MustParseAddr("fd00:ec2::254")},
	}
	for _, tt := range tests {
		t.Run(tt.name+" still refused", func(t *testing.T) {
			client := &http.Client{Transport: safeTransport(New(true))}
			target := fmt.Sprintf("http://%s:%d/", tt.host, port)
			resp, err := client.Get(target)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s succeeded, want a refusal", target)
			}
			ge := assertRefused(t, err)
			if got := ge.Addr.WithZone("").Unmap(); got != tt.want {
				t.Errorf("refused address = %v, want %v", ge.Addr, tt.want)
			}
		})
	}

	if got := hits.Load(); got != 1 {
		t.Errorf("server saw %d requests, want 1 (the permitted one)", got)
	}
}

// TestTransportUsesGuard proves the Transport's own dialer is guarded, with a
// loopback target so that even a failure would send nothing off the host.
func TestTransportUsesGuard(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer srv.Close()

	tr := New(false).Transport()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s succeeded with allowPrivate=false, want a refusal", srv.URL)
	}
	ge := assertRefused(t, err)
	if want := netip.MustParseAddr("127.0.0.1"); ge.Addr != want {
		t.Errorf("refused address = %v, want %v", ge.Addr, want)
	}
	if got := hits.Load(); got != 0 {
		t.Errorf("server saw %d requests, want 0", got)
	}
}

func TestRedirectHopRefused(t *testing.T) {
	const metadataURL = "http://169.254.169.254/latest/meta-data/"
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, metadataURL, http.StatusFound)
	}))
	defer srv.Close()

	tr := safeTransport(New(true))
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s followed the redirect to %s, want a refusal", srv.URL, metadataURL)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) is not a *url.Error", err, err)
	}
	if ue.URL != metadataURL {
		t.Errorf("failing URL = %q, want the redirect target %q", ue.URL, metadataURL)
	}
	ge := assertRefused(t, err)
	if want := netip.MustParseAddr("169.254.169.254"); ge.Addr != want {
		t.Errorf("refused address = %v, want %v", ge.Addr, want)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("server saw %d requests, want 1 (the first hop)", got)
	}
}

// TestCheck judges addresses without dialling anything, so it can cover
// public addresses that the tests must never contact.
func TestCheck(t *testing.T) {
	const (
		ok     = ""
		linkLL = reasonLinkLocal
		priv   = reasonPrivate
		unspec = reasonUnspecified
		multi  = reasonMulticast
		spec   = "special-purpose range"
		notGUA = "global unicast"
	)
	tests := []struct {
		addr string
		// want is the substring expected in the reason, or ok when the
		// address is permitted; one entry per allowPrivate setting.
		wantStrict, wantPrivate string
	}{
		// Public addresses are permitted either way.
		{"8.8.8.8", ok, ok},
		{"1.1.1.1", ok, ok},
		{"2606:4700::1111", ok, ok},
		{"2001:4860:4860::8888", ok, ok},
		{"::ffff:8.8.8.8", ok, ok},

		// Private ranges follow allowPrivate.
		{"127.0.0.1", priv, ok},
		{"127.255.255.254", priv, ok},
		{"::1", priv, ok},
		{"10.1.2.3", priv, ok},
		{"172.16.0.1", priv, ok},
		{"172.31.255.255", priv, ok},
		{"192.168.0.1", priv, ok},
		{"100.64.0.1", priv, ok},
		{"100.127.255.255", priv, ok},
		{"fc00::1", priv, ok},
		{"fd12:3456::1", priv, ok},
		{"::ffff:10.0.0.1", priv, ok},
		{"::ffff:127.0.0.1", priv, ok},

		// Just outside the private ranges.
		{"172.32.0.1", ok, ok},
		{"100.128.0.1", ok, ok},
		{"11.0.0.1", ok, ok},

		// Link-local and cloud metadata are refused whatever allowPrivate says.
		{"169.254.169.254", linkLL, linkLL},
		{"169.254.0.1", linkLL, linkLL},
		{"169.254.170.2", linkLL, linkLL},
		{"::ffff:169.254.169.254", linkLL, linkLL},
		{"fe80::1", linkLL, linkLL},
		{"fe80::1%eth0", linkLL, linkLL},
		{"febf::1", linkLL, linkLL},
		{"fd00:ec2::254", linkLL, linkLL},
		{"100.100.100.200", linkLL, linkLL},

		// Unspecified, multicast and broadcast are refused whatever allowPrivate says.
		{"0.0.0.0", unspec, unspec},
		{"0.1.2.3", unspec, unspec},
		{"::", unspec, unspec},
		{"::ffff:0.0.0.0", unspec, unspec},
		{"224.0.0.1", multi, multi},
		{"239.255.255.250", multi, multi},
		{"ff02::1", multi, multi},
		{"ff05::1:3", multi, multi},
		{"255.255.255.255", multi, multi},

		// Other special-purpose ranges from the IANA tables stay refused.
		{"192.0.2.1", spec, spec},
		{"198.51.100.1", spec, spec},
		{"203.0.113.1", spec, spec},
		{"198.18.0.1", spec, spec},
		{"192.0.0.192", spec, spec},
		{"240.0.0.1", spec, spec},
		{"2001:db8::1", spec, spec},
		{"2002:a9fe:a9fe::1", spec, spec}, // 6to4 wrapping of 169.254.169.254
		{"2001::1", spec, spec},           // Teredo
		{"3fff::1", spec, spec},
		{"64:ff9b::a9fe:a9fe", notGUA, notGUA}, // NAT64 wrapping of 169.254.169.254
		{"::a9fe:a9fe", notGUA, notGUA},        // IPv4-compatible form
		{"::2", notGUA, notGUA},
		{"100::1", notGUA, notGUA},
	}
	strict, private := New(false), New(true)
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.addr)
		for _, c := range []struct {
			name string
			g    *Guard
			want string
		}{
			{"strict", strict, tt.wantStrict},
			{"allowPrivate", private, tt.wantPrivate},
		} {
			t.Run(tt.addr+"/"+c.name, func(t *testing.T) {
				err := c.g.Check(ip)
				if c.want == ok {
					if err != nil {
						t.Fatalf("Check(%s) = %v, want permitted", ip, err)
					}
					return
				}
				ge := assertRefused(t, err)
				if ge.Addr != ip {
					t.Errorf("Error.Addr = %v, want %v", ge.Addr, ip)
				}
				if !strings.Contains(ge.Reason, c.want) {
					t.Errorf("reason %q does not contain %q", ge.Reason, c.want)
				}
			})
		}
	}

	t.Run("invalid address", func(t *testing.T) {
		assertRefused(t, New(true).Check(netip.Addr{}))
	})
}

func TestControl(t *testing.T) {
	tests := []struct {
		network, address string
		refused          bool
	}{
		{"tcp4", "127.0.0.1:5000", false},
		{"tcp6", "[::1]:1", false},
		{"tcp4", "8.8.8.8:443", false},
		{"tcp4", "169.254.169.254:80", true},
		{"tcp6", "[fe80::1%lo]:80", true},
		{"tcp", "127.0.0.1:80", true},
		{"udp4", "127.0.0.1:53", true},
		{"unix", "/run/x.sock", true},
		{"tcp4", "not-an-address", true},
	}
	g := New(true)
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			err := g.Control(tt.network, tt.address, nil)
			if !tt.refused {
				if err != nil {
					t.Fatalf("Control = %v, want permitted", err)
				}
				return
			}
			assertRefused(t, err)
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := New(true).Check(netip.MustParseAddr("169.254.169.254"))
	want := "netguard: address 169.254.169.254 is refused: link-local and cloud metadata addresses are never dialled"
	if err == nil || err.Error() != want {
		t.Errorf("Check(169.254.169.254) = %v, want %q", err, want)
	}
	wrapped := fmt.Errorf("registry: get manifest: %w", err)
	var f interface{ Forbidden() bool }
	if !errors.As(wrapped, &f) || !f.Forbidden() {
		t.Errorf("Forbidden() not found through wrapping in %v", wrapped)
	}
}

func TestDialerAndTransportSettings(t *testing.T) {
	g := New(false)
	d := g.Dialer()
	if d.Timeout != 10*time.Second || d.KeepAlive != 30*time.Second || d.Control == nil {
		t.Errorf("Dialer() = timeout %v, keepalive %v, control set %v; want 10s, 30s, true",
			d.Timeout, d.KeepAlive, d.Control != nil)
	}
	if g.Dialer() == d {
		t.Error("Dialer() returned the same *net.Dialer twice, want a new one per call")
	}

	tr := g.Transport()
	if tr.Proxy != nil {
		t.Error("Transport().Proxy is set; an environment proxy would bypass the address check")
	}
	if tr.DialContext == nil {
		t.Error("Transport().DialContext is nil")
	}
	//lint:ignore SA1019 the deprecated hooks are checked because setting one would bypass DialContext
	if tr.DialTLSContext != nil || tr.Dial != nil || tr.DialTLS != nil {
		t.Error("Transport() sets another dial hook that would bypass DialContext")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"TLSHandshakeTimeout", tr.TLSHandshakeTimeout, 10 * time.Second},
		{"ResponseHeaderTimeout", tr.ResponseHeaderTimeout, time.Duration(0)},
		{"IdleConnTimeout", tr.IdleConnTimeout, 90 * time.Second},
		{"MaxIdleConnsPerHost", tr.MaxIdleConnsPerHost, 16},
		{"ForceAttemptHTTP2", tr.ForceAttemptHTTP2, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("Transport().%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if g.Transport() == tr {
		t.Error("Transport() returned the same *http.Transport twice, want a new one per call")
	}
}
