package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/internal/testing/apispec"
	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// The tests of this file run several `imagebadger serve` processes on one
// PostgreSQL database (a throwaway cluster of Debian's postgresql package),
// as a scaled-out deployment does, and check docs/API.md's promises for
// replicas: one delivery per move however many processes notice it, every
// process's answers following a change within 1 s, a killed process's
// work picked up by the others, and a database outage ridden out.

const replicaHookToken = "e2e-replica-hook-token"

// replicas starts n serve processes together on the database dsn.
func replicas(t *testing.T, dsn string, n int, args ...string) []*testenv.Server {
	t.Helper()
	opts := make([]testenv.ServeOptions, n)
	for i := range opts {
		opts[i] = testenv.ServeOptions{DBPath: dsn, Args: append([]string{
			"--allow-private-webhooks", "--poll-interval", "1h", "--hook-token", replicaHookToken}, args...)}
	}
	return testenv.ServeProcesses(t, testenv.Binary(t), opts...)
}

// notifyingRegistry is a distribution registry sending its notifications
// to srv's /hooks/registry, retrying every 500 ms while they fail.
func notifyingRegistry(t *testing.T, srv string) string {
	t.Helper()
	return testenv.DistributionWithConfig(t, fmt.Sprintf(`notifications:
  endpoints:
    - name: imagebadger
      url: %s/hooks/registry
      headers:
        Authorization: [Bearer %s]
      timeout: 2s
      threshold: 3
      backoff: 500ms
`, srv, replicaHookToken))
}

// versioned is a small random linux/amd64 image labelled with version v.
func versioned(t *testing.T, v string) v1.Image {
	t.Helper()
	img := whImage(t, nil, 1)
	cf := must(img.ConfigFile()).DeepCopy()
	cf.Config.Labels = map[string]string{"org.opencontainers.image.version": v}
	return must(mutate.ConfigFile(img, cf))
}

// reportDigest is the digest GET /api/v1/images/{ref} answers on srv.
func reportDigest(t *testing.T, srv, ref string) string {
	t.Helper()
	var r struct{ Digest string }
	getJSON(t, srv+"/api/v1/images/"+ref, &r)
	return r.Digest
}

// within polls f every 10 ms until it is true or d has passed, and says
// how long it took.
func within(d time.Duration, f func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if f() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicasAgreeOnAPush: three processes share one PostgreSQL; the
// registry notifies only the first. Each subscriber (one created on each
// process) gets exactly one verified image.updated for the push, and the
// other two processes' badge and image API, which had answered the old
// image, answer the new one within 1 s of the first process doing so.
func TestReplicasAgreeOnAPush(t *testing.T) {
	dsn, _ := testenv.PostgresDatabase(t)
	procs := replicas(t, dsn, 3)
	reg := notifyingRegistry(t, procs[0].URL)
	rc := newWHReceiver(t)
	ref := reg + "/acme/shared:1.0"
	old := whPush(t, ref, versioned(t, "1.0.0"))
	paths := []string{"/on-first", "/on-second", "/on-third"}
	for i, p := range procs {
		rc.subscribe(t, p.URL, ref, paths[i], "image.updated")
	}
	for _, p := range procs {
		if d := reportDigest(t, p.URL, ref); d != old {
			t.Fatalf("%s answers %s before the push, want %s", p.URL, d, old)
		}
		if b := fetchBadge(t, p.URL+"/badges/version/"+ref+".svg"); b.right != "1.0.0" {
			t.Fatalf("%s version badge before the push: %q", p.URL, b.right)
		}
	}

	moved := whPush(t, ref, versioned(t, "2.0.0"))
	if took, ok := within(10*time.Second, func() bool { return reportDigest(t, procs[0].URL, ref) == moved }); !ok {
		t.Fatalf("the notified process does not answer the pushed digest after %s", took)
	}
	for _, p := range procs[1:] {
		took, ok := within(time.Second, func() bool {
			return reportDigest(t, p.URL, ref) == moved && fetchBadge(t, p.URL+"/badges/version/"+ref+".svg").right == "2.0.0"
		})
		if !ok {
			t.Errorf("%s still answers the old image %s after the notified process answered the new one", p.URL, took)
		} else {
			t.Logf("%s answered the move %s after the notified process", p.URL, took.Round(time.Millisecond))
		}
	}
	for _, path := range paths {
		msgs := rc.wait(path, "image.updated", 1, 10*time.Second)
		if img := imageData(t, msgs[0], "image"); img["digest"] != moved || img["previousDigest"] != old {
			t.Errorf("%s: image.updated data %v, want %s from %s", path, img, moved, old)
		}
	}
	// Three workers poll for due deliveries every second; give each two
	// rounds to send a duplicate if it were going to.
	time.Sleep(2500 * time.Millisecond)
	for _, path := range paths {
		if n := rc.count(path, "image.updated"); n != 1 {
			t.Errorf("%s got %d image.updated requests for one push, want 1", path, n)
		}
	}
}

// TestReplicasShareTheParentIndex: a base first read by one process is the
// parent another process finds for an image built on it. The second process
// had loaded its parent index before the base was known, so it can only
// know the base by learning of the first process's change.
func TestReplicasShareTheParentIndex(t *testing.T) {
	dsn, _ := testenv.PostgresDatabase(t)
	procs := replicas(t, dsn, 2)
	reg := testenv.Distribution(t)
	base := whImage(t, nil, 2)
	baseDigest := whPush(t, reg+"/acme/parentbase:1.0", base)
	if d := reportDigest(t, procs[0].URL, reg+"/acme/parentbase:1.0"); d != baseDigest {
		t.Fatalf("the first process read %s, want %s", d, baseDigest)
	}
	child := reg + "/acme/parentchild:1.0"
	whPush(t, child, whImage(t, base, 1))
	var r struct {
		Platforms []struct {
			Parent *struct {
				Repository string
				Digest     string
				Tags       []string
			}
		}
	}
	getJSON(t, procs[1].URL+"/api/v1/images/"+child, &r)
	if len(r.Platforms) != 1 || r.Platforms[0].Parent == nil || r.Platforms[0].Parent.Repository != "acme/parentbase" ||
		r.Platforms[0].Parent.Digest != baseDigest {
		t.Errorf("the second process's report of the child: %+v, want the parent acme/parentbase@%s", r.Platforms, baseDigest)
	}
}

// count is how many requests of type typ reached path, whatever the answer.
func (rc *whReceiver) count(path, typ string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, m := range rc.msgs {
		if m.path == path && strings.Contains(string(m.body), `"type":"`+typ+`"`) {
			n++
		}
	}
	return n
}

// TestReplicasTellABaseMoveOnce: three processes share one PostgreSQL; the
// base is read by one, the child built on it by another, and its subscriber
// made on the third. The registry notifies only the first of the base's
// rebuild: the subscriber gets exactly one verified base.updated, a refresh
// of the base on another process answers 200 with its new digest, and every
// process reports the child outdated.
func TestReplicasTellABaseMoveOnce(t *testing.T) {
	dsn := testenv.SharedPostgresDatabase(t)
	procs := replicas(t, dsn, 3)
	reg := notifyingRegistry(t, procs[0].URL)
	rc := newWHReceiver(t)
	baseRef, appRef := reg+"/acme/replbase:1", reg+"/acme/replapp:1"
	base := whImage(t, nil, 2)
	oldBase := whPush(t, baseRef, base)
	getJSON(t, procs[1].URL+"/api/v1/images/"+baseRef+"?refresh=1", &parentReport{})
	whPush(t, appRef, whImage(t, base, 1))
	var rep parentReport
	getJSON(t, procs[2].URL+"/api/v1/images/"+appRef+"?refresh=1", &rep)
	if len(rep.Platforms) != 1 || rep.Platforms[0].Parent == nil || rep.Platforms[0].Parent.Repository != "acme/replbase" {
		t.Fatalf("test setup: the app's parent is not known: %+v", rep)
	}
	rc.subscribe(t, procs[2].URL, appRef, "/app", "base.updated")

	newBase := whPush(t, baseRef, whImage(t, nil, 2))
	msgs := rc.wait("/app", "base.updated", 1, 15*time.Second)
	if b := imageData(t, msgs[0], "base"); b["digest"] != newBase || b["previousDigest"] != oldBase {
		t.Errorf("data.base = %v, want a move from %s to %s", b, oldBase, newBase)
	}
	var now struct{ Digest string }
	if code := fetchJSON(t, "POST", procs[1].URL+"/api/v1/images/"+baseRef+"/refresh", &now); code != 200 || now.Digest != newBase {
		t.Errorf("refresh of the moved base on the second process: %d %s, want 200 %s", code, now.Digest, newBase)
	}
	for _, p := range procs {
		if _, ok := within(time.Second, func() bool {
			var r parentReport
			getJSON(t, p.URL+"/api/v1/images/"+appRef, &r)
			return len(r.Platforms) == 1 && r.Platforms[0].Parent != nil && r.Platforms[0].Parent.Outdated
		}); !ok {
			t.Errorf("%s does not report the child outdated", p.URL)
		}
	}
	time.Sleep(time.Second)
	if n := rc.count("/app", "base.updated"); n != 1 {
		t.Errorf("%d base.updated for one move of the base", n)
	}
}

// fanReceiver is a webhook receiver that judges a fan-out as it happens:
// it counts the requests in flight at once (the service promises at most
// 16 to one receiver, across all its processes), notes a webhook-id that
// arrives while a request with the same id is still being answered, and
// verifies every image.updated with the secret of its path. Each request
// takes delay to answer, so that concurrency shows.
type fanReceiver struct {
	*httptest.Server
	delay time.Duration

	mu          sync.Mutex
	inFlight    int
	maxInFlight int
	active      map[string]bool     // path and webhook-id of the requests being answered
	from        map[string]string   // their senders' addresses
	overlaps    []string            // those that arrived while in flight already
	secrets     map[string]string   // path → secret
	delivered   map[string][]string // path → webhook-ids of the image.updated answered
	unverified  []string
	cut         []string       // deliveries whose sender was killed before they were answered
	arrivals    map[string]int // requests per delivery (path and webhook-id)
	updates     atomic.Int64
}

func newFanReceiver(t *testing.T, delay time.Duration) *fanReceiver {
	rc := &fanReceiver{delay: delay, active: map[string]bool{}, from: map[string]string{}, arrivals: map[string]int{}, secrets: map[string]string{}, delivered: map[string][]string{}}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	// Every process may hold 16 connections to us at once.
	rc.Server.Config.ReadHeaderTimeout = 10 * time.Second
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

func (rc *fanReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	// A webhook-id names one message, the same for every subscriber it
	// goes to; a delivery is one message to one subscriber.
	id := r.URL.Path + " " + r.Header.Get("webhook-id")
	rc.mu.Lock()
	rc.inFlight++
	rc.maxInFlight = max(rc.maxInFlight, rc.inFlight)
	if rc.active[id] {
		rc.overlaps = append(rc.overlaps, id)
	}
	rc.active[id] = true
	rc.from[id] = r.RemoteAddr
	rc.arrivals[id]++
	rc.mu.Unlock()

	var cut bool
	select {
	case <-time.After(rc.delay):
	case <-r.Context().Done():
		cut = true // the sender went away before the answer
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.inFlight--
	delete(rc.active, id)
	delete(rc.from, id)
	if cut {
		rc.cut = append(rc.cut, id)
		return
	}
	if !strings.Contains(string(body), `"type":"image.updated"`) {
		w.WriteHeader(http.StatusOK) // the ping, answered before its secret is known
		return
	}
	if err := must(standardwebhooks.NewWebhook(rc.secrets[r.URL.Path])).Verify(body, r.Header); err != nil {
		rc.unverified = append(rc.unverified, r.URL.Path+": "+err.Error())
	}
	rc.delivered[r.URL.Path] = append(rc.delivered[r.URL.Path], r.Header.Get("webhook-id"))
	rc.updates.Add(1)
	w.WriteHeader(http.StatusOK)
}

// socketPorts are the local ports of the TCP sockets process pid holds
// open, read from Linux's /proc: which connections are the process's.
func socketPorts(pid int) map[int]bool {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(table)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			if _, hex, ok := strings.Cut(f[1], ":"); ok {
				if port, err := strconv.ParseInt(hex, 16, 32); err == nil {
					ports[int(port)] = true
				}
			}
		}
	}
	return ports
}

// sourceClient is an HTTP client whose connections come from the loopback
// address ip: the service limits subscription creation per client address,
// and a fan-out test needs more subscriptions than one address may create.
func sourceClient(t *testing.T, ip net.IP) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}).DialContext
	return &http.Client{Timeout: 30 * time.Second, Transport: apispec.Transport(t, tr)}
}

// TestReplicasFanOutSurvivesAKill: 1,000 subscriptions (100 on each of 10
// images, the per-image cap) to one receiver, created on three processes;
// 10 pushes make 1,000 deliveries, and one process is killed with SIGKILL
// while they are under way. Every subscriber gets its verified
// image.updated, a delivery retried after the kill keeps its webhook-id and
// is never in flight twice at once, and the receiver never has more than
// 16 requests in flight.
func TestReplicasFanOutSurvivesAKill(t *testing.T) {
	const images, perImage, perAddress = 10, 100, 10
	dsn, _ := testenv.PostgresDatabase(t)
	procs := replicas(t, dsn, 3)
	reg := testenv.Distribution(t)
	rc := newFanReceiver(t, 100*time.Millisecond)

	refs := make([]string, images)
	for i := range refs {
		refs[i] = fmt.Sprintf("%s/acme/fan%d:1.0", reg, i)
		whPush(t, refs[i], whImage(t, nil, 1))
	}
	subscribeMany(t, procs, rc.URL, refs, perImage, perAddress, 1, []string{"image.updated"}, func(path, secret string) {
		rc.mu.Lock()
		rc.secrets[path] = secret
		rc.mu.Unlock()
	})

	for i, ref := range refs {
		whPush(t, ref, whImage(t, nil, 1))
		refresh(t, procs[i%len(procs)].URL, ref)
	}
	// Once a fifth of the deliveries have arrived, kill a process while it
	// has requests to the receiver in flight, so that it dies mid-attempt.
	if took, ok := within(60*time.Second, func() bool { return rc.updates.Load() >= images*perImage/5 }); !ok {
		t.Fatalf("%d deliveries after %s, want %d before the kill", rc.updates.Load(), took, images*perImage/5)
	}
	// The deliveries the killed process had in flight: it never got their
	// answers, so it recorded nothing, and another process must retry each
	// with its webhook-id once the lease runs out.
	var orphaned []string
	if _, ok := within(20*time.Second, func() bool {
		for _, p := range procs {
			ports := socketPorts(p.Cmd.Process.Pid)
			// Count and kill with the receiver held, so that no request of
			// p is answered in between.
			rc.mu.Lock()
			var theirs []string
			for id, addr := range rc.from {
				if _, port, err := net.SplitHostPort(addr); err == nil {
					if n, _ := strconv.Atoi(port); ports[n] {
						theirs = append(theirs, id)
					}
				}
			}
			if len(theirs) >= 2 {
				p.Kill()
				orphaned = theirs
			}
			rc.mu.Unlock()
			if orphaned != nil {
				t.Logf("killed %s with %d of its requests in flight", p.Addr, len(orphaned))
				return true
			}
		}
		return false
	}); !ok {
		t.Fatal("no process had two requests in flight to kill it during")
	}
	killedAt := rc.updates.Load()

	// A lease of the killed process expires 25 s after its claim (the
	// attempt timeout plus 15 s); then another process retries.
	complete := func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, id := range orphaned {
			if rc.arrivals[id] < 2 {
				return false
			}
		}
		return len(rc.delivered) == images*perImage
	}
	if took, ok := within(90*time.Second, complete); !ok {
		rc.mu.Lock()
		n := len(rc.delivered)
		rc.mu.Unlock()
		t.Fatalf("%d of %d subscribers got their image.updated %s after the kill", n, images*perImage, took)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	t.Logf("%d deliveries before the kill; at most %d requests in flight", killedAt, rc.maxInFlight)
	if rc.maxInFlight > 16 {
		t.Errorf("%d requests in flight to one receiver at once, want at most 16", rc.maxInFlight)
	}
	if len(rc.overlaps) > 0 {
		t.Errorf("%d deliveries in flight twice at once, among them %v", len(rc.overlaps), rc.overlaps[:min(5, len(rc.overlaps))])
	}
	if len(rc.unverified) > 0 {
		t.Errorf("deliveries that do not verify: %v", rc.unverified)
	}
	for path, ids := range rc.delivered {
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Errorf("%s got two different deliveries for one push: %v", path, ids)
			}
		}
	}
	// Each orphaned delivery came again with its webhook-id (complete
	// waited for that) and was answered.
	for _, o := range orphaned {
		path, id, _ := strings.Cut(o, " ")
		if !slices.Contains(rc.delivered[path], id) {
			t.Errorf("%s: the delivery in flight at the kill (%s) was not delivered with its webhook-id: %v", path, id, rc.delivered[path])
		}
	}
	t.Logf("%d deliveries in flight at the kill, each sent again with its webhook-id (%d of them cut short)", len(orphaned), len(rc.cut))
}

// checkCounter counts, through a proxy in front of a registry, the
// manifest requests by tag: how often the service checked each tag.
type checkCounter struct {
	host   string
	counts func() map[string]int
	last   map[string]int
}

func newCheckCounter(t *testing.T, registry string) *checkCounter {
	addr, counts, stop, err := distreg.MeteredProxy(registry, 0, distreg.ManifestTag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &checkCounter{host: addr, counts: counts, last: map[string]int{}}
}

// take returns the checks since the last take.
func (c *checkCounter) take() map[string]int {
	now := c.counts()
	out := map[string]int{}
	for k, n := range now {
		if d := n - c.last[k]; d > 0 {
			out[k] = d
		}
	}
	c.last = now
	return out
}

// TestReplicasShareTheWatcher: 3,000 tracked tags (30 watched repositories
// of 100 tags), three processes, a 10 s poll interval. Over 30 s each tag
// is checked 3 (±1) times in all, not three times per process; after one
// process is killed the other two check every tag within one interval.
func TestReplicasShareTheWatcher(t *testing.T) {
	const repos, tagsPer, interval = 30, 100, 10 * time.Second
	reg := testenv.Distribution(t)
	var watch []string
	type push struct {
		desc *remote.Descriptor
		tag  string
	}
	pushes := make(chan push)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pushes {
				if err := remote.Tag(must(name.NewTag(p.tag)), p.desc); err != nil {
					t.Errorf("tag %s: %v", p.tag, err)
				}
			}
		}()
	}
	for r := range repos {
		repo := fmt.Sprintf("acme/watched%d", r)
		watch = append(watch, repo)
		first := reg + "/" + repo + ":t0"
		whPush(t, first, must(random.Image(100, 1)))
		desc := must(remote.Get(must(name.ParseReference(first))))
		for i := 1; i < tagsPer; i++ {
			pushes <- push{desc, fmt.Sprintf("%s/%s:t%d", reg, repo, i)}
		}
	}
	close(pushes)
	wg.Wait()

	proxy := newCheckCounter(t, reg)
	for i := range watch {
		watch[i] = proxy.host + "/" + watch[i]
	}
	dsn, _ := testenv.PostgresDatabase(t)
	opts := make([]testenv.ServeOptions, 3)
	for i := range opts {
		opts[i] = testenv.ServeOptions{DBPath: dsn, Args: []string{"--poll-interval", interval.String(), "--watch", strings.Join(watch, ",")}}
	}
	procs := testenv.ServeProcesses(t, testenv.Binary(t), opts...)

	// The first round discovers the tags; measure from the next.
	seen := map[string]int{}
	if took, ok := within(2*time.Minute, func() bool {
		for k, n := range proxy.take() {
			seen[k] += n
		}
		return len(seen) == repos*tagsPer
	}); !ok {
		t.Fatalf("%d of %d tags checked %s after start", len(seen), repos*tagsPer, took)
	}
	proxy.take()
	time.Sleep(3 * interval)
	checks := proxy.take()
	total, outside := 0, 0
	for r := range repos {
		for i := range tagsPer {
			n := checks[fmt.Sprintf("acme/watched%d:t%d", r, i)]
			total += n
			if n < 2 || n > 4 {
				outside++
				if outside <= 10 {
					t.Errorf("acme/watched%d:t%d checked %d times in 3 intervals, want 3±1", r, i, n)
				}
			}
		}
	}
	t.Logf("%d checks of %d tags in 3 intervals with 3 processes (%d outside 3±1)", total, repos*tagsPer, outside)

	procs[2].Kill()
	killed := time.Now()
	missing := map[string]bool{}
	for r := range repos {
		for i := range tagsPer {
			missing[fmt.Sprintf("acme/watched%d:t%d", r, i)] = true
		}
	}
	// One interval and its jitter (a tenth), plus the watcher's tick (a
	// tenth) and a second for the check itself.
	took, ok := within(interval+interval/5+time.Second, func() bool {
		for k := range proxy.take() {
			delete(missing, k)
		}
		return len(missing) == 0
	})
	if !ok {
		t.Errorf("%d tags not checked within %s of a process being killed", len(missing), took)
	} else {
		t.Logf("every tag checked within %s of the kill", time.Since(killed).Round(100*time.Millisecond))
	}
}

// TestReplicasRideOutADatabaseOutage: PostgreSQL stops for 10 s while
// badges are being read from two processes. The badges of known images
// answer 200 throughout, /readyz says 503, a write answers a 503 JSON
// error, no process exits; once the database is back a delivery that was
// failing before the outage arrives, and a push noticed during it (the
// registry retries its notification) is delivered too.
func TestReplicasRideOutADatabaseOutage(t *testing.T) {
	dsn, cluster := testenv.PostgresDatabase(t)
	procs := replicas(t, dsn, 2)
	reg := notifyingRegistry(t, procs[0].URL)
	rc := newWHReceiver(t)
	pending, later := reg+"/acme/outage:pending", reg+"/acme/outage:later"
	whPush(t, pending, versioned(t, "1"))
	whPush(t, later, versioned(t, "1"))
	rc.subscribe(t, procs[1].URL, pending, "/pending", "image.updated")
	rc.subscribe(t, procs[1].URL, later, "/later", "image.updated")

	// A delivery the receiver refuses until the database has gone away.
	var refusing atomic.Bool
	refusing.Store(true)
	rc.answer(func(typ string) int {
		if typ == "image.updated" && refusing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	movedPending := whPush(t, pending, versioned(t, "2"))
	if _, ok := within(10*time.Second, func() bool { return len(rc.failed("/pending")) > 0 }); !ok {
		t.Fatal("the delivery of the first push was not attempted")
	}

	badges := []string{}
	for _, p := range procs {
		for _, ref := range []string{pending, later} {
			for _, kind := range []string{"version", "image"} {
				u := p.URL + "/badges/" + kind + "/" + ref + ".svg"
				fetchBadge(t, u) // known, and in memory
				badges = append(badges, u)
			}
		}
	}
	var stop atomic.Bool
	var during, failed atomic.Int64
	var outage atomic.Bool
	var failures sync.Map
	var load sync.WaitGroup
	for w := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for i := w; !stop.Load(); i++ {
				resp, err := c.Get(badges[i%len(badges)])
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					failures.Store(badges[i%len(badges)], fmt.Sprint(err, resp))
				}
				if outage.Load() {
					during.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	ctx := context.Background()
	if err := cluster.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	outage.Store(true)
	paused := time.Now()
	refusing.Store(false)
	for _, p := range procs {
		if _, ok := within(5*time.Second, func() bool { return status(t, p.URL+"/readyz") == http.StatusServiceUnavailable }); !ok {
			t.Errorf("%s/readyz does not say 503 while the database is down", p.URL)
		}
	}
	body, _ := json.Marshal(map[string]any{"image": later, "url": rc.URL + "/during"})
	resp, err := client(t).Post(procs[1].URL+"/api/v1/subscriptions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string }
	}
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(raw, &e) != nil || e.Error.Code != "unavailable" {
		t.Errorf("a subscription while the database is down: %s %s, want 503 unavailable", resp.Status, raw)
	}
	movedLater := whPush(t, later, versioned(t, "2"))
	time.Sleep(10*time.Second - time.Since(paused))
	for _, p := range procs {
		select {
		case <-p.Done():
			t.Errorf("%s exited during the outage: %v", p.URL, p.ExitErr())
		default:
		}
	}
	outage.Store(false)
	if err := cluster.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if _, ok := within(15*time.Second, func() bool { return status(t, p.URL+"/readyz") == http.StatusOK }); !ok {
			t.Errorf("%s/readyz does not say 200 after the database is back", p.URL)
		}
	}
	for path, digest := range map[string]string{"/pending": movedPending, "/later": movedLater} {
		msgs := rc.wait(path, "image.updated", 1, 60*time.Second)
		if img := imageData(t, msgs[0], "image"); img["digest"] != digest {
			t.Errorf("%s: delivered %v, want digest %s", path, img["digest"], digest)
		}
	}
	stop.Store(true)
	load.Wait()
	t.Logf("%d badge requests during the outage, %d not 200", during.Load(), failed.Load())
	if during.Load() == 0 {
		t.Error("no badge was read during the outage")
	}
	failures.Range(func(k, v any) bool {
		t.Errorf("badge %s during the outage: %v", k, v)
		return false
	})
}

// status is the status code of GET url.
func status(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
