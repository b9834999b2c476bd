package server_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// tarLayer is a layer of regular files (name → size, filled with fill) and
// whiteouts (size -1), in the order given.
func tarLayer(t testing.TB, fill byte, files ...any) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		name, size := files[i].(string), files[i+1].(int)
		hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(max(size, 0))}
		if strings.HasSuffix(name, "/") {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(bytes.Repeat([]byte{fill}, int(hdr.Size))); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return stack.TarLayer(t, buf.Bytes())
}

func imageWith(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	return stack.LayersImage(t, layers...)
}

// pollContents GETs the contents route until it is no longer 202 (bounded).
func pollContents(t *testing.T, u string) (int, []byte) {
	t.Helper()
	for range 200 {
		resp, body := do(t, http.MethodGet, u, "", nil)
		if resp.StatusCode != http.StatusAccepted {
			return resp.StatusCode, body
		}
		if resp.Header.Get("Retry-After") != "1" {
			t.Errorf("202 without Retry-After: 1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the analysis did not end")
	return 0, nil
}

func TestContentsAPI(t *testing.T) {
	stack.EachEngine(t, func(t *testing.T, engine string) {
		s := stack.New(t, stack.Options{Engine: engine, Registry: true, Server: &server.Options{}, Contents: &contents.Options{}})
		base := tarLayer(t, 'b', "etc/", 0, "etc/conf", 10, "var/", 0, "var/cache.bin", 500)
		clean := tarLayer(t, 'c', "var/.wh.cache.bin", -1, "etc/conf", 12)
		ref := s.Registry.Host + "/acme/app:1"
		pushTo(t, ref, imageWith(t, base, clean))
		u := s.URL + "/api/v1/images/" + ref + "/contents"

		resp, body := do(t, http.MethodGet, u, "", nil)
		var e errorBody
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusNotFound || e.Error.Code != "not_analyzed" {
			t.Fatalf("before any POST: %d %s, want 404 not_analyzed", resp.StatusCode, body)
		}
		badgeURL := s.URL + "/badges/efficiency/" + ref + ".svg"
		if _, svg := do(t, http.MethodGet, badgeURL, "", nil); !strings.Contains(string(svg), "not analysed") {
			t.Errorf("efficiency badge before the analysis:\n%s", svg)
		}
		resp, body = do(t, http.MethodPost, u, "", nil)
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		status, body := pollContents(t, u)
		var r contents.Result
		if err := json.Unmarshal(body, &r); err != nil || status != http.StatusOK {
			t.Fatalf("result: %d %s", status, body)
		}
		// Shipped 10+500+12, kept 12: the old conf and the cache are waste.
		if r.State != "done" || r.LayerFilesSize != 522 || r.TotalSize != 12 || r.WastedSize != 510 || r.FileCount != 3 {
			t.Errorf("result = %+v", r)
		}
		if len(r.Layers) != 2 || r.Layers[1].Removed != 1 || r.Layers[1].RemovedSize != 500 || r.Layers[1].Modified != 1 {
			t.Errorf("layers = %+v", r.Layers)
		}
		// 12 of 522 bytes kept: 2.3%, shown rounded down, red.
		if _, svg := do(t, http.MethodGet, badgeURL, "", nil); !strings.Contains(string(svg), ">2%<") || !strings.Contains(string(svg), "#e05d44") {
			t.Errorf("efficiency badge once analysed:\n%s", svg)
		}
		// A POST once done answers the result at once.
		if resp, _ := do(t, http.MethodPost, u, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("POST once done: %d, want 200", resp.StatusCode)
		}

		var tree contents.Tree
		if code := getJSON(t, u+"/tree?path=/var&layer=1&changes=1", &tree); code != http.StatusOK {
			t.Fatalf("tree: %d", code)
		}
		if len(tree.Entries) != 1 || tree.Entries[0].Name != "cache.bin" || *tree.Entries[0].Change != "removed" {
			t.Errorf("changes of layer 1 in /var = %+v", tree.Entries)
		}
		if code := getJSON(t, u+"/tree?path=/etc", &tree); code != http.StatusOK || len(tree.Entries) != 1 || tree.Entries[0].Size != 12 || tree.Entries[0].Layer != 1 || tree.Next != nil {
			t.Errorf("tree of /etc = %d %+v", code, tree)
		}
		for _, q := range []string{"?changes=1", "?path=etc", "?layer=9"} {
			if resp, body := do(t, http.MethodGet, u+"/tree"+q, "", nil); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("tree%s: %d %s, want 400", q, resp.StatusCode, body)
			}
		}

		// The file-level diff: null until both sides are analysed.
		ref2 := s.Registry.Host + "/acme/app:2"
		pushTo(t, ref2, imageWith(t, base, tarLayer(t, 'n', "etc/new", 3)))
		diffURL := s.URL + "/api/v1/diff?files=1&from=" + url.QueryEscape(ref) + "&to=" + url.QueryEscape(ref2)
		var d map[string]json.RawMessage
		if code := getJSON(t, diffURL, &d); code != http.StatusOK || string(d["files"]) != "null" {
			t.Fatalf("diff before the analysis: %d files=%s", code, d["files"])
		}
		do(t, http.MethodPost, s.URL+"/api/v1/images/"+ref2+"/contents", "", nil)
		pollContents(t, s.URL+"/api/v1/images/"+ref2+"/contents")
		if code := getJSON(t, diffURL, &d); code != http.StatusOK {
			t.Fatalf("diff: %d", code)
		}
		type list struct {
			Count int `json:"count"`
			Paths []struct {
				Path string `json:"path"`
				Size int64  `json:"size"`
			} `json:"paths"`
		}
		var files struct{ Added, Removed, Changed list }
		if err := json.Unmarshal(d["files"], &files); err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for k, l := range map[string]list{"added": files.Added, "removed": files.Removed, "changed": files.Changed} {
			for _, p := range l.Paths {
				got[k] = append(got[k], p.Path)
			}
		}
		want := map[string][]string{"added": {"/etc/new", "/var/cache.bin"}, "changed": {"/etc/conf"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})
}
