package server

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// TestResolveClient holds the client address rule to hand-written cases:
// which peer is believed, which hop is the client, and that nothing a
// client writes becomes its key.
func TestResolveClient(t *testing.T) {
	trusted, err := ParseTrustedProxies("127.0.0.1, 10.0.0.0/8, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		peer string
		fwd  []string
		xff  []string
		want string
	}{
		{name: "untrusted peer: headers ignored", peer: "198.51.100.7:4000", xff: []string{"203.0.113.5"}, fwd: []string{"for=203.0.113.9"}, want: "198.51.100.7"},
		{name: "untrusted IPv6 peer", peer: "[2001:db8::7]:4000", xff: []string{"203.0.113.5"}, want: "2001:db8::7"},
		{name: "trusted peer without headers", peer: "127.0.0.1:5000", want: "127.0.0.1"},
		{name: "trusted peer, XFF of one hop", peer: "127.0.0.1:5000", xff: []string{"203.0.113.5"}, want: "203.0.113.5"},
		{name: "spoofed left entries are not reached", peer: "127.0.0.1:5000", xff: []string{"1.1.1.1, 8.8.8.8, 203.0.113.5"}, want: "203.0.113.5"},
		{name: "chain of trusted proxies", peer: "127.0.0.1:5000", xff: []string{"9.9.9.9, 203.0.113.5, 10.1.2.3, 10.0.0.9"}, want: "203.0.113.5"},
		{name: "several XFF lines are one list", peer: "127.0.0.1:5000", xff: []string{"9.9.9.9, 203.0.113.5", "10.0.0.9"}, want: "203.0.113.5"},
		{name: "XFF with a port", peer: "127.0.0.1:5000", xff: []string{"203.0.113.5:6001"}, want: "203.0.113.5"},
		{name: "XFF IPv6 bracketed with a port", peer: "127.0.0.1:5000", xff: []string{"[2001:db8::1]:443"}, want: "2001:db8::1"},
		{name: "XFF IPv6 bare", peer: "127.0.0.1:5000", xff: []string{"2001:db8::1"}, want: "2001:db8::1"},
		{name: "XFF IPv4-mapped is unmapped", peer: "127.0.0.1:5000", xff: []string{"::ffff:203.0.113.5"}, want: "203.0.113.5"},
		{name: "IPv6 trusted proxy", peer: "[fd00::1]:5000", xff: []string{"203.0.113.5, fd00::2"}, want: "203.0.113.5"},
		{name: "IPv4-mapped trusted peer", peer: "[::ffff:127.0.0.1]:5000", xff: []string{"203.0.113.5"}, want: "203.0.113.5"},
		{name: "garbage right of the peer: the peer", peer: "127.0.0.1:5000", xff: []string{"203.0.113.5, not-an-ip"}, want: "127.0.0.1"},
		{name: "garbage beyond a trusted hop: that hop", peer: "127.0.0.1:5000", xff: []string{"203.0.113.5, unknown, 10.0.0.9"}, want: "10.0.0.9"},
		{name: "empty entry stops the walk", peer: "127.0.0.1:5000", xff: []string{"203.0.113.5,,"}, want: "127.0.0.1"},
		{name: "all hops trusted: the left-most", peer: "127.0.0.1:5000", xff: []string{"10.0.0.8, 10.0.0.9"}, want: "10.0.0.8"},
		{name: "Forwarded for=", peer: "127.0.0.1:5000", fwd: []string{"for=203.0.113.5;proto=https;by=127.0.0.1"}, want: "203.0.113.5"},
		{name: "Forwarded, spoofed left element", peer: "127.0.0.1:5000", fwd: []string{"for=1.1.1.1, for=203.0.113.5"}, want: "203.0.113.5"},
		{name: "Forwarded, quoted IPv6 with port", peer: "127.0.0.1:5000", fwd: []string{`for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded, quoted IPv6 without port", peer: "127.0.0.1:5000", fwd: []string{`For="[2001:db8:cafe::17]"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded, quoted IPv4 with port", peer: "127.0.0.1:5000", fwd: []string{`for="203.0.113.5:4711"`}, want: "203.0.113.5"},
		{name: "Forwarded, chain over lines", peer: "127.0.0.1:5000", fwd: []string{"for=9.9.9.9, for=203.0.113.5", `for="10.0.0.9";proto=http`}, want: "203.0.113.5"},
		{name: "Forwarded, a comma inside quotes", peer: "127.0.0.1:5000", fwd: []string{`for=203.0.113.5;ext="a,b", for=10.0.0.9`}, want: "203.0.113.5"},
		{name: "Forwarded unknown: the trusted hop", peer: "127.0.0.1:5000", fwd: []string{"for=203.0.113.5, for=unknown"}, want: "127.0.0.1"},
		{name: "Forwarded obfuscated", peer: "127.0.0.1:5000", fwd: []string{"for=_hidden"}, want: "127.0.0.1"},
		{name: "Forwarded element without for", peer: "127.0.0.1:5000", fwd: []string{"for=203.0.113.5, proto=https"}, want: "127.0.0.1"},
		{name: "Forwarded unterminated quote", peer: "127.0.0.1:5000", fwd: []string{`for="203.0.113.5`}, want: "127.0.0.1"},
		{name: "Forwarded garbage", peer: "127.0.0.1:5000", fwd: []string{";;=,=;"}, want: "127.0.0.1"},
		{name: "Forwarded two for= in one element", peer: "127.0.0.1:5000", fwd: []string{"for=203.0.113.5;for=203.0.113.6"}, want: "127.0.0.1"},
		{name: "both headers agreeing", peer: "127.0.0.1:5000", fwd: []string{"for=203.0.113.5"}, xff: []string{"203.0.113.5"}, want: "203.0.113.5"},
		{name: "both headers disagreeing: the peer", peer: "127.0.0.1:5000", fwd: []string{"for=198.51.100.1"}, xff: []string{"203.0.113.5"}, want: "127.0.0.1"},
		{name: "peer that is not host:port", peer: "@", xff: []string{"203.0.113.5"}, want: "@"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://imagebadger.test/", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.fwd {
				r.Header.Add("Forwarded", v)
			}
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := resolveClient(r, trusted); got != c.want {
				t.Errorf("client of peer %s, Forwarded %q, X-Forwarded-For %q: %s, want %s", c.peer, c.fwd, c.xff, got, c.want)
			}
		})
	}
}

// TestClientAddrWithoutTrustedProxies: with no proxy trusted the headers
// are never read; the peer is the client.
func TestClientAddrWithoutTrustedProxies(t *testing.T) {
	s := &Server{}
	r, _ := http.NewRequest("GET", "http://imagebadger.test/", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Forwarded-For", "203.0.113.5")
	r.Header.Set("Forwarded", "for=203.0.113.5")
	if got := clientAddr(s.withClient(r)); got != "127.0.0.1" {
		t.Errorf("client without trusted proxies: %s, want the peer 127.0.0.1", got)
	}
	s.trustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	if got := clientAddr(s.withClient(r)); got != "203.0.113.5" {
		t.Errorf("client with the peer trusted: %s, want 203.0.113.5", got)
	}
}

// TestParseTrustedProxies: CIDRs and plain addresses are taken (masked,
// IPv4-mapped written as IPv4); anything else is refused naming the entry.
func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.1.2.3/8, 127.0.0.1 ,fd00::/8,2001:db8::5,::ffff:192.168.0.0/112,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "127.0.0.1/32", "fd00::/8", "2001:db8::5/128", "192.168.0.0/16"}
	if len(got) != len(want) {
		t.Fatalf("parsed %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got[i], want[i])
		}
	}
	if got, err := ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v; want none and no error", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.internal", "10.0.0.0/8;", "fe80::1%eth0", "1.2.3"} {
		_, err := ParseTrustedProxies("127.0.0.1," + bad)
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("%q: error %v, want one naming the entry", bad, err)
		}
	}
}

// BenchmarkResolveClient: the address of a request through two trusted
// proxies, with a forged entry on the left, as every request behind
// --trusted-proxies resolves it once.
func BenchmarkResolveClient(b *testing.B) {
	trusted, err := ParseTrustedProxies("127.0.0.1,10.0.0.0/8")
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://imagebadger.test/", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Forwarded-For", "1.1.1.1, 203.0.113.5, 10.0.0.9")
	b.ReportAllocs()
	for b.Loop() {
		if resolveClient(r, trusted) != "203.0.113.5" {
			b.Fatal("wrong client")
		}
	}
}
