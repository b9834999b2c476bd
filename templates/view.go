package templates

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
)

// The view models below are what the components render. They hold display
// strings already formatted, so components stay free of logic and tests can
// build them by hand.

// TimeView is a moment shown relative to now ("3 days ago") with the exact
// time as the tooltip and the machine-readable datetime attribute.
type TimeView struct {
	ISO      string
	Relative string
	Absolute string
}

// IsZero reports whether no time is known, so components can leave it out.
func (t TimeView) IsZero() bool { return t.ISO == "" }

// NewTimeView formats t relative to now; the zero time gives the zero view.
func NewTimeView(t time.Time, now time.Time) TimeView {
	if t.IsZero() {
		return TimeView{}
	}
	t = t.UTC()
	return TimeView{
		ISO:      t.Format(time.RFC3339),
		Relative: relativeTime(t, now),
		Absolute: t.Format("2 Jan 2006 15:04 UTC"),
	}
}

func timeViewPtr(t *time.Time, now time.Time) TimeView {
	if t == nil {
		return TimeView{}
	}
	return NewTimeView(*t, now)
}

// relativeTime says how long ago t was in the largest whole unit, the way
// people read ages of images at a glance.
func relativeTime(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = plural(round(d, time.Minute), "minute")
	case d < 23*time.Hour+30*time.Minute:
		s = plural(round(d, time.Hour), "hour")
	case d < 45*24*time.Hour:
		s = plural(round(d, 24*time.Hour), "day")
	case d < 365*24*time.Hour:
		s = plural(round(d, 30*24*time.Hour), "month")
	default:
		s = plural(round(d, 365*24*time.Hour), "year")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// round divides d by unit, rounding to the nearest whole number.
func round(d, unit time.Duration) int { return int((d + unit/2) / unit) }

// sentence ends s with a full stop when it has no closing punctuation, so
// that a message written as a clause (an error's) reads as a sentence
// before the next one.
func sentence(s string) string {
	s = strings.TrimRight(s, " ")
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}

func plural(n int, unit string) string { return analysis.Count(n, unit) }

// Link is a labelled link; Current marks the entry describing this page.
type Link struct {
	Text    string
	Href    string
	Current bool
}

// KV is one label or annotation.
type KV struct {
	Key, Value string
}

// Options carry what every page builder needs besides its data: the public
// base URL (for copy-paste snippets), the clock and the serving build.
type Options struct {
	BaseURL string
	Now     time.Time
	// Version is the serving build, for every page's Meta (see Meta.Version).
	Version string
	// Contents says the layer contents pages are served, so the image
	// page links to them.
	Contents bool
}

func (o Options) base() string { return strings.TrimRight(o.BaseURL, "/") }

// DisplayRepository writes a repository the way people type it: Docker Hub's
// registry and library/ prefix are left out, any other registry is kept.
func DisplayRepository(registry, repository string) string {
	return analysis.Repository{Registry: registry, Name: repository}.Short()
}

// DisplayReference writes registry/repository[:tag][@digest] in its short
// form, the form used in page URLs and badge paths.
func DisplayReference(registry, repository, tag, digest string) string {
	s := DisplayRepository(registry, repository)
	if tag != "" {
		s += ":" + tag
	}
	if digest != "" {
		s += "@" + digest
	}
	return s
}

// ImageHref is the path of an image page. References hold only characters
// that are valid in a URL path, so they are written as they are.
func ImageHref(ref string) string { return "/images/" + ref }

// RepositoryHref is the path of a repository page.
func RepositoryHref(repo string) string { return "/repositories/" + repo }

// HistoryHref is the path of a repository's tag history, or of one tag's
// when tag is set.
func HistoryHref(repo, tag string) string {
	h := "/repositories/" + repo + "/history"
	if tag != "" {
		h += "?tag=" + url.QueryEscape(tag)
	}
	return h
}

// DiffHref is the path of the diff page comparing two references.
func DiffHref(from, to string) string {
	return "/diff?from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to)
}

// RefParts cuts a reference into the pieces a line may break between: after
// each '/', and before the ':' of a tag and the '@' of a digest, so that a
// long reference on a narrow screen wraps at its separators and never in
// the middle of a tag.
func RefParts(ref string) []string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	tagAt := -1
	if c := strings.LastIndexByte(name, ':'); c > strings.LastIndexByte(name, '/') {
		tagAt = c
	}
	var parts []string
	start := 0
	for i := 0; i < len(name); i++ {
		switch {
		case name[i] == '/':
			parts = append(parts, name[start:i+1])
			start = i + 1
		case i == tagAt && i > start:
			parts = append(parts, name[start:i])
			start = i
		}
	}
	parts = append(parts, name[start:])
	if hasDigest {
		parts = append(parts, "@"+digest)
	}
	return parts
}

// CleanCommand turns a history entry's created_by into the Dockerfile line
// people wrote: the shell wrapper, "#(nop)", build-arg prefixes and BuildKit's
// trailing marker are removed.
func CleanCommand(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "RUN |"); ok {
		s = "|" + rest
	}
	if strings.HasPrefix(s, "|") { // "|2 A=1 B=2 /bin/sh -c …": build args
		if i := strings.Index(s, "/bin/sh -c "); i >= 0 {
			s = s[i:]
		}
	}
	s = strings.TrimSuffix(s, " # buildkit")
	s = strings.TrimPrefix(s, "RUN ")
	for _, p := range []string{"/bin/sh -c #(nop) ", "/bin/sh -c #(nop)", "/bin/sh -c "} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			if p == "/bin/sh -c " {
				return "RUN " + strings.TrimSpace(rest)
			}
			return strings.TrimSpace(rest)
		}
	}
	return s
}

// commitPath is the path of a commit under a repository URL on a known forge.
func commitPath(host string) (string, bool) {
	switch host {
	case "github.com", "codeberg.org", "gitea.com":
		return "/commit/", true
	case "gitlab.com":
		return "/-/commit/", true
	case "bitbucket.org":
		return "/commits/", true
	}
	return "", false
}

// CommitURL links a revision to its commit page when source is a repository on
// a known forge, so a revision label is one click from the code; it returns ""
// otherwise. git@host:owner/repo.git and git+https:// forms are accepted.
func CommitURL(source, revision string) string {
	if source == "" || revision == "" || !isHex(revision) {
		return ""
	}
	src := strings.TrimPrefix(source, "git+")
	if rest, ok := strings.CutPrefix(src, "git@"); ok {
		host, path, ok := strings.Cut(rest, ":")
		if !ok {
			return ""
		}
		src = "https://" + host + "/" + path
	}
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	host := strings.TrimPrefix(strings.ToLower(u.Host), "www.")
	commit, ok := commitPath(host)
	if !ok {
		return ""
	}
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
	if strings.Count(strings.Trim(path, "/"), "/") < 1 {
		return "" // not owner/repo
	}
	return "https://" + host + path + commit + revision
}

func isHex(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// WebURL returns s when it is an http(s) URL that can be linked, else "".
func WebURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return s
}

// MediaTypeName names a manifest media type the way a person would.
func MediaTypeName(mt string) string {
	switch mt {
	case "application/vnd.oci.image.index.v1+json":
		return "OCI image index"
	case "application/vnd.docker.distribution.manifest.list.v2+json":
		return "Docker manifest list"
	case "application/vnd.oci.image.manifest.v1+json":
		return "OCI image manifest"
	case "application/vnd.docker.distribution.manifest.v2+json":
		return "Docker image manifest"
	}
	return mt
}

func sortedLabels(m map[string]string) []KV {
	out := make([]KV, 0, len(m))
	for k, v := range m {
		out = append(out, KV{k, v})
	}
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func percent(part, total int64) string {
	if total <= 0 {
		return "0%"
	}
	p := float64(part) * 100 / float64(total)
	if p > 0 && p < 0.1 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", p)
}
