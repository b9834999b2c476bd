package e2e_test

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// TestCopyDBOfTheDemoIntoPostgres: the demo's SQLite database, holding an
// event of every kind (image.updated, base.updated, version.released,
// tag.deleted) whose deliveries their receiver has refused so far, is copied
// into PostgreSQL with `imagebadger copy-db`; serve on PostgreSQL then
// answers the same pages and API answers as the demo did, and delivers each
// pending delivery with the webhook-id of its refused attempt.
func TestCopyDBOfTheDemoIntoPostgres(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "demo.db")
	demo := startDemo(t, "--db", file, "--allow-private-webhooks", "--poll-interval", "1h")
	reg := demo.registry
	rc := newWHReceiver(t)
	rc.answer(func(typ string) int {
		if typ == "webhook.ping" {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	app := reg + "/acme/app:2.3"
	rc.subscribe(t, demo.url, app, "/copied", "image.updated")
	moved := whPush(t, app, whImage(t, nil, 2))
	refresh(t, demo.url, app)

	// A base and a child of it, then the base rebuilt: base.updated.
	baseRef, childRef := reg+"/acme/copybase:1", reg+"/acme/copychild:1.0.0"
	base := whImage(t, nil, 2)
	whPush(t, baseRef, base)
	refresh(t, demo.url, baseRef)
	whPush(t, childRef, whImage(t, base, 1))
	refresh(t, demo.url, childRef)
	rc.subscribe(t, demo.url, childRef, "/base", "base.updated")
	rc.subscribe(t, demo.url, reg+"/acme/copychild", "/repo", "version.released", "tag.deleted")
	whPush(t, baseRef, whImage(t, nil, 2))
	refresh(t, demo.url, baseRef)
	// A new version of the child's repository: version.released; then the
	// tag deleted: tag.deleted.
	whPush(t, reg+"/acme/copychild:1.1.0", whImage(t, base, 2))
	refresh(t, demo.url, reg+"/acme/copychild:1.1.0")
	testenv.Crane(t, "delete", reg+"/acme/copychild:1.1.0")
	fetchJSON(t, "POST", demo.url+"/api/v1/images/"+reg+"/acme/copychild:1.1.0/refresh", &apiError{})

	// Each delivery refused once, and its webhook-id noted.
	refused := map[string][]string{}
	for path, n := range map[string]int{"/copied": 1, "/base": 1, "/repo": 2} {
		if _, ok := within(15*time.Second, func() bool { return len(distinct(rc.failed(path))) >= n }); !ok {
			t.Fatalf("%d deliveries to %s attempted on the demo, want %d", len(distinct(rc.failed(path))), path, n)
		}
		refused[path] = distinct(rc.failed(path))
	}

	paths := []string{
		"/",
		"/images/" + app,
		"/images/" + reg + "/acme/base:3.20",
		"/repositories/" + reg + "/acme/app",
		"/api/v1/images/" + app,
		"/api/v1/images/" + reg + "/acme/runtime:1.4",
		"/api/v1/repositories/" + reg + "/acme/app/tags",
		"/v1/images/" + reg + "/acme/app",
		"/badges/base/" + reg + "/acme/app:2.2.svg",
	}
	// A read of a tag or listing the demo's seeding left stale refreshes
	// it in the background: read until the answers settle.
	var before map[string]string
	for round := 0; ; round++ {
		now := map[string]string{}
		for _, p := range paths {
			now[p] = page(t, demo.url, p)
		}
		if cmp.Equal(before, now) {
			break
		}
		if round == 10 {
			t.Fatal("the demo's pages do not settle")
		}
		before = now
		time.Sleep(500 * time.Millisecond)
	}
	demo.stop()

	dsn, _ := testenv.PostgresDatabase(t)
	out, err := exec.Command(testenv.Binary(t), "copy-db", "--from", file, "--to", dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("copy-db: %v\n%s", err, out)
	}
	for _, table := range []string{"subscriptions", "deliveries", "tag_changes", "deleted_tags", "platform_images"} {
		if !strings.Contains(string(out), table+" ") {
			t.Errorf("copy-db does not report %s:\n%s", table, out)
		}
	}

	rc.answer(func(string) int { return http.StatusOK })
	srv := testenv.ServeProcess(t, testenv.Binary(t), testenv.ServeOptions{DBPath: dsn,
		Args: []string{"--allow-private-webhooks", "--poll-interval", "1h", "--watch", reg + "/acme/base," + reg + "/acme/runtime"}})
	for _, p := range paths {
		// Links and snippets name the service's own URL, which differs.
		got := strings.ReplaceAll(page(t, srv.URL, p), srv.URL, demo.url)
		if diff := cmp.Diff(before[p], got); diff != "" {
			t.Errorf("%s differs after the copy (-demo on SQLite +serve on PostgreSQL):\n%s", p, diff)
		}
	}
	msgs := rc.wait("/copied", "image.updated", 1, 60*time.Second)
	if id := msgs[0].header.Get("webhook-id"); id != refused["/copied"][0] {
		t.Errorf("the pending image.updated arrived as %s, first attempted as %s", id, refused["/copied"][0])
	}
	if img := imageData(t, msgs[0], "image"); img["digest"] != moved {
		t.Errorf("delivered digest %v, want %s", img["digest"], moved)
	}
	var delivered []string
	for _, m := range append(rc.wait("/base", "base.updated", 1, 60*time.Second), append(
		rc.wait("/repo", "version.released", 1, 60*time.Second), rc.wait("/repo", "tag.deleted", 1, 60*time.Second)...)...) {
		delivered = append(delivered, m.header.Get("webhook-id"))
	}
	want := append(append([]string{}, refused["/base"]...), refused["/repo"]...)
	slices.Sort(delivered)
	slices.Sort(want)
	if !cmp.Equal(delivered, want) {
		t.Errorf("delivered after the copy %v, refused before it %v", delivered, want)
	}
}

// distinct is ids without repeats, in their first order.
func distinct(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// page is the body of GET base+path, which must answer 200.
func page(t *testing.T, base, path string) string {
	t.Helper()
	resp, err := client(t).Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%.500s", path, resp.Status, body)
	}
	return string(body)
}
