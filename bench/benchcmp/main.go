// Command benchcmp compares whole processes: it runs two command lines interleaved
// (A, B, A, B, …) after a few warm-up rounds of each and prints their wall-time
// distributions and the ratio of their medians. Interleaving spreads drift in machine
// load evenly over both sides, and the spread (p90-p10)/median is printed as the noise
// figure so a ratio can be read with its uncertainty.
//
// Usage:
//
//	go run ./bench/benchcmp [flags]                 # the project's comparisons (table below)
//	go run ./bench/benchcmp [flags] 'CMD A' 'CMD B' # two shell command lines
//
// The default mode starts Debian's distribution registry on loopback, pushes a
// realistic image, builds ./cmd/imagebadger and runs every comparison in the
// comparisons table against them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchcmp:", err)
		os.Exit(1)
	}
}

// settings are the flags shared by both modes.
type settings struct {
	rounds  int
	warmup  int
	timeout time.Duration
	strict  bool
	filter  *regexp.Regexp
	bin     string // a prebuilt imagebadger instead of building ./cmd/imagebadger
	hold    bool   // set up, print the comparisons' commands and wait instead of timing
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("benchcmp", flag.ContinueOnError)
	var s settings
	fs.IntVar(&s.rounds, "n", 30, "measured rounds of each command")
	fs.IntVar(&s.warmup, "warmup", 3, "unmeasured warm-up rounds of each command")
	fs.DurationVar(&s.timeout, "timeout", time.Minute, "deadline for one run of one command")
	fs.BoolVar(&s.strict, "strict", false, "exit non-zero when a comparison misses its target")
	fs.StringVar(&s.bin, "imagebadger", "", "use this imagebadger binary instead of building ./cmd/imagebadger (e.g. to compare builds)")
	fs.BoolVar(&s.hold, "hold", false, "set up, print the selected comparisons' command lines and wait for an interrupt, to profile one side by hand (perf, callgrind)")
	runPattern := fs.String("run", "", "only comparisons whose name matches this regexp")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: benchcmp [flags] ['CMD A' 'CMD B']")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.rounds < 1 || s.warmup < 0 {
		return errors.New("-n must be at least 1 and -warmup at least 0")
	}
	if *runPattern != "" {
		re, err := regexp.Compile(*runPattern)
		if err != nil {
			return fmt.Errorf("-run: %w", err)
		}
		s.filter = re
	}

	switch fs.NArg() {
	case 0:
		return runSuite(ctx, s, out)
	case 2:
		c := comparison{
			name: "A vs B",
			a:    shellCommand(fs.Arg(0)),
			b:    shellCommand(fs.Arg(1)),
		}
		return report(out, s, c, measure(ctx, s, c))
	default:
		fs.Usage()
		return errors.New("give no command lines (the project's comparisons) or exactly two")
	}
}

// shellCommand runs line through sh with exec, so only the shell's start-up, the same
// for both sides, is added to the measured command.
func shellCommand(line string) []string { return []string{"sh", "-c", "exec " + line} }

// comparison is one row of a report: two commands and the ratio A/B it should reach.
type comparison struct {
	name   string
	a, b   []string
	target float64 // the wanted upper bound of median(A)/median(B); 0 means none
	// maxExtra, when set, is the wanted upper bound of median(A) − median(B):
	// what A's extra work may cost, in time rather than as a ratio.
	maxExtra time.Duration
	// check, when set, judges the standard output of one run of each side before
	// anything is timed, so a side that exits 0 without doing the work gives no ratio.
	check func(a, b []byte) error
	// checkIsRound makes the checked runs count as the first measured round,
	// for comparisons whose slow side takes minutes a run.
	checkIsRound bool
}

// result holds the wall times of both sides, or why a side could not be measured.
type result struct {
	a, b []time.Duration
	err  error
}

// measure runs c's warm-up rounds, then its measured rounds interleaved A, B, A, B.
func measure(ctx context.Context, s settings, c comparison) result {
	var r result
	if c.check != nil {
		start := time.Now()
		outA, err := output(ctx, s.timeout, c.a)
		if err != nil {
			r.err = fmt.Errorf("side A failed: %w", err)
			return r
		}
		da := time.Since(start)
		start = time.Now()
		outB, err := output(ctx, s.timeout, c.b)
		if err != nil {
			r.err = fmt.Errorf("side B failed: %w", err)
			return r
		}
		db := time.Since(start)
		if err := c.check(outA, outB); err != nil {
			r.err = fmt.Errorf("output check: %w", err)
			return r
		}
		if c.checkIsRound {
			r.a, r.b = append(r.a, da), append(r.b, db)
			s.rounds--
		}
	}
	for i := 0; i < s.warmup; i++ {
		for _, side := range []struct {
			label string
			argv  []string
		}{{"A", c.a}, {"B", c.b}} {
			if _, err := timeOnce(ctx, s.timeout, side.argv); err != nil {
				r.err = fmt.Errorf("side %s failed: %w", side.label, err)
				return r
			}
		}
	}
	for i := 0; i < s.rounds; i++ {
		d, err := timeOnce(ctx, s.timeout, c.a)
		if err != nil {
			r.err = fmt.Errorf("side A failed in round %d: %w", i+1, err)
			return r
		}
		r.a = append(r.a, d)
		d, err = timeOnce(ctx, s.timeout, c.b)
		if err != nil {
			r.err = fmt.Errorf("side B failed in round %d: %w", i+1, err)
			return r
		}
		r.b = append(r.b, d)
	}
	return r
}

// timeOnce runs argv once with its output discarded and returns its wall time. A
// failure carries the command line and the end of its standard error.
func timeOnce(ctx context.Context, timeout time.Duration, argv []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stderr tailBuffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, indent(stderr.String()))
	}
	return elapsed, nil
}

// output runs argv once and returns its standard output.
func output(ctx context.Context, timeout time.Duration, argv []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stderr tailBuffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, indent(stderr.String()))
	}
	return out, nil
}

// report prints one comparison. It returns an error when the comparison could not be
// measured, or missed its target under -strict.
func report(out io.Writer, s settings, c comparison, r result) error {
	fmt.Fprintf(out, "%s (%d rounds, %d warm-up each)\n", c.name, s.rounds, s.warmup)
	if r.err != nil {
		fmt.Fprintf(out, "  FAILED: %s\n", indent(r.err.Error()))
		return fmt.Errorf("%s: %w", c.name, r.err)
	}
	sa, sb := summarize(r.a), summarize(r.b)
	fmt.Fprintf(out, "  A %s\n    %s\n", sa, strings.Join(c.a, " "))
	fmt.Fprintf(out, "  B %s\n    %s\n", sb, strings.Join(c.b, " "))
	ratio := float64(sa.median) / float64(sb.median)
	if c.maxExtra > 0 {
		extra := sa.median - sb.median
		fmt.Fprintf(out, "%s: median A − median B = %v (target <= %v)\n", c.name, extra.Round(100*time.Microsecond), c.maxExtra)
		if extra > c.maxExtra {
			fmt.Fprintf(out, "  target missed\n")
			if s.strict {
				return fmt.Errorf("%s: %v more misses target %v", c.name, extra, c.maxExtra)
			}
		}
		return nil
	}
	if c.target <= 0 {
		fmt.Fprintf(out, "%s: ratio %.2f\n", c.name, ratio)
		return nil
	}
	fmt.Fprintf(out, "%s: ratio %.3f, A is %.1f× as fast (target <= %.3f)\n", c.name, ratio, 1/ratio, c.target)
	if ratio > c.target {
		fmt.Fprintf(out, "  target missed\n")
		if s.strict {
			return fmt.Errorf("%s: ratio %.2f misses target %.2f", c.name, ratio, c.target)
		}
	}
	return nil
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// tailBuffer keeps the last 4 KiB written to it: enough to explain a failure.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const max = 4 << 10
	t.b = append(t.b, p...)
	if len(t.b) > max {
		t.b = t.b[len(t.b)-max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
