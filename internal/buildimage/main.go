// Command buildimage builds imagebadger's own OCI image without a container
// daemon and writes it as an OCI image layout (`make image`), which
// `crane push DIR REF` uploads as one multi-platform index.
//
// The image is a static binary of ./cmd/imagebadger (cgo for SQLite, linked
// against glibc statically, cross-compiled for linux/arm64 with Debian's
// aarch64-linux-gnu-gcc) on an empty base that holds only CA certificates,
// time-zone data, a passwd and group file for the nonroot user 65532, /data
// for the database and /tmp. Each platform image carries OCI labels and
// annotations, and gets an SPDX SBOM of the binary's Go modules and a SLSA
// provenance attached the way BuildKit attaches attestations (an attestation
// manifest per platform inside the index), so registries, scanners and
// imagebadger itself read them as they read any BuildKit image.
//
// Why not ko: ko starts from a base image pulled from a registry (this build
// must work offline, from files the build machine has) and builds with
// CGO_ENABLED=0; it has no way to cross-compile a cgo binary with a C
// toolchain per platform, which the static go-sqlite3 binary needs.
//
// The same commit builds the same digests: every timestamp is
// SOURCE_DATE_EPOCH (by default the commit's time), tar entries are sorted
// with fixed owners and modes, gzip runs at a fixed level without a header
// time, and the Go build is -trimpath with the environment that could change
// its output pinned.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Facts about the project that go into labels, the SBOM and the provenance.
const (
	modulePath  = "github.com/imagebadger/imagebadger"
	sourceURL   = "https://" + modulePath
	license     = "Apache-2.0"
	title       = "imagebadger"
	description = "What is inside a container image and when it changes, for any OCI registry: " +
		"layers, tag groups, parent images, badges and signed webhooks"
	// builderID names this program as the SLSA builder.
	builderID = sourceURL + "/tree/main/internal/buildimage"
	// buildType is the SLSA build type: what the external parameters mean.
	buildType = sourceURL + "/internal/buildimage/v1"
)

// options are the command line of one build.
type options struct {
	out       string
	platforms []platform
	version   string
	goTool    string
	workDir   string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "buildimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("buildimage", flag.ContinueOnError)
	var o options
	var plats string
	fs.StringVar(&o.out, "out", "bin/image", "directory that receives the OCI image layout (replaced when it holds one already)")
	fs.StringVar(&plats, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms to build")
	fs.StringVar(&o.version, "version", "", "the version to stamp (default: git describe --tags --always --dirty)")
	fs.StringVar(&o.goTool, "go", "go", "the go command that builds the binaries")
	fs.StringVar(&o.workDir, "C", ".", "the root of the imagebadger module to build")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./internal/buildimage [FLAGS]\n\n"+
			"Builds imagebadger's OCI image for every platform into an OCI image layout.\n"+
			"SOURCE_DATE_EPOCH, when set, replaces the commit's time in every timestamp.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.platforms, err = parsePlatforms(plats); err != nil {
		return err
	}
	return build(ctx, o)
}

// parsePlatforms reads "linux/amd64,linux/arm64" into the platforms this
// program knows how to cross-compile, in canonical order, so that the order
// on the command line cannot change the index.
func parsePlatforms(s string) ([]platform, error) {
	var out []platform
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		found := false
		for _, k := range knownPlatforms {
			if k.String() == p {
				found = true
				if !containsPlatform(out, k) {
					out = append(out, k)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("platform %q: only %s can be built", p, knownPlatformNames())
		}
	}
	sortPlatforms(out)
	return out, nil
}
