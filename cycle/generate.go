package cycle

import (
	"context"
	"fmt"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// generate sends the pending scenes to Stash in batches, oldest first, each
// verified before the next.
func (p *pass) generate(ctx context.Context) error {
	counts, err := p.Store.PendingCounts(ctx)
	if err != nil {
		return err
	}
	p.counts = &counts
	if counts.Pending == 0 {
		p.outcome = db.OutcomeNothingToDo
		if counts.Backoff+counts.Quarantined == 0 {
			p.log.Info("All scenes have generated attribute set")
		} else {
			p.log.Info("No scene is due for generation", "backing_off", counts.Backoff, "quarantined", counts.Quarantined,
				"hint", "backing-off scenes are retried later; quarantined ones only after `stashgen check --full` finds them complete or `stashgen reset ID...`")
		}
		return nil
	}
	p.followed, p.recount = true, true
	p.log.Info(fmt.Sprintf("Found %d scenes with generated=false", counts.Pending),
		"pending", counts.Pending, "backing_off", counts.Backoff, "quarantined", counts.Quarantined)
	t, err := p.wanted(ctx)
	if err != nil {
		return err
	}
	sent := map[int64]bool{}
	for batch := 1; ; batch++ {
		ids, err := p.Store.PendingScenes(ctx, p.set.BatchSize)
		if err != nil {
			return err
		}
		ids = without(ids, sent)
		if len(ids) == 0 {
			break
		}
		// The fence again before every batch: the window may have closed
		// (or the disk filled) during the sync and the check, and no batch
		// starts outside it. Before the first the run has sent nothing and
		// stands aside; after it, it keeps what it did.
		if batch == 1 {
			if err := p.fenceStop(fenceAtStart); err != nil {
				return err
			}
		} else {
			if err := p.fenceBetween(); err != nil {
				return err
			}
			if err := p.queueWaiting(ctx); err != nil {
				return err
			}
		}
		for _, id := range ids {
			sent[id] = true
		}
		if err := p.runBatch(ctx, t, ids, batch); err != nil {
			return err
		}
	}
	p.outcome = db.OutcomeGenerated
	return nil
}

func without(ids []int64, drop map[int64]bool) []int64 {
	out := ids[:0]
	for _, id := range ids {
		if !drop[id] {
			out = append(out, id)
		}
	}
	return out
}

// knownOnly splits ids into those Stash still has and those it deleted. One
// unknown id makes Stash's whole job do nothing, and an empty list means
// the whole library: filter right before sending. paths are the known
// scenes' video files, by scene: what Stash's log lines name.
func (p *pass) knownOnly(ctx context.Context, ids []int64) (keep, unknown []int64, paths map[int64][]string, err error) {
	known, err := p.Stash.KnownScenes(ctx, idStrings(ids))
	if err != nil {
		return nil, nil, nil, err
	}
	paths = map[int64][]string{}
	for _, id := range ids {
		if files, ok := known[itoa(id)]; ok {
			keep = append(keep, id)
			paths[id] = files
		} else {
			unknown = append(unknown, id)
		}
	}
	return keep, unknown, paths, nil
}

// runBatch filters the batch against what Stash has, launches it, follows
// it to its end and verifies its scenes.
func (p *pass) runBatch(ctx context.Context, t stash.Toggles, ids []int64, batch int) error {
	p.run.SetPhase(PhaseGenerate)
	keep, unknown, paths, err := p.knownOnly(ctx, ids)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		p.log.Info("stash no longer has these scenes; forgot them", KeySceneCount, len(unknown), "scene_ids", head(unknown, 10))
		if err := p.Store.DeleteScenes(ctx, unknown); err != nil {
			return err
		}
	}
	if len(keep) == 0 {
		return nil
	}
	p.listen(ctx) // before the job exists: its first log lines are heard too
	j, err := p.launch(ctx, stash.GenerateInput{Toggles: t, SceneIDs: idStrings(keep)}, keep, batch)
	if err != nil {
		return err
	}
	j.paths = paths
	return p.follow(ctx, j)
}

// launch records the job in the ledger, then asks Stash for it. When the
// answer is lost the job may still exist: a timed-out request is followed
// if its job is in the queue, and one cut by a signal is stopped.
func (p *pass) launch(ctx context.Context, in stash.GenerateInput, ids []int64, batch int) (*tracked, error) {
	ledgerID, err := p.Store.LaunchJob(ctx, p.run.ID, ids, fmt.Sprintf("batch %d of run %d: %d scenes", batch, p.run.ID, len(ids)))
	if err != nil {
		return nil, err
	}
	j := &tracked{ledgerID: ledgerID, scenes: ids, log: p.log.With(KeyJobID, ledgerID)}
	launch, err := p.Stash.Generate(ctx, in)
	if err != nil && ctx.Err() != nil {
		// Interrupted while Stash was answering: the job may exist. The
		// queue was empty when we launched, so a generate job in it now is
		// ours: stop it.
		if sj, ok := p.queuedGenerate(context.WithoutCancel(ctx)); ok {
			j.stashID = sj.ID
			return nil, p.interruptJob(ctx, j)
		}
	}
	// When Stash queued the job, so that a later run can tell this job
	// from one that got the same id after a restart, even if this process
	// dies before its first poll: the Date of Stash's own answer, or the
	// addTime of the job found in the queue when the answer was lost.
	addedAt := launch.Date
	if err != nil {
		sj, ferr := p.afterFailedLaunch(ctx, err)
		if ferr != nil {
			return nil, p.closeUnlaunched(ctx, j, ferr)
		}
		launch.JobID, addedAt = sj.ID, sj.AddTime
	}
	j.stashID = launch.JobID
	if err := p.Store.SetStashJobID(ctx, ledgerID, j.stashID); err != nil {
		j.log.Warn("store stash job id failed", "error", err)
	}
	if !addedAt.IsZero() {
		if err := p.Store.SetStashAddedAt(ctx, ledgerID, addedAt); err != nil {
			j.log.Warn("store stash job add time failed", "error", err)
		}
	}
	j.log = j.log.With(KeyStashJobID, j.stashID)
	j.log.Info(fmt.Sprintf("Started generation job %s for %d scenes", j.stashID, len(ids)), KeySceneCount, len(ids))
	return j, nil
}

// afterFailedLaunch handles a metadataGenerate that returned an error. A
// timed-out request may still have queued the job, so look at the queue
// before anything else and follow the job if it is there.
func (p *pass) afterFailedLaunch(ctx context.Context, launchErr error) (stash.Job, error) {
	if ctx.Err() != nil || !stash.IsKind(launchErr, stash.KindUnavailable) {
		return stash.Job{}, launchErr
	}
	if j, ok := p.queuedGenerate(ctx); ok {
		p.log.Warn("metadataGenerate failed, but a generate job is queued; following it", KeyStashJobID, j.ID, "error", launchErr)
		return j, nil
	}
	return stash.Job{}, launchErr
}

// queuedGenerate finds a generate job in Stash's queue.
func (p *pass) queuedGenerate(ctx context.Context) (stash.Job, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	jobs, err := p.Stash.JobQueue(ctx)
	if err != nil {
		return stash.Job{}, false
	}
	for _, j := range jobs {
		if j.Description == stash.DescGenerating {
			return j, true
		}
	}
	return stash.Job{}, false
}

// closeUnlaunched closes the ledger job of a launch that failed, and
// returns the failure.
func (p *pass) closeUnlaunched(ctx context.Context, j *tracked, err error) error {
	res := Failure(ctx, err)
	to, action := db.JobFailed, db.ActionFailed
	if res.Outcome == db.OutcomeInterrupted {
		to, action = db.JobCancelled, db.ActionCancelled
	}
	wctx, cancel := p.cleanup(ctx)
	defer cancel()
	if terr := p.Store.TransitionJob(wctx, j.ledgerID, []db.JobStatus{db.JobRunning}, to, action, "metadataGenerate failed", err.Error()); terr != nil {
		j.log.Warn("close ledger job failed", "error", terr)
	}
	return err
}
