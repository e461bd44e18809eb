package cycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// Once is the body of `stashgen once`: reconcile what an earlier run left
// behind, stand aside if anything is busy, sync and check, then generate
// what is still pending, batch by batch.
func (r *Runner) Once(ctx context.Context, run *Run) Result {
	run.SetPhase("reconcile")
	reconciled, ledger, adopted, res, stop := r.reconcile(ctx, run)
	if stop {
		return adopted.into(res)
	}
	run.SetPhase("busy-check")
	if reconciled {
		ledger = nil // changed: read it again
	}
	if res, busy := r.busyCheck(ctx, run, ledger); busy {
		return adopted.into(res)
	}
	if _, err := r.Sync(ctx, run, false); err != nil {
		return adopted.into(failure(ctx, err))
	}
	if _, err := r.CheckScenes(ctx, run, false); err != nil {
		return adopted.into(failure(ctx, err))
	}
	res = adopted.into(r.generate(ctx, run))
	if reconciled && res.Outcome == db.OutcomeNothingToDo {
		res.Outcome = db.OutcomeAdopted
	}
	return res
}

// into adds the work of jobs adopted from a dead run to a run's result:
// their verified scenes count as this run's, and the adopted Stash job is
// its last one unless it launched another.
func (b batchResult) into(res Result) Result {
	if b.generated > 0 || res.Generated != nil {
		n := b.generated
		if res.Generated != nil {
			n += *res.Generated
		}
		res.Generated = &n
	}
	if res.StashJobID == "" {
		res.StashJobID = b.stashJobID
	}
	return res
}

// busyCheck stands aside when Stash's queue or the ledger has any active
// job. A ledger that cannot be read counts as busy: better to skip an hour
// than to start a second generation.
func (r *Runner) busyCheck(ctx context.Context, run *Run, ledger []db.Job) (Result, bool) {
	jobs, err := r.Stash.JobQueue(ctx)
	if err != nil {
		return failure(ctx, err), true
	}
	var reasons []string
	for _, j := range jobs {
		run.Log.Info("stash job active", KeyStashJobID, j.ID, "description", j.Description, "status", j.Status)
		reasons = append(reasons, fmt.Sprintf("stash job %s (%s, %s)", j.ID, j.Description, j.Status))
	}
	if ledger == nil {
		ledger, err = r.Store.ActiveJobs(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx), true
		}
		run.Log.Warn("cannot read the job ledger; standing aside to be safe", "error", err)
		reasons = append(reasons, "job ledger unreadable: "+err.Error())
	}
	for _, j := range ledger {
		run.Log.Info("ledger job active", KeyJobID, j.ID, "type", j.Type, "status", j.Status, "created_by", j.CreatedBy)
		reasons = append(reasons, fmt.Sprintf("ledger job %d (%s, %s, by %s)", j.ID, j.Type, j.Status, j.CreatedBy))
	}
	if len(reasons) == 0 {
		return Result{}, false
	}
	run.Log.Info("another job is active; standing aside", "active_jobs", len(reasons))
	return Result{Outcome: db.OutcomeSkippedBusy, ExitCode: ExitTempFail, Err: errors.New("busy: " + strings.Join(reasons, "; "))}, true
}

// generate sends the pending scenes to Stash in batches, oldest first, each
// verified before the next.
func (r *Runner) generate(ctx context.Context, run *Run) Result {
	set := r.settings()
	counts, err := r.Store.PendingCounts(ctx)
	if err != nil {
		return failure(ctx, err)
	}
	if counts.Pending == 0 {
		res := result(db.OutcomeNothingToDo, ExitOK)
		res.Counts = &counts
		if counts.Backoff+counts.Quarantined == 0 {
			run.Log.Info("All scenes have generated attribute set")
		} else {
			run.Log.Info("No scene is due for generation", "backing_off", counts.Backoff, "quarantined", counts.Quarantined,
				"hint", "backing-off scenes are retried later; quarantined ones only after `stashgen check --full` finds them complete or `stashgen reset ID...`")
		}
		return res
	}
	run.Log.Info(fmt.Sprintf("Found %d scenes with generated=false", counts.Pending),
		"pending", counts.Pending, "backing_off", counts.Backoff, "quarantined", counts.Quarantined)
	t, err := r.toggles(ctx, run)
	if err != nil {
		return failure(ctx, err)
	}

	total := 0
	lastJob := ""
	sent := map[int64]bool{}
	finish := func(res Result) Result {
		res.Generated = &total
		if res.StashJobID == "" {
			res.StashJobID = lastJob
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), set.CleanupTimeout)
		defer cancel()
		if c, err := r.Store.PendingCounts(cctx); err == nil {
			res.Counts = &c
		} else {
			res.Counts = &counts
		}
		return res
	}
	for batch := 1; ; batch++ {
		ids, err := r.Store.PendingScenes(ctx, set.BatchSize)
		if err != nil {
			return finish(failure(ctx, err))
		}
		ids = without(ids, sent)
		if len(ids) == 0 {
			break
		}
		if batch > 1 {
			if res, busy := r.queueWaiting(ctx, run); busy {
				return finish(res)
			}
		}
		for _, id := range ids {
			sent[id] = true
		}
		br := r.runBatch(ctx, run, t, ids, batch)
		total += br.generated
		if br.stashJobID != "" {
			lastJob = br.stashJobID
		}
		if br.res != nil {
			return finish(*br.res)
		}
	}
	return finish(result(db.OutcomeGenerated, ExitOK))
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

// queueWaiting is the check before every batch after the first: a job that
// arrived meanwhile goes first.
func (r *Runner) queueWaiting(ctx context.Context, run *Run) (Result, bool) {
	jobs, err := r.Stash.JobQueue(ctx)
	if err != nil {
		return failure(ctx, err), true
	}
	scans := r.ledgerScans(ctx, run)
	for _, j := range jobs {
		if j.IsScan() {
			scans = append(scans, "stash job "+j.ID)
		}
	}
	if len(scans) > 0 {
		run.Log.Info("a scan is waiting; not launching more batches", "scans", strings.Join(scans, ", "))
		return Result{Outcome: db.OutcomeCancelledForScan, ExitCode: ExitTempFail, Err: errors.New("scan waiting: " + strings.Join(scans, ", "))}, true
	}
	if len(jobs) > 0 {
		j := jobs[0]
		run.Log.Info("another stash job is queued; not launching more batches", KeyStashJobID, j.ID, "description", j.Description, "status", j.Status)
		return Result{Outcome: db.OutcomeSkippedBusy, ExitCode: ExitTempFail,
			Err: fmt.Errorf("busy: stash job %s (%s, %s)", j.ID, j.Description, j.Status)}, true
	}
	return Result{}, false
}

// ledgerScans lists ledger scan jobs that are pending or running. An error
// is logged and ignored: the scan check must not stop a generation.
func (r *Runner) ledgerScans(ctx context.Context, run *Run) []string {
	ids, err := r.Store.ActiveScans(ctx)
	if err != nil {
		if ctx.Err() == nil {
			run.Log.Warn("cannot read the job ledger for scan jobs", "error", err)
		}
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprintf("ledger job %d", id)
	}
	return out
}

type batchResult struct {
	generated  int
	stashJobID string
	res        *Result // set when the run must end after this batch
}

func stopWith(res Result) batchResult { return batchResult{res: &res} }

// runBatch filters the batch against what Stash has, launches it, follows
// it to its end and verifies its scenes.
func (r *Runner) runBatch(ctx context.Context, run *Run, t stash.GenerateInput, ids []int64, batch int) batchResult {
	run.SetPhase("generate")
	// One unknown id makes Stash's whole job do nothing, and an empty list
	// means the whole library: filter right before sending.
	known, err := r.Stash.KnownScenes(ctx, idStrings(ids))
	if err != nil {
		return stopWith(failure(ctx, err))
	}
	var keep, unknown []int64
	for _, id := range ids {
		if known[fmt.Sprint(id)] {
			keep = append(keep, id)
		} else {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		run.Log.Info("stash no longer has these scenes; forgot them", KeySceneCount, len(unknown), "scene_ids", head(unknown, 10))
		if err := r.Store.DeleteScenes(ctx, unknown); err != nil {
			return stopWith(failure(ctx, err))
		}
	}
	if len(keep) == 0 {
		return batchResult{}
	}

	jobID, err := r.Store.LaunchJob(ctx, run.ID, keep, fmt.Sprintf("batch %d of run %d: %d scenes", batch, run.ID, len(keep)))
	if err != nil {
		return stopWith(failure(ctx, err))
	}
	log := run.Log.With(KeyJobID, jobID)
	in := t
	in.SceneIDs = idStrings(keep)
	launch, err := r.Stash.Generate(ctx, in)
	if err != nil && ctx.Err() != nil {
		// Interrupted while Stash was answering: the job may exist. The
		// queue was empty when we launched, so a generate job in it now is
		// ours: stop it.
		if j, ok := r.queuedGenerate(context.WithoutCancel(ctx)); ok {
			return stopWith(r.interruptJob(ctx, log, jobID, j.ID))
		}
	}
	// When Stash queued the job, so that a later run can tell this job
	// from one that got the same id after a restart, even if this process
	// dies before its first poll: the Date of Stash's own answer, or the
	// addTime of the job found in the queue when the answer was lost.
	addedAt := launch.Date
	if err != nil {
		var j stash.Job
		j, err = r.afterFailedLaunch(ctx, run, err)
		if err != nil {
			return stopWith(r.closeUnlaunched(ctx, log, jobID, err))
		}
		launch.JobID, addedAt = j.ID, j.AddTime
	}
	stashID := launch.JobID
	if err := r.Store.SetStashJobID(ctx, jobID, stashID); err != nil {
		log.Warn("store stash job id failed", "error", err)
	}
	if !addedAt.IsZero() {
		if err := r.Store.SetStashAddedAt(ctx, jobID, addedAt); err != nil {
			log.Warn("store stash job add time failed", "error", err)
		}
	}
	log = log.With(KeyStashJobID, stashID)
	log.Info(fmt.Sprintf("Started generation job %s for %d scenes", stashID, len(keep)), KeySceneCount, len(keep))

	mon := r.monitor(ctx, run, log, jobID, stashID)
	out := r.settle(ctx, run, log, jobID, stashID, keep, mon)
	out.stashJobID = stashID
	return out
}

// afterFailedLaunch handles a metadataGenerate that returned an error. A
// timed-out request may still have queued the job, so look at the queue
// before anything else and follow the job if it is there.
func (r *Runner) afterFailedLaunch(ctx context.Context, run *Run, launchErr error) (stash.Job, error) {
	if ctx.Err() != nil || !stash.IsKind(launchErr, stash.KindUnavailable) {
		return stash.Job{}, launchErr
	}
	if j, ok := r.queuedGenerate(ctx); ok {
		run.Log.Warn("metadataGenerate failed, but a generate job is queued; following it", KeyStashJobID, j.ID, "error", launchErr)
		return j, nil
	}
	return stash.Job{}, launchErr
}

// queuedGenerate finds a generate job in Stash's queue.
func (r *Runner) queuedGenerate(ctx context.Context) (stash.Job, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	jobs, err := r.Stash.JobQueue(ctx)
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

// closeUnlaunched closes the ledger job of a launch that failed.
func (r *Runner) closeUnlaunched(ctx context.Context, log interface {
	Warn(string, ...any)
}, jobID int64, err error) Result {
	res := failure(ctx, err)
	to, action := db.JobFailed, db.ActionFailed
	if res.Outcome == db.OutcomeInterrupted {
		to, action = db.JobCancelled, db.ActionCancelled
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if terr := r.Store.TransitionJob(wctx, jobID, []db.JobStatus{db.JobRunning}, to, action, "metadataGenerate failed", err.Error()); terr != nil {
		log.Warn("close ledger job failed", "error", terr)
	}
	return res
}
