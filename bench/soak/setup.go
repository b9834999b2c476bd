package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/serveproc"
)

// hookToken is imagebadger's --hook-token in the run.
const hookToken = "soak-hook-token"

// Subscriptions are created from several loopback source addresses, as the
// service allows each client address 10 per hour.
const (
	subscriptionsPerAddress = 10
	maxSubscriptions        = 200
)

// digestsPerStormRepo is how many images the tags of a storm repository are
// spread over (and moved between).
const digestsPerStormRepo = 3

// movedTags is how many tags of each storm repository the pusher moves; the
// others stay put.
const movedTags = 8

// env is what the load runs against.
type env struct {
	registry    string // "127.0.0.1:PORT" of the distribution registry (pushes go here)
	registryLog string // its log file
	proxy       string // "127.0.0.1:PORT" of the latency proxy (imagebadger's registry)
	server      *serveproc.Proc
	receiver    *receiver
	// storm holds each storm repository's images and where its moved tags
	// point, for the pusher.
	storm []stormRepo
	// familyRefs and stormRefs are the references the traffic reads, on the
	// proxy's address.
	familyRefs, stormRefs []string
	subs                  int // subscriptions created
}

// stormRepo is one storm repository as the pusher knows it.
type stormRepo struct {
	name   string // "soak/storm-03"
	images []v1.Image
	at     map[string]int // tag → index in images
}

func (r stormRepo) tag(i int) string { return fmt.Sprintf("t%02d", i) }

// setup starts everything the load needs. cleanup is always safe to call.
func setup(ctx context.Context, s settings, dir string, out io.Writer) (*env, func(), error) {
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	e := &env{}

	fmt.Fprintln(out, "setup: starting the distribution registry and a", s.delay, "latency proxy…")
	reg, err := distreg.Start(ctx, distreg.Options{Dir: filepath.Join(dir, "registry")})
	if errors.Is(err, distreg.ErrNotInstalled) {
		return nil, cleanup, fmt.Errorf("%w: run `make deps`", err)
	}
	if err != nil {
		return nil, cleanup, err
	}
	stops = append(stops, reg.Stop)
	e.registry, e.registryLog = reg.Addr, reg.LogPath
	proxy, stopProxy, err := distreg.LatencyProxy(reg.Addr, s.delay)
	if err != nil {
		return nil, cleanup, err
	}
	stops = append(stops, stopProxy)
	e.proxy = proxy

	fmt.Fprintf(out, "setup: pushing the family and %d storm repositories of %d tags…\n", s.stormRepos, s.stormTags)
	if err := e.pushFamily(ctx); err != nil {
		return nil, cleanup, fmt.Errorf("push the family: %w\nregistry log:\n%s", err, reg.Log())
	}
	if err := e.pushStorm(ctx, s.stormRepos, s.stormTags); err != nil {
		return nil, cleanup, fmt.Errorf("push the storm repositories: %w\nregistry log:\n%s", err, reg.Log())
	}

	if e.receiver, err = startReceiver(); err != nil {
		return nil, cleanup, err
	}
	stops = append(stops, e.receiver.close)

	bin := s.bin
	if bin == "" {
		fmt.Fprintln(out, "setup: building ./cmd/imagebadger…")
		if bin, err = serveproc.Build(ctx, dir); err != nil {
			return nil, cleanup, err
		}
	}
	var watch []string
	for _, r := range e.storm {
		watch = append(watch, e.proxy+"/"+r.name)
	}
	args := []string{"--allow-private-registries", "--allow-private-webhooks",
		"--poll-interval", s.pollInterval.String(), "--hook-token", hookToken, "--watch", strings.Join(watch, ",")}
	if e.server, err = serveproc.Start(ctx, bin, filepath.Join(dir, "imagebadger.db"), filepath.Join(dir, "server.log"), args); err != nil {
		return nil, cleanup, err
	}
	stops = append(stops, e.server.Stop)
	fmt.Fprintf(out, "setup: imagebadger serve on %s (pid %d), watching %d repositories every %s\n",
		e.server.Addr, e.server.PID(), len(watch), s.pollInterval)

	fmt.Fprintln(out, "setup: warming (every report, page and badge of the traffic read once)…")
	if err := e.warm(ctx); err != nil {
		return nil, cleanup, fmt.Errorf("warm: %w\nserver log: %s", err, e.server.Tail())
	}
	fmt.Fprintf(out, "setup: %d webhook subscriptions to storm tags…\n", s.subscriptions)
	if err := e.subscribe(ctx, s.subscriptions); err != nil {
		return nil, cleanup, fmt.Errorf("subscribe: %w\nserver log: %s", err, e.server.Tail())
	}
	return e, cleanup, nil
}

// image returns a linux/amd64 image of n random layers on top of base (nil
// for none), with labels, as a Dockerfile's FROM, RUN and LABEL lines make.
func image(base v1.Image, n int, labels map[string]string) (v1.Image, error) {
	img := base
	if img == nil {
		img = empty.Image
	}
	for range n {
		layer, err := random.Layer(2048, types.DockerLayer)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

// push writes img to repo:tags[0] on the registry and tags it with the rest.
func (e *env) push(ctx context.Context, img v1.Image, repo string, tags ...string) error {
	r, err := name.NewRepository(e.registry + "/" + repo)
	if err != nil {
		return err
	}
	if err := remote.Write(r.Tag(tags[0]), img, remote.WithContext(ctx)); err != nil {
		return err
	}
	for _, t := range tags[1:] {
		if err := remote.Tag(r.Tag(t), img, remote.WithContext(ctx)); err != nil {
			return err
		}
	}
	return nil
}

// pushFamily pushes soak/base (1.0 with 1 and latest, and an older 0.9) and
// soak/app built on base:1.0 (2.3 with 2 and latest), labelled so that every
// badge kind has a value.
func (e *env) pushFamily(ctx context.Context) error {
	old, err := image(nil, 2, map[string]string{"org.opencontainers.image.version": "0.9.0"})
	if err != nil {
		return err
	}
	base, err := image(nil, 3, map[string]string{
		"org.opencontainers.image.version":  "1.0.4",
		"org.opencontainers.image.licenses": "MIT",
		"org.opencontainers.image.revision": "5d1e0c2b9a8f7e6d5c4b3a29181716151413121",
	})
	if err != nil {
		return err
	}
	app, err := image(base, 2, map[string]string{
		"org.opencontainers.image.version":  "2.3.1",
		"org.opencontainers.image.revision": "0f3c2a9e1b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   "https://github.com/acme/app",
		"org.opencontainers.image.title":    "app",
	})
	if err != nil {
		return err
	}
	if err := e.push(ctx, old, "soak/base", "0.9"); err != nil {
		return err
	}
	if err := e.push(ctx, base, "soak/base", "1.0", "1", "latest"); err != nil {
		return err
	}
	if err := e.push(ctx, app, "soak/app", "2.3", "2", "latest"); err != nil {
		return err
	}
	for _, ref := range []string{"soak/app:2.3", "soak/app:latest", "soak/base:1.0", "soak/base:latest"} {
		e.familyRefs = append(e.familyRefs, e.proxy+"/"+ref)
	}
	return nil
}

// pushStorm pushes the storm repositories: tags t00… spread over
// digestsPerStormRepo images each.
func (e *env) pushStorm(ctx context.Context, repos, tags int) error {
	for i := range repos {
		r := stormRepo{name: fmt.Sprintf("soak/storm-%02d", i), at: map[string]int{}}
		for j := range digestsPerStormRepo {
			img, err := image(nil, 1, map[string]string{"org.opencontainers.image.version": fmt.Sprintf("%d.%d", i, j)})
			if err != nil {
				return err
			}
			r.images = append(r.images, img)
		}
		byImage := make([][]string, digestsPerStormRepo)
		for t := range tags {
			byImage[t%digestsPerStormRepo] = append(byImage[t%digestsPerStormRepo], r.tag(t))
			r.at[r.tag(t)] = t % digestsPerStormRepo
		}
		for j, img := range r.images {
			if len(byImage[j]) == 0 {
				continue
			}
			if err := e.push(ctx, img, r.name, byImage[j]...); err != nil {
				return err
			}
		}
		e.storm = append(e.storm, r)
		// The traffic reads a tag the pusher moves and one it leaves alone.
		e.stormRefs = append(e.stormRefs, e.proxy+"/"+r.name+":"+r.tag(0))
		if tags > movedTags {
			e.stormRefs = append(e.stormRefs, e.proxy+"/"+r.name+":"+r.tag(tags-1))
		}
	}
	return nil
}

// warm reads, once, every report, page and badge the traffic will ask for,
// so that the load measures a service that knows its images (badges are
// then served from what is stored, which is what "cached" means here).
func (e *env) warm(ctx context.Context) error {
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.server.URL+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s: %.300s", path, resp.Status, b)
		}
		return b, err
	}
	for _, ref := range append(append([]string{}, e.familyRefs...), e.stormRefs...) {
		if _, err := get("/api/v1/images/" + ref); err != nil {
			return err
		}
		if _, err := get("/images/" + ref); err != nil {
			return err
		}
		for _, kind := range badgeKinds {
			b, err := get("/badges/" + kind + "/" + ref + ".svg")
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte("not found")) {
				return fmt.Errorf("the %s badge of %s says not found after its report was read", kind, ref)
			}
		}
	}
	return nil
}

// subscribe creates n subscriptions to storm images, delivering to the
// receiver: first one to every tag of each storm repository (as many as
// there are repositories), then to single moved tags, round robin. Each
// source address creates at most subscriptionsPerAddress.
func (e *env) subscribe(ctx context.Context, n int) error {
	clients := map[int]*http.Client{}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	for i := range n {
		var image string
		if i < len(e.storm) {
			image = e.proxy + "/" + e.storm[i].name
		} else {
			k := i - len(e.storm)
			r := e.storm[k%len(e.storm)]
			image = e.proxy + "/" + r.name + ":" + r.tag((k/len(e.storm))%min(movedTags, len(r.at)))
		}
		a := i / subscriptionsPerAddress
		c := clients[a]
		if c == nil {
			// 127.0.0.2, 127.0.0.3, …: loopback addresses all, on Linux.
			src := &net.TCPAddr{IP: net.IPv4(127, 0, byte(a/250), byte(2+a%250))}
			c = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				DialContext: (&net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}).DialContext}}
			clients[a] = c
		}
		body, _ := json.Marshal(map[string]any{"image": image, "url": e.receiver.url + "/hook/" + strconv.Itoa(i)})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.server.URL+"/api/v1/subscriptions", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var sub struct{ Status string }
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &sub) != nil || sub.Status != "active" {
			return fmt.Errorf("subscribe %s: %s %.300s", image, resp.Status, b)
		}
		e.subs++
	}
	return nil
}

// hookEnvelope is a distribution notification envelope announcing that
// repo:tag was pushed with the manifest digest, as the registry at host
// would send it (target.url names host, which is what imagebadger reads).
func hookEnvelope(host, repo, tag, digest, mediaType string, size int64, at time.Time) []byte {
	u := url.URL{Scheme: "http", Host: host, Path: "/v2/" + repo + "/manifests/" + digest}
	b, _ := json.Marshal(map[string]any{"events": []any{map[string]any{
		"id":        fmt.Sprintf("soak-%d", at.UnixNano()),
		"timestamp": at.UTC().Format(time.RFC3339Nano),
		"action":    "push",
		"target": map[string]any{
			"mediaType": mediaType, "size": size, "length": size, "digest": digest,
			"repository": repo, "url": u.String(), "tag": tag,
		},
		"request": map[string]any{"id": "soak", "addr": "127.0.0.1", "host": host, "method": "PUT", "useragent": "soak"},
		"actor":   map[string]any{},
		"source":  map[string]any{"addr": "registry.internal:5000", "instanceID": "soak"},
	}}})
	return b
}
