package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/imagebadger/imagebadger/internal/testing/stack"
	"github.com/imagebadger/imagebadger/server"
)

// mbField is one JSON field of MicroBadger's API, as its source defined it
// (microscaling/microbadger, database/interface.go: the database.Image and
// database.ImageVersion structs and their json tags), written down here as
// facts: the name, the JSON type its Go type encodes to, and whether
// omitempty left it out when empty. Where docs/API.md is stricter (numbers
// always present) the fixture says so.
type mbField struct {
	name string
	typ  string // "string", "number", "object", "array", "time"
	// omitEmpty: absent when empty (MicroBadger's omitempty on a string,
	// map, slice or pointer). Numbers and times are always present.
	omitEmpty bool
}

// microBadgerImage is database.Image as MicroBadger's /v1/images answered
// it: the fields without json:"-", with LatestSHA and LatestVersion renamed
// as its tags did. The counts are always present: PullCount and StarCount
// had no omitempty, and docs/API.md keeps LayerCount and DownloadSize too.
var microBadgerImage = []mbField{
	{"LatestSHA", "string", false},
	{"WebhookURL", "string", true},
	{"UpdatedAt", "time", false},
	{"Description", "string", true},
	{"LastUpdated", "time", false},
	{"PullCount", "number", false},
	{"StarCount", "number", false},
	{"Versions", "array", true},
	{"Id", "string", true},
	{"ImageName", "string", true},
	{"ImageURL", "string", true},
	{"Author", "string", true},
	{"LayerCount", "number", false},
	{"DownloadSize", "number", false},
	{"Labels", "object", true},
	{"LatestVersion", "string", true},
}

// microBadgerVersion is database.ImageVersion: ImageName and Author had
// no omitempty, Labels (LabelMap), Layers (LayersArray), License,
// VersionControl and MicrobadgerURL did. Parents and Identical are not part
// of docs/API.md's answer and are not emitted.
var microBadgerVersion = []mbField{
	{"SHA", "string", false},
	{"Tags", "array", false},
	{"ImageName", "string", false},
	{"Author", "string", false},
	{"Labels", "object", true},
	{"LayerCount", "number", false},
	{"DownloadSize", "number", false},
	{"Created", "time", false},
	{"Layers", "array", true},
	{"MicrobadgerURL", "string", true},
	{"License", "object", true},
	{"VersionControl", "object", true},
}

// Nested types: database.Tag ({"tag"}, SHA omitempty and not emitted),
// database.ImageLayer, database.License (both omitempty) and
// database.VersionControl (none).
var (
	mbTag     = []mbField{{"tag", "string", false}}
	mbLayer   = []mbField{{"BlobSum", "string", false}, {"Command", "string", false}, {"DownloadSize", "number", false}}
	mbLicense = []mbField{{"Code", "string", true}, {"URL", "string", true}}
	mbVCS     = []mbField{{"Type", "string", false}, {"URL", "string", false}, {"Commit", "string", false}}
)

// checkMicroBadger checks a decoded object against a fixture: every field
// present unless omitempty allowed it away, of its JSON type, never empty
// when omitempty would have left it out, and no field MicroBadger did not
// have.
func checkMicroBadger(t *testing.T, where string, obj map[string]any, fields []mbField) {
	t.Helper()
	known := map[string]bool{}
	for _, f := range fields {
		known[f.name] = true
		v, ok := obj[f.name]
		if !ok {
			if !f.omitEmpty {
				t.Errorf("%s: %s is missing; MicroBadger always sent it", where, f.name)
			}
			continue
		}
		switch f.typ {
		case "string":
			s, isStr := v.(string)
			if !isStr {
				t.Errorf("%s: %s is %T, want a string", where, f.name, v)
			} else if f.omitEmpty && s == "" {
				t.Errorf("%s: %s is an empty string; MicroBadger's omitempty left it out", where, f.name)
			}
		case "time":
			s, isStr := v.(string)
			if _, err := time.Parse(time.RFC3339Nano, s); !isStr || err != nil {
				t.Errorf("%s: %s = %v is not an RFC 3339 time", where, f.name, v)
			}
		case "number":
			if _, isNum := v.(float64); !isNum {
				t.Errorf("%s: %s is %T, want a number", where, f.name, v)
			}
		case "object":
			m, isObj := v.(map[string]any)
			if !isObj {
				t.Errorf("%s: %s is %T, want an object", where, f.name, v)
			} else if f.omitEmpty && len(m) == 0 {
				t.Errorf("%s: %s is an empty object; MicroBadger's omitempty left it out", where, f.name)
			}
		case "array":
			a, isArr := v.([]any)
			if !isArr {
				t.Errorf("%s: %s is %T, want an array", where, f.name, v)
			} else if f.omitEmpty && len(a) == 0 {
				t.Errorf("%s: %s is an empty array; MicroBadger's omitempty left it out", where, f.name)
			}
		}
	}
	for k := range obj {
		if !known[k] {
			t.Errorf("%s: field %s was not in MicroBadger's answer", where, k)
		}
	}
}

func checkMicroBadgerImage(t *testing.T, img map[string]any) {
	t.Helper()
	checkMicroBadger(t, "image", img, microBadgerImage)
	versions, _ := img["Versions"].([]any)
	for i, v := range versions {
		checkMicroBadgerVersionObject(t, "Versions["+string(rune('0'+i%10))+"]", v)
	}
}

func checkMicroBadgerVersionObject(t *testing.T, where string, v any) {
	t.Helper()
	ver, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s is %T", where, v)
		return
	}
	checkMicroBadger(t, where, ver, microBadgerVersion)
	for _, tg := range ver["Tags"].([]any) {
		checkMicroBadger(t, where+".Tags", tg.(map[string]any), mbTag)
	}
	if layers, ok := ver["Layers"].([]any); ok {
		for _, l := range layers {
			checkMicroBadger(t, where+".Layers", l.(map[string]any), mbLayer)
		}
	}
	if lic, ok := ver["License"].(map[string]any); ok {
		checkMicroBadger(t, where+".License", lic, mbLicense)
	}
	if vcs, ok := ver["VersionControl"].(map[string]any); ok {
		checkMicroBadger(t, where+".VersionControl", vcs, mbVCS)
	}
}

// labelled returns a random image with the given labels and config author.
func labelled(t *testing.T, layers int64, labels map[string]string, author string) v1.Image {
	t.Helper()
	img, err := random.Image(300, layers)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Labels, cf.Author = labels, author
	cf.Created = v1.Time{Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func getMap(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: %d, body is not JSON: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode, m
}

// TestMicroBadgerAPIFirstRequest: on a repository never seen, the first
// request answers as MicroBadger would have: every field by MicroBadger's
// definitions, every tag in Versions, LatestVersion the longest tag of the
// requested image, and the fields docs/API.md derives from labels.
func TestMicroBadgerAPIFirstRequest(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, Server: &server.Options{}})
	repo := s.Registry.Host + "/acme/app"
	current := labelled(t, 2, map[string]string{
		"org.label-schema.license":          "MIT",
		"org.opencontainers.image.source":   "git@github.com:acme/app.git",
		"org.opencontainers.image.revision": "0f3c2a9",
		"org.opencontainers.image.vendor":   "Acme",
	}, "")
	older := labelled(t, 1, nil, "Jane <jane@acme.example>")
	for _, tag := range []string{"2.3.1", "2.3", "2", "latest"} {
		pushTo(t, repo+":"+tag, current)
	}
	pushTo(t, repo+":1.0", older)
	cur, _ := current.Digest()
	old, _ := older.Digest()

	code, img := getMap(t, s.URL+"/v1/images/"+repo)
	if code != 200 {
		t.Fatalf("first request: %d %v", code, img)
	}
	checkMicroBadgerImage(t, img)
	if img["LatestSHA"] != cur.String() || img["Id"] != cur.String() {
		t.Errorf("LatestSHA %v Id %v, want %s (where latest points)", img["LatestSHA"], img["Id"], cur)
	}
	if img["LatestVersion"] != "2.3.1" {
		t.Errorf("LatestVersion %v, want 2.3.1 (the longest tag sharing latest's digest)", img["LatestVersion"])
	}
	if img["ImageName"] != repo || img["Author"] != "Acme" {
		t.Errorf("ImageName %v Author %v", img["ImageName"], img["Author"])
	}
	// No one subscribed: the repository has no hook token, and reading
	// makes none.
	if u, ok := img["WebhookURL"]; ok {
		t.Errorf("WebhookURL %q before any subscription", u)
	}
	versions := map[string]map[string]any{}
	for _, v := range img["Versions"].([]any) {
		m := v.(map[string]any)
		versions[m["SHA"].(string)] = m
	}
	if len(versions) != 2 {
		t.Fatalf("Versions has %d entries, want the 2 digests of the repository", len(versions))
	}
	var tags []string
	for _, tg := range versions[cur.String()]["Tags"].([]any) {
		tags = append(tags, tg.(map[string]any)["tag"].(string))
	}
	slices.Sort(tags)
	if strings.Join(tags, ",") != "2,2.3,2.3.1,latest" {
		t.Errorf("tags of the current version %v", tags)
	}
	cv := versions[cur.String()]
	if lic := cv["License"].(map[string]any); lic["Code"] != "MIT" || lic["URL"] != "https://spdx.org/licenses/MIT.html" {
		t.Errorf("License %v", lic)
	}
	if vcs := cv["VersionControl"].(map[string]any); vcs["Type"] != "git" || vcs["Commit"] != "0f3c2a9" ||
		vcs["URL"] != "https://github.com/acme/app/tree/0f3c2a9" {
		t.Errorf("VersionControl %v", vcs)
	}
	if ov := versions[old.String()]; ov["Author"] != "Jane <jane@acme.example>" || ov["LayerCount"] != 1.0 {
		t.Errorf("older version %v", ov)
	}
	m, _ := current.Manifest()
	if layers := cv["Layers"].([]any); len(layers) != len(m.Layers) || layers[0].(map[string]any)["BlobSum"] != m.Layers[0].Digest.String() {
		t.Errorf("Layers %v, want the manifest's %d layers base first", layers, len(m.Layers))
	}

	// One version, by digest; a trailing slash is accepted.
	code, ver := getMap(t, s.URL+"/v1/images/"+repo+"/version/"+old.String()+"/")
	if code != 200 {
		t.Fatalf("version route: %d %v", code, ver)
	}
	checkMicroBadgerVersionObject(t, "version", ver)
	if ver["SHA"] != old.String() {
		t.Errorf("version SHA %v", ver["SHA"])
	}
	if code, _ := getMap(t, s.URL+"/v1/images/"+repo+"/version/sha256:"+strings.Repeat("0", 64)); code != 404 {
		t.Errorf("unknown version: %d, want 404", code)
	}
	// A tag, with a trailing slash.
	if code, img := getMap(t, s.URL+"/v1/images/"+repo+":1.0/"); code != 200 || img["LatestSHA"] != old.String() || img["LatestVersion"] != "1.0" {
		t.Errorf("tag 1.0: %d LatestSHA %v LatestVersion %v", code, img["LatestSHA"], img["LatestVersion"])
	}
	if code, m := getMap(t, s.URL+"/v1/images/"+repo+":nope"); code != 404 || errCode(m) != "not_found" {
		t.Errorf("unknown tag: %d %v", code, m)
	}
}

// TestRefreshHook: the WebhookURL of the MicroBadger API re-resolves every
// tag of the repository when posted to, with any or no body; a wrong token
// is refused and refreshes nothing; calls are limited per repository.
func TestRefreshHook(t *testing.T) {
	s := stack.New(t, stack.Options{Registry: true, Notify: true, AllowPrivateWebhooks: true, Server: &server.Options{}})
	repo := s.Registry.Host + "/acme/hooked"
	pushTo(t, repo+":1", labelled(t, 1, nil, ""))
	// The hook token is made with the repository's first subscription.
	s.Subscribe(t, stack.NewReceiver(t), repo+":1", "/hook")
	_, img := getMap(t, s.URL+"/v1/images/"+repo+":1")
	hook, _ := img["WebhookURL"].(string)
	if hook == "" {
		t.Fatalf("no WebhookURL in %v", img)
	}
	hook = strings.Replace(hook, "http://imagebadger.test", s.URL, 1)
	moved := labelled(t, 2, nil, "")
	pushTo(t, repo+":1", moved)
	pushTo(t, repo+":2", moved)
	d, _ := moved.Digest()

	post := func(u, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(u, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	wrong := hook[:strings.LastIndex(hook, "/")+1] + "not-the-token"
	if code, m := post(wrong, ""); code != 401 || errCode(m) != "unauthorized" {
		t.Errorf("wrong token: %d %v, want 401 unauthorized", code, m)
	}
	if _, img := getMap(t, s.URL+"/v1/images/"+repo+":1"); img["LatestSHA"] == d.String() {
		t.Error("a wrong token refreshed the repository")
	}
	if code, m := post(hook, `{"anything": true}`); code != 200 || m["status"] != "ok" {
		t.Fatalf("hook: %d %v", code, m)
	}
	_, img = getMap(t, s.URL+"/v1/images/"+repo+":1")
	if img["LatestSHA"] != d.String() {
		t.Errorf("after the hook the tag points at %v, want the moved %s", img["LatestSHA"], d)
	}
	if n := len(img["Versions"].([]any)); n != 1 {
		t.Errorf("after the hook Versions has %d entries, want 1 (both tags on the moved image)", n)
	}
	if code, _ := post(hook+"/", ""); code != 200 {
		t.Errorf("second call (trailing slash): %d", code)
	}
	codes := []int{}
	for range 3 {
		code, _ := post(hook, "")
		codes = append(codes, code)
	}
	if codes[len(codes)-1] != 429 {
		t.Errorf("calls past the per-repository limit answered %v, want 429 at the end", codes)
	}
}
