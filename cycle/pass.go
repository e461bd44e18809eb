package cycle

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// pass is one run of `once` or `check`: what it learns and decides, step
// by step. Its steps are its methods; each returns an error, and a decision
// to end the run early is a *stop. One place, result, turns what the pass
// accumulated into the audit row.
type pass struct {
	*Runner
	run *Run
	log *slog.Logger
	set Settings

	// toggles are the effective generate toggles, resolved once;
	// fromStash are Stash's generate defaults when the busy check read
	// them with the queue.
	toggles   stash.Toggles
	fromStash *stash.Toggles
	// cursors are the sync_state rows, read once.
	cursors map[string]string
	// missed counts the resource kinds found missing, most first in a
	// quiet probe; nil until the first quiet probe reads the stored ones.
	missed map[stash.Resource]int
	// probes and notFound count the file requests this run sent to Stash
	// and the 404s among them: each is a line in Stash's log.
	probes, notFound atomic.Int64
	// lis hears Stash's events and the ledger's scans while the run
	// follows its jobs; nil until the first, and when the run only polls.
	lis *listener
	// progressAt is when the ledger last got the job's progress.
	progressAt time.Time

	// ledger is the active ledger as reconcile read it; fresh says it
	// still holds (reconcile changed nothing in it).
	ledger      []db.Job
	ledgerFresh bool
	// reconciled: a dead run's job was adopted or closed.
	reconciled bool

	// outcome is where the steps got to when none of them ended the run.
	outcome db.Outcome
	// followed: the run followed (or closed) at least one Stash job, so
	// generated counts.
	followed  bool
	generated int    // scenes verified complete by this run's jobs
	lastJob   string // the last Stash job launched or adopted
	// counts are the not-generated scenes by state; recount says they may
	// have changed since they were read.
	counts  *db.Counts
	recount bool
}

func (r *Runner) newPass(run *Run) *pass {
	return &pass{Runner: r, run: run, log: run.Log, set: r.settings()}
}

// Once is the body of `stashgen once`: reconcile what an earlier run left
// behind, stand aside if anything is busy, sync and check, then generate
// what is still pending, batch by batch.
func (r *Runner) Once(ctx context.Context, run *Run) Result {
	p := r.newPass(run)
	defer p.stopListening()
	return p.result(ctx, p.do(ctx, p.reconcile, p.fence, p.busyCheck, p.noteWanted, p.sync, p.check, p.generate))
}

// do runs the steps in order until one returns an error.
func (p *pass) do(ctx context.Context, steps ...func(context.Context) error) error {
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// result is the audit row of the pass: the outcome its steps reached, or
// the one err decided, with what it did on the way.
func (p *pass) result(ctx context.Context, err error) Result {
	res := resultOf(ctx, p.outcome, err)
	if p.reconciled && res.Outcome == db.OutcomeNothingToDo {
		res.Outcome = db.OutcomeAdopted
	}
	if p.followed {
		n := p.generated
		res.Generated = &n
		listened := p.lis != nil && p.lis.heard.Load()
		res.Listening = &listened
	}
	res.StashJobID = p.lastJob
	if p.recount {
		cctx, cancel := p.cleanup(ctx)
		if c, err := p.Store.PendingCounts(cctx); err == nil {
			p.counts = &c
		}
		cancel()
	}
	res.Counts = p.counts
	return res
}

// followedJob adds what following one Stash job achieved to the run.
func (p *pass) followedJob(stashID string, complete int) {
	p.followed = true
	p.generated += complete
	if stashID != "" {
		p.lastJob = stashID
	}
}

// wanted resolves the effective toggles once per run (asking Stash only
// when the config leaves a key out) and logs them.
func (p *pass) wanted(ctx context.Context) (stash.Toggles, error) {
	if p.toggles.Complete() { // resolved already: ResolveToggles sets every toggle
		return p.toggles, nil
	}
	cfg := p.set.Toggles
	var fromStash stash.Toggles
	switch {
	case cfg.Complete():
	case p.fromStash != nil:
		fromStash = *p.fromStash
	default:
		d, err := p.Stash.GenerateDefaults(ctx)
		if err != nil {
			return stash.Toggles{}, err
		}
		fromStash = d
	}
	t := stash.ResolveToggles(cfg, fromStash)
	var attrs []any
	for _, x := range t.List() {
		attrs = append(attrs, x.Name, *x.Value)
	}
	p.log.Info("generate toggles", attrs...)
	if t.WebpWithoutPreview() {
		p.log.Warn("image_previews is on but previews is off: Stash builds the webp only together with the video preview, so none will be made")
	}
	p.toggles = t
	return t, nil
}

// cleanup is a context for a write that must happen even after a signal,
// bounded so that nothing can hang on it.
func (p *pass) cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), p.set.CleanupTimeout)
}

// elapsed is a duration for a log line.
func elapsed(since time.Time) string { return time.Since(since).Round(time.Millisecond).String() }
