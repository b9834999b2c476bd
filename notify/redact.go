package notify

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// redacted stands for the part of a target URL that a log line leaves out.
const redacted = "…redacted"

// RedactURL is how a subscription's target URL is written wherever it may
// be logged: its scheme, host and port, and "/…redacted" in place of any
// path, query or fragment. Slack's and Discord's incoming webhook URLs are
// their own secret (the path holds the token), and many receivers take a
// token in the query; the host alone says where a delivery went, which is
// what an operator reading the log needs. A URL that does not parse is
// redacted whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return redacted
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		out += "/" + redacted
	}
	return out
}

// redactedError is err's text for a log line about a delivery to target,
// with the target's path and query left out. Errors of net/http carry the
// request URL (a *url.Error prints it quoted), so every form the URL, its
// path or its query may take in the text is replaced: as given, quoted, and
// as the request wrote it back.
func redactedError(err error, target string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	urls := []string{target}
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		urls = append(urls, ue.URL)
	}
	for _, raw := range urls {
		if raw == "" {
			continue
		}
		msg = replaceForms(msg, raw, RedactURL(raw))
		u, perr := url.Parse(raw)
		if perr != nil {
			continue
		}
		// What is left of the URL's secret parts wherever they appear
		// alone (a path in another error's words, a query echoed back).
		for _, part := range []string{u.RawQuery, u.EscapedPath(), u.Path, u.Fragment} {
			if len(part) > 1 {
				msg = replaceForms(msg, part, redacted)
			}
		}
	}
	return msg
}

// replaceForms replaces s in msg as it is and as Go's %q writes it.
func replaceForms(msg, s, with string) string {
	msg = strings.ReplaceAll(msg, s, with)
	if q := strconv.Quote(s); len(q) > 2 {
		msg = strings.ReplaceAll(msg, q[1:len(q)-1], with)
	}
	return msg
}
