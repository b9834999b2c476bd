package server_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

type raw struct {
	body []byte
	mt   types.MediaType
}

func (r raw) RawManifest() ([]byte, error)        { return r.body, nil }
func (r raw) MediaType() (types.MediaType, error) { return r.mt, nil }

// TestOversizedContentIsARegistryError: a 5 MiB manifest and a config that
// declares 10 GB answer 502 registry_error, and the service keeps serving.
func TestOversizedContentIsARegistryError(t *testing.T) {
	reg := faultreg.Start(t)
	s := stack.New(t, stack.Options{Timeout: 5 * time.Second, Server: &server.Options{}})
	big, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1,
		"config":      map[string]any{"mediaType": types.OCIConfigJSON, "size": 2, "digest": fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("{}")))},
		"layers":      []any{},
		"annotations": map[string]string{"pad": strings.Repeat("x", 5<<20)},
	})
	huge, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Layers: []v1.Descriptor{},
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: 10_000_000_000, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}})
	for ref, body := range map[string][]byte{"acme/big:1": big, "acme/huge:1": huge} {
		if err := remote.Put(must(name.ParseReference(reg.Host+"/"+ref)), raw{body, types.OCIManifestSchema1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"acme/big:1", "acme/huge:1"} {
		var body errorBody
		if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/"+ref, &body); code != 502 || body.Error.Code != "registry_error" {
			t.Errorf("%s: got %d %q, want 502 registry_error", ref, code, body.Error.Code)
		}
	}
	pushRandom(t, reg.Host+"/acme/fine:1")
	var ok map[string]any
	if code := getJSON(t, s.URL+"/api/v1/images/"+reg.Host+"/acme/fine:1", &ok); code != 200 {
		t.Errorf("after the refusals, a normal image answers %d", code)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
