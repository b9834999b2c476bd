package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/tokenserver"
)

// AuthRegistry is a distribution registry that demands credentials, reached
// through a counting proxy on loopback.
type AuthRegistry struct {
	// Host is "localhost:PORT", the proxy in front of the registry, as
	// references write it. localhost rather than 127.0.0.1: a token realm
	// on localhost then belongs to the registry's own site (see
	// registry.realmGuard), and go-containerregistry accepts it.
	Host string
	// User and Password are the one account the registry knows.
	User, Password string
	// Tokens is the token server of an `auth: token` registry; nil for htpasswd.
	Tokens *tokenserver.Server
	// Requests counts the requests that reached the registry.
	Requests func() int
}

// DistributionWithHtpasswd starts Debian's distribution registry with
// `auth: htpasswd`, its file made by Apache's htpasswd (bcrypt, as
// distribution requires), with one account.
func DistributionWithHtpasswd(t testing.TB, user, password string) *AuthRegistry {
	t.Helper()
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		t.Fatalf("htpasswd not found (Debian package apache2-utils): run `make deps`")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	out := run(t, bin, "-Bbn", user, password)
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := DistributionWithConfig(t, fmt.Sprintf("auth:\n  htpasswd:\n    realm: imagebadger-test\n    path: %q\n", file))
	return counted(t, addr, &AuthRegistry{User: user, Password: password})
}

// Token auth settings shared by the registry and its token server.
const (
	tokenService = "imagebadger-test-registry"
	tokenIssuer  = "imagebadger-test-issuer"
)

// DistributionWithToken starts Debian's distribution registry with `auth:
// token` against a token server of the test suite (package tokenserver):
// JWTs signed with a key whose certificate is the registry's rootcertbundle.
func DistributionWithToken(t testing.TB, user, password string) *AuthRegistry {
	t.Helper()
	ts, err := tokenserver.Start(tokenserver.Options{Service: tokenService, Issuer: tokenIssuer,
		Users: map[string]string{user: password}, Host: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	bundle := filepath.Join(t.TempDir(), "token.pem")
	if err := os.WriteFile(bundle, ts.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := DistributionWithConfig(t, fmt.Sprintf("auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
		ts.URL, tokenService, tokenIssuer, bundle))
	return counted(t, addr, &AuthRegistry{User: user, Password: password, Tokens: ts})
}

func counted(t testing.TB, addr string, r *AuthRegistry) *AuthRegistry {
	t.Helper()
	proxy, count, stop, err := distreg.CountingProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	_, port, _ := net.SplitHostPort(proxy)
	r.Host = "localhost:" + port
	r.Requests = count
	return r
}

// DockerConfig writes a Docker config directory whose config.json holds
// auths for host → user:password pairs, as `docker login` leaves it, and
// returns the directory, for DOCKER_CONFIG.
func DockerConfig(t testing.TB, auths map[string][2]string) string {
	t.Helper()
	dir := t.TempDir()
	entries := map[string]any{}
	for host, up := range auths {
		entries[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(up[0] + ":" + up[1]))}
	}
	b, err := json.MarshalIndent(map[string]any{"auths": entries}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// CraneWithConfig is Crane run with DOCKER_CONFIG=dir, for registries that
// want credentials.
func CraneWithConfig(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	bin, err := craneBinary()
	if err != nil {
		t.Fatalf("%v: run `make deps`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("crane %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}
