package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
)

// diffCommand is diff: what changed between two images of any
// repositories, the diff API's answer on the command line.
func diffCommand() command {
	var platform string
	return command{
		name:    "diff",
		args:    "FROM TO",
		summary: "what changed between two images (the JSON is the diff API's answer)",
		output:  true, nargs: 2, registryFlags: true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&platform, "platform", "", "the platform to compare, os/arch[/variant] (default linux/amd64)")
		},
		run: func(ctx context.Context, inv invocation) error {
			return diff(ctx, inv.cfg, inv.args[0], inv.args[1], platform, inv.json, inv.stdout)
		},
	}
}

// diff prints what changed between two images. Both sides go through the
// service's one read path (images.Service.Read, refreshing) over a
// throw-away database in memory, as inspect does, so the JSON is exactly the
// diff API's answer.
func diff(ctx context.Context, cfg *Config, fromText, toText, platform string, jsonOut bool, w io.Writer) error {
	from, err := analysis.ParseReference(fromText)
	if err != nil {
		return err
	}
	to, err := analysis.ParseReference(toText)
	if err != nil {
		return err
	}
	svc, closeAll, err := oneOff(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	c, err := svc.Diff(ctx, auth.Operator(), from, to, platform, images.ReadOptions{Refresh: true})
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c.Diff)
	}
	return printDiff(w, c.Diff)
}

// printDiff writes a diff as a person reads it in a terminal.
func printDiff(w io.Writer, d *analysis.Diff) error {
	fmt.Fprintf(w, "from  %s  %s\n", d.From.Reference, d.From.Digest)
	fmt.Fprintf(w, "to    %s  %s\n", d.To.Reference, d.To.Digest)
	fmt.Fprintf(w, "platform %s\n\n", d.Platform)
	fmt.Fprintf(w, "shared: %s, %s\n", analysis.Count(d.Shared.LayerCount, "layer"), analysis.HumanSize(d.Shared.Size))
	for _, part := range []struct {
		name   string
		layers []analysis.DiffLayer
	}{{"removed", d.Removed}, {"added", d.Added}} {
		fmt.Fprintf(w, "%s: %s\n", part.name, analysis.Count(len(part.layers), "layer"))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, l := range part.layers {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", analysis.ShortDigest(l.Digest), analysis.HumanSize(l.Size), oneLine(l.CreatedBy, 100))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	sign := "+"
	size := d.SizeDelta
	if size < 0 {
		sign, size = "-", -size
	}
	fmt.Fprintf(w, "size: %s%s, layers: %+d\n", sign, analysis.HumanSize(size), d.LayerCountDelta)
	for _, c := range d.Metadata.Changes() {
		fmt.Fprintf(w, "%s: %q → %q\n", c.Key, c.From, c.To)
	}
	if d.CompareURL != "" {
		fmt.Fprintf(w, "source changes: %s\n", d.CompareURL)
	}
	return nil
}
