package main

import (
	"github.com/imagebadger/imagebadger/analysis"
)

// message is what the command line prints for err: its public message
// (or, for a mistake on the command line, its text), and where it helps,
// the command to run next. A tag or digest the registry lacks is looked for
// among the repository's tags.
func message(err error) string {
	msg, ok := analysis.PublicMessage(err)
	if !ok {
		msg = err.Error()
	}
	if m, ok := analysis.MissingIn(err); ok && m.Part != analysis.MissingRepository && (m.Ref.Tag != "" || m.Ref.Digest != "") {
		msg += "; `imagebadger tags " + m.Ref.Repository.String() + "` lists its tags"
	}
	return msg
}
