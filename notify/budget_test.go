package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/notify"
	"github.com/imagebadger/imagebadger/registry"
)

// TestPollingLeavesTheLastFifthOfABudget: once a registry says no more than
// 20% of its rate limit is left, the watcher's poll sends no GET for the
// new image it found (HEADs first, GETs only for new digests, and none from
// the reserve), and records no move; a read a person asks for still goes
// through and records it.
func TestPollingLeavesTheLastFifthOfABudget(t *testing.T) {
	var remaining atomic.Int64
	remaining.Store(90)
	var mu sync.Mutex
	methods := map[string]int{}
	inner := ggcr.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/blobs/") {
			mu.Lock()
			methods[r.Method]++
			mu.Unlock()
		}
		w.Header().Set("RateLimit-Limit", "100;w=21600")
		w.Header().Set("RateLimit-Remaining", strconv.FormatInt(remaining.Load(), 10)+";w=21600")
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func() string {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := crane.Push(img, host+"/acme/app:1"); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String()
	}
	count := func(m string) int {
		mu.Lock()
		defer mu.Unlock()
		return methods[m]
	}
	first := push()
	st := openStore(t)
	client, err := registry.New(registry.Options{Keychain: authn.NewMultiKeychain(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	svc := images.New(images.Options{Client: client, Store: st, FreshFor: time.Millisecond})
	defer svc.Close(context.Background())
	ref := analysis.Reference{Repository: analysis.Repository{Registry: host, Name: "acme/app"}, Tag: "1"}
	w := notify.NewWatcher(notify.WatcherOptions{Images: svc.System(), Store: st, Interval: time.Hour,
		Watched: []analysis.Repository{ref.Repository}})
	if err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tg, err := st.Tag(context.Background(), ref.Repository, "1"); err != nil || tg.Digest != first {
		t.Fatalf("after the first poll: %+v, %v", tg, err)
	}

	second := push()
	remaining.Store(15) // what the registry will say from now on
	// One answer (a HEAD, which records nothing) tells the client the
	// budget is down to 15%.
	if _, _, err := client.Resolve(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if b, ok := svc.Budget(host); !ok || !b.Low() {
		t.Fatalf("budget %+v not low", b)
	}
	gets := count(http.MethodGet)
	if err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(http.MethodGet) - gets; n != 0 {
		t.Errorf("the poll sent %d GETs from the last 20%% of the budget", n)
	}
	if tg, _ := st.Tag(context.Background(), ref.Repository, "1"); tg.Digest != first {
		t.Errorf("the poll recorded the move to %s without reading it", tg.Digest)
	}
	ans, err := svc.Read(context.Background(), auth.Viewer{}, ref, images.ReadOptions{Refresh: true})
	if err != nil || ans.Report.Digest != second {
		t.Errorf("a read asked for by a person: %v, digest %v, want %s", err, ans.Report, second)
	}
}
