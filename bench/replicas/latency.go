package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagebadger/imagebadger/internal/testing/serveproc"
)

// latencyPart is part 3: for one process on SQLite and three on
// PostgreSQL, and for each build, a subscriber of one tag, then
// latencySamples pushes of the tag, each followed by the registry's
// notification of it (POST /hooks/registry, as a distribution registry
// sends it, to the processes in turn), timed from the end of the push to
// the moment the receiver has the image.updated naming the pushed digest.
// The builds take turns push by push, so drift in the machine's load falls
// on both alike.
func (e *env) latencyPart(ctx context.Context, deployments []deployment) ([]string, error) {
	out := e.out
	fmt.Fprintf(out, "latency: push, the registry's notification, delivery; %d pushes a build, the builds in turn\n", latencySamples)
	rc := newArrivals()
	defer rc.Close()
	var missed []string
	for _, d := range deployments {
		if d.name == "postgres, 1 process" {
			continue
		}
		type run struct {
			b     build
			procs []*serveproc.Proc
			ref   name.Tag
			took  []time.Duration
		}
		var runs []*run
		for _, b := range e.builds {
			dsn, err := d.db()
			if err != nil {
				return nil, err
			}
			procs, stop, err := e.start(ctx, b.bin, d, dsn, "latency"+b.name, "--poll-interval", "1h", "--hook-token", hookToken)
			if err != nil {
				return nil, err
			}
			defer stop()
			ref, err := name.NewTag(fmt.Sprintf("%s/bench/latency-%d-%s:1", e.registry, d.procs, b.name))
			if err != nil {
				return nil, err
			}
			r := &run{b: b, procs: procs, ref: ref}
			if _, err := e.pushRandom(ctx, ref); err != nil {
				return nil, err
			}
			if err := refresh(ctx, procs[0].URL, ref.String()); err != nil {
				return nil, err
			}
			if err := subscribe(ctx, procs[len(procs)-1].URL, ref.String(), rc.URL); err != nil {
				return nil, fmt.Errorf("subscribe on %s %s: %w", d.name, b.name, err)
			}
			runs = append(runs, r)
		}
		for i := range latencySamples {
			for _, r := range runs {
				digest, err := e.pushRandom(ctx, r.ref)
				if err != nil {
					return nil, err
				}
				start := time.Now()
				if err := notifyPush(ctx, r.procs[i%len(r.procs)].URL, r.ref, digest); err != nil {
					return nil, err
				}
				at, err := rc.wait(ctx, digest, start.Add(30*time.Second))
				if err != nil {
					return nil, fmt.Errorf("%s %s push %d: %w", d.name, r.b.name, i, err)
				}
				r.took = append(r.took, at.Sub(start))
			}
		}
		for _, r := range runs {
			p50, p99 := percentile(r.took, 50), percentile(r.took, 99)
			fmt.Fprintf(out, "  %-22s %-6s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms\n", d.name, r.b.name,
				ms(p50), ms(p99), ms(percentile(r.took, 100)))
			if r.b.name != "before" && p99 > latencyTarget {
				missed = append(missed, "latency on "+d.name)
			}
		}
	}
	return missed, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile is the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// pushRandom pushes a new small image to ref and returns its digest.
func (e *env) pushRandom(ctx context.Context, ref name.Tag) (string, error) {
	img, err := random.Image(256, 1)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", err
	}
	d, err := img.Digest()
	return d.String(), err
}

// hookToken is the processes' --hook-token.
const hookToken = "bench-latency-hook"

// notifyPush sends base's /hooks/registry the distribution registry's
// notification of a push of ref at digest.
func notifyPush(ctx context.Context, base string, ref name.Tag, digest string) error {
	repo, host := ref.RepositoryStr(), ref.RegistryStr()
	body := fmt.Sprintf(`{"events":[{"id":"e","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"digest":%q,"repository":%q,"url":"http://%s/v2/%s/manifests/%s","tag":%q},"request":{"host":%q}}]}`,
		digest, repo, host, repo, digest, ref.TagStr(), host)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/hooks/registry", bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v1+json")
	req.Header.Set("Authorization", "Bearer "+hookToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("hook for %s: %s", ref, resp.Status)
	}
	return nil
}

// refresh is the refresh a registry's notification asks for.
func refresh(ctx context.Context, base, ref string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/images/"+ref+"/refresh", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("refresh %s: %s", ref, resp.Status)
	}
	return nil
}

// subscribe subscribes the receiver at url to ref's image.updated.
func subscribe(ctx context.Context, base, ref, url string) error {
	body, _ := json.Marshal(map[string]any{"image": ref, "url": url, "events": []string{"image.updated"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/subscriptions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("%s: %s", resp.Status, raw)
	}
	return nil
}

// arrivals is a receiver that notes when each image.updated arrives, by
// the digest it names.
type arrivals struct {
	*httptest.Server
	mu sync.Mutex
	at map[string]time.Time
	ch chan struct{}
}

func newArrivals() *arrivals {
	a := &arrivals{at: map[string]time.Time{}, ch: make(chan struct{}, 1)}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var p struct {
			Type string `json:"type"`
			Data struct {
				Image struct {
					Digest string `json:"digest"`
				} `json:"image"`
			} `json:"data"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p)
		if p.Type == "image.updated" {
			a.mu.Lock()
			if _, seen := a.at[p.Data.Image.Digest]; !seen {
				a.at[p.Data.Image.Digest] = now
			}
			a.mu.Unlock()
			select {
			case a.ch <- struct{}{}:
			default:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return a
}

// wait returns when the image.updated naming digest arrived.
func (a *arrivals) wait(ctx context.Context, digest string, deadline time.Time) (time.Time, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		a.mu.Lock()
		at, ok := a.at[digest]
		a.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-a.ch:
		case <-time.After(time.Millisecond):
		case <-t.C:
			return time.Time{}, fmt.Errorf("no image.updated for %s", digest)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
