package server_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// rowCounts counts the rows of every table the store has (the list copy-db
// keeps complete), through a connection of its own to the database at dsn.
func rowCounts(t *testing.T, dsn string) map[string]int64 {
	t.Helper()
	driver, source := "sqlite3", "file:"+dsn+"?mode=ro"
	if store.IsPostgres(dsn) {
		driver, source = "pgx", dsn
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]int64{}
	for _, table := range store.CopiedTables() {
		var n int64
		if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

// TestGetsWriteNoHookToken: 300 GETs of the subscription form, each for
// another Docker Hub repository, and 300 of the MicroBadger answer (whose
// WebhookURL names the hook token) leave every table of the database as
// it was; the repository's first subscription makes the token, after which
// both show it and both hook routes take it.
func TestGetsWriteNoHookToken(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		dsn := stack.NewDatabase(t, engine)
		reg := stack.New(t, stack.Options{Engine: engine, DB: dsn, Registry: true})
		s := stack.New(t, stack.Options{Store: reg.Store, Endpoints: map[string]string{"docker.io": reg.Registry.Host},
			Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
		stack.Push(t, reg.Registry.Host+"/acme/app:1")
		// The first read records the image, as every first read does.
		if code, img := getMap(t, s.URL+"/v1/images/acme/app:1"); code != 200 {
			t.Fatalf("first read: %d %v", code, img)
		}
		before := rowCounts(t, dsn)
		for i := range 300 {
			code, page := get(t, s.URL+"/subscriptions/new?image="+url.QueryEscape(fmt.Sprintf("docker.io/someone/repo%d", i)))
			if code != 200 || !strings.Contains(page, `data-testid="dockerhub-hook-later"`) {
				t.Fatalf("form %d: %d", i, code)
			}
			code, img := getMap(t, s.URL+"/v1/images/acme/app:1")
			if code != 200 {
				t.Fatalf("/v1 %d: %d %v", i, code, img)
			}
			if _, ok := img["WebhookURL"]; ok {
				t.Fatalf("/v1 names a WebhookURL before any subscription: %v", img["WebhookURL"])
			}
		}
		if after := rowCounts(t, dsn); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("600 GETs changed the rows:\nbefore %v\nafter  %v", before, after)
		}

		s.Subscribe(t, stack.NewReceiver(t), "acme/app:1", "/hook")
		after := rowCounts(t, dsn)
		if after["hook_tokens"] != before["hook_tokens"]+1 {
			t.Errorf("hook tokens %d after the subscription, want %d", after["hook_tokens"], before["hook_tokens"]+1)
		}
		_, img := getMap(t, s.URL+"/v1/images/acme/app:1")
		hook, _ := img["WebhookURL"].(string)
		if !strings.HasPrefix(hook, "http://imagebadger.test/images/acme/app/") {
			t.Fatalf("WebhookURL %q after the subscription", hook)
		}
		token := hook[strings.LastIndex(hook, "/")+1:]
		_, page := get(t, s.URL+"/subscriptions/new?image=acme/app")
		if !strings.Contains(page, "/hooks/dockerhub/"+token) {
			t.Error("the form does not show the hook token the subscription made")
		}
		// Both hook routes take it.
		resp, err := http.Post(strings.Replace(hook, "http://imagebadger.test", s.URL, 1), "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("refresh hook: %d, want 200", resp.StatusCode)
		}
		body := `{"push_data":{"tag":"1"},"repository":{"repo_name":"acme/app"}}`
		if code, out := stack.PostHook(t, s.URL+"/hooks/dockerhub/"+token, "", "application/json", body); code != 202 {
			t.Errorf("Docker Hub hook: %d %v, want 202", code, out)
		}
	})
}
