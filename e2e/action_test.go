package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

// action is the part of action.yml a runner reads to run a composite
// action, decoded with a YAML parser of its own.
type action struct {
	Inputs map[string]struct {
		Default  string `yaml:"default"`
		Required bool   `yaml:"required"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			Uses  string            `yaml:"uses"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

// expression is a workflow expression, ${{ … }}.
var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// actionStep runs the step of action.yml with id as a GitHub runner runs a
// composite action's bash step: every ${{ inputs.NAME }} replaced by the
// input given (else its default), the step's env set, the script written to
// a file and run with `bash --noprofile --norc -eo pipefail FILE`, with
// GITHUB_OUTPUT and the runner's other files and variables. It returns the
// run and the outputs the step wrote.
func actionStep(t *testing.T, a action, id string, inputs map[string]string, path string) (ran, map[string]string) {
	t.Helper()
	value := func(expr string) string {
		name, ok := strings.CutPrefix(expr, "inputs.")
		in, declared := a.Inputs[name]
		if !ok || !declared {
			t.Fatalf("step %s uses ${{ %s }}, which is not an input this test can give", id, expr)
		}
		if v, given := inputs[name]; given {
			return v
		}
		if in.Required {
			t.Fatalf("input %s is required and the test gives none", name)
		}
		return in.Default
	}
	substitute := func(s string) string {
		return expression.ReplaceAllStringFunc(s, func(m string) string { return value(expression.FindStringSubmatch(m)[1]) })
	}
	for _, s := range a.Runs.Steps {
		if s.ID != id {
			continue
		}
		if s.Shell != "bash" {
			t.Fatalf("step %s runs in %q, not bash", id, s.Shell)
		}
		tmp := t.TempDir()
		files := map[string]string{}
		for _, f := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", "GITHUB_STATE"} {
			files[f] = filepath.Join(tmp, strings.ToLower(f))
			if err := os.WriteFile(files[f], nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		script := filepath.Join(tmp, "step.sh")
		if err := os.WriteFile(script, []byte(substitute(s.Run)), 0o644); err != nil {
			t.Fatal(err)
		}
		env := []string{"PATH=" + path, "HOME=" + tmp, "CI=true", "GITHUB_ACTIONS=true", "RUNNER_TEMP=" + tmp,
			"GITHUB_WORKSPACE=" + tmp, "GITHUB_ACTION_PATH=" + testenv.RepoRoot(t)}
		for f, p := range files {
			env = append(env, f+"="+p)
		}
		for k, v := range s.Env {
			env = append(env, k+"="+substitute(v))
		}
		r := runWithEnv(t, env, "bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		out, err := os.ReadFile(files["GITHUB_OUTPUT"])
		if err != nil {
			t.Fatal(err)
		}
		outputs := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				outputs[k] = v
			}
		}
		return r, outputs
	}
	t.Fatalf("action.yml has no step with id %s", id)
	return ran{}, nil
}

// TestActionRunsCheckBase runs the check-base step of action.yml, as a
// runner would, against the distribution registry and the built binary:
// its exit status follows check-base's (a moved base fails the step unless
// report-only says otherwise), it writes the outputs action.yml declares
// (status and moved) to $GITHUB_OUTPUT, and no input is run as a command.
func TestActionRunsCheckBase(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a action
	if err := yaml.Unmarshal(raw, &a); err != nil {
		t.Fatalf("action.yml is not YAML: %v", err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("action.yml runs %q, not a composite action", a.Runs.Using)
	}
	for out, decl := range a.Outputs {
		if want := "${{ steps.check.outputs." + out + " }}"; decl.Value != want {
			t.Errorf("output %s is %q, want %q", out, decl.Value, want)
		}
	}
	var installs bool
	for _, s := range a.Runs.Steps {
		if strings.HasPrefix(s.Uses, "actions/setup-go@") {
			installs = true
		}
		if strings.Contains(s.Run, "${{") {
			t.Errorf("step %q splices an expression into its script; inputs go through env", s.ID)
		}
	}
	if !installs {
		t.Error("action.yml does not set up Go for go install")
	}

	reg := testenv.Distribution(t)
	base := reg + "/acme/base:1"
	pushBase(t, base, "base, first build")
	testenv.Crane(t, "append", "-b", base, "-f", layerTar(t, "app"), "--set-base-image-annotations", "-t", reg+"/acme/app:1")
	testenv.Crane(t, "append", "-b", base, "-f", layerTar(t, "plain"), "-t", reg+"/acme/plain:1")
	path := filepath.Dir(testenv.Binary(t)) + string(os.PathListSeparator) + os.Getenv("PATH")
	step := func(inputs map[string]string) (ran, map[string]string) {
		inputs["args"] = "--allow-private-registries"
		return actionStep(t, a, "check", inputs, path)
	}
	expect := func(what string, r ran, outputs map[string]string, code int, status, moved string) {
		t.Helper()
		if r.code != code || outputs["status"] != status || outputs["moved"] != moved || len(outputs) != len(a.Outputs) {
			t.Errorf("%s: exit %d, outputs %v; want exit %d, status=%s moved=%s\n%s%s", what, r.code, outputs, code, status, moved, r.stdout, r.stderr)
		}
	}

	r, out := step(map[string]string{"image": reg + "/acme/app:1"})
	expect("the base as built on", r, out, 0, "current", "false")
	r, out = step(map[string]string{"image": reg + "/acme/app:1", "json": "true"})
	var answer baseAnswer
	if err := json.Unmarshal([]byte(r.stdout), &answer); err != nil || answer.Status != "current" {
		t.Errorf("json: true prints %q (%v)", r.stdout, err)
	}
	expect("json: true", r, out, 0, "current", "false")
	r, out = step(map[string]string{"image": reg + "/acme/plain:1"})
	expect("an image naming no base", r, out, 2, "unknown", "false")

	now := pushBase(t, base, "base, rebuilt")
	r, out = step(map[string]string{"image": reg + "/acme/app:1"})
	expect("the base rebuilt", r, out, 1, "moved", "true")
	if !strings.Contains(r.stdout, "::error title=Base image moved::") || !strings.Contains(r.stdout, now) {
		t.Errorf("the base rebuilt: no error annotation naming %s in\n%s", now, r.stdout)
	}
	r, out = step(map[string]string{"image": reg + "/acme/app:1", "report-only": "true"})
	expect("the base rebuilt, report-only", r, out, 0, "moved", "true")
	if !strings.Contains(r.stdout, "::warning title=Base image moved::") {
		t.Errorf("report-only: no warning annotation in\n%s", r.stdout)
	}
	r, out = step(map[string]string{"image": reg + "/acme/plain:1", "base": base})
	expect("base: given, the base rebuilt", r, out, 1, "moved", "true")

	// An input is data, never a command.
	marker := filepath.Join(t.TempDir(), "ran")
	r, out = step(map[string]string{"image": reg + "/acme/app:1$(touch " + marker + ")", "base": "`touch " + marker + "`"})
	if _, err := os.Stat(marker); err == nil {
		t.Error("an input was run as a command")
	}
	expect("an input holding a command", r, out, 2, "unknown", "false")
}
