package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/imagebadger/imagebadger/internal/demo"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// demoCommand is demo: serve's flags, but --db means what the demo does
// with it (see runDemo), and it says so in --help.
func demoCommand() command {
	return command{
		name:    "demo",
		summary: "serve an in-process registry seeded with a small family of images, for a look without network access",
		server:  true,
		configure: func(cfg *Config, fs *flag.FlagSet) {
			cfg.DB = ""
			f := fs.Lookup("db")
			f.DefValue = ""
			f.Usage = "the database the demo's history is written into and served from; given, it is kept after exit, " +
				"though the demo's registry (on a new loopback port each run) is not (default: a temporary SQLite file, removed at exit)"
		},
		run: func(ctx context.Context, inv invocation) error {
			return runDemo(ctx, inv.cfg, inv.build, inv.stdout, inv.stderr)
		},
	}
}

// runDemo starts an in-process registry, pushes the demo family into it,
// lets a database watch that family change over a few (simulated) weeks, and
// then serves against both until ctx ends, so every page has something to
// show without network access. Unless --db is given, the database is a
// temporary file removed at exit; a given one keeps the demo's rows.
// Private registries are allowed (the demo's is on loopback), and --watch
// defaults to the demo family.
func runDemo(ctx context.Context, cfg *Config, build server.BuildInfo, stdout, stderr io.Writer) error {
	reg, err := demo.StartRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	if cfg.DB == "" {
		dir, err := os.MkdirTemp("", "imagebadger-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.DB = filepath.Join(dir, "demo.db")
	}
	// The demo registry is on loopback; nothing else changes policy.
	cfg.AllowPrivateRegistries = true
	if cfg.Watch == "" {
		cfg.Watch = strings.Join(reg.Watched(), ",")
	}

	fmt.Fprintf(stderr, "imagebadger demo: registry on %s, seeding %s\n", reg.Host, cfg.DB)
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	client, err := newClient(cfg)
	if err != nil {
		st.Close()
		return err
	}
	if err := reg.Seed(ctx, st, client); err != nil {
		st.Close()
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imagebadger demo: open %s/ (for example %s/images/%s)\n", cfg.BaseURL, cfg.BaseURL, reg.Ref(demo.App+":2.3"))
	return serve(ctx, cfg, build, stderr)
}

// baseURLFor is the URL a browser on this machine reaches addr at: the
// default of --base-url.
func baseURLFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
