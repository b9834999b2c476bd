package templates

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/imagebadger/imagebadger/analysis"
)

// DiffPage is the view model of /diff: the two layer lists side by side
// (the shared prefix greyed, removed and added layers marked), a size bar
// for each side, the metadata that changed, both parents and the forge's
// compare link.
type DiffPage struct {
	Meta     Meta
	From, To DiffSideView
	Platform string
	// Platforms switches to another platform both images have; empty for
	// single-platform comparisons.
	Platforms []Link
	Identical bool
	// Summary says the outcome in one sentence.
	Summary    string
	SharedText string
	SizeDelta  string
	LayerDelta string
	Rows       []DiffRow
	Metadata   []MetaChange
	CompareURL string
}

// DiffSideView is one compared image.
type DiffSideView struct {
	// Label is "Before" or "After".
	Label       string
	Ref         string
	Href        string
	Digest      string
	ShortDigest string
	// PlatformDigest is the compared platform manifest.
	PlatformDigest string
	Size           string
	Layers         string
	Parent         *ParentView
	// SharedWidth and OwnWidth split the side's size bar (in units of the
	// 1000-wide bar of the larger image) into the shared prefix and its own
	// layers; OwnKind colours the latter ("removed" or "added").
	SharedWidth, OwnX, OwnWidth string
	OwnKind                     string
	OwnText                     string
}

// DiffRow is one line of the side-by-side layer lists: a shared layer on
// both sides, or a removed layer facing an added one (either may be absent).
type DiffRow struct {
	Shared      bool
	Left, Right *DiffCell
}

// DiffCell is one layer in a DiffRow.
type DiffCell struct {
	Number      int
	Command     string
	CommandFull string
	Size        string
	Digest      string
	ShortDigest string
	// Kind is "shared", "removed" or "added".
	Kind string
}

// MetaChange is one changed metadata key; an empty side is shown as such.
type MetaChange struct {
	Label, From, To string
}

// NewDiffPage builds the diff page of d, made from the reports from and to.
func NewDiffPage(d *analysis.Diff, from, to *analysis.Report, opt Options) DiffPage {
	fp, tp := platformByDigest(from, d.From.PlatformDigest), platformByDigest(to, d.To.PlatformDigest)
	p := DiffPage{
		Platform:   d.Platform,
		Identical:  len(d.Added) == 0 && len(d.Removed) == 0 && d.SizeDelta == 0 && len(d.Metadata.Changes()) == 0,
		SharedText: plural(d.Shared.LayerCount, "layer") + " shared (" + analysis.HumanSize(d.Shared.Size) + ")",
		SizeDelta:  signedSize(d.SizeDelta),
		LayerDelta: signed(d.LayerCountDelta) + " " + pluralWord(d.LayerCountDelta, "layer"),
		CompareURL: d.CompareURL,
	}
	p.From = diffSide("Before", d.From, from, fp)
	p.To = diffSide("After", d.To, to, tp)
	p.Meta = Meta{Title: "What changed from " + p.From.Ref + " to " + p.To.Ref,
		Description: "Layers, size and metadata that changed between " + p.From.Ref + " and " + p.To.Ref + ".", BaseURL: opt.BaseURL, Version: opt.Version}
	switch {
	case p.Identical:
		p.Summary = "The two images have the same layers and metadata."
	default:
		p.Summary = fmt.Sprintf("%s; %s removed, %s added; %s to download.", p.SharedText,
			plural(len(d.Removed), "layer"), plural(len(d.Added), "layer"), p.SizeDelta)
	}
	// Size bars, both on the scale of the larger image.
	total := max(fp.DownloadSize, tp.DownloadSize, 1)
	bar := func(side *DiffSideView, all int64, own []analysis.DiffLayer, kind string) {
		var ownSize int64
		for _, l := range own {
			ownSize += l.Size
		}
		shared := max(all-ownSize, 0)
		sw := float64(shared) * barUnits / float64(total)
		ow := float64(ownSize) * barUnits / float64(total)
		side.SharedWidth = strconv.FormatFloat(sw, 'f', 1, 64)
		side.OwnX = side.SharedWidth
		side.OwnWidth = strconv.FormatFloat(ow, 'f', 1, 64)
		side.OwnKind = kind
		side.OwnText = plural(len(own), "layer") + " " + kind + ", " + analysis.HumanSize(ownSize)
	}
	bar(&p.From, fp.DownloadSize, d.Removed, "removed")
	bar(&p.To, tp.DownloadSize, d.Added, "added")

	n := d.Shared.LayerCount
	if len(fp.Layers) == n+len(d.Removed) && len(tp.Layers) == n+len(d.Added) {
		for i := range n {
			p.Rows = append(p.Rows, DiffRow{Shared: true, Left: cell(i+1, fp.Layers[i], "shared"), Right: cell(i+1, tp.Layers[i], "shared")})
		}
		for i := 0; i < max(len(d.Removed), len(d.Added)); i++ {
			var row DiffRow
			if i < len(d.Removed) {
				row.Left = cell(n+i+1, fp.Layers[n+i], "removed")
			}
			if i < len(d.Added) {
				row.Right = cell(n+i+1, tp.Layers[n+i], "added")
			}
			p.Rows = append(p.Rows, row)
		}
	}
	for _, c := range d.Metadata.Changes() {
		p.Metadata = append(p.Metadata, MetaChange{Label: c.Key, From: c.From, To: c.To})
	}
	// The other platforms both images have, to compare those instead.
	if len(from.Platforms) > 1 && len(to.Platforms) > 1 {
		for _, q := range to.Platforms {
			if platformByName(from, q.Platform) == nil {
				continue
			}
			p.Platforms = append(p.Platforms, Link{
				Text:    q.Platform,
				Href:    DiffHref(p.From.Ref, p.To.Ref) + "&platform=" + url.QueryEscape(q.Platform),
				Current: q.Platform == d.Platform,
			})
		}
	}
	return p
}

func diffSide(label string, s analysis.DiffSide, rep *analysis.Report, pl *analysis.Platform) DiffSideView {
	ref := DisplayReference(rep.Registry, rep.Repository, rep.Tag, "")
	if rep.Tag == "" {
		ref = DisplayReference(rep.Registry, rep.Repository, "", rep.Digest)
	}
	v := DiffSideView{
		Label:          label,
		Ref:            ref,
		Href:           ImageHref(ref),
		Digest:         s.Digest,
		ShortDigest:    analysis.ShortDigest(s.Digest),
		PlatformDigest: s.PlatformDigest,
		Size:           analysis.HumanSize(pl.DownloadSize),
		Layers:         plural(pl.LayerCount, "layer"),
	}
	if pl.Parent != nil {
		v.Parent = newParentView(pl.Parent, pl.Platform)
	}
	return v
}

func cell(n int, l analysis.Layer, kind string) *DiffCell {
	cmd := CleanCommand(l.CreatedBy)
	c := &DiffCell{Number: n, Command: cmd, Size: analysis.HumanSize(l.Size), Digest: l.Digest, ShortDigest: analysis.ShortDigest(l.Digest), Kind: kind}
	if cmd != l.CreatedBy {
		c.CommandFull = l.CreatedBy
	}
	return c
}

func platformByDigest(r *analysis.Report, digest string) *analysis.Platform {
	for i := range r.Platforms {
		if r.Platforms[i].Digest == digest {
			return &r.Platforms[i]
		}
	}
	return &analysis.Platform{}
}

func platformByName(r *analysis.Report, name string) *analysis.Platform {
	for i := range r.Platforms {
		if r.Platforms[i].Platform == name {
			return &r.Platforms[i]
		}
	}
	return nil
}

// signedSize writes a size change with its sign: "+852.1 kB", "−1.2 MB",
// "no change".
func signedSize(n int64) string {
	switch {
	case n > 0:
		return "+" + analysis.HumanSize(n)
	case n < 0:
		return "−" + analysis.HumanSize(-n)
	}
	return "no change in size"
}

func signed(n int) string {
	switch {
	case n > 0:
		return "+" + strconv.Itoa(n)
	case n < 0:
		return "−" + strconv.Itoa(-n)
	}
	return "±0"
}

func pluralWord(n int, unit string) string {
	if n == 1 || n == -1 {
		return unit
	}
	return unit + "s"
}
