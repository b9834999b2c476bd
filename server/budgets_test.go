package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// TestRateLimitBudgetsAreShown: a registry that sends Docker Hub's
// ratelimit-limit and ratelimit-remaining headers gets the gauges docs/API.md
// names in /metrics, and once its budget is low /healthz/registries and the
// image page say so.
func TestRateLimitBudgetsAreShown(t *testing.T) {
	var remaining atomic.Int64
	remaining.Store(76)
	inner := ggcr.New()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Limit", "100;w=21600")
		w.Header().Set("RateLimit-Remaining", itoa(remaining.Load())+";w=21600")
		w.Header().Set("Docker-RateLimit-Source", "192.0.2.1")
		inner.ServeHTTP(w, r)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	ref := host + "/acme/app:1"
	pushRandom(t, ref)
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	var rep struct{ Digest string }
	if status := getJSON(t, s.URL+"/api/v1/images/"+ref, &rep); status != 200 {
		t.Fatalf("image report: %d", status)
	}
	metrics := body(t, s.URL+"/metrics")
	for _, want := range []string{
		`imagebadger_registry_ratelimit_remaining{registry="` + host + `"} 76`,
		`imagebadger_registry_ratelimit_limit{registry="` + host + `"} 100`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if st := body(t, s.URL+"/healthz/registries"); !strings.Contains(st, host+" ratelimit 76/100 in its 6h window: ok") {
		t.Errorf("/healthz/registries = %q", st)
	}
	if page := body(t, s.URL+"/images/"+ref); strings.Contains(page, `data-testid="budget-notice"`) {
		t.Error("the image page warns of a budget at 76%")
	}

	remaining.Store(12)
	if status := getJSON(t, s.URL+"/api/v1/images/"+ref+"?refresh=1", &rep); status != 200 {
		t.Fatalf("refresh: %d", status)
	}
	if st := body(t, s.URL+"/healthz/registries"); !strings.Contains(st, host+" ratelimit 12/100 in its 6h window: low") {
		t.Errorf("/healthz/registries = %q, want low", st)
	}
	if page := body(t, s.URL+"/images/"+ref); !strings.Contains(page, `data-testid="budget-notice"`) || !strings.Contains(page, "12 of 100 requests left") {
		t.Error("the image page does not say the budget is low")
	}
}

func body(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
