package e2e_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the test reads the fan-out's cursor
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
	"github.com/imagebadger/imagebadger/store"
)

// The change log's promise (docs/DESIGN.md, "Change"): nothing is lost or
// told twice if a process dies between recording a move and telling it, or
// in the middle of telling it, since the fan-out's place in the log moves
// only with the deliveries it covers.

// TestAMoveRecordedBeforeAKillIsToldOnce: a move is committed, the process
// is killed with SIGKILL before its fan-out has told it, and restarted on
// the same database: the subscriber gets exactly one delivery, with the
// move. To make the kill fall between the two, the test holds the
// fan-out's lease itself while the move is recorded, as another replica
// that is busy would, and gives it up only once the process is dead. On
// both engines.
func TestAMoveRecordedBeforeAKillIsToldOnce(t *testing.T) {
	testenv.EachEngine(t, func(t *testing.T, db string) {
		ctx := context.Background()
		reg := testenv.Distribution(t)
		bin := testenv.Binary(t)
		args := []string{"--allow-private-webhooks", "--poll-interval", "1h"}
		first := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: db, Args: args})
		rc := newWHReceiver(t)
		ref := reg + "/acme/killed:1"
		whPush(t, ref, whImage(t, nil, 1))
		rc.subscribe(t, first.URL, ref, "/app", "image.updated")

		holder, err := store.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		// The process may be holding the lease for a step of its own (the
		// subscription's ping): the test takes it once that step is done,
		// within one lease (15 s) and a margin.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, err := holder.ClaimFanOut(ctx, "e2e-busy-replica", time.Now(), time.Hour)
			if err == nil {
				break
			}
			if !errors.Is(err, store.ErrFanOutHeld) || time.Now().After(deadline) {
				t.Fatalf("hold the fan-out: %v", err)
			}
		}
		moved := whPush(t, ref, whImage(t, nil, 1))
		refresh(t, first.URL, ref)
		var h struct {
			Changes []struct {
				Kind, Tag string
				Digest    *string
			}
		}
		getJSON(t, first.URL+"/api/v1/repositories/"+reg+"/acme/killed/history?limit=1", &h)
		if len(h.Changes) != 1 || h.Changes[0].Kind != "moved" || h.Changes[0].Digest == nil || *h.Changes[0].Digest != moved {
			t.Fatalf("the move is not recorded: %+v", h.Changes)
		}
		time.Sleep(time.Second)
		if n := rc.count("/app", "image.updated"); n != 0 {
			t.Fatalf("%d image.updated sent while the fan-out was held elsewhere", n)
		}
		first.Kill()
		if err := holder.ReleaseFanOut(ctx, "e2e-busy-replica"); err != nil {
			t.Fatal(err)
		}
		holder.Close()

		testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: first.DBPath, Args: args})
		msgs := rc.wait("/app", "image.updated", 1, 30*time.Second)
		if img := imageData(t, msgs[0], "image"); img["digest"] != moved {
			t.Errorf("told %v, want the move to %s", img["digest"], moved)
		}
		time.Sleep(2 * time.Second)
		if n := rc.count("/app", "image.updated"); n != 1 {
			t.Errorf("%d image.updated for one move, want 1", n)
		}
	})
}

// TestReplicasFanOutABaseMoveOnceThroughAKill: three processes share one
// PostgreSQL; ten images are built on one base, each with 100 subscribers
// of base.updated (1,000 in all). The base's tag moves, and the process
// holding the fan-out's lease is killed with SIGKILL while it has written
// some of the deliveries and not others. Once its lease has run out,
// another process goes on from where it stopped: every subscriber gets
// exactly one base.updated for the move, none twice. A move whose fan-out
// ends before it can be caught in the middle is followed by another, until
// one is.
func TestReplicasFanOutABaseMoveOnceThroughAKill(t *testing.T) {
	const children, perChild, perAddress = 10, 100, 10
	ctx := context.Background()
	dsn := testenv.SharedPostgresDatabase(t)
	procs := replicas(t, dsn, 3)
	owners := map[string]*testenv.Server{}
	for _, p := range procs {
		m := regexp.MustCompile(`"fan_out":"(fan_[a-z0-9]+)"`).FindStringSubmatch(p.Output())
		if m == nil {
			t.Fatalf("%s does not name its fan-out in its log:\n%s", p.Addr, p.Output())
		}
		owners[m[1]] = p
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := testenv.Distribution(t)
	rc := newBaseReceiver(t)

	baseRef := reg + "/acme/fanbase:1"
	base := whImage(t, nil, 2)
	whPush(t, baseRef, base)
	getJSON(t, procs[0].URL+"/api/v1/images/"+baseRef+"?refresh=1", &parentReport{})
	refs := make([]string, children)
	for i := range refs {
		refs[i] = fmt.Sprintf("%s/acme/fanchild%d:1", reg, i)
		whPush(t, refs[i], whImage(t, base, 1))
		var rep parentReport
		getJSON(t, procs[i%len(procs)].URL+"/api/v1/images/"+refs[i]+"?refresh=1", &rep)
		if len(rep.Platforms) != 1 || rep.Platforms[0].Parent == nil || rep.Platforms[0].Parent.Repository != "acme/fanbase" {
			t.Fatalf("test setup: %s's parent is not known: %+v", refs[i], rep)
		}
	}
	subscribeMany(t, procs, rc.URL, refs, perChild, perAddress, 2, []string{"base.updated"}, rc.secret)

	moves := 0
	for round := 1; ; round++ {
		if round > 5 {
			t.Fatal("in five moves of the base, no fan-out could be caught in the middle")
		}
		want := round
		moves = round
		whPush(t, baseRef, whImage(t, nil, 2))
		refresh(t, procs[round%len(procs)].URL, baseRef)
		killed := killMidFanOut(t, ctx, db, owners, children*perChild*round)
		if took, ok := within(90*time.Second, func() bool { return rc.complete(want) }); !ok {
			t.Fatalf("round %d: %d of %d subscribers told %s after the move", round, rc.told(want), children*perChild, took)
		}
		if killed != nil {
			t.Logf("round %d: killed %s in the middle of the fan-out", round, killed.Addr)
			break
		}
	}
	time.Sleep(2 * time.Second) // anything told twice would have come by now
	// One delivery per subscriber and move: in the outbox, and at the
	// receiver (an attempt cut short by the kill may come again, with its
	// webhook-id, as a retry of the same delivery).
	rows, err := db.QueryContext(ctx, `SELECT subscription_id, COUNT(*) FROM deliveries WHERE type = 'base.updated'
		GROUP BY subscription_id HAVING COUNT(*) <> $1`, moves)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		t.Errorf("subscription %s has %d base.updated deliveries for %d moves", id, n, moves)
	}
	rows.Close()
	if extra := rc.moreThan(moves); len(extra) > 0 {
		t.Errorf("%d subscribers got more than %d different base.updated, among them %v", len(extra), moves, extra[:min(5, len(extra))])
	}
	if bad := rc.unverified(); len(bad) > 0 {
		t.Errorf("deliveries that do not verify: %v", bad)
	}
}

// killMidFanOut watches the fan-out of a move (the deliveries of
// base.updated growing towards total) and kills the process that holds
// its lease once some but not all are written; it returns that process, or
// nil when the fan-out finished unseen in the middle.
func killMidFanOut(t *testing.T, ctx context.Context, db *sql.DB, owners map[string]*testenv.Server, total int) *testenv.Server {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		var owner sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM deliveries WHERE type = 'base.updated'),
			(SELECT lease_owner FROM fanout_cursors WHERE name = 'notify')`).Scan(&n, &owner); err != nil {
			t.Fatal(err)
		}
		switch {
		case n >= total:
			return nil
		case n > total-1000 && owner.Valid:
			if p := owners[owner.String]; p != nil {
				p.Kill()
				return p
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the fan-out of the move did not finish within 60 s")
	return nil
}

// subscribeMany makes perRef subscriptions to events of each of refs,
// delivering to receiverURL plus "/s/N", spread over the processes and
// over source addresses 127.0.subnet.x (perAddress each, under the limit
// of creations per client); keep is given each one's path and secret.
func subscribeMany(t *testing.T, procs []*testenv.Server, receiverURL string, refs []string, perRef, perAddress int, subnet byte,
	events []string, keep func(path, secret string)) {
	t.Helper()
	n := len(refs) * perRef
	clients := map[int]*http.Client{}
	for a := range n / perAddress {
		clients[a] = sourceClient(t, net.IPv4(127, 0, subnet, byte(1+a)))
	}
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				path := fmt.Sprintf("/s/%d", i)
				body, _ := json.Marshal(map[string]any{"image": refs[i%len(refs)], "url": receiverURL + path, "events": events})
				resp, err := clients[i/perAddress].Post(procs[i%len(procs)].URL+"/api/v1/subscriptions", "application/json", bytes.NewReader(body))
				if err != nil {
					errs <- err
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var sub whSubscription
				if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &sub) != nil || sub.Status != "active" {
					errs <- fmt.Errorf("subscription %d: %s %.300s", i, resp.Status, raw)
					continue
				}
				keep(path, sub.Secret)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// baseReceiver keeps, per path, the webhook-ids of the base.updated it got
// and answered, and verifies each with the path's secret.
type baseReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	secrets map[string]*standardwebhooks.Webhook
	ids     map[string][]string
	bad     []string
}

func newBaseReceiver(t *testing.T) *baseReceiver {
	rc := &baseReceiver{secrets: map[string]*standardwebhooks.Webhook{}, ids: map[string][]string{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if !strings.Contains(string(body), `"type":"base.updated"`) {
			return
		}
		if wh := rc.secrets[r.URL.Path]; wh == nil || wh.Verify(body, r.Header) != nil {
			rc.bad = append(rc.bad, r.URL.Path)
		}
		rc.ids[r.URL.Path] = append(rc.ids[r.URL.Path], r.Header.Get("webhook-id"))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *baseReceiver) secret(path, secret string) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		panic(err)
	}
	rc.mu.Lock()
	rc.secrets[path] = wh
	rc.mu.Unlock()
}

// told counts the subscribers told at least n distinct base.updated.
func (rc *baseReceiver) told(n int) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	count := 0
	for path := range rc.secrets {
		if len(distinct(rc.ids[path])) >= n {
			count++
		}
	}
	return count
}

// complete reports whether every subscriber was told n base.updated.
func (rc *baseReceiver) complete(n int) bool {
	rc.mu.Lock()
	total := len(rc.secrets)
	rc.mu.Unlock()
	return rc.told(n) == total
}

// moreThan lists the paths that got more than n different deliveries
// (webhook-ids).
func (rc *baseReceiver) moreThan(n int) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for path, ids := range rc.ids {
		if len(distinct(ids)) > n {
			out = append(out, path)
		}
	}
	return out
}

func (rc *baseReceiver) unverified() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bad...)
}
