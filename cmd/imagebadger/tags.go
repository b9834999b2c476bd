package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"imagebadger/analysis"
	"imagebadger/images"
	"imagebadger/store"
)

// tags lists a repository's tags grouped by digest. It keeps what it learns
// in a throw-away database, so tags sharing a digest cost one fetch.
func tags(ctx context.Context, cfg *Config, repoText string, jsonOut bool, w io.Writer, tmp string) error {
	repo, err := analysis.ParseRepository(repoText)
	if err != nil {
		return err
	}
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, filepath.Join(tmp, "tags.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := images.New(images.Config{Client: client, Store: st, FreshFor: cfg.PollInterval}).Tags(ctx, repo, true)
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	fmt.Fprintf(w, "%s  %d tags, %d images\n\n", repo, list.TagCount, len(list.Groups))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tPLATFORMS\tTAGS")
	for _, g := range list.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", shortDigest(g.Digest), strings.Join(g.Platforms, ", "), strings.Join(g.Tags, ", "))
	}
	return tw.Flush()
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
