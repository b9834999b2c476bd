package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// The link-time values of TestBuiltBinary's build, as make image sets them.
const (
	testVersion = "v9.8.7"
	testCommit  = "0f3c2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a"
	testDate    = "2026-11-20T10:00:00Z"
)

// exitOf runs bin with args (and env added) and returns its exit status,
// standard output and standard error.
func exitOf(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return 0, "", ""
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// TestBuiltBinary runs the binary as an operator does, built with the
// link-time version, commit and date of a release build:
//   - version and --version print them;
//   - serve exports them as imagebadger_build_info and shows the version
//     in the page footer;
//   - healthcheck exits 0 against the running service (by --url, and by
//     the port of IMAGEBADGER_ADDR), 1 with the reason against a closed
//     port;
//   - backup, taken while a goroutine makes serve write (reads of images it
//     has not seen), gives a copy that passes PRAGMA integrity_check, holds
//     everything written before it began, and served by a second serve
//     answers the image reports exactly as the source does.
func TestBuiltBinary(t *testing.T) {
	bin := testenv.BinaryWithLDFlags(t, fmt.Sprintf("-X main.version=%s -X main.commit=%s -X main.date=%s", testVersion, testCommit, testDate))

	t.Run("version", func(t *testing.T) {
		for _, args := range [][]string{{"version"}, {"--version"}} {
			code, out, errOut := exitOf(t, bin, nil, args...)
			want := fmt.Sprintf("imagebadger %s\ncommit: %s\ndate:   %s\ngo:     %s %s/%s\n", testVersion, testCommit, testDate, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if code != 0 || out != want || errOut != "" {
				t.Errorf("%v: exit %d, %q, stderr %q; want %q", args, code, out, errOut, want)
			}
		}
	})

	reg := faultreg.Start(t)
	src := testenv.ServeProcess(t, bin, testenv.ServeOptions{})

	t.Run("build info", func(t *testing.T) {
		metrics := getBody(t, src.URL+"/metrics")
		want := fmt.Sprintf(`imagebadger_build_info{commit=%q,date=%q,goversion=%q,version=%q} 1`, testCommit, testDate, runtime.Version(), testVersion)
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks\n%s", want)
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(getBody(t, src.URL+"/")))
		if err != nil {
			t.Fatal(err)
		}
		if got := doc.Find(`footer [data-testid="version"]`).Text(); got != "Version "+testVersion+" ("+testCommit[:12]+")." {
			t.Errorf("footer version %q", got)
		}
	})

	t.Run("healthcheck", func(t *testing.T) {
		_, port, _ := strings.Cut(src.Addr, ":")
		for _, tc := range []struct {
			env  []string
			args []string
			code int
			want string
		}{
			{nil, []string{"healthcheck", "--url", src.URL}, 0, ""},
			{[]string{"IMAGEBADGER_ADDR=:" + port}, []string{"healthcheck"}, 0, ""},
			{nil, []string{"healthcheck", "--url", "http://" + freeAddr(t)}, 1, "connection refused"},
		} {
			code, out, errOut := exitOf(t, bin, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want exit %d saying %q", tc.env, tc.args, code, out, errOut, tc.code, tc.want)
			}
		}
	})

	t.Run("backup under writes", func(t *testing.T) {
		const seeded, more = 4, 60
		var refs []string
		for i := range seeded + more {
			img, err := random.Image(256, 2)
			if err != nil {
				t.Fatal(err)
			}
			ref := fmt.Sprintf("%s/acme/app%02d:1", reg.Host, i)
			if err := crane.Push(img, ref); err != nil {
				t.Fatal(err)
			}
			refs = append(refs, ref)
		}
		report := func(base, ref string) map[string]any {
			var m map[string]any
			if err := json.Unmarshal([]byte(getBody(t, base+"/api/v1/images/"+ref)), &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		for _, ref := range refs[:seeded] {
			report(src.URL, ref)
		}
		// The writer: each image serve has not seen is read from the
		// registry and recorded, a few transactions each.
		var done atomic.Int64
		var werr error
		var wg sync.WaitGroup
		running := make(chan struct{})
		wg.Go(func() {
			running := running // closed once, here
			defer func() {
				if running != nil {
					close(running)
				}
			}()
			for i, ref := range refs[seeded:] {
				resp, err := http.Get(src.URL + "/api/v1/images/" + ref)
				if err != nil {
					werr = err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					werr = fmt.Errorf("GET %s: %s", ref, resp.Status)
					return
				}
				done.Add(1)
				if i == 3 {
					close(running)
					running = nil
				}
			}
		})
		<-running
		before := done.Load()
		copyPath := filepath.Join(t.TempDir(), "copy.db")
		code, out, errOut := exitOf(t, bin, nil, "backup", "--db", src.DBPath, "--to", copyPath)
		during := done.Load()
		wg.Wait()
		if werr != nil {
			t.Fatalf("the writer: %v", werr)
		}
		if code != 0 {
			t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("%s; images read: %d before the backup, %d when it ended, %d in all", strings.TrimSpace(out), before, during, done.Load())
		if during == done.Load() {
			t.Logf("the writer had finished before the backup did: the copy was taken under writes only in part")
		}

		db, err := sql.Open("sqlite3", "file:"+copyPath+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var check string
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("integrity_check of the copy: %q %v", check, err)
		}
		var tags int
		if err := db.QueryRow(`SELECT COUNT(*) FROM tags`).Scan(&tags); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if int64(tags) < seeded+before || int64(tags) > seeded+done.Load() {
			t.Errorf("the copy holds %d tags; %d were recorded when the backup began, %d in all", tags, seeded+before, seeded+done.Load())
		}

		cp := testenv.ServeProcess(t, bin, testenv.ServeOptions{DBPath: copyPath})
		reg.Requests() // forget those so far
		for _, ref := range refs[:seeded+int(before)] {
			if diff := cmp.Diff(report(src.URL, ref), report(cp.URL, ref)); diff != "" {
				t.Errorf("%s: the copy answers otherwise (-source +copy):\n%s", ref, diff)
			}
		}
		if n := len(reg.Requests()); n != 0 {
			t.Errorf("answering from the copy took %d registry requests, want none: it has what the source had", n)
		}
	})
}
