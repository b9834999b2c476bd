package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/store"
)

// TestSignInConfig: the sign-in flags come from the command line, their
// variables and _FILE forms (the client secret from a file, as a container
// secret); incomplete or contradictory settings stop the start with a
// message naming the flag that is missing.
func TestSignInConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	oidc := map[string]string{"IMAGEBADGER_OIDC_ISSUER": "https://id.example", "IMAGEBADGER_OIDC_CLIENT_ID": "ib",
		"IMAGEBADGER_OIDC_CLIENT_SECRET_FILE": secretFile, "IMAGEBADGER_OIDC_ALLOWED": "@example.com"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(out, kv[i])
			} else {
				out[kv[i]] = kv[i+1]
			}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		on      bool
		wantErr string
	}{
		{name: "none", on: false},
		{name: "OpenID from the environment, the secret from a file", env: oidc, on: true},
		{name: "OpenID from flags", args: []string{"--oidc-issuer", "https://id.example", "--oidc-client-id", "ib",
			"--oidc-client-secret", "x", "--oidc-allowed", "ada@example.com"}, on: true},
		{name: "no allowed list", env: with(oidc, "IMAGEBADGER_OIDC_ALLOWED", ""), wantErr: "--oidc-allowed"},
		{name: "no secret", env: with(oidc, "IMAGEBADGER_OIDC_CLIENT_SECRET_FILE", ""), wantErr: "--oidc-client-secret"},
		{name: "not a URL", env: with(oidc, "IMAGEBADGER_OIDC_ISSUER", "id.example"), wantErr: "--oidc-issuer"},
		{name: "a bad allowed entry", env: with(oidc, "IMAGEBADGER_OIDC_ALLOWED", "nobody"), wantErr: "--oidc-allowed"},
		{name: "client without issuer", env: map[string]string{"IMAGEBADGER_OIDC_CLIENT_ID": "ib"}, wantErr: "need --oidc-issuer"},
		{name: "proxy", env: map[string]string{"IMAGEBADGER_AUTH_PROXY_HEADER": "X-Forwarded-Email",
			"IMAGEBADGER_AUTH_PROXY_TRUSTED": "10.0.0.0/8, 127.0.0.1/32", "IMAGEBADGER_BADGE_TOKEN_KEY_FILE": secretFile}, on: true},
		{name: "proxy without trusted networks", env: map[string]string{"IMAGEBADGER_AUTH_PROXY_HEADER": "X-Forwarded-Email"}, wantErr: "--auth-proxy-trusted"},
		{name: "proxy with a bad CIDR", env: map[string]string{"IMAGEBADGER_AUTH_PROXY_HEADER": "X-Forwarded-Email",
			"IMAGEBADGER_AUTH_PROXY_TRUSTED": "10.0.0.1", "IMAGEBADGER_BADGE_TOKEN_KEY": "k"}, wantErr: "not a CIDR"},
		{name: "proxy without a badge key", env: map[string]string{"IMAGEBADGER_AUTH_PROXY_HEADER": "X-Forwarded-Email",
			"IMAGEBADGER_AUTH_PROXY_TRUSTED": "10.0.0.0/8"}, wantErr: "--badge-token-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.register(fs, true)
			if err := cfg.fromEnv(fs, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }); err != nil {
				t.Fatal(err)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			a, err := newAuth(cfg, st, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (a != nil) != tc.on {
				t.Errorf("sign-in configured: %v, want %v", a != nil, tc.on)
			}
			if tc.name == "OpenID from the environment, the secret from a file" && cfg.SignIn.OIDCClientSecret != "s3cret" {
				t.Errorf("client secret %q, want the file's, without its line break", cfg.SignIn.OIDCClientSecret)
			}
		})
	}
}
