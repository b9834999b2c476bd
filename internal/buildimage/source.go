package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// source is what the build knows of the commit it builds.
type source struct {
	// version is the stamped version: git describe, or the -version flag.
	version string
	// commit is the full hash of HEAD.
	commit string
	// dirty reports uncommitted changes to tracked files: the binary is then
	// not exactly the commit's, which the provenance says.
	dirty bool
	// epoch is the time of every timestamp of the image: SOURCE_DATE_EPOCH
	// when set, else the commit's committer time.
	epoch time.Time
}

// gitOutputLimit bounds what is read of one git command's output.
const gitOutputLimit = 64 << 10

// readSource asks git about the work tree at dir.
func readSource(ctx context.Context, dir, version string) (source, error) {
	if err := checkModule(dir); err != nil {
		return source{}, err
	}
	var s source
	var err error
	if s.commit, err = git(ctx, dir, "rev-parse", "--verify", "HEAD^{commit}"); err != nil {
		return source{}, err
	}
	status, err := git(ctx, dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return source{}, err
	}
	s.dirty = status != ""
	if version == "" {
		if version, err = git(ctx, dir, "describe", "--tags", "--always", "--dirty"); err != nil {
			return source{}, err
		}
	}
	s.version = version
	if e, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil || sec < 0 {
			return source{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a count of seconds since 1970", e)
		}
		s.epoch = time.Unix(sec, 0).UTC()
	} else {
		ct, err := git(ctx, dir, "log", "-1", "--format=%ct", "HEAD")
		if err != nil {
			return source{}, err
		}
		sec, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return source{}, fmt.Errorf("git log: commit time %q: %w", ct, err)
		}
		s.epoch = time.Unix(sec, 0).UTC()
	}
	return s, nil
}

// checkModule makes sure dir is the root of this module, so a mistyped -C
// fails before anything is built.
func checkModule(dir string) error {
	path := filepath.Join(dir, "go.mod")
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if mp, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			if mp = strings.Trim(strings.TrimSpace(mp), `"`); mp != modulePath {
				return fmt.Errorf("%s names module %q, not %s", path, mp, modulePath)
			}
			return nil
		}
	}
	return fmt.Errorf("%s names no module", path)
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = gitOutputLimit, gitOutputLimit
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	if stdout.over {
		return "", fmt.Errorf("git %s: more than %d bytes of output", strings.Join(args, " "), gitOutputLimit)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// limitedBuffer keeps the first limit bytes written to it and notes that
// more came, so a child process's output cannot fill memory.
type limitedBuffer struct {
	bytes.Buffer
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.limit - b.Len(); len(p) > room {
		b.over = true
		p = p[:max(room, 0)]
	}
	b.Buffer.Write(p)
	return n, nil
}

// errTooLarge marks an input file over its size limit.
var errTooLarge = errors.New("larger than the limit")

// readFileLimited reads a file of at most limit bytes.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: %w of %d bytes", path, errTooLarge, limit)
	}
	return b, nil
}
