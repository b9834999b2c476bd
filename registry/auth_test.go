package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/tokenserver"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/registry"
)

// manifestBody is the one image the bearer registry serves.
var manifestBody = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`)

func manifestDigest() string {
	sum := sha256.Sum256(manifestBody)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// bearerRegistry answers as a distribution registry with `auth: token`
// does: 401 with a Bearer challenge naming the token server's realm, and
// the manifest of acme/app:1 for a token that grants pull on acme/app. It
// counts every request it receives.
type bearerRegistry struct {
	*httptest.Server
	tokens *tokenserver.Server
	mu     sync.Mutex
	count  int
	realm  string
}

func newBearerRegistry(t *testing.T, tokens *tokenserver.Server, realm string) *bearerRegistry {
	t.Helper()
	b := &bearerRegistry{tokens: tokens, realm: realm}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.count++
		b.mu.Unlock()
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		name := "acme/app"
		scope := ""
		if r.URL.Path != "/v2/" {
			scope = `,scope="repository:` + name + `:pull"`
		}
		if tok == "" || (r.URL.Path != "/v2/" && !tokens.Valid(tok, name, "pull")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+b.realm+`",service="test-registry"`+scope)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		if r.URL.Path == "/v2/" {
			return
		}
		if r.URL.Path != "/v2/acme/app/manifests/1" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", manifestDigest())
		w.Header().Set("Content-Length", fmt.Sprint(len(manifestBody)))
		if r.Method == http.MethodGet {
			w.Write(manifestBody)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *bearerRegistry) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

func startTokens(t *testing.T, host string) *tokenserver.Server {
	t.Helper()
	ts, err := tokenserver.Start(tokenserver.Options{Service: "test-registry", Issuer: "test-issuer", Host: host,
		Users: map[string]string{"alice": "s3cret-alice", "bob": "s3cret-bob"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	return ts
}

// dockerConfig writes a Docker config.json with auths for the given hosts
// (host → user:password), points DOCKER_CONFIG at it for the test, and
// returns the keychain the service uses (go-containerregistry's default,
// which reads DOCKER_CONFIG).
func dockerConfig(t *testing.T, auths map[string]string) authn.Keychain {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{}}
	for host, up := range auths {
		cfg["auths"].(map[string]any)[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(up))}
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	return authn.DefaultKeychain
}

func port(u string) string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	return p
}

// TestTokenAuthReusesTokens: with credentials in the Docker config, the
// first look at a repository costs a ping, a token and a HEAD; the second
// costs one HEAD and no token (counted at the registry and the token server).
func TestTokenAuthReusesTokens(t *testing.T) {
	tokens := startTokens(t, "localhost")
	reg := newBearerRegistry(t, tokens, tokens.URL)
	host := "localhost:" + port(reg.URL)
	kc := dockerConfig(t, map[string]string{host: "alice:s3cret-alice"})
	c, _ := newInspector(t, registry.Options{Keychain: kc})
	ref := must(analysis.ParseReference(host + "/acme/app:1"))

	d, _, err := c.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest != manifestDigest() {
		t.Fatalf("digest %s, want %s", d.Digest, manifestDigest())
	}
	if got := tokens.Users(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("token requests by %q, want one by alice", got)
	}
	firstReg, firstTok := reg.requests(), tokens.Requests()
	if firstTok != 1 {
		t.Errorf("first look: %d token requests, want 1", firstTok)
	}
	if _, _, err := c.Resolve(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if n := reg.requests() - firstReg; n != 1 {
		t.Errorf("second look: %d registry requests, want 1 (the HEAD)", n)
	}
	if n := tokens.Requests() - firstTok; n != 0 {
		t.Errorf("second look: %d token requests, want 0", n)
	}
}

// TestMissingOrRefusedCredentials: without credentials, or with wrong ones,
// the answer is registry_unauthorized naming the registry and saying how to
// give credentials.
func TestMissingOrRefusedCredentials(t *testing.T) {
	for _, tc := range []struct {
		name  string
		auths func(host string) map[string]string
		says  string
	}{
		{"missing", func(string) map[string]string { return nil }, "docker login"},
		{"refused", func(h string) map[string]string { return map[string]string{h: "alice:wrong"} }, "refused the credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens := startTokens(t, "localhost")
			reg := newBearerRegistry(t, tokens, tokens.URL)
			host := "localhost:" + port(reg.URL)
			kc := dockerConfig(t, tc.auths(host))
			c, _ := newInspector(t, registry.Options{Keychain: kc})
			_, _, err := c.Resolve(context.Background(), must(analysis.ParseReference(host+"/acme/app:1")))
			if !errors.Is(err, analysis.ErrUnauthorized) {
				t.Fatalf("err = %v, want unauthorized", err)
			}
			msg, _ := analysis.PublicMessage(err)
			if !strings.Contains(msg, host) || !strings.Contains(msg, tc.says) {
				t.Errorf("message %q does not name %s and say %q", msg, host, tc.says)
			}
			if strings.Contains(msg, "s3cret") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error holds a password: %v", err)
			}
		})
	}
}

// TestRealmOnAnotherSiteGetsOnlyItsOwnCredentials: a registry on 127.0.0.1
// whose realm is on localhost (another host) cannot hand the registry's
// credentials over; the realm gets those the Docker config holds for
// localhost itself, or none.
func TestRealmOnAnotherSiteGetsOnlyItsOwnCredentials(t *testing.T) {
	t.Run("config names only the registry", func(t *testing.T) {
		tokens := startTokens(t, "localhost")
		reg := newBearerRegistry(t, tokens, tokens.URL)
		host := strings.TrimPrefix(reg.URL, "http://")
		kc := dockerConfig(t, map[string]string{host: "alice:s3cret-alice"})
		c, _ := newInspector(t, registry.Options{Keychain: kc})
		_, _, err := c.Resolve(context.Background(), must(analysis.ParseReference(host+"/acme/app:1")))
		if !errors.Is(err, analysis.ErrUnauthorized) {
			t.Fatalf("err = %v, want unauthorized", err)
		}
		for _, u := range tokens.Users() {
			if u != "" {
				t.Errorf("the realm on another host was sent %q's credentials", u)
			}
		}
		if tokens.Requests() == 0 {
			t.Error("no token request at all: the test proves nothing")
		}
	})
	t.Run("config names the realm's host too", func(t *testing.T) {
		tokens := startTokens(t, "localhost")
		reg := newBearerRegistry(t, tokens, tokens.URL)
		host := strings.TrimPrefix(reg.URL, "http://")
		kc := dockerConfig(t, map[string]string{host: "alice:s3cret-alice", "localhost:" + port(tokens.URL): "bob:s3cret-bob"})
		c, _ := newInspector(t, registry.Options{Keychain: kc})
		if _, _, err := c.Resolve(context.Background(), must(analysis.ParseReference(host+"/acme/app:1"))); err != nil {
			t.Fatal(err)
		}
		if got := tokens.Users(); !slices.Equal(got, []string{"bob"}) {
			t.Errorf("token requests by %q, want one with the realm host's own credentials (bob)", got)
		}
	})
}

// dialRecord is a netguard dialer that remembers each address it was asked
// to connect to and whether netguard let the connect go ahead.
type dialRecord struct {
	mu      sync.Mutex
	allowed []string
	refused []string
	guard   *netguard.Guard
	bypass  map[string]string // address → where to dial instead, unguarded
	dialer  net.Dialer
}

func (d *dialRecord) transport() *http.Transport {
	d.dialer.Control = func(network, address string, c syscall.RawConn) error {
		err := d.guard.Control(network, address, c)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.refused = append(d.refused, address)
		} else {
			d.allowed = append(d.allowed, address)
		}
		return err
	}
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := d.bypass[addr]; ok {
			// The stand-in for a public registry: dialled as is.
			var plain net.Dialer
			return plain.DialContext(ctx, network, to)
		}
		return d.dialer.DialContext(ctx, network, addr)
	}}
}

func (d *dialRecord) connectsTo(prefix string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.allowed {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// TestRealmSSRFIsRefusedBeforeAnyConnection: a registry whose challenge
// names a refused realm gets registry_forbidden, and no connection to the
// realm is made, as the dialer records.
func TestRealmSSRFIsRefusedBeforeAnyConnection(t *testing.T) {
	t.Run("cloud metadata", func(t *testing.T) {
		rec := &dialRecord{guard: netguard.New(true)}
		reg := newBearerRegistry(t, nil, "http://169.254.169.254/latest/meta-data/token")
		c, _ := newInspector(t, registry.Options{Transport: rec.transport()})
		_, _, err := c.Resolve(context.Background(), must(analysis.ParseReference(strings.TrimPrefix(reg.URL, "http://")+"/acme/app:1")))
		if !errors.Is(err, analysis.ErrForbidden) {
			t.Fatalf("err = %v, want registry_forbidden", err)
		}
		if rec.connectsTo("169.254.") {
			t.Error("a connection to the metadata address went ahead")
		}
		if !rec.connectsTo("127.0.0.1:") {
			t.Error("the registry itself was never dialled: the test proves nothing")
		}
	})
	t.Run("loopback realm without --allow-private-registries", func(t *testing.T) {
		tokens := startTokens(t, "localhost")
		reg := newBearerRegistry(t, tokens, tokens.URL)
		// registry.test stands for a public registry; its realm is on loopback.
		rec := &dialRecord{guard: netguard.New(false), bypass: map[string]string{"registry.test:80": strings.TrimPrefix(reg.URL, "http://")}}
		c, _ := newInspector(t, registry.Options{Transport: rec.transport(), Insecure: []string{"registry.test"}})
		_, _, err := c.Resolve(context.Background(), must(analysis.ParseReference("registry.test/acme/app:1")))
		if !errors.Is(err, analysis.ErrForbidden) {
			t.Fatalf("err = %v, want registry_forbidden", err)
		}
		if msg, _ := analysis.PublicMessage(err); !strings.Contains(msg, "token service") || !strings.Contains(msg, "--allow-private-registries") {
			t.Errorf("message %q does not say the token service was refused and which flag allows it", msg)
		}
		if len(rec.refused) == 0 {
			t.Error("netguard was never asked about the realm's address")
		}
		if rec.connectsTo("127.0.0.1") || rec.connectsTo("[::1]") {
			t.Error("a connection to the loopback realm went ahead")
		}
		if n := tokens.Connections(); n != 0 {
			t.Errorf("the token server accepted %d connections, want 0", n)
		}
	})
}
