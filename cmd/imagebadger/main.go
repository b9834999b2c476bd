// Command imagebadger is the whole service in one binary: the web service
// (serve, the default), one-off inspection of an image (inspect), tag listing
// (tags), a self-contained demonstration (demo), what changed between two
// images (diff), moving a deployment's database between SQLite and
// PostgreSQL (copy-db), and what an operator runs beside the service: a
// snapshot of its database (backup), a container healthcheck (healthcheck)
// and the build (version). All wiring happens here;
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
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(ctx)
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
	// configure, when set, is called once the flags are registered, for a
	// command on which a flag of the configuration means something else
	// (demo's --db).
	configure func(cfg *Config, fs *flag.FlagSet)
	// noFlags: it takes no flags at all (version), not even the registry
	// flags.
	noFlags bool
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
	// build is the binary's own version, commit and date.
	build server.BuildInfo
}

// commands lists the subcommands, in the order help shows them.
func commands() []command {
	return []command{
		{name: "serve", summary: "the web service: pages, JSON API, badges, hooks, watcher and webhook delivery (the default)",
			server: true, run: func(ctx context.Context, inv invocation) error { return serve(ctx, inv.cfg, inv.build, inv.stderr) }},
		{name: "inspect", args: "REFERENCE", summary: "inspect one image from its registry and print its report", output: true, nargs: 1,
			run: func(ctx context.Context, inv invocation) error {
				return inspect(ctx, inv.cfg, inv.args[0], inv.json, inv.stdout)
			}},
		{name: "tags", args: "REPOSITORY", summary: "list a repository's tags grouped by digest", output: true, nargs: 1,
			run: func(ctx context.Context, inv invocation) error {
				return tags(ctx, inv.cfg, inv.args[0], inv.json, inv.stdout)
			}},
		demoCommand(),
		diffCommand(),
		copyDBCommand(),
		checkBaseCommand(),
		backupCommand(),
		healthcheckCommand(),
		contentsCommand(),
		{name: "version", summary: "the version, commit and build date of this binary (also --version)", noFlags: true,
			run: func(_ context.Context, inv invocation) error { return printVersion(inv.stdout, inv.build) }},
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
	fmt.Fprintln(w, "\nEvery flag also reads its environment variable (--poll-interval: IMAGEBADGER_POLL_INTERVAL),")
	fmt.Fprintln(w, "or the file named by that variable with _FILE appended (IMAGEBADGER_HOOK_TOKEN_FILE=/run/secrets/token).")
	fmt.Fprintln(w, "imagebadger SUBCOMMAND --help lists the subcommand's flags; imagebadger --version names this build.")
}

// commandUsage writes what imagebadger SUBCOMMAND --help prints.
func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	line := "imagebadger " + c.name
	if !c.noFlags {
		line += " [FLAGS]"
	}
	if c.args != "" {
		line += " " + c.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", line, strings.ToUpper(c.summary[:1])+c.summary[1:])
	if c.noFlags {
		return
	}
	fmt.Fprintln(w, "\nFlags (each also read from IMAGEBADGER_ and its name in upper case, or from the file that")
	fmt.Fprintln(w, "variable with _FILE appended names):")
	printFlags(w, fs)
}

// printFlags writes the flags of fs as flag.PrintDefaults does, but
// written --name, as every message and document writes them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, text := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if typ != "" {
			head += " " + typ
		}
		fmt.Fprintf(w, "%s\n    \t%s", head, strings.ReplaceAll(text, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					fmt.Fprintf(w, " (default %q)", f.DefValue)
					break
				}
			}
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// run is main without the process: it parses args (with environment
// variables, read through lookupEnv, as defaults) and runs one subcommand.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	build := currentBuild()
	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "-help", "--help":
			if len(args) > 1 && args[0] == "help" {
				// imagebadger help inspect: that subcommand's help.
				return run(ctx, []string{args[1], "--help"}, lookupEnv, stdout, stderr)
			}
			usage(stdout)
			return nil
		case "-version", "--version":
			return printVersion(stdout, build)
		}
	}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		msg := fmt.Sprintf("unknown subcommand %q", name)
		if near := nearest(name, commandNames()); near != "" {
			msg += "; did you mean " + near + "?"
		}
		return usageError{msg + " (imagebadger --help lists the subcommands)"}
	}
	c := commands()[i]
	cfg := defaultConfig()
	fs, inv := c.flagSet(cfg)
	inv.stdout, inv.stderr, inv.build = stdout, stderr, build
	if err := cfg.fromEnv(fs, lookupEnv); err != nil {
		return usageError{err.Error()}
	}
	rest, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(stdout, c, fs)
		return nil
	}
	if u, ok := err.(unknownFlag); ok {
		u.owners = flagOwners(u.name)
		err = u
	}
	if err != nil {
		return usageError{fmt.Sprintf("%s: %v (imagebadger %s --help lists its flags)", c.name, err, c.name)}
	}
	if err := cfg.validate(); err != nil {
		return usageError{err.Error()}
	}
	if len(rest) != c.nargs {
		return arityError(c, rest)
	}
	inv.args = rest
	if !c.output {
		return c.run(ctx, *inv)
	}
	// A table is written cell by cell: one write to the terminal or pipe
	// at the end, not one system call per cell.
	out := bufio.NewWriter(stdout)
	inv.stdout = out
	err = c.run(ctx, *inv)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

// flagSet registers the flags c takes on a new flag set, bound to cfg and
// to the invocation it returns. The set writes nothing itself: run and
// commandUsage say what there is to say, once.
func (c command) flagSet(cfg *Config) (*flag.FlagSet, *invocation) {
	fs := flag.NewFlagSet("imagebadger "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	inv := &invocation{cfg: cfg}
	if c.noFlags {
		return fs, inv
	}
	if c.flags == nil || c.registryFlags {
		cfg.register(fs, c.server)
	}
	if c.flags != nil {
		c.flags(fs)
	}
	if c.output {
		fs.BoolVar(&inv.json, "json", false, "print the JSON answer of the API instead of a table")
	}
	if c.configure != nil {
		c.configure(cfg, fs)
	}
	return fs, inv
}

// commandNames lists the subcommands, for suggestions.
func commandNames() []string {
	var out []string
	for _, c := range commands() {
		out = append(out, c.name)
	}
	return out
}

// flagOwners names the subcommands that take the flag name, for the
// message about a flag given to one that does not.
func flagOwners(name string) []string {
	var out []string
	for _, c := range commands() {
		if fs, _ := c.flagSet(defaultConfig()); fs.Lookup(name) != nil {
			out = append(out, c.name)
		}
	}
	return out
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
	// LogLevel is debug, info, warn or error; LogFormat json or text.
	LogLevel, LogFormat string
	// MetricsAddr, when set, is where /metrics is served instead of Addr.
	MetricsAddr string
	// TrustedProxies are the CIDRs of reverse proxies whose forwarding
	// headers name the client (server.ParseTrustedProxies reads them).
	TrustedProxies string
	// ContentsMaxBytes and ContentsConcurrency bound contents analyses.
	ContentsMaxBytes    int64
	ContentsConcurrency int
	// Trust names the signature trust rules file; empty judges no signature.
	Trust string
	// SignIn is who may sign in and how (see signin.go).
	SignIn SignIn
	// PrivateImages is who sees images read with credentials (see
	// images.Policy): signed-in or everyone.
	PrivateImages string
}

// privatePolicies are the words --private-images takes.
func privatePolicies() []string {
	return []string{string(images.PrivateToSignedIn), string(images.PrivateToEveryone)}
}

// logLevels are the words --log-level takes, logFormats those of
// --log-format.
func logLevels() []string  { return []string{"debug", "info", "warn", "error"} }
func logFormats() []string { return []string{"json", "text"} }

func defaultConfig() *Config {
	return &Config{
		Addr:                ":8080",
		DB:                  "imagebadger.db",
		PollInterval:        15 * time.Minute,
		RegistryTimeout:     20 * time.Second,
		RegistryConcurrency: 8,
		DockerHubAPI:        "https://hub.docker.com",
		LogLevel:            "info",
		LogFormat:           "json",
		ContentsMaxBytes:    defaultContentsMaxBytes,
		ContentsConcurrency: defaultContentsConcurrency,
		PrivateImages:       string(images.DefaultPrivateImages),
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
		fs.Var(&choice{val: &c.LogLevel, allowed: logLevels()}, "log-level", "`level` of the log: debug, info, warn or error; requests are logged at info, except badges, /healthz, /readyz and /metrics, at debug")
		fs.Var(&choice{val: &c.LogFormat, allowed: logFormats()}, "log-format", "`format` of the log lines: json or text (log/slog's handlers)")
		fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve /metrics on this address instead of --addr (where it then answers 404)")
		fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "comma-separated CIDRs of reverse proxies whose Forwarded or X-Forwarded-For names the client (the right-most address outside them); rate limits and logs then use that address")
		c.registerContents(fs)
		fs.StringVar(&c.Trust, "trust", c.Trust, "`file` of signature trust rules (cosign keys per repository pattern); empty leaves every signature unjudged")
		c.registerSignIn(fs)
		fs.Var(&choice{val: &c.PrivateImages, allowed: privatePolicies()}, "private-images", "`policy`: who sees images read with credentials, signed-in (people signed in and token holders) or everyone")
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
// flag name in upper snake case) or from the file its _FILE form names (see
// envValue); flags on the command line then override. A value that is not
// of the flag's form names the variable and the form wanted.
func (c *Config) fromEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if !fromEnvironment(f.Name) {
			return
		}
		v, source, fromFile, ok, err := envValue(f.Name, lookupEnv)
		if err != nil {
			errs = append(errs, err)
			return
		}
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			if fromFile {
				// A secret's value is not repeated in a message.
				errs = append(errs, fmt.Errorf("%s: the value read is not %s", source, wants(f, err)))
			} else {
				errs = append(errs, fmt.Errorf("%s=%q: want %s", source, v, wants(f, err)))
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
	if err := c.validateContents(); err != nil {
		return err
	}
	if !slices.Contains(logLevels(), c.LogLevel) {
		return fmt.Errorf("--log-level %q: want %s", c.LogLevel, orList(logLevels(), "or"))
	}
	if !slices.Contains(logFormats(), c.LogFormat) {
		return fmt.Errorf("--log-format %q: want %s", c.LogFormat, orList(logFormats(), "or"))
	}
	if store.IsKeywordDSN(c.DB) {
		// Refused before anything opens or logs it (see store.ErrKeywordDSN).
		return fmt.Errorf("--db: %w", store.ErrKeywordDSN)
	}
	if _, err := server.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if _, err := images.ParsePolicy(c.PrivateImages); err != nil {
		return fmt.Errorf("--private-images %q: want %s", c.PrivateImages, orList(privatePolicies(), "or"))
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
