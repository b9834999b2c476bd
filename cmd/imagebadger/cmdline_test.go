package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// envOf is a lookupEnv over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestParseFlagsInterspersed: flags are taken wherever they stand, before or
// after the arguments; a flag that takes a value takes the next argument
// (or its =value), a switch takes a value only as =value, and "--" ends
// the flags.
func TestParseFlagsInterspersed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		rest     []string
		json     bool
		private  bool
		timeout  time.Duration
		platform string
	}{
		{"flags first", []string{"--json", "--registry-timeout", "3s", "alpine"}, []string{"alpine"}, true, false, 3 * time.Second, ""},
		{"flags after", []string{"alpine", "--allow-private-registries", "--registry-timeout", "3s"}, []string{"alpine"}, false, true, 3 * time.Second, ""},
		{"between two arguments", []string{"a:1", "--platform", "linux/arm64", "a:2"}, []string{"a:1", "a:2"}, false, false, 20 * time.Second, "linux/arm64"},
		{"=value and one dash", []string{"-json=false", "alpine", "-registry-timeout=4s", "--allow-private-registries=true"}, []string{"alpine"}, false, true, 4 * time.Second, ""},
		{"a switch does not take the next argument", []string{"--json", "true"}, []string{"true"}, true, false, 20 * time.Second, ""},
		{"-- ends the flags", []string{"--json", "--", "--allow-private-registries", "-"}, []string{"--allow-private-registries", "-"}, true, false, 20 * time.Second, ""},
		{"a lone dash is an argument", []string{"-", "--json"}, []string{"-"}, true, false, 20 * time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			fs, inv := diffCommand().flagSet(cfg)
			rest, err := parseFlags(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.rest, rest); diff != "" {
				t.Errorf("arguments (-want +got):\n%s", diff)
			}
			platform := fs.Lookup("platform").Value.String()
			got := []any{inv.json, cfg.AllowPrivateRegistries, cfg.RegistryTimeout, platform}
			want := []any{tc.json, tc.private, tc.timeout, tc.platform}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("json, allow-private-registries, registry-timeout, platform (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFlagAfterTheReference: through the whole command line, a flag written
// after the reference is taken: inspect of a loopback registry is refused
// by policy without --allow-private-registries, and with it (after the
// reference) gets as far as dialling the closed port.
func TestFlagAfterTheReference(t *testing.T) {
	ref := "127.0.0.1:1/acme/app:1"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", ref, "--registry-timeout", "2s"}, "--allow-private-registries"},
		{[]string{"inspect", ref, "--allow-private-registries", "--registry-timeout", "2s"}, "refused the connection"},
		{[]string{"inspect", "--registry-timeout=2s", ref, "--allow-private-registries", "--json"}, "refused the connection"},
	} {
		err := run(context.Background(), tc.args, noEnv, io.Discard, io.Discard)
		if err == nil || exitCode(err) != 1 || !strings.Contains(message(err), tc.want) {
			t.Errorf("%v: %v (exit %d), want a failure saying %q", tc.args, err, exitCode(err), tc.want)
		}
	}
}

// TestUsageMistakes: a mistyped flag or subcommand suggests the nearest
// one; a flag of another subcommand names those that take it; a wrong
// number of arguments says what is missing or left over; a value not of
// its flag's form says the form. Each is a usage error (exit status 2).
func TestUsageMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--pol-interval", "5m"}, []string{"unknown flag --pol-interval", "did you mean --poll-interval?"}},
		{[]string{"serve", "--poll", "5m"}, []string{"did you mean --poll-interval?"}},
		{[]string{"--adr", ":9090"}, []string{"did you mean --addr?"}},
		{[]string{"inspect", "alpine", "--jsn"}, []string{"did you mean --json?"}},
		{[]string{"tags", "--db", "x.db", "alpine"}, []string{"unknown flag --db here", "serve, demo and backup"}},
		{[]string{"serve", "--frobnicate"}, []string{"unknown flag --frobnicate", "imagebadger serve --help"}},
		{[]string{"inspekt", "alpine"}, []string{`unknown subcommand "inspekt"`, "did you mean inspect?"}},
		{[]string{"inspect"}, []string{"REFERENCE is missing", "usage: imagebadger inspect [FLAGS] REFERENCE"}},
		{[]string{"diff", "alpine:3.19"}, []string{"TO is missing"}},
		{[]string{"diff"}, []string{"FROM and TO are missing"}},
		{[]string{"tags", "a", "b"}, []string{"tags takes 1 argument (REPOSITORY)", `unexpected "b"`}},
		{[]string{"serve", "now"}, []string{"serve takes no arguments", `unexpected "now"`}},
		{[]string{"--db", "x.db", "inspect", "alpine"}, []string{`unexpected "inspect"`, "the subcommand comes first"}},
		{[]string{"serve", "--addr"}, []string{"--addr needs a value"}},
		{[]string{"serve", "--poll-interval", "5"}, []string{`invalid value "5" for --poll-interval`, "a Go duration such as 15m"}},
		{[]string{"serve", "--allow-private-registries=yes"}, []string{"--allow-private-registries", "true or false"}},
		{[]string{"serve", "--registry-concurrency", "many"}, []string{"--registry-concurrency", "a whole number"}},
		{[]string{"serve", "--log-level", "verbose"}, []string{"--log-level", "debug, info, warn or error"}},
		{[]string{"serve", "--log-format", "xml"}, []string{"--log-format", "json or text"}},
		{[]string{"serve", "--private-images", "nobody"}, []string{"--private-images", "signed-in or everyone"}},
		{[]string{"inspect", "--private-images", "everyone", "alpine"}, []string{"unknown flag --private-images here"}},
		{[]string{"serve", "---addr", ":1"}, []string{`"---addr" is not a flag`}},
		{[]string{"version", "--json"}, []string{"unknown flag --json here", "inspect"}},
		{[]string{"serve", "--version"}, []string{"imagebadger --version names this build"}},
		{[]string{"help", "nope"}, []string{`unknown subcommand "nope"`}},
	} {
		err := run(context.Background(), tc.args, noEnv, io.Discard, io.Discard)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%v: %v (exit %d), want a usage error", tc.args, err, exitCode(err))
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", tc.args, err, w)
			}
		}
	}
}

// TestNearest: the suggestion is the only flag a typed prefix starts, or
// the one within an edit distance of a third of the name (at least 1);
// nothing for a name far from every flag.
func TestNearest(t *testing.T) {
	flags := []string{"addr", "db", "base-url", "poll-interval", "registry-timeout", "registry-concurrency", "json"}
	for _, tc := range []struct{ typed, want string }{
		{"pol-interval", "poll-interval"},
		{"poll-intervall", "poll-interval"},
		{"poll", "poll-interval"},
		{"registry", ""}, // two flags start with it: no guess
		{"registry-timout", "registry-timeout"},
		{"adr", "addr"},
		{"dv", "db"},
		{"baseurl", "base-url"},
		{"verbose", ""},
		{"x", ""},
	} {
		if got := nearest(tc.typed, flags); got != tc.want {
			t.Errorf("nearest(%q) = %q, want %q", tc.typed, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "abc", 3}, {"kitten", "sitting", 3}, {"db", "db", 0}, {"addr", "adr", 1}} {
		if got := levenshtein(tc.a, tc.b); got != tc.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

// TestEnvironmentFiles: every variable has a _FILE form that reads the value
// from a file (its trailing line break removed), for container secrets;
// giving both forms of one is an error naming both; a missing or oversized
// file is an error naming the variable; a value read from a file that is
// not of its flag's form is refused without being repeated.
func TestEnvironmentFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "s3cret-token\n")
	dbPath := write("db", "/var/lib/imagebadger/ib.db\r\n")
	interval := write("interval", "90s")
	badInterval := write("bad-interval", "ninety seconds\n")
	empty := write("empty", "\n")
	big := write("big", strings.Repeat("x", maxEnvFile+1))
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want func(*Config) []any
		vals []any
		err  []string
	}{
		{name: "the secret is read", env: map[string]string{"IMAGEBADGER_HOOK_TOKEN_FILE": token, "IMAGEBADGER_DB_FILE": dbPath, "IMAGEBADGER_POLL_INTERVAL_FILE": interval},
			want: func(c *Config) []any { return []any{c.HookToken, c.DB, c.PollInterval} },
			vals: []any{"s3cret-token", "/var/lib/imagebadger/ib.db", 90 * time.Second}},
		{name: "the command line wins", env: map[string]string{"IMAGEBADGER_HOOK_TOKEN_FILE": token}, args: []string{"--hook-token", "other"},
			want: func(c *Config) []any { return []any{c.HookToken} }, vals: []any{"other"}},
		{name: "an empty file counts as unset", env: map[string]string{"IMAGEBADGER_ADDR_FILE": empty},
			want: func(c *Config) []any { return []any{c.Addr} }, vals: []any{":8080"}},
		{name: "an empty plain variable beside a file", env: map[string]string{"IMAGEBADGER_HOOK_TOKEN": "", "IMAGEBADGER_HOOK_TOKEN_FILE": token},
			want: func(c *Config) []any { return []any{c.HookToken} }, vals: []any{"s3cret-token"}},
		{name: "both forms", env: map[string]string{"IMAGEBADGER_HOOK_TOKEN": "plain", "IMAGEBADGER_HOOK_TOKEN_FILE": token},
			err: []string{"IMAGEBADGER_HOOK_TOKEN and IMAGEBADGER_HOOK_TOKEN_FILE are both set"}},
		{name: "both forms of an empty-means-off variable", env: map[string]string{"IMAGEBADGER_DOCKERHUB_API": "", "IMAGEBADGER_DOCKERHUB_API_FILE": token},
			err: []string{"IMAGEBADGER_DOCKERHUB_API and IMAGEBADGER_DOCKERHUB_API_FILE are both set"}},
		{name: "a missing file", env: map[string]string{"IMAGEBADGER_HOOK_TOKEN_FILE": filepath.Join(dir, "nope")},
			err: []string{"IMAGEBADGER_HOOK_TOKEN_FILE", "nope", "no such file"}},
		{name: "a file too large", env: map[string]string{"IMAGEBADGER_HOOK_TOKEN_FILE": big},
			err: []string{"IMAGEBADGER_HOOK_TOKEN_FILE", "larger than 64 KiB"}},
		{name: "a file's value not of the form", env: map[string]string{"IMAGEBADGER_POLL_INTERVAL_FILE": badInterval},
			err: []string{"IMAGEBADGER_POLL_INTERVAL_FILE (" + badInterval + ")", "a Go duration such as 15m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			fs, _ := commands()[0].flagSet(cfg)
			err := cfg.fromEnv(fs, envOf(tc.env))
			if err == nil {
				_, err = parseFlags(fs, tc.args)
			}
			if tc.err != nil {
				if err == nil {
					t.Fatalf("no error, want one saying %q", tc.err)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "ninety") || strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the message repeats a value read from a file: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.vals, tc.want(cfg)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// Through run: a usage error (exit status 2) before anything starts.
	err := run(context.Background(), []string{"serve"}, envOf(map[string]string{"IMAGEBADGER_DB": "a.db", "IMAGEBADGER_DB_FILE": token}), io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "IMAGEBADGER_DB and IMAGEBADGER_DB_FILE") {
		t.Errorf("serve with both forms: %v (exit %d)", err, exitCode(err))
	}
}

// TestEnvironmentValueMessages: a variable whose value is not of its
// flag's form names the variable, the value and the form wanted, not
// "parse error".
func TestEnvironmentValueMessages(t *testing.T) {
	for _, tc := range []struct {
		env, value string
		want       string
	}{
		{"IMAGEBADGER_POLL_INTERVAL", "5", "a Go duration such as 15m"},
		{"IMAGEBADGER_REGISTRY_TIMEOUT", "20 seconds", "a Go duration such as 15m"},
		{"IMAGEBADGER_ALLOW_PRIVATE_REGISTRIES", "yes", "true or false"},
		{"IMAGEBADGER_ALLOW_PRIVATE_WEBHOOKS", "on", "true or false"},
		{"IMAGEBADGER_REGISTRY_CONCURRENCY", "eight", "a whole number"},
		{"IMAGEBADGER_LOG_LEVEL", "verbose", "debug, info, warn or error"},
		{"IMAGEBADGER_LOG_FORMAT", "logfmt", "json or text"},
		{"IMAGEBADGER_PRIVATE_IMAGES", "all", "signed-in or everyone"},
	} {
		err := run(context.Background(), []string{"serve"}, envOf(map[string]string{tc.env: tc.value}), io.Discard, io.Discard)
		want := tc.env + `="` + tc.value + `": want ` + tc.want
		if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "parse error") {
			t.Errorf("%s=%s: %v (exit %d), want %q", tc.env, tc.value, err, exitCode(err), want)
		}
	}
	// The log flags take any case, as the words are written in docs.
	cfg := defaultConfig()
	fs, _ := commands()[0].flagSet(cfg)
	if err := cfg.fromEnv(fs, envOf(map[string]string{"IMAGEBADGER_LOG_LEVEL": "DEBUG", "IMAGEBADGER_LOG_FORMAT": "Text"})); err != nil || cfg.LogLevel != "debug" || cfg.LogFormat != "text" {
		t.Errorf("DEBUG, Text: %q %q %v", cfg.LogLevel, cfg.LogFormat, err)
	}
}

// TestDemoHelpTellsTheTruth: demo's --db is not serve's: without it the
// demo writes a temporary database removed at exit, so its help says so
// and shows no imagebadger.db default, and an explicit --db imagebadger.db
// is taken as given.
func TestDemoHelpTellsTheTruth(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo", "--help"}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	i := strings.Index(help, "  --db")
	if i < 0 {
		t.Fatalf("demo --help lists no --db:\n%s", help)
	}
	db, _, _ := strings.Cut(help[i:], "\n  --d")
	for _, w := range []string{"temporary", "removed at exit", "kept after exit"} {
		if !strings.Contains(db, w) {
			t.Errorf("demo --help's --db does not say %q:\n%s", w, db)
		}
	}
	if strings.Contains(db, `"imagebadger.db"`) {
		t.Errorf("demo --help gives --db serve's default:\n%s", db)
	}
	c := demoCommand()
	cfg := defaultConfig()
	fs, _ := c.flagSet(cfg)
	if cfg.DB != "" {
		t.Errorf("demo's database without --db: %q, want empty (a temporary file)", cfg.DB)
	}
	if _, err := parseFlags(fs, []string{"--db", "imagebadger.db"}); err != nil || cfg.DB != "imagebadger.db" {
		t.Errorf("demo --db imagebadger.db: %q %v", cfg.DB, err)
	}
}

// TestFlagSetsStaySilent: a flag set never writes by itself (the flag
// package would print its usage on every error), so that run alone
// decides what is printed.
func TestFlagSetsStaySilent(t *testing.T) {
	for _, c := range commands() {
		fs, _ := c.flagSet(defaultConfig())
		if fs.Output() != io.Discard {
			t.Errorf("%s: the flag set writes to %v", c.name, fs.Output())
		}
		if fs.ErrorHandling() != flag.ContinueOnError {
			t.Errorf("%s: the flag set does not continue on error", c.name)
		}
	}
}
