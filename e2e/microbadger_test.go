package e2e_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// consumer runs a shell command line written as scripts written against
// api.microbadger.com and hooks.microbadger.com are (curl and jq), with the
// host swapped: $SRV is this service, $REPO the repository.
func consumer(t *testing.T, srv, repo, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Env = append(cmd.Environ(), "SRV="+srv, "REPO="+repo)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestMicroBadgerConsumersUnchanged: real consumers of MicroBadger's API,
// unchanged but for the host, get what MicroBadger would have given, each on
// a repository the service has never seen: a Makefile's
// `curl | jq -re .LatestVersion`, a CI job posting to .WebhookURL, and a
// shields-style lookup of a tag in .Versions.
func TestMicroBadgerConsumersUnchanged(t *testing.T) {
	for _, tool := range []string{"curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps`", tool)
		}
	}
	reg := testenv.Distribution(t)
	srv := testenv.Serve(t, testenv.Binary(t), "--allow-private-webhooks")
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(receiver.Close)

	// LatestVersion: the longest tag of the image latest points at.
	current := randomImage(t, 2)
	writeImage(t, reg+"/acme/app:2.3.1", current, "2.3", "2", "latest")
	writeImage(t, reg+"/acme/app:1.0", randomImage(t, 1))
	got, err := consumer(t, srv, reg+"/acme/app", `curl -fsS "$SRV/v1/images/$REPO" | jq -re '.LatestVersion'`)
	if err != nil || got != "2.3.1" {
		t.Errorf("curl | jq -re .LatestVersion: %q (%v), want 2.3.1", got, err)
	}

	// A shields-style lookup of a tag's version in Versions.
	writeImage(t, reg+"/acme/lookup:1.0", randomImage(t, 1))
	writeImage(t, reg+"/acme/lookup:2.0", randomImage(t, 1), "latest")
	want := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/acme/lookup:1.0")))
	got, err = consumer(t, srv, reg+"/acme/lookup",
		`curl -fsS "$SRV/v1/images/$REPO" | jq -re --arg t 1.0 '.Versions[] | select(any(.Tags[]; .tag == $t)) | .SHA'`)
	if err != nil || got != want {
		t.Errorf("lookup of tag 1.0 in Versions: %q (%v), want %s (crane digest)", got, err, want)
	}

	// The refresh hook from .WebhookURL: a wrong token refreshes nothing;
	// the right one re-resolves the moved tag, as the next answer shows.
	writeImage(t, reg+"/acme/hooked:1", randomImage(t, 1))
	first, err := consumer(t, srv, reg+"/acme/hooked", `curl -fsS "$SRV/v1/images/$REPO:1" | jq -re .LatestSHA`)
	if err != nil {
		t.Fatalf("first read: %q %v", first, err)
	}
	// The hook token comes with the repository's first subscription; until
	// then the answer has no WebhookURL (reading makes none).
	if out, err := consumer(t, srv, reg+"/acme/hooked", `curl -fsS "$SRV/v1/images/$REPO:1" | jq -e 'has("WebhookURL") | not'`); err != nil {
		t.Errorf("WebhookURL before any subscription: %q (%v)", out, err)
	}
	if out, err := consumer(t, srv, reg+"/acme/hooked", `curl -fsS -X POST "$SRV/api/v1/subscriptions" -H 'Content-Type: application/json' `+
		`-d "{\"image\": \"$REPO:1\", \"url\": \"`+receiver.URL+`/hook\"}" | jq -re .id`); err != nil {
		t.Fatalf("subscribing: %q (%v)", out, err)
	}
	writeImage(t, reg+"/acme/hooked:1", randomImage(t, 2))
	moved := strings.TrimSpace(string(testenv.Crane(t, "digest", reg+"/acme/hooked:1")))
	if moved == first {
		t.Fatal("the push did not move the tag")
	}
	code, err := consumer(t, srv, reg+"/acme/hooked",
		`curl -s -o /dev/null -w '%{http_code}' -X POST "$(curl -fsS "$SRV/v1/images/$REPO:1" | jq -r .WebhookURL)-wrong"`)
	if err != nil || code != "401" {
		t.Errorf("hook with a wrong token: %q (%v), want 401", code, err)
	}
	if got, _ := consumer(t, srv, reg+"/acme/hooked", `curl -fsS "$SRV/v1/images/$REPO:1" | jq -re .LatestSHA`); got != first {
		t.Errorf("after the refused hook the tag points at %s, want still %s", got, first)
	}
	out, err := consumer(t, srv, reg+"/acme/hooked", `curl -fsS -X POST "$(curl -fsS "$SRV/v1/images/$REPO:1" | jq -r .WebhookURL)"`)
	if err != nil || !strings.Contains(out, `"ok"`) {
		t.Fatalf("hook: %q (%v)", out, err)
	}
	if got, err := consumer(t, srv, reg+"/acme/hooked", `curl -fsS "$SRV/v1/images/$REPO:1" | jq -re .LatestSHA`); err != nil || got != moved {
		t.Errorf("after the hook: LatestSHA %q (%v), want the moved %s", got, err, moved)
	}
}
