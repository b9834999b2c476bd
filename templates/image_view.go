package templates

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/badge"
)

// ImagePage is the view model of /images/{reference}.
type ImagePage struct {
	Meta Meta
	// Ref is the reference as shown and as used in this page's URL.
	Ref            string
	Href           string
	Repository     string
	RepositoryHref string
	Registry       string
	Tag            string
	Digest         string
	ShortDigest    string
	MediaType      string
	// Platforms lists every platform image with a link that selects it; it
	// has more than one entry only for multi-platform images.
	Platforms []Link
	// Notice explains a fallback, e.g. an unknown ?platform= value.
	Notice string
	// SelectedPlatform is the platform chosen with ?platform=, kept by the
	// refresh form; empty when the default one is shown.
	SelectedPlatform string
	Platform         PlatformView
	// Tags are the tags of the repository that point at Digest.
	Tags          []Link
	Checked       TimeView
	RefreshAction string
	SubscribeHref string
	Badges        []BadgeView
	// History are the latest recorded changes of the tag (empty for an
	// image read by digest); HistoryHref is all of them.
	History     []HistoryEntry
	HistoryHref string
	// Hub holds Docker Hub's facts about the repository; nil when none.
	Hub *HubView
	// BudgetNotice, when set, says the registry's rate-limit budget is low.
	BudgetNotice string
	// BadgeToken is the private repository's badge token, in the snippets
	// and shown to signed-in people (see WithBadgeToken); empty otherwise.
	BadgeToken string
}

// HubView is what Docker Hub's web API says of the repository.
type HubView struct {
	Description string
	Pulls       string
	Stars       string
	Updated     TimeView
	Href        string
}

// NewHubView formats Docker Hub's facts for the image page; nil when there
// are none.
func NewHubView(info *analysis.RepositoryInfo, repository string, now time.Time) *HubView {
	if info == nil || info.Source != analysis.SourceDockerHub {
		return nil
	}
	name := strings.TrimPrefix(repository, "library/")
	href := "https://hub.docker.com/r/" + repository
	if name != repository {
		href = "https://hub.docker.com/_/" + name
	}
	v := &HubView{
		Description: info.Description,
		Pulls:       countText(info.PullCount),
		Stars:       countText(info.StarCount),
		Href:        href,
	}
	if info.LastUpdated != nil {
		v.Updated = NewTimeView(*info.LastUpdated, now)
	}
	return v
}

// countText writes a count the way Docker Hub shows it: 1.2K, 3.4M, 1B+.
func countText(n int64) string {
	switch {
	case n >= 1_000_000_000:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64) + "B"
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + "M"
	case n >= 10_000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64) + "K"
	}
	return strconv.FormatInt(n, 10)
}

// MultiPlatform reports whether the image is an index with several platforms.
func (p ImagePage) MultiPlatform() bool { return len(p.Platforms) > 1 }

// PlatformView is one platform image of the page.
type PlatformView struct {
	Name         string
	Digest       string
	ConfigDigest string
	Created      TimeView
	LayerCount   int
	DownloadSize string
	// Bytes is the download size in bytes.
	Bytes    int64
	Layers   []LayerView
	Bar      []BarSegment
	Legend   []LegendItem
	Metadata []MetaItem
	Title    string
	Summary  string
	Labels   []KV
	Parent   *ParentView
	// ContentsHref is the page of what is inside the layers; empty when
	// the service does not serve it.
	ContentsHref string
	// Supply is what signs and attests the image; nil when it was never
	// looked at.
	Supply *SupplyView
}

// SupplyView is the "Supply chain" section: who signed the image and
// whether that was verified, what its SBOM lists, how it was built.
type SupplyView struct {
	Signatures []SignatureView
	// Attestations says how many attestations were found ("3 attestations").
	Attestations string
	SBOM         *SBOMView
	Provenance   *ProvenanceView
}

// SignatureView is one signature.
type SignatureView struct {
	Format      string
	ShortDigest string
	Digest      string
	FoundBy     string
	// Status is "verified", "not verified" or "not checked" (no trust rule).
	Status string
	Signer string
	Reason string
}

// SBOMView summarises the SBOM and links to its packages.
type SBOMView struct {
	Format    string
	Packages  string
	Generator string
	Href      string
}

// ProvenanceView is what the provenance says of the build.
type ProvenanceView struct {
	Kind      string
	Builder   string
	Source    string
	SourceURL string
	Revision  string
	Materials []MaterialView
}

// MaterialView is one input of the build, linked to its page when it is
// an image.
type MaterialView struct {
	URI         string
	ShortDigest string
	Href        string
}

// LayerView is one row of the layers table.
type LayerView struct {
	// Number counts from 1, base first.
	Number      int
	Anchor      string
	Digest      string
	ShortDigest string
	Size        string
	Percent     string
	// BarWidth is the row's share of the largest layer, 0 to 100, for the
	// small in-row bar.
	BarWidth string
	Command  string
	// CommandFull is the raw created_by, shown as a tooltip when the clean
	// command leaves out build arguments.
	CommandFull string
	Created     TimeView
	// Inherited marks layers that come from the parent image.
	Inherited bool
	// ContentsHref shows what the layer changed, on the contents page.
	ContentsHref string
}

// BarSegment is one rectangle of the layer-size bar, in a 1000-unit-wide
// coordinate space.
type BarSegment struct {
	X, Width string
	// Kind picks the colour: "own-0".."own-2" for this image's layers,
	// "inh-0".."inh-2" for the parent's.
	Kind  string
	Title string
	Href  string
}

// LegendItem explains one colour of the layer bar.
type LegendItem struct {
	// Kind is "own-0" or "inh-0", as in BarSegment.
	Kind string
	Text string
}

// MetaItem is one row of the metadata list; Href links the value when set.
type MetaItem struct {
	Label string
	Value string
	// Full is the untruncated value, shown as a tooltip when Value is cut.
	Full string
	Href string
	Mono bool
}

// ParentView describes the image this one was built on.
type ParentView struct {
	// Registry and RepositoryName name the parent's repository as stored.
	Registry       string
	RepositoryName string
	Ref            string
	Href           string
	Repository     string
	Digest         string
	ShortDigest    string
	Tags           []Link
	LayerCount     int
	LayersText     string
	Method         string
	// Why says in words why this is the parent: "shares its 3 layers,
	// matched by layer prefix" or "named by the image's base annotation".
	Why      string
	Outdated bool
	// MovedTag is the parent's tag that has moved since, as repository:tag;
	// empty when it is not known which one (analysis.Parent.MovedTags).
	MovedTag      string
	CurrentDigest string
	CurrentShort  string
	CurrentHref   string
}

// BadgeView is one badge with its copy-paste snippets.
type BadgeView struct {
	Kind     string
	ID       string
	Src      string
	Alt      string
	Markdown string
	HTML     string
}

// NewImagePage builds the image page of rep. want is the ?platform= value;
// an unknown value falls back to the default platform with a notice.
// history holds the tag's latest recorded changes, newest first.
func NewImagePage(rep *analysis.Report, want string, history []TagChange, opt Options) ImagePage {
	ref := DisplayReference(rep.Registry, rep.Repository, rep.Tag, "")
	if rep.Tag == "" {
		ref = DisplayReference(rep.Registry, rep.Repository, "", rep.Digest)
	}
	repo := DisplayRepository(rep.Registry, rep.Repository)
	p := ImagePage{
		Ref:            ref,
		Href:           ImageHref(ref),
		Repository:     repo,
		RepositoryHref: RepositoryHref(repo),
		Registry:       rep.Registry,
		Tag:            rep.Tag,
		Digest:         rep.Digest,
		ShortDigest:    analysis.ShortDigest(rep.Digest),
		MediaType:      MediaTypeName(rep.MediaType),
		Checked:        NewTimeView(rep.CheckedAt, opt.Now),
		RefreshAction:  ImageHref(ref) + "/refresh",
		SubscribeHref:  "/subscriptions/new?image=" + url.QueryEscape(ref),
	}
	if rep.Tag != "" {
		p.HistoryHref = HistoryHref(repo, rep.Tag)
	}
	p.Meta = Meta{
		Title:       ref,
		Description: "Layers, size, metadata, parent image and badges of " + ref + ".",
		BaseURL:     opt.BaseURL,
		Version:     opt.Version,
	}
	plat, ok := rep.Select(want)
	if !ok && want != "" {
		p.Notice = fmt.Sprintf("This image has no %s platform; showing %s instead.", want, defaultPlatform(rep))
		plat, _ = rep.Select("")
	}
	if want != "" && ok && len(rep.Platforms) > 1 {
		p.SelectedPlatform = plat.Platform
	}
	if len(rep.Platforms) > 1 {
		for _, q := range rep.Platforms {
			p.Platforms = append(p.Platforms, Link{
				Text:    q.Platform,
				Href:    p.Href + "?platform=" + url.QueryEscape(q.Platform),
				Current: plat != nil && q.Platform == plat.Platform,
			})
		}
	}
	for _, t := range sortTags(rep.Tags) {
		tref := DisplayReference(rep.Registry, rep.Repository, t, "")
		p.Tags = append(p.Tags, Link{Text: t, Href: ImageHref(tref), Current: t == rep.Tag})
	}
	// A badge describes linux/amd64 unless told otherwise: keep the platform
	// in the badge URL only when another one is shown.
	platQuery := ""
	if plat != nil && len(rep.Platforms) > 1 && plat.Platform != defaultPlatform(rep) {
		platQuery = "?platform=" + url.QueryEscape(plat.Platform)
	}
	base := opt.base()
	for _, k := range badge.Kinds() {
		kind := string(k)
		src := "/badges/" + kind + "/" + ref + ".svg" + platQuery
		alt := kind + " badge of " + ref
		page := base + p.Href
		p.Badges = append(p.Badges, BadgeView{
			Kind:     kind,
			ID:       "badge-" + kind,
			Src:      src,
			Alt:      alt,
			Markdown: fmt.Sprintf("[![%s](%s%s)](%s)", alt, base, src, page),
			HTML:     fmt.Sprintf(`<a href="%s"><img src="%s%s" alt="%s"></a>`, page, base, src, alt),
		})
	}
	if plat != nil {
		p.Platform = newPlatformView(rep, plat, opt)
		if opt.Contents {
			p.Platform.ContentsHref = p.Href + "/contents" + platQuery
			sep := "?"
			if platQuery != "" {
				sep = "&"
			}
			for i := range p.Platform.Layers {
				p.Platform.Layers[i].ContentsHref = p.Platform.ContentsHref + sep + "layer=" + strconv.Itoa(i) + "&changes=1"
			}
		}
	}
	p.History = NewHistoryEntries(rep.Registry, rep.Repository, history, opt.Now)
	return p
}

func defaultPlatform(rep *analysis.Report) string {
	if d, ok := rep.Select(""); ok {
		return d.Platform
	}
	return ""
}

func sortTags(tags []string) []string {
	out := append([]string(nil), tags...)
	analysis.SortTags(out)
	return out
}

// barUnits is the width of the layer bar's coordinate space.
const barUnits = 1000

func newPlatformView(rep *analysis.Report, pl *analysis.Platform, opt Options) PlatformView {
	v := PlatformView{
		Name:         pl.Platform,
		Digest:       pl.Digest,
		ConfigDigest: pl.ConfigDigest,
		Created:      timeViewPtr(pl.Created, opt.Now),
		LayerCount:   pl.LayerCount,
		DownloadSize: analysis.HumanSize(pl.DownloadSize),
		Bytes:        pl.DownloadSize,
		Title:        pl.Metadata.Title,
		Summary:      pl.Metadata.Description,
		Labels:       sortedLabels(pl.Labels),
	}
	if pl.SupplyChain != nil {
		v.Supply = newSupplyView(rep, pl)
	}
	inherited := 0
	if pl.Parent != nil {
		v.Parent = newParentView(pl.Parent, pl.Platform)
		inherited = min(pl.Parent.LayerCount, len(pl.Layers))
	}

	var total, largest int64
	for _, l := range pl.Layers {
		total += l.Size
		largest = max(largest, l.Size)
	}
	v.Layers = make([]LayerView, len(pl.Layers))
	for i, l := range pl.Layers {
		cmd := CleanCommand(l.CreatedBy)
		full := ""
		if strings.Contains(l.CreatedBy, "|") && strings.Contains(l.CreatedBy, "=") && cmd != strings.TrimSpace(l.CreatedBy) {
			full = l.CreatedBy
		}
		width := "0"
		if largest > 0 {
			width = strconv.FormatFloat(max(float64(l.Size)*100/float64(largest), 1), 'f', 1, 64)
		}
		v.Layers[i] = LayerView{
			Number:      i + 1,
			Anchor:      "layer-" + strconv.Itoa(i+1),
			Digest:      l.Digest,
			ShortDigest: analysis.ShortDigest(l.Digest),
			Size:        analysis.HumanSize(l.Size),
			Percent:     percent(l.Size, total),
			BarWidth:    width,
			Command:     cmd,
			CommandFull: full,
			Created:     timeViewPtr(l.Created, opt.Now),
			Inherited:   i < inherited,
		}
	}
	v.Bar = layerBar(v.Layers, pl.Layers, total)
	if inherited > 0 {
		var inBytes int64
		for _, l := range pl.Layers[:inherited] {
			inBytes += l.Size
		}
		v.Legend = []LegendItem{
			{Kind: "inh-0", Text: fmt.Sprintf("From %s: %s in %s", v.Parent.Ref, analysis.HumanSize(inBytes), plural(inherited, "layer"))},
			{Kind: "own-0", Text: fmt.Sprintf("Added by this image: %s in %s", analysis.HumanSize(total-inBytes), plural(len(pl.Layers)-inherited, "layer"))},
		}
	}
	v.Metadata = metadataItems(pl.Metadata)
	return v
}

// layerBar lays the layers out left to right, base first, each at least a
// few units wide so that small layers stay visible and clickable.
func layerBar(views []LayerView, layers []analysis.Layer, total int64) []BarSegment {
	if len(layers) == 0 {
		return nil
	}
	const minUnits = 4.0
	widths := make([]float64, len(layers))
	var sum float64
	for i, l := range layers {
		w := minUnits
		if total > 0 {
			w = max(float64(l.Size)*barUnits/float64(total), minUnits)
		}
		widths[i] = w
		sum += w
	}
	scale := barUnits / sum
	out := make([]BarSegment, len(layers))
	x := 0.0
	for i, w := range widths {
		w *= scale
		kind := segKind(views[i].Inherited, i)
		title := "Layer " + strconv.Itoa(i+1) + ": " + views[i].Size + " (" + views[i].Percent + ")"
		if views[i].Command != "" {
			title += ": " + truncate(views[i].Command, 60)
		}
		out[i] = BarSegment{
			X:     strconv.FormatFloat(x, 'f', 2, 64),
			Width: strconv.FormatFloat(w, 'f', 2, 64),
			Kind:  kind,
			Title: title,
			Href:  "#" + views[i].Anchor,
		}
		x += w
	}
	return out
}

// segKind picks a layer's colour in the bar, cycling through three shades
// so neighbouring layers differ, from the parent's palette when inherited.
func segKind(inherited bool, i int) string {
	switch {
	case inherited && i%3 == 0:
		return "inh-0"
	case inherited && i%3 == 1:
		return "inh-1"
	case inherited:
		return "inh-2"
	case i%3 == 0:
		return "own-0"
	case i%3 == 1:
		return "own-1"
	}
	return "own-2"
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	count := 0
	for i := range s {
		if count == n-1 {
			if _, size := utf8.DecodeRuneInString(s[i:]); i+size < len(s) {
				return s[:i] + "…"
			}
			return s
		}
		count++
	}
	return s
}

// newParentView describes the parent of a platform image. Its link goes to
// the parent as people name it, its most specific tag (the platform
// manifest's digest when it has none), showing the child's platform.
func newParentView(pa *analysis.Parent, platform string) *ParentView {
	tags := sortTags(pa.Tags)
	tag := longest(tags)
	ref := DisplayReference(pa.Registry, pa.Repository, tag, "")
	href := ImageHref(ref)
	if tag == "" {
		href = ImageHref(DisplayReference(pa.Registry, pa.Repository, "", pa.Digest))
	} else if platform != "" && platform != "linux/amd64" {
		href += "?platform=" + url.QueryEscape(platform)
	}
	pv := &ParentView{
		Registry:       pa.Registry,
		RepositoryName: pa.Repository,
		Ref:            ref,
		Href:           href,
		Repository:     DisplayRepository(pa.Registry, pa.Repository),
		Digest:         pa.Digest,
		ShortDigest:    analysis.ShortDigest(pa.Digest),
		LayerCount:     pa.LayerCount,
		LayersText:     plural(pa.LayerCount, "layer"),
		Method:         pa.Method,
		Outdated:       pa.Outdated,
	}
	switch pa.Method {
	case "provenance":
		pv.Why = "named among the materials of the build's provenance, sharing its first " + plural(pa.MatchedLayers, "layer")
	case "annotation":
		pv.Why = "named by the image's base annotation"
		if pa.MatchedLayers > 0 {
			pv.Why += ", sharing its first " + plural(pa.MatchedLayers, "layer")
		}
	default:
		n := pa.MatchedLayers
		if n == 0 {
			n = pa.LayerCount
		}
		if n == 1 {
			pv.Why = "shares its 1 layer, matched by layer prefix"
		} else {
			pv.Why = "shares its " + strconv.Itoa(n) + " layers, matched by layer prefix"
		}
	}
	if tag == "" {
		pv.Ref = DisplayReference(pa.Registry, pa.Repository, "", analysis.ShortDigest(pa.Digest))
	}
	for _, t := range tags {
		pv.Tags = append(pv.Tags, Link{Text: t, Href: ImageHref(DisplayReference(pa.Registry, pa.Repository, t, ""))})
	}
	if pa.Outdated {
		pv.CurrentDigest = pa.CurrentDigest
		pv.CurrentShort = analysis.ShortDigest(pa.CurrentDigest)
		if pa.CurrentDigest != "" {
			pv.CurrentHref = ImageHref(DisplayReference(pa.Registry, pa.Repository, "", pa.CurrentDigest))
		}
		pv.setMoved(pa.MovedTags)
	}
	return pv
}

// setMoved names the moved tag in the outdated warning: of the tags that
// pointed at the parent, the most specific one that now points at
// CurrentDigest (nowAtCurrent lists the tags at CurrentDigest).
func (pv *ParentView) setMoved(nowAtCurrent []string) {
	at := make(map[string]bool, len(nowAtCurrent))
	for _, t := range nowAtCurrent {
		at[t] = true
	}
	var moved []string
	for _, l := range pv.Tags {
		if at[l.Text] {
			moved = append(moved, l.Text)
		}
	}
	if t := longest(moved); t != "" {
		pv.MovedTag = DisplayReference(pv.Registry, pv.RepositoryName, t, "")
	}
}

// longest picks the most specific tag ("3.20.1" over "3"), skipping "latest"
// unless it is the only one.
func longest(tags []string) string {
	best := ""
	for _, t := range tags {
		if t != "latest" && len(t) > len(best) {
			best = t
		}
	}
	if best == "" && len(tags) > 0 {
		return tags[0]
	}
	return best
}

func metadataItems(m analysis.Metadata) []MetaItem {
	var out []MetaItem
	add := func(label, value, href string, mono bool) {
		if value != "" {
			out = append(out, MetaItem{Label: label, Value: value, Href: href, Mono: mono})
		}
	}
	add("Title", m.Title, "", false)
	add("Description", m.Description, "", false)
	add("Version", m.Version, "", false)
	add("Revision", m.Revision, CommitURL(m.Source, m.Revision), true)
	if n := len(out); n > 0 && out[n-1].Label == "Revision" && len(m.Revision) > 12 {
		out[n-1].Value, out[n-1].Full = m.Revision[:12], m.Revision
	}
	add("Source", m.Source, WebURL(m.Source), false)
	add("License", m.Licenses, "", false)
	add("Vendor", m.Vendor, "", false)
	built := m.Created
	if t, err := time.Parse(time.RFC3339, built); err == nil {
		built = t.UTC().Format("2 Jan 2006 15:04 UTC")
	}
	add("Built", built, "", false)
	add("Website", m.URL, WebURL(m.URL), false)
	add("Documentation", m.Documentation, WebURL(m.Documentation), false)
	return out
}

// newSupplyView builds the "Supply chain" section of platform pl.
func newSupplyView(rep *analysis.Report, pl *analysis.Platform) *SupplyView {
	sc := pl.SupplyChain
	v := &SupplyView{Attestations: plural(len(sc.Attestations), "attestation")}
	for _, sig := range sc.Signatures {
		sv := SignatureView{Format: sig.Format, Digest: sig.Digest, ShortDigest: analysis.ShortDigest(sig.Digest), FoundBy: sig.FoundBy,
			Status: "not checked", Signer: sig.Signer, Reason: sig.Reason}
		if sig.Verified != nil {
			sv.Status = "not verified"
			if *sig.Verified {
				sv.Status = "verified"
			}
		}
		v.Signatures = append(v.Signatures, sv)
	}
	if sb := sc.SBOM; sb != nil {
		href := "/api/v1/images/" + rep.Reference + "/sbom"
		if pl.Platform != "" {
			href += "?platform=" + url.QueryEscape(pl.Platform)
		}
		v.SBOM = &SBOMView{Format: sbomFormatName(sb.Format), Packages: plural(sb.Packages, "package"), Generator: sb.Generator, Href: href}
	}
	if pr := sc.Provenance; pr != nil {
		pv := &ProvenanceView{Kind: pr.PredicateType, Builder: pr.Builder, Source: pr.Source, Revision: pr.Revision}
		if k, ok := strings.CutPrefix(pr.PredicateType, "https://slsa.dev/provenance/"); ok {
			pv.Kind = "SLSA " + k
		}
		if strings.HasPrefix(pr.Source, "https://") {
			pv.SourceURL = pr.Source
		}
		for _, m := range pr.Materials {
			mv := MaterialView{URI: m.URI, ShortDigest: analysis.ShortDigest(m.Digest)}
			if im, ok := analysis.ParseImageMaterial(m); ok {
				mv.Href = ImageHref(DisplayReference(im.Ref.Registry, im.Ref.Name, "", im.Ref.Digest))
				if im.Platform != "" && im.Platform != "linux/amd64" {
					mv.Href += "?platform=" + url.QueryEscape(im.Platform)
				}
			}
			pv.Materials = append(pv.Materials, mv)
		}
		v.Provenance = pv
	}
	return v
}

// sbomFormatName is how people write an SBOM format.
func sbomFormatName(f string) string {
	switch f {
	case analysis.SBOMSPDX:
		return "SPDX"
	case analysis.SBOMCycloneDX:
		return "CycloneDX"
	}
	return f
}
