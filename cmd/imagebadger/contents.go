package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/contents"
	"github.com/imagebadger/imagebadger/images"
)

// Defaults of the contents flags.
const (
	defaultContentsMaxBytes    = contents.DefaultMaxBytes
	defaultContentsConcurrency = contents.DefaultConcurrency
	defaultLowestEfficiency    = 0.9
)

// registerContents adds the flags of contents analysis, which serve and
// the contents command share.
func (c *Config) registerContents(fs *flag.FlagSet) {
	fs.Var(&byteSizeFlag{val: &c.ContentsMaxBytes}, "contents-max-bytes", "compressed layer `bytes` one platform image's contents analysis may read (4GB, 512MB, 1GiB or a number)")
	fs.IntVar(&c.ContentsConcurrency, "contents-concurrency", c.ContentsConcurrency, "contents analyses running at once, per process")
}

// validateContents checks the contents flags.
func (c *Config) validateContents() error {
	if c.ContentsMaxBytes <= 0 {
		return errors.New("--contents-max-bytes must be positive")
	}
	if c.ContentsConcurrency < 1 {
		return errors.New("--contents-concurrency must be at least 1")
	}
	return nil
}

// byteSizeFlag is a flag of a size in bytes, written as a number or with a
// unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (of 1024).
type byteSizeFlag struct{ val *int64 }

func (b *byteSizeFlag) String() string {
	if b == nil || b.val == nil {
		return ""
	}
	return strconv.FormatInt(*b.val, 10)
}

func (b *byteSizeFlag) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b.val = n
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size such as 4GB, 512MiB or 1000000", s)
	}
	return int64(f * mult), nil
}

// ciGate is the thresholds of contents --ci, dive's CI rules.
type ciGate struct {
	enabled           bool
	lowestEfficiency  float64
	highestWasted     int64 // 0: not checked
	highestUserWasted float64
	userWastedSet     bool
}

// contentsCommand is contents: what is inside an image's layers.
func contentsCommand() command {
	var platform, highestWasted, highestUserWasted string
	var gate ciGate
	layer := -1
	return command{
		name:    "contents",
		args:    "REFERENCE",
		summary: "what is inside the image's layers: efficiency, wasted and largest files, or one layer's changes; with --ci a gate",
		output:  true, nargs: 1, registryFlags: true,
		configure: func(cfg *Config, fs *flag.FlagSet) { cfg.registerContents(fs) },
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&platform, "platform", "", "the platform image, os/arch[/variant] (default linux/amd64)")
			fs.IntVar(&layer, "layer", -1, "print what layer `N` (0 = base) added, modified and removed")
			fs.BoolVar(&gate.enabled, "ci", false, "exit 1, saying which rule, when the image crosses a threshold below (dive's CI mode)")
			fs.Float64Var(&gate.lowestEfficiency, "lowest-efficiency", defaultLowestEfficiency, "with --ci: the lowest efficiency allowed (0 to 1)")
			fs.StringVar(&highestWasted, "highest-wasted-bytes", "disabled", "with --ci: the most wasted bytes allowed (20MB, …) or disabled")
			fs.StringVar(&highestUserWasted, "highest-user-wasted-percent", "disabled", "with --ci: the most wasted bytes allowed over the bytes of the layers above the base, as a ratio (0.1) or disabled")
		},
		run: func(ctx context.Context, inv invocation) error {
			if highestWasted != "disabled" && highestWasted != "" {
				n, err := parseByteSize(highestWasted)
				if err != nil {
					return usageError{"--highest-wasted-bytes: " + err.Error()}
				}
				gate.highestWasted = max(n, 1)
			}
			if highestUserWasted != "disabled" && highestUserWasted != "" {
				f, err := strconv.ParseFloat(strings.TrimSuffix(highestUserWasted, "%"), 64)
				if err != nil || f < 0 {
					return usageError{"--highest-user-wasted-percent: want a ratio such as 0.1, or disabled"}
				}
				if strings.HasSuffix(highestUserWasted, "%") {
					f /= 100
				}
				gate.highestUserWasted, gate.userWastedSet = f, true
			}
			return contentsRun(ctx, inv.cfg, inv.args[0], platform, layer, gate, inv.json, inv.stdout)
		},
	}
}

// contentsRun analyses one image over a throw-away database in memory, as
// inspect does, through the service's read path and contents jobs, so the
// JSON is exactly the contents API's answer.
func contentsRun(ctx context.Context, cfg *Config, refText, platform string, layer int, gate ciGate, jsonOut bool, w io.Writer) error {
	ref, err := analysis.ParseReference(refText)
	if err != nil {
		return err
	}
	svc, st, closeAll, err := oneOffWithStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	a, err := svc.Read(ctx, auth.Operator(), ref, images.ReadOptions{Refresh: true})
	if err != nil {
		return err
	}
	p, ok := a.Report.Select(platform)
	if !ok {
		return analysis.Errorf(analysis.ErrInvalidRequest, nil, "%s has no platform image %s", ref, platform)
	}
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	cs := contents.New(contents.Options{Client: client, Store: st, MaxBytes: cfg.ContentsMaxBytes, Concurrency: 1})
	defer cs.Close()
	if _, err := cs.Start(ctx, ref.Repository, p); err != nil {
		return err
	}
	if err := cs.Wait(ctx, p.Digest); err != nil {
		return err
	}
	status, err := cs.Status(ctx, p)
	if err != nil {
		return err
	}
	if status.Result == nil {
		return analysis.Errorf(analysis.ErrUpstream, nil, "the analysis of %s failed (%s): %s", ref, status.Reason, status.Message)
	}
	r := status.Result
	if layer >= 0 {
		changes, err := cs.LayerChanges(ctx, p, layer)
		if err != nil {
			return err
		}
		return printLayerChanges(w, changes, jsonOut)
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if err := printContents(w, ref, r); err != nil {
		return err
	}
	if gate.enabled {
		return gate.check(w, r, jsonOut)
	}
	return nil
}

// check applies the CI rules to a result, printing each rule's verdict as
// dive does; a rule crossed is exit status 1.
func (g ciGate) check(w io.Writer, r *contents.Result, quiet bool) error {
	var failed []string
	verdict := func(rule string, ok bool, detail string) {
		if !ok {
			failed = append(failed, rule+": "+detail)
		}
		if !quiet {
			word := "PASS"
			if !ok {
				word = "FAIL"
			}
			fmt.Fprintf(w, "  %s: %s (%s)\n", word, rule, detail)
		}
	}
	if !quiet {
		fmt.Fprintln(w, "\nCI rules:")
	}
	verdict("lowest-efficiency", r.Efficiency >= g.lowestEfficiency,
		fmt.Sprintf("efficiency %.4f, lowest allowed %.4f", r.Efficiency, g.lowestEfficiency))
	if g.highestWasted > 0 {
		verdict("highest-wasted-bytes", r.WastedSize <= g.highestWasted,
			fmt.Sprintf("%s wasted, at most %s allowed", analysis.HumanSize(r.WastedSize), analysis.HumanSize(g.highestWasted)))
	}
	if g.userWastedSet {
		// The bytes of the layers above the base: what a build on that
		// base adds to every pull.
		var user int64
		for _, l := range r.Layers[min(1, len(r.Layers)):] {
			user += l.Size
		}
		ratio := 0.0
		if user > 0 {
			ratio = float64(r.WastedSize) / float64(user)
		}
		verdict("highest-user-wasted-percent", ratio <= g.highestUserWasted,
			fmt.Sprintf("%.4f of the bytes above the base wasted, at most %.4f allowed", ratio, g.highestUserWasted))
	}
	if len(failed) > 0 {
		return exitError{code: 1, err: analysis.Errorf(analysis.ErrInvalidRequest, nil, "the image fails %s", strings.Join(failed, "; "))}
	}
	return nil
}

// printContents writes a result as a person reads it in a terminal.
func printContents(w io.Writer, ref analysis.Reference, r *contents.Result) error {
	fmt.Fprintf(w, "%s  %s\n", ref, r.Digest)
	fmt.Fprintf(w, "efficiency %.2f%%  files %d  total %s  shipped %s  wasted %s\n\n", r.Efficiency*100, r.FileCount,
		analysis.HumanSize(r.TotalSize), analysis.HumanSize(r.LayerFilesSize), analysis.HumanSize(r.WastedSize))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tDIGEST\tSIZE\tSOURCE\tADDED\tMODIFIED\tREMOVED")
	for i, l := range r.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d (%s)\t%d (%s)\t%d (%s)\n", i, analysis.ShortDigest(l.Digest), analysis.HumanSize(l.Size), l.Source,
			l.Added, analysis.HumanSize(l.AddedSize), l.Modified, analysis.HumanSize(l.ModifiedSize), l.Removed, analysis.HumanSize(l.RemovedSize))
	}
	if len(r.Wasted) > 0 {
		fmt.Fprintln(tw, "\nWASTED\tSIZE\tCOPIES\tLAYERS")
		for _, x := range r.Wasted[:min(len(r.Wasted), 20)] {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%v\n", x.Path, analysis.HumanSize(x.Size), x.Copies, x.Layers)
		}
	}
	if len(r.Largest) > 0 {
		fmt.Fprintln(tw, "\nLARGEST\tSIZE\tLAYER")
		for _, x := range r.Largest[:min(len(r.Largest), 20)] {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", x.Path, analysis.HumanSize(x.Size), x.Layer)
		}
	}
	return tw.Flush()
}

// printLayerChanges writes one layer's changes.
func printLayerChanges(w io.Writer, changes []analysis.Change, jsonOut bool) error {
	type change struct {
		Path   string `json:"path"`
		Change string `json:"change"`
		Type   string `json:"type"`
		Size   int64  `json:"size"`
	}
	out := make([]change, len(changes))
	for i, c := range changes {
		out[i] = change{Path: c.Path, Change: c.Kind.String(), Type: c.Node.Type.String()}
		if c.Node.Type == analysis.TypeFile {
			out[i].Size = c.Node.Size
		}
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Change, c.Type, analysis.HumanSize(c.Size), c.Path)
	}
	return tw.Flush()
}
