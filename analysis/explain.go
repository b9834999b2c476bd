package analysis

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// urlScheme matches a URL's scheme at the start of what was typed: a
// reference copied from a browser's address bar or a registry's web page
// (https://), or written in skopeo's transport syntax (docker://). One slash
// is enough, since an HTTP router cleans "//" in a path to "/".
var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):/+`)

// schemeProblem returns, when s starts with a URL scheme, what to write
// instead: the same text without it (for a Docker Hub page, the repository
// that page shows). what names what s should have been ("reference",
// "repository"). "" when s has no scheme.
func schemeProblem(s, what string) string {
	m := urlScheme.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	rest := strings.TrimRight(s[len(m[0]):], "/")
	for _, page := range []string{"hub.docker.com/_/", "hub.docker.com/r/"} {
		if after, ok := strings.CutPrefix(rest, page); ok {
			// hub.docker.com/_/python/tags is the page of python.
			parts := strings.Split(after, "/")
			n := 1
			if page == "hub.docker.com/r/" {
				n = 2
			}
			if len(parts) >= n {
				rest = strings.Join(parts[:n], "/")
			}
		}
	}
	if rest == "" {
		return fmt.Sprintf("it is a URL; write the %s without %s://", what, strings.ToLower(m[1]))
	}
	return fmt.Sprintf("write the %s without %s://: %s", what, strings.ToLower(m[1]), truncate(rest, 80))
}

// problem returns what is wrong with s as an image reference
// ([registry/]repository[:tag][@digest], docker's grammar), written for the
// person who typed it, naming the part and why; "" when the grammar finds
// nothing wrong (go-containerregistry's parse then has the last word).
// withTag is false for a repository alone, where a tag is itself a mistake.
func problem(s string, withTag bool) string {
	rest, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		if !withTag {
			return "a repository name has no digest (@…)"
		}
		if p := digestProblem(digest); p != "" {
			return p
		}
	}
	// The tag follows the last ':' after the last '/'.
	slash := strings.LastIndexByte(rest, '/')
	if colon := strings.LastIndexByte(rest, ':'); colon > slash {
		if !withTag {
			return fmt.Sprintf("a repository name has no tag (%q)", rest[colon:])
		}
		if p := tagProblem(rest[colon+1:]); p != "" {
			return p
		}
		rest = rest[:colon]
	}
	parts := strings.Split(rest, "/")
	if len(parts) > 1 && isRegistryHost(parts[0]) {
		if p := hostProblem(parts[0]); p != "" {
			return p
		}
		parts = parts[1:]
	}
	repo := strings.Join(parts, "/")
	for _, part := range parts {
		if p := componentProblem(repo, part); p != "" {
			return p
		}
	}
	return ""
}

// isRegistryHost is docker's rule: the first part names a registry when it
// has a dot or a port, or is localhost.
func isRegistryHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost" || strings.HasPrefix(s, "[")
}

func digestProblem(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	switch {
	case !ok || alg == "":
		return fmt.Sprintf("the digest %q is not algorithm:hex (sha256:… with 64 hexadecimal digits)", truncate(d, 80))
	case alg == "sha256" && len(hex) != 64:
		return fmt.Sprintf("the digest %q has %d hexadecimal digits, not the 64 of sha256", truncate(d, 80), len(hex))
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Sprintf("the digest %q has %q, which is not a lower-case hexadecimal digit", truncate(d, 80), c)
		}
	}
	return ""
}

func tagProblem(tag string) string {
	switch {
	case tag == "":
		return "the tag after ':' is empty"
	case len(tag) > 128:
		return fmt.Sprintf("the tag %q is longer than 128 characters", truncate(tag, 40))
	case tag[0] == '.' || tag[0] == '-':
		return fmt.Sprintf("the tag %q starts with %q; a tag starts with a letter, a digit or _", truncate(tag, 80), tag[0])
	}
	for _, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Sprintf("the tag %q has %q, which a tag cannot have (tags are letters, digits, _, . and -)", truncate(tag, 80), c)
		}
	}
	return ""
}

func hostProblem(host string) string {
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return fmt.Sprintf("the registry %q has an unclosed [", truncate(host, 80))
		}
		name, port = host[:end+1], strings.TrimPrefix(host[end+1:], ":")
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		name, port = host[:i], host[i+1:]
	}
	if name == "" {
		return fmt.Sprintf("the registry %q has no host name", truncate(host, 80))
	}
	if port != "" || strings.HasSuffix(host, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("the port %q of registry %q is not a port number (1 to 65535)", truncate(port, 20), truncate(host, 80))
		}
	}
	return ""
}

func componentProblem(repo, part string) string {
	switch {
	case repo == "":
		return "the repository name is empty"
	case part == "":
		return fmt.Sprintf("the repository %q has an empty part (two slashes in a row, or a slash at an end)", truncate(repo, 80))
	}
	for i, c := range part {
		switch {
		case c >= 'A' && c <= 'Z':
			return fmt.Sprintf("the repository %q has upper-case letters (%q); repository names are lower case", truncate(repo, 80), c)
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-':
			if i == 0 || i == len(part)-1 {
				return fmt.Sprintf("the repository %q has a part starting or ending with %q; each part between slashes starts and ends with a letter or digit", truncate(repo, 80), c)
			}
		default:
			return fmt.Sprintf("the repository %q has %q, which a repository name cannot have (lower-case letters, digits, and . _ - between them)", truncate(repo, 80), c)
		}
	}
	return ""
}
