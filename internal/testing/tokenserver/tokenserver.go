// Package tokenserver is the token service of the test suite: the `realm`
// of a distribution registry configured with `auth: token`, as Docker Hub,
// GHCR and Quay have one. It implements the flow of distribution's token
// authentication specification: GET {realm}?service=…&scope=repository:NAME:pull
// with HTTP Basic credentials answers {"token", "access_token", "expires_in",
// "issued_at"}, a JWT signed with ES256 whose header carries the signing
// certificate as x5c and whose claims are iss, sub, aud (the service, a
// string as distribution 2.8 reads it), exp, nbf, iat, jti and access (the
// granted type, name and actions). The certificate is self-signed; the
// registry trusts it as its rootcertbundle.
//
// It counts requests, records every token it issued (so tests can look for
// them where they must never be), and grants pull to the users it knows and
// to nobody else.
package tokenserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Options configures a token server.
type Options struct {
	// Service is the registry's service name (its `service:` setting),
	// checked against the request and written as aud.
	Service string
	// Issuer is written as iss (the registry's `issuer:` setting).
	Issuer string
	// Users maps user names to passwords; only they get access.
	Users map[string]string
	// Host is the host the server is addressed by in its URL, "localhost"
	// by default. It listens on 127.0.0.1 either way.
	Host string
	// Lifetime is how long a token is valid (default 5 minutes).
	Lifetime time.Duration
}

// Server is a running token server.
type Server struct {
	// URL is the realm: "http://HOST:PORT/token".
	URL string
	// Addr is "127.0.0.1:PORT", where it listens.
	Addr string

	opts Options
	key  *ecdsa.PrivateKey
	cert []byte // DER
	srv  *http.Server
	ln   *countingListener

	mu       sync.Mutex
	requests int
	issued   []string
	// seen records the Authorization user of each request ("" when none).
	seen []string
}

// Start generates a key and a certificate and serves on 127.0.0.1.
func Start(o Options) (*Server, error) {
	if o.Host == "" {
		o.Host = "localhost"
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 5 * time.Minute
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imagebadger test token issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, key: key, cert: der, ln: &countingListener{Listener: l}}
	s.Addr = l.Addr().String()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.URL = "http://" + net.JoinHostPort(o.Host, port) + "/token"
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(s.ln)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// CertPEM is the signing certificate, for the registry's rootcertbundle.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert})
}

// Requests returns how many token requests were answered.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Connections returns how many TCP connections were accepted: zero proves
// nothing dialled the server at all.
func (s *Server) Connections() int { return int(s.ln.accepted()) }

// Users returns the Basic user of each token request, "" for anonymous ones.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Issued returns every token handed out.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, hasAuth := r.BasicAuth()
	s.mu.Lock()
	s.requests++
	s.seen = append(s.seen, user)
	s.mu.Unlock()
	q := r.URL.Query()
	if r.URL.Path != "/token" || q.Get("service") != s.opts.Service {
		http.Error(w, `{"errors":[{"code":"DENIED","message":"unknown service"}]}`, http.StatusBadRequest)
		return
	}
	if hasAuth {
		if want, ok := s.opts.Users[user]; !ok || want != pass {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}`))
			return
		}
	}
	var access []map[string]any
	for _, scope := range q["scope"] {
		for _, sc := range strings.Fields(scope) {
			parts := strings.Split(sc, ":")
			if len(parts) != 3 || parts[0] != "repository" {
				continue
			}
			var granted []string
			if hasAuth {
				for _, a := range strings.Split(parts[2], ",") {
					if a == "pull" || a == "push" {
						granted = append(granted, a)
					}
				}
			}
			// Anonymous requests get a token that grants nothing, as
			// distribution's token servers answer for private repositories.
			access = append(access, map[string]any{"type": "repository", "name": parts[1], "actions": nonNil(granted)})
		}
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": s.opts.Issuer, "sub": user, "aud": s.opts.Service,
		"exp": now.Add(s.opts.Lifetime).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": strconv.FormatInt(now.UnixNano(), 36), "access": nonNilMaps(access),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(s.cert)}
	signed, err := tok.SignedString(s.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.issued = append(s.issued, signed)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token": signed, "access_token": signed,
		"expires_in": int(s.opts.Lifetime.Seconds()), "issued_at": now.UTC().Format(time.RFC3339),
	})
}

// Valid reports whether raw is a token this server signed that grants
// action on repository name: what a registry checks, for test registries
// that are not distribution.
func (s *Server) Valid(raw, name, action string) bool {
	tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(s.opts.Issuer))
	if err != nil || !tok.Valid {
		return false
	}
	claims, _ := tok.Claims.(jwt.MapClaims)
	if claims["aud"] != s.opts.Service {
		return false
	}
	list, _ := claims["access"].([]any)
	for _, a := range list {
		m, _ := a.(map[string]any)
		if m["type"] != "repository" || m["name"] != name {
			continue
		}
		acts, _ := m["actions"].([]any)
		for _, x := range acts {
			if x == action {
				return true
			}
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMaps(s []map[string]any) []map[string]any {
	if s == nil {
		return []map[string]any{}
	}
	return s
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	mu sync.Mutex
	n  int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return c, err
}

func (l *countingListener) accepted() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
