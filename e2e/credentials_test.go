package e2e_test

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/mattn/go-sqlite3"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// authCase is one kind of registry that wants credentials.
type authCase struct {
	name  string
	start func(t testing.TB, user, password string) *testenv.AuthRegistry
}

var authCases = []authCase{
	{"htpasswd", testenv.DistributionWithHtpasswd},
	{"token", testenv.DistributionWithToken},
}

// fetch GETs url and returns the status and body.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// secrets are the strings that must never be shown or logged: the password,
// the Basic credential and every token the token server handed out.
func secrets(reg *testenv.AuthRegistry) []string {
	out := []string{reg.Password, base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))}
	if reg.Tokens != nil {
		for _, tok := range reg.Tokens.Issued() {
			out = append(out, tok)
			if parts := strings.Split(tok, "."); len(parts) == 3 {
				out = append(out, parts[2]) // the signature alone
			}
		}
	}
	return out
}

func noSecrets(t *testing.T, where, text string, secret []string) {
	t.Helper()
	for _, s := range secret {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds a credential or token (%.12s…)", where, s)
		}
	}
}

// TestCredentialedRegistries: against the real distribution registry with
// `auth: htpasswd` and with `auth: token`, credentials in a DOCKER_CONFIG
// directory make the image page, the API, /v1, badges, webhooks and the CLI
// work, and tokens are reused (counted at the registry and the token
// server); without them every route answers registry_unauthorized (badges
// a grey "unauthorized") and nothing is stored; and no credential or token
// appears in logs, error messages, pages or /metrics.
func TestCredentialedRegistries(t *testing.T) {
	for _, tc := range authCases {
		t.Run(tc.name, func(t *testing.T) {
			reg := tc.start(t, "ci-user", "pw-"+strings.ReplaceAll(t.Name(), "/", "-")+"-7f3a")
			ref := reg.Host + "/acme/app:1"
			img := whImage(t, nil, 2)
			basic := remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password})
			if err := remote.Write(must(name.ParseReference(ref)), img, basic); err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}
			cfg := testenv.DockerConfig(t, map[string][2]string{reg.Host: {reg.User, reg.Password}})
			digest := strings.TrimSpace(string(testenv.CraneWithConfig(t, cfg, "digest", ref)))
			bin := testenv.Binary(t)
			var shown []string // every body and output, checked for secrets at the end

			t.Run("with credentials", func(t *testing.T) {
				srv := testenv.ServeProcess(t, bin, testenv.ServeOptions{
					Env: []string{"DOCKER_CONFIG=" + cfg},
					// Shown to everyone: what is checked here is that the
					// credentials work (visibility_test.go hides them).
					Args: []string{"--dockerhub-api", "", "--allow-private-webhooks", "--private-images=everyone"},
				})
				var rep report
				getJSON(t, srv.URL+"/api/v1/images/"+ref, &rep)
				if rep.Digest != digest || len(rep.Platforms) != 1 || rep.Platforms[0].LayerCount != 2 {
					t.Fatalf("report digest %s layers %v, crane says %s", rep.Digest, rep.Platforms, digest)
				}
				// A second look costs three requests at the registry (the
				// HEAD, and the look for signatures and attestations: the
				// tag list and the referrers API) and none at the token
				// server.
				regBefore := reg.Requests()
				tokBefore := 0
				if reg.Tokens != nil {
					tokBefore = reg.Tokens.Requests()
				}
				refresh(t, srv.URL, ref)
				if n := reg.Requests() - regBefore; n != 3 {
					t.Errorf("a refresh cost %d registry requests, want 3", n)
				}
				if reg.Tokens != nil {
					if n := reg.Tokens.Requests() - tokBefore; n != 0 {
						t.Errorf("a refresh cost %d token requests, want 0 (the token is reused)", n)
					}
					if reg.Tokens.Requests() == 0 {
						t.Error("no token was ever asked for: the registry did not demand one")
					}
				}
				status, page := fetch(t, srv.URL+"/images/"+ref)
				if status != 200 || !strings.Contains(page, digest) {
					t.Errorf("image page: %d, digest shown %v", status, strings.Contains(page, digest))
				}
				b := fetchBadge(t, srv.URL+"/badges/image/"+ref+".svg")
				if b.right != "2 layers" {
					t.Errorf("image badge right text %q, want 2 layers", b.right)
				}
				var mb struct{ LatestSHA string }
				getJSON(t, srv.URL+"/v1/images/"+ref, &mb)
				if mb.LatestSHA != digest {
					t.Errorf("/v1 LatestSHA %s, want %s", mb.LatestSHA, digest)
				}
				rc := newWHReceiver(t)
				rc.subscribe(t, srv.URL, ref, "/app")
				next := whImage(t, nil, 3)
				if err := remote.Write(must(name.ParseReference(ref)), next, basic); err != nil {
					t.Fatal(err)
				}
				refresh(t, srv.URL, ref)
				msgs := rc.wait("/app", "image.updated", 1, 20*time.Second)
				if d := imageData(t, msgs[0], "image")["digest"]; d != must(next.Digest()).String() {
					t.Errorf("image.updated digest %v, want the new push", d)
				}
				_, metrics := fetch(t, srv.URL+"/metrics")
				shown = append(shown, page, metrics, srv.Output())
				noSecrets(t, "the server's log", srv.Output(), secrets(reg))

				// The CLI reads the same Docker config.
				cmd := exec.Command(bin, "inspect", "--json", "--allow-private-registries", ref)
				cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+cfg)
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), must(next.Digest()).String()) {
					t.Errorf("inspect with credentials: %v\n%s", err, out)
				}
				shown = append(shown, string(out))
			})

			t.Run("without credentials", func(t *testing.T) {
				empty := testenv.DockerConfig(t, nil)
				srv := testenv.ServeProcess(t, bin, testenv.ServeOptions{
					Env:  []string{"DOCKER_CONFIG=" + empty},
					Args: []string{"--dockerhub-api", ""},
				})
				repo := reg.Host + "/acme/app"
				for _, path := range []string{"/api/v1/images/" + ref, "/v1/images/" + ref, "/api/v1/repositories/" + repo + "/tags"} {
					status, body := fetch(t, srv.URL+path)
					var e struct {
						Error struct{ Code, Message string }
					}
					if status != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "registry_unauthorized" || !strings.Contains(e.Error.Message, reg.Host) {
						t.Errorf("GET %s: %d %s, want 403 registry_unauthorized naming %s", path, status, body, reg.Host)
					}
					shown = append(shown, body)
				}
				status, page := fetch(t, srv.URL+"/images/"+ref)
				if status != http.StatusForbidden || !strings.Contains(page, `data-testid="credentials-help"`) || !strings.Contains(page, "docker login "+reg.Host) {
					t.Errorf("image page without credentials: %d, no help on giving credentials", status)
				}
				shown = append(shown, page)
				deadline := time.Now().Add(10 * time.Second)
				for {
					b := fetchBadge(t, srv.URL+"/badges/version/"+ref+".svg")
					if b.right == "unauthorized" {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("badge right text %q, want unauthorized", b.right)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				cmd := exec.Command(bin, "inspect", "--allow-private-registries", ref)
				cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+empty)
				out, err := cmd.CombinedOutput()
				if err == nil || !strings.Contains(string(out), "credentials") {
					t.Errorf("inspect without credentials: err %v, output %s", err, out)
				}
				shown = append(shown, string(out))
				_, metrics := fetch(t, srv.URL+"/metrics")
				shown = append(shown, metrics)
				if err := srv.Stop(); err != nil {
					t.Fatal(err)
				}
				shown = append(shown, srv.Output())
				db, err := sql.Open("sqlite3", "file:"+srv.DBPath+"?mode=ro")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				for _, table := range []string{"tags", "images", "manifests", "configs"} {
					var n int
					if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil || n != 0 {
						t.Errorf("%s holds %d rows (err %v), want nothing stored", table, n, err)
					}
				}
			})

			t.Run("wrong password", func(t *testing.T) {
				wrong := testenv.DockerConfig(t, map[string][2]string{reg.Host: {reg.User, "not-" + reg.Password}})
				cmd := exec.Command(bin, "inspect", "--allow-private-registries", ref)
				cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+wrong)
				out, err := cmd.CombinedOutput()
				if err == nil || !strings.Contains(string(out), "refused the credentials") {
					t.Errorf("inspect with a wrong password: err %v, output %s", err, out)
				}
				shown = append(shown, string(out))
			})

			for i, text := range shown {
				noSecrets(t, "answer "+string(rune('A'+i%26)), text, secrets(reg))
			}
		})
	}
}

// cleanEnv is the test's environment without IMAGEBADGER_ and DOCKER_CONFIG
// variables, for commands whose configuration the test decides.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGEBADGER_") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}
