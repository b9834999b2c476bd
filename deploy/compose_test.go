package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// composeFile is the compose file the tests check.
const composeFile = "compose.yaml"

// imageRepository is where `make image`'s image is pushed.
const imageRepository = "ghcr.io/imagebadger/imagebadger"

// composeSchema compiles testdata/compose-spec.json, the Compose
// Specification's JSON schema as github.com/compose-spec/compose-go/v2
// v2.16.2 ships it (schema/compose-spec.json, Apache License 2.0), the way
// compose-go compiles it: with its "duration" format.
func composeSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/compose-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("compose-spec.json", doc); err != nil {
		t.Fatal(err)
	}
	c.RegisterFormat(&jsonschema.Format{Name: "duration", Validate: func(v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("expected string")
		}
		_, err := time.ParseDuration(s)
		return err
	}})
	s, err := c.Compile("compose-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// composeJSON reads the compose file as JSON: anchors and merge keys
// resolved, a key given twice refused (as Compose refuses it).
func composeJSON(t *testing.T) []byte {
	t.Helper()
	y, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return j
}

func validateCompose(s *jsonschema.Schema, j []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}

// TestComposeSchema validates the compose file against the Compose
// Specification's schema, and checks that the schema refuses a misspelt
// service key, so that a schema that accepts anything cannot pass.
func TestComposeSchema(t *testing.T) {
	s := composeSchema(t)
	j := composeJSON(t)
	if err := validateCompose(s, j); err != nil {
		t.Fatalf("%s does not follow the Compose Specification: %#v", composeFile, err)
	}

	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	doc["services"].(map[string]any)["imagebadger"].(map[string]any)["readonly"] = true
	bad, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateCompose(s, bad); err == nil {
		t.Fatal("the schema accepts a service with an unknown key (readonly)")
	}
}

// composeProject is what the semantic checks read of a compose file.
type composeProject struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
}

type composeService struct {
	Image       string          `json:"image"`
	Command     json.RawMessage `json:"command"`
	User        string          `json:"user"`
	Profiles    []string        `json:"profiles"`
	ReadOnly    bool            `json:"read_only"`
	Tmpfs       json.RawMessage `json:"tmpfs"`
	CapDrop     []string        `json:"cap_drop"`
	SecurityOpt []string        `json:"security_opt"`
	Restart     string          `json:"restart"`
	Ports       []string        `json:"ports"`
	Environment json.RawMessage `json:"environment"`
	Secrets     []any           `json:"secrets"`
	Volumes     []any           `json:"volumes"`
	DependsOn   json.RawMessage `json:"depends_on"`
	Healthcheck *struct {
		Test    []string `json:"test"`
		Disable bool     `json:"disable"`
	} `json:"healthcheck"`
}

func readCompose(t *testing.T) composeProject {
	t.Helper()
	var p composeProject
	if err := json.Unmarshal(composeJSON(t), &p); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// imagebadger reports whether the service runs imagebadger's image.
func (s composeService) imagebadger() bool {
	return strings.HasPrefix(s.Image, imageRepository+":") || strings.HasPrefix(s.Image, imageRepository+"@")
}

// list reads a field that Compose takes as a string or a list of strings.
func list(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return strings.Fields(one)
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		t.Fatalf("not a string or a list of strings: %s", raw)
	}
	return many
}

// environment reads a service's environment, a map or a list of NAME=VALUE.
func environment(t *testing.T, raw json.RawMessage) map[string]string {
	t.Helper()
	env := map[string]string{}
	if len(raw) == 0 {
		return env
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		for k, v := range m {
			if v == nil {
				env[k] = ""
			} else {
				env[k] = fmt.Sprint(v)
			}
		}
		return env
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatalf("environment is neither a map nor a list: %s", raw)
	}
	for _, kv := range l {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// interpolate replaces what Compose substitutes from the shell or .env file
// by its default: ${NAME:-default} and ${NAME-default} become default, ${NAME}
// and $NAME the empty string, and $$ a dollar.
func interpolate(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		return sub[2]
	})
}

var interpolation = regexp.MustCompile(`\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(:?-([^}]*))?\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// secretTargets returns the files a service's secrets appear as, by secret name.
func secretTargets(t *testing.T, s composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sec := range s.Secrets {
		switch v := sec.(type) {
		case string:
			out[v] = "/run/secrets/" + v
		case map[string]any:
			src, _ := v["source"].(string)
			target, _ := v["target"].(string)
			if target == "" {
				target = src
			}
			if !path.IsAbs(target) {
				target = "/run/secrets/" + target
			}
			out[src] = target
		default:
			t.Fatalf("a secret of an unknown form: %v", sec)
		}
	}
	return out
}

// mounts returns a service's volumes by target: the named volume or host
// path mounted there.
func mounts(t *testing.T, s composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, vol := range s.Volumes {
		switch v := vol.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				out[parts[0]] = ""
				continue
			}
			out[parts[1]] = parts[0]
		case map[string]any:
			src, _ := v["source"].(string)
			target, _ := v["target"].(string)
			out[target] = src
		default:
			t.Fatalf("a volume of an unknown form: %v", vol)
		}
	}
	return out
}

// dependsOn returns the services a service depends on, with their conditions.
func dependsOn(t *testing.T, raw json.RawMessage) map[string]string {
	t.Helper()
	out := map[string]string{}
	if len(raw) == 0 {
		return out
	}
	var names []string
	if json.Unmarshal(raw, &names) == nil {
		for _, n := range names {
			out[n] = "service_started"
		}
		return out
	}
	var m map[string]struct {
		Condition string `json:"condition"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("depends_on: %v", err)
	}
	for n, d := range m {
		out[n] = d.Condition
	}
	return out
}

// TestComposeHardening checks what the schema cannot: every service runs
// with a read-only root file system, a tmpfs /tmp, no capabilities, no way to
// gain privileges, a restart policy and a health check; imagebadger's as uid
// 65532 with its healthcheck subcommand and `serve`.
func TestComposeHardening(t *testing.T) {
	p := readCompose(t)
	if len(p.Services) == 0 {
		t.Fatal("no services")
	}
	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			if !s.ReadOnly {
				t.Error("read_only is not true")
			}
			if !slices.Contains(list(t, s.Tmpfs), "/tmp") {
				t.Errorf("no tmpfs at /tmp (tmpfs %s)", s.Tmpfs)
			}
			if !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("cap_drop %v does not drop ALL", s.CapDrop)
			}
			if !slices.ContainsFunc(s.SecurityOpt, func(o string) bool {
				return o == "no-new-privileges:true" || o == "no-new-privileges"
			}) {
				t.Errorf("security_opt %v lacks no-new-privileges", s.SecurityOpt)
			}
			if s.Restart == "" || s.Restart == "no" {
				t.Errorf("restart %q: a crashed or rebooted service stays down", s.Restart)
			}
			if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] == "NONE" {
				t.Fatalf("no health check: %+v", s.Healthcheck)
			}
			if !s.imagebadger() {
				return
			}
			if s.User != "65532:65532" {
				t.Errorf("user %q, want the image's 65532:65532", s.User)
			}
			if cmd := list(t, s.Command); len(cmd) == 0 || cmd[0] != "serve" {
				t.Errorf("command %v does not run serve", cmd)
			}
			if test := s.Healthcheck.Test; test[0] != "CMD" || len(test) < 3 || path.Base(test[1]) != "imagebadger" || test[2] != "healthcheck" {
				t.Errorf("healthcheck %v is not the binary's healthcheck subcommand run without a shell", test)
			}
		})
	}
}

// TestComposeDefaultIsSQLite checks the services that run without a profile:
// one imagebadger process (SQLite allows one), its database on a named
// volume at /data where the image keeps it.
func TestComposeDefaultIsSQLite(t *testing.T) {
	p := readCompose(t)
	var names []string
	for name, s := range p.Services {
		if len(s.Profiles) > 0 {
			continue
		}
		names = append(names, name)
		if !s.imagebadger() {
			t.Errorf("%s runs without a profile but is not imagebadger", name)
			continue
		}
		env := environment(t, s.Environment)
		for k := range env {
			if strings.HasPrefix(k, "IMAGEBADGER_DB") {
				t.Errorf("%s sets %s: the default service keeps the image's SQLite file", name, k)
			}
		}
		vol, ok := mounts(t, s)["/data"]
		if !ok {
			t.Errorf("%s mounts nothing at /data", name)
		} else if _, named := p.Volumes[vol]; !named {
			t.Errorf("%s mounts %q at /data, not a named volume of the file", name, vol)
		}
	}
	if len(names) != 1 {
		t.Errorf("services without a profile: %v, want one imagebadger", names)
	}
}

// TestComposePostgresProfile checks the postgres profile: a PostgreSQL server
// with its password and a pg_isready health check, and at least two
// imagebadger processes that read its URL from a secret file, clear the
// image's SQLite path and wait for the server to be healthy.
func TestComposePostgresProfile(t *testing.T) {
	p := readCompose(t)
	var server string
	var replicas []string
	for name, s := range p.Services {
		if !slices.Contains(s.Profiles, "postgres") {
			continue
		}
		switch {
		case strings.HasPrefix(s.Image, "postgres:"):
			server = name
			if !strings.Contains(strings.Join(s.Healthcheck.Test, " "), "pg_isready") {
				t.Errorf("%s: health check %v does not ask pg_isready", name, s.Healthcheck.Test)
			}
			env := environment(t, s.Environment)
			if _, plain := env["POSTGRES_PASSWORD"]; plain {
				t.Errorf("%s: the password is in the environment, not a secret file", name)
			}
			if f := env["POSTGRES_PASSWORD_FILE"]; !slices.Contains(slices.Collect(maps.Values(secretTargets(t, s))), f) {
				t.Errorf("%s: POSTGRES_PASSWORD_FILE %q is none of its secrets' files %v", name, f, secretTargets(t, s))
			}
		case s.imagebadger():
			replicas = append(replicas, name)
		}
	}
	if server == "" {
		t.Fatal("the postgres profile has no postgres service")
	}
	if len(replicas) < 2 {
		t.Fatalf("the postgres profile runs imagebadger as %v, want at least two processes", replicas)
	}
	for _, name := range replicas {
		s := p.Services[name]
		env := environment(t, s.Environment)
		f, ok := env["IMAGEBADGER_DB_FILE"]
		if !ok {
			t.Errorf("%s does not read IMAGEBADGER_DB_FILE", name)
		} else if !slices.Contains(slices.Collect(maps.Values(secretTargets(t, s))), f) {
			t.Errorf("%s: IMAGEBADGER_DB_FILE %q is none of its secrets' files %v", name, f, secretTargets(t, s))
		}
		// The image sets IMAGEBADGER_DB to its SQLite file; the URL from the
		// file must not have it beside it.
		if v, ok := env["IMAGEBADGER_DB"]; !ok || v != "" {
			t.Errorf("%s leaves the image's IMAGEBADGER_DB in place beside IMAGEBADGER_DB_FILE", name)
		}
		if c := dependsOn(t, s.DependsOn)[server]; c != "service_healthy" {
			t.Errorf("%s depends on %s with condition %q, want service_healthy", name, server, c)
		}
	}
}

// TestComposeReferences checks the references between the file's parts that
// Compose resolves only when it starts services: declared secrets and
// volumes, dependencies within the same profiles, host ports used once, and
// secret files that git does not commit.
func TestComposeReferences(t *testing.T) {
	p := readCompose(t)
	ports := map[string]string{}
	for name, s := range p.Services {
		for sec := range secretTargets(t, s) {
			if _, ok := p.Secrets[sec]; !ok {
				t.Errorf("%s uses the undeclared secret %s", name, sec)
			}
		}
		for target, src := range mounts(t, s) {
			if src != "" && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := p.Volumes[src]; !ok {
					t.Errorf("%s mounts the undeclared volume %s at %s", name, src, target)
				}
			}
		}
		for dep := range dependsOn(t, s.DependsOn) {
			d, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on the unknown service %s", name, dep)
				continue
			}
			for _, prof := range d.Profiles {
				if !slices.Contains(s.Profiles, prof) {
					t.Errorf("%s depends on %s, which only runs with the profile %s", name, dep, prof)
				}
			}
		}
		for _, port := range s.Ports {
			i := strings.LastIndex(port, ":")
			if i < 0 {
				continue // a container port only: the host picks a free one
			}
			host := port[:i]
			if other, ok := ports[host]; ok {
				t.Errorf("%s and %s both publish host port %s", name, other, host)
			}
			ports[host] = name
		}
	}
	for name, sec := range p.Secrets {
		if sec.File == "" {
			continue
		}
		cmd := exec.Command("git", "check-ignore", "--quiet", sec.File)
		if err := cmd.Run(); err != nil {
			t.Errorf("the secret %s's file %s is not ignored by git (git check-ignore: %v)", name, sec.File, err)
		}
	}
}

// TestComposeCommandLines runs each imagebadger service's command with its
// environment (Compose's defaults substituted) through the binary.
func TestComposeCommandLines(t *testing.T) {
	p := readCompose(t)
	for name, s := range p.Services {
		if !s.imagebadger() {
			continue
		}
		env := environment(t, s.Environment)
		for k, v := range env {
			env[k] = interpolate(v)
		}
		checkCommandLine(t, composeFile+" "+name, list(t, s.Command), env)
	}
}

// TestComposeHealthcheckCommand runs each imagebadger service's health check
// command line through the binary.
func TestComposeHealthcheckCommand(t *testing.T) {
	if !subcommands(t)["healthcheck"] {
		t.Fatal("imagebadger --help lists no healthcheck subcommand, which the compose health checks run")
	}
	p := readCompose(t)
	for name, s := range p.Services {
		if s.imagebadger() && s.Healthcheck != nil && len(s.Healthcheck.Test) > 2 {
			checkCommandLine(t, composeFile+" "+name+" healthcheck", s.Healthcheck.Test[2:], nil)
		}
	}
}
