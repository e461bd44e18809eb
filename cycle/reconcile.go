package cycle

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// adoptWindow is how far Stash's addTime may be from the ledger's launch
// time when the ledger never saw the addTime itself (the process died
// before its first poll): it allows for clock skew between the hosts.
const adoptWindow = 10 * time.Minute

// addTimeSlack is how far Stash's addTime may be from the time stashgen
// recorded from Stash's clock: the Date header has one-second precision.
const addTimeSlack = 5 * time.Second

// reconcile deals with what a killed run left behind. It runs with both
// locks held, so no other run is in its cycle: a run row still marked
// running that is old enough and whose process is gone (same host) or
// whose heartbeat is older than 3 × heartbeat_interval is dead. Its ledger
// jobs are then reconciled with Stash: still queued or running → adopted
// and followed to the end; ended → closed from Stash's status; unknown →
// closed as lost. Either way its scenes are verified, and the run carries
// on. reconciled reports whether anything was found.
func (r *Runner) reconcile(ctx context.Context, run *Run) (reconciled bool, ledger []db.Job, adopted batchResult, res Result, stop bool) {
	set := r.settings()
	stale := 3 * set.HeartbeatInterval
	runs, err := r.Store.RunningRuns(ctx, run.ID)
	if err != nil {
		return false, nil, adopted, failure(ctx, err), true
	}
	var now time.Time
	if len(runs) > 0 { // ages by the database's clock, which wrote them
		if now, err = r.Store.Now(ctx); err != nil {
			return false, nil, adopted, failure(ctx, err), true
		}
	}
	for _, old := range runs {
		// Dead: its process is gone from this host, or it is old enough
		// to have beaten and its heartbeat is stale (another host, or a
		// pid reused by an unrelated process). The age guard spares runs
		// that just started and are about to stand aside.
		gone := old.Host == r.Host && !processAlive(old.PID)
		beatFresh := run.prevBeat != nil && run.prevBeat.RunID == old.ID && now.Sub(run.prevBeat.BeatAt) < stale
		if !gone && (now.Sub(old.StartedAt) < stale || beatFresh) {
			continue
		}
		why := fmt.Sprintf("process gone: pid %d on %s, no heartbeat within %s", old.PID, old.Host, stale)
		run.Log.Warn("an earlier run died; marking it abandoned", "dead_run_id", old.ID, "reason", why)
		if err := r.Store.AbandonRun(ctx, old.ID, why); err != nil {
			return false, nil, adopted, failure(ctx, err), true
		}
	}

	jobs, err := r.Store.ActiveJobs(ctx)
	if err != nil {
		return false, nil, adopted, failure(ctx, err), true
	}
	for _, j := range jobs {
		if j.CreatedBy != db.CreatedBy || j.Type != db.TypeGenerate {
			continue
		}
		if j.RunID != nil {
			if *j.RunID == run.ID {
				continue
			}
			owner, err := r.Store.GetRun(ctx, *j.RunID)
			if err != nil && !errors.Is(err, db.ErrNotFound) {
				return false, nil, adopted, failure(ctx, err), true
			}
			if err == nil && owner.Outcome == db.OutcomeRunning {
				continue // its run may be alive: the busy check stands aside
			}
		}
		reconciled = true
		out := r.adopt(ctx, run, j)
		adopted.generated += out.generated
		if out.stashJobID != "" {
			adopted.stashJobID = out.stashJobID
		}
		if out.res != nil && (out.res.Outcome == db.OutcomeInterrupted || out.res.Outcome == db.OutcomeError) {
			return reconciled, nil, adopted, *out.res, true
		}
	}
	if jobs == nil {
		jobs = []db.Job{} // read, and empty: nothing for the busy check to re-read
	}
	return reconciled, jobs, adopted, Result{}, false
}

// processAlive reports whether a process with this pid exists on this host.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// adopt reconciles one orphaned ledger job with Stash.
func (r *Runner) adopt(ctx context.Context, run *Run, j db.Job) batchResult {
	log := run.Log.With(KeyJobID, j.ID, KeyStashJobID, j.StashJobID)
	stashID := j.StashJobID
	if stashID == "" {
		// Died between recording the launch and storing Stash's answer:
		// the job may or may not exist.
		queue, err := r.Stash.JobQueue(ctx)
		if err != nil {
			return stopWith(failure(ctx, err))
		}
		for _, sj := range queue {
			if r.ours(j, sj) {
				stashID = sj.ID
				break
			}
		}
	}
	var sj stash.Job
	var err error
	if stashID != "" {
		sj, err = r.Stash.FindJob(ctx, stashID)
	} else {
		err = stash.ErrJobNotFound
	}
	switch {
	case errors.Is(err, stash.ErrJobNotFound):
		log.Warn("an orphaned generation job is unknown to stash; closing it as lost")
		return r.settle(ctx, run, log, j.ID, stashID, j.SceneIDs, monitorEnd{vanished: true, unseen: true})
	case err != nil:
		return stopWith(failure(ctx, err))
	case !r.ours(j, sj):
		// Stash restarted: its job ids start again at 1.
		log.Warn("stash job with that id is not ours (stash restarted?); closing the orphan as lost",
			"stash_description", sj.Description, "stash_added", sj.AddTime)
		return r.settle(ctx, run, log, j.ID, stashID, j.SceneIDs, monitorEnd{vanished: true, unseen: true,
			lost: fmt.Sprintf("lost: stash job %s is now a different job (%s, added %s): stash restarted since ours was launched, and its job ids start again at 1",
				stashID, sj.Description, sj.AddTime.UTC().Format(time.RFC3339))})
	}
	if stashID != j.StashJobID {
		if err := r.Store.SetStashJobID(ctx, j.ID, stashID); err != nil {
			log.Warn("store stash job id failed", "error", err)
		}
	}
	stopSent := j.Status == db.JobCancelling
	if sj.Status.Ended() {
		log.Info("an orphaned generation job ended while no run followed it; closing it", "status", sj.Status)
		out := r.settle(ctx, run, log, j.ID, stashID, j.SceneIDs, monitorEnd{job: sj, stopSent: stopSent})
		out.stashJobID = stashID
		return out
	}
	if err := r.Store.AdoptJob(ctx, j.ID, run.ID, fmt.Sprintf("run %d adopted stash job %s (%s) from a dead run", run.ID, stashID, sj.Status)); err != nil {
		return stopWith(failure(ctx, err))
	}
	log.Info("ADOPTED an orphaned generation job; following it to its end", "status", sj.Status, "progress", percent(sj.Progress))
	mon := r.monitor(ctx, run, log, j.ID, stashID)
	mon.stopSent = mon.stopSent || stopSent
	out := r.settle(ctx, run, log, j.ID, stashID, j.SceneIDs, mon)
	out.stashJobID = stashID
	return out
}

// ours tells our generate job from a stranger that got the same id after a
// Stash restart: it must be a generate job, added when we launched ours.
func (r *Runner) ours(j db.Job, sj stash.Job) bool {
	if sj.Description != stash.DescGenerating {
		return false
	}
	if j.StashAddedAt != nil {
		// Recorded from Stash's own clock (its addTime, or the Date header
		// of its answer to metadataGenerate): seconds apart at most.
		d := sj.AddTime.Sub(*j.StashAddedAt)
		return d > -addTimeSlack && d < addTimeSlack
	}
	launched := j.CreatedAt
	if j.StartedAt != nil {
		launched = *j.StartedAt
	}
	d := sj.AddTime.Sub(launched)
	return d > -adoptWindow && d < adoptWindow
}
