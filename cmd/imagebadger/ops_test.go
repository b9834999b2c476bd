package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
	"github.com/imagebadger/imagebadger/server"
	"github.com/imagebadger/imagebadger/store"
)

// logLine is one line of the log in either format, as key → value.
type logLine map[string]string

// parseLog reads a log of format json or text into its lines. The text
// format is log/slog's key=value, values quoted where they need it.
func parseLog(t *testing.T, format, log string) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		line := sc.Text()
		l := logLine{}
		if format == "json" {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("a line of the JSON log is not JSON: %q: %v", line, err)
			}
			for k, v := range m {
				switch v := v.(type) {
				case string:
					l[k] = v
				case float64:
					l[k] = strconv.FormatFloat(v, 'f', -1, 64)
				default:
					b, _ := json.Marshal(v)
					l[k] = string(b)
				}
			}
		} else {
			rest := line
			for rest != "" {
				key, after, ok := strings.Cut(rest, "=")
				if !ok || strings.ContainsAny(key, ` "`) {
					t.Fatalf("a line of the text log is not key=value: %q", line)
				}
				var val string
				if strings.HasPrefix(after, `"`) {
					q, err := strconv.QuotedPrefix(after)
					if err != nil {
						t.Fatalf("a quoted value of the text log: %q: %v", line, err)
					}
					val, _ = strconv.Unquote(q)
					after = after[len(q):]
				} else {
					val, after, _ = strings.Cut(after, " ")
					after = " " + after
				}
				l[key] = val
				rest = strings.TrimPrefix(after, " ")
			}
		}
		out = append(out, l)
	}
	return out
}

// inProcess is a serve run by run in this process.
type inProcess struct {
	addr, metricsAddr string
	logs              *testenv.Buffer
	cancel            context.CancelFunc
	done              chan error
}

// startServe runs `imagebadger serve args…` in this process on a free
// loopback port and a database in t.TempDir(), and waits until /healthz
// answers. The metrics address, when there is one, is read from the
// serving line of the log (which a level above info leaves out).
func startServe(t *testing.T, env map[string]string, args ...string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{logs: &testenv.Buffer{}, cancel: cancel, done: make(chan error, 1), addr: freeAddr(t)}
	args = append([]string{"serve", "--addr", p.addr, "--db", filepath.Join(t.TempDir(), "ib.db")}, args...)
	go func() { p.done <- run(ctx, args, envOf(env), io.Discard, p.logs) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.addr + "/healthz"); err == nil {
			resp.Body.Close()
			for _, l := range p.lines(t) {
				if l["msg"] == "imagebadger serving" {
					p.metricsAddr = l["metrics_addr"]
				}
			}
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("serve ended before serving: %v\n%s", err, p.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start in 20 s:\n%s", p.logs)
	return nil
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lines parses the log so far, in the format the line starting it has.
func (p *inProcess) lines(t *testing.T) []logLine {
	t.Helper()
	s := p.logs.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i+1]
	} else {
		return nil
	}
	format := "text"
	if strings.HasPrefix(s, "{") {
		format = "json"
	}
	return parseLog(t, format, s)
}

// stop ends the serve and waits for run to return.
func (p *inProcess) stop(t *testing.T) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not stop in 30 s")
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeLogs: the real serve logs in the format and at the level its
// flags (or variables) say. At info a badge request and /healthz leave no
// line and a page request leaves one; at debug all three do, each at its
// level; both formats carry the same keys.
func TestServeLogs(t *testing.T) {
	const badge = "/badges/version/127.0.0.1:1/acme/app:1.svg"
	for _, tc := range []struct {
		format, level string
		viaEnv        bool
		want          map[string]string // path → level of its line; absent: none
	}{
		{"json", "info", false, map[string]string{"/": "INFO"}},
		{"text", "info", true, map[string]string{"/": "INFO"}},
		{"json", "debug", true, map[string]string{"/": "INFO", "/healthz": "DEBUG", badge: "DEBUG"}},
		{"text", "debug", false, map[string]string{"/": "INFO", "/healthz": "DEBUG", badge: "DEBUG"}},
		{"json", "warn", false, map[string]string{}},
	} {
		t.Run(tc.format+"-"+tc.level, func(t *testing.T) {
			var p *inProcess
			if tc.viaEnv {
				p = startServe(t, map[string]string{"IMAGEBADGER_LOG_FORMAT": tc.format, "IMAGEBADGER_LOG_LEVEL": tc.level})
			} else {
				p = startServe(t, nil, "--log-format", tc.format, "--log-level", tc.level)
			}
			for _, path := range []string{badge, "/healthz", "/"} {
				if code := status(t, "http://"+p.addr+path); code != http.StatusOK {
					t.Fatalf("GET %s: %d", path, code)
				}
			}
			p.stop(t)
			got := map[string]string{}
			for _, l := range p.lines(t) {
				if l["msg"] != "http" {
					continue
				}
				got[l["path"]] = l["level"]
				if l["method"] != "GET" || l["status"] != "200" || l["route"] == "" || l["duration_ms"] == "" {
					t.Errorf("request line lacks method, status, route or duration: %v", l)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request lines, path → level (-want +got):\n%s\n%s", diff, p.logs)
			}
		})
	}
}

// TestMetricsAddr: with --metrics-addr, /metrics answers there and 404 on
// the main address; at the end both listeners stop, the main one first,
// and neither takes connections after serve returns.
func TestMetricsAddr(t *testing.T) {
	p := startServe(t, nil, "--metrics-addr", "127.0.0.1:0", "--log-level", "debug")
	if p.metricsAddr == "" || p.metricsAddr == p.addr {
		t.Fatalf("the serving line names metrics_addr %q (main %s)", p.metricsAddr, p.addr)
	}
	if code := status(t, "http://"+p.addr+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the main address: %d, want 404", code)
	}
	if code := status(t, "http://"+p.addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz on the main address: %d", code)
	}
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "imagebadger_build_info{") || !strings.Contains(string(body), "imagebadger_http_requests_total") {
		t.Errorf("/metrics on the metrics address: %d\n%.400s", resp.StatusCode, body)
	}
	if code := status(t, "http://"+p.metricsAddr+"/"); code != http.StatusNotFound {
		t.Errorf("/ on the metrics address: %d, want 404", code)
	}
	p.stop(t)
	var stopped []string
	for _, l := range p.lines(t) {
		if l["msg"] == "stopped serving" {
			stopped = append(stopped, l["listener"])
		}
	}
	if diff := cmp.Diff([]string{"main", "metrics"}, stopped); diff != "" {
		t.Errorf("listeners stopped (-want +got):\n%s", diff)
	}
	for _, a := range []string{p.addr, p.metricsAddr} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still takes connections after serve returned", a)
		}
	}
	// A taken metrics port stops the start, naming it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "ib.db"), "--metrics-addr", ln.Addr().String()}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("serve with a taken metrics port: %v", err)
	}
}

// TestHealthcheck: exit 0 when /healthz answers 200, 1 when the port is
// closed, the answer is not 200 or comes too late, each with the reason;
// the default URL is loopback on the port of --addr (IMAGEBADGER_ADDR).
func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ok\n")
	}))
	defer ok.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the database does not answer", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	redirect := httptest.NewServer(http.RedirectHandler(ok.URL+"/healthz", http.StatusFound))
	defer redirect.Close()
	closed := freeAddr(t)
	_, okPort, _ := net.SplitHostPort(strings.TrimPrefix(ok.URL, "http://"))
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"--url", ok.URL}, nil, 0, "answered 200"},
		{[]string{"--url", ok.URL + "/"}, nil, 0, "answered 200"},
		{nil, map[string]string{"IMAGEBADGER_ADDR": ":" + okPort}, 0, "http://127.0.0.1:" + okPort + "/healthz"},
		{[]string{"--addr", "0.0.0.0:" + okPort}, nil, 0, "answered 200"},
		{[]string{"--url", "http://" + closed}, nil, 1, "connection refused"},
		{[]string{"--url", sick.URL}, nil, 1, "503"},
		{[]string{"--url", redirect.URL}, nil, 1, "302"},
		{[]string{"--url", slow.URL, "--timeout", "200ms"}, nil, 1, "no answer within 200ms"},
		{[]string{"--url", "127.0.0.1:8080"}, nil, 2, "not an http or https URL"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"healthcheck"}, tc.args...), envOf(tc.env), &out, io.Discard)
		msg := out.String()
		if err != nil {
			msg = err.Error()
		}
		if exitCode(err) != tc.code && !(err == nil && tc.code == 0) || !strings.Contains(msg, tc.want) {
			t.Errorf("healthcheck %v %v: %q (exit %d), want exit %d saying %q", tc.args, tc.env, msg, exitCode(err), tc.code, tc.want)
		}
	}
}

// TestBackupCommand: backup writes a copy that opens as the same database
// and says where it went; its refusals say what to do: no --to (exit 2), a
// PostgreSQL database (pg_dump, without its password), no database at
// --db, a target that exists (left as it was).
func TestBackupCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "ib.db")
	st, err := store.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutManifest(ctx, "sha256:aa", "application/vnd.oci.image.manifest.v1+json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out bytes.Buffer
	to := filepath.Join(dir, "backup.db")
	if err := run(ctx, []string{"backup", "--to", to}, envOf(map[string]string{"IMAGEBADGER_DB": src}), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "backed up "+src+" to "+to) {
		t.Errorf("backup says %q", out.String())
	}
	got, err := store.Open(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	if _, body, err := got.Manifest(ctx, "sha256:aa"); err != nil || string(body) != `{}` {
		t.Errorf("the copy's manifest: %q %v", body, err)
	}
	got.Close()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--db", src}, 2, "--to FILE is missing"},
		{[]string{"--db", "postgres://u:pw@127.0.0.1:1/ib", "--to", filepath.Join(dir, "b.db")}, 1, "pg_dump"},
		{[]string{"--db", filepath.Join(dir, "none.db"), "--to", filepath.Join(dir, "b.db")}, 1, "there is no database at " + filepath.Join(dir, "none.db")},
		{[]string{"--db", src, "--to", to}, 1, to + " exists"},
	} {
		err := run(ctx, append([]string{"backup"}, tc.args...), noEnv, &out, io.Discard)
		if err == nil || exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pw@") {
			t.Errorf("backup %v: %v (exit %d), want exit %d saying %q", tc.args, err, exitCode(err), tc.code, tc.want)
		}
	}
}

// TestBuildFrom: the link-time values win; what they leave empty comes
// from the go command's build information (the module version of `go
// install …@v1.2.3`, the VCS revision and time of a build in a checkout,
// marked -dirty for a modified tree); "devel" when nothing says.
func TestBuildFrom(t *testing.T) {
	info := func(version string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/imagebadger/imagebadger", Version: version}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, tc := range []struct {
		name    string
		v, c, d string
		read    func() (*debug.BuildInfo, bool)
		want    server.BuildInfo
	}{
		{"ldflags", "v1.2.3", "0f3c2a9", "2026-11-20T10:00:00Z", info("(devel)", "vcs.revision", "ffff"), server.BuildInfo{Version: "v1.2.3", Commit: "0f3c2a9", Date: "2026-11-20T10:00:00Z"}},
		{"go install @version", "", "", "", info("v1.2.3"), server.BuildInfo{Version: "v1.2.3"}},
		{"a checkout", "", "", "", info("v0.0.0-20261120100000-0f3c2a9e8d7c", "vcs.revision", "0f3c2a9e8d7c6b5a", "vcs.time", "2026-11-20T10:00:00Z", "vcs.modified", "false"),
			server.BuildInfo{Version: "v0.0.0-20261120100000-0f3c2a9e8d7c", Commit: "0f3c2a9e8d7c6b5a", Date: "2026-11-20T10:00:00Z"}},
		{"a modified checkout", "", "", "", info("(devel)", "vcs.revision", "0f3c2a9e8d7c6b5a", "vcs.time", "2026-11-20T10:00:00Z", "vcs.modified", "true"),
			server.BuildInfo{Version: "devel", Commit: "0f3c2a9e8d7c6b5a-dirty", Date: "2026-11-20T10:00:00Z"}},
		{"only a version at link time", "v2.0.0", "", "", info("(devel)", "vcs.revision", "abc", "vcs.time", "2026-01-02T03:04:05Z"),
			server.BuildInfo{Version: "v2.0.0", Commit: "abc", Date: "2026-01-02T03:04:05Z"}},
		{"nothing", "", "", "", none, server.BuildInfo{Version: "devel"}},
	} {
		if diff := cmp.Diff(tc.want, buildFrom(tc.v, tc.c, tc.d, tc.read)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	var out bytes.Buffer
	if err := printVersion(&out, server.BuildInfo{Version: "v1.2.3", Commit: "0f3c2a9", Date: "2026-11-20T10:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"imagebadger v1.2.3\n", "commit: 0f3c2a9\n", "date:   2026-11-20T10:00:00Z\n", "go:     go1."} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("version output lacks %q:\n%s", w, out.String())
		}
	}
}

// TestPrivateImagesPolicyLogged: serve says at start who sees private
// images: signed-in people by default, everyone when the flag or its
// variable says so.
func TestPrivateImagesPolicyLogged(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "signed-in"},
		{map[string]string{"IMAGEBADGER_PRIVATE_IMAGES": "everyone"}, nil, "everyone"},
		{nil, []string{"--private-images=everyone"}, "everyone"},
	} {
		p := startServe(t, tc.env, tc.args...)
		found := ""
		for _, l := range p.lines(t) {
			if v, ok := l["private_images"]; ok {
				found = v
			}
		}
		if found != tc.want {
			t.Errorf("env %v, args %v: logged private_images %q, want %q\n%s", tc.env, tc.args, found, tc.want, p.logs)
		}
		p.stop(t)
	}
}
