package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/store"
)

// TestDockerHubAPIFromTheEnvironment: docs/API.md's --dockerhub-api defaults
// to https://hub.docker.com, and an empty value, on the command line or in
// IMAGEBADGER_DOCKERHUB_API, turns it off; other empty variables count as
// unset.
func TestDockerHubAPIFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default", nil, nil, "https://hub.docker.com"},
		{"empty variable turns it off", map[string]string{"IMAGEBADGER_DOCKERHUB_API": ""}, nil, ""},
		{"variable", map[string]string{"IMAGEBADGER_DOCKERHUB_API": "http://127.0.0.1:9"}, nil, "http://127.0.0.1:9"},
		{"empty flag turns it off", nil, []string{"--dockerhub-api="}, ""},
		{"flag wins", map[string]string{"IMAGEBADGER_DOCKERHUB_API": ""}, []string{"--dockerhub-api", "https://hub.example"}, "https://hub.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.register(fs, true)
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			if err := cfg.fromEnv(fs, lookup); err != nil {
				t.Fatal(err)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.DockerHubAPI != tc.want {
				t.Errorf("DockerHubAPI = %q, want %q", cfg.DockerHubAPI, tc.want)
			}
		})
	}
	// An empty IMAGEBADGER_ADDR still means the default, as before.
	cfg := defaultConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.register(fs, true)
	if err := cfg.fromEnv(fs, func(k string) (string, bool) { return "", true }); err != nil || cfg.Addr != ":8080" {
		t.Errorf("empty IMAGEBADGER_ADDR: addr %q, err %v", cfg.Addr, err)
	}
}

func TestRegistryEndpoints(t *testing.T) {
	got, err := endpoints("docker.io=127.0.0.1:5000, ghcr.io=mirror.internal")
	if err != nil || got["docker.io"] != "127.0.0.1:5000" || got["ghcr.io"] != "mirror.internal" {
		t.Errorf("endpoints = %v, %v", got, err)
	}
	if got, err := endpoints("index.docker.io=m:1"); err != nil || got["docker.io"] != "m:1" {
		t.Errorf("index.docker.io is docker.io: %v, %v", got, err)
	}
	for _, bad := range []string{"docker.io", "=x", "docker.io=", "docker.io=http://x/y"} {
		if _, err := endpoints(bad); err == nil {
			t.Errorf("endpoints(%q) accepted", bad)
		}
	}
}

// TestTrustedProxies: --trusted-proxies comes from the flag, its variable
// or the variable's _FILE form, and an entry that is neither a CIDR nor an
// address stops the start with a usage error naming that entry.
func TestTrustedProxies(t *testing.T) {
	file := filepath.Join(t.TempDir(), "proxies")
	if err := os.WriteFile(file, []byte("10.0.0.0/8,fd00::1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag", nil, []string{"--trusted-proxies", "127.0.0.1/32"}, "127.0.0.1/32"},
		{"variable", map[string]string{"IMAGEBADGER_TRUSTED_PROXIES": "192.168.0.0/16"}, nil, "192.168.0.0/16"},
		{"file", map[string]string{"IMAGEBADGER_TRUSTED_PROXIES_FILE": file}, nil, "10.0.0.0/8,fd00::1"},
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
			if cfg.TrustedProxies != tc.want {
				t.Errorf("TrustedProxies = %q, want %q", cfg.TrustedProxies, tc.want)
			}
		})
	}
	err := run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "ib.db"), "--trusted-proxies", "10.0.0.0/8, lb.internal"},
		func(string) (string, bool) { return "", false }, io.Discard, io.Discard)
	var u usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--trusted-proxies") || !strings.Contains(err.Error(), `"lb.internal"`) {
		t.Errorf("--trusted-proxies with a host name: %v, want a usage error naming the flag and the entry", err)
	}
}

// TestKeywordDBIsRefused: a --db (or IMAGEBADGER_DB) written as a libpq
// keyword string stops serve at start with a usage error that says to give
// a postgres:// URL and repeats none of the value, and no SQLite file
// named after it is created.
func TestKeywordDBIsRefused(t *testing.T) {
	source := filepath.Join(t.TempDir(), "source.db")
	st, err := store.Open(context.Background(), source)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	const dsn = "host=db.internal user=ib password=Sup3rSecret dbname=imagebadger"
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag", []string{"serve", "--addr", "127.0.0.1:0", "--db", dsn}, nil},
		{"variable", []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{"IMAGEBADGER_DB": dsn}},
		{"copy-db source", []string{"copy-db", "--from", dsn, "--to", "copy.db"}, nil},
		{"copy-db target", []string{"copy-db", "--from", source, "--to", dsn}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			err := run(context.Background(), tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }, &stdout, &stderr)
			var u usageError
			if err == nil || !strings.Contains(err.Error(), "postgres://") || (tc.args[0] == "serve" && !errors.As(err, &u)) {
				t.Fatalf("%s with a keyword string: %v, want an error saying to give a postgres:// URL (for serve, a usage error)", tc.args[0], err)
			}
			for _, part := range []string{"db.internal", "Sup3rSecret", "ib ", "imagebadger "} {
				if shown := err.Error() + stdout.String() + stderr.String(); strings.Contains(shown, part) {
					t.Errorf("the refusal repeats %q: %s", part, shown)
				}
			}
		})
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("the directory holds %v (err %v), want no database file", entries, err)
	}
}
