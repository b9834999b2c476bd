package notify

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/imagebadger/imagebadger/analysis"
)

// Media types of a CNCF distribution notification envelope, as the registry
// sends them (application/json is accepted for hand-made calls).
const (
	EnvelopeV1 = "application/vnd.docker.distribution.events.v1+json"
	EnvelopeV2 = "application/vnd.docker.distribution.events.v2+json"
)

// envelope is the part of a distribution notification envelope that matters
// here.
type envelope struct {
	Events []struct {
		Action string `json:"action"`
		Target struct {
			MediaType  string `json:"mediaType"`
			Digest     string `json:"digest"`
			Repository string `json:"repository"`
			URL        string `json:"url"`
			Tag        string `json:"tag"`
		} `json:"target"`
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
	} `json:"events"`
}

// manifestTypes are the media types a manifest push carries.
func manifestTypes() []string {
	return []string{
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v1+prettyjws",
	}
}

// Push is an image an inbound hook says was pushed, or deleted: a tag (or
// a digest), with the digest the tag now points at when the hook names it.
type Push struct {
	Ref    analysis.Reference
	Digest string
	// Deleted marks a deletion: of the tag, or (Ref by digest) of the
	// manifest, which removes every tag pointing at it.
	Deleted bool
}

// Skipped is an event of an inbound hook left out because the tag it names
// is not a tag by the distribution spec's grammar: such a name is never
// asked for or stored, and the caller logs it.
type Skipped struct {
	// Repository is the event's repository as the hook gave it.
	Repository string
	// Tag is the name, as sent; log it with analysis.QuoteTag.
	Tag string
	// Problem says what is wrong with it.
	Problem string
}

// ParseRegistryNotification returns the images to refresh for a
// distribution notification envelope: for each push of a manifest,
// repository:tag (or @digest when the push had no tag) on the registry named
// by the host of target.url, else by request.host; never source.addr, which
// is the registry's own host name and may not be reachable from here. Each
// delete (of a tag, or of a manifest or blob by digest: the registry's
// events do not tell the two apart) is returned Deleted, for the tags it may
// have removed to be checked. Pulls, mounts and blob pushes are ignored, as
// are events naming no usable image. Each image is listed once. Events
// whose tag is outside the tag grammar are returned as skipped.
func ParseRegistryNotification(body []byte) ([]Push, []Skipped, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, nil, invalid("the body is not a distribution notification envelope")
	}
	var out []Push
	var skipped []Skipped
	seen := map[string]bool{}
	for _, e := range env.Events {
		if (e.Action != "push" && e.Action != "delete") || e.Target.Repository == "" {
			continue
		}
		deleted := e.Action == "delete"
		host := ""
		if u, err := url.Parse(e.Target.URL); err == nil && e.Target.URL != "" {
			if !strings.Contains(u.Path, "/manifests/") {
				continue // a blob
			}
			host = u.Host
		} else if !deleted && !isManifestType(e.Target.MediaType) {
			continue
		}
		if host == "" {
			host = e.Request.Host
		}
		if host == "" {
			continue
		}
		if e.Target.Tag != "" {
			if p := analysis.TagProblem(e.Target.Tag); p != "" {
				skipped = append(skipped, Skipped{Repository: e.Target.Repository, Tag: e.Target.Tag, Problem: p})
				continue
			}
		}
		var s string
		switch {
		case e.Target.Tag != "":
			s = host + "/" + e.Target.Repository + ":" + e.Target.Tag
		case e.Target.Digest != "":
			s = host + "/" + e.Target.Repository + "@" + e.Target.Digest
		default:
			continue
		}
		ref, err := analysis.ParseReference(s)
		if err != nil {
			continue
		}
		p := Push{Ref: ref, Deleted: deleted}
		if ref.Digest == "" && !deleted && isDigest(e.Target.Digest) {
			p.Digest = e.Target.Digest
		}
		// Several events of one image in an envelope: the last one counts.
		k := ref.String()
		if seen[k] {
			for i := range out {
				if out[i].Ref.String() == k {
					out[i] = p
				}
			}
		} else {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out, skipped, nil
}

func isManifestType(mt string) bool {
	mt, _, _ = strings.Cut(mt, ";")
	for _, t := range manifestTypes() {
		if strings.EqualFold(strings.TrimSpace(mt), t) {
			return true
		}
	}
	return false
}

// dockerHubPush is the part of a Docker Hub push webhook that matters here.
type dockerHubPush struct {
	PushData struct {
		Tag string `json:"tag"`
	} `json:"push_data"`
	Repository struct {
		RepoName string `json:"repo_name"`
	} `json:"repository"`
}

// ParseDockerHubPush returns the image a Docker Hub push webhook names:
// docker.io/{repository.repo_name}:{push_data.tag}.
func ParseDockerHubPush(body []byte) (analysis.Reference, error) {
	var p dockerHubPush
	if err := json.Unmarshal(body, &p); err != nil {
		return analysis.Reference{}, invalid("the body is not a Docker Hub push webhook")
	}
	if p.Repository.RepoName == "" {
		return analysis.Reference{}, invalid("repository.repo_name is missing")
	}
	tag := p.PushData.Tag
	if tag == "" {
		tag = "latest"
	}
	if problem := analysis.TagProblem(tag); problem != "" {
		return analysis.Reference{}, invalid("push_data.tag is not a tag: %s", problem)
	}
	ref, err := analysis.ParseReference(analysis.DockerHub + "/" + p.Repository.RepoName + ":" + tag)
	if err != nil || ref.Registry != analysis.DockerHub {
		return analysis.Reference{}, invalid("repository.repo_name and push_data.tag do not name a Docker Hub image")
	}
	return ref, nil
}

// AcceptsEnvelope reports whether a Content-Type is one a distribution
// notification may carry (none at all is taken as JSON, for curl users).
func AcceptsEnvelope(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == EnvelopeV1 || mt == EnvelopeV2 || mt == "application/json" || mt == ""
}

// isDigest reports whether d is a sha256 digest as registries write them.
func isDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
