package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/syncbuf"
	"github.com/imagebadger/imagebadger/server"
)

// opsServer is a server whose log goes to a buffer at level, with the
// default network policy (so a badge of a loopback registry is answered at
// once, without a registry).
func opsServer(t *testing.T, level slog.Level, cfg server.Options) (*stack.Stack, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	return stack.New(t, stack.Options{StrictRegistries: true, Server: &cfg, Log: logs, LogLevel: level}), logs
}

// requestLine is the part of a request's log line the tests compare.
type requestLine struct {
	Level, Method, Path, Route string
	Status                     int
}

// requestLines parses the JSON lines of a log and keeps the request ones.
func requestLines(t *testing.T, log string) []requestLine {
	t.Helper()
	var out []requestLine
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l struct {
			Level, Msg, Method, Path, Route string
			Status                          int
			DurationMS                      *float64 `json:"duration_ms"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("a log line is not JSON: %q: %v", sc.Text(), err)
		}
		if l.Msg != "http" {
			continue
		}
		if l.DurationMS == nil {
			t.Errorf("request line without duration_ms: %s", sc.Text())
		}
		out = append(out, requestLine{Level: l.Level, Method: l.Method, Path: l.Path, Route: l.Route, Status: l.Status})
	}
	return out
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestRequestLogLevels: requests are logged at info, except badges,
// /healthz, /readyz and /metrics, which are logged at debug: at info a
// badge request leaves no line and a page request one; at debug both do,
// each at its level, naming its route; at warn neither.
func TestRequestLogLevels(t *testing.T) {
	const badgePath = "/badges/version/127.0.0.1:1/acme/app:1.svg"
	badgeLine := requestLine{Level: "DEBUG", Method: "GET", Path: badgePath, Route: "/badges/{kind}/{reference:.+}.svg", Status: http.StatusOK}
	quietLines := []requestLine{
		badgeLine,
		{Level: "DEBUG", Method: "GET", Path: "/healthz", Route: "/healthz", Status: http.StatusOK},
		{Level: "DEBUG", Method: "GET", Path: "/readyz", Route: "/readyz", Status: http.StatusOK},
		{Level: "DEBUG", Method: "GET", Path: "/metrics", Route: "/metrics", Status: http.StatusOK},
	}
	pageLines := []requestLine{
		{Level: "INFO", Method: "GET", Path: "/", Route: "/", Status: http.StatusOK},
		{Level: "INFO", Method: "GET", Path: "/search", Route: "/search", Status: http.StatusOK},
	}
	for _, tc := range []struct {
		level slog.Level
		want  []requestLine
	}{
		{slog.LevelDebug, append(append([]requestLine{}, quietLines...), pageLines...)},
		{slog.LevelInfo, pageLines},
		{slog.LevelWarn, nil},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			hs, logs := opsServer(t, tc.level, server.Options{})
			for _, p := range []string{badgePath, "/healthz", "/readyz", "/metrics", "/", "/search"} {
				if code, body := fetch(t, hs.URL+p); code != http.StatusOK {
					t.Fatalf("GET %s: %d %s", p, code, body)
				}
			}
			got := requestLines(t, logs.String())
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request lines at %s (-want +got):\n%s", tc.level, diff)
			}
		})
	}
}

// TestSeparateMetrics: with SeparateMetrics the main router answers 404 for
// /metrics, and MetricsHandler serves the same registry (and nothing else).
func TestSeparateMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := func() *server.Server {
		hs, _ := opsServer(t, slog.LevelInfo, server.Options{Metrics: reg, SeparateMetrics: true})
		if code, _ := fetch(t, hs.URL+"/metrics"); code != http.StatusNotFound {
			t.Errorf("/metrics on the main address: %d, want 404", code)
		}
		if code, _ := fetch(t, hs.URL+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz on the main address: %d", code)
		}
		return hs.Server
	}()
	ms := httptest.NewServer(srv.MetricsHandler())
	defer ms.Close()
	code, body := fetch(t, ms.URL+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "imagebadger_http_requests_total") {
		t.Errorf("/metrics on the metrics address: %d\n%.300s", code, body)
	}
	if code, _ := fetch(t, ms.URL+"/"); code != http.StatusNotFound {
		t.Errorf("/ on the metrics address: %d, want 404", code)
	}
}

// TestBuildInfo: the build given to the server is the gauge
// imagebadger_build_info (with the Go version the binary runs) and the
// footer of every page, errors included.
func TestBuildInfo(t *testing.T) {
	build := server.BuildInfo{Version: "v1.2.3", Commit: "0f3c2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a", Date: "2026-11-20T10:00:00Z"}
	hs, _ := opsServer(t, slog.LevelInfo, server.Options{Build: build})
	_, metrics := fetch(t, hs.URL+"/metrics")
	want := `imagebadger_build_info{commit="0f3c2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a",date="2026-11-20T10:00:00Z",goversion="` + runtime.Version() + `",version="v1.2.3"} 1`
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks\n%s\n%s", want, grepLines(metrics, "imagebadger_build_info"))
	}
	for _, p := range []string{"/", "/search?q=acme", "/no/such/page", "/subscriptions/new", "/images/127.0.0.1:1/acme/app:1"} {
		_, body := fetch(t, hs.URL+p)
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if got := doc.Find(`footer [data-testid="version"]`).Text(); got != "Version v1.2.3 (0f3c2a9e8d7c)." {
			t.Errorf("GET %s: footer version %q", p, got)
		}
	}
	for _, tc := range []struct {
		b    server.BuildInfo
		want string
	}{
		{server.BuildInfo{Version: "v1.2.3"}, "v1.2.3"},
		{server.BuildInfo{Version: "devel", Commit: "abc"}, "devel (abc)"},
		{server.BuildInfo{Version: "v0.0.0-20261120100000-0f3c2a9e8d7c", Commit: "0f3c2a9e8d7c6b5a"}, "v0.0.0-20261120100000-0f3c2a9e8d7c"},
		{server.BuildInfo{}, ""},
	} {
		if got := tc.b.Display(); got != tc.want {
			t.Errorf("%+v.Display() = %q, want %q", tc.b, got, tc.want)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
