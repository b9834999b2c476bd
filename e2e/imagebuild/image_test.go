// Package imagebuild_test checks the OCI image `make image` builds: pushed to
// Debian's CNCF distribution registry and judged by crane, skopeo, go version
// -m, tar, find, chroot and qemu-user rather than by the build program's own
// types, and built twice to the same digests. It is a package of its own so
// that its two image builds have their own test timeout and run beside the
// other end-to-end tests.
package imagebuild_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
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

	"github.com/google/go-cmp/cmp"

	"github.com/imagebadger/imagebadger/internal/testing/apispec"
	"github.com/imagebadger/imagebadger/internal/testing/distreg"
	"github.com/imagebadger/imagebadger/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// report is the part of the image report (the API's and inspect --json's)
// these tests read.
type report struct {
	Digest    string `json:"digest"`
	Platforms []struct {
		Platform string            `json:"platform"`
		Digest   string            `json:"digest"`
		Labels   map[string]string `json:"labels"`
		Layers   []struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"layers"`
	} `json:"platforms"`
}

// getJSON decodes the 200 answer of GET url, checked against docs/openapi.yaml.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := &http.Client{Transport: apispec.Transport(t, http.DefaultTransport)}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// cleanEnv is the test's environment without IMAGEBADGER_ and DOCKER_CONFIG
// variables, for commands whose configuration the test decides.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGEBADGER_") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// What the image tests decode of crane's and skopeo's answers, on their own
// rather than through go-containerregistry's types, which the build uses.
type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Platform     *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

type ociIndex struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []ociDescriptor   `json:"manifests"`
	Annotations   map[string]string `json:"annotations"`
}

type ociManifest struct {
	MediaType   string            `json:"mediaType"`
	Config      ociDescriptor     `json:"config"`
	Layers      []ociDescriptor   `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

type ociConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Created      string `json:"created"`
	Config       struct {
		User         string              `json:"User"`
		Env          []string            `json:"Env"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Volumes      map[string]struct{} `json:"Volumes"`
		WorkingDir   string              `json:"WorkingDir"`
		Labels       map[string]string   `json:"Labels"`
		Healthcheck  *struct {
			Test []string `json:"Test"`
		} `json:"Healthcheck"`
	} `json:"config"`
}

// inTotoStatement is an attestation blob, decoded as the in-toto
// specification describes it.
type inTotoStatement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// The predicate types and annotations of BuildKit's attestation storage.
const (
	spdxPredicate       = "https://spdx.dev/Document"
	slsaPredicate       = "https://slsa.dev/provenance/v1"
	inTotoMediaType     = "application/vnd.in-toto+json"
	imageBinaryPath     = "/usr/local/bin/imagebadger"
	imageRepositoryName = "imagebadger/imagebadger"
)

// gitFacts are what git says of the commit the image is built from.
type gitFacts struct {
	version, commit, created string
}

func readGitFacts(t *testing.T) gitFacts {
	t.Helper()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = testenv.RepoRoot(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	created, err := time.Parse(time.RFC3339, git("log", "-1", "--format=%cI", "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	return gitFacts{
		version: git("describe", "--tags", "--always", "--dirty"),
		commit:  git("rev-parse", "HEAD"),
		created: created.UTC().Format(time.RFC3339),
	}
}

// wantLabels are the OCI labels the image must carry, from git and the project.
func wantLabels(g gitFacts) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":   "https://github.com/imagebadger/imagebadger",
		"org.opencontainers.image.revision": g.commit,
		"org.opencontainers.image.version":  g.version,
		"org.opencontainers.image.created":  g.created,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.title":    "imagebadger",
	}
}

// checkLabels reports the labels of want that got lacks or has otherwise,
// and a missing description.
func checkLabels(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], v)
		}
	}
	if got["org.opencontainers.image.description"] == "" {
		t.Errorf("%s: no org.opencontainers.image.description", what)
	}
}

func decodeJSON(t *testing.T, what string, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, b)
	}
}

// pushedImage is the layout of `make image` pushed to a real registry, with
// what crane says the registry holds.
type pushedImage struct {
	repo  string // REGISTRY/imagebadger/imagebadger
	ref   string // repo:TAG
	index ociIndex
	// platforms maps "linux/amd64" to the platform image's manifest descriptor.
	platforms map[string]ociDescriptor
	git       gitFacts
}

func (p pushedImage) byDigest(d string) string { return p.repo + "@" + d }

// TestImage checks the OCI image layout `make image` writes, judged by
// crane and skopeo after `crane push` to the CNCF distribution registry: its
// index, platform images, labels, attestations, the binaries inside, and that
// the service runs from the image's filesystem as the image's user.
func TestImage(t *testing.T) {
	layoutDir := testenv.Image(t)
	reg := testenv.Distribution(t)
	p := pushedImage{repo: reg + "/" + imageRepositoryName, git: readGitFacts(t)}
	p.ref = p.repo + ":ci"

	// crane push takes the layout's one entry, the index, as is.
	pushed := strings.TrimSpace(string(testenv.Crane(t, "push", layoutDir, p.ref)))
	_, pushedDigest, _ := strings.Cut(pushed, "@")
	var top ociIndex
	decodeJSON(t, "index.json", must(os.ReadFile(filepath.Join(layoutDir, "index.json"))), &top)
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" ||
		top.Manifests[0].Digest != pushedDigest {
		t.Fatalf("the layout's index.json should list one image index, the one crane pushed (%s): %+v", pushedDigest, top.Manifests)
	}
	if d := strings.TrimSpace(string(testenv.Crane(t, "digest", p.ref))); d != pushedDigest {
		t.Fatalf("crane digest %s = %s, crane push printed %s", p.ref, d, pushedDigest)
	}
	decodeJSON(t, "crane manifest", testenv.Crane(t, "manifest", p.ref), &p.index)
	p.platforms = map[string]ociDescriptor{}
	for _, m := range p.index.Manifests {
		if m.Platform != nil && m.Platform.OS != "unknown" {
			p.platforms[m.Platform.OS+"/"+m.Platform.Architecture] = m
		}
	}

	t.Run("index", func(t *testing.T) { checkIndex(t, p) })
	t.Run("platform images", func(t *testing.T) { checkPlatformImages(t, p) })
	t.Run("attestations", func(t *testing.T) { checkAttestations(t, p) })
	t.Run("inspect", func(t *testing.T) { checkInspect(t, p) })
	t.Run("supply chain", func(t *testing.T) { checkSupplyChain(t, p) })
	t.Run("chroot", func(t *testing.T) { checkChroot(t, p) })
	t.Run("arm64 under qemu", func(t *testing.T) { checkArm64(t, p) })
}

// checkIndex: two runnable platforms, then one attestation manifest for
// each, as BuildKit's attestation storage document lays them out.
func checkIndex(t *testing.T, p pushedImage) {
	if p.index.MediaType != "application/vnd.oci.image.index.v1+json" || p.index.SchemaVersion != 2 {
		t.Errorf("index mediaType %q schemaVersion %d", p.index.MediaType, p.index.SchemaVersion)
	}
	checkLabels(t, "index annotations", p.index.Annotations, wantLabels(p.git))
	type entry struct{ platform, refType, refDigest string }
	var got []entry
	for _, m := range p.index.Manifests {
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
			t.Errorf("manifest %s: mediaType %s", m.Digest, m.MediaType)
		}
		if m.Platform == nil {
			t.Fatalf("manifest %s has no platform", m.Digest)
		}
		got = append(got, entry{m.Platform.OS + "/" + m.Platform.Architecture + m.Platform.Variant,
			m.Annotations["vnd.docker.reference.type"], m.Annotations["vnd.docker.reference.digest"]})
	}
	amd, arm := p.platforms["linux/amd64"], p.platforms["linux/arm64"]
	want := []entry{
		{"linux/amd64", "", ""},
		{"linux/arm64", "", ""},
		{"unknown/unknown", "attestation-manifest", amd.Digest},
		{"unknown/unknown", "attestation-manifest", arm.Digest},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(entry{})); diff != "" {
		t.Errorf("index entries (-want +got):\n%s", diff)
	}
	// skopeo, the second judge, picks the same image for each platform: the
	// config it reads for the platform is the one crane's manifest names.
	for platform, m := range p.platforms {
		os, arch, _ := strings.Cut(platform, "/")
		var info struct {
			Digest       string
			Architecture string
			Os           string
			Labels       map[string]string
		}
		decodeJSON(t, "skopeo inspect", testenv.Skopeo(t, "inspect", "--tls-verify=false",
			"--override-os", os, "--override-arch", arch, "docker://"+p.ref), &info)
		if info.Os != os || info.Architecture != arch {
			t.Errorf("skopeo inspect %s: %s/%s", platform, info.Os, info.Architecture)
		}
		checkLabels(t, "skopeo inspect "+platform+" labels", info.Labels, wantLabels(p.git))
		config := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--config", "--raw",
			"--override-os", os, "--override-arch", arch, "docker://"+p.ref)
		var pm ociManifest
		decodeJSON(t, "crane manifest", testenv.Crane(t, "manifest", p.byDigest(m.Digest)), &pm)
		if sum := sha256.Sum256(config); "sha256:"+hex.EncodeToString(sum[:]) != pm.Config.Digest {
			t.Errorf("skopeo's %s config has digest sha256:%x, crane's manifest %s names %s", platform, sum, m.Digest, pm.Config.Digest)
		}
	}
}

// checkPlatformImages: each platform image's manifest and config, as crane
// prints them, and the static binary inside it.
func checkPlatformImages(t *testing.T, p pushedImage) {
	var baseLayer string
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		t.Run(platform, func(t *testing.T) {
			desc, ok := p.platforms[platform]
			if !ok {
				t.Fatalf("no %s image in the index", platform)
			}
			var m ociManifest
			decodeJSON(t, "crane manifest", testenv.Crane(t, "manifest", p.byDigest(desc.Digest)), &m)
			checkLabels(t, "manifest annotations", m.Annotations, wantLabels(p.git))
			if len(m.Layers) != 2 {
				t.Fatalf("%d layers, want the base and the binary", len(m.Layers))
			}
			for _, l := range m.Layers {
				if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
					t.Errorf("layer %s: mediaType %s", l.Digest, l.MediaType)
				}
			}
			// The base is the same for every platform, so registries store it once.
			if baseLayer == "" {
				baseLayer = m.Layers[0].Digest
			} else if m.Layers[0].Digest != baseLayer {
				t.Errorf("base layer %s differs from the other platform's %s", m.Layers[0].Digest, baseLayer)
			}

			var c ociConfig
			decodeJSON(t, "crane config", testenv.Crane(t, "config", p.byDigest(desc.Digest)), &c)
			os, arch, _ := strings.Cut(platform, "/")
			if c.OS != os || c.Architecture != arch {
				t.Errorf("config platform %s/%s", c.OS, c.Architecture)
			}
			if c.Created != p.git.created {
				t.Errorf("config created %s, want the commit's time %s", c.Created, p.git.created)
			}
			checkLabels(t, "config labels", c.Config.Labels, wantLabels(p.git))
			cc := c.Config
			if cc.User != "65532:65532" || cc.WorkingDir != "/data" ||
				!slices.Equal(cc.Entrypoint, []string{imageBinaryPath}) || !slices.Equal(cc.Cmd, []string{"serve"}) {
				t.Errorf("config User %q WorkingDir %q Entrypoint %q Cmd %q", cc.User, cc.WorkingDir, cc.Entrypoint, cc.Cmd)
			}
			if _, ok := cc.ExposedPorts["8080/tcp"]; !ok || len(cc.ExposedPorts) != 1 {
				t.Errorf("config ExposedPorts %v", cc.ExposedPorts)
			}
			if _, ok := cc.Volumes["/data"]; !ok || len(cc.Volumes) != 1 {
				t.Errorf("config Volumes %v", cc.Volumes)
			}
			if !slices.Contains(cc.Env, "IMAGEBADGER_DB=/data/imagebadger.db") {
				t.Errorf("config Env %q lacks IMAGEBADGER_DB=/data/imagebadger.db", cc.Env)
			}
			if cc.Healthcheck == nil || !slices.Equal(cc.Healthcheck.Test, []string{"CMD", imageBinaryPath, "healthcheck"}) {
				t.Errorf("config Healthcheck %+v", cc.Healthcheck)
			}

			bin := extractBinary(t, p.byDigest(desc.Digest))
			checkStaticELF(t, bin, arch)
			checkBuildInfo(t, bin, arch)
		})
	}
}

// extractBinary exports the image's filesystem with crane and takes the
// binary out of it with tar.
func extractBinary(t *testing.T, ref string) string {
	t.Helper()
	dir := t.TempDir()
	fsTar := filepath.Join(dir, "fs.tar")
	testenv.Crane(t, "export", ref, fsTar)
	cmd := exec.Command("tar", "-xf", fsTar, "-C", dir, strings.TrimPrefix(imageBinaryPath, "/"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x %s: %v\n%s", imageBinaryPath, err, out)
	}
	return filepath.Join(dir, imageBinaryPath)
}

// checkStaticELF: the binary is for arch and asks for no dynamic loader.
func checkStaticELF(t *testing.T, bin, arch string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("ELF machine %s, want %s", f.Machine, want)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %s)", prog.Type)
		}
	}
}

// goVersionM is what `go version -m` prints of a binary: its dependencies
// (after replacements) and its build settings.
type goVersionM struct {
	deps     map[string]string // module path → version
	settings map[string]string
}

func readGoVersionM(t *testing.T, bin string) goVersionM {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	v := goVersionM{deps: map[string]string{}, settings: map[string]string{}}
	var lastDep string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), "\t")
		switch {
		case f[0] == "dep" && len(f) >= 3:
			lastDep = f[1]
			v.deps[f[1]] = f[2]
		case f[0] == "=>" && len(f) >= 3 && lastDep != "":
			delete(v.deps, lastDep)
			v.deps[f[1]] = f[2]
		case f[0] == "build" && len(f) >= 2:
			k, val, _ := strings.Cut(f[1], "=")
			if uq, err := strconv.Unquote(val); err == nil {
				val = uq
			}
			v.settings[k] = val
		}
	}
	return v
}

// checkBuildInfo: the build settings go recorded in the binary are the
// shipped ones. (Under -trimpath go records no -ldflags, so the version,
// commit and date passed by -X are checked by running `imagebadger
// version`: checkVersion.)
func checkBuildInfo(t *testing.T, bin, arch string) {
	t.Helper()
	s := readGoVersionM(t, bin).settings
	want := map[string]string{"CGO_ENABLED": "1", "GOOS": "linux", "GOARCH": arch, "-trimpath": "true",
		"-tags": "osusergo,netgo,sqlite_omit_load_extension"}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("go version -m: %s=%q, want %q", k, s[k], v)
		}
	}
}

// checkAttestations: each attestation manifest holds an SPDX SBOM and a
// SLSA provenance about its platform image, as in-toto statements.
func checkAttestations(t *testing.T, p pushedImage) {
	for _, m := range p.index.Manifests {
		if m.Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
			continue
		}
		subject := m.Annotations["vnd.docker.reference.digest"]
		platform := ""
		for name, d := range p.platforms {
			if d.Digest == subject {
				platform = name
			}
		}
		if platform == "" {
			t.Fatalf("attestation manifest %s refers to %s, which is no platform image of the index", m.Digest, subject)
		}
		t.Run(platform, func(t *testing.T) {
			var am ociManifest
			decodeJSON(t, "crane manifest", testenv.Crane(t, "manifest", p.byDigest(m.Digest)), &am)
			var types []string
			statements := map[string]inTotoStatement{}
			for _, l := range am.Layers {
				if l.MediaType != inTotoMediaType {
					t.Errorf("attestation layer %s: mediaType %s, want %s", l.Digest, l.MediaType, inTotoMediaType)
				}
				pt := l.Annotations["in-toto.io/predicate-type"]
				types = append(types, pt)
				var s inTotoStatement
				decodeJSON(t, "crane blob", testenv.Crane(t, "blob", p.byDigest(l.Digest)), &s)
				if !strings.HasPrefix(s.Type, "https://in-toto.io/Statement/") {
					t.Errorf("%s: _type %q is not an in-toto statement", pt, s.Type)
				}
				if s.PredicateType != pt {
					t.Errorf("statement predicateType %q, layer annotation %q", s.PredicateType, pt)
				}
				if len(s.Subject) != 1 || "sha256:"+s.Subject[0].Digest["sha256"] != subject {
					t.Errorf("%s: subject %+v, want the platform manifest %s", pt, s.Subject, subject)
				}
				statements[pt] = s
			}
			slices.Sort(types)
			if want := []string{slsaPredicate, spdxPredicate}; !slices.Equal(types, want) {
				t.Fatalf("predicate types %q, want %q", types, want)
			}
			bin := extractBinary(t, p.byDigest(subject))
			checkSPDX(t, statements[spdxPredicate].Predicate, readGoVersionM(t, bin), p.git)
			checkProvenance(t, statements[slsaPredicate].Predicate, platform, p.git)
		})
	}
}

// spdxIDPattern is SPDX 2.3's rule for element identifiers.
var spdxIDPattern = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)

// checkSPDX checks the SBOM against SPDX 2.3's required fields and against
// the modules `go version -m` reads from the binary.
func checkSPDX(t *testing.T, raw json.RawMessage, modules goVersionM, g gitFacts) {
	t.Helper()
	var doc struct {
		SPDXVersion       string `json:"spdxVersion"`
		DataLicense       string `json:"dataLicense"`
		SPDXID            string `json:"SPDXID"`
		Name              string `json:"name"`
		DocumentNamespace string `json:"documentNamespace"`
		CreationInfo      struct {
			Created  string   `json:"created"`
			Creators []string `json:"creators"`
		} `json:"creationInfo"`
		Packages []struct {
			Name             string `json:"name"`
			SPDXID           string `json:"SPDXID"`
			VersionInfo      string `json:"versionInfo"`
			DownloadLocation string `json:"downloadLocation"`
			ExternalRefs     []struct {
				Category string `json:"referenceCategory"`
				Type     string `json:"referenceType"`
				Locator  string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
		Relationships []struct {
			Element string `json:"spdxElementId"`
			Type    string `json:"relationshipType"`
			Related string `json:"relatedSpdxElement"`
		} `json:"relationships"`
	}
	decodeJSON(t, "SPDX document", raw, &doc)
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" ||
		doc.Name == "" || !strings.Contains(doc.DocumentNamespace, "://") || len(doc.CreationInfo.Creators) == 0 {
		t.Errorf("SPDX document header: %s %s %s name %q namespace %q creators %q", doc.SPDXVersion, doc.DataLicense,
			doc.SPDXID, doc.Name, doc.DocumentNamespace, doc.CreationInfo.Creators)
	}
	if doc.CreationInfo.Created != g.created {
		t.Errorf("SPDX created %s, want the commit's time %s", doc.CreationInfo.Created, g.created)
	}
	ids := map[string]bool{}
	purls := map[string]string{} // package name → purl
	var mainID string
	for _, pkg := range doc.Packages {
		if !spdxIDPattern.MatchString(pkg.SPDXID) || ids[pkg.SPDXID] {
			t.Errorf("package %s: SPDXID %q is malformed or not unique", pkg.Name, pkg.SPDXID)
		}
		ids[pkg.SPDXID] = true
		if pkg.DownloadLocation == "" {
			t.Errorf("package %s: no downloadLocation", pkg.Name)
		}
		for _, r := range pkg.ExternalRefs {
			if r.Category == "PACKAGE-MANAGER" && r.Type == "purl" {
				purls[pkg.Name] = r.Locator
			}
		}
		if pkg.Name == "github.com/imagebadger/imagebadger" {
			mainID = pkg.SPDXID
			if pkg.VersionInfo != g.version {
				t.Errorf("main module versionInfo %q, want %q", pkg.VersionInfo, g.version)
			}
		}
	}
	described := slices.ContainsFunc(doc.Relationships, func(r struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	}) bool {
		return r.Element == "SPDXRef-DOCUMENT" && r.Type == "DESCRIBES" && r.Related == mainID
	})
	if mainID == "" || !described {
		t.Errorf("the document does not DESCRIBE the package github.com/imagebadger/imagebadger")
	}
	for _, r := range doc.Relationships {
		if !ids[r.Related] || (r.Element != "SPDXRef-DOCUMENT" && !ids[r.Element]) {
			t.Errorf("relationship %s %s %s names an unknown element", r.Element, r.Type, r.Related)
		}
	}
	// Every module go version -m lists, with the purl the purl
	// specification gives it ('+' percent-encoded), and no other.
	if len(modules.deps) == 0 {
		t.Fatal("go version -m lists no dependencies")
	}
	for path, version := range modules.deps {
		want := "pkg:golang/" + path + "@" + strings.ReplaceAll(version, "+", "%2B")
		if purls[path] != want {
			t.Errorf("module %s: purl %q, want %q", path, purls[path], want)
		}
		delete(purls, path)
	}
	delete(purls, "github.com/imagebadger/imagebadger")
	delete(purls, "stdlib")
	if len(purls) != 0 {
		t.Errorf("packages that go version -m does not list: %v", purls)
	}
}

// checkProvenance checks the SLSA v1 provenance names the source
// repository at the commit, the platform and a builder.
func checkProvenance(t *testing.T, raw json.RawMessage, platform string, g gitFacts) {
	t.Helper()
	var prov struct {
		BuildDefinition struct {
			BuildType            string         `json:"buildType"`
			ExternalParameters   map[string]any `json:"externalParameters"`
			ResolvedDependencies []struct {
				URI    string            `json:"uri"`
				Digest map[string]string `json:"digest"`
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
		} `json:"runDetails"`
	}
	decodeJSON(t, "SLSA provenance", raw, &prov)
	bd := prov.BuildDefinition
	if bd.BuildType == "" || len(bd.ExternalParameters) == 0 {
		t.Errorf("provenance buildType %q externalParameters %v: both are required", bd.BuildType, bd.ExternalParameters)
	}
	if bd.ExternalParameters["platform"] != platform {
		t.Errorf("provenance platform %v, want %s", bd.ExternalParameters["platform"], platform)
	}
	if !slices.ContainsFunc(bd.ResolvedDependencies, func(d struct {
		URI    string            `json:"uri"`
		Digest map[string]string `json:"digest"`
	}) bool {
		return d.URI == "git+https://github.com/imagebadger/imagebadger" && d.Digest["gitCommit"] == g.commit
	}) {
		t.Errorf("provenance resolvedDependencies %+v lack the repository at %s", bd.ResolvedDependencies, g.commit)
	}
	if !strings.Contains(prov.RunDetails.Builder.ID, "buildimage") {
		t.Errorf("provenance builder id %q does not name the build program", prov.RunDetails.Builder.ID)
	}
}

// checkInspect: the image's own amd64 binary inspects the pushed index and
// reports the two platforms (not the attestations) as crane sees them.
func checkInspect(t *testing.T, p pushedImage) {
	bin := extractBinary(t, p.byDigest(p.platforms["linux/amd64"].Digest))
	cmd := exec.Command(bin, "inspect", "--json", "--allow-private-registries", p.ref)
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("imagebadger inspect: %v\n%s", err, out)
	}
	var rep report
	decodeJSON(t, "imagebadger inspect --json", out, &rep)
	var platforms []string
	for _, pr := range rep.Platforms {
		platforms = append(platforms, pr.Platform)
		desc := p.platforms[pr.Platform]
		if pr.Digest != desc.Digest {
			t.Errorf("%s: digest %s, crane's index lists %s", pr.Platform, pr.Digest, desc.Digest)
		}
		var c ociConfig
		decodeJSON(t, "crane config", testenv.Crane(t, "config", p.byDigest(desc.Digest)), &c)
		if diff := cmp.Diff(c.Config.Labels, pr.Labels); diff != "" {
			t.Errorf("%s: labels (-crane config +inspect):\n%s", pr.Platform, diff)
		}
		var m ociManifest
		decodeJSON(t, "crane manifest", testenv.Crane(t, "manifest", p.byDigest(desc.Digest)), &m)
		if len(pr.Layers) != len(m.Layers) {
			t.Fatalf("%s: %d layers, crane lists %d", pr.Platform, len(pr.Layers), len(m.Layers))
		}
		for i, l := range m.Layers {
			if pr.Layers[i].Digest != l.Digest || pr.Layers[i].Size != l.Size {
				t.Errorf("%s layer %d: %s %d bytes, crane says %s %d", pr.Platform, i, pr.Layers[i].Digest, pr.Layers[i].Size, l.Digest, l.Size)
			}
		}
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("inspect reports platforms %q, want %q", platforms, want)
	}
}

// subcommands lists the subcommands `imagebadger --help` names, so that
// checks of subcommands that are not in every build run once they are.
func subcommands(t *testing.T, run func(args ...string) *exec.Cmd) []string {
	t.Helper()
	out, err := run("--help").Output()
	if err != nil {
		t.Fatalf("imagebadger --help: %v\n%s", err, out)
	}
	_, list, ok := strings.Cut(string(out), "Subcommands:")
	if !ok {
		t.Fatalf("imagebadger --help lists no subcommands:\n%s", out)
	}
	var names []string
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, "  ") && len(strings.Fields(line)) > 0 {
			names = append(names, strings.Fields(line)[0])
		}
	}
	if !slices.Contains(names, "serve") {
		t.Fatalf("imagebadger --help does not list serve:\n%s", out)
	}
	return names
}

// checkVersion runs `imagebadger version` (through run) and checks it names
// the version, commit and date stamped at build time.
func checkVersion(t *testing.T, run func(args ...string) *exec.Cmd, g gitFacts) {
	t.Helper()
	if !slices.Contains(subcommands(t, run), "version") {
		t.Fatal("imagebadger --help lists no version subcommand")
	}
	out, err := run("version").CombinedOutput()
	if err != nil {
		t.Fatalf("imagebadger version: %v\n%s", err, out)
	}
	for _, want := range []string{g.version, g.commit, g.created} {
		if !strings.Contains(string(out), want) {
			t.Errorf("imagebadger version printed %q, which lacks %q", out, want)
		}
	}
}

// checkChroot extracts the amd64 image's filesystem as crane exports it and
// runs the service in it with chroot as the image's user: the files are
// owned as the image means, /healthz and a page answer, and the service
// inspects an image in the loopback registry. It needs root (CI is).
func checkChroot(t *testing.T, p pushedImage) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root: run the end-to-end tests as root (CI does) to run the image's filesystem as uid 65532")
	}
	desc := p.platforms["linux/amd64"]
	var c ociConfig
	decodeJSON(t, "crane config", testenv.Crane(t, "config", p.byDigest(desc.Digest)), &c)

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	fsTar := filepath.Join(dir, "fs.tar")
	testenv.Crane(t, "export", p.byDigest(desc.Digest), fsTar)
	// As root, tar keeps the owners and modes the layers give.
	if out, err := exec.Command("tar", "-xpf", fsTar, "-C", root, "--numeric-owner").CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	// Only /data and /tmp may be written by anyone but root: every other
	// file and directory is root's and writable by no group or other.
	out, err := exec.Command("find", root, "-mindepth", "1", "!", "-type", "l",
		"(", "!", "-user", "0", "-o", "!", "-group", "0", "-o", "-perm", "/022", ")", "-printf", "%P %U:%G %m\n").Output()
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	if got, want := strings.Join(lines, "\n"), "data 65532:65532 755\ntmp 0:0 1777"; got != want {
		t.Errorf("entries not root's or writable by others:\n%s\nwant only:\n%s", got, want)
	}
	for _, f := range []string{"etc/ssl/certs/ca-certificates.crt", "usr/share/zoneinfo/Europe/Berlin", "etc/passwd", "etc/group"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the image lacks /%s: %v", f, err)
		}
	}
	passwd := string(must(os.ReadFile(filepath.Join(root, "etc/passwd"))))
	group := string(must(os.ReadFile(filepath.Join(root, "etc/group"))))
	if !regexp.MustCompile(`(?m)^nonroot:x:65532:65532:`).MatchString(passwd) || !regexp.MustCompile(`(?m)^nonroot:x:65532:`).MatchString(group) {
		t.Errorf("no nonroot user or group 65532:\n%s\n%s", passwd, group)
	}

	// The process gets the image's environment, user and working directory.
	// (HOME as Docker sets it, from the user's passwd entry.)
	chrootCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command("chroot", append([]string{"--userspec=" + c.Config.User, root}, args...)...)
		cmd.Env = append(withoutVars(cleanEnv(), "HOME", "PATH"), append(c.Config.Env, "HOME=/data")...)
		return cmd
	}
	run := func(args ...string) *exec.Cmd { return chrootCmd(append(c.Config.Entrypoint, args...)...) }

	// A second image in the registry for the service to inspect.
	other := p.repo + ":second"
	testenv.Crane(t, "copy", p.byDigest(desc.Digest), other)

	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	srv := run(append(c.Config.Cmd, "--addr", addr, "--allow-private-registries")...)
	var logs testenv.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("serve in the chroot:\n%s", logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := "http://" + addr
	if err := distreg.WaitStatus(ctx, base+"/healthz", exited, http.StatusOK); err != nil {
		t.Fatalf("serve in the chroot: /healthz: %v", err)
	}
	for _, path := range []string{"/", "/images/" + other} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		if path != "/" && !strings.Contains(string(body), desc.Digest) {
			t.Errorf("the page of %s does not show its digest %s", other, desc.Digest)
		}
	}
	var rep report
	getJSON(t, base+"/api/v1/images/"+other, &rep)
	if rep.Digest != desc.Digest {
		t.Errorf("the service in the chroot reports %s for %s, crane copied %s", rep.Digest, other, desc.Digest)
	}
	// The database is where the image's environment puts it, written as the user.
	st, err := os.Stat(filepath.Join(root, "data", "imagebadger.db"))
	if err != nil {
		t.Fatalf("no database in /data: %v", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != 65532 {
		t.Errorf("/data/imagebadger.db is not owned by 65532: %+v", st.Sys())
	}

	// The one-off command as well, in the chroot, as the user.
	if out, err := run("inspect", "--allow-private-registries", other).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "linux/amd64") {
		t.Errorf("imagebadger inspect in the chroot: %v\n%s", err, out)
	}
	checkVersion(t, run, p.git)

	// The image's HEALTHCHECK.
	if !slices.Contains(subcommands(t, run), "healthcheck") {
		t.Fatal("imagebadger --help lists no healthcheck subcommand")
	}
	hc := c.Config.Healthcheck.Test[1:] // after "CMD"
	if out, err := chrootCmd(append(hc, "--url", base)...).CombinedOutput(); err != nil {
		t.Errorf("%q --url %s with the service up: %v\n%s", hc, base, err, out)
	}
	dead := "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	if err := chrootCmd(append(hc, "--url", dead)...).Run(); err == nil {
		t.Errorf("%q --url %s exited 0 with nothing listening", hc, dead)
	}
}

// checkArm64 runs the arm64 image's binary under qemu-user.
func checkArm64(t *testing.T, p pushedImage) {
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		if qemu, err = exec.LookPath("qemu-aarch64"); err != nil {
			t.Fatal("qemu-aarch64-static not found (Debian package qemu-user-static): run `make deps`")
		}
	}
	bin := extractBinary(t, p.byDigest(p.platforms["linux/arm64"].Digest))
	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command(qemu, append([]string{bin}, args...)...)
		cmd.Env = cleanEnv()
		return cmd
	}
	subcommands(t, run) // --help exits 0 and lists serve
	checkVersion(t, run, p.git)
}

// TestImageReproducible builds the image a second time, from the same
// commit, through `make image` as the first build did (so with the
// toolchain go.mod names, which the Makefile lets the go command fetch),
// with the platforms named in the other order, another time zone, umask
// and temporary directory, and checks every blob, and so every digest,
// comes out the same.
func TestImageReproducible(t *testing.T) {
	first := testenv.Image(t)
	second := filepath.Join(t.TempDir(), "again")
	cmd := exec.Command("sh", "-c", `umask 077 && exec make --no-print-directory image OUT="$0" PLATFORMS=linux/arm64,linux/amd64`, second)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(withoutVars(os.Environ(), "SOURCE_DATE_EPOCH", "TZ", "TMPDIR", "OUT", "VERSION", "PLATFORMS", "GO"),
		"TZ=Pacific/Chatham", "TMPDIR="+t.TempDir())
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("second build: %s", time.Since(start).Round(time.Second))

	a, b := layoutBlobs(t, first), layoutBlobs(t, second)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("blobs of the two builds (-first +second):\n%s", diff)
	}
	ia := must(os.ReadFile(filepath.Join(first, "index.json")))
	ib := must(os.ReadFile(filepath.Join(second, "index.json")))
	if !bytes.Equal(ia, ib) {
		t.Errorf("index.json differs:\n%s\n%s", ia, ib)
	}
	if len(a) < 16 {
		t.Errorf("the layout has %d blobs, want at least 16 (an index, 4 manifests, 4 configs, 3 layers, 4 statements)", len(a))
	}
}

// layoutBlobs lists the blobs of an OCI layout, checking that each is
// named by the SHA-256 of its content, as the layout specification requires.
func layoutBlobs(t *testing.T, dir string) []string {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		f, err := os.Open(filepath.Join(blobs, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != e.Name() {
			t.Errorf("blob %s has SHA-256 %s", e.Name(), sum)
		}
		names = append(names, e.Name())
	}
	return names
}

func withoutVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
