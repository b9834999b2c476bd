package notify

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/netguard"
)

// FuzzSubscriptionRequest feeds arbitrary subscription requests (image, url,
// events, as a form or a JSON body would carry them) through the checks a
// request passes before anything is stored or sent: never a panic, every
// refusal an invalid-request error, and every accepted URL an http(s) URL
// with a host whose address the webhook policy permits. Names resolve to a
// fixed public address, or to loopback for names containing "internal", so
// no lookup leaves the process.
func FuzzSubscriptionRequest(f *testing.F) {
	for _, seed := range [][3]string{
		{"127.0.0.1:5000/acme/base:1.0", "https://example.com/hook", "image.updated,base.updated"},
		{"acme/base", "http://hooks.example.org:8080/x?y=1#frag", ""},
		{"python", "https://169.254.169.254/latest", "image.updated"},
		{"ghcr.io/acme/app@sha256:" + strings.Repeat("0", 64), "https://example.com", ""},
		{"", "ftp://example.com", "webhook.ping"},
		{"a:b:c", "https://user:pw@example.com", "image.updated,image.updated"},
		{"acme/app:1", "https://[::ffff:127.0.0.1]/", ""},
		{"acme/app:1", "https://metadata.internal/", ""},
		{"acme/app:1", "https://example.com/" + strings.Repeat("a", 3000), ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	s := &Subscriptions{
		guard: netguard.New(false),
		lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
			if strings.Contains(host, "internal") {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}
			return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
		},
	}
	f.Fuzz(func(t *testing.T, image, rawURL, events string) {
		var evs []string
		if events != "" {
			evs = strings.Split(events, ",")
		}
		check := func(err error) bool {
			if err == nil {
				return true
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, analysis.ErrInvalidReference) {
				t.Fatalf("refusal without an invalid-request kind: %v", err)
			}
			return false
		}
		if _, err := ParseSubject(image); !check(err) {
			return
		}
		u, err := parseTarget(rawURL)
		if !check(err) {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q as %s", rawURL, u)
		}
		if err := s.checkTarget(context.Background(), u); !check(err) {
			return
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && s.guard.Check(a) != nil {
			t.Fatalf("accepted a URL whose address the policy refuses: %s", u)
		}
		if strings.Contains(u.Hostname(), "internal") {
			t.Fatalf("accepted %s, which resolves to loopback", u)
		}
		if _, err := parseEvents(evs, ""); !check(err) {
			return
		}
	})
}
