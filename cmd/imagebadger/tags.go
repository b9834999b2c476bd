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
	"github.com/imagebadger/imagebadger/store"
)

// tags lists a repository's tags grouped by digest. It keeps what it learns
// in a throw-away database in memory, so tags sharing a digest cost one fetch.
func tags(ctx context.Context, cfg *Config, repoText string, jsonOut bool, w io.Writer) error {
	repo, err := analysis.ParseRepository(repoText)
	if err != nil {
		return err
	}
	svc, closeAll, err := oneOff(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	list, err := svc.Tags(ctx, auth.Operator(), repo, images.ReadOptions{Refresh: true})
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	fmt.Fprintf(w, "%s  %s, %s\n\n", repo, analysis.Count(list.TagCount, "tag"), analysis.Count(len(list.Groups), "image"))
	if !list.Complete {
		fmt.Fprintf(w, "Not every tag the registry lists is shown: %s.\n\n", list.Incomplete)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tPLATFORMS\tTAGS")
	for _, g := range list.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", analysis.ShortDigest(g.Digest), strings.Join(g.Platforms, ", "), strings.Join(g.Tags, ", "))
	}
	return tw.Flush()
}

// oneOff is the image service of a one-off command: the registry client of
// cfg over a throw-away database in memory. closeAll waits for what the service
// started and closes the database.
func oneOff(ctx context.Context, cfg *Config) (svc *images.Service, closeAll func(), err error) {
	svc, _, closeAll, err = oneOffWithStore(ctx, cfg)
	return svc, closeAll, err
}

// oneOffWithStore is oneOff with the database the service keeps what it
// read in, for a command that looks at what the registry sent beyond the
// report (an index's own annotations).
func oneOffWithStore(ctx context.Context, cfg *Config) (svc *images.Service, st *store.Store, closeAll func(), err error) {
	client, err := newClient(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	hub, err := newHub(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err = store.OpenMemory(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	// One command is one listing, with no next one to record the rest:
	// it may look up as many tags as a listing reads.
	svc = images.New(images.Options{Client: client, Hub: hub, Store: st, FreshFor: cfg.PollInterval, MaxNewTags: images.DefaultMaxRepositoryTags})
	return svc, st, func() {
		_ = svc.Close(context.WithoutCancel(ctx))
		_ = st.Close()
	}, nil
}
