package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushRandom pushes a random image to ref and returns it.
func pushRandom(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 3)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

// TestDistributionAgreesWithCraneAndSkopeo checks the registry stores what
// go-containerregistry pushed, as judged by two independent clients.
func TestDistributionAgreesWithCraneAndSkopeo(t *testing.T) {
	addr := Distribution(t)
	ref := addr + "/testenv/random:v1"
	img := pushRandom(t, ref)

	wantDigest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	wantRaw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}

	if got := strings.TrimSpace(string(Crane(t, "digest", ref))); got != wantDigest.String() {
		t.Errorf("crane digest %s = %s, want %s", ref, got, wantDigest)
	}

	raw := Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	if !bytes.Equal(raw, wantRaw) {
		t.Errorf("skopeo inspect --raw differs from the pushed manifest:\n got %s\nwant %s", raw, wantRaw)
	}
	sum := sha256.Sum256(raw)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != wantDigest.String() {
		t.Errorf("sha256 of skopeo's manifest = %s, want %s", got, wantDigest)
	}

	// skopeo's own parse of the same image: one entry per pushed layer.
	var inspected struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal(Skopeo(t, "inspect", "--tls-verify=false", "docker://"+ref), &inspected); err != nil {
		t.Fatal(err)
	}
	if inspected.Digest != wantDigest.String() || len(inspected.Layers) != 3 {
		t.Errorf("skopeo inspect = digest %s with %d layers, want %s with 3", inspected.Digest, len(inspected.Layers), wantDigest)
	}
}

// TestDistributionDeleteEnabled checks the registry accepts manifest deletes, which
// tests of deleted tags rely on.
func TestDistributionDeleteEnabled(t *testing.T) {
	addr := Distribution(t)
	ref := addr + "/testenv/deleted:v1"
	img := pushRandom(t, ref)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	Crane(t, "delete", addr+"/testenv/deleted@"+d.String())
	resp, err := http.Head("http://" + addr + "/v2/testenv/deleted/manifests/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD deleted manifest: %s, want 404", resp.Status)
	}
}

// TestDistributionWithConfigNotifications checks extra YAML reaches the registry by
// configuring a notification endpoint and waiting for the push event.
func TestDistributionWithConfigNotifications(t *testing.T) {
	events := make(chan []byte, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case events <- b:
		default:
		}
	}))
	t.Cleanup(hook.Close)

	addr := DistributionWithConfig(t, fmt.Sprintf(`notifications:
  endpoints:
    - name: testenv
      url: %s/events
      timeout: 2s
      threshold: 3
      backoff: 100ms
`, hook.URL))
	pushRandom(t, addr+"/testenv/notified:v1")

	deadline := time.After(10 * time.Second)
	for {
		select {
		case b := <-events:
			var env struct {
				Events []struct {
					Action string
					Target struct {
						MediaType  string
						Repository string
						Tag        string
					}
				}
			}
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatalf("notification body: %v\n%s", err, b)
			}
			for _, e := range env.Events {
				if e.Action == "push" && e.Target.Repository == "testenv/notified" && e.Target.Tag == "v1" {
					return
				}
			}
		case <-deadline:
			t.Fatal("no push notification for testenv/notified:v1 within 10s")
		}
	}
}

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("FreePort gave %d, which cannot be bound: %v", port, err)
	}
	l.Close()
}

// TestImportedOnlyFromTests keeps this package, which imports "testing", out of
// production code.
func TestImportedOnlyFromTests(t *testing.T) {
	root := RepoRoot(t)
	const self = "github.com/imagebadger/imagebadger/internal/testing/testenv"
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if path != root && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "vendor" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return nil // a broken file elsewhere is for its own package's build to report
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == self || strings.HasPrefix(p, self+"/") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s; only _test.go files may", rel, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) { Main(m) }
