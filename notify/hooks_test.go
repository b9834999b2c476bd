package notify_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/notify"
)

// envelope is what distribution 2.8 sends for a `crane push` of one image:
// blob pushes, then the manifest push, plus other actions to ignore.
const envelope = `{"events":[
 {"id":"1","timestamp":"2026-11-26T22:00:00Z","action":"push",
  "target":{"mediaType":"application/octet-stream","size":512,"digest":"sha256:aa","length":512,"repository":"acme/base",
            "url":"http://127.0.0.1:5000/v2/acme/base/blobs/sha256:aa"},
  "request":{"id":"r1","addr":"127.0.0.1:40000","host":"127.0.0.1:5000","method":"PUT","useragent":"crane"},
  "actor":{},"source":{"addr":"buildhost:5000","instanceID":"i"}},
 {"id":"2","timestamp":"2026-11-26T22:00:01Z","action":"push",
  "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":700,"digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","length":700,
            "repository":"acme/base","url":"http://127.0.0.1:5000/v2/acme/base/manifests/sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","tag":"1.0"},
  "request":{"id":"r2","addr":"127.0.0.1:40000","host":"127.0.0.1:5000","method":"PUT","useragent":"crane"},
  "actor":{},"source":{"addr":"buildhost:5000","instanceID":"i"}},
 {"id":"3","action":"push",
  "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","repository":"acme/base",
            "url":"http://127.0.0.1:5000/v2/acme/base/manifests/sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","tag":"1.0"},
  "request":{"host":"127.0.0.1:5000"}},
 {"id":"4","action":"pull",
  "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","repository":"acme/base",
            "url":"http://127.0.0.1:5000/v2/acme/base/manifests/sha256:cc","tag":"2.0"}},
 {"id":"5","action":"delete","target":{"digest":"sha256:cc","repository":"acme/base","tag":"3.0"},"request":{"host":"127.0.0.1:5000"}},
 {"id":"6","action":"mount","target":{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:dd","repository":"acme/app"},
  "request":{"host":"127.0.0.1:5000"}},
 {"id":"7","action":"push",
  "target":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","repository":"acme/app",
            "url":"http://registry.internal:5000/v2/acme/app/manifests/sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"},
  "request":{"host":"127.0.0.1:5000"}},
 {"id":"8","action":"push",
  "target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:ff","repository":"acme/app","tag":"2"},
  "request":{"host":"127.0.0.1:5000"},"source":{"addr":"buildhost:5000"}},
 {"id":"9","action":"push","target":{"mediaType":"application/octet-stream","digest":"sha256:11","repository":"acme/app"},
  "request":{"host":"127.0.0.1:5000"}},
 {"id":"10","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"Not Valid","tag":"x"},
  "request":{"host":"127.0.0.1:5000"}},
 {"id":"11","action":"delete","target":{"digest":"sha256:9999999999999999999999999999999999999999999999999999999999999999","repository":"acme/app"},
  "request":{"host":"127.0.0.1:5000"}},
 {"id":"12","action":"delete","target":{"repository":"acme/app"},"request":{"host":"127.0.0.1:5000"}}
]}`

func TestParseRegistryNotification(t *testing.T) {
	pushes, skipped, err := notify.ParseRegistryNotification([]byte(envelope))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pushes {
		s := p.Ref.String()
		if p.Deleted {
			s += " deleted"
		}
		got = append(got, s)
	}
	if pushes[0].Digest != "sha256:"+strings.Repeat("b", 64) || pushes[3].Digest != "" {
		t.Errorf("digests = %q, %q; want the tag push's, and none for a malformed one", pushes[0].Digest, pushes[3].Digest)
	}
	want := []string{
		"127.0.0.1:5000/acme/base:1.0", // once, though pushed twice
		// A deleted tag; a manifest (or blob: the registry does not say)
		// deleted by digest, whose tags are to be checked.
		"127.0.0.1:5000/acme/base:3.0 deleted",
		// target.url's host wins over request.host; never source.addr.
		"registry.internal:5000/acme/app@sha256:" + strings.Repeat("e", 64),
		// No target.url: request.host, and a manifest media type.
		"127.0.0.1:5000/acme/app:2",
		"127.0.0.1:5000/acme/app@sha256:" + strings.Repeat("9", 64) + " deleted",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("refreshes (-want +got):\n%s", diff)
	}
	if len(skipped) != 0 {
		t.Errorf("skipped %+v, want none: every tag of the envelope is valid", skipped)
	}
	for _, bad := range []string{"", "null", "[", `{"events": 3}`} {
		pushes, _, err := notify.ParseRegistryNotification([]byte(bad))
		if len(pushes) != 0 || (err != nil && !errors.Is(err, notify.ErrInvalid)) {
			t.Errorf("%q: %v, %v", bad, pushes, err)
		}
	}
}

// TestHooksSkipTagsOutsideTheGrammar: an event naming a tag outside the
// distribution spec's grammar is skipped and returned as such, beside the
// valid ones; a Docker Hub push naming one is refused.
func TestHooksSkipTagsOutsideTheGrammar(t *testing.T) {
	bad := []string{"bad\r\nX-Injected: 1", "../../etc", strings.Repeat("c", 129), "evil\u202egnp.exe", ".hidden"}
	var events []string
	for _, tag := range append([]string{strings.Repeat("b", 128)}, bad...) {
		tj, _ := json.Marshal(tag)
		events = append(events, `{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+
			strings.Repeat("a", 64)+`","repository":"acme/app","tag":`+string(tj)+`},"request":{"host":"127.0.0.1:5000"}}`)
	}
	pushes, skipped, err := notify.ParseRegistryNotification([]byte(`{"events":[` + strings.Join(events, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(pushes) != 1 || pushes[0].Ref.Tag != strings.Repeat("b", 128) {
		t.Errorf("pushes %+v, want the 128-character tag alone", pushes)
	}
	var got []string
	for _, k := range skipped {
		if k.Repository != "acme/app" || k.Problem == "" {
			t.Errorf("skipped %+v: want its repository and a problem", k)
		}
		got = append(got, k.Tag)
	}
	if diff := cmp.Diff(bad, got); diff != "" {
		t.Errorf("skipped tags (-want +got):\n%s", diff)
	}
	_, err = notify.ParseDockerHubPush([]byte(`{"repository":{"repo_name":"acme/app"},"push_data":{"tag":"bad\r\nX-Injected: 1"}}`))
	if !errors.Is(err, notify.ErrInvalid) || !strings.Contains(err.Error(), "push_data.tag") {
		t.Errorf("Docker Hub push of a CR/LF tag: %v, want invalid naming push_data.tag", err)
	}
}

func TestParseDockerHubPush(t *testing.T) {
	body := `{"callback_url":"https://registry.hub.docker.com/u/acme/app/hook/x/","push_data":{"pushed_at":1700000000,"pusher":"acme","tag":"1.2"},
		"repository":{"repo_name":"acme/app","name":"app","namespace":"acme","status":"Active"}}`
	ref, err := notify.ParseDockerHubPush([]byte(body))
	if err != nil || ref != (analysis.Reference{Repository: analysis.Repository{Registry: "docker.io", Name: "acme/app"}, Tag: "1.2"}) {
		t.Errorf("ref = %+v, %v", ref, err)
	}
	for _, bad := range []string{`{}`, `x`, `{"repository":{"repo_name":"acme/app"},"push_data":{"tag":"bad tag"}}`} {
		if _, err := notify.ParseDockerHubPush([]byte(bad)); !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("%s: err = %v, want invalid", bad, err)
		}
	}
}

func TestAcceptsEnvelope(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/vnd.docker.distribution.events.v1+json":                true,
		"application/vnd.docker.distribution.events.v2+json; charset=utf-8": true,
		"application/json": true,
		"":                 true,
		"text/plain":       false,
	} {
		if got := notify.AcceptsEnvelope(ct); got != want {
			t.Errorf("%q: %v", ct, got)
		}
	}
}

func FuzzParseRegistryNotification(f *testing.F) {
	f.Add([]byte(envelope))
	f.Add([]byte(`{"events":[{"action":"push","target":{"repository":"a","tag":"b","url":"http://[::1]:5000/v2/a/manifests/b"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		pushes, _, err := notify.ParseRegistryNotification(body)
		if err != nil && !errors.Is(err, notify.ErrInvalid) {
			t.Fatalf("error of another kind: %v", err)
		}
		for _, p := range pushes {
			r := p.Ref
			if r.Registry == "" || r.Name == "" || (r.Tag == "" && r.Digest == "") {
				t.Fatalf("incomplete reference %+v", r)
			}
			if _, err := analysis.ParseReference(r.String()); err != nil {
				t.Fatalf("%s does not parse back: %v", r, err)
			}
		}
	})
}

func FuzzParseDockerHubPush(f *testing.F) {
	f.Add([]byte(`{"push_data":{"tag":"1.2"},"repository":{"repo_name":"acme/app"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ref, err := notify.ParseDockerHubPush(body)
		if err != nil {
			if !errors.Is(err, notify.ErrInvalid) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		if ref.Registry != analysis.DockerHub || ref.Tag == "" {
			t.Fatalf("ref %+v", ref)
		}
	})
}
