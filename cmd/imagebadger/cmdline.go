package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// parseFlags sets the flags of fs found anywhere in args and returns the
// other arguments in order. Go's flag package stops at the first argument
// that is not a flag, so `inspect REF --json` would leave --json as a
// second argument; people write flags after the reference as often as
// before it. "--" ends the flags (what follows is an argument even when it
// starts with "-"); a flag that takes a value takes the next argument
// unless written --name=value; a boolean flag takes a value only as
// --name=value. -h and --help answer flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, value, hasValue := strings.Cut(name, "=")
		if name == "" || name[0] == '-' {
			return nil, fmt.Errorf("%q is not a flag: write --name or --name=value", a)
		}
		f := fs.Lookup(name)
		if f == nil {
			if name == "h" || name == "help" {
				return nil, flag.ErrHelp
			}
			return nil, unknownFlag{name: name, known: fs}
		}
		if !isBoolFlag(f) && !hasValue {
			if i+1 == len(args) {
				return nil, fmt.Errorf("--%s needs a value: %s", name, f.Usage)
			}
			i++
			value = args[i]
		} else if !hasValue {
			value = "true"
		}
		if err := fs.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for --%s: want %s", value, name, wants(f, err))
		}
	}
	return rest, nil
}

// isBoolFlag reports whether f is a switch (--json), which takes no value
// of its own, as the flag package decides it.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// wants says what form f's value takes, for a message about a value that
// is not of that form: the flag package's own says "parse error".
func wants(f *flag.Flag, err error) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "a Go duration such as 15m, 90s or 1h30m"
		case bool:
			return "true or false"
		case int, int64, uint, uint64:
			return "a whole number"
		case float64:
			return "a number"
		}
	}
	return err.Error()
}

// unknownFlag is a flag the command does not take. Its message suggests the
// nearest flag the command does take, or else the subcommands that take
// this one.
type unknownFlag struct {
	name  string
	known *flag.FlagSet
	// owners are the subcommands that take the flag, filled by run.
	owners []string
}

func (e unknownFlag) Error() string {
	msg := "unknown flag --" + e.name
	var names []string
	e.known.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if s := nearest(e.name, names); s != "" {
		return msg + "; did you mean --" + s + "?"
	}
	if len(e.owners) > 0 {
		return msg + " here; it is a flag of " + orList(e.owners, "and")
	}
	if e.name == "version" {
		return msg + " here; imagebadger --version names this build"
	}
	return msg
}

// nearest is the candidate closest to typed when it is close enough to be
// what was meant: the only candidate that starts with it (--poll for
// --poll-interval), or one within an edit distance of a third of its
// length, at least 1 (--pol-interval, --adr). Nothing otherwise.
func nearest(typed string, candidates []string) string {
	if len(typed) >= 2 {
		var prefixed []string
		for _, c := range candidates {
			if strings.HasPrefix(c, typed) {
				prefixed = append(prefixed, c)
			}
		}
		if len(prefixed) == 1 {
			return prefixed[0]
		}
	}
	best, bestD := "", max(1, len(typed)/3)+1
	for _, c := range candidates {
		if d := levenshtein(typed, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// levenshtein is the edit distance of a and b (insertions, deletions and
// substitutions of bytes; flag and subcommand names are ASCII). Twenty
// lines, where a module (none in go.mod has one) would be a dependency to
// keep current for one error message.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// orList joins words as a sentence does: "a", "a or b", "a, b or c".
func orList(words []string, conj string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// arityError says what is missing, or what is left over, when a command is
// given the wrong number of arguments.
func arityError(c command, got []string) error {
	usage := strings.TrimSpace(fmt.Sprintf("usage: imagebadger %s [FLAGS] %s", c.name, c.args))
	names := strings.Fields(c.args)
	if c.nargs > 0 && len(names) >= c.nargs {
		names = names[:c.nargs]
	}
	if len(got) < c.nargs {
		missing := names[len(got):]
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return usageError{fmt.Sprintf("%s: %s %s missing (%s)", c.name, orList(missing, "and"), verb, usage)}
	}
	extra := got[c.nargs:]
	takes := "no arguments"
	switch {
	case c.nargs == 1:
		takes = "1 argument (" + names[0] + ")"
	case c.nargs > 1:
		takes = fmt.Sprintf("%d arguments (%s)", c.nargs, strings.Join(names, " "))
	}
	msg := fmt.Sprintf("%s takes %s: unexpected %q", c.name, takes, extra[0])
	if slices.ContainsFunc(commands(), func(o command) bool { return o.name == extra[0] }) {
		msg += fmt.Sprintf("; the subcommand comes first: imagebadger %s [FLAGS] …", extra[0])
	}
	return usageError{msg + " (" + usage + ")"}
}

// Environment variables: each flag reads IMAGEBADGER_ and its name in upper
// snake case, or the file that variable with _FILE appended names (for
// container secrets). A file is read up to maxEnvFile bytes.
const maxEnvFile = 64 << 10

// envName is the environment variable of the flag name.
func envName(name string) string {
	return "IMAGEBADGER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// fromEnvironment reports whether the flag name is read from the
// environment: every flag is but those that say what one run of a command
// prints or compares.
func fromEnvironment(name string) bool { return name != "json" && name != "platform" }

// emptyMeansSomething reports whether an empty value of the flag name is a
// setting rather than "unset": --dockerhub-api= turns the web API off.
func emptyMeansSomething(name string) bool { return name == "dockerhub-api" }

// envValue is the value the environment gives the flag name: from
// IMAGEBADGER_NAME, or read from the file IMAGEBADGER_NAME_FILE names (its
// trailing line break removed). ok is false when neither is given; an
// empty value counts as not given unless emptyMeansSomething. source names
// where the value came from, for messages; a value read from a file is
// never shown in one. Giving both forms is an error naming both.
func envValue(name string, lookupEnv func(string) (string, bool)) (value, source string, fromFile, ok bool, err error) {
	env := envName(name)
	v, vok := lookupEnv(env)
	path, fok := lookupEnv(env + "_FILE")
	plain := vok && (v != "" || emptyMeansSomething(name))
	file := fok && path != ""
	switch {
	case plain && file:
		return "", "", false, false, fmt.Errorf("%s and %s_FILE are both set: set one of them", env, env)
	case plain:
		return v, env, false, true, nil
	case !file:
		return "", "", false, false, nil
	}
	source = fmt.Sprintf("%s_FILE (%s)", env, path)
	b, err := readBounded(path, maxEnvFile)
	if err != nil {
		return "", "", false, false, fmt.Errorf("%s: %w", source, err)
	}
	v = strings.TrimRight(string(b), "\r\n")
	if v == "" && !emptyMeansSomething(name) {
		return "", "", false, false, nil
	}
	return v, source, true, true, nil
}

// readBounded reads the file at path, refusing one larger than limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
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
		return nil, fmt.Errorf("%s is larger than %d KiB; it should hold the value alone", path, limit>>10)
	}
	return b, nil
}

// choice is a flag value that is one of a few words (--log-level,
// --log-format); anything else is refused with the list.
type choice struct {
	val     *string
	allowed []string
}

func (c *choice) String() string {
	if c == nil || c.val == nil {
		return ""
	}
	return *c.val
}

func (c *choice) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	if !slices.Contains(c.allowed, s) {
		return errors.New(orList(c.allowed, "or"))
	}
	*c.val = s
	return nil
}

// Get returns the word, so that the flag is a flag.Getter like the
// standard ones.
func (c *choice) Get() any { return *c.val }
