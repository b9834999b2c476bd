package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/registry"
)

// rawManifest lets a test push bytes of its choosing with a media type of its choosing.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.body, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

func putRaw(t *testing.T, ref string, body []byte, mt types.MediaType) {
	t.Helper()
	if err := remote.Put(must(name.ParseReference(ref)), rawManifest{body, mt}); err != nil {
		t.Fatalf("put %s: %v", ref, err)
	}
}

func TestUnsupportedManifests(t *testing.T) {
	reg := newTestRegistry(t)
	schema1 := []byte(`{"schemaVersion":1,"name":"acme/old","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}`)
	putRaw(t, reg.Host+"/acme/old:1", schema1, types.DockerManifestSchema1Signed)
	putRaw(t, reg.Host+"/acme/old:v1", schema1, types.DockerManifestSchema1)
	putRaw(t, reg.Host+"/acme/helm:1", []byte(`{"schemaVersion":2}`), "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
	_, in := newInspector(t, registry.Options{})
	for _, tc := range []struct{ ref, says string }{
		{"acme/old:1", "schema 1"},
		{"acme/old:v1", "schema 1"},
		{"acme/helm:1", "not an image manifest"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := inspect(t, in, reg.ref(t, tc.ref))
			if !errors.Is(err, analysis.ErrUpstream) {
				t.Fatalf("err = %v, want registry error", err)
			}
			if msg, _ := analysis.PublicMessage(err); !strings.Contains(msg, tc.says) {
				t.Errorf("message %q does not say %q", msg, tc.says)
			}
		})
	}
}

func TestOversizedManifestIsRefused(t *testing.T) {
	reg := newTestRegistry(t)
	// A syntactically valid manifest of 5 MiB, padded with an annotation.
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"config":        map[string]any{"mediaType": types.OCIConfigJSON, "size": 2, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
		"layers":        []any{},
		"annotations":   map[string]string{"pad": strings.Repeat("x", 5<<20)},
	}
	body := must(json.Marshal(m))
	putRaw(t, reg.Host+"/acme/big:1", body, types.OCIManifestSchema1)
	_, in := newInspector(t, registry.Options{})
	_, err := inspect(t, in, reg.ref(t, "acme/big:1"))
	if !errors.Is(err, analysis.ErrUpstream) {
		t.Fatalf("err = %v, want registry error", err)
	}
	if msg, _ := analysis.PublicMessage(err); !strings.Contains(msg, "4 MiB") {
		t.Errorf("message %q does not name the limit", msg)
	}
}

// TestEndlessManifestReadIsBounded serves a manifest with no Content-Length
// that never ends: the client must stop after the limit, not buffer it all.
func TestEndlessManifestReadIsBounded(t *testing.T) {
	var written atomic.Int64
	chunk := bytes.Repeat([]byte(" "), 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
			if r.Method == http.MethodHead {
				w.Header().Set("Content-Length", "100")
				return
			}
			w.Write([]byte("{"))
			for i := 0; i < 100<<20/len(chunk); i++ { // at most 100 MiB, then stop
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, in := newInspector(t, registry.Options{})
	ref := must(analysis.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/acme/endless:1"))
	_, err := inspect(t, in, ref)
	if !errors.Is(err, analysis.ErrUpstream) {
		t.Fatalf("err = %v, want registry error", err)
	}
	// The server may get a few MiB more into socket buffers before it sees the
	// connection close, but nowhere near the 100 MiB it would send to a reader
	// that buffers everything.
	srv.CloseClientConnections()
	if n := written.Load(); n > 32<<20 {
		t.Errorf("server wrote %d MiB before the client stopped reading", n>>20)
	}
}

func TestHugeDeclaredConfigIsNotFetched(t *testing.T) {
	reg := newTestRegistry(t)
	cfgDigest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("{}")))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: 10_000_000_000, Digest: must(v1.NewHash(cfgDigest))},
		Layers:        []v1.Descriptor{},
	}
	putRaw(t, reg.Host+"/acme/hugecfg:1", must(json.Marshal(m)), types.OCIManifestSchema1)
	reg.Requests()
	_, in := newInspector(t, registry.Options{})
	_, err := inspect(t, in, reg.ref(t, "acme/hugecfg:1"))
	if !errors.Is(err, analysis.ErrUpstream) {
		t.Fatalf("err = %v, want registry error", err)
	}
	for _, r := range reg.Requests() {
		if strings.Contains(r, "/blobs/") {
			t.Errorf("config blob was requested: %s", r)
		}
	}
}

func TestConfigDigestMismatchIsRefused(t *testing.T) {
	var served atomic.Int64
	reg := newTestRegistry(t)
	img := imageSpec{layers: 1}.build(t)
	push(t, reg.Host+"/acme/liar:1", img)
	m := must(img.Manifest())
	// A registry that answers the config blob with other bytes of the same size.
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			served.Add(1)
			w.Write(bytes.Repeat([]byte("x"), int(m.Config.Size)))
			return
		}
		reg.Config.Handler.ServeHTTP(w, r)
	}))
	defer liar.Close()
	_, in := newInspector(t, registry.Options{})
	ref := must(analysis.ParseReference(strings.TrimPrefix(liar.URL, "http://") + "/acme/liar:1"))
	_, err := inspect(t, in, ref)
	if !errors.Is(err, analysis.ErrUpstream) || served.Load() == 0 {
		t.Fatalf("err = %v (config served %d times), want registry error after fetching", err, served.Load())
	}
}

func TestTimeout(t *testing.T) {
	// Accepts the connection and never answers.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	_, in := newInspector(t, registry.Options{Timeout: 300 * time.Millisecond})
	ref := must(analysis.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/acme/slow:1"))
	start := time.Now()
	_, err := inspect(t, in, ref)
	if !errors.Is(err, analysis.ErrTimeout) {
		t.Fatalf("err = %v, want timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s, far past the 300ms deadline", d)
	}
	_ = context.Background()
}
