package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The client address: what every rate limit (refreshes, wrong tokens,
// subscription creation, contents analyses) and the request log are keyed
// by. Behind a reverse proxy the TCP peer is the proxy, the same for every
// client, so a limit keyed by it is one limit for everyone; the proxies
// named by Options.TrustedProxies say who their client was, in Forwarded
// (RFC 7239) or X-Forwarded-For, and this file alone reads them.
//
// The rule, for a request whose TCP peer is in a trusted network:
//   - The hops of a header are walked from the right, the peer's own
//     entry first. Each trusted proxy appends the address it was reached
//     from, so the right-most hop that is not itself in a trusted network
//     is the client as the outermost trusted proxy saw it; whatever a
//     client wrote further left (to spoof) is never reached.
//   - A hop that is not an address (Forwarded's "unknown" or an
//     obfuscated "_name", an element without for=, garbage) ends the walk,
//     as do the hops running out: the client is then the last address the
//     walk could vouch for, the trusted hop beside it (the peer itself when
//     the right-most hop is unreadable). Nothing a client wrote ever
//     becomes a key, so no two clients share one by sending the same
//     garbage.
//   - Forwarded is read when it is there, X-Forwarded-For otherwise. When
//     a request carries both and they name different clients, one of them
//     passed through a proxy that writes only the other, from whoever sent
//     it: the peer is then the client, so that a client cannot pick its key
//     by adding the header its proxy does not write.
//
// From any other peer both headers are ignored and the peer is the client.

// clientKey is the request context key of the resolved client address.
type clientKey struct{}

// maxHops bounds the hops of one header walked: past this many trusted
// proxies in a row, the last one reached is the client.
const maxHops = 32

// ParseTrustedProxies reads the trusted networks of Options.TrustedProxies
// (--trusted-proxies): comma-separated CIDRs, a plain address standing for
// itself alone (/32 or /128). An entry that is neither is an error naming
// it, so a typo is refused at start rather than leaving every client
// behind the proxy one client.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if p, err := netip.ParsePrefix(entry); err == nil {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8, fd00::/8) nor an IP address", entry)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// unmappedBits is p's prefix length once an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) is written as the IPv4 one (10.0.0.0/8), since
// addresses are compared unmapped.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// withClient returns r carrying its resolved client address, when proxies
// are trusted; otherwise r itself, and clientAddr reads the peer, which
// spares every request an allocation when no proxy is configured.
func (s *Server) withClient(r *http.Request) *http.Request {
	if len(s.trustedProxies) == 0 {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), clientKey{}, resolveClient(r, s.trustedProxies)))
}

// clientAddr is the address rate limits and the request log are keyed by
// (see the rule above): the one the server resolved for r, else r's TCP
// peer.
func clientAddr(r *http.Request) string {
	if c, ok := r.Context().Value(clientKey{}).(string); ok {
		return c
	}
	return peerAddr(r)
}

// peerAddr is r's TCP peer without its port; RemoteAddr as it is when it
// is not host:port.
func peerAddr(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("").String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// resolveClient applies the rule above to r with the trusted networks.
func resolveClient(r *http.Request, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return peerAddr(r)
	}
	peer := ap.Addr().Unmap().WithZone("")
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	fwd, xff := r.Header.Values("Forwarded"), r.Header.Values("X-Forwarded-For")
	switch {
	case len(fwd) > 0 && len(xff) > 0:
		a, b := walk(peer, forwardedHops(fwd), trusted), walk(peer, xffHops(xff), trusted)
		if a != b {
			return peer.String()
		}
		return a.String()
	case len(fwd) > 0:
		return walk(peer, forwardedHops(fwd), trusted).String()
	case len(xff) > 0:
		return walk(peer, xffHops(xff), trusted).String()
	}
	return peer.String()
}

// walk goes through hops from the right (the last is the peer's entry),
// starting from the trusted peer, and returns the first untrusted address,
// or the last trusted one when a hop does not parse or the hops run out.
func walk(peer netip.Addr, hops []string, trusted []netip.Prefix) netip.Addr {
	last := peer
	for i, n := len(hops)-1, 0; i >= 0 && n < maxHops; i, n = i-1, n+1 {
		a, ok := hopAddr(hops[i])
		if !ok {
			return last
		}
		if !isTrusted(a, trusted) {
			return a
		}
		last = a
	}
	return last
}

// hopAddr reads one hop: an IPv4 or IPv6 address, with or without a port,
// IPv6 with or without brackets; a zone is dropped and an IPv4-mapped
// address unmapped. Anything else (unknown, _obfuscated, a name) is not a
// hop's address.
func hopAddr(h string) (netip.Addr, bool) {
	h = strings.TrimSpace(h)
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(h); err == nil {
		a = ap.Addr()
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err = netip.ParseAddr(h[1 : len(h)-1]); err != nil {
			return netip.Addr{}, false
		}
	} else if a, err = netip.ParseAddr(h); err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// isTrusted reports whether a is in one of the trusted networks.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// xffHops are the comma-separated entries of X-Forwarded-For's lines, in
// order (several lines are one list, as RFC 9110 combines them).
func xffHops(lines []string) []string {
	var hops []string
	for _, l := range lines {
		hops = append(hops, strings.Split(l, ",")...)
	}
	return hops
}

// forwardedHops are the for= values of Forwarded's elements, in order, with
// quoting removed (RFC 7239: elements separated by commas, pairs by
// semicolons, a value a token or a quoted string). An element without a
// for= pair, or one that does not parse, is an empty hop, which no address
// reads from.
func forwardedHops(lines []string) []string {
	var hops []string
	for _, l := range lines {
		for len(l) > 0 {
			var elem string
			elem, l = cutQuoted(l, ',')
			hops = append(hops, forValue(elem))
		}
	}
	return hops
}

// cutQuoted splits off s's first sep-separated part (elements are
// separated by commas, their pairs by semicolons), a sep inside a quoted
// string not ending it.
func cutQuoted(s string, sep byte) (part, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// forValue is the value of elem's for= pair, unquoted; "" when there is
// none or the element does not parse.
func forValue(elem string) string {
	found := ""
	for rest := elem; strings.TrimSpace(rest) != ""; {
		var pair string
		pair, rest = cutQuoted(rest, ';')
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return ""
		}
		v, ok := unquote(value)
		if !ok {
			return ""
		}
		if strings.EqualFold(name, "for") {
			if found != "" {
				return "" // two for= in one element: which is meant is unknown
			}
			found = v
		}
	}
	return found
}

// unquote is a Forwarded value as a string: a token as it is, a quoted
// string without its quotes and escapes; ok is false for an unterminated
// quote or an empty value.
func unquote(v string) (string, bool) {
	if v == "" {
		return "", false
	}
	if v[0] != '"' {
		return v, !strings.ContainsAny(v, "\" \t")
	}
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v)-1 {
			i++
			c = v[i]
		} else if c == '"' || c == '\\' {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}
