package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
)

// inspect reads one image from its registry and prints its report. It goes
// through the service's one read path (images.Service.Read, refreshing) over
// a throw-away database in memory, so the report is exactly the API's.
func inspect(ctx context.Context, cfg *Config, refText string, jsonOut bool, w io.Writer) error {
	ref, err := analysis.ParseReference(refText)
	if err != nil {
		return err
	}
	svc, closeAll, err := oneOff(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	a, err := svc.Read(ctx, auth.Operator(), ref, images.ReadOptions{Refresh: true})
	if err != nil {
		return err
	}
	rep := a.Report
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printReport(w, rep)
}

// printReport writes the report as a table a person can read in a terminal.
func printReport(w io.Writer, rep *analysis.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "reference\t%s\n", rep.Reference)
	fmt.Fprintf(tw, "digest\t%s\n", rep.Digest)
	fmt.Fprintf(tw, "media type\t%s\n", rep.MediaType)
	if len(rep.Platforms) > 1 {
		names := make([]string, len(rep.Platforms))
		for i, p := range rep.Platforms {
			names[i] = p.Platform
		}
		fmt.Fprintf(tw, "platforms\t%s\n", strings.Join(names, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range rep.Platforms {
		fmt.Fprintf(w, "\n%s  %s\n", p.Platform, p.Digest)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tSIZE\tCREATED BY")
		for i, l := range p.Layers {
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", i+1, analysis.HumanSize(l.Size), oneLine(l.CreatedBy, 100))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "  total: %s, %s to download\n", analysis.Count(p.LayerCount, "layer"), analysis.HumanSize(p.DownloadSize))
		md := p.Metadata
		for _, kv := range [][2]string{
			{"title", md.Title}, {"version", md.Version}, {"revision", md.Revision}, {"source", md.Source},
			{"licenses", md.Licenses}, {"created", md.Created}, {"vendor", md.Vendor}, {"url", md.URL},
			{"documentation", md.Documentation}, {"description", md.Description},
		} {
			if kv[1] != "" {
				fmt.Fprintf(w, "  %s: %s\n", kv[0], oneLine(kv[1], 200))
			}
		}
	}
	return nil
}

// oneLine flattens whitespace (Dockerfile RUN lines span many) and shortens.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
