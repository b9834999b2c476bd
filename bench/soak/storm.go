package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// receiver is the webhook receiver: it answers 204 to everything and
// remembers when each tag move was first delivered.
type receiver struct {
	url string
	srv *http.Server

	mu     sync.Mutex
	byType map[string]int
	// arrivals holds, per moved tag and new digest, when image.updated
	// deliveries for it arrived.
	arrivals map[moveKey][]time.Time
}

// moveKey names a tag move by where the tag went.
type moveKey struct{ repo, tag, digest string }

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{url: "http://" + ln.Addr().String(), byType: map[string]int{}, arrivals: map[moveKey][]time.Time{}}
	rc.srv = &http.Server{Handler: http.HandlerFunc(rc.serve), ReadHeaderTimeout: 5 * time.Second}
	go rc.srv.Serve(ln)
	return rc, nil
}

func (rc *receiver) close() { rc.srv.Close() }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	now := time.Now()
	typ, key := parseDelivery(body)
	rc.mu.Lock()
	rc.byType[typ]++
	if typ == "image.updated" {
		rc.arrivals[key] = append(rc.arrivals[key], now)
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// parseDelivery reads a webhook payload's type and, for image.updated, the
// move it announces. A body that is not a payload counts as type "invalid".
func parseDelivery(body []byte) (typ string, key moveKey) {
	var p struct {
		Type string `json:"type"`
		Data struct {
			// An object for image.updated, a string for webhook.ping.
			Image json.RawMessage `json:"image"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Type == "" {
		return "invalid", moveKey{}
	}
	var img struct{ Repository, Tag, Digest string }
	if p.Type == "image.updated" && json.Unmarshal(p.Data.Image, &img) != nil {
		return "invalid", moveKey{}
	}
	return p.Type, moveKey{img.Repository, img.Tag, img.Digest}
}

// counts returns the deliveries received by type.
func (rc *receiver) counts() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.byType {
		out[k] = v
	}
	return out
}

// delivered returns, for each move, how long after the push its first
// image.updated arrived, or -1 when none has (yet).
func (rc *receiver) delivered(moves []move) []time.Duration {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]time.Duration, len(moves))
	for i, m := range moves {
		out[i] = -1
		for _, at := range rc.arrivals[m.key] {
			if !at.Before(m.at) {
				out[i] = at.Sub(m.at)
				break
			}
		}
	}
	return out
}

// move is one tag move the pusher made.
type move struct {
	key        moveKey
	at         time.Time // when the push had completed
	hookStatus int       // the answer to its POST /hooks/registry; 0 for none
}

// runStorm moves a storm tag to another image of its repository every 1–2 s
// and announces each push on /hooks/registry, until ctx ends; it returns
// the moves made.
func (e *env) runStorm(ctx context.Context, rng *rand.Rand) []move {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var moves []move
	for {
		wait := time.Second + time.Duration(rng.Int64N(int64(time.Second)))
		select {
		case <-ctx.Done():
			return moves
		case <-time.After(wait):
		}
		r := &e.storm[rng.IntN(len(e.storm))]
		tag := r.tag(rng.IntN(min(movedTags, len(r.at))))
		to := (r.at[tag] + 1 + rng.IntN(len(r.images)-1)) % len(r.images)
		img := r.images[to]
		ref, err := name.NewTag(e.registry + "/" + r.name + ":" + tag)
		if err != nil {
			continue
		}
		if err := remote.Tag(ref, img, remote.WithContext(ctx)); err != nil {
			if ctx.Err() != nil {
				return moves
			}
			continue
		}
		r.at[tag] = to
		d, _ := img.Digest()
		mt, _ := img.MediaType()
		raw, _ := img.RawManifest()
		m := move{key: moveKey{r.name, tag, d.String()}, at: time.Now()}
		body := hookEnvelope(e.proxy, r.name, tag, d.String(), string(mt), int64(len(raw)), m.at)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.server.URL+"/hooks/registry", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+hookToken)
			req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v1+json")
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				m.hookStatus = resp.StatusCode
			}
		}
		moves = append(moves, m)
	}
}
