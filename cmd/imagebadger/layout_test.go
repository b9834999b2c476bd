package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedImports is the import direction of docs/DESIGN.md, package by
// package: what each of the service's packages may import of this module.
// cmd wires everything; nothing imports server or cmd; analysis imports
// nothing of the module; registry I/O stays out of analysis; the store
// records and decides nothing about who is notified, so it imports neither
// notify nor tagfilter.
var allowedImports = map[string][]string{
	"analysis":          {},
	"netguard":          {},
	"ratelimit":         {},
	"tagfilter":         {},
	"internal/costlru":  {},
	"docs":              {},
	"static":            {},
	"registry":          {"analysis"},
	"store":             {"analysis"},
	"badge":             {"analysis"},
	"trust":             {"analysis"},
	"auth":              {"store"},
	"images":            {"analysis", "auth", "internal/costlru", "ratelimit", "registry", "store"},
	"contents":          {"analysis", "images", "registry", "store"},
	"notify":            {"analysis", "images", "netguard", "ratelimit", "registry", "store", "tagfilter"},
	"templates":         {"analysis", "badge"},
	"server":            {"analysis", "auth", "badge", "contents", "docs", "images", "internal/costlru", "notify", "ratelimit", "static", "store", "tagfilter", "templates"},
	"internal/demo":     {"analysis", "images", "registry", "store"},
	"cmd/imagebadger":   {"*"},
	"bench/attackbench": {"*"},
	"bench/benchcmp":    {"*"},
	"bench/loadbench":   {"*"},
	"bench/replicas":    {"*"},
	"bench/soak":        {"*"},
	"internal/testing":  {"*"},
	"e2e":               {"*"},

	// The image build program works from the outside: go build, git, files.
	"internal/buildimage": {},
	"e2e/imagebuild":      {"*"},
}

// TestLayout checks the shape of the module with go list: every package's
// imports of this module follow allowedImports; analysis depends on
// neither net/http nor registry, and the store on neither notify nor
// tagfilter, directly or through anything they import; and images, which
// records what registries say, declares nothing that builds events.
func TestLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "github.com/imagebadger/imagebadger/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		name := strings.TrimPrefix(p.ImportPath, "github.com/imagebadger/imagebadger/")
		allowed, ok := allowedImports[name]
		if !ok && strings.HasPrefix(name, "internal/testing/") {
			allowed, ok = allowedImports["internal/testing"]
		}
		if !ok {
			t.Errorf("package %s is not in the layout of docs/DESIGN.md; add it to allowedImports", name)
			continue
		}
		if slices.Contains(allowed, "*") {
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, "github.com/imagebadger/imagebadger/")
			if ours && !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s, against the direction of docs/DESIGN.md", name, dep)
			}
		}
	}
	if seen < 15 {
		t.Fatalf("go list listed only %d packages", seen)
	}
	deps, err := exec.Command("go", "list", "-deps", "github.com/imagebadger/imagebadger/analysis").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(string(deps)) {
		if d == "net/http" || d == "github.com/imagebadger/imagebadger/registry" {
			t.Errorf("analysis depends on %s", d)
		}
	}
	if deps, err = exec.Command("go", "list", "-deps", "github.com/imagebadger/imagebadger/store").Output(); err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(string(deps)) {
		if d == "github.com/imagebadger/imagebadger/notify" || d == "github.com/imagebadger/imagebadger/tagfilter" {
			t.Errorf("store depends on %s", d)
		}
	}
	api, err := exec.Command("go", "doc", "-short", "github.com/imagebadger/imagebadger/images").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(api), "\n") {
		if strings.Contains(line, "Event") {
			t.Errorf("images declares %q: events are notify's to make", strings.TrimSpace(line))
		}
	}
}
