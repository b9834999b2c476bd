// Package netguard refuses forbidden destination addresses at connect time,
// so that a registry or webhook URL supplied by a user cannot make
// imagebadger reach cloud metadata services, link-local hosts or, unless the
// operator allows it, loopback and private networks.
//
// The check runs in [net.Dialer.Control], after DNS resolution and for every
// connection the dialer opens. Checking there rather than on the URL means a
// hostname whose DNS answer points inward, a DNS answer that changes between
// a check and the connect (DNS rebinding), and every hop of an HTTP redirect
// chain are all judged on the address actually about to be dialled.
//
// The special-purpose ranges come from the IANA registries as tabulated by
// code.dny.dev/ssrf; this package adds the rules that hold whatever the
// operator configures (link-local, cloud metadata, unspecified, multicast and
// broadcast) and the private ranges an operator may choose to permit.
package netguard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// Reasons given in an [Error]. They are written for a person reading a log
// line or an API error message, and never name internal detail.
const (
	reasonLinkLocal   = "link-local and cloud metadata addresses are never dialled"
	reasonUnspecified = "unspecified and \"this network\" addresses are never dialled"
	reasonMulticast   = "multicast and broadcast addresses are never dialled"
	reasonPrivate     = "loopback and private addresses are not allowed by configuration"
	reasonInvalid     = "it is not a valid IP address"
)

// rule pairs prefixes with the reason they are refused, so that the message
// explains which policy a refused address ran into.
type rule struct {
	prefixes []netip.Prefix
	reason   string
}

// Guard decides which resolved addresses may be dialled. One Guard serves
// one kind of traffic (registries or webhooks), because the operator allows
// private destinations separately for each. A Guard holds no mutable state
// and is safe for concurrent use.
type Guard struct {
	allowPrivate bool
	// never is checked first and wins over everything else, so that no
	// setting can open the way to metadata services.
	never []rule
	// private is what allowPrivate opens up.
	private []netip.Prefix
}

// New returns a Guard. allowPrivate permits loopback, RFC1918, CGNAT
// 100.64/10, unique-local fc00::/7 and similar private special-purpose
// ranges, for operators whose registries or webhook receivers live on their
// own network; link-local and cloud metadata are refused whatever
// allowPrivate says, because reaching them from a server turns a URL field
// into a credential leak.
func New(allowPrivate bool) *Guard {
	p := netip.MustParsePrefix
	return &Guard{
		allowPrivate: allowPrivate,
		never: []rule{
			{reason: reasonLinkLocal, prefixes: []netip.Prefix{
				p("169.254.0.0/16"),     // IPv4 link-local; AWS, GCP, Azure, OCI and others serve metadata on 169.254.169.254
				p("fe80::/10"),          // IPv6 link-local
				p("fd00:ec2::254/128"),  // AWS instance metadata over IPv6 (inside fc00::/7, hence listed here)
				p("100.100.100.200/32"), // Alibaba Cloud instance metadata (inside 100.64.0.0/10, hence listed here)
			}},
			{reason: reasonUnspecified, prefixes: []netip.Prefix{
				p("0.0.0.0/8"), // dialling 0.0.0.0 reaches the local host on Linux
				p("::/128"),
			}},
			{reason: reasonMulticast, prefixes: []netip.Prefix{
				p("224.0.0.0/4"),
				p("ff00::/8"),
				p("255.255.255.255/32"),
			}},
		},
		private: []netip.Prefix{
			p("127.0.0.0/8"),    // loopback
			p("::1/128"),        // loopback
			p("10.0.0.0/8"),     // RFC 1918
			p("172.16.0.0/12"),  // RFC 1918
			p("192.168.0.0/16"), // RFC 1918
			p("100.64.0.0/10"),  // shared address space (CGNAT, RFC 6598)
			p("fc00::/7"),       // unique local (RFC 4193)
		},
	}
}

// Control is suitable for net.Dialer.Control: the dialer calls it with the
// resolved address after the socket is created and before it connects, so a
// refusal here means no packet is sent. Only tcp4 and tcp6 are accepted,
// since registry and webhook traffic is HTTP and any other network would be
// a way around the address rules; any port is accepted, since registries
// commonly listen on ports such as 5000.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		e := &Error{Reason: fmt.Sprintf("network %q is not permitted, only tcp4 and tcp6 are", network)}
		if ap, err := netip.ParseAddrPort(address); err == nil {
			e.Addr = ap.Addr()
		}
		return e
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &Error{Reason: fmt.Sprintf("address %q cannot be parsed as IP and port", address)}
	}
	return g.Check(ap.Addr())
}

// Check reports whether ip may be dialled (nil) or the *Error refusing it.
// It is exported so that callers can reject a literal address early, with a
// clear message, before any request is built; the dial-time check still
// applies whatever they do. IPv4-mapped IPv6 addresses are judged as the IPv4
// address they carry, and an IPv6 zone is ignored, so neither spelling can
// dodge a rule.
func (g *Guard) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return &Error{Addr: ip, Reason: reasonInvalid}
	}
	// netip.Prefix.Contains is false for any address with a zone and for
	// mapped addresses against IPv4 prefixes, so normalise first.
	a := ip.WithZone("").Unmap()

	for _, r := range g.never {
		if containsAny(r.prefixes, a) {
			return &Error{Addr: ip, Reason: r.reason}
		}
	}
	if containsAny(g.private, a) {
		if g.allowPrivate {
			return nil
		}
		return &Error{Addr: ip, Reason: reasonPrivate}
	}
	if a.Is4() {
		for _, pfx := range ssrf.IPv4DeniedPrefixes {
			if pfx.Contains(a) {
				return &Error{Addr: ip, Reason: fmt.Sprintf("it is in the special-purpose range %s, which is not publicly routable", pfx)}
			}
		}
		return nil
	}
	if !ssrf.IPv6GlobalUnicast.Contains(a) {
		return &Error{Addr: ip, Reason: fmt.Sprintf("it is outside the IPv6 global unicast range %s", ssrf.IPv6GlobalUnicast)}
	}
	for _, pfx := range ssrf.IPv6DeniedPrefixes {
		if pfx.Contains(a) {
			return &Error{Addr: ip, Reason: fmt.Sprintf("it is in the special-purpose range %s, which is not publicly routable", pfx)}
		}
	}
	return nil
}

// containsAny reports whether a falls in one of prefixes.
func containsAny(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, pfx := range prefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Dialer returns a *net.Dialer (timeout 10s, keepalive 30s) with Control set,
// for callers that need raw connections; each call returns a new Dialer so
// callers may adjust it without affecting others. The timeout bounds a
// connect that would otherwise hang on an unreachable host even when the
// caller's context has a generous deadline.
func (g *Guard) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   g.Control,
	}
}

// Transport returns a new *http.Transport for registry or webhook clients.
// Proxy is nil: an environment proxy would make the dialer connect to the
// proxy rather than the target, and the target address would never be
// checked. Every connection, including those for redirect hops, goes through
// Dialer, so each is judged on its resolved address. ResponseHeaderTimeout is
// left at zero because callers set deadlines per request by context; the
// other values are those of http.DefaultTransport, with more idle
// connections per host because registry reads come in bursts to one host.
func (g *Guard) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           g.Dialer().DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
}

// Error is returned (wrapped in the dial error) when an address is refused.
// It carries the address and a reason a person can act on, so that the
// server can tell a user why a registry or webhook URL was not contacted.
// Addr is the zero netip.Addr when the dial was refused before an address
// could be read, such as for a unix socket.
type Error struct {
	Addr   netip.Addr
	Reason string
}

// Error describes the refusal in one line, naming the address so that log
// readers can see which hop of a redirect chain or which DNS answer was
// refused.
func (e *Error) Error() string {
	if !e.Addr.IsValid() {
		return "netguard: dial is refused: " + e.Reason
	}
	return fmt.Sprintf("netguard: address %s is refused: %s", e.Addr, e.Reason)
}

// Address is the refused address (the zero Addr when none could be read).
func (e *Error) Address() netip.Addr { return e.Addr }

// Private reports whether the address was refused only because loopback
// and private addresses are not allowed by configuration, so that a
// message can name the setting that would allow it.
func (e *Error) Private() bool { return e.Reason == reasonPrivate }

// Forbidden always reports true. It lets callers in other packages detect a
// refusal with errors.As(err, &interface{ Forbidden() bool }) and map it to
// their "forbidden" error kind without importing this package.
func (e *Error) Forbidden() bool { return true }
