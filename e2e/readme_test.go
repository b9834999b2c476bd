package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// The README's quick start is run as it is written. Its conventions, which
// this test is the reference for:
//
//   - Under "## Quick start" (up to the next "## " heading), every fenced block
//     whose info string is sh holds commands, one a line (a line ending in \
//     continues on the next; # starts a comment). Blocks of other languages
//     (text, yaml) are not run.
//   - A command block that needs what this test cannot have (the network, a
//     Docker engine, a cluster, systemd, root, or a build into the checkout)
//     is preceded by the line `<!-- readme-test skip: REASON -->`: its commands
//     are listed as skipped subtests with that reason.
//   - Every other command is run, in order, against the binary built from
//     this tree, and must be one the test knows: `imagebadger …` (also
//     `go run ./cmd/imagebadger …`, the same package), `curl …`, or
//     `export REGISTRY=…`. Any other command fails the test, so a new command
//     is either run here or marked as skipped, never silently ignored.
//   - `imagebadger demo` and `imagebadger serve` keep running (a later one
//     replaces the earlier) while the commands after them run, as in a second
//     terminal. The test serves them on a free loopback port through
//     IMAGEBADGER_ADDR (so the README writes the default, localhost:8080,
//     which the test rewrites to that port in every command).
//   - `export REGISTRY=…` stands for the demo registry's address, which the
//     demo prints (a new port each run): the test sets REGISTRY to it.
//   - Images on Docker Hub that the commands name are pushed with crane into
//     Debian's distribution registry on loopback, and those commands run with
//     IMAGEBADGER_REGISTRY_ENDPOINTS=docker.io=THAT_REGISTRY (and private
//     registries allowed, Docker Hub's web API off): no network, the README's
//     words unchanged. Commands that name the demo's registry get no such
//     help, so they must carry the flags a reader needs.
//
// What each command must show, beyond exiting 0, is in readmeRun.check and
// readmeRun.checkCurl.

// readmeSkipMarker starts the comment that marks a command block as not run.
const readmeSkipMarker = "<!-- readme-test skip:"

// readmeCommand is one command of the README's quick start.
type readmeCommand struct {
	line int    // in README.md, where the command starts
	text string // as written, continuation lines joined
	skip string // the reason it is not run, empty for a command that is
}

// TestREADMEQuickStart runs the commands of README.md's quick start (see the
// conventions above): the demo starts and answers its pages, the badge and
// API curls answer an SVG badge and a JSON report, `imagebadger --version`
// names the build, `imagebadger inspect` prints the digest crane gives for
// the image, `imagebadger tags` lists every tag crane lists, and serve
// answers with its database where the README says. It fails when a command
// stops working (a renamed flag or subcommand, a moved route) and when the
// quick start no longer shows one of those.
func TestREADMEQuickStart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	commands, err := quickStartCommands(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	r := newReadmeRun(t)
	r.pushPublicImages(t, commands)
	for _, c := range commands {
		shown, _, _ := strings.Cut(c.text, " #")
		t.Run(fmt.Sprintf("README.md:%d %s", c.line, strings.Join(strings.Fields(shown), " ")), func(t *testing.T) {
			if c.skip != "" {
				t.Skipf("not run (%s): %s", c.skip, c.text)
			}
			r.run(t, c.text)
		})
	}
	for _, want := range []string{"demo", "version", "inspect", "badge", "api"} {
		if !r.ran[want] {
			t.Errorf("the quick start ran no %s command; it should show one (README.md, ## Quick start)", want)
		}
	}
}

// quickStartCommands reads the commands of the "## Quick start" section.
func quickStartCommands(readme string) ([]readmeCommand, error) {
	lines := strings.Split(readme, "\n")
	start := slices.Index(lines, "## Quick start")
	if start < 0 {
		return nil, errors.New(`README.md has no "## Quick start" section`)
	}
	var out []readmeCommand
	var prev string // the last non-blank line outside a block
	for i := start + 1; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "## ") {
			break
		}
		if !strings.HasPrefix(line, "```") {
			if strings.TrimSpace(line) != "" {
				prev = strings.TrimSpace(line)
			}
			continue
		}
		lang := strings.Fields(strings.TrimPrefix(line, "```") + " x")[0]
		skip := ""
		if strings.HasPrefix(prev, readmeSkipMarker) {
			skip = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(prev, readmeSkipMarker), "-->"))
			if skip == "" {
				return nil, fmt.Errorf("README.md:%d: a skip marker gives no reason", i)
			}
		}
		prev = ""
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("README.md:%d: the code block is not closed", i+1)
		}
		if lang == "sh" {
			var cur *readmeCommand
			for j := i + 1; j < end; j++ {
				text := strings.TrimSpace(lines[j])
				if cur == nil {
					if text == "" || strings.HasPrefix(text, "#") {
						continue
					}
					cur = &readmeCommand{line: j + 1, skip: skip}
				}
				cont := strings.HasSuffix(text, `\`)
				cur.text = strings.TrimSpace(cur.text + " " + strings.TrimSuffix(text, `\`))
				if !cont {
					out = append(out, *cur)
					cur = nil
				}
			}
			if cur != nil {
				return nil, fmt.Errorf("README.md:%d: the block ends in a continued line", end)
			}
		} else if skip != "" {
			return nil, fmt.Errorf("README.md:%d: a skip marker before a %q block, which is not run anyway", i+1, lang)
		}
		i = end
	}
	if len(out) == 0 {
		return nil, errors.New("README.md's quick start has no sh block")
	}
	return out, nil
}

// readmeRun is the state the quick start's commands share, as a reader's
// terminals would: the built binary on PATH, the running demo or serve, the
// demo registry's address, and the registry standing in for Docker Hub.
type readmeRun struct {
	bin     string // the directory holding the built imagebadger
	dir     string // the working directory of every command
	addr    string // 127.0.0.1:PORT, the commands' localhost:8080
	env     []string
	hub     string // host:port of the registry standing in for docker.io, once needed
	demoReg string // host:port of the running demo's registry
	server  *readmeServer
	ran     map[string]bool
}

func newReadmeRun(t *testing.T) *readmeRun {
	bin := testenv.Binary(t)
	r := &readmeRun{
		bin:  filepath.Dir(bin),
		dir:  t.TempDir(),
		addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		ran:  map[string]bool{},
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "IMAGEBADGER_") || strings.HasPrefix(kv, "REGISTRY=") ||
			strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			continue
		}
		r.env = append(r.env, kv)
	}
	r.env = append(r.env,
		"PATH="+r.bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"DOCKER_CONFIG="+t.TempDir(), // no one's credentials
		"IMAGEBADGER_ADDR="+r.addr,
	)
	t.Cleanup(func() {
		if r.server != nil {
			r.server.stop(t)
		}
	})
	return r
}

// prepare turns a README command into what the shell runs here: the go run
// of the binary's package becomes the built binary, and localhost:8080 the
// test's address.
func (r *readmeRun) prepare(text string) string {
	if rest, ok := strings.CutPrefix(text, "go run ./cmd/imagebadger"); ok && (rest == "" || rest[0] == ' ') {
		text = "imagebadger" + rest
	}
	return strings.ReplaceAll(text, "localhost:8080", r.addr)
}

// words splits a prepared command into its words, $REGISTRY expanded, quotes
// and a trailing comment removed: enough for the commands a quick start holds.
func (r *readmeRun) words(text string) []string {
	var out []string
	for _, w := range strings.Fields(text) {
		if strings.HasPrefix(w, "#") {
			break
		}
		w = strings.Trim(w, `"'`)
		if r.demoReg != "" { // else left as written, which no check takes for a reference
			w = strings.ReplaceAll(strings.ReplaceAll(w, "${REGISTRY}", r.demoReg), "$REGISTRY", r.demoReg)
		}
		out = append(out, w)
	}
	return out
}

// boolFlags are the flags of the CLI that take no value.
var boolFlags = []string{"--json", "--allow-private-registries", "--allow-private-webhooks", "--help", "--version"}

// positional returns the arguments of an imagebadger command after its
// subcommand, without flags and their values.
func positional(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i+1:]...)
		case !strings.HasPrefix(a, "-"):
			out = append(out, a)
		case !strings.Contains(a, "=") && !slices.Contains(boolFlags, a):
			i++ // the flag's value
		}
	}
	return out
}

// publicRef parses s as an image reference on Docker Hub; ok is false for
// anything else (the demo's registry, a URL, a word).
func publicRef(s string) (name.Reference, bool) {
	if strings.Contains(s, "$") || strings.Contains(s, "://") {
		return nil, false
	}
	ref, err := name.ParseReference(s)
	if err != nil || ref.Context().RegistryStr() != name.DefaultRegistry {
		return nil, false
	}
	return ref, true
}

// names returns the references an imagebadger command names and whether
// they are on Docker Hub.
func (r *readmeRun) names(words []string) (sub string, refs []string, public bool) {
	if len(words) < 2 || words[0] != "imagebadger" {
		return "", nil, false
	}
	sub = words[1]
	if strings.HasPrefix(sub, "-") {
		return sub, nil, false
	}
	refs = positional(words[2:])
	for _, s := range refs {
		if _, ok := publicRef(s); ok {
			public = true
		}
	}
	return sub, refs, public
}

// pushPublicImages pushes, with crane, an image for every Docker Hub image
// the runnable commands name (each tag named, and latest) into a
// distribution registry on loopback, which stands in for docker.io.
func (r *readmeRun) pushPublicImages(t *testing.T, commands []readmeCommand) {
	tags := map[string][]string{} // repository on the registry → tags
	for _, c := range commands {
		if c.skip != "" {
			continue
		}
		sub, refs, _ := r.names(r.words(r.prepare(c.text)))
		if sub == "demo" || sub == "serve" {
			continue
		}
		for _, s := range refs {
			ref, ok := publicRef(s)
			if !ok {
				continue
			}
			repo := ref.Context().RepositoryStr()
			if tag, ok := ref.(name.Tag); ok && !strings.Contains(s, "@") {
				tags[repo] = append(tags[repo], tag.TagStr())
			}
			tags[repo] = append(tags[repo], "latest")
		}
	}
	if len(tags) == 0 {
		return
	}
	r.hub = testenv.Distribution(t)
	for repo, ts := range tags {
		slices.Sort(ts)
		ts = slices.Compact(ts)
		first := r.hub + "/" + repo + ":" + ts[0]
		pushBase(t, first, "the README's "+repo)
		for _, tag := range ts[1:] {
			testenv.Crane(t, "tag", first, tag)
		}
	}
}

// run runs one prepared command and checks what it shows.
func (r *readmeRun) run(t *testing.T, text string) {
	text = r.prepare(text)
	words := r.words(text)
	if v, ok := strings.CutPrefix(text, "export REGISTRY="); ok {
		if r.demoReg == "" {
			t.Fatalf("%s: no demo runs before it, so there is no registry address to set", text)
		}
		t.Logf("REGISTRY is the demo's registry, %s (the README's example: %s)", r.demoReg, v)
		return
	}
	env := append(slices.Clone(r.env), "REGISTRY="+r.demoReg)
	sub, refs, public := r.names(words)
	if public && r.hub == "" {
		t.Fatal("a Docker Hub image is named but none was pushed")
	}
	if r.hub != "" && (public || sub == "serve") {
		env = append(env,
			"IMAGEBADGER_REGISTRY_ENDPOINTS=docker.io="+r.hub,
			"IMAGEBADGER_ALLOW_PRIVATE_REGISTRIES=true",
			"IMAGEBADGER_DOCKERHUB_API=",
		)
	}
	switch {
	case len(words) == 0:
		t.Fatalf("%q: nothing to run", text)
	case words[0] == "imagebadger" && (sub == "demo" || sub == "serve"):
		r.startServer(t, sub, text, env)
		return
	case words[0] != "imagebadger" && words[0] != "curl":
		t.Fatalf("%q: the test neither runs this command nor finds it marked `%s REASON -->` (see e2e/readme_test.go)", text, readmeSkipMarker)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", text)
	cmd.Dir, cmd.Env = r.dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", text, err, stdout.String(), stderr.String())
	}
	r.check(t, text, words, sub, refs, stdout.String())
}

// check judges a finished command by its standard output.
func (r *readmeRun) check(t *testing.T, text string, words []string, sub string, refs []string, out string) {
	if words[0] == "curl" {
		r.checkCurl(t, text, words, out)
		return
	}
	switch sub {
	case "--version", "version":
		r.ran["version"] = true
		if !strings.HasPrefix(out, "imagebadger ") || !strings.Contains(out, "go:") {
			t.Errorf("%s printed %q; want `imagebadger VERSION` and the build's lines", text, out)
		}
	case "inspect":
		r.ran["inspect"] = true
		if len(refs) != 1 {
			t.Fatalf("%s: want one reference, got %q", text, refs)
		}
		digest := r.craneDigest(t, refs[0])
		if slices.Contains(words, "--json") {
			var rep struct{ Digest string }
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Digest != digest {
				t.Errorf("%s: want a report with digest %s (crane's), got %.300q", text, digest, out)
			}
		} else if !regexp.MustCompile(`(?m)^digest\s+` + regexp.QuoteMeta(digest) + `$`).MatchString(out) {
			t.Errorf("%s: the report does not give the digest crane gives, %s:\n%s", text, digest, out)
		}
		if !strings.Contains(out, "layer") {
			t.Errorf("%s: the report lists no layers:\n%s", text, out)
		}
	case "tags":
		r.ran["tags"] = true
		if len(refs) != 1 {
			t.Fatalf("%s: want one repository, got %q", text, refs)
		}
		for _, tag := range strings.Fields(string(testenv.Crane(t, "ls", r.repoOnRegistry(t, refs[0])))) {
			if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(tag) + `([\s,]|$)`).MatchString(out) {
				t.Errorf("%s: tag %s, which crane lists, is not in:\n%s", text, tag, out)
			}
		}
	case "healthcheck":
		r.ran["healthcheck"] = true
		if !strings.HasPrefix(out, "ok:") {
			t.Errorf("%s printed %q; want ok: …", text, out)
		}
	default:
		r.ran[sub] = true // exit 0 is all the test knows to ask of it
	}
}

// checkCurl judges a curl of the running server by the route it asked.
func (r *readmeRun) checkCurl(t *testing.T, text string, words []string, out string) {
	var url string
	for _, w := range words[1:] {
		if strings.HasPrefix(w, "http://") || strings.HasPrefix(w, "https://") {
			url = w
		}
	}
	if !strings.HasPrefix(url, "http://"+r.addr+"/") {
		t.Fatalf("%s: want a curl of the service the quick start runs (localhost:8080), got %q", text, url)
	}
	if r.server == nil {
		t.Fatalf("%s: no demo or serve runs before it", text)
	}
	path := strings.TrimPrefix(url, "http://"+r.addr)
	switch {
	case strings.HasPrefix(path, "/badges/"):
		r.ran["badge"] = true
		if !strings.HasPrefix(out, "<svg") {
			t.Fatalf("%s: not an SVG: %.200q", text, out)
		}
		for _, bad := range []string{"not found", "invalid", "unknown badge", "unauthorized", "error", "tag removed"} {
			if strings.Contains(out, ">"+bad) {
				t.Errorf("%s: the badge says %q", text, bad)
			}
		}
	case strings.HasPrefix(path, "/api/"):
		r.ran["api"] = true
		var answer map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &answer); err != nil {
			t.Fatalf("%s: not a JSON object: %v: %.300q", text, err, out)
		}
		if e, ok := answer["error"]; ok {
			t.Errorf("%s: answered an error: %s", text, e)
		}
		if strings.HasPrefix(path, "/api/v1/images/") {
			ref := strings.TrimPrefix(path, "/api/v1/images/")
			var rep struct{ Digest string }
			_ = json.Unmarshal([]byte(out), &rep)
			if want := r.craneDigest(t, ref); rep.Digest != want {
				t.Errorf("%s: digest %q, crane gives %s", text, rep.Digest, want)
			}
		}
	default:
		r.ran["curl"] = true
		if strings.TrimSpace(out) == "" {
			t.Errorf("%s: answered nothing", text)
		}
	}
}

// onRegistry is where the test finds what a command's reference names:
// itself for the demo's registry, the stand-in registry for Docker Hub.
func (r *readmeRun) onRegistry(t *testing.T, s string) string {
	ref, ok := publicRef(s)
	if !ok {
		if _, err := name.ParseReference(s); err != nil {
			t.Fatalf("%q is not an image reference: %v", s, err)
		}
		return s
	}
	out := r.hub + "/" + ref.Context().RepositoryStr()
	switch ref.(type) {
	case name.Digest:
		out += "@" + ref.Identifier()
	case name.Tag:
		out += ":" + ref.Identifier()
	}
	return out
}

// repoOnRegistry is onRegistry for a repository, without tag or digest.
func (r *readmeRun) repoOnRegistry(t *testing.T, s string) string {
	if ref, ok := publicRef(s); ok {
		return r.hub + "/" + ref.Context().RepositoryStr()
	}
	repo, err := name.NewRepository(s)
	if err != nil {
		t.Fatalf("%q is not a repository: %v", s, err)
	}
	return repo.Name()
}

func (r *readmeRun) craneDigest(t *testing.T, s string) string {
	return strings.TrimSpace(string(testenv.Crane(t, "digest", r.onRegistry(t, s))))
}

// readmeServer is a running `imagebadger demo` or `imagebadger serve`.
type readmeServer struct {
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
	err  error
}

// startServer starts a demo or serve command in the background, replacing
// the one before, and waits until it answers; for the demo, until it has
// said where its registry is and answers its pages.
func (r *readmeRun) startServer(t *testing.T, sub, text string, env []string) {
	if r.server != nil {
		r.server.stop(t)
		r.server, r.demoReg = nil, ""
	}
	s := &readmeServer{out: &testenv.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command("/bin/sh", "-c", "exec "+text)
	s.cmd.Dir, s.cmd.Env = r.dir, env
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	distreg.DieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	r.server = s
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // the demo seeds first
	defer cancel()
	if err := distreg.WaitOK(ctx, "http://"+r.addr+"/healthz", s.done); err != nil {
		t.Fatalf("%s: not answering on %s (the test serves on IMAGEBADGER_ADDR=%s; an --addr in the README overrides it): %v\noutput:\n%s",
			text, r.addr, r.addr, err, s.out.String())
	}
	switch sub {
	case "demo":
		r.ran["demo"] = true
		m := regexp.MustCompile(`registry on (127\.0\.0\.1:\d+)`).FindStringSubmatch(s.out.String())
		if m == nil {
			t.Fatalf("%s: it never said where its registry is (`registry on HOST:PORT`), which the README tells readers to look for:\n%s", text, s.out.String())
		}
		r.demoReg = m[1]
		for _, path := range []string{"/", "/images/" + r.demoReg + "/acme/app:2.3", "/repositories/" + r.demoReg + "/acme/base",
			"/repositories/" + r.demoReg + "/acme/base/history"} {
			status, body := readmeGet(t, "http://"+r.addr+path)
			if status != http.StatusOK || !strings.Contains(body, "acme/") {
				t.Errorf("%s: GET %s answered %d, want 200 and a page about the acme family", text, path, status)
			}
		}
	case "serve":
		r.ran["serve"] = true
		if _, err := os.Stat(filepath.Join(r.dir, "imagebadger.db")); err != nil {
			t.Errorf("%s: no imagebadger.db in the directory it runs in: %v", text, err)
		}
	}
}

func (s *readmeServer) stop(t *testing.T) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("%s: still running 15 s after SIGTERM", strings.Join(s.cmd.Args, " "))
	}
	if t.Failed() {
		t.Logf("%s output:\n%s", strings.Join(s.cmd.Args, " "), lastLines(s.out.String(), 40))
	}
}

func readmeGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// lastLines keeps a long log readable in a failure message.
func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
