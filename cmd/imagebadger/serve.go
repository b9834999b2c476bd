package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/netguard"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/trust"
)

// repositories parses the --watch list.
func repositories(s string) ([]analysis.Repository, error) {
	var out []analysis.Repository
	for _, r := range list(s) {
		repo, err := analysis.ParseRepository(r)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--watch: %v", err)}
		}
		out = append(out, repo)
	}
	return out, nil
}

// newClient builds the registry client with the network policy of cfg.
// Credentials come from the Docker config (go-containerregistry's default
// keychain: $DOCKER_CONFIG/config.json, else ~/.docker/config.json, with
// auths, credHelpers and credsStore).
func newClient(cfg *Config) (*registry.Client, error) {
	eps, err := endpoints(cfg.RegistryEndpoints)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return registry.New(registry.Options{
		Transport:   netguard.New(cfg.AllowPrivateRegistries).Transport(),
		Timeout:     cfg.RegistryTimeout,
		Insecure:    list(cfg.InsecureRegistries),
		Concurrency: cfg.RegistryConcurrency,
		Endpoints:   eps,
	})
}

// newHub builds the Docker Hub web API client of cfg, through the same
// network policy as the registries; nil when --dockerhub-api is empty.
func newHub(cfg *Config) (*registry.Hub, error) {
	if cfg.DockerHubAPI == "" {
		return nil, nil
	}
	return registry.NewHub(registry.HubOptions{
		BaseURL:   cfg.DockerHubAPI,
		Transport: netguard.New(cfg.AllowPrivateRegistries).Transport(),
		Timeout:   cfg.RegistryTimeout,
	})
}

// listener is one address serve answers on: the main one, and the metrics
// one of --metrics-addr.
type listener struct {
	name, addr string
	hs         *http.Server
	ln         net.Listener
}

// newLogger is the service's log: log/slog's JSON or text handler on w,
// at the level --log-level names.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: want %s", level, orList(logLevels(), "or"))}
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: want %s", format, orList(logFormats(), "or"))}
}

// serve runs the web service until ctx is cancelled (SIGINT or SIGTERM),
// then stops accepting requests, lets those in flight finish for up to 20
// seconds, stops the metrics listener (so the drain can still be scraped),
// stops what writes to the database (the watcher, the background
// inspections, the fan-out, the delivery worker, in that order) and closes
// it last.
func serve(ctx context.Context, cfg *Config, build server.BuildInfo, logw io.Writer) error {
	log, err := newLogger(logw, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	hub, err := newHub(cfg)
	if err != nil {
		return err
	}
	watch, err := repositories(cfg.Watch)
	if err != nil {
		return err
	}
	var verifier registry.Verifier
	if cfg.Trust != "" {
		rules, err := trust.Load(cfg.Trust)
		if err != nil {
			return fmt.Errorf("--trust: %w", err)
		}
		verifier = rules
	}
	signIn, err := newAuth(cfg, st, log)
	if err != nil {
		return err
	}
	if signIn == nil {
		log.Info("no sign-in configured", "hint", "--oidc-issuer or --auth-proxy-header let people sign in")
	} else {
		log.Info("sign-in configured", "oidc_issuer", cfg.SignIn.OIDCIssuer, "auth_proxy_header", cfg.SignIn.AuthProxyHeader,
			"auth_proxy_trusted", cfg.SignIn.AuthProxyTrusted)
	}
	policy, err := images.ParsePolicy(cfg.PrivateImages)
	if err != nil {
		return err
	}
	svc := images.New(images.Options{Client: client, Hub: hub, Store: st, FreshFor: cfg.PollInterval, Logger: log, PrivateImages: policy, Verifier: verifier})
	logPolicy(log, policy)
	n, err := svc.LoadIndex(ctx)
	if err != nil {
		return err
	}
	log.Info("parent index loaded", "images", n)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	webhookGuard := netguard.New(cfg.AllowPrivateWebhooks)
	// Links in payloads and pings point at the public URL.
	events := notify.NewBuilder(cfg.BaseURL)
	worker := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: webhookGuard.Transport(), Logger: log, Metrics: reg,
		Builder: events, Differ: svc.System()})
	// Moves are recorded with their change, nothing more; the fan-out tells
	// them, woken by each commit (and, on PostgreSQL, by other processes').
	fanOut := notify.NewFanOut(notify.FanOutOptions{Store: st, Images: svc, Builder: events, Wake: worker.Wake, Logger: log})
	watcher := notify.NewWatcher(notify.WatcherOptions{Images: svc.System(), Store: st, Watched: watch, Interval: cfg.PollInterval, Logger: log})
	subs := notify.NewSubscriptions(notify.SubscriptionsOptions{Store: st, Images: svc.System(), Builder: events, Worker: worker, Guard: webhookGuard})
	watchCtx, stopWatcher := context.WithCancel(context.WithoutCancel(ctx))
	fanCtx, stopFanOut := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	watcherDone, fanOutDone, workerDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcherDone)
		if err := watcher.Run(watchCtx); err != nil {
			log.Error("watcher stopped", "err", err)
		}
	}()
	go func() {
		defer close(fanOutDone)
		if err := fanOut.Run(fanCtx); err != nil {
			log.Error("fan-out stopped", "err", err)
		}
	}()
	go func() {
		defer close(workerDone)
		if err := worker.Run(workCtx); err != nil {
			log.Error("webhook worker stopped", "err", err)
		}
	}()
	// What writes to the database stops in the order the work flows: the
	// watcher and the background inspections (which record moves), the
	// fan-out (which tells them), the worker (which sends what it wrote).
	defer func() {
		stopWatcher()
		<-watcherDone
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if err := svc.Close(cctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
		stopFanOut()
		<-fanOutDone
		stopWorker()
		<-workerDone
	}()

	// Contents analyses stop before the store closes; a layer cut short
	// leaves only a lease that runs out.
	contentsSvc := contents.New(contents.Options{Client: client, Store: st, MaxBytes: cfg.ContentsMaxBytes,
		Concurrency: cfg.ContentsConcurrency, Logger: log})
	defer contentsSvc.Close()
	trusted, err := server.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	srv := server.New(server.Options{
		TrustedProxies:  trusted,
		Contents:        contentsSvc,
		Auth:            signIn,
		Subscriptions:   subs,
		Watcher:         watcher,
		HookToken:       cfg.HookToken,
		Images:          svc,
		Store:           st,
		Logger:          log,
		Metrics:         reg,
		BaseURL:         cfg.BaseURL,
		Watched:         watch,
		SeparateMetrics: cfg.MetricsAddr != "",
		Build:           build,
	})
	// Both listeners are opened before either serves, so a taken port
	// stops the start rather than leaving half a service.
	listeners := []listener{{name: "main", addr: cfg.Addr, hs: server.HTTPServer(srv, log)}}
	if cfg.MetricsAddr != "" {
		listeners = append(listeners, listener{name: "metrics", addr: cfg.MetricsAddr, hs: server.HTTPServer(srv.MetricsHandler(), log)})
	}
	for i := range listeners {
		l := &listeners[i]
		if l.ln, err = net.Listen("tcp", l.addr); err != nil {
			for _, opened := range listeners[:i] {
				opened.ln.Close()
			}
			return fmt.Errorf("listen on %s: %w", l.addr, err)
		}
	}
	attrs := []any{"addr", listeners[0].ln.Addr().String(), "db", store.Redacted(cfg.DB), "base_url", cfg.BaseURL, "version", build.Version,
		"fan_out", fanOut.Owner()}
	if len(listeners) > 1 {
		attrs = append(attrs, "metrics_addr", listeners[1].ln.Addr().String())
	}
	if len(trusted) > 0 {
		attrs = append(attrs, "trusted_proxies", cfg.TrustedProxies)
	}
	log.Info("imagebadger serving", attrs...)
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			if err := l.hs.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s on %s: %w", l.name, l.addr, err)
			}
		}()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// In order: the main listener drains its requests, then the metrics
	// listener, which could be scraped meanwhile, stops too.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	for _, l := range listeners {
		if err := l.hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = errors.Join(serveErr, fmt.Errorf("shut down the %s listener: %w", l.name, err))
		}
		log.Info("stopped serving", "listener", l.name, "addr", l.ln.Addr().String())
	}
	return serveErr
}

// logPolicy says at start who sees private images, so an operator knows
// whether the images the service's credentials open are shown to anyone.
func logPolicy(log *slog.Logger, policy images.Policy) {
	switch policy {
	case images.PrivateToEveryone:
		log.Warn("private images are shown to everyone", "private_images", string(policy),
			"hint", "images read with credentials are shown to anyone who can reach the service; only the network protects them")
	default:
		log.Info("private images are shown only to signed-in people and token holders", "private_images", string(policy),
			"hint", "without sign-in configured that is nobody; --private-images=everyone shows them to all")
	}
}
