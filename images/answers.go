package images

import (
	"context"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/store"
)

// answerEntry is a finished answer, current while the tag still points at
// digest, was last checked at checked, and every scope it read still has the
// stamp it had before it was read.
type answerEntry struct {
	digest  string
	checked time.Time
	deps    []scopeStamp
	version string
	// full is the Version of an answer read at checked (a tag's, whose
	// time is the check's): made once, not per read.
	full string
	rep  *analysis.Report
}

type scopeStamp struct {
	scope store.Scope
	stamp store.Stamp
}

// reads collects the scopes an answer is made from, each with the stamp it
// had when first read (before anything of it was read).
type reads struct {
	st   *store.Store
	list []scopeStamp
}

func newReads(st *store.Store) *reads { return &reads{st: st} }

// add records scope at its current stamp, once.
func (r *reads) add(scope store.Scope) {
	for _, d := range r.list {
		if d.scope == scope {
			return
		}
	}
	r.list = append(r.list, scopeStamp{scope, r.st.Stamp(scope)})
}

func (r *reads) addRepository(repo analysis.Repository) { r.add(store.RepositoryScope(repo)) }

// current reports whether every scope still has the recorded stamp.
func current(st *store.Store, deps []scopeStamp) bool {
	for _, d := range deps {
		if st.Stamp(d.scope) != d.stamp {
			return false
		}
	}
	return true
}

// answer turns the digest-level report of digest into the answer for ref
// (kept, and shared by every read of it): a copy with the reference, the
// tags now sharing the digest, the parents as they stand, and when the tag
// was checked. A kept answer is reused while its digest and check time are
// the caller's and its scopes' stamps are unchanged: a read of a kept answer
// allocates nothing here. A new one takes the stamps before reading
// anything; a tag that moved between the caller's read of it and these
// stamps is caught by the digest on the next read.
func (s *Service) answer(ctx context.Context, ref analysis.Reference, digest string, checked time.Time) (Answer, error) {
	checked = checked.UTC().Truncate(time.Second)
	key, kept := ref, checked
	if ref.Digest != "" {
		// A digest is not checked: the time shown is the read's own.
		kept = time.Time{}
	}
	if e, ok := s.answers.Get(key); ok && e.digest == digest && e.checked.Equal(kept) && current(s.store, e.deps) {
		return e.at(checked), nil
	}
	// Reads that find the kept answer out of date make the new one once:
	// while a listing records a candidate parent's tags one by one, every
	// badge view would otherwise rebuild the answer for itself.
	v, err, _ := s.flight.Do("answer\x00"+key.String()+"\x00"+digest+"\x00"+kept.String(), func() (any, error) {
		return s.newAnswer(context.WithoutCancel(ctx), ref, key, digest, checked, kept)
	})
	if err != nil {
		return Answer{}, err
	}
	return v.(answerEntry).at(checked), nil
}

// at is the entry's answer to a read at checked: the kept report when it
// was made at that time, else (a digest's answer, which carries the read's
// own time) a shallow copy, the rest shared.
func (e answerEntry) at(checked time.Time) Answer {
	if e.rep.CheckedAt.Equal(checked) {
		return Answer{Report: e.rep, Version: e.full}
	}
	c := *e.rep
	c.CheckedAt = checked
	return Answer{Report: &c, Version: e.version + "/" + strconv.FormatInt(checked.Unix(), 10)}
}

// newAnswer makes and keeps the answer that answer found missing or out
// of date.
func (s *Service) newAnswer(ctx context.Context, ref, key analysis.Reference, digest string, checked, kept time.Time) (answerEntry, error) {
	deps := newReads(s.store)
	deps.addRepository(ref.Repository)
	shared, err := s.report(ctx, ref.Repository, digest)
	if err != nil {
		return answerEntry{}, err
	}
	rep := shared.Clone()
	rep.Reference, rep.Tag = ref.String(), ref.Tag
	if rep.Tags, err = s.store.TagsAt(ctx, ref.Repository, rep.Digest); err != nil {
		return answerEntry{}, err
	}
	analysis.SortTags(rep.Tags)
	if rep.RepositoryInfo, err = s.repositoryInfo(ctx, ref.Repository); err != nil {
		return answerEntry{}, err
	}
	if _, err := s.attachParents(ctx, ref.Repository, rep, deps); err != nil {
		return answerEntry{}, err
	}
	if err := s.attachSupply(ctx, ref.Repository, rep); err != nil {
		return answerEntry{}, err
	}
	rep.CheckedAt = checked
	e := answerEntry{digest: digest, checked: kept, deps: deps.list, version: versionOf(digest, kept, deps.list), rep: rep}
	e.full = e.version + "/" + strconv.FormatInt(checked.Unix(), 10)
	s.answers.Add(key, e, reportCost(rep)+int64(len(e.version)+len(e.full)))
	return e, nil
}

// versionOf names an answer by what it was made from.
func versionOf(digest string, checked time.Time, deps []scopeStamp) string {
	h := fnv.New64a()
	for _, d := range deps {
		h.Write([]byte(d.scope))
		h.Write([]byte{0})
		h.Write(strconv.AppendUint(nil, uint64(d.stamp), 10))
		h.Write([]byte{0})
	}
	return digest + "/" + strconv.FormatInt(checked.Unix(), 10) + "/" + strconv.FormatUint(h.Sum64(), 36)
}

func reportKey(repo analysis.Repository, digest string) string {
	return repo.WithDigest(digest).String()
}

// Report returns the digest-level report of the image digest in repo (see
// analysis.NewReport): its platforms, layers and metadata, without parents
// or tags, from the store (content the store lacks is fetched and stored).
// It is what a change's notification describes the images by. The result
// is shared: clone it before changing it.
func (s *Service) Report(ctx context.Context, repo analysis.Repository, digest string) (*analysis.Report, error) {
	return s.report(ctx, repo, digest)
}

// report is Report, for a read.
func (s *Service) report(ctx context.Context, repo analysis.Repository, digest string) (*analysis.Report, error) {
	return s.reportVia(ctx, repo, digest, false)
}

// reportVia is report kept in memory, its content fetched (when the store
// lacks it) as a background poll's when polling is set.
func (s *Service) reportVia(ctx context.Context, repo analysis.Repository, digest string, polling bool) (*analysis.Report, error) {
	key := reportKey(repo, digest)
	if rep, ok := s.reports.Get(key); ok {
		return rep, nil
	}
	// Tags that share a digest are resolved concurrently; build it once.
	v, err, _ := s.flight.Do("report\x00"+key, func() (any, error) {
		if rep, ok := s.reports.Get(key); ok {
			return rep, nil
		}
		_, inspector := s.reader(polling)
		rep, err := inspector.Report(context.WithoutCancel(ctx), repo, digest)
		if err != nil {
			return nil, err
		}
		s.reports.Add(key, rep, reportCost(rep))
		return rep, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*analysis.Report), nil
}

// Platforms returns the platform images of each of repo's images named by
// digests, for showing sizes next to a tag listing. An image whose report
// cannot be built is left out rather than failing the whole page. The
// platforms are shared with the cache: callers must not change them. A
// repository viewer may not see has none.
func (s *Service) Platforms(ctx context.Context, viewer auth.Viewer, repo analysis.Repository, digests []string) map[string][]analysis.Platform {
	out := make(map[string][]analysis.Platform, len(digests))
	if !s.shown(ctx, viewer, repo) {
		return out
	}
	for _, d := range digests {
		if ctx.Err() != nil {
			break
		}
		rep, err := s.report(ctx, repo, d)
		if err != nil {
			continue
		}
		out[d] = rep.Platforms
	}
	return out
}
