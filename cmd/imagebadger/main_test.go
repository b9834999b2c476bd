package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

// TestHelp: imagebadger --help lists every subcommand, each subcommand's
// --help lists its flags (written --name, as messages and docs write them)
// once, on standard output, with nothing on standard error, and both
// succeed (exit status 0).
func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, noEnv, &out, &errOut); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, c := range []string{"serve", "inspect REFERENCE", "tags REPOSITORY", "demo", "diff FROM TO", "copy-db --from SRC --to DST",
		"backup --to FILE", "healthcheck", "version"} {
		if !strings.Contains(out.String(), "  "+c) {
			t.Errorf("--help does not list %q:\n%s", c, out.String())
		}
	}
	for _, tc := range []struct {
		cmd   string
		flags []string
		not   []string
	}{
		{"serve", []string{"--addr", "--db", "--base-url", "--hook-token", "--allow-private-registries", "--log-level", "--log-format", "--metrics-addr", "--private-images"}, []string{"--json"}},
		{"inspect", []string{"--json", "--allow-private-registries", "--registry-timeout"}, []string{"--addr", "--hook-token", "--log-level"}},
		{"tags", []string{"--json"}, []string{"--db"}},
		{"demo", []string{"--addr", "--db", "--log-level"}, []string{"--json"}},
		{"diff", []string{"--json", "--platform", "--allow-private-registries", "--registry-timeout"}, []string{"--addr", "--db", "--from"}},
		{"copy-db", []string{"--from", "--to"}, []string{"--db", "--addr", "--json", "--registry-timeout", "--platform"}},
		{"backup", []string{"--db", "--to"}, []string{"--addr", "--json", "--registry-timeout"}},
		{"healthcheck", []string{"--url", "--addr", "--timeout"}, []string{"--db", "--json"}},
		{"version", nil, []string{"--db", "--json", "--addr"}},
	} {
		for _, help := range []string{"--help", "-h", "-help"} {
			out.Reset()
			errOut.Reset()
			if err := run(context.Background(), []string{tc.cmd, help}, noEnv, &out, &errOut); err != nil {
				t.Errorf("%s %s: %v", tc.cmd, help, err)
			}
			if n := strings.Count(out.String(), "Usage: imagebadger "+tc.cmd); n != 1 || errOut.Len() != 0 {
				t.Errorf("%s %s prints its usage %d times, and %q on standard error", tc.cmd, help, n, errOut.String())
			}
			for _, f := range tc.flags {
				if !strings.Contains(out.String(), "  "+f+" ") && !strings.Contains(out.String(), "  "+f+"\n") {
					t.Errorf("%s --help does not list %s:\n%s", tc.cmd, f, out.String())
				}
			}
			for _, f := range tc.not {
				if strings.Contains(out.String(), "  "+f+" ") || strings.Contains(out.String(), "  "+f+"\n") {
					t.Errorf("%s --help lists %s, which it does not take", tc.cmd, f)
				}
			}
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"help", "inspect"}, noEnv, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "Usage: imagebadger inspect [FLAGS] REFERENCE\n") {
		t.Errorf("help inspect: %v\n%s", err, out.String())
	}
	err := run(context.Background(), []string{"nope"}, noEnv, &out, &errOut)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown subcommand: %v (exit %d)", err, exitCode(err))
	}
}

// TestBaseURLDefaultsFromAddr: --base-url defaults to the address the
// service listens on, so links and webhook payloads name the right port.
func TestBaseURLDefaultsFromAddr(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "http://localhost:8080"},
		{[]string{"--addr", ":9090"}, nil, "http://localhost:9090"},
		{[]string{"--addr", "127.0.0.1:7000"}, nil, "http://127.0.0.1:7000"},
		{nil, map[string]string{"IMAGEBADGER_ADDR": "0.0.0.0:8181"}, "http://localhost:8181"},
		{[]string{"--addr", ":9090", "--base-url", "https://badges.example.com"}, nil, "https://badges.example.com"},
	} {
		cfg := defaultConfig()
		fs := newFlagSet(cfg)
		if err := cfg.fromEnv(fs, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }); err != nil {
			t.Fatal(err)
		}
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := cfg.validate(); err != nil {
			t.Fatal(err)
		}
		if cfg.BaseURL != tc.want {
			t.Errorf("%v %v: base URL %q, want %q", tc.args, tc.env, cfg.BaseURL, tc.want)
		}
	}
}

// newFlagSet is the flag set of a serving process.
func newFlagSet(cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("imagebadger serve", flag.ContinueOnError)
	cfg.register(fs, true)
	return fs
}
