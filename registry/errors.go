package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imagebadger/imagebadger/analysis"
)

// errManifestTooLarge marks a registry answer over analysis.MaxManifestBytes.
var errManifestTooLarge = errors.New("manifest too large")

// refusal is implemented by netguard's refusal error; declared here so that
// the client does not depend on the dialer that enforces the policy.
type refusal interface {
	Forbidden() bool
	// Private is true when only the configuration refuses the address
	// (loopback and private networks), false when it is never dialled.
	Private() bool
	error
}

// AllowPrivateFlag is the setting that lets the service reach registries
// on loopback and private networks, named in the messages that refuse one.
const AllowPrivateFlag = "--allow-private-registries"

// refused says what the network policy refused on the way to registry, and
// how to allow it when configuration can.
func refused(registry string, f refusal, err error, realm bool) error {
	what := "the address of registry " + registry
	var ne interface{ Address() netip.Addr }
	switch {
	case realm && errors.As(f, &ne) && ne.Address().IsValid():
		what = "address " + ne.Address().String() + " of the token service that registry " + registry + " names"
	case realm:
		what = "the token service that registry " + registry + " names"
	case errors.As(f, &ne) && ne.Address().IsValid() && !isAddressOf(registry, ne.Address()):
		// Not the registry's own address: a DNS answer, a redirect or a
		// token realm led there.
		what = "address " + ne.Address().String() + ", which registry " + registry + " led to (by its DNS answer, a redirect or its token realm),"
	}
	if f.Private() {
		return analysis.Errorf(analysis.ErrForbidden, err, "%s is refused: it is on a loopback or private network, which this service reaches only when started with %s", what, AllowPrivateFlag)
	}
	return analysis.Errorf(analysis.ErrForbidden, err, "%s is refused: link-local, cloud metadata and other special addresses are never dialled", what)
}

// isAddressOf reports whether registry ("host[:port]") is written as addr.
func isAddressOf(registry string, addr netip.Addr) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = registry
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap() == addr.Unmap()
}

// classify turns an error from go-containerregistry or the network into one of
// analysis's kinds. what names the operation for the user ("manifest
// acme/app:1.0").
func classify(err error, registry, what string) error {
	if err == nil {
		return nil
	}
	var done *analysis.Error
	if errors.As(err, &done) {
		return err
	}
	// What is kept for logs never holds a credential or a token.
	err = scrubbed(err)
	var f refusal
	if errors.As(err, &f) && f.Forbidden() {
		var ue *url.Error
		return refused(registry, f, err, errors.As(err, &ue) && isRealmRequest(ue.URL))
	}
	// go-containerregistry refuses, before any dial, a token realm that is
	// a private or link-local IP literal on another host than the registry.
	if msg := err.Error(); strings.Contains(msg, "invalid realm in www-authenticate") {
		if strings.Contains(msg, "private or link-local") {
			return analysis.Errorf(analysis.ErrForbidden, err, "registry %s names a token service at an address refused by this service's network policy", registry)
		}
		return analysis.Errorf(analysis.ErrUpstream, err, "registry %s names a token service this service will not use (it must be https for a registry spoken to over https)", registry)
	}
	var fr *foreignRealmError
	if errors.As(err, &fr) {
		return analysis.Errorf(analysis.ErrUnauthorized, err, "registry %s sends its token requests to another site, %s; credentials go there only when the Docker config names that host", registry, fr.realm)
	}
	var be *budgetError
	if errors.As(err, &be) {
		e := analysis.Errorf(analysis.ErrRateLimited, err, "registry %s's rate-limit budget is low (%d of %d left); polling waits and leaves the rest to reads", registry, be.budget.Remaining, be.budget.Limit)
		e.RetryAfter = pollProbeEvery
		return e
	}
	// go-containerregistry refuses, before any dial, a redirect from a
	// registry to a private or link-local IP literal; it says so only in
	// text. The network policy refuses the rest at dial time (above).
	if strings.Contains(err.Error(), "SSRF protection") {
		return analysis.Errorf(analysis.ErrForbidden, err, "registry %s redirected to an address refused by this service's network policy", registry)
	}
	if errors.Is(err, errManifestTooLarge) {
		return analysis.Errorf(analysis.ErrUpstream, err, "registry %s sent a %s larger than the %d MiB limit", registry, what, analysis.MaxManifestBytes>>20)
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return analysis.Errorf(analysis.ErrTimeout, err, "registry %s did not answer in time for %s", registry, what)
	}
	var rl *rateLimitError
	if errors.As(err, &rl) {
		e := analysis.Errorf(analysis.ErrRateLimited, err, "registry %s is rate limiting this service; try again later", registry)
		e.RetryAfter = rl.retryAfter
		return e
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return analysis.Errorf(analysis.ErrNotFound, err, "%s not found on %s", what, registry)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return analysis.Errorf(analysis.ErrUnauthorized, err, "registry %s requires credentials for %s", registry, what)
			case transport.TooManyRequestsErrorCode:
				return analysis.Errorf(analysis.ErrRateLimited, err, "registry %s is rate limiting this service; try again later", registry)
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return analysis.Errorf(analysis.ErrNotFound, err, "%s not found on %s", what, registry)
		case http.StatusUnauthorized, http.StatusForbidden:
			return analysis.Errorf(analysis.ErrUnauthorized, err, "registry %s requires credentials for %s", registry, what)
		case http.StatusTooManyRequests:
			return analysis.Errorf(analysis.ErrRateLimited, err, "registry %s is rate limiting this service; try again later", registry)
		}
		return analysis.Errorf(analysis.ErrUpstream, err, "registry %s answered %d for %s", registry, te.StatusCode, what)
	}
	if why := unreachable(err, registry); why != "" {
		return analysis.Errorf(analysis.ErrUpstream, fmt.Errorf("%w: %w", analysis.ErrUnreachable, err), "%s", why)
	}
	return analysis.Errorf(analysis.ErrUpstream, err, "reading %s from %s failed", what, registry)
}

// InsecureFlag is the setting that makes the service speak plain HTTP to a
// registry, named in the message of a TLS handshake that met plain HTTP.
const InsecureFlag = "--insecure-registries"

// unreachable says why no conversation with registry could start, in the
// words of the failure a person can act on (no such host, a refused
// connection, a TLS handshake that met plain HTTP or an untrusted
// certificate); "" when err is not such a failure.
func unreachable(err error, registry string) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		var dnsErr *net.DNSError
		var errno syscall.Errno
		switch {
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			return fmt.Sprintf("registry %s cannot be reached: no such host (the name %s does not resolve)", registry, dnsErr.Name)
		case errors.As(err, &dnsErr):
			return fmt.Sprintf("registry %s cannot be reached: its name %s could not be looked up (%s)", registry, dnsErr.Name, dnsErr.Err)
		case errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Sprintf("the registry at %s refused the connection: nothing listens on that port, or a firewall refuses it", registry)
		case errors.As(err, &errno):
			return fmt.Sprintf("registry %s cannot be reached: %s", registry, errno)
		}
		return fmt.Sprintf("registry %s cannot be reached", registry)
	}
	var header tls.RecordHeaderError
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	switch {
	case errors.As(err, &header), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("registry %s cannot be reached: the TLS handshake failed: its answer is not TLS (is it plain HTTP? see %s)", registry, InsecureFlag)
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("registry %s cannot be reached: the TLS handshake failed: its certificate is signed by an authority this system does not trust", registry)
	case errors.As(err, &hostname):
		return fmt.Sprintf("registry %s cannot be reached: the TLS handshake failed: its certificate is not valid for that name (%s)", registry, hostname.Error())
	case errors.As(err, &invalid):
		return fmt.Sprintf("registry %s cannot be reached: the TLS handshake failed: its certificate is not valid (%s)", registry, invalid.Error())
	case errors.As(err, &verify):
		return fmt.Sprintf("registry %s cannot be reached: the TLS handshake failed: its certificate could not be verified", registry)
	case errors.As(err, &alert):
		return fmt.Sprintf("registry %s cannot be reached: the TLS handshake failed: the registry refused it (%s)", registry, alert.Error())
	}
	return ""
}

// ParseRetryAfter reads a Retry-After header in either of its two forms
// (seconds, or an HTTP date), as registries and webhook receivers send it;
// 0 when absent, malformed or past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isRealmRequest reports whether a request URL is a token request: the
// token realm's, named by a registry's challenge, rather than the
// registry's own /v2/ API.
func isRealmRequest(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && !strings.HasPrefix(u.Path, "/v2/") && u.Path != "/v2"
}

// secretPatterns match what may carry a secret in an error's text: an
// Authorization value, a URL's user information or query (token requests
// carry account names and scopes; some realms take secrets there), and the
// JSON fields of token answers.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]+`),
	regexp.MustCompile(`(?i)(https?://)[^/\s:@]+:[^/\s@]+@`),
	regexp.MustCompile(`\?[^\s"]*`),
	regexp.MustCompile(`(?i)"(token|access_token|refresh_token|id_token|password|identitytoken|auth)"\s*:\s*"[^"]*"`),
}

// scrub removes from s whatever secretPatterns match.
func scrub(s string) string {
	s = secretPatterns[0].ReplaceAllString(s, "$1 [redacted]")
	s = secretPatterns[1].ReplaceAllString(s, "${1}[redacted]@")
	s = secretPatterns[2].ReplaceAllString(s, "?[redacted]")
	s = secretPatterns[3].ReplaceAllString(s, `"$1":"[redacted]"`)
	return s
}

// scrubbedError keeps an error's chain for errors.Is and errors.As while
// its text, the part that reaches logs, has secrets removed.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrubbed(err error) error {
	if err == nil {
		return nil
	}
	return &scrubbedError{msg: scrub(err.Error()), err: err}
}
