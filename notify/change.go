package notify

import (
	"context"
	"errors"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/store"
)

// change is one logged move of a tag, described for its notification: the
// images before and after, their platforms side by side and the diff.
type change struct {
	Repo analysis.Repository
	Tag  string
	// Previous is the digest the tag pointed at before ("" for a tag seen
	// the first time); Current where it points now.
	Previous, Current string
	At                time.Time
	// Report is the report of Current (platforms, layers, metadata).
	Report *analysis.Report
	// PreviousReport is the report of Previous; nil for a new tag, or when
	// the previous image's content cannot be read any more.
	PreviousReport *analysis.Report
	// PlatformsChanged is false when every platform image of Current was
	// already in Previous (an index that only gained attestations, or was
	// re-pushed with other annotations): such a move is no news to anyone.
	PlatformsChanged bool
	// Platforms says, platform by platform, where the tag's platform images
	// were and are (a platform the new image dropped included).
	Platforms []platformChange
	// Diff is the diff of the move for the platform a badge would show
	// (linux/amd64, else the only one); nil for a new tag or when the two
	// images have no platform in common.
	Diff *analysis.Diff
}

// platformChange is one platform of a move: its platform image before and
// after (either empty when the platform was added or dropped).
type platformChange struct {
	Platform         string
	Digest, Previous string
}

// Changed reports whether the platform's image is another one.
func (p platformChange) Changed() bool { return p.Digest != p.Previous }

// Reports gives the digest-level reports of images (images.Service's
// Report), which the fan-out describes moves by.
type Reports interface {
	Report(ctx context.Context, repo analysis.Repository, digest string) (*analysis.Report, error)
}

// describeChange prepares the description of a logged creation or move c: the
// reports of both images, the platforms before and after, and the diff.
// The new image's content was stored before its move was recorded; the
// previous one's may be gone, and the move is then told without it.
func describeChange(ctx context.Context, reports Reports, c store.TagChange) (change, error) {
	repo := analysis.Repository{Registry: c.Registry, Name: c.Repository}
	rep, err := reports.Report(ctx, repo, c.Digest)
	if err != nil {
		return change{}, err
	}
	d := change{Repo: repo, Tag: c.Tag, Previous: c.Previous, Current: c.Digest, At: c.At, Report: rep}
	if c.Previous != "" {
		prev, err := reports.Report(ctx, repo, c.Previous)
		switch {
		case err == nil:
			d.PreviousReport = prev
		case errors.Is(err, store.ErrUnavailable):
			return change{}, err
		}
	}
	d.Platforms, d.PlatformsChanged = platformChanges(d.PreviousReport, rep, c.Previous == "")
	if d.PreviousReport != nil {
		if diff, err := analysis.DiffImages(d.PreviousReport, rep, ""); err == nil {
			d.Diff = &diff
		}
	}
	return d, nil
}

// platformChanges pairs the platforms of two images by name. changed is
// false when every platform image of rep was already in prev (whatever its
// name there): a re-pushed index with new attestations or annotations only.
// A new tag, or one whose previous image is unknown, has changed.
func platformChanges(prev, rep *analysis.Report, isNew bool) (out []platformChange, changed bool) {
	old := map[string]string{}
	known := map[string]bool{}
	if prev != nil {
		for _, p := range prev.Platforms {
			old[p.Platform] = p.Digest
			known[p.Digest] = true
		}
	}
	changed = isNew || prev == nil
	for _, p := range rep.Platforms {
		out = append(out, platformChange{Platform: p.Platform, Digest: p.Digest, Previous: old[p.Platform]})
		delete(old, p.Platform)
		if !known[p.Digest] {
			changed = true
		}
	}
	if prev != nil {
		for _, p := range prev.Platforms {
			if _, dropped := old[p.Platform]; dropped {
				out = append(out, platformChange{Platform: p.Platform, Previous: p.Digest})
			}
		}
	}
	return out, changed
}
