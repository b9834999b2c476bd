package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// chromiumPath is Debian's chromium, installed by `make deps`.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the browser tests write their screenshots; it is
// ignored by git (testdata/out).
const screenshotDir = "testdata/out/browser"

// viewports are the sizes every page is captured at: a laptop and a phone.
var viewports = []struct{ w, h int64 }{{1280, 900}, {390, 844}}

// demoServer is a running `imagebadger demo`.
type demoServer struct {
	url      string // http://127.0.0.1:PORT
	registry string // the demo registry's host:port
	// stop ends the demo (SIGTERM) and waits for it; it is also called
	// when the test ends.
	stop func()
}

// startDemo runs the built binary's demo subcommand on a free loopback port,
// with args, and waits until it serves. The process is stopped when the
// test ends.
func startDemo(t *testing.T, args ...string) demoServer {
	t.Helper()
	bin := testenv.Binary(t)
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, append([]string{"demo", "--addr", addr}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGEBADGER_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var logMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start demo: %v", err)
	}
	exited := make(chan error, 1)
	hostc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`/images/(127\.0\.0\.1:\d+)/`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case hostc <- m[1]:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			logMu.Lock()
			t.Logf("demo output:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	var host string
	select {
	case host = <-hostc:
	case err := <-exited:
		t.Fatalf("demo exited before serving: %v\n%s", err, logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatal("demo did not finish seeding within 2 minutes")
	}
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo on %s never answered /healthz", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return demoServer{url: base, registry: host, stop: stop}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// tab is one browser tab with the console errors of the page it shows.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	mu   sync.Mutex
	errs []string
}

// newTab starts chromium headless with the flags of a locked-down test
// browser and opens one tab that records console errors and exceptions.
func newTab(t *testing.T, base string) *tab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s not found (Debian package chromium): run `make deps`", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	tb := &tab{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				msg = "log: " + ev.Entry.Text + " " + ev.Entry.URL
			}
		}
		if msg != "" {
			tb.mu.Lock()
			tb.errs = append(tb.errs, msg)
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// run runs actions with a deadline, failing the test on error.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatal(err)
	}
}

func run[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatal(err)
	}
	return v
}

// visit navigates to path, forgets earlier console errors and returns the
// HTTP status of the page.
func (tb *tab) visit(path string) int64 {
	tb.t.Helper()
	tb.mu.Lock()
	tb.errs = nil
	tb.mu.Unlock()
	resp := run(tb, chromedp.NavigateResponse(tb.base+path))
	return resp.Status
}

// noConsoleErrors fails the test if the page logged an error, an exception,
// a failed subresource or a CSP violation since it was visited.
func (tb *tab) noConsoleErrors(page string) {
	tb.t.Helper()
	tb.do(chromedp.Sleep(150 * time.Millisecond)) // late events (images, scripts)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, e := range tb.errs {
		tb.t.Errorf("%s: %s", page, e)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return strings.TrimSpace(run(tb, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)))
}

func (tb *tab) count(sel string) int {
	tb.t.Helper()
	return run(tb, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

func (tb *tab) eval(js string) string {
	tb.t.Helper()
	return run(tb, chromedp.Evaluate[string](js))
}

// screenshots writes the page as it looks at each viewport, both the first
// screen and the whole page, to testdata/out/browser/.
func (tb *tab) screenshots(name string) {
	tb.t.Helper()
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	for _, vp := range viewports {
		tb.do(chromedp.EmulateViewport(vp.w, vp.h), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`), chromedp.Sleep(100*time.Millisecond))
		size := fmt.Sprintf("%dx%d", vp.w, vp.h)
		screen := run(tb, chromedp.CaptureScreenshot())
		full := run(tb, chromedp.FullScreenshot(100))
		for file, b := range map[string][]byte{name + "-" + size + ".png": screen, name + "-" + size + "-full.png": full} {
			if err := os.WriteFile(filepath.Join(screenshotDir, file), b, 0o644); err != nil {
				tb.t.Fatal(err)
			}
		}
	}
	tb.do(chromedp.EmulateViewport(1280, 900))
}

// darkMode switches prefers-color-scheme.
func (tb *tab) darkMode(on bool) {
	tb.t.Helper()
	value := "light"
	if on {
		value = "dark"
	}
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: value}},
		})
		return err
	}))
}

// TestPagesInBrowser drives Debian's chromium against `imagebadger demo`:
// every page loads with its content and no console error, the platform
// switcher and the copy buttons work, forms post, errors are friendly, and
// screenshots of each page at both viewports land in testdata/out/browser.
func TestPagesInBrowser(t *testing.T) {
	demo := startDemo(t)
	tb := newTab(t, demo.url)
	reg := demo.registry
	app := "/images/" + reg + "/acme/app:2.3"

	t.Run("home", func(t *testing.T) {
		tb.t = t
		if status := tb.visit("/"); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		if n := tb.count(`[data-testid=recent-item]`); n < 5 {
			t.Errorf("%d recently changed images, want at least 5", n)
		}
		if n := tb.count(`[data-testid=watched-item]`); n != 2 {
			t.Errorf("%d watched bases, want 2", n)
		}
		if got := tb.eval(`document.querySelector("[data-testid=recent-item] a.ref").textContent`); !strings.Contains(got, "acme/app") {
			t.Errorf("most recent change is %q, want acme/app (pushed last)", got)
		}
		tb.noConsoleErrors("home")
		tb.screenshots("home")
	})

	t.Run("search", func(t *testing.T) {
		tb.t = t
		tb.visit("/")
		tb.do(chromedp.SendKeys(chromedp.ID("q"), "Not A Reference!"), chromedp.Submit(chromedp.ID("q")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=search-error]`)))
		if msg := tb.text(`[data-testid=search-error]`); !strings.Contains(msg, "not an image reference") {
			t.Errorf("inline error %q", msg)
		}
		if v := run(tb, chromedp.Value(chromedp.ID("q"))); v != "Not A Reference!" {
			t.Errorf("search box lost the query: %q", v)
		}
		if got := tb.eval(`document.getElementById("q").getAttribute("aria-invalid")`); got != "true" {
			t.Errorf("aria-invalid = %q", got)
		}
		tb.screenshots("home-search-error")
		tb.do(chromedp.SetValue(chromedp.ID("q"), "docker pull "+reg+"/acme/runtime:1.4"), chromedp.Submit(chromedp.ID("q")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=layers]`)))
		if loc := run(tb, chromedp.Location()); !strings.HasSuffix(loc, "/images/"+reg+"/acme/runtime:1.4") {
			t.Errorf("search went to %s", loc)
		}
	})

	t.Run("image", func(t *testing.T) {
		tb.t = t
		if status := tb.visit(app); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		if got := tb.text(`[data-testid=reference]`); got != reg+"/acme/app:2.3" {
			t.Errorf("reference %q", got)
		}
		if got := run(tb, chromedp.Value(chromedp.CSS(`[data-testid=digest]`))); !strings.HasPrefix(got, "sha256:") || len(got) != 71 {
			t.Errorf("digest %q", got)
		}
		if n := tb.count(`[data-testid=layer-row]`); n != 8 {
			t.Errorf("%d layer rows, want 8", n)
		}
		if n := tb.count(`[data-testid=layer-bar] rect`); n != 8 {
			t.Errorf("%d bar segments, want 8", n)
		}
		if got := tb.eval(`document.querySelector("[data-testid=meta-Revision] a").href`); got != "https://github.com/acme/app/commit/0f3c2a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a" {
			t.Errorf("revision link %q", got)
		}
		if got := tb.text(`[data-testid=parent-link]`); got != reg+"/acme/runtime:1.4.2" {
			t.Errorf("parent %q", got)
		}
		if n := tb.count(`[data-testid=outdated]`); n != 0 {
			t.Error("app on the current runtime is shown as outdated")
		}
		// Every badge image loaded (an SVG with a width): docs/API.md's
		// nine kinds.
		if got := tb.eval(`String([...document.querySelectorAll("[data-testid=badges] img")].filter(i => i.complete && i.naturalWidth > 0).length)`); got != "9" {
			t.Errorf("%s badge images loaded, want 9", got)
		}
		if got := tb.eval(`document.querySelector("[data-testid=subscribe]").getAttribute("href")`); got != "/subscriptions/new?image="+urlQueryEscape(reg+"/acme/app:2.3") {
			t.Errorf("subscribe link %q", got)
		}
		tb.noConsoleErrors("image")
		tb.screenshots("image")
		tb.darkMode(true)
		tb.screenshots("image-dark")
		tb.darkMode(false)
	})

	t.Run("platform switcher", func(t *testing.T) {
		tb.t = t
		tb.visit(app)
		if got := tb.text(`[data-testid=platform-current]`); got != "linux/amd64" {
			t.Fatalf("default platform %q", got)
		}
		amdDigest := run(tb, chromedp.Value(chromedp.CSS(`[data-testid=digest]`)))
		amdFirstLayer := tb.text(`[data-testid=layer-row] .digest`)
		resp := run(tb, chromedp.WaitEvent(network.ResponseReceived, func(ev network.EventResponseReceived) bool {
			return ev.Type == network.ResourceTypeDocument
		}, chromedp.Click(chromedp.CSS(`[data-testid=platform-link]:not([aria-current])`))))
		if resp.Response.Status != http.StatusOK {
			t.Fatalf("switching platform: status %d", resp.Response.Status)
		}
		tb.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid=layers]`)))
		if got := tb.text(`[data-testid=platform-current]`); got != "linux/arm64/v8" {
			t.Errorf("after switching, platform %q", got)
		}
		if loc := run(tb, chromedp.Location()); !strings.Contains(loc, "platform=linux%2Farm64%2Fv8") {
			t.Errorf("location %s keeps no platform", loc)
		}
		if got := tb.eval(`document.querySelector("[data-testid=platform-link][aria-current=page]").textContent`); got != "linux/arm64/v8" {
			t.Errorf("current platform link %q", got)
		}
		if got := tb.text(`[data-testid=layer-row] .digest`); got == amdFirstLayer {
			t.Errorf("arm64 shows the amd64 layers (%s)", got)
		}
		if got := run(tb, chromedp.Value(chromedp.CSS(`[data-testid=digest]`))); got != amdDigest {
			t.Errorf("the index digest changed with the platform: %s, was %s", got, amdDigest)
		}
		if got := tb.eval(`document.querySelector("#badge-image-md").value`); !strings.Contains(got, "platform=linux%2Farm64%2Fv8") {
			t.Errorf("badge snippet does not name the platform: %s", got)
		}
		tb.noConsoleErrors("image arm64")
	})

	t.Run("copy", func(t *testing.T) {
		tb.t = t
		origin := tb.base
		tb.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			for _, name := range []string{"clipboard-read", "clipboard-write"} {
				if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
					Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
					Setting:    browser.PermissionSettingGranted,
					Origin:     origin,
				}); err != nil {
					return err
				}
			}
			return nil
		}))
		tb.visit(app)
		want := run(tb, chromedp.Value(chromedp.ID("badge-image-md")))
		if !strings.HasPrefix(want, "[![image badge of ") || !strings.Contains(want, tb.base+"/badges/image/"+reg+"/acme/app:2.3.svg") {
			t.Fatalf("markdown snippet %q", want)
		}
		tb.do(chromedp.Click(chromedp.CSS(`button[data-copy="badge-image-md"]`), chromedp.NodeVisible))
		label := run(tb, chromedp.Poll[string](`(b => b.textContent !== "Copy" && b.textContent)(document.querySelector('button[data-copy="badge-image-md"]'))`,
			chromedp.WithPollingTimeout(5*time.Second)))
		if label != "Copied" {
			t.Errorf("copy button says %q, want Copied", label)
		}
		got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Logf("the clipboard cannot be read back here (%v); checking the snippet is selectable instead", err)
		} else if got != want {
			t.Errorf("clipboard holds %q, want %q", got, want)
		}
		// Without the button, a click in the field selects the whole snippet.
		sel := tb.eval(`(e => { e.focus(); return e.selectionStart + "-" + e.selectionEnd + "/" + e.value.length; })(document.getElementById("badge-image-html"))`)
		parts := strings.SplitN(sel, "/", 2)
		if len(parts) != 2 || parts[0] != "0-"+parts[1] {
			t.Errorf("HTML snippet selection %s, want all of it", sel)
		}
		tb.noConsoleErrors("copy")
	})

	t.Run("outdated base", func(t *testing.T) {
		tb.t = t
		tb.visit("/images/" + reg + "/acme/worker:1.0")
		warning := tb.text(`[data-testid=outdated]`)
		if !strings.Contains(warning, reg+"/acme/base:3.20 has moved") || !strings.Contains(warning, "sha256:") {
			t.Errorf("outdated warning %q", warning)
		}
		tb.noConsoleErrors("outdated")
		tb.screenshots("image-outdated")
	})

	t.Run("refresh", func(t *testing.T) {
		tb.t = t
		tb.visit(app)
		resp := run(tb, chromedp.WaitEvent(network.ResponseReceived, func(ev network.EventResponseReceived) bool {
			return ev.Type == network.ResourceTypeDocument
		}, chromedp.Click(chromedp.CSS(`[data-testid=refresh]`))))
		if resp.Response.Status != http.StatusOK || !strings.HasSuffix(resp.Response.URL, app) {
			t.Errorf("refresh ended on %s with %d", resp.Response.URL, resp.Response.Status)
		}
		tb.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid=checked]`)))
		if got := tb.text(`[data-testid=checked]`); !strings.Contains(got, "just now") {
			t.Errorf("after refresh: %q", got)
		}
		tb.noConsoleErrors("refresh")
	})

	t.Run("repository", func(t *testing.T) {
		tb.t = t
		if status := tb.visit("/repositories/" + reg + "/acme/base"); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		if n := tb.count(`[data-testid=group]`); n != 3 {
			t.Errorf("%d tag groups, want 3 (3.19, 3.20.3 and the rebuilt 3.20)", n)
		}
		if got := tb.text(`[data-testid=tag-count]`); got != "6 tags on 3 images" {
			t.Errorf("tag count %q (3.19.4 was deleted)", got)
		}
		if got := tb.text(`[data-testid=removed-tags]`); !strings.Contains(got, "3.19.4") {
			t.Errorf("removed tags %q", got)
		}
		if n := tb.count(`[data-testid=group-platforms] .platform-size`); n != 6 {
			t.Errorf("%d platform sizes, want 6", n)
		}
		tb.noConsoleErrors("repository")
		tb.screenshots("repository")
		tb.do(chromedp.Click(chromedp.CSS(`[data-testid=group-link]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=layers]`)))
		if got := tb.text(`[data-testid=reference]`); got != reg+"/acme/base:3.20.4" {
			t.Errorf("newest group links to %q", got)
		}
	})

	t.Run("diff", func(t *testing.T) {
		tb.t = t
		// The 2.2 line's patch release, on the same runtime: the base and
		// runtime layers are shared, the app's own four are rebuilt.
		path := "/diff?from=" + urlQueryEscape(reg+"/acme/app:2.2.7") + "&to=" + urlQueryEscape(reg+"/acme/app:2.2.8")
		if status := tb.visit(path); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		if got := tb.text(`[data-testid=diff-platform]`); got != "linux/amd64" {
			t.Errorf("platform %q", got)
		}
		if n := tb.count(`[data-testid=diff-row][data-kind=shared]`); n != 4 {
			t.Errorf("%d shared rows, want 4 (the base's and the runtime's layers)", n)
		}
		if n := tb.count(`[data-testid=diff-added]`); n != 4 {
			t.Errorf("%d added layers, want the app's 4", n)
		}
		if n := tb.count(`[data-testid=diff-removed]`); n != 4 {
			t.Errorf("%d removed layers, want 4", n)
		}
		if got := tb.text(`[data-testid=diff-added]`); !strings.Contains(got, "COPY requirements.lock") {
			t.Errorf("first added layer %q", got)
		}
		// Shared rows are greyed, added cells highlighted: the stylesheet
		// gives them other backgrounds than plain rows.
		shared := tb.eval(`getComputedStyle(document.querySelector("tr.diff-shared td")).backgroundColor`)
		added := tb.eval(`getComputedStyle(document.querySelector("td.diff-added")).backgroundColor`)
		if shared == added || shared == "rgba(0, 0, 0, 0)" || added == "rgba(0, 0, 0, 0)" {
			t.Errorf("shared %s and added %s backgrounds", shared, added)
		}
		if n := tb.count(`[data-testid=size-bars] svg`); n != 2 {
			t.Errorf("%d size bars, want 2", n)
		}
		if got := tb.text(`[data-testid=meta-change]`); !strings.Contains(got, "2.2.7") || !strings.Contains(got, "2.2.8") {
			t.Errorf("metadata change %q", got)
		}
		if got := tb.eval(`document.querySelector("[data-testid=compare-url]").href`); got != "https://github.com/acme/app/compare/3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f01...7c4e1a9b3d5f2e8a0c6b4d2f1e3a5c7b9d0f2e4a" {
			t.Errorf("compare link %q", got)
		}
		tb.noConsoleErrors("diff")
		tb.screenshots("diff")
		tb.do(chromedp.Click(chromedp.CSS(`[data-testid=platform-link]:not([aria-current])`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=diff-summary]`)))
		if got := tb.text(`[data-testid=diff-platform]`); got != "linux/arm64/v8" {
			t.Errorf("after switching, platform %q", got)
		}
	})

	t.Run("history", func(t *testing.T) {
		tb.t = t
		if status := tb.visit("/repositories/" + reg + "/acme/base/history"); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		// 3.19 and 3.19.4 created, 3.20, 3.20.3, 3 and latest created,
		// 3.19.4 deleted, 3.20, 3 and latest moved, 3.20.4 created.
		if n := tb.count(`[data-testid=history-entry]`); n != 11 {
			t.Errorf("%d changes, want 11", n)
		}
		if n := tb.count(`[data-testid=history-entry][data-kind=deleted]`); n != 1 {
			t.Errorf("%d deletions, want 1", n)
		}
		if got := tb.text(`[data-testid=history-entry][data-kind=deleted] [data-testid=history-tag]`); got != "3.19.4" {
			t.Errorf("deleted tag %q", got)
		}
		tb.noConsoleErrors("history")
		tb.screenshots("history")
		resp := run(tb, chromedp.WaitEvent(network.ResponseReceived, func(ev network.EventResponseReceived) bool {
			return ev.Type == network.ResourceTypeDocument
		}, chromedp.Click(chromedp.CSS(`[data-testid=history-diff]`))))
		if resp.Response.Status != http.StatusOK || !strings.Contains(resp.Response.URL, "/diff?from=") {
			t.Errorf("the move's diff link led to %s (%d)", resp.Response.URL, resp.Response.Status)
		}
		tb.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid=diff-summary]`)))
		tb.noConsoleErrors("history diff")
	})

	t.Run("subscribe form", func(t *testing.T) {
		tb.t = t
		tb.visit(app)
		tb.do(chromedp.Click(chromedp.CSS(`[data-testid=subscribe]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=subscription-form]`)))
		if got := run(tb, chromedp.Value(chromedp.ID("sub-image"))); got != reg+"/acme/app:2.3" {
			t.Errorf("form image %q", got)
		}
		tb.noConsoleErrors("subscribe form")
		tb.screenshots("subscribe")
	})

	t.Run("errors", func(t *testing.T) {
		tb.t = t
		for _, tc := range []struct {
			path   string
			status int64
		}{
			{"/images/" + reg + "/acme/nothing:1", http.StatusNotFound},
			{"/images/UPPER/Case:1", http.StatusBadRequest},
			{"/no/such/page", http.StatusNotFound},
		} {
			if status := tb.visit(tc.path); status != tc.status {
				t.Errorf("%s: status %d, want %d", tc.path, status, tc.status)
			}
			if got := tb.eval(`document.querySelector("[data-testid=error-status]").textContent`); got != fmt.Sprintf("Error %d", tc.status) {
				t.Errorf("%s: %q", tc.path, got)
			}
		}
		tb.screenshots("error")
	})

	t.Run("keyboard focus", func(t *testing.T) {
		tb.t = t
		tb.visit(app)
		tb.do(chromedp.KeyEvent("\t"))
		if got := tb.eval(`document.activeElement.className`); got != "skip" {
			t.Errorf("first Tab focuses %q, want the skip link", got)
		}
		if got := tb.eval(`getComputedStyle(document.activeElement).outlineStyle`); got == "none" {
			t.Error("the focused skip link has no visible outline")
		}
	})
}

// urlQueryEscape is url.QueryEscape, spelled out so the test does not share
// the code under test's helpers.
func urlQueryEscape(s string) string {
	r := strings.NewReplacer(":", "%3A", "/", "%2F", "@", "%40")
	return r.Replace(s)
}
