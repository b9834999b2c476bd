package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// outcome is what one attack did: its own figure, whether the registry
// (or the service) saw the attack at all, and its target.
type outcome struct {
	figure string
	// exercised says the attack reached the path it attacks (the registry
	// saw its requests, the service answered them); a run where it did not
	// measured nothing.
	exercised bool
	// target describes the attack's own target, empty when the issue sets
	// none; met says whether it was met.
	target string
	met    bool
}

// attack is one attack of the benchmark.
type attack struct {
	number int // the issue's: the two tag listings are both 3
	name   string
	run    func(e *env, ctx context.Context) (outcome, error)
}

// attacks are the attacks in the order they run, named by s.
func attacks(s settings) []attack {
	return []attack{
		{1, fmt.Sprintf("1 %d×%d index, %d names", s.platforms, s.layers, s.bigReads), (*env).bigIndexes},
		{2, fmt.Sprintf("2 %d trickling reads", s.slowReads), (*env).trickle},
		{3, fmt.Sprintf("3 %d paged tags", s.tags), (*env).manyTags},
		{3, "3 self-linking tags", (*env).selfLink},
		{4, fmt.Sprintf("4 %d wrong tokens, proxy", s.tokens), (*env).wrongTokens},
		{5, fmt.Sprintf("5 %d GETs of the form", s.formGets), (*env).formGets},
		{6, fmt.Sprintf("6 squatting, %d addresses", s.squatters), (*env).squat},
	}
}

// apiImage is the JSON report's URL of ref.
func (e *env) apiImage(ref string) string { return e.server.URL + "/api/v1/images/" + ref }

// bigIndexes reads the big index under -big-reads repository names at once,
// then measures the server's resident memory.
func (e *env) bigIndexes(ctx context.Context) (outcome, error) {
	before, err := readProcMemory(e.server.PID())
	if err != nil {
		return outcome{}, err
	}
	e.good.Requests()
	c := clientFrom(attackerAddr, e.s.attackTimeout)
	defer c.CloseIdleConnections()
	var st statusCounts
	var wg sync.WaitGroup
	for i := range e.s.bigReads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.add(send(ctx, c, http.MethodGet, e.apiImage(e.good.Host+"/"+bigRepo(i)+":1"), nil, nil))
		}()
	}
	wg.Wait()
	after, err := readProcMemory(e.server.PID())
	if err != nil {
		return outcome{}, err
	}
	indexes := len(e.good.Peek("/bench/big-"))
	manifests := len(e.good.Peek("/manifests/sha256:"))
	bound := int64(e.s.rssBoundMB) * 1e6
	return outcome{
		figure: fmt.Sprintf("RSS %.0f MB after (%.0f before, peak %.0f); reads %s; registry served %d platform manifests",
			mb(after.rss), mb(before.rss), mb(after.peak), st.String(), manifests),
		exercised: st.total() == e.s.bigReads && indexes > 0, // a service that refuses the index at once was still asked
		target:    fmt.Sprintf("RSS ≤ %d MB", e.s.rssBoundMB),
		met:       after.rss <= bound,
	}, nil
}

// trickle reads -slow-reads never-seen images of the trickling registry at
// once, and two more a second, while another person reads never-seen
// images of the good registry (reports and badges); at the end the
// trickling answers are let go, so the next attack starts clean.
func (e *env) trickle(ctx context.Context) (outcome, error) {
	e.slow.Requests()
	attacker := clientFrom(attackerAddr, e.s.attackTimeout)
	defer attacker.CloseIdleConnections()
	other := clientFrom(otherAddr, 15*time.Second)
	defer other.CloseIdleConnections()
	var attackerSt, otherSt, badges statusCounts
	var wg sync.WaitGroup
	slowRead := func() {
		i := e.nextSlow()
		wg.Add(1)
		go func() {
			defer wg.Done()
			attackerSt.add(send(ctx, attacker, http.MethodGet, e.apiImage(e.slow.Host+"/"+slowRepo(i)+":1"), nil, nil))
		}()
	}
	for range e.s.slowReads {
		slowRead()
	}
	end := time.Now().Add(e.s.window)
	keepUp := time.NewTicker(time.Second / 2)
	defer keepUp.Stop()
	otherTick := time.NewTicker(time.Second / 2)
	defer otherTick.Stop()
	var otherWG sync.WaitGroup
	otherReads := 0
	otherRead := func() {
		otherReads++
		i := e.nextOther()
		otherWG.Add(2)
		go func() {
			defer otherWG.Done()
			otherSt.add(send(ctx, other, http.MethodGet, e.apiImage(e.good.Host+"/"+otherRepo(i)+":1"), nil, nil))
		}()
		j := e.nextOther()
		go func() {
			defer otherWG.Done()
			a := send(ctx, other, http.MethodGet, e.server.URL+"/badges/version/"+e.good.Host+"/"+otherRepo(j)+":1.svg", nil, nil)
			badges.addKey(badgeText(a, fmt.Sprintf("2.0.%d", j)))
		}()
	}
	start := time.Now()
	for time.Now().Before(end) && ctx.Err() == nil {
		select {
		case <-keepUp.C:
			slowRead()
		case <-otherTick.C:
			if time.Since(start) < min(time.Second, e.s.window/4) {
				continue // the attack's first wave fills the service first
			}
			otherRead()
		case <-ctx.Done():
		}
	}
	if otherReads == 0 && ctx.Err() == nil {
		otherRead() // a window too short for the ticker, or a sender late to it
	}
	otherWG.Wait()
	// The registry has seen the attack by now, unless the service never
	// asked it; a late first request is waited for, a little.
	trickled := len(e.slow.WaitRequests(1, 5*time.Second, "/manifests/"))
	e.slow.Reset() // the rest of every trickling answer at once
	wg.Wait()
	e.slow.Add(trickleRule(e.s.trickleDelay))
	bad := otherSt.non2xx()
	notFound := badges.count(badgeNotFound)
	return outcome{
		figure: fmt.Sprintf("other person: %d of %d reads not 2xx (%s), badges %s; attacker's reads %s; slow registry: %d manifest requests",
			bad, otherSt.total(), otherSt.String(), badges.String(), attackerSt.String(), trickled),
		exercised: trickled > 0 && otherSt.total() > 0,
		target:    "other person: 0 errors, no badge \"not found…\"",
		met:       bad == 0 && notFound == 0,
	}, nil
}

// What the other person's badges said.
const (
	badgeVersion  = "the version"
	badgeNotFound = "not found…" // "not found" or "not found yet": the image seems not to exist
	badgeOther    = "other"
)

// badgeText sorts a badge answer of an image labelled version: the version
// shown, "not found" of either kind (what a busy service must never say),
// or another text (a "try again", say).
func badgeText(a answer, version string) string {
	switch {
	case a.status != http.StatusOK:
		return strconv.Itoa(a.status)
	case bytes.Contains(a.body, []byte(">"+version+"<")):
		return badgeVersion
	case bytes.Contains(a.body, []byte(">not found")):
		return badgeNotFound
	default:
		return badgeOther
	}
}

// manyTags asks once for the tags of the repository of -tags tags, which
// the registry pages by Link, and counts what it cost: registry requests,
// rows and bytes of the database.
func (e *env) manyTags(ctx context.Context) (outcome, error) {
	before, err := readDB(ctx, e.dbPath)
	if err != nil {
		return outcome{}, err
	}
	e.good.Requests()
	c := clientFrom(attackerAddr, e.s.attackTimeout)
	defer c.CloseIdleConnections()
	a := send(ctx, c, http.MethodGet, e.server.URL+"/api/v1/repositories/"+e.good.Host+"/"+manyRepo+"/tags", nil, nil)
	reqs := e.good.Peek("/" + manyRepo + "/")
	after, err := readDB(ctx, e.dbPath)
	if err != nil {
		return outcome{}, err
	}
	var lists, heads, others int
	for _, r := range reqs {
		switch {
		case strings.Contains(r, "/tags/list"):
			lists++
		case strings.HasPrefix(r, "HEAD "):
			heads++
		default:
			others++
		}
	}
	return outcome{
		figure: fmt.Sprintf("answer %s; registry: %d requests (%d tag list pages, %d HEADs, %d others); DB +%d rows, +%.1f MB",
			statusText(a), len(reqs), lists, heads, others, after.rows-before.rows, mb(after.bytes-before.bytes)),
		exercised: lists > 0,
	}, nil
}

// selfLink asks for the tags of the repository whose tag list links to
// itself, as a client that gives up after -window does, and counts the
// list requests it caused, while it waited and in the two seconds after
// (less for a shorter -window);
// then the registry stops linking, which ends the listing.
func (e *env) selfLink(ctx context.Context) (outcome, error) {
	e.good.Requests()
	c := clientFrom(attackerAddr, e.s.window)
	defer c.CloseIdleConnections()
	a := send(ctx, c, http.MethodGet, e.server.URL+"/api/v1/repositories/"+e.good.Host+"/"+selfLinkRepo+"/tags", nil, nil)
	// A first list request late on a busy machine is waited for, a little.
	during := len(e.good.WaitRequests(1, 5*time.Second, "/"+selfLinkRepo+"/tags/list"))
	after := min(2*time.Second, e.s.window)
	select {
	case <-time.After(after):
	case <-ctx.Done():
	}
	total := len(e.good.Peek("/" + selfLinkRepo + "/tags/list"))
	e.good.Reset()
	return outcome{
		figure: fmt.Sprintf("answer %s; %d tag list requests while the client waited, %d more in the %s after",
			statusText(a), during, total-during, after),
		exercised: during > 0,
		target:    "≤ 2 tag list requests (ends after one repeat)",
		met:       total <= 2,
	}, nil
}

// wrongTokens sends -tokens wrong hook tokens through the "reverse proxy"
// (the well-behaved client's address) for one client named in
// X-Forwarded-For, then the right token for another.
func (e *env) wrongTokens(ctx context.Context) (outcome, error) {
	c := clientFrom(wellBehavedAddr, 10*time.Second)
	defer c.CloseIdleConnections()
	hook := func(token, client string) answer {
		h := http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}, "X-Forwarded-For": {client}}
		return send(ctx, c, http.MethodPost, e.server.URL+"/hooks/registry", h, []byte(`{"events":[]}`))
	}
	var wrong statusCounts
	for i := range e.s.tokens {
		wrong.add(hook(fmt.Sprintf("wrong-token-%d", i), "198.51.100.7"))
	}
	right := hook(hookToken, "198.51.100.8")
	note := ""
	if !e.trustedProxies {
		note = " (this binary has no --trusted-proxies: every client is the proxy)"
	}
	return outcome{
		figure:    fmt.Sprintf("wrong tokens from one client: %s; right token from another: %s%s", wrong.String(), statusText(right), note),
		exercised: wrong.total() == e.s.tokens && right.status != 0,
		target:    "right token: 202",
		met:       right.status == http.StatusAccepted,
	}, nil
}

// formGets sends -form-gets GETs of the subscription form for Docker Hub
// repositories (whose form shows a hook URL) and counts the rows and bytes
// the database grew by.
func (e *env) formGets(ctx context.Context) (outcome, error) {
	before, err := readDB(ctx, e.dbPath)
	if err != nil {
		return outcome{}, err
	}
	c := clientFrom(attackerAddr, 10*time.Second)
	defer c.CloseIdleConnections()
	var st statusCounts
	err = parallel(e.s.formGets, 8, func(i int) error {
		q := url.Values{"image": {fmt.Sprintf("docker.io/attackbench/form-%04d", i)}}
		st.add(send(ctx, c, http.MethodGet, e.server.URL+"/subscriptions/new?"+q.Encode(), nil, nil))
		return nil
	})
	if err != nil {
		return outcome{}, err
	}
	after, err := readDB(ctx, e.dbPath)
	if err != nil {
		return outcome{}, err
	}
	rows := after.rows - before.rows
	return outcome{
		figure:    fmt.Sprintf("GETs %s; DB +%d rows, +%d KB", st.String(), rows, (after.bytes-before.bytes)/1000),
		exercised: st.total() == e.s.formGets && st.non2xx() == 0,
		target:    "0 rows written",
		met:       rows == 0,
	}, nil
}

// squat fills the subscription cap of the well-behaved client's image
// from -squatters addresses, each creating as many subscriptions as the
// service lets one address create, then subscribes from one more address.
func (e *env) squat(ctx context.Context) (outcome, error) {
	subscribe := func(from, hookURL string) answer {
		c := clientFrom(from, 30*time.Second)
		defer c.CloseIdleConnections()
		body, _ := json.Marshal(map[string]any{"image": e.good.Host + "/" + clientRepo + ":1", "url": hookURL, "events": []string{"image.updated"}})
		return send(ctx, c, http.MethodPost, e.server.URL+"/api/v1/subscriptions", http.Header{"Content-Type": {"application/json"}}, body)
	}
	var st statusCounts
	err := parallel(e.s.squatters, e.s.squatters, func(i int) error {
		for j := range perAddress {
			st.add(subscribe(squatterAddr(i), fmt.Sprintf("%s/squat/%d/%d", e.receiver, i, j)))
		}
		return nil
	})
	if err != nil {
		return outcome{}, err
	}
	owner := subscribe(squatterAddr(e.s.squatters), e.receiver+"/owner")
	return outcome{
		figure:    fmt.Sprintf("%d squatters' subscriptions %s; one more subscriber: %s", e.s.squatters, st.String(), statusText(owner)),
		exercised: st.total() == e.s.squatters*perAddress && owner.status != 0,
		target:    "one more subscriber: 201",
		met:       owner.status == http.StatusCreated,
	}, nil
}

// perAddress is how many subscriptions each squatter makes: what the
// service lets one address create in an hour (notify's creation burst).
const perAddress = 10

// statusText is an answer's status with its error code, "500 internal".
func statusText(a answer) string {
	if a.status == 0 {
		if a.err != nil {
			return "no answer (" + a.err.Error() + ")"
		}
		return "no answer"
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(a.body, &e) == nil && e.Error.Code != "" {
		return fmt.Sprintf("%d %s", a.status, e.Error.Code)
	}
	return fmt.Sprint(a.status)
}
