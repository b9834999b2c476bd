package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/imagebadger/imagebadger/server"
)

// The build, as a release build states it at link time:
//
//	go build -ldflags '-X main.version=v1.2.3 -X main.commit=0f3c2a9… -X main.date=2026-11-20T10:00:00Z'
//
// (make image sets exactly these three). The linker can only set package
// variables, so these are variables; nothing assigns them at run time.
// Left empty, currentBuild falls back to what the go command recorded.
var (
	version string
	commit  string
	date    string
)

// currentBuild is this binary's version, commit and build date.
func currentBuild() server.BuildInfo {
	return buildFrom(version, commit, date, debug.ReadBuildInfo)
}

// buildFrom fills what the link-time values leave empty from the build
// information the go command records: the module version for `go install
// …@v1.2.3` (a pseudo-version for a build in a checkout), and the VCS
// revision and commit time for a build in a git checkout, the revision
// marked -dirty when the tree had changes. What nothing gives stays empty;
// the version is then "devel".
func buildFrom(v, c, d string, read func() (*debug.BuildInfo, bool)) server.BuildInfo {
	b := server.BuildInfo{Version: v, Commit: c, Date: d}
	if bi, ok := read(); ok && bi != nil {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		var revision, at string
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if b.Commit == "" && revision != "" {
			b.Commit = revision
			if modified {
				b.Commit += "-dirty"
			}
		}
		if b.Date == "" {
			b.Date = at
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// printVersion writes what imagebadger version and --version print.
func printVersion(w io.Writer, b server.BuildInfo) error {
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	_, err := fmt.Fprintf(w, "imagebadger %s\ncommit: %s\ndate:   %s\ngo:     %s %s/%s\n",
		b.Version, orUnknown(b.Commit), orUnknown(b.Date), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
