package notify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
)

// Differ compares two images from what the service knows of them (the
// images.Service: content by digest, read from the store), to describe a
// coalesced delivery from its first image to its last.
type Differ interface {
	Diff(ctx context.Context, from, to analysis.Reference, platform string, how images.ReadOptions) (images.Compared, error)
}

// Coalesced returns the payload of a delivery that absorbed several events
// of one image within its subscription's window: the latest event's, told
// from where the first one started (docs/API.md: first previousDigest, last
// digest), its platforms paired across the two, and, for image.updated, the
// diff of the whole change when differ can make it (else no
// data.changes). Other types are sent as the latest event.
func (b *Builder) Coalesced(ctx context.Context, first, last []byte, differ Differ) ([]byte, error) {
	var env struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(last, &env); err != nil {
		return nil, fmt.Errorf("notify: coalesce: %w", err)
	}
	var fenv struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(first, &fenv); err != nil {
		return nil, fmt.Errorf("notify: coalesce: %w", err)
	}
	switch env.Type {
	case TypeImageUpdated:
		var a, z imageUpdated
		if err := json.Unmarshal(fenv.Data, &a); err != nil {
			return nil, fmt.Errorf("notify: coalesce: %w", err)
		}
		if err := json.Unmarshal(env.Data, &z); err != nil {
			return nil, fmt.Errorf("notify: coalesce: %w", err)
		}
		img := z.Image
		img.PreviousDigest = a.Image.PreviousDigest
		img.Platforms = pairPlatforms(a.Image.Platforms, z.Image.Platforms)
		img.DiffURL = ""
		var changes *changesData
		if img.PreviousDigest != nil && img.Digest != nil {
			repo := analysis.Repository{Registry: img.Registry, Name: img.Repository}
			img.DiffURL = b.DiffURL(repo, *img.PreviousDigest, *img.Digest)
			if differ != nil {
				if c, err := differ.Diff(ctx, repo.WithDigest(*img.PreviousDigest), repo.WithDigest(*img.Digest), "", images.ReadOptions{}); err == nil && c.Diff != nil {
					d := c.Diff
					changes = &changesData{Platform: d.Platform, Shared: d.Shared, Removed: d.Removed, Added: d.Added,
						SizeDelta: d.SizeDelta, LayerCountDelta: d.LayerCountDelta, Metadata: d.Metadata, CompareURL: d.CompareURL}
				}
			}
		}
		title, text := b.imageUpdatedText(img, changes)
		return json.Marshal(payload{Type: env.Type, Timestamp: env.Timestamp, Title: title, Text: text, Data: imageUpdated{Image: img, Changes: changes}})
	case TypeBaseUpdated:
		var a, z baseUpdated
		if err := json.Unmarshal(fenv.Data, &a); err != nil {
			return nil, fmt.Errorf("notify: coalesce: %w", err)
		}
		if err := json.Unmarshal(env.Data, &z); err != nil {
			return nil, fmt.Errorf("notify: coalesce: %w", err)
		}
		base := z.Base
		base.PreviousDigest = a.Base.PreviousDigest
		base.DiffURL = ""
		var changes *changesData
		if base.PreviousDigest != nil && base.Digest != nil {
			repo := analysis.Repository{Registry: base.Registry, Name: base.Repository}
			base.DiffURL = b.DiffURL(repo, *base.PreviousDigest, *base.Digest)
			if differ != nil {
				if c, err := differ.Diff(ctx, repo.WithDigest(*base.PreviousDigest), repo.WithDigest(*base.Digest), "", images.ReadOptions{}); err == nil && c.Diff != nil {
					d := c.Diff
					changes = &changesData{Shared: d.Shared, Removed: d.Removed, Added: d.Added, SizeDelta: d.SizeDelta, Metadata: d.Metadata}
				}
			}
		}
		title, text := b.baseUpdatedText(z.Image, base, changes)
		return json.Marshal(payload{Type: env.Type, Timestamp: env.Timestamp, Title: title, Text: text, Data: baseUpdated{Image: z.Image, Base: base}})
	}
	return last, nil
}

// pairPlatforms pairs the platforms of a coalesced move: each platform
// where the last event has it, from where the first event had it before
// (a platform the first event did not know, added in between, from
// nothing); a platform the last event dropped from where it first was.
func pairPlatforms(first, last []platformData) []platformData {
	before := map[string]*string{}
	known := map[string]bool{}
	for _, p := range first {
		before[p.Platform], known[p.Platform] = p.PreviousDigest, true
	}
	var out []platformData
	seen := map[string]bool{}
	for _, p := range last {
		// A platform the first event did not know was added by a later
		// push of the window: it was not there at the start.
		var prev *string
		if known[p.Platform] {
			prev = before[p.Platform]
		}
		out = append(out, platformData{Platform: p.Platform, Digest: p.Digest, PreviousDigest: prev, Changed: !sameDigest(p.Digest, prev)})
		seen[p.Platform] = true
	}
	for _, p := range first {
		if !seen[p.Platform] && p.PreviousDigest != nil {
			out = append(out, platformData{Platform: p.Platform, PreviousDigest: p.PreviousDigest, Changed: true})
		}
	}
	return out
}

func sameDigest(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
