// Command imagebadger is the whole service in one binary: the web service
// (serve, the default), one-off inspection of an image (inspect), tag listing
// (tags), what changed between two images (diff) and a self-contained
// demonstration (demo). All wiring happens here;
// the packages take explicit values and hold no global configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"imagebadger/analysis"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			msg, ok := analysis.PublicMessage(err)
			if !ok {
				msg = err.Error()
			}
			fmt.Fprintln(os.Stderr, "imagebadger:", msg)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// run is main without the process: it parses args (with environment
// variables as defaults) and runs one subcommand.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	cfg := defaultConfig()
	fs := flag.NewFlagSet("imagebadger "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	var jsonOut bool
	var platform string
	if cmd == "inspect" || cmd == "tags" || cmd == "diff" {
		fs.BoolVar(&jsonOut, "json", false, "print the JSON report instead of a table")
	}
	if cmd == "diff" {
		fs.StringVar(&platform, "platform", "", "the platform to compare, os/arch[/variant] (default linux/amd64)")
	}
	if err := cfg.fromEnv(fs, getenv); err != nil {
		return usageError{err.Error()}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if err := cfg.validate(); err != nil {
		return usageError{err.Error()}
	}
	switch cmd {
	case "serve":
		if fs.NArg() != 0 {
			return usageError{"serve takes no arguments"}
		}
		return serve(ctx, cfg, stderr)
	case "inspect", "tags":
		if fs.NArg() != 1 {
			arg := map[string]string{"inspect": "REFERENCE", "tags": "REPOSITORY"}[cmd]
			return usageError{fmt.Sprintf("usage: imagebadger %s [--json] %s", cmd, arg)}
		}
		tmp, err := os.MkdirTemp("", "imagebadger-"+cmd+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if cmd == "inspect" {
			return inspect(ctx, cfg, fs.Arg(0), jsonOut, stdout, tmp)
		}
		return tags(ctx, cfg, fs.Arg(0), jsonOut, stdout, tmp)
	case "diff":
		if fs.NArg() != 2 {
			return usageError{"usage: imagebadger diff [--json] [--platform P] FROM TO"}
		}
		tmp, err := os.MkdirTemp("", "imagebadger-diff-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		return diff(ctx, cfg, fs.Arg(0), fs.Arg(1), platform, jsonOut, stdout, tmp)
	case "demo":
		if fs.NArg() != 0 {
			return usageError{"demo takes no arguments"}
		}
		return runDemo(ctx, cfg, stdout, stderr)
	default:
		return usageError{fmt.Sprintf("unknown command %q (want serve, inspect, tags, diff or demo)", cmd)}
	}
}

// Config is every setting of docs/API.md's configuration table.
type Config struct {
	Addr                   string
	DB                     string
	BaseURL                string
	Watch                  string
	PollInterval           time.Duration
	HookToken              string
	AllowPrivateRegistries bool
	AllowPrivateWebhooks   bool
	InsecureRegistries     string
	RegistryTimeout        time.Duration
	RegistryConcurrency    int
}

func defaultConfig() *Config {
	return &Config{
		Addr:                ":8080",
		DB:                  "imagebadger.db",
		BaseURL:             "http://localhost:8080",
		PollInterval:        15 * time.Minute,
		RegistryTimeout:     20 * time.Second,
		RegistryConcurrency: 8,
	}
}

func (c *Config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address")
	fs.StringVar(&c.DB, "db", c.DB, "SQLite file path")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public URL used in links, badge snippets and webhook payloads")
	fs.StringVar(&c.Watch, "watch", c.Watch, "comma-separated repositories tracked continuously as base-image candidates")
	fs.DurationVar(&c.PollInterval, "poll-interval", c.PollInterval, "how often tracked tags are re-checked")
	fs.StringVar(&c.HookToken, "hook-token", c.HookToken, "bearer token for POST /hooks/registry; empty disables it")
	fs.BoolVar(&c.AllowPrivateRegistries, "allow-private-registries", c.AllowPrivateRegistries, "permit registries on loopback and private addresses")
	fs.BoolVar(&c.AllowPrivateWebhooks, "allow-private-webhooks", c.AllowPrivateWebhooks, "permit webhook targets on loopback and private addresses")
	fs.StringVar(&c.InsecureRegistries, "insecure-registries", c.InsecureRegistries, "comma-separated registry hosts spoken to over plain HTTP")
	fs.DurationVar(&c.RegistryTimeout, "registry-timeout", c.RegistryTimeout, "deadline for one registry request")
	fs.IntVar(&c.RegistryConcurrency, "registry-concurrency", c.RegistryConcurrency, "registry requests in flight at once, per registry")
}

// fromEnv sets each flag from its environment variable (IMAGEBADGER_ and the
// flag name in upper snake case); flags on the command line then override.
func (c *Config) fromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "json" || f.Name == "platform" {
			return
		}
		env := "IMAGEBADGER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func (c *Config) validate() error {
	if c.PollInterval < time.Second {
		return fmt.Errorf("--poll-interval %s is shorter than the 1s minimum", c.PollInterval)
	}
	if c.RegistryTimeout <= 0 {
		return fmt.Errorf("--registry-timeout must be positive")
	}
	if c.RegistryConcurrency < 1 {
		return fmt.Errorf("--registry-concurrency must be at least 1")
	}
	return nil
}

// list splits a comma-separated flag value.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
