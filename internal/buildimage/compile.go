package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// platform is one platform the image is built for, with the C cross-compiler
// (Debian's gcc-TRIPLET package) that builds its cgo code.
type platform struct {
	os, arch string
	// cc is the C compiler; its triplet name is used on every host, so the
	// native platform is built the same way as the others.
	cc string
	// cpuLevel is the GOAMD64 / GOARM64 setting, pinned so that a
	// developer's environment cannot change the binary.
	cpuEnv, cpuLevel string
	// debianPackages names what installs the compiler and the static C
	// library, for the error when they are missing.
	debianPackages string
}

func (p platform) String() string { return p.os + "/" + p.arch }

// knownPlatforms are the platforms of the image, in the index's order.
var knownPlatforms = []platform{
	{os: "linux", arch: "amd64", cc: "x86_64-linux-gnu-gcc", cpuEnv: "GOAMD64", cpuLevel: "v1",
		debianPackages: "gcc-x86-64-linux-gnu (or gcc on amd64) and libc6-dev"},
	{os: "linux", arch: "arm64", cc: "aarch64-linux-gnu-gcc", cpuEnv: "GOARM64", cpuLevel: "v8.0",
		debianPackages: "gcc-aarch64-linux-gnu and libc6-dev-arm64-cross"},
}

func knownPlatformNames() string {
	var names []string
	for _, p := range knownPlatforms {
		names = append(names, p.String())
	}
	return strings.Join(names, ", ")
}

func containsPlatform(ps []platform, p platform) bool {
	return slices.ContainsFunc(ps, func(q platform) bool { return q.String() == p.String() })
}

func sortPlatforms(ps []platform) {
	slices.SortFunc(ps, func(a, b platform) int {
		return slices.IndexFunc(knownPlatforms, func(k platform) bool { return k.String() == a.String() }) -
			slices.IndexFunc(knownPlatforms, func(k platform) bool { return k.String() == b.String() })
	})
}

// buildTags are the tags of the shipped binary: pure-Go user and DNS lookups
// (no glibc NSS, which a static binary cannot load) and SQLite without
// dlopen, so the static link has no glibc functions that need shared
// libraries at run time.
const buildTags = "osusergo netgo sqlite_omit_load_extension"

// compileTimeout bounds one go build; a cold cross-compile of the SQLite
// amalgamation takes minutes on a small machine.
const compileTimeout = 20 * time.Minute

// goBuild describes one go build: its arguments (all but -o, which names
// a temporary file) and its environment beyond the inherited one, both
// recorded in the provenance.
type goBuild struct {
	args []string
	env  []string
}

// newGoBuild returns the go build of ./cmd/imagebadger for p.
func newGoBuild(p platform, src source) goBuild {
	ldflags := strings.Join([]string{
		"-linkmode external", "-extldflags -static",
		"-X main.version=" + src.version,
		"-X main.commit=" + src.commit,
		"-X main.date=" + src.epoch.Format(time.RFC3339),
	}, " ")
	return goBuild{
		args: []string{"build", "-trimpath", "-buildvcs=false",
			"-tags", buildTags, "-ldflags", ldflags, "./cmd/imagebadger"},
		env: []string{"CGO_ENABLED=1", "GOOS=" + p.os, "GOARCH=" + p.arch, "CC=" + p.cc,
			p.cpuEnv + "=" + p.cpuLevel},
	}
}

// pinnedEnv lists the variables that change what go build makes; the
// inherited ones are dropped so that only goBuild.env sets them.
var pinnedEnv = []string{"GOFLAGS", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOARM", "GOEXPERIMENT",
	"CGO_ENABLED", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS", "CGO_FFLAGS",
	"CC", "CXX", "AR", "PKG_CONFIG", "GO_EXTLINK_ENABLED"}

// compile runs the go build b of p in dir, writing the binary to out.
func compile(ctx context.Context, goTool, dir, out string, p platform, b goBuild) error {
	if _, err := exec.LookPath(p.cc); err != nil {
		return fmt.Errorf("compile %s: C compiler %s not found (Debian: %s): %w", p, p.cc, p.debianPackages, err)
	}
	ctx, cancel := context.WithTimeout(ctx, compileTimeout)
	defer cancel()
	args := slices.Insert(slices.Clone(b.args), 1, "-o", out)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = dir
	cmd.Env = append(withoutEnv(os.Environ(), pinnedEnv), b.env...)
	var output limitedBuffer
	output.limit = 256 << 10
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w after %s", err, compileTimeout)
		}
		return fmt.Errorf("compile %s: %s %s: %w\n%s", p, goTool, strings.Join(args, " "), err, output.String())
	}
	return nil
}

func withoutEnv(env, names []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
