package e2e_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// startRegistryWithLog starts the distribution registry and returns it, so
// a test can read its request log.
func startRegistryWithLog(t *testing.T) *distreg.Registry {
	t.Helper()
	reg, err := distreg.Start(context.Background(), distreg.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start distribution registry: %v", err)
	}
	t.Cleanup(reg.Stop)
	return reg
}

// fileLayer is a layer of files (path, size: random bytes from seed, so
// every layer is its own blob) and whiteouts (a .wh. name, size 0).
func fileLayer(t *testing.T, seed uint64, files ...any) v1.Layer {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		p, size := files[i].(string), files[i+1].(int)
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(rnd.Uint32())
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return stack.TarLayer(t, buf.Bytes())
}

func pushImage(t *testing.T, ref string, layers ...v1.Layer) {
	t.Helper()
	stack.PushImage(t, stack.LayersImage(t, layers...), ref)
}

type contentsAnswer struct {
	State          string `json:"state"`
	Reason         string `json:"reason"`
	LayersDone     int    `json:"layersDone"`
	BytesRead      int64  `json:"bytesRead"`
	WastedSize     int64  `json:"wastedSize"`
	LayerFilesSize int64  `json:"layerFilesSize"`
	TotalSize      int64  `json:"totalSize"`
}

// analyseContents POSTs the contents route, then GETs it until it is no
// longer 202 (bounded), and returns the last answer.
func analyseContents(t *testing.T, srv, ref string) (int, contentsAnswer) {
	t.Helper()
	u := srv + "/api/v1/images/" + ref + "/contents"
	var a contentsAnswer
	if code := fetchJSON(t, http.MethodPost, u, &a); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("POST %s: %d", u, code)
	}
	for range 600 {
		a = contentsAnswer{}
		code := fetchJSON(t, http.MethodGet, u, &a)
		if code != http.StatusAccepted {
			return code, a
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: the analysis did not end", ref)
	return 0, a
}

// blobReads counts the registry's log lines of GETs of a blob.
func blobReads(log, digest string) int {
	n := 0
	for line := range strings.Lines(log) {
		if strings.Contains(line, "/blobs/"+digest) && strings.Contains(line, "GET") {
			n++
		}
	}
	return n
}

func layerDigests(t *testing.T, layers ...v1.Layer) []string {
	t.Helper()
	var out []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

// TestContentsOnDistribution: the analysis of an image on the real
// registry, a second image on the same three base layers that reads none of
// their bytes again (the registry's request log says so), an image over the
// byte budget that ends too_large with nothing kept, and the CI gate.
func TestContentsOnDistribution(t *testing.T) {
	bin := testenv.Binary(t)
	testenv.EachEngine(t, func(t *testing.T, db string) {
		reg := startRegistryWithLog(t)
		base := []v1.Layer{
			fileLayer(t, 1, "bin/sh", 20000),
			fileLayer(t, 2, "lib/libc.so", 30000),
			fileLayer(t, 3, "etc/os-release", 500),
		}
		// The app ships a 40,000-byte cache and removes it in its last layer.
		app := append(append([]v1.Layer{}, base...), fileLayer(t, 4, "app/bin", 5000, "var/cache/apt.bin", 40000), fileLayer(t, 5, "var/cache/.wh.apt.bin", 0))
		lean := append(append([]v1.Layer{}, base...), fileLayer(t, 6, "srv/site", 7000))
		pushImage(t, reg.Addr+"/acme/app:1", app...)
		pushImage(t, reg.Addr+"/acme/lean:1", lean...)
		srv := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: db}).URL

		code, a := analyseContents(t, srv, reg.Addr+"/acme/app:1")
		if code != http.StatusOK || a.State != "done" || a.WastedSize != 40000 || a.LayerFilesSize != 95500 || a.TotalSize != 55500 {
			t.Fatalf("app: %d %+v, want done with the 40,000-byte cache wasted", code, a)
		}
		logBefore := len(reg.Log())
		code, a = analyseContents(t, srv, reg.Addr+"/acme/lean:1")
		if code != http.StatusOK || a.State != "done" || a.WastedSize != 0 {
			t.Fatalf("lean: %d %+v", code, a)
		}
		after := reg.Log()[logBefore:]
		for i, d := range layerDigests(t, base...) {
			if n := blobReads(after, d); n != 0 {
				t.Errorf("base layer %d (%s) read again %d times for the second image", i, d, n)
			}
		}
		if n := blobReads(after, layerDigests(t, lean[3])[0]); n == 0 {
			t.Errorf("the second image's own layer was not read")
		}

		// Over the byte budget: failed, too_large, and no tree served.
		small := testenv.ServeProcess(t, bin, testenv.ServeOptions{Args: []string{"--contents-max-bytes=1000"}}).URL
		code, a = analyseContents(t, small, reg.Addr+"/acme/app:1")
		if code != http.StatusOK || a.State != "failed" || a.Reason != "too_large" {
			t.Errorf("over the budget: %d %+v, want failed too_large", code, a)
		}
		var e apiError
		if code := fetchJSON(t, http.MethodGet, small+"/api/v1/images/"+reg.Addr+"/acme/app:1/contents/tree", &e); code != http.StatusNotFound || e.Error.Code != "not_analyzed" {
			t.Errorf("tree of an image over budget: %d %+v", code, e)
		}
	})

	t.Run("ci", func(t *testing.T) {
		reg := startRegistryWithLog(t)
		pushImage(t, reg.Addr+"/acme/fat:1", fileLayer(t, 7, "app", 1000, "cache", 9000), fileLayer(t, 8, ".wh.cache", 0))
		pushImage(t, reg.Addr+"/acme/thin:1", fileLayer(t, 9, "app", 1000))
		for _, tc := range []struct {
			ref  string
			code int
		}{{"/acme/fat:1", 1}, {"/acme/thin:1", 0}} {
			out, err := exec.Command(bin, "contents", "--ci", "--allow-private-registries", reg.Addr+tc.ref).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("contents --ci %s: exit %d, want %d\n%s", tc.ref, code, tc.code, out)
			}
		}
	})
}

// slowBlobs is a reverse proxy in front of a registry that sends blob
// bodies at rate bytes a second, so an analysis lasts long enough to be
// watched, and killed.
func slowBlobs(t *testing.T, target string, rate int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/blobs/") && resp.Request.Method == http.MethodGet {
			resp.Body = &slowBody{rc: resp.Body, chunk: rate / 10}
		}
		return nil
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type slowBody struct {
	rc    io.ReadCloser
	chunk int
}

func (b *slowBody) Read(p []byte) (int, error) {
	time.Sleep(100 * time.Millisecond)
	return b.rc.Read(p[:min(len(p), b.chunk)])
}

func (b *slowBody) Close() error { return b.rc.Close() }

// TestContentsKilledMidway: a process killed -9 in the middle of an
// analysis leaves nothing served as analysed; after a restart a new POST
// finishes it.
func TestContentsKilledMidway(t *testing.T) {
	bin := testenv.Binary(t)
	testenv.EachEngine(t, func(t *testing.T, db string) {
		reg := startRegistryWithLog(t)
		host := slowBlobs(t, reg.Addr, 256<<10)
		pushImage(t, reg.Addr+"/acme/big:1", fileLayer(t, 10, "small", 100), fileLayer(t, 11, "big.bin", 1<<20))
		ref := host + "/acme/big:1"
		first := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: db})
		u := first.URL + "/api/v1/images/" + ref + "/contents"
		var a contentsAnswer
		fetchJSON(t, http.MethodPost, u, &a)
		for range 200 {
			a = contentsAnswer{}
			fetchJSON(t, http.MethodGet, u, &a)
			if a.LayersDone >= 1 && a.BytesRead > 0 && a.State == "running" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if a.State != "running" {
			t.Fatalf("before the kill: %+v, want running", a)
		}
		first.Kill()

		second := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: db})
		var e apiError
		if code := fetchJSON(t, http.MethodGet, second.URL+"/api/v1/images/"+ref+"/contents/tree", &e); code != http.StatusNotFound || e.Error.Code != "not_analyzed" {
			t.Errorf("tree after the kill: %d %+v, want 404 not_analyzed", code, e)
		}
		code, a := analyseContents(t, second.URL, ref)
		if code != http.StatusOK || a.State != "done" || a.TotalSize != 100+1<<20 {
			t.Fatalf("after the restart: %d %+v, want done", code, a)
		}
	})
}

// TestContentsPageInBrowser: the page in chromium shows the progress bar
// moving, then the tree, and choosing a layer changes the tree.
func TestContentsPageInBrowser(t *testing.T) {
	bin := testenv.Binary(t)
	reg := startRegistryWithLog(t)
	host := slowBlobs(t, reg.Addr, 256<<10)
	pushImage(t, reg.Addr+"/acme/web:1", fileLayer(t, 12, "etc/conf", 100, "var/big.bin", 1<<20), fileLayer(t, 13, "etc/.wh.conf", 0, "app/main", 300<<10))
	srv := testenv.Serve(t, bin)
	tb := newTab(t, srv)
	page := "/images/" + host + "/acme/web:1/contents"
	if status := tb.visit(page); status != http.StatusOK {
		t.Fatalf("GET %s: %d", page, status)
	}
	tb.do(chromedp.Click(chromedp.CSS(`[data-testid=contents-start-button]`)))
	tb.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid=contents-progress]`)))
	var values []string
	for range 100 {
		if tb.count(`[data-testid=contents-progress]`) == 0 {
			break
		}
		v := tb.eval(`(function(){var p=document.querySelector("[data-testid=contents-progress]");return p?String(p.value):""})()`)
		if v != "" && (len(values) == 0 || values[len(values)-1] != v) {
			values = append(values, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(values) < 2 {
		t.Errorf("the progress bar did not move: %v", values)
	}
	tb.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid=contents-tree]`)))
	final := tb.text(`[data-testid=contents-tree] tbody`)
	if !strings.Contains(final, "app") || !strings.Contains(final, "var") {
		t.Errorf("final tree %q", final)
	}
	// After layer 0 there is no app directory yet. Choosing shows it at
	// once (the selector submits itself).
	tb.do(chromedp.SetValue(chromedp.CSS(`[data-testid=contents-layer]`), "0"))
	tb.eval(`(function(){var s=document.querySelector("[data-testid=contents-layer]");if(s&&!location.search.includes("layer=0")){s.dispatchEvent(new Event("change"))};return ""})()`)
	for i := 0; i < 100 && !strings.Contains(tb.eval(`location.search`), "layer=0"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	tb.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid=contents-tree]`)))
	after0 := tb.text(`[data-testid=contents-tree] tbody`)
	if strings.Contains(after0, "app") || !strings.Contains(after0, "etc") {
		t.Errorf("tree after layer 0 %q, want etc and no app", after0)
	}
	tb.noConsoleErrors(page)
}
