package analysis

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerHub is the registry name shown for Docker Hub images. go-containerregistry
// calls it index.docker.io; people and `docker pull` call it docker.io.
const DockerHub = "docker.io"

// maxReferenceLength bounds what is parsed at all; real references are far shorter.
const maxReferenceLength = 1024

// Repository names a repository on a registry, with Docker Hub names
// normalised ("python" is docker.io/library/python).
type Repository struct {
	Registry string `json:"registry"`
	Name     string `json:"repository"`
}

// String returns registry/name, the form accepted back by ParseRepository.
func (r Repository) String() string { return r.Registry + "/" + r.Name }

// Short returns the name as people write it: Docker Hub's registry and the
// library/ prefix of official images are left out.
func (r Repository) Short() string {
	if r.Registry == DockerHub {
		return strings.TrimPrefix(r.Name, "library/")
	}
	return r.String()
}

// Reference is an image reference as `docker pull` accepts it, parsed and
// normalised. Exactly one of Tag and Digest selects the image: when both are
// given, the digest wins and the tag is kept only for display.
type Reference struct {
	Repository
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// String returns the canonical form: registry/repository[:tag][@digest].
func (r Reference) String() string {
	s := r.Repository.String()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Identifier is what the registry is asked for: the digest if there is one,
// else the tag.
func (r Reference) Identifier() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// WithDigest returns the same repository pinned to digest d, without a tag.
func (r Repository) WithDigest(d string) Reference { return Reference{Repository: r, Digest: d} }

// WithTag returns the same repository at tag t.
func (r Repository) WithTag(t string) Reference { return Reference{Repository: r, Tag: t} }

// ParseReference parses anything `docker pull` accepts. A missing tag means
// "latest", as Docker does.
func ParseReference(s string) (Reference, error) {
	if s == "" || len(s) > maxReferenceLength {
		return Reference{}, Errorf(ErrInvalidReference, nil, "%q is not an image reference", truncate(s, 80))
	}
	if p := schemeProblem(s, "reference"); p != "" {
		return Reference{}, Errorf(ErrInvalidReference, nil, "%q is not an image reference: %s", truncate(s, 80), p)
	}
	if p := problem(s, true); p != "" {
		return Reference{}, Errorf(ErrInvalidReference, nil, "%q is not an image reference: %s", truncate(s, 80), p)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return Reference{}, Errorf(ErrInvalidReference, err, "%q is not an image reference: %s", truncate(s, 80), explainName(err))
	}
	repo, err := canonical(ref.Context(), s)
	if err != nil {
		return Reference{}, err
	}
	out := Reference{Repository: repo}
	switch r := ref.(type) {
	case name.Tag:
		out.Tag = r.TagStr()
	case name.Digest:
		out.Digest = r.DigestStr()
		// name.Digest keeps "repo:tag@digest" only as its original text.
		if base, _, ok := strings.Cut(s, "@"); ok {
			if t, err := name.NewTag(base); err == nil && strings.Contains(lastPathElem(base), ":") {
				out.Tag = t.TagStr()
			}
		}
	}
	return out, nil
}

// ParseRepository parses [registry/]repository, refusing a tag or digest.
func ParseRepository(s string) (Repository, error) {
	if s == "" || len(s) > maxReferenceLength {
		return Repository{}, Errorf(ErrInvalidReference, nil, "%q is not a repository name", truncate(s, 80))
	}
	if p := schemeProblem(s, "repository"); p != "" {
		return Repository{}, Errorf(ErrInvalidReference, nil, "%q is not a repository name: %s", truncate(s, 80), p)
	}
	if p := problem(s, false); p != "" {
		return Repository{}, Errorf(ErrInvalidReference, nil, "%q is not a repository name: %s", truncate(s, 80), p)
	}
	repo, err := name.NewRepository(s)
	if err != nil {
		return Repository{}, Errorf(ErrInvalidReference, err, "%q is not a repository name: %s", truncate(s, 80), explainName(err))
	}
	return canonical(repo, s)
}

// maxRepositoryLength is go-containerregistry's limit on a repository path.
const maxRepositoryLength = 255

// canonical returns r as this service names it, refusing a name that is
// valid only while Docker Hub's "library/" stays implied: go-containerregistry
// checks the length before adding it, so a 250-character official name would
// parse but its canonical form (what links, stored rows and badges use)
// would not (found by FuzzParseReference).
func canonical(r name.Repository, s string) (Repository, error) {
	out := fromName(r)
	if len(out.Name) > maxRepositoryLength {
		return Repository{}, Errorf(ErrInvalidReference, nil, "%q is not an image reference: the repository path %s is longer than %d characters",
			truncate(s, 80), truncate(out.Name, 40), maxRepositoryLength)
	}
	return out, nil
}

func fromName(r name.Repository) Repository {
	reg := r.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = DockerHub
	}
	return Repository{Registry: reg, Name: r.RepositoryStr()}
}

func lastPathElem(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// explainName strips go-containerregistry's wrapping so the message reads well.
func explainName(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "could not parse reference") {
		return msg[i+2:]
	}
	return msg
}

// ShortDigest is how a digest is shown to people: the algorithm and the
// first 12 hex digits ("sha256:1a2b3c4d5e6f"), as docker shows image IDs.
func ShortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)+12]
	}
	return d
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TagProblem says what is wrong with tag as a tag name by the distribution
// spec's grammar, [A-Za-z0-9_][A-Za-z0-9._-]{0,127}, written for people;
// "" when nothing is. It is the one check of tag names, for those typed in
// references and those registries send (tag lists, Docker Hub's API,
// hooks): a name outside the grammar is never stored, asked for, shown or
// put in a header.
func TagProblem(tag string) string {
	if tag == "" {
		return "the tag is empty"
	}
	return tagProblem(tag)
}

// QuoteTag is how a tag that may be anything is written in a log line:
// quoted with Go's escapes (so CR, LF and bidirectional controls show as
// escapes) and cut to 80 bytes.
func QuoteTag(tag string) string {
	return fmt.Sprintf("%q", truncate(tag, 80))
}
