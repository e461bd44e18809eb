package cycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// monitorEnd is how following a Stash job ended.
type monitorEnd struct {
	job      stash.Job // the last state seen
	vanished bool      // findJob answered null: Stash forgot the job
	// unseen: a dead run's job that Stash does not know at all (it never
	// started it, or lost it in a restart): its scenes were not attempted.
	unseen   bool
	stopSent bool  // we asked Stash to stop it for a scan
	err      error // interrupted, or Stash unusable for too long
	// lost, when set, says why a vanished job is closed as lost, instead
	// of the text for a job Stash forgot.
	lost string
}

var activeOrCancelling = []db.JobStatus{db.JobRunning, db.JobCancelling}

// monitor polls a Stash job until it ends. It stops the job when a scan is
// waiting, and keeps polling until Stash confirms the end (stopJob answers
// true even for an unknown id). When Stash goes away it retries with
// backoff for up to unavailable_timeout, then gives up and leaves the
// ledger job running for the next run to adopt.
func (r *Runner) monitor(ctx context.Context, run *Run, log *slog.Logger, jobID int64, stashID string) monitorEnd {
	run.SetPhase("monitor")
	set := r.settings()
	var (
		end       monitorEnd
		awaySince time.Time     // when Stash stopped answering
		awayWait  time.Duration // retry delays waited since then
		retry     time.Duration // the current retry delay: 1 s, doubling up to poll_interval
		delay     time.Duration
		sawAdd    bool
		lastLog   time.Time
	)
	for {
		if delay > 0 {
			if err := r.wait(ctx, delay); err != nil {
				end.err = err
				return end
			}
		}
		job, err := r.Stash.FindJob(ctx, stashID)
		switch {
		case errors.Is(err, stash.ErrJobNotFound):
			end.vanished = true
			return end
		case err != nil && ctx.Err() != nil:
			end.err = ctx.Err()
			return end
		case err != nil && stash.IsKind(err, stash.KindUnavailable):
			if awaySince.IsZero() {
				awaySince, awayWait, retry = time.Now(), 0, 0
				log.Warn("stash unavailable while following the job; retrying", "error", err,
					"give_up_after", set.UnavailableTimeout.String())
			}
			// Counting the delays as well as the clock keeps the limit
			// honest when waits are cut short (tests) or requests slow.
			if max(time.Since(awaySince), awayWait) >= set.UnavailableTimeout {
				end.err = fmt.Errorf("follow stash job %s: gave up after %s: %w", stashID, set.UnavailableTimeout, err)
				return end
			}
			retry = min(max(2*retry, time.Second), set.PollInterval)
			delay = retry
			awayWait += retry
			continue
		case err != nil:
			end.err = err
			return end
		}
		if !awaySince.IsZero() {
			log.Info("stash is back", "away", time.Since(awaySince).Round(time.Second).String())
			awaySince = time.Time{}
		}
		delay = set.PollInterval
		end.job = job
		if !sawAdd {
			sawAdd = true
			if err := r.Store.SetStashAddedAt(ctx, jobID, job.AddTime); err != nil && ctx.Err() == nil {
				log.Warn("store stash job add time failed", "error", err)
			}
		}
		if job.Progress != nil {
			if err := r.Store.SetProgress(ctx, jobID, *job.Progress); err != nil && ctx.Err() == nil {
				log.Warn("store job progress failed; still following the job", "error", err)
			}
		}
		if r.OnProgress != nil {
			r.OnProgress(run, job)
		}
		if time.Since(lastLog) >= set.PollInterval || job.Status.Ended() {
			lastLog = time.Now()
			log.Info("generation job progress", "status", job.Status, "progress", percent(job.Progress))
		}
		if job.Status.Ended() {
			return end
		}
		if !end.stopSent {
			if scans := r.scanWaiting(ctx, run); len(scans) > 0 {
				reason := fmt.Sprintf("%d scan jobs waiting (%s)", len(scans), strings.Join(scans, ", "))
				log.Info(fmt.Sprintf("Detected %d scan jobs, cancelling generation job %s", len(scans), stashID), "scans", strings.Join(scans, ", "))
				if err := r.Stash.StopJob(ctx, stashID); err != nil {
					if ctx.Err() != nil {
						end.err = ctx.Err()
						return end
					}
					log.Warn("stopJob failed; will try again at the next poll", "error", err)
					continue
				}
				end.stopSent = true
				if err := r.Store.TransitionJob(ctx, jobID, []db.JobStatus{db.JobRunning}, db.JobCancelling,
					db.ActionCancelled, reason, ""); err != nil {
					log.Warn("record cancellation failed", "error", err)
				}
			}
		}
	}
}

// scanWaiting lists the scan jobs in Stash's queue and the ledger.
func (r *Runner) scanWaiting(ctx context.Context, run *Run) []string {
	jobs, err := r.Stash.JobQueue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			run.Log.Warn("cannot read stash's job queue for scans", "error", err)
		}
		return nil
	}
	scans := r.ledgerScans(ctx, run)
	for _, j := range jobs {
		if j.IsScan() {
			scans = append(scans, "stash job "+j.ID)
		}
	}
	return scans
}

// missingOf lists, once each, the resources the verdicts found missing.
func missingOf(vs []db.Verdict) []string {
	var all []string
	for _, v := range vs {
		all = append(all, v.Missing...)
	}
	return dedupe(all)
}

func percent(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *p*100)
}

// settle closes a followed job: the ledger from Stash's final status, and
// each scene's generated flag from what Stash now serves. Partial work of
// a stopped or failed job is kept. Only a job that ended FINISHED, or
// vanished, counts an attempt against its incomplete scenes.
func (r *Runner) settle(ctx context.Context, run *Run, log *slog.Logger, jobID int64, stashID string, ids []int64, mon monitorEnd) batchResult {
	if mon.err != nil {
		if ctx.Err() != nil {
			return stopWith(r.interruptJob(ctx, log, jobID, stashID))
		}
		// Stash unusable: the job may still be running there. Leave the
		// ledger job running so the next run adopts it.
		log.Error("stopped following the generation job; the next run will adopt it", "error", mon.err)
		return stopWith(failure(ctx, mon.err))
	}
	run.SetPhase("verify")
	v, verr := r.verifyBatch(ctx, run, ids)
	complete, incomplete := 0, []int64{}
	for _, vd := range v.Verdicts {
		if vd.Complete {
			complete++
		} else {
			incomplete = append(incomplete, vd.SceneID)
		}
	}
	countAttempt := (mon.vanished && !mon.unseen) || mon.job.Status == stash.JobFinished
	if verr == nil && countAttempt && len(incomplete) > 0 {
		r.recordAttempts(ctx, log, incomplete)
	}
	out := batchResult{generated: complete}

	var (
		to     db.JobStatus
		action db.Action
		reason string
		errTxt string
		res    *Result
	)
	switch {
	case mon.vanished:
		to, action = db.JobFailed, db.ActionFailed
		reason = mon.lost
		if reason == "" {
			reason = fmt.Sprintf("lost: stash no longer reports job %s (it keeps only the last 10 ended jobs)", stashID)
		}
		errTxt = reason
		res = &Result{Outcome: db.OutcomeFailed, ExitCode: ExitJobFailed, Err: errors.New(reason)}
	case mon.job.Status == stash.JobFinished:
		to, action, reason = db.JobCompleted, db.ActionFinished, fmt.Sprintf("%d of %d scenes complete", complete, len(ids))
		if complete == 0 && len(incomplete) > 0 && verr == nil {
			// Stash ends a job FINISHED even when every scene failed: it
			// only logs why. Backoff retries them; the user should look.
			log.Warn(fmt.Sprintf("stash job %s finished, but 0 of %d scenes complete", stashID, len(incomplete)),
				"missing", strings.Join(missingOf(v.Verdicts), ","), "scene_ids", head(incomplete, 10),
				"hint", "look in Stash's log (Settings > Logs) for the errors it logged while generating these scenes")
		} else {
			log.Info("generation job finished", "complete", complete, "incomplete", len(incomplete))
		}
	case mon.job.Status == stash.JobCancelled && mon.stopSent:
		to = db.JobCancelled // the CANCELLED action was recorded when we stopped it
		res = &Result{Outcome: db.OutcomeCancelledForScan, ExitCode: ExitTempFail,
			Err: fmt.Errorf("stash job %s cancelled so a scan can run; %d scenes finished before it stopped", stashID, complete)}
	case mon.job.Status == stash.JobCancelled:
		to, action, reason = db.JobCancelled, db.ActionCancelled, "cancelled in Stash, not by stashgen"
		res = &Result{Outcome: db.OutcomeFailed, ExitCode: ExitJobFailed, Err: fmt.Errorf("stash job %s was cancelled outside stashgen", stashID)}
	default: // FAILED
		to, action = db.JobFailed, db.ActionFailed
		errTxt = "stash reported FAILED"
		if mon.job.Error != nil && *mon.job.Error != "" {
			errTxt = *mon.job.Error
		}
		reason = errTxt
		res = &Result{Outcome: db.OutcomeFailed, ExitCode: ExitJobFailed, Err: fmt.Errorf("stash job %s failed: %s", stashID, errTxt)}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.Store.TransitionJob(wctx, jobID, activeOrCancelling, to, action, reason, errTxt); err != nil {
		log.Warn("close ledger job failed", "error", err)
	}
	if verr != nil {
		log.Error("verifying the batch failed; its scenes stay not generated and are checked next run", "error", verr)
		return stopWith(failure(ctx, verr))
	}
	if res != nil {
		out.res = res
	}
	return out
}

// verifyBatch re-reads the batch's scenes and probes them.
func (r *Runner) verifyBatch(ctx context.Context, run *Run, ids []int64) (verification, error) {
	refs, err := r.Store.ScenesByID(ctx, ids)
	if err != nil {
		return verification{}, err
	}
	return r.verifyAndRecord(ctx, run, refs)
}

func (r *Runner) recordAttempts(ctx context.Context, log *slog.Logger, ids []int64) {
	set := r.settings()
	as, err := r.Store.RecordAttempts(ctx, ids, set.MaxAttempts, set.Backoff)
	if err != nil {
		log.Warn("record generation attempts failed", "error", err)
		return
	}
	for _, a := range as {
		if a.Quarantined {
			log.Warn("scene quarantined: still incomplete after max_attempts generations; run `stashgen check --full` after fixing the file, or `stashgen reset`",
				"scene_id", a.SceneID, "attempts", a.Attempts)
		}
	}
	log.Info("incomplete scenes will be retried later", KeySceneCount, len(as))
}

// interruptJob stops our Stash job after a signal without waiting for
// Stash to confirm (that takes 5-10 s; the next run reconciles), and
// records it. stopJob and the ledger write each get their own deadline, so
// a Stash that hangs cannot leave the ledger job running.
func (r *Runner) interruptJob(ctx context.Context, log *slog.Logger, jobID int64, stashID string) Result {
	res := interrupted(ctx)
	set := r.settings()
	reason := res.Err.Error()
	if stashID != "" {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), set.StopTimeout)
		err := r.Stash.StopJob(sctx, stashID)
		cancel()
		if err != nil {
			log.Warn("stopJob after the signal failed", "error", err)
			reason += "; stopJob failed: " + err.Error()
		} else {
			reason += "; stopJob sent"
		}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), set.CleanupTimeout)
	defer cancel()
	if err := r.Store.TransitionJob(wctx, jobID, activeOrCancelling, db.JobCancelled, db.ActionCancelled, reason, ""); err != nil {
		log.Warn("record interruption failed", "error", err)
	}
	log.Warn("interrupted; stopped the generation job", "reason", reason)
	return res
}
