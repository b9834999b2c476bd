// Package images is the one read path of docs/DESIGN.md, shared by the pages, the
// JSON API, the MicroBadger API, the badges and the command line: answer
// from the store; refresh a stale tag in the background; inspect an unknown
// one within a deadline. It also records what registries said: content by
// digest, where tags point (a move and its row in the change log, nothing
// more: notify tells subscribers from the log), the platform images parents
// are chosen from; and it answers what parent detection knows, such as the
// images a change set makes outdated (OutdatedBy).
//
// Everything it keeps in memory follows the one cache rule (see
// store.Stamp): reports by digest, which never change, and finished answers,
// kept with the change stamps of every scope they were made from and served
// while those are unchanged. Nothing is retired by a timer.
package images

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/internal/costlru"
	"github.com/imagebadger/imagebadger/ratelimit"
	"github.com/imagebadger/imagebadger/registry"
	"github.com/imagebadger/imagebadger/store"
)

// Options configures a Service. Client and Store are required; every other
// zero field means the default named on it.
type Options struct {
	Client *registry.Client
	Store  *store.Store
	// Hub, when set, is Docker Hub's web API: docker.io listings come from
	// it (100 tags with digests a request) and so do repository facts.
	// Optional.
	Hub *registry.Hub
	// FreshFor is how long a stored tag resolution is trusted without asking
	// the registry again (the poll interval; default DefaultFreshFor).
	FreshFor time.Duration
	// Logger receives failed background inspections; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// InspectTimeout bounds one background inspection (default 2 minutes);
	// the registry client's deadline bounds each of its requests.
	InspectTimeout time.Duration
	// RetryFailedAfter is how long a failed background inspection answers
	// for its reference before another may start (default 30 s), so a badge
	// of a missing or unreachable image does not cost a registry request
	// per view. Successes are never remembered: they are in the store.
	RetryFailedAfter time.Duration
	// MaxInspections bounds the background inspections in flight at once
	// (default 32), so a flood of reads of unknown images cannot start
	// unbounded work.
	MaxInspections int
	// MaxInspectionsPerRegistry and MaxInspectionsPerClient are the
	// shares of MaxInspections one registry and one client address may
	// hold (defaults DefaultMaxInspectionsPerRegistry and
	// DefaultMaxInspectionsPerClient, at most MaxInspections): a slow
	// registry, or one client, fills its own share and waits there while
	// everyone else's inspections go on.
	MaxInspectionsPerRegistry, MaxInspectionsPerClient int
	// QueueWait is how long an inspection whose shares are full waits for
	// a slot before its readers are answered ErrBusy (default
	// DefaultQueueWait).
	QueueWait time.Duration
	// ClientInspections is each client address's budget of reads that
	// miss the store and start an inspection or listing (default
	// DefaultClientInspectionsBurst per DefaultClientInspectionsPeriod);
	// past it such reads answer analysis.ErrRateLimited. Reads the store
	// answers cost nothing, and so does the refresh of a stale tag, which
	// is the service's own upkeep.
	ClientInspections ratelimit.Limit
	// CacheSize bounds the reports and the answers kept in memory (default
	// 4096 each).
	CacheSize int
	// ReportCacheBytes and AnswerCacheBytes bound the same caches in bytes,
	// as reportCost estimates them (default DefaultCacheBytes each): a
	// report's size grows with its platforms and layers, so a bound in
	// entries alone lets a few large images hold gigabytes.
	ReportCacheBytes, AnswerCacheBytes int64
	// Verifier judges the cosign signatures found under the trust rules;
	// nil leaves every signature unjudged (verified null).
	Verifier registry.Verifier
	// PrivateImages is who is shown private repositories (--private-images;
	// default DefaultPrivateImages).
	PrivateImages Policy
	// MaxRepositoryTags bounds the tags a listing keeps recorded as
	// current for one repository (default DefaultMaxRepositoryTags).
	MaxRepositoryTags int
	// MaxNewTags bounds the tags one listing looks up that the repository
	// has not recorded (default DefaultMaxNewTags): each costs a registry
	// request and rows in the change log, so a registry that lists
	// thousands of new tags is recorded a part at a time.
	MaxNewTags int
}

// Defaults of Options.
const (
	DefaultFreshFor         = 15 * time.Minute
	DefaultInspectTimeout   = 2 * time.Minute
	DefaultRetryFailedAfter = 30 * time.Second
	DefaultMaxInspections   = 32
	DefaultCacheSize        = 4096
	// DefaultMaxInspectionsPerRegistry is a quarter of the pool: a
	// registry that trickles its answers holds at most that, and the three
	// quarters left serve every other registry. It equals the registry
	// client's own limit of requests in flight to one host
	// (registry.DefaultConcurrency), so a larger share would only hold
	// slots while its requests queue in the client.
	DefaultMaxInspectionsPerRegistry = DefaultMaxInspections / 4
	// DefaultMaxInspectionsPerClient is an eighth of the pool: a person
	// opening pages of new images starts one or two inspections at a time,
	// a README's badges a few; a client with more waits in its own share.
	DefaultMaxInspectionsPerClient = DefaultMaxInspections / 8
	// DefaultQueueWait is longer than a badge waits (3 s), so an inspection
	// a badge queued still starts while the badge says "try again", and
	// short enough that a page waiting on a busy registry answers 503 well
	// before a browser gives up.
	DefaultQueueWait = 10 * time.Second
	// BusyRetryAfter is the Retry-After of an ErrBusy answer: slots come
	// free as inspections end, which takes seconds.
	BusyRetryAfter = 5 * time.Second
	// DefaultCacheBytes bounds each of the report and answer caches: the
	// largest image the limits allow (analysis.MaxPlatforms platform
	// images of analysis.MaxLayers layers) costs about 8 MiB as a report,
	// so eight of them fit, and the thousands of ordinary images (a few
	// kilobytes to tens of kilobytes each) people read fit many times over.
	// An answer shares its report's layers, so the two caches together
	// keep at most about 64 MiB of the largest images alive, 59 MiB
	// measured after 16 reads of one under different names
	// (BenchmarkCachedReportsHeap).
	DefaultCacheBytes = 64 << 20
	// DefaultMaxRepositoryTags is as many tags as a listing reads
	// (registry.MaxListedTags): Docker Hub's largest official
	// repositories hold a few thousand.
	DefaultMaxRepositoryTags = registry.MaxListedTags
	// DefaultMaxNewTags keeps what one listing may cost near a thousand
	// registry requests and about 2 MB of rows; most repositories have
	// fewer tags and are recorded whole by their first listing.
	DefaultMaxNewTags = 1000
)

// The default of Options.ClientInspections, each client's budget of reads
// that start registry work: 100 at once, refilled at one a second (the
// whole burst in 100 s). A person reading pages or a README's badges of
// images never seen starts a handful at once, and a CI job checking the
// images of a release a few dozen; a script walking a registry's images
// is held to one a second, 3,600 an hour, which keeps one client from
// making the service hammer registries or grow the database at will.
const (
	DefaultClientInspectionsBurst  = 100
	DefaultClientInspectionsPeriod = 100 * time.Second
)

func (o Options) withDefaults() Options {
	if o.FreshFor <= 0 {
		o.FreshFor = DefaultFreshFor
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.InspectTimeout <= 0 {
		o.InspectTimeout = DefaultInspectTimeout
	}
	if o.RetryFailedAfter <= 0 {
		o.RetryFailedAfter = DefaultRetryFailedAfter
	}
	if o.MaxInspections <= 0 {
		o.MaxInspections = DefaultMaxInspections
	}
	if o.MaxInspectionsPerRegistry <= 0 {
		o.MaxInspectionsPerRegistry = DefaultMaxInspectionsPerRegistry
	}
	if o.MaxInspectionsPerClient <= 0 {
		o.MaxInspectionsPerClient = DefaultMaxInspectionsPerClient
	}
	o.MaxInspectionsPerRegistry = min(o.MaxInspectionsPerRegistry, o.MaxInspections)
	o.MaxInspectionsPerClient = min(o.MaxInspectionsPerClient, o.MaxInspections)
	if o.QueueWait <= 0 {
		o.QueueWait = DefaultQueueWait
	}
	if o.ClientInspections.IsZero() {
		o.ClientInspections = ratelimit.Limit{Burst: DefaultClientInspectionsBurst, Period: DefaultClientInspectionsPeriod}
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.ReportCacheBytes <= 0 {
		o.ReportCacheBytes = DefaultCacheBytes
	}
	if o.AnswerCacheBytes <= 0 {
		o.AnswerCacheBytes = DefaultCacheBytes
	}
	if o.PrivateImages == "" {
		o.PrivateImages = DefaultPrivateImages
	}
	if o.MaxRepositoryTags <= 0 {
		o.MaxRepositoryTags = DefaultMaxRepositoryTags
	}
	if o.MaxNewTags <= 0 {
		o.MaxNewTags = DefaultMaxNewTags
	}
	return o
}

// Budget is what a registry last announced of its rate limit (see
// registry.Budget); the server shows it without depending on the registry
// client.
type Budget = registry.Budget

// PollReserve is the share of a known budget that polling leaves to reads.
const PollReserve = registry.PollReserve

// Budgets returns the rate-limit budgets the registries have announced,
// for /metrics and the pages.
func (s *Service) Budgets() []Budget { return s.client.Budgets() }

// Budget returns registry's last announced rate-limit budget.
func (s *Service) Budget(registryName string) (Budget, bool) { return s.client.Budget(registryName) }

// Service answers image reports.
type Service struct {
	opts   Options
	client *registry.Client
	store  *store.Store
	// inspector reads what the store lacks through client; pollClient and
	// pollInspector are the same for background polls (ReadOptions.Polling).
	inspector     *registry.Inspector
	pollClient    *registry.Client
	pollInspector *registry.Inspector
	flight        singleflight.Group
	index         *analysis.ParentIndex
	// reports are digest-level reports by repository@digest: content by
	// digest never changes, so an entry is never out of date.
	reports *costlru.Cache[string, *analysis.Report]
	// answers are finished answers by reference (see answer). Both are
	// bounded in bytes as well as entries (see Options.ReportCacheBytes).
	answers *costlru.Cache[analysis.Reference, answerEntry]
	// indexed and linked remember what is already in the store (platform
	// images by top-level image, parent links), so that reads do not write
	// it again; both are facts about digests that never change.
	indexed *lru.Cache[string, struct{}]
	linked  *lru.Cache[store.ParentLink, struct{}]
	// verdicts are the repositories' visibility verdicts, by repository,
	// each kept under the repository's stamp (see verdict).
	verdicts *lru.Cache[analysis.Repository, verdictEntry]
	bg       background
	// clientBudget is each client address's budget of new background
	// inspections (Options.ClientInspections).
	clientBudget *ratelimit.Keyed
	// indexBehind is set when another process sharing the database has
	// recorded new platform images; the next parent lookup reads them
	// first (from indexFrom on).
	indexBehind atomic.Bool
	indexMu     sync.Mutex
	indexFrom   time.Time
}

// knownSetSize bounds the indexed and linked sets.
const knownSetSize = 100_000

// New returns a Service. Call LoadIndex before serving so parents found in
// earlier runs are known, and Close before closing the store.
func New(o Options) *Service {
	o = o.withDefaults()
	poll := o.Client.Polling()
	s := &Service{
		opts:          o,
		client:        o.Client,
		store:         o.Store,
		inspector:     registry.NewInspector(o.Client, o.Store).WithVerifier(o.Verifier),
		pollClient:    poll,
		pollInspector: registry.NewInspector(poll, o.Store).WithVerifier(o.Verifier),
		index:         analysis.NewParentIndex(),
		reports:       costlru.New[string, *analysis.Report](o.CacheSize, o.ReportCacheBytes),
		answers:       costlru.New[analysis.Reference, answerEntry](o.CacheSize, o.AnswerCacheBytes),
		indexed:       mustLRU[string, struct{}](knownSetSize),
		linked:        mustLRU[store.ParentLink, struct{}](knownSetSize),
		verdicts:      mustLRU[analysis.Repository, verdictEntry](o.CacheSize),
	}
	s.bg.init(o.CacheSize)
	s.clientBudget = ratelimit.New(o.ClientInspections)
	o.Store.OnExternalChange(func(scope store.Scope, _ store.Stamp) {
		if scope == store.IndexScope {
			s.indexBehind.Store(true)
		}
	})
	return s
}

func mustLRU[K comparable, V any](size int) *lru.Cache[K, V] {
	c, err := lru.New[K, V](size)
	if err != nil {
		panic(err) // only for a size below 1, which withDefaults rules out
	}
	return c
}

// ReadOptions says how a read may use the registry.
type ReadOptions struct {
	// Refresh re-resolves a tag against the registry (one HEAD) before
	// answering, even when the stored resolution is fresh.
	Refresh bool
	// Wait bounds how long a read of an image never seen waits for its
	// first inspection, which goes on in the background past it (ErrNotYet);
	// zero waits until it ends or ctx is done.
	Wait time.Duration
	// RegistryOnly makes a refreshed listing ask the registry itself, one
	// HEAD a tag, never Docker Hub's web API: the registry is the truth for
	// what a tag points at, and the web API may lag a push by moments, so a
	// refresh hook sent right after one uses this.
	RegistryOnly bool
	// Only, with Refresh, limits a listing to the tags it accepts: the
	// others are neither asked for (no HEAD) nor recorded as checked or
	// deleted, and the listing is not recorded as a full one. It is how a
	// repository followed only through tag filters costs no polling of the
	// tags nobody follows. OnlyKey names the filter, so that concurrent
	// listings with the same one are shared.
	Only    func(tag string) bool
	OnlyKey string
	// Polling marks a background poll's check or listing: its registry
	// requests leave the last part of a known rate-limit budget to the
	// reads people ask for (see registry.Client.Polling).
	Polling bool
	// Client is the address of the client the read is made for, whose
	// share of the background inspections and budget of new ones a read
	// that misses the store is counted against; "" is the service's own
	// work (notifications, the command line), counted against neither.
	Client string
}

// reader is the client and inspector a call goes through: the polling
// ones for a background poll.
func (s *Service) reader(polling bool) (*registry.Client, *registry.Inspector) {
	if polling {
		return s.pollClient, s.pollInspector
	}
	return s.client, s.inspector
}

// Errors of Read besides the kinds of analysis.
var (
	// ErrNotYet: the first inspection of an image did not finish within
	// ReadOptions.Wait; it goes on, and a later read will find its result.
	ErrNotYet = errors.New("images: first inspection still running")
	// ErrBusy: the background inspections a read would need a slot among
	// (the service's, its registry's or its client's share) are all in
	// flight, and none came free in time; a later read may try again. It
	// comes as an *analysis.Error saying which, with RetryAfter set.
	ErrBusy = errors.New("images: too many background inspections in flight")
)

// Answer is a read's answer.
type Answer struct {
	// Report is shared by every read of the same answer, so that a repeated
	// read copies nothing: read it, never change it (Clone it to make a
	// variant).
	Report *analysis.Report
	// Stale is true when the tag's stored resolution is older than
	// FreshFor; the read has started a refresh in the background.
	Stale bool
	// Version names the answer's content: two answers for the same
	// reference with the same Version are equal, so what was made from one
	// (an encoded response, a rendered page) serves for the other.
	Version string
}

// Read answers the report of ref to viewer. A plain read answers from the
// store without asking the registry, starting a background refresh when the
// tag was last checked more than FreshFor ago; an image never seen is
// inspected (in the background, shared with every concurrent reader) and
// waited for up to how.Wait. With how.Refresh the tag is re-resolved first,
// and the repository's visibility checked again; a refresh is a write, so
// a viewer may make one only of what it may change (see mayWrite). Every
// answer passes the visibility check: a private repository that viewer may
// not see answers as one that does not exist.
func (s *Service) Read(ctx context.Context, viewer auth.Viewer, ref analysis.Reference, how ReadOptions) (Answer, error) {
	var notBefore time.Time
	if how.Refresh && !how.Polling {
		if err := s.mayWrite(ctx, viewer, ref); err != nil {
			return Answer{}, err
		}
		notBefore = s.opts.Now().Truncate(time.Millisecond) // as the store keeps it
	}
	a, err := s.read(ctx, ref, how)
	if err := s.guard(ctx, viewer, ref, err, notBefore); err != nil {
		return Answer{}, err
	}
	return s.withoutHiddenParents(ctx, viewer, a), nil
}

// read is Read without the visibility check.
func (s *Service) read(ctx context.Context, ref analysis.Reference, how ReadOptions) (Answer, error) {
	if how.Refresh {
		r, err := s.resolve(ctx, ref, true, how.Polling)
		if err != nil {
			return Answer{}, err
		}
		return s.answer(ctx, ref, r.rep.Digest, r.checked)
	}
	a, err := s.stored(ctx, ref)
	if err == nil {
		if a.Stale {
			// The refresh of what the store holds is the service's upkeep,
			// not the client's work: once per tag and FreshFor at most.
			s.bg.start(s, ref, "")
		}
		return a, nil
	}
	if d, ok := analysis.DeletedTag(err); ok {
		// Known to be gone: answered from the store, and the registry asked
		// again once per FreshFor at most (a push may bring it back), so a
		// badge of a deleted tag costs no registry request per view.
		if s.opts.Now().Sub(d.Checked) >= s.opts.FreshFor {
			s.bg.start(s, ref, "")
		}
		return Answer{}, err
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return Answer{}, err
	}
	if err := s.bg.start(s, ref, how.Client).wait(ctx, how.Wait); err != nil {
		return Answer{}, err
	}
	return s.stored(ctx, ref)
}

// stored answers from what the store holds, never asking the registry for a
// tag; an unknown tag or image is an error wrapping analysis.ErrNotFound.
func (s *Service) stored(ctx context.Context, ref analysis.Reference) (Answer, error) {
	now := s.opts.Now()
	digest, checked, stale := ref.Digest, now, false
	if digest == "" {
		st, err := s.store.Tag(ctx, ref.Repository, ref.Tag)
		if err != nil {
			return Answer{}, err
		}
		digest, checked = st.Digest, st.Checked
		stale = now.Sub(st.Checked) >= s.opts.FreshFor
	} else if !s.reports.Contains(reportKey(ref.Repository, digest)) {
		// An image reached by digest is known once its manifest is stored.
		if _, _, err := s.store.Manifest(ctx, digest); err != nil {
			return Answer{}, err
		}
	}
	a, err := s.answer(ctx, ref, digest, checked)
	a.Stale = stale
	return a, err
}

// Check re-resolves ref's tag and records what it finds (a move and its
// change), without assembling an answer: what a tag listing, a poll or a
// hook needs, at a fraction of the cost of Read, which also finds parents and
// tags. A digest is only looked up and recorded: it cannot move. Of how,
// only Polling counts.
func (s *Service) Check(ctx context.Context, ref analysis.Reference, how ReadOptions) error {
	r, err := s.resolve(ctx, ref, true, how.Polling)
	if err != nil || !r.moved {
		return err
	}
	// A tag new or moved points at an image whose parents may never have been
	// looked for: record them, so a later move of its base finds it as a child.
	_, err = s.attachParents(ctx, ref.Repository, r.rep.Clone(), newReads(s.store))
	return err
}

// LoadIndex rebuilds the in-memory parent index from the store and returns
// how many platform images it holds; serve calls it once at start-up,
// before taking requests.
func (s *Service) LoadIndex(ctx context.Context) (int, error) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	err := s.loadIndexLocked(ctx, time.Time{})
	return s.index.Len(), err
}

// indexClockSkew is how far back a catch-up of the index reads: first_seen
// times come from the clocks of the processes that recorded them.
const indexClockSkew = 5 * time.Minute

func (s *Service) loadIndexLocked(ctx context.Context, since time.Time) error {
	started := s.opts.Now()
	err := s.store.EachPlatform(ctx, since, func(p store.PlatformImage) {
		s.index.Add(p.Repo, p.PlatformDigest, p.ChainID, p.LayerCount, p.FirstSeen.UnixMilli())
	})
	if err == nil {
		s.indexFrom = started.Add(-indexClockSkew)
	}
	return err
}

// catchUpIndex reads the platform images other processes recorded since
// the index last learnt, when one has said so.
func (s *Service) catchUpIndex(ctx context.Context) error {
	if !s.indexBehind.Load() {
		return nil
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if !s.indexBehind.Swap(false) {
		return nil
	}
	if err := s.loadIndexLocked(ctx, s.indexFrom); err != nil {
		s.indexBehind.Store(true)
		return err
	}
	return nil
}

// Close stops new background inspections from starting and waits for those
// in flight, so the store they write to can be closed after it returns. It
// gives up when ctx is done.
func (s *Service) Close(ctx context.Context) error { return s.bg.close(ctx) }

// Compared is a diff with the two reports it was made from, for pages
// that show more of each side than the diff holds.
type Compared struct {
	Diff     *analysis.Diff
	From, To *analysis.Report
}

// Diff compares two images, each read through Read by viewer with how
// (answered from the store when known, inspected otherwise), for platform
// (see analysis.DiffImages: linux/amd64 unless given). A side without the
// platform is an error of kind analysis.ErrInvalidRequest.
func (s *Service) Diff(ctx context.Context, viewer auth.Viewer, from, to analysis.Reference, platform string, how ReadOptions) (Compared, error) {
	a, err := s.Read(ctx, viewer, from, how)
	if err != nil {
		return Compared{}, err
	}
	b, err := s.Read(ctx, viewer, to, how)
	if err != nil {
		return Compared{}, err
	}
	return compare(a, b, platform)
}

// diff is Diff without the visibility check.
func (s *Service) diff(ctx context.Context, from, to analysis.Reference, platform string, how ReadOptions) (Compared, error) {
	a, err := s.read(ctx, from, how)
	if err != nil {
		return Compared{}, err
	}
	b, err := s.read(ctx, to, how)
	if err != nil {
		return Compared{}, err
	}
	return compare(a, b, platform)
}

func compare(a, b Answer, platform string) (Compared, error) {
	d, err := analysis.DiffImages(a.Report, b.Report, platform)
	if err != nil {
		return Compared{}, err
	}
	return Compared{Diff: &d, From: a.Report, To: b.Report}, nil
}
