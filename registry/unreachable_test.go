package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/registry"
)

// TestUnreachableRegistriesSayWhy: a registry that no conversation can be
// started with is a registry_error whose message says why, in words a
// person can act on, each judged against a real socket: a closed loopback
// port (the kernel refuses it), a name under the reserved .invalid domain
// (RFC 6761: the resolver answers that it does not exist), a plain-HTTP
// listener spoken to with TLS, a TLS listener whose certificate names other
// addresses, and one whose certificate no authority of the system signed.
func TestUnreachableRegistriesSayWhy(t *testing.T) {
	closed := closedPort(t)
	plain := listenOn(t, "127.0.0.2:0")
	httpSrv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 5 * time.Second}
	go httpSrv.Serve(plain)
	t.Cleanup(func() { httpSrv.Close() })
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Listener.Close()
	tlsSrv.Listener = listenOn(t, "127.0.0.2:0")
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes fail on purpose
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	if ips := tlsSrv.Certificate().IPAddresses; slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 2)) }) {
		t.Fatalf("httptest's certificate names 127.0.0.2 (%v); the test needs one that does not", ips)
	}
	selfSigned := httptest.NewUnstartedServer(http.NotFoundHandler())
	selfSigned.Listener.Close()
	selfSigned.Listener = listenOn(t, "127.0.0.2:0")
	selfSigned.TLS = &tls.Config{Certificates: []tls.Certificate{selfSignedFor(t, net.IPv4(127, 0, 0, 2))}}
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0)
	selfSigned.StartTLS()
	t.Cleanup(selfSigned.Close)

	// What the system's resolver says of the reserved name decides what the
	// message must say.
	noHost := "no such host (the name nonexistent.invalid does not resolve)"
	var dnsErr *net.DNSError
	if _, err := net.DefaultResolver.LookupHost(context.Background(), "nonexistent.invalid"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		noHost = "its name nonexistent.invalid could not be looked up"
	}
	for _, tc := range []struct {
		registry string
		insecure bool
		says     string
	}{
		{closed, false, "the registry at " + closed + " refused the connection"},
		{"nonexistent.invalid", false, "registry nonexistent.invalid cannot be reached: " + noHost},
		{plain.Addr().String(), false, "registry " + plain.Addr().String() + " cannot be reached: the TLS handshake failed: its answer is not TLS (is it plain HTTP? see --insecure-registries)"},
		{tlsSrv.Listener.Addr().String(), false, "registry " + tlsSrv.Listener.Addr().String() + " cannot be reached: the TLS handshake failed: its certificate is not valid for that name"},
		{selfSigned.Listener.Addr().String(), false, "registry " + selfSigned.Listener.Addr().String() + " cannot be reached: the TLS handshake failed: its certificate is signed by an authority this system does not trust"},
	} {
		t.Run(tc.registry, func(t *testing.T) {
			client, err := registry.New(registry.Options{Transport: netguard.New(true).Transport(), Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := analysis.ParseReference(tc.registry + "/me/app:1")
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = client.Fetch(context.Background(), ref)
			msg, _ := analysis.PublicMessage(err)
			if !errors.Is(err, analysis.ErrUpstream) || !errors.Is(err, analysis.ErrUnreachable) || !strings.HasPrefix(msg, tc.says) {
				t.Errorf("Fetch: %v\nmessage %q, want one starting %q", err, msg, tc.says)
			}
		})
	}

	// The hint is right: spoken to over plain HTTP, the same listener
	// answers (here, that it has no such image).
	client, err := registry.New(registry.Options{Transport: netguard.New(true).Transport(), Timeout: 10 * time.Second, Insecure: []string{plain.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := analysis.ParseReference(plain.Addr().String() + "/me/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Fetch(context.Background(), ref); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("over plain HTTP as --insecure-registries says: %v, want not found", err)
	}
}

// closedPort returns a loopback host:port that the kernel refuses
// connections to: a port that was just listened on and closed, checked by
// a dial.
func closedPort(t *testing.T) string {
	t.Helper()
	l := listenOn(t, "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if _, err := net.DialTimeout("tcp", addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial of the closed port %s: %v, want connection refused", addr, err)
	}
	return addr
}

// selfSignedFor makes a certificate for ip signed by itself, which no
// authority of the system trusts.
func selfSignedFor(t *testing.T, ip net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "registry"},
		IPAddresses:  []net.IP{ip},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
