// Package stack builds the service for in-process tests, the one way the
// server, images and notify tests do it: a store on either engine, the
// registry client through netguard, images.Service, and on request the
// notification side (fan-out, delivery worker, watcher, subscriptions) and
// the HTTP server behind httptest, its JSON answers checked against
// docs/openapi.yaml. Every part is the production one, wired as serve wires
// it; the options only choose what a test needs and set the clocks and
// limits it wants to control.
//
// A PostgreSQL store lives on a cluster shared by the test process (see
// Main), one new database per stack. EachEngine runs a test on both
// engines.
package stack

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/internal/testing/apispec"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/pgtest"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// Engines of a stack's store.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Options choose what a stack runs; the zero value is the read path alone
// (store, registry client, images.Service) on SQLite, without a server.
type Options struct {
	// Engine is SQLite (the default) or Postgres.
	Engine string
	// DB, when set, is the database to open (a SQLite path or a postgres://
	// URL) instead of a new one: a second stack on the same database is a
	// second process of one deployment.
	DB string
	// Store, when set, is used as it is (and left open): a second service
	// on one store is the service restarted.
	Store *store.Store
	// Timeout is the registry client's per-request deadline (default 5 s).
	Timeout time.Duration
	// Endpoints maps registries to the hosts their requests go to
	// (registry.Options.Endpoints).
	Endpoints map[string]string
	// Keychain gives the service registry credentials; nil gives none
	// (the host's Docker config is never read in tests).
	Keychain authn.Keychain
	// Registry starts a registry for the test (faultreg: go-containerregistry's
	// in-process one, recording requests and misbehaving on demand).
	Registry bool
	// Watch names repositories tracked as bases, as --watch does (the home
	// page lists them, the watcher polls them): in the stack's Registry
	// when it has one.
	Watch []string
	// FreshFor is how long a tag's resolution is fresh (default an hour).
	FreshFor time.Duration
	// StrictRegistries keeps netguard's default policy: loopback and
	// private registries refused. The default allows them, since test
	// registries listen on loopback.
	StrictRegistries bool
	// AllowPrivateWebhooks lets webhooks reach loopback receivers.
	AllowPrivateWebhooks bool
	// Images tunes images.Service beyond the fields above (Hub, Now,
	// RetryFailedAfter, …); Client, Store and FreshFor are the stack's.
	Images images.Options
	// Notify runs the notification side: the fan-out, the delivery worker
	// (polling every 20 ms) and subscriptions; Watcher also runs the
	// watcher's polls (it is built, for the hooks, whenever Notify is set).
	Notify, Watcher bool
	// WatcherNow is the watcher's clock; nil is time.Now.
	WatcherNow func() time.Time
	// PerClient bounds the subscriptions one client may create.
	PerClient ratelimit.Limit
	// Server serves the HTTP routes; its Images, Store, Logger,
	// Subscriptions and Watcher are the stack's, Metrics a new registry
	// unless given, BaseURL defaults to http://imagebadger.test, and the
	// other fields are used as given.
	Server *server.Options
	// Auth configures sign-in (the stack's store and logger are used; its
	// BaseURL defaults to the test server's own URL, where the OpenID
	// callback is reached); nil is a service without sign-in.
	Auth *auth.Options
	// Log receives the service's JSON log at LogLevel (default info); nil
	// discards it.
	Log      io.Writer
	LogLevel slog.Level
}

// Stack is a running service.
type Stack struct {
	// URL is the httptest server's, when Options.Server is set.
	URL string
	// Registry is the test's registry, when Options.Registry is set.
	Registry *faultreg.Registry
	// Watched are Options.Watch's repositories.
	Watched []analysis.Repository
	Store   *store.Store
	Client  *registry.Client
	Images  *images.Service
	Server  *server.Server
	Builder *notify.Builder
	FanOut  *notify.FanOut
	Worker  *notify.Worker
	Watcher *notify.Watcher
	Subs    *notify.Subscriptions
	// Auth is the sign-in of Options.Auth.
	Auth *auth.Auth
}

// New builds and starts a stack; everything stops when the test ends.
func New(tb testing.TB, o Options) *Stack {
	tb.Helper()
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.FreshFor <= 0 {
		o.FreshFor = time.Hour
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	logger := slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: o.LogLevel}))
	s := &Stack{}
	if o.Registry {
		s.Registry = faultreg.Start(tb)
	}
	for _, name := range o.Watch {
		if s.Registry != nil {
			name = s.Registry.Host + "/" + name
		}
		repo, err := analysis.ParseRepository(name)
		if err != nil {
			tb.Fatal(err)
		}
		s.Watched = append(s.Watched, repo)
	}
	switch {
	case o.Store != nil:
		s.Store = o.Store
	case o.DB != "":
		s.Store = Open(tb, o.DB)
	default:
		s.Store = OpenStore(tb, o.Engine)
	}
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain()
	}
	client, err := registry.New(registry.Options{
		Transport: netguard.New(!o.StrictRegistries).Transport(),
		Timeout:   o.Timeout,
		Keychain:  o.Keychain,
		Endpoints: o.Endpoints,
	})
	if err != nil {
		tb.Fatal(err)
	}
	s.Client = client
	opts := o.Images
	opts.Client, opts.Store, opts.FreshFor = client, s.Store, o.FreshFor
	if opts.Logger == nil {
		opts.Logger = logger
	}
	s.Images = images.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := s.Images.Close(cctx); err != nil {
			tb.Error(err)
		}
	})
	baseURL := "http://imagebadger.test"
	if o.Server != nil && o.Server.BaseURL != "" {
		baseURL = o.Server.BaseURL
	}
	s.Builder = notify.NewBuilder(baseURL)
	if o.Notify || o.Watcher {
		guard := netguard.New(o.AllowPrivateWebhooks)
		s.Worker = notify.NewWorker(notify.WorkerOptions{Store: s.Store, Transport: guard.Transport(), PollInterval: 20 * time.Millisecond,
			Logger: logger, Builder: s.Builder, Differ: s.Images.System()})
		s.FanOut = notify.NewFanOut(notify.FanOutOptions{Store: s.Store, Images: s.Images, Builder: s.Builder, Wake: s.Worker.Wake,
			Logger: logger, Lease: 2 * time.Second, CatchUp: 100 * time.Millisecond})
		s.Watcher = notify.NewWatcher(notify.WatcherOptions{Images: s.Images.System(), Store: s.Store, Interval: time.Hour, Logger: logger,
			Now: o.WatcherNow, Watched: s.Watched})
		s.Subs = notify.NewSubscriptions(notify.SubscriptionsOptions{Store: s.Store, Images: s.Images.System(), Builder: s.Builder,
			Worker: s.Worker, Guard: guard, PerClient: o.PerClient})
		wg.Go(func() { _ = s.Worker.Run(ctx) })
		wg.Go(func() { _ = s.FanOut.Run(ctx) })
		if o.Watcher {
			wg.Go(func() { _ = s.Watcher.Run(ctx) })
		}
	}
	if o.Server != nil {
		cfg := *o.Server
		cfg.Images, cfg.Store, cfg.Logger, cfg.BaseURL = s.Images, s.Store, logger, baseURL
		if cfg.Metrics == nil {
			cfg.Metrics = prometheus.NewRegistry()
		}
		if len(s.Watched) > 0 {
			cfg.Watched = s.Watched
		}
		if o.Notify || o.Watcher {
			cfg.Subscriptions, cfg.Watcher = s.Subs, s.Watcher
		}
		// The listener is made before the server starts, so that sign-in
		// knows the address its callback is reached at.
		hs := httptest.NewUnstartedServer(nil)
		hostURL := "http://" + hs.Listener.Addr().String()
		if o.Auth != nil {
			ao := *o.Auth
			ao.Store = s.Store
			if ao.Logger == nil {
				ao.Logger = logger
			}
			if ao.BaseURL == "" {
				ao.BaseURL = hostURL
			}
			a, err := auth.New(ao)
			if err != nil {
				tb.Fatal(err)
			}
			s.Auth, cfg.Auth = a, a
		}
		s.Server = server.New(cfg)
		hs.Config.Handler = apispec.Handler(tb, s.Server)
		hs.Start()
		tb.Cleanup(hs.Close)
		s.URL = hs.URL
	}
	return s
}

// Settle waits until the fan-out has told everything the change log holds
// (bounded: it fails the test after 10 s), so a test can look at the
// deliveries of what it just recorded.
func (s *Stack) Settle(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		behind, err := s.Store.FanOutBehind(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if !behind {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("the fan-out did not catch up with the change log within 10 s")
		}
		s.FanOut.Kick()
		time.Sleep(5 * time.Millisecond)
	}
}

// OpenStore opens a new, empty store on engine (SQLite when empty): a file
// in tb.TempDir(), or a new database on the shared PostgreSQL cluster.
// It is closed when the test ends.
func OpenStore(tb testing.TB, engine string) *store.Store {
	tb.Helper()
	return Open(tb, NewDatabase(tb, engine))
}

// NewDatabase names a new, empty database on engine (SQLite when empty).
func NewDatabase(tb testing.TB, engine string) string {
	tb.Helper()
	switch engine {
	case "", SQLite:
		return filepath.Join(tb.TempDir(), "ib.db")
	case Postgres:
		return sharedDatabase(tb)
	}
	tb.Fatalf("stack: unknown engine %q", engine)
	return ""
}

// Open opens the store at dsn, closed when the test ends.
func Open(tb testing.TB, dsn string) *store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// Dump is everything a backup of the database at dsn holds: for
// PostgreSQL pg_dump's dump, for SQLite the bytes of the database file and
// its write-ahead log (free pages and all), so that a test can look for
// what must never be stored in clear.
func Dump(tb testing.TB, dsn string) []byte {
	tb.Helper()
	if store.IsPostgres(dsn) {
		if shared.cluster == nil {
			tb.Fatal("stack: Dump of a PostgreSQL database this process's cluster did not make")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := shared.cluster.Dump(ctx, dsn)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	var out []byte
	for _, f := range []string{dsn, dsn + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// EachEngine runs f as two subtests, "sqlite" and "postgres", each given
// its engine for Options.Engine or OpenStore: every test of what is stored
// or sent runs on both.
func EachEngine(t *testing.T, f func(t *testing.T, engine string)) {
	t.Helper()
	for _, e := range []string{SQLite, Postgres} {
		t.Run(e, func(t *testing.T) { f(t, e) })
	}
}

// shared is the PostgreSQL cluster of the test process, started by the
// first stack on PostgreSQL and stopped by Main.
var shared struct {
	once    sync.Once
	cluster *pgtest.Cluster
	err     error
}

func sharedDatabase(tb testing.TB) string {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.cluster, shared.err = pgtest.Start(ctx, pgtest.Options{})
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := shared.cluster.NewDatabase(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return dsn
}

// Main runs a package's tests and then stops the shared PostgreSQL
// cluster, if one was started. A package whose tests use Postgres calls it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	os.Exit(code)
}
