package notify

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
	"github.com/imagebadger/imagebadger/tagfilter"
)

// FanOutOptions configures a FanOut. Store, Images and Builder are
// required; other zero fields mean the defaults named on them.
type FanOutOptions struct {
	Store *store.Store
	// Images describes the changes (the reports of their images) and says
	// which known images a change set makes outdated.
	Images  *images.Service
	Builder *Builder
	// Wake is called once deliveries are queued: the delivery worker's
	// Wake, so they are sent without waiting for its poll.
	Wake   func()
	Logger *slog.Logger
	Now    func() time.Time
	// Lease is how long the fan-out stays reserved to this process without
	// a word from it (default DefaultFanOutLease): a process that dies
	// holding it delays the others by at most this.
	Lease time.Duration
	// CatchUp is how often the log is looked at without being woken
	// (default DefaultCatchUp): for a lease left by a dead process, and a
	// wake-up lost with a database connection.
	CatchUp time.Duration
}

// Defaults of FanOutOptions.
const (
	DefaultFanOutLease = 15 * time.Second
	DefaultCatchUp     = 2 * time.Second
)

// stepDeliveries bounds the deliveries one transaction of the fan-out
// writes, so a change heard by many (a base with thousands of children's
// subscribers) holds no transaction for long, and a successor goes on from
// the last step should this process die; subscriberPage is how many
// subscriptions are read at once.
const (
	stepDeliveries = 250
	subscriberPage = 500
)

func (o FanOutOptions) withDefaults() FanOutOptions {
	if o.Wake == nil {
		o.Wake = func() {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lease <= 0 {
		o.Lease = DefaultFanOutLease
	}
	if o.CatchUp <= 0 {
		o.CatchUp = DefaultCatchUp
	}
	return o
}

// FanOut turns the change log into deliveries (docs/DESIGN.md, "Change").
// Recording a move writes the tag and its change, nothing more; the
// fan-out, holding the one lease on the log's cursor among every process
// sharing the database, reads the changes in order, works out their events
// (image.updated, base.updated for the children of a moved base,
// version.released, tag.deleted), judges every subscription that may hear
// each one (its tag filters, the release rule, coalescing), and writes the
// deliveries with its new place in the log, in steps of one transaction.
// Nothing is lost nor sent twice if a process dies between two steps: the
// place moves only with the deliveries it covers.
type FanOut struct {
	o     FanOutOptions
	owner string
	kick  chan struct{}
	// set holds the events of the change set being fanned out, made once
	// however many steps it takes.
	set struct {
		id     int64
		events []event
	}
}

// event is one event of a change set and who may hear it.
type event struct {
	store.OutboxEvent
	audience audience
	// tags are, for an event about no one tag (a repository-wide
	// base.updated), the tags it concerns: a filtered subscription hears it
	// when it follows one of them.
	tags []string
	// coalesceKey names what the event is about (its type and image) for
	// subscriptions that coalesce; empty for events sent as they come.
	coalesceKey string
	// release marks a version.released candidate: it reaches a
	// subscription only if its tag is higher than every version tag the
	// repository had, as the subscription's filters count them.
	release bool
}

// audience is who among the subscriptions of an event's repository hears it.
type audience int

const (
	// audienceAll: subscriptions to the event's tag and repository-wide ones.
	audienceAll audience = iota
	// audienceTag: only subscriptions to the event's tag.
	audienceTag
	// audienceRepository: only repository-wide subscriptions.
	audienceRepository
)

// NewFanOut returns a FanOut, woken whenever the store logs changes (this
// process's or, on PostgreSQL, another's); call Run to start it.
func NewFanOut(o FanOutOptions) *FanOut {
	f := &FanOut{o: o.withDefaults(), owner: newID("fan_"), kick: make(chan struct{}, 1)}
	o.Store.OnChangeLogged(f.Kick)
	return f
}

// Owner names this fan-out's lease, for the log.
func (f *FanOut) Owner() string { return f.owner }

// Kick makes a running fan-out look at the log now. It never blocks.
func (f *FanOut) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run fans out what the log holds, at once, whenever kicked and every
// CatchUp, until ctx is cancelled; it then gives its lease up, so that
// another process (or this one, restarted) goes on at once.
func (f *FanOut) Run(ctx context.Context) error {
	t := time.NewTicker(f.o.CatchUp)
	defer t.Stop()
	for {
		if err := f.Drain(ctx); err != nil && ctx.Err() == nil {
			f.o.Logger.Error("fan-out", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.kick:
		case <-t.C:
		}
	}
}

// Drain fans out every change logged so far, unless another process holds
// the lease (it is fanning them out). It returns once the log is done, or
// on an error; what was written stays written.
func (f *FanOut) Drain(ctx context.Context) error {
	if behind, err := f.o.Store.FanOutBehind(ctx); err != nil || !behind {
		return err
	}
	cur, err := f.o.Store.ClaimFanOut(ctx, f.owner, f.o.Now(), f.o.Lease)
	if errors.Is(err, store.ErrFanOutHeld) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := f.o.Store.ReleaseFanOut(rctx, f.owner); err != nil {
			f.o.Logger.Warn("fan-out: release", "err", err)
		}
	}()
	stop := f.renewing(ctx, cancel)
	defer stop()
	for {
		set, err := f.o.Store.NextChangeSet(ctx, cur.Position)
		if err != nil || len(set) == 0 {
			return err
		}
		if cur, err = f.fanOutSet(ctx, cur, set); err != nil {
			if errors.Is(err, store.ErrFanOutLost) || (errors.Is(err, context.Canceled) && ctx.Err() != nil) {
				// Another process took over (this one stalled past its
				// lease): what it writes counts.
				f.set.id, f.set.events = 0, nil
				return nil
			}
			return err
		}
	}
}

// renewing renews the lease every third of it while a drain runs, so that
// working out a large set's events does not let it lapse; should the lease
// be lost, the drain is cancelled. stop ends it.
func (f *FanOut) renewing(ctx context.Context, lost func()) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(f.o.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_, err := f.o.Store.ClaimFanOut(ctx, f.owner, f.o.Now(), f.o.Lease)
			switch {
			case errors.Is(err, store.ErrFanOutHeld):
				f.o.Logger.Warn("fan-out: lease lost to another process")
				lost()
				return
			case err != nil && ctx.Err() == nil:
				f.o.Logger.Warn("fan-out: renew lease", "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// fanOutSet writes the deliveries of one change set, from cur (the start
// of the set, or where a step of it ended), and returns the cursor after
// the set.
func (f *FanOut) fanOutSet(ctx context.Context, cur store.FanOutCursor, set []store.TagChange) (store.FanOutCursor, error) {
	events, err := f.eventsOf(ctx, set)
	if err != nil {
		return cur, err
	}
	repo := analysis.Repository{Registry: set[0].Registry, Name: set[0].Repository}
	last := set[len(set)-1].ID
	end := store.FanOutCursor{Position: last}
	if cur, err = f.tell(ctx, cur, end, repo, set[0].ID, last, events); err != nil {
		return cur, err
	}
	f.set.id, f.set.events = 0, nil
	return end, nil
}

// tell judges every subscription that may hear each of events (those of a
// change set of repo, logged from change first to upTo) and writes the
// deliveries in steps, the first from cur, the last moving the cursor to
// end; it returns the cursor where the last step left it. An event is heard
// by the subscriptions of its own image's repository: a base.updated by
// those of the child.
func (f *FanOut) tell(ctx context.Context, cur, end store.FanOutCursor, repo analysis.Repository, first, upTo int64, events []event) (store.FanOutCursor, error) {
	// Where a step of this set ended: the events before that one are done.
	// An event no longer made (what the store knows changed meanwhile) is
	// judged again from the start, which queues nothing twice (see
	// store.CommitFanOut).
	start, after := 0, ""
	if cur.EventKey != "" {
		for i, e := range events {
			if e.Key == cur.EventKey {
				start, after = i, cur.SubscriptionID
				break
			}
		}
	}
	j := judge{log: f.o.Logger, filters: map[store.TagFilter]*tagfilter.Filter{}, tags: func() ([]string, error) {
		return f.o.Store.TagsUpTo(ctx, repo, upTo)
	}}
	w := stepWriter{f: f, ctx: ctx, step: store.FanOutStep{Owner: f.owner, From: cur}}
	for i := start; i < len(events); i++ {
		e := &events[i]
		from := ""
		if i == start {
			from = after
		}
		q := store.SubscriberQuery{Repo: analysis.Repository{Registry: e.Registry, Name: e.Repository}, Type: e.Type, Tag: e.Tag,
			Change: first, Limit: subscriberPage,
			Tagged: e.audience != audienceRepository, RepositoryWide: e.audience != audienceTag}
		for q.After = from; ; {
			subs, err := f.o.Store.Subscribers(ctx, q)
			if err != nil {
				return w.step.From, err
			}
			for _, sub := range subs {
				q.After = sub.ID
				d, ok, err := j.delivery(sub, e)
				if err != nil {
					return w.step.From, err
				}
				if !ok {
					continue
				}
				if err := w.add(e, d, store.FanOutCursor{Position: cur.Position, EventKey: e.Key, SubscriptionID: sub.ID}); err != nil {
					return w.step.From, err
				}
			}
			if len(subs) < subscriberPage {
				break
			}
		}
	}
	if err := w.commit(end); err != nil {
		return w.step.From, err
	}
	return end, nil
}

// stepWriter gathers one step's events and deliveries and commits them.
type stepWriter struct {
	f    *FanOut
	ctx  context.Context
	step store.FanOutStep
	// queued counts the set's deliveries queued by earlier steps.
	queued int
	kept   map[string]bool
}

// add adds the delivery d of e; once the step holds stepDeliveries, it is
// committed with the cursor at, the pair just judged.
func (w *stepWriter) add(e *event, d store.EventDelivery, at store.FanOutCursor) error {
	if !w.kept[e.Key] {
		if w.kept == nil {
			w.kept = map[string]bool{}
		}
		w.kept[e.Key] = true
		w.step.Events = append(w.step.Events, e.OutboxEvent)
	}
	w.step.Deliveries = append(w.step.Deliveries, d)
	if len(w.step.Deliveries) < stepDeliveries {
		return nil
	}
	return w.commit(at)
}

// commit writes the step with the cursor moved to to, and starts the next.
func (w *stepWriter) commit(to store.FanOutCursor) error {
	w.step.To, w.step.Now, w.step.Lease, w.step.Queued = to, w.f.o.Now(), w.f.o.Lease, w.queued
	n, err := w.f.o.Store.CommitFanOut(w.ctx, w.step)
	if err != nil {
		return err
	}
	if n > 0 {
		w.f.o.Wake()
	}
	w.queued += n
	w.step = store.FanOutStep{Owner: w.step.Owner, From: to}
	w.kept = nil
	return nil
}

// judge decides which subscriptions hear an event.
type judge struct {
	log     *slog.Logger
	filters map[store.TagFilter]*tagfilter.Filter
	// tags are the set's repository's tags up to the set, read once for
	// release candidates (which are about that repository).
	tags     func() ([]string, error)
	tagsRead []string
	tagsDone bool
}

// delivery says whether sub hears e, and how: a subscription whose tag
// filters follow e's tag (for a repository-wide base.updated, one of its
// tags), or for a release candidate to which it is a release; coalesced,
// held for the subscription's window, when it coalesces and e has a key.
func (j *judge) delivery(sub store.Subscriber, e *event) (store.EventDelivery, bool, error) {
	flt := j.filter(sub)
	if flt == nil {
		return store.EventDelivery{}, false, nil
	}
	if e.release {
		if !j.tagsDone {
			tags, err := j.tags()
			if err != nil {
				return store.EventDelivery{}, false, err
			}
			j.tagsRead, j.tagsDone = tags, true
		}
		if !flt.Releases(e.Tag, j.tagsRead) {
			return store.EventDelivery{}, false, nil
		}
	} else if !follows(flt, e) {
		return store.EventDelivery{}, false, nil
	}
	d := store.EventDelivery{SubscriptionID: sub.ID, EventKey: e.Key, Type: e.Type, At: e.At}
	if sub.Coalesce > 0 && e.coalesceKey != "" {
		d.CoalesceKey, d.HoldUntil = e.coalesceKey, e.At.Add(sub.Coalesce)
	}
	return d, true, nil
}

// filter is sub's tag filter, parsed once a set; nil for one that no longer
// parses (it was checked when the subscription was made), which hears
// nothing and is logged.
func (j *judge) filter(sub store.Subscriber) *tagfilter.Filter {
	if f, ok := j.filters[sub.Tags]; ok {
		return f
	}
	f, err := tagfilter.Parse(tagfilter.Spec(sub.Tags))
	if err != nil {
		j.log.Error("fan-out: a stored tag filter does not parse; its subscription hears nothing", "subscription", sub.ID, "err", err)
		f = nil
	}
	j.filters[sub.Tags] = f
	return f
}

// follows reports whether a subscription filtered by f hears e: its tag,
// or for an event about no one tag one of its tags, is followed.
func follows(f *tagfilter.Filter, e *event) bool {
	if e.Tag != "" {
		return f.Follows(e.Tag)
	}
	if len(e.tags) == 0 {
		return f.Spec().IsZero()
	}
	for _, t := range e.tags {
		if f.Follows(t) {
			return true
		}
	}
	return false
}

// eventsOf works out the events of a change set, once per set: for each
// creation or move, its image.updated (and version.released); for each
// deletion, its tag.deleted; and for the moves, the base.updated of every
// known image they make outdated, told with the first move whose platforms
// changed (a set is one image's tags moved together, so they share it).
func (f *FanOut) eventsOf(ctx context.Context, set []store.TagChange) ([]event, error) {
	id := set[0].Set
	if f.set.events != nil && f.set.id == id {
		return f.set.events, nil
	}
	outdated, err := f.o.Images.OutdatedBy(ctx, set)
	if err != nil {
		return nil, err
	}
	var events []event
	for _, c := range set {
		if c.Kind == store.ChangeDeleted {
			ev, err := f.o.Builder.deletionEvent(id, c)
			if err != nil {
				return nil, err
			}
			events = append(events, ev)
			continue
		}
		d, err := describeChange(ctx, f.o.Images, c)
		if errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		if err != nil {
			// The new image's content is stored before its move is
			// recorded; should it be unreadable all the same, the move
			// cannot be told, and the rest of the log must go on.
			f.o.Logger.Error("fan-out: a change cannot be described; it is not told", "change", c.ID, "err", err)
			continue
		}
		var told []images.OutdatedImage
		if outdated != nil && (d.PlatformsChanged || len(set) == 1) {
			told, outdated = outdated, nil
		}
		evs, err := f.o.Builder.events(id, d, told)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	f.set.id, f.set.events = id, events
	return events, nil
}
