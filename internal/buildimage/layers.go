package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: the nonroot uid and gid distroless images use, so
// volume permissions prepared for those carry over.
const (
	nonrootID   = 65532
	nonrootName = "nonroot"
	// dataDir holds the SQLite database; the one directory besides /tmp
	// the service can write, and its user's home.
	dataDir = "/data"
	// binaryPath is where the binary lives; the image's PATH holds its directory.
	binaryPath = "/usr/local/bin/imagebadger"
)

// Where the base's files come from on the build machine (Debian's
// ca-certificates and tzdata), and the limits on reading them.
const (
	caCertsPath   = "/etc/ssl/certs/ca-certificates.crt"
	zoneinfoDir   = "/usr/share/zoneinfo"
	caCertsLimit  = 16 << 20
	zoneFileLimit = 1 << 20
	zoneinfoLimit = 64 << 20
	binaryLimit   = 512 << 20
)

// gzipLevel is fixed: the compressed bytes, and so the layer digests, depend
// on it (and on the Go release's compress/flate, which go.mod pins).
const gzipLevel = 6

// entry is one file, directory or symbolic link of a layer.
type entry struct {
	name     string // relative to /, without a trailing slash
	typ      byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode     int64  // permission bits, with the sticky bit for /tmp
	uid, gid int
	data     []byte
	linkname string
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }

func file(name string, mode int64, data []byte) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}

// baseEntries returns the files of the empty base: the passwd and group
// entries of the nonroot user, the name-service order for the pure-Go
// resolver, the CA bundle certs, the time zones, /data owned by the user
// and a world-writable, sticky /tmp. Everything else is root's and
// read-only to the user.
func baseEntries(certs []byte) ([]entry, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n",
		nonrootName, nonrootID, nonrootID, nonrootName, dataDir)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", nonrootName, nonrootID)
	es := []entry{
		dir("etc", 0o755),
		file("etc/passwd", 0o644, []byte(passwd)),
		file("etc/group", 0o644, []byte(group)),
		file("etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n")),
		dir("etc/ssl", 0o755),
		dir("etc/ssl/certs", 0o755),
		file(strings.TrimPrefix(caCertsPath, "/"), 0o644, certs),
		dir("usr", 0o755),
		dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755),
		dir("usr/share", 0o755),
		{name: strings.TrimPrefix(dataDir, "/"), typ: tar.TypeDir, mode: 0o755, uid: nonrootID, gid: nonrootID},
		dir("tmp", 0o1777),
	}
	zones, err := zoneinfoEntries(zoneinfoDir)
	if err != nil {
		return nil, fmt.Errorf("time zones (Debian package tzdata): %w", err)
	}
	return append(es, zones...), nil
}

// zoneinfoEntries copies the time-zone database at root into
// usr/share/zoneinfo, keeping its relative symbolic links (aliases such as
// UTC -> Etc/UTC) and leaving out absolute ones, which point at the build
// machine's own files (localtime -> /etc/localtime).
func zoneinfoEntries(root string) ([]entry, error) {
	var es []entry
	var total int64
	prefix := strings.TrimPrefix(zoneinfoDir, "/")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			es = append(es, dir(name, 0o755))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !path.IsAbs(target) {
				es = append(es, entry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target})
			}
		case d.Type().IsRegular():
			b, err := readFileLimited(p, zoneFileLimit)
			if err != nil {
				return err
			}
			if total += int64(len(b)); total > zoneinfoLimit {
				return fmt.Errorf("%s: %w of %d bytes in all", root, errTooLarge, zoneinfoLimit)
			}
			es = append(es, file(name, 0o644, b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	return es, nil
}

// binaryEntries returns the layer of the binary built at path.
func binaryEntries(path string) ([]entry, error) {
	b, err := readFileLimited(path, binaryLimit)
	if err != nil {
		return nil, fmt.Errorf("read the built binary: %w", err)
	}
	return []entry{file(strings.TrimPrefix(binaryPath, "/"), 0o755, b)}, nil
}

// layer writes es as a gzip-compressed tar, entries sorted by name with
// every time set to epoch, and returns it as an OCI layer.
func layer(es []entry, epoch time.Time) (v1.Layer, error) {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(es); i++ {
		if es[i].name == es[i-1].name {
			return nil, fmt.Errorf("layer: %s twice", es[i].name)
		}
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzipLevel)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	// The gzip header stays without name or time: gzip.Header's zero value.
	tw := tar.NewWriter(zw)
	for _, e := range es {
		h := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.linkname,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeReg:
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	compressed := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}
