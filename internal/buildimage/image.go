package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// build compiles every platform's binary and writes the image layout.
func build(ctx context.Context, o options) error {
	src, err := readSource(ctx, o.workDir, o.version)
	if err != nil {
		return err
	}
	if strings.ContainsAny(src.version, " \t\n\"'\\") {
		return fmt.Errorf("version %q: no spaces, quotes or backslashes (it is passed in -ldflags)", src.version)
	}
	// Refused before minutes of compiling rather than after.
	if err := checkReplaceable(filepath.Clean(o.out)); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "buildimage-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	inputs, err := readBaseInputs()
	if err != nil {
		return err
	}
	baseFiles, err := baseEntries(inputs.caCerts)
	if err != nil {
		return err
	}
	base, err := layer(baseFiles, src.epoch)
	if err != nil {
		return fmt.Errorf("base layer: %w", err)
	}

	var images, attestations []mutate.IndexAddendum
	for _, p := range o.platforms {
		bin := filepath.Join(tmp, "imagebadger-"+p.os+"-"+p.arch)
		gb := newGoBuild(p, src)
		fmt.Fprintf(os.Stderr, "buildimage: go build %s %s\n", p, src.version)
		if err := compile(ctx, o.goTool, o.workDir, bin, p, gb); err != nil {
			return err
		}
		img, err := platformImage(p, src, gb, base, bin)
		if err != nil {
			return fmt.Errorf("image %s: %w", p, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return fmt.Errorf("image %s: %w", p, err)
		}
		att, err := attestationImage(p, src, gb, bin, digest, inputs)
		if err != nil {
			return fmt.Errorf("attestations of %s: %w", p, err)
		}
		images = append(images, mutate.IndexAddendum{Add: imageEntry{img}, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: p.os, Architecture: p.arch},
		}})
		attestations = append(attestations, mutate.IndexAddendum{Add: imageEntry{att}, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{annotationRefType: refTypeAttestation, annotationRefDigest: digest.String()},
		}})
	}
	// BuildKit's order: the runnable images first, then the attestation manifests.
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		append(images, attestations...)...)
	idx, ok := mutate.Annotations(idx, labels(src)).(v1.ImageIndex)
	if !ok {
		return errors.New("annotate the index: not an index")
	}
	if err := writeLayout(o.out, idx, src); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("index digest: %w", err)
	}
	fmt.Fprintf(os.Stderr, "buildimage: wrote %s (%s, %s); push it with: crane push %s REF\n", o.out, src.version, digest, o.out)
	fmt.Println(digest)
	return nil
}

// imageEntry is an image as the index lists it: by media type, digest and
// size, without the artifactType that go-containerregistry otherwise copies
// from the config's media type. The image spec gives artifactType to
// artifacts, not to images; BuildKit's indexes have none.
type imageEntry struct{ v1.Image }

// Descriptor is what partial.Descriptor, and so mutate.AppendManifests, uses.
func (e imageEntry) Descriptor() (*v1.Descriptor, error) {
	var d v1.Descriptor
	var err error
	if d.MediaType, err = e.MediaType(); err != nil {
		return nil, err
	}
	if d.Digest, err = e.Digest(); err != nil {
		return nil, err
	}
	if d.Size, err = e.Size(); err != nil {
		return nil, err
	}
	return &d, nil
}

// labels are the OCI labels of each image config, and the annotations of
// each manifest and of the index: what the image is, where its source is,
// which commit and version it was built from, when (the commit's time, so
// that a rebuild gives the same digests) and under which license.
func labels(src source) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.revision":    src.commit,
		"org.opencontainers.image.version":     src.version,
		"org.opencontainers.image.created":     src.epoch.Format(time.RFC3339),
		"org.opencontainers.image.licenses":    license,
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
	}
}

// platformImage assembles one platform's image: the base layer, the binary
// layer, and a config that runs `imagebadger serve` as the nonroot user with
// the database in /data.
func platformImage(p platform, src source, gb goBuild, base v1.Layer, bin string) (v1.Image, error) {
	binFiles, err := binaryEntries(bin)
	if err != nil {
		return nil, err
	}
	binLayer, err := layer(binFiles, src.epoch)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	created := v1.Time{Time: src.epoch}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created,
			CreatedBy: "buildimage: CA certificates, time zones, user nonroot (65532), " + dataDir + ", /tmp"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created,
			CreatedBy: fmt.Sprintf("%s go %s -> %s", strings.Join(gb.env, " "), shellWords(gb.args), binaryPath)}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.os, p.arch
	cf.Created = created
	uid := fmt.Sprint(nonrootID)
	cf.Config = v1.Config{
		User:         uid + ":" + uid,
		Env:          []string{"PATH=" + filepath.Dir(binaryPath), "IMAGEBADGER_DB=" + dataDir + "/imagebadger.db"},
		Entrypoint:   []string{binaryPath},
		Cmd:          []string{"serve"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Volumes:      map[string]struct{}{dataDir: {}},
		WorkingDir:   dataDir,
		Labels:       labels(src),
		StopSignal:   "SIGTERM",
		// Docker's HEALTHCHECK (not part of the OCI config, kept by Docker
		// and Podman): the image has no shell or curl, so the binary checks
		// its own /healthz.
		Healthcheck: &v1.HealthConfig{
			Test:        []string{"CMD", binaryPath, "healthcheck"},
			Interval:    30 * time.Second,
			Timeout:     5 * time.Second,
			StartPeriod: 10 * time.Second,
			Retries:     3,
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	img, ok := mutate.Annotations(img, labels(src)).(v1.Image)
	if !ok {
		return nil, errors.New("annotate the manifest: not an image")
	}
	return img, nil
}

// shellWords joins args as a shell would need them, quoting those with spaces.
func shellWords(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.ContainsAny(a, " \t") {
			out[i] = "'" + a + "'"
		}
	}
	return strings.Join(out, " ")
}

// readBaseInputs reads what the provenance says of the base's sources.
func readBaseInputs() (baseInputs, error) {
	var in baseInputs
	var err error
	if in.caCerts, err = readFileLimited(caCertsPath, caCertsLimit); err != nil {
		return baseInputs{}, fmt.Errorf("CA certificates (Debian package ca-certificates): %w", err)
	}
	in.tzdataZi, err = readFileLimited(filepath.Join(zoneinfoDir, "tzdata.zi"), zoneFileLimit)
	if errors.Is(err, fs.ErrNotExist) {
		in.tzdataZi, err = nil, nil
	}
	if err != nil {
		return baseInputs{}, fmt.Errorf("time zones: %w", err)
	}
	return in, nil
}

// attestationImage is the attestation manifest of the platform image whose
// manifest digest is subject, as BuildKit stores attestations: an image
// manifest whose layers are in-toto statements (the SPDX SBOM, the SLSA
// provenance), each annotated with its predicate type, and a config that
// names no runnable platform.
func attestationImage(p platform, src source, gb goBuild, bin string, subject v1.Hash, in baseInputs) (v1.Image, error) {
	binary, err := readFileLimited(bin, binaryLimit)
	if err != nil {
		return nil, fmt.Errorf("read the built binary: %w", err)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read build information of %s: %w", bin, err)
	}
	doc, err := sbom(bi, binary, p, src)
	if err != nil {
		return nil, err
	}
	var adds []mutate.Addendum
	for _, s := range []statement{
		newStatement(subject, p, predicateTypeSPDX, doc),
		newStatement(subject, p, predicateTypeProvenance, slsaProvenance(p, src, gb, bi.GoVersion, in)),
	} {
		b, err := marshalStatement(s)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:       static.NewLayer(b, inTotoMediaType),
			Annotations: map[string]string{annotationPredicateType: s.PredicateType},
		})
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	// Only the layers' digests: no history, no runnable platform.
	return mutate.ConfigFile(img, &v1.ConfigFile{
		OS: "unknown", Architecture: "unknown",
		Created: v1.Time{Time: src.epoch},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: cf.RootFS.DiffIDs},
	})
}

// writeLayout writes idx as the one entry of an OCI image layout at out,
// which `crane push out REF` pushes as an index. The layout is written
// beside out and renamed into place, so out is never half written; an out
// that exists must be an OCI layout (or empty), so that a mistyped OUT
// cannot remove anything else.
func writeLayout(out string, idx v1.ImageIndex, src source) error {
	out = filepath.Clean(out)
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	l, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if err := l.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": src.version,
	})); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	// Blobs are content, not secrets or programs: readable by all, as the
	// files of an image layout checked out of a repository would be.
	if err := filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if err := removeLayout(out); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	return nil
}

// checkReplaceable makes sure dir is missing, empty or an OCI layout, the
// only things the build replaces.
func checkReplaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replace %s: %w", dir, err)
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("replace %s: it is not an OCI image layout (no oci-layout file); remove it or choose another OUT", dir)
		}
	}
	return nil
}

// removeLayout removes the OCI layout at dir, if there is one.
func removeLayout(dir string) error {
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replace %s: %w", dir, err)
	}
	return nil
}
