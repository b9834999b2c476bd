// Command imagebadger is the whole service in one binary: the web service
// (serve, the default), one-off inspection of an image (inspect), tag listing
// (tags), a self-contained demonstration (demo), what changed between two
// images (diff) and moving a deployment's database between SQLite and
// PostgreSQL (copy-db). All wiring happens here;
// the packages take explicit values and hold no global configuration.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imagebadger:", message(err))
		os.Exit(exitCode(err))
	}
}

// usageError marks a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return 1
}

// command is one subcommand: its usage line, what it does, which groups of
// flags it takes, and how it runs once they are parsed.
type command struct {
	name, args, summary string
	// server: it takes the flags of a serving process (--addr, --db, …).
	server bool
	// flags, when set, registers the command's own flags instead of the
	// registry flags every other command takes (or, with registryFlags,
	// besides them).
	flags         func(fs *flag.FlagSet)
	registryFlags bool
	// output: it takes --json.
	output bool
	// nargs is the number of arguments it takes.
	nargs int
	run   func(ctx context.Context, inv invocation) error
}

// invocation is a parsed command line.
type invocation struct {
	cfg            *Config
	args           []string
	json           bool
	stdout, stderr io.Writer
}

// commands lists the subcommands, in the order help shows them.
func commands() []command {
	return []command{
		{name: "serve", summary: "the web service: pages, JSON API, badges, hooks, watcher and webhook delivery (the default)",
			server: true, run: func(ctx context.Context, inv invocation) error { return serve(ctx, inv.cfg, inv.stderr) }},
		{name: "inspect", args: "REFERENCE", summary: "inspect one image from its registry and print its report", output: true, nargs: 1,
			run: func(ctx context.Context, inv invocation) error {
				return inspect(ctx, inv.cfg, inv.args[0], inv.json, inv.stdout)
			}},
		{name: "tags", args: "REPOSITORY", summary: "list a repository's tags grouped by digest", output: true, nargs: 1,
			run: func(ctx context.Context, inv invocation) error {
				return tags(ctx, inv.cfg, inv.args[0], inv.json, inv.stdout)
			}},
		{name: "demo", summary: "serve an in-process registry seeded with a small family of images, for a look without network access",
			server: true, run: func(ctx context.Context, inv invocation) error { return runDemo(ctx, inv.cfg, inv.stdout, inv.stderr) }},
		diffCommand(),
		copyDBCommand(),
		checkBaseCommand(),
	}
}

// usage writes the overview that imagebadger --help prints.
func usage(w io.Writer) {
	fmt.Fprintln(w, "imagebadger: what is inside a container image, and when it changes")
	fmt.Fprintln(w, "\nUsage:\n  imagebadger [SUBCOMMAND] [FLAGS] [ARGS]\n\nSubcommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEvery flag also reads its environment variable (--poll-interval: IMAGEBADGER_POLL_INTERVAL).")
	fmt.Fprintln(w, "imagebadger SUBCOMMAND --help lists the subcommand's flags.")
}

// run is main without the process: it parses args (with environment
// variables, read through lookupEnv, as defaults) and runs one subcommand.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		usage(stdout)
		return nil
	}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		usage(stderr)
		return usageError{fmt.Sprintf("unknown subcommand %q", name)}
	}
	c := commands()[i]
	cfg := defaultConfig()
	fs := flag.NewFlagSet("imagebadger "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: imagebadger %s [FLAGS] %s\n\n%s.\n\nFlags (each also read from IMAGEBADGER_ and its name in upper case):\n",
			c.name, c.args, strings.ToUpper(c.summary[:1])+c.summary[1:])
		fs.PrintDefaults()
	}
	if c.flags == nil || c.registryFlags {
		cfg.register(fs, c.server)
	}
	if c.flags != nil {
		c.flags(fs)
	}
	inv := invocation{cfg: cfg, stdout: stdout, stderr: stderr}
	if c.output {
		fs.BoolVar(&inv.json, "json", false, "print the JSON answer of the API instead of a table")
	}
	if err := cfg.fromEnv(fs, lookupEnv); err != nil {
		return usageError{err.Error()}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		return usageError{err.Error()}
	}
	if err := cfg.validate(); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != c.nargs {
		return usageError{fmt.Sprintf("usage: imagebadger %s [FLAGS] %s", c.name, c.args)}
	}
	inv.args = fs.Args()
	if !c.output {
		return c.run(ctx, inv)
	}
	// A table is written cell by cell: one write to the terminal or pipe
	// at the end, not one system call per cell.
	out := bufio.NewWriter(stdout)
	inv.stdout = out
	err := c.run(ctx, inv)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
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
	// DockerHubAPI is Docker Hub's web API root; empty turns it off.
	DockerHubAPI string
	// RegistryEndpoints maps registries to the hosts their requests go to
	// ("docker.io=mirror.internal:5000"), parsed by endpoints.
	RegistryEndpoints string
}

func defaultConfig() *Config {
	return &Config{
		Addr:                ":8080",
		DB:                  "imagebadger.db",
		PollInterval:        15 * time.Minute,
		RegistryTimeout:     20 * time.Second,
		RegistryConcurrency: 8,
		DockerHubAPI:        "https://hub.docker.com",
	}
}

// register adds the flags of cfg to fs: the registry flags, and with
// server those of a serving process.
func (c *Config) register(fs *flag.FlagSet, server bool) {
	if server {
		fs.StringVar(&c.Addr, "addr", c.Addr, "listen address")
		fs.StringVar(&c.DB, "db", c.DB, "SQLite file path, or a postgres:// URL that selects PostgreSQL")
		fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public URL used in links, badge snippets and webhook payloads (default http:// and the --addr host and port)")
		fs.StringVar(&c.Watch, "watch", c.Watch, "comma-separated repositories tracked continuously as base-image candidates")
		fs.StringVar(&c.HookToken, "hook-token", c.HookToken, "bearer token for POST /hooks/registry; empty disables it")
		fs.BoolVar(&c.AllowPrivateWebhooks, "allow-private-webhooks", c.AllowPrivateWebhooks, "permit webhook targets on loopback and private addresses")
	}
	fs.DurationVar(&c.PollInterval, "poll-interval", c.PollInterval, "how often tracked tags are re-checked")
	fs.BoolVar(&c.AllowPrivateRegistries, "allow-private-registries", c.AllowPrivateRegistries, "permit registries on loopback and private addresses")
	fs.StringVar(&c.InsecureRegistries, "insecure-registries", c.InsecureRegistries, "comma-separated registry hosts spoken to over plain HTTP")
	fs.DurationVar(&c.RegistryTimeout, "registry-timeout", c.RegistryTimeout, "deadline for one registry request")
	fs.IntVar(&c.RegistryConcurrency, "registry-concurrency", c.RegistryConcurrency, "registry requests in flight at once, per registry")
	fs.StringVar(&c.DockerHubAPI, "dockerhub-api", c.DockerHubAPI, "Docker Hub's web API, for repository facts and bulk tag listing of docker.io images; empty turns it off")
	fs.StringVar(&c.RegistryEndpoints, "registry-endpoints", c.RegistryEndpoints, "comma-separated REGISTRY=HOST[:PORT] pairs: requests for REGISTRY go to HOST instead (a pull-through mirror of docker.io, say); credentials are those of HOST")
}

// fromEnv sets each flag from its environment variable (IMAGEBADGER_ and the
// flag name in upper snake case); flags on the command line then override.
// An empty variable counts as unset, except for the flags whose empty value
// means something (IMAGEBADGER_DOCKERHUB_API= turns the web API off).
func (c *Config) fromEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		// Not configuration: what one run of a command prints or compares.
		if f.Name == "json" || f.Name == "platform" {
			return
		}
		env := "IMAGEBADGER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookupEnv(env); ok && (v != "" || f.Name == "dockerhub-api") {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// validate checks cfg and fills what defaults from other settings: the
// base URL from the listen address.
func (c *Config) validate() error {
	if c.BaseURL == "" {
		c.BaseURL = baseURLFor(c.Addr)
	}
	if c.PollInterval < time.Second {
		return fmt.Errorf("--poll-interval %s is shorter than the 1s minimum", c.PollInterval)
	}
	if c.RegistryTimeout <= 0 {
		return fmt.Errorf("--registry-timeout must be positive")
	}
	if c.RegistryConcurrency < 1 {
		return fmt.Errorf("--registry-concurrency must be at least 1")
	}
	if c.DockerHubAPI != "" {
		u, err := url.Parse(c.DockerHubAPI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--dockerhub-api %q is not an http or https URL (empty turns it off)", c.DockerHubAPI)
		}
	}
	if _, err := endpoints(c.RegistryEndpoints); err != nil {
		return err
	}
	return nil
}

// endpoints parses --registry-endpoints.
func endpoints(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range list(s) {
		reg, host, ok := strings.Cut(pair, "=")
		reg, host = strings.TrimSpace(reg), strings.TrimSpace(host)
		if !ok || reg == "" || host == "" || strings.ContainsAny(host, "/ ") {
			return nil, fmt.Errorf("--registry-endpoints: %q is not REGISTRY=HOST[:PORT]", pair)
		}
		if reg == "index.docker.io" || reg == "registry-1.docker.io" {
			reg = analysis.DockerHub
		}
		out[reg] = host
	}
	return out, nil
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
