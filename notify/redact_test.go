package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagebadger/imagebadger/internal/testing/syncbuf"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/store"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/…redacted"},
		{"https://discord.com/api/webhooks/123/tok", "https://discord.com/…redacted"},
		{"http://127.0.0.1:8080/hook?token=abc", "http://127.0.0.1:8080/…redacted"},
		{"https://ntfy.sh/?auth=abc", "https://ntfy.sh/…redacted"},
		{"https://example.com", "https://example.com"},
		{"https://example.com/", "https://example.com"},
		{"https://[::1]:9000/a", "https://[::1]:9000/…redacted"},
		{"not a url at all/secret", "…redacted"},
		{"http://%zz/secret", "…redacted"},
	} {
		if got := notify.RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFailedDeliveryLogsNoSecretOfTheURL sends Slack deliveries that fail
// three ways (a 500 answer, a refused connection, no answer in time) and
// reads every log line the worker wrote, at every level: none holds any
// part of the URL's path or query, which for Slack is the webhook's
// secret, and each still says where the delivery went and why it failed.
func TestFailedDeliveryLogsNoSecretOfTheURL(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no_service", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	hung := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hung) })
	// A port nothing listens on any more: the connection is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	secrets := map[string]string{
		"answered 500":     failing.URL + "/services/T0SECRET1/B0SECRET1/PathSecret1?token=QuerySecret1",
		"connection":       closed + "/services/T0SECRET2/B0SECRET2/PathSecret2?token=QuerySecret2",
		"no answer within": slow.URL + "/services/T0SECRET3/B0SECRET3/PathSecret3?token=QuerySecret3",
	}
	st := openStore(t)
	i := 0
	for _, target := range secrets {
		i++
		sub := store.Subscription{ID: "sub_" + string(rune('a'+i)), Repo: repo, Tag: "1.0", URL: target, Events: []string{notify.TypeImageUpdated},
			Secret: notify.NewSecret(), TokenHash: "h", Status: store.SubscriptionActive, CreatedAt: t0, Format: notify.FormatSlack}
		if _, err := st.CreateSubscription(context.Background(), sub, store.NewDelivery{}); err != nil {
			t.Fatal(err)
		}
	}
	moveTag(t, st, "1.0", dNew, t0)

	var logs syncbuf.Buffer
	w := notify.NewWorker(notify.WorkerOptions{Store: st, Transport: loopbackTransport(), Now: func() time.Time { return t0 },
		Timeout: 300 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if n, err := w.RunOnce(context.Background()); err != nil || n != len(secrets) {
		t.Fatalf("attempts %d (%v), want %d", n, err, len(secrets))
	}
	out := logs.String()
	for _, secret := range []string{"SECRET1", "SECRET2", "SECRET3", "PathSecret", "QuerySecret", "token=", "/services/"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q of a webhook URL:\n%s", secret, out)
		}
	}
	// Each failure is logged, naming its receiver and what went wrong.
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "webhook attempt" {
			lines = append(lines, m)
		}
	}
	if len(lines) != len(secrets) {
		t.Fatalf("%d attempt lines, want %d:\n%s", len(lines), len(secrets), out)
	}
	for what, target := range secrets {
		host := target[:strings.Index(target, "/services/")]
		found := false
		for _, m := range lines {
			if m["receiver"] == host+"/…redacted" && strings.Contains(m["error"].(string)+" "+m["detail"].(string), what) {
				found = true
			}
		}
		if !found {
			t.Errorf("no attempt line names %s/…redacted with %q:\n%s", host, what, out)
		}
	}
	// The refused connection's own error is kept, with its URL redacted.
	if !strings.Contains(out, closed+"/…redacted") {
		t.Errorf("the refused attempt's detail lost its redacted URL:\n%s", out)
	}
}
