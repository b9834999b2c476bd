package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
)

// filesLayer is a layer of regular files (name, size) and whiteouts
// (a .wh. name, size 0).
func filesLayer(t *testing.T, files ...any) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		n, size := files[i].(string), files[i+1].(int)
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(bytes.Repeat([]byte{'x'}, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return stack.TarLayer(t, buf.Bytes())
}

func pushLayers(t *testing.T, ref string, layers ...v1.Layer) {
	t.Helper()
	stack.PushImage(t, stack.LayersImage(t, layers...), ref)
}

// TestContentsCI: the gate exits 1 on a wasteful image, naming the rule,
// and 0 on a lean one; the JSON is the API's result.
func TestContentsCI(t *testing.T) {
	reg := faultreg.Start(t)
	// Wasteful: 900 bytes of cache shipped and removed, 100 kept: 0.1.
	pushLayers(t, reg.Host+"/acme/fat:1", filesLayer(t, "app", 100, "cache", 900), filesLayer(t, ".wh.cache", 0))
	// Lean: one layer, nothing hidden.
	pushLayers(t, reg.Host+"/acme/lean:1", filesLayer(t, "app", 100))
	contentsCLI := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"contents", "--allow-private-registries"}, args...), noEnv, &out, &errOut)
		code, msg := 0, ""
		if err != nil {
			code, msg = exitCode(err), message(err)
		}
		return code, out.String(), msg
	}

	code, out, msg := contentsCLI("--ci", reg.Host+"/acme/fat:1")
	if code != 1 || !strings.Contains(msg, "lowest-efficiency") || !strings.Contains(out, "FAIL: lowest-efficiency") {
		t.Errorf("wasteful image: exit %d, %q\n%s", code, msg, out)
	}
	code, out, msg = contentsCLI("--ci", "--lowest-efficiency=0.05", "--highest-wasted-bytes=800B", reg.Host+"/acme/fat:1")
	if code != 1 || !strings.Contains(msg, "highest-wasted-bytes") || strings.Contains(msg, "lowest-efficiency") {
		t.Errorf("wasted bytes over the limit: exit %d, %q\n%s", code, msg, out)
	}
	code, out, msg = contentsCLI("--ci", "--lowest-efficiency=0.05", "--highest-user-wasted-percent=0.5", reg.Host+"/acme/fat:1")
	if code != 1 || !strings.Contains(msg, "highest-user-wasted-percent") {
		t.Errorf("user waste over the limit: exit %d, %q\n%s", code, msg, out)
	}
	code, out, msg = contentsCLI("--ci", reg.Host+"/acme/lean:1")
	if code != 0 || !strings.Contains(out, "PASS: lowest-efficiency") {
		t.Errorf("lean image: exit %d, %q\n%s", code, msg, out)
	}

	code, out, _ = contentsCLI("--json", reg.Host+"/acme/fat:1")
	var r struct {
		State          string  `json:"state"`
		WastedSize     int64   `json:"wastedSize"`
		Efficiency     float64 `json:"efficiency"`
		LayerFilesSize int64   `json:"layerFilesSize"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if r.State != "done" || r.WastedSize != 900 || r.LayerFilesSize != 1000 || r.Efficiency != 0.1 {
		t.Errorf("--json = %+v, want 900 of 1000 bytes wasted", r)
	}
	code, out, _ = contentsCLI("--layer=1", reg.Host+"/acme/fat:1")
	if code != 0 || !strings.Contains(out, "removed") || !strings.Contains(out, "/cache") {
		t.Errorf("--layer=1: exit %d\n%s", code, out)
	}
	if code, _, msg := contentsCLI("--contents-max-bytes=10B", reg.Host+"/acme/fat:1"); code != 1 || !strings.Contains(msg, "too_large") {
		t.Errorf("over --contents-max-bytes: exit %d, %q", code, msg)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"4GB": 4e9, "512MiB": 512 << 20, "1000000": 1e6, "1.5kb": 1500, "20 MB": 20e6, "7B": 7} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1", "four"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) accepted", in)
		}
	}
}
