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

// tracked is a ledger job the run follows in Stash: one it launched, or
// one a dead run left behind.
type tracked struct {
	ledgerID int64
	stashID  string
	scenes   []int64
	log      *slog.Logger

	// What following it found.
	last     stash.Job // the last state seen
	vanished bool      // findJob answered null: Stash forgot the job
	// unseen: a dead run's job that Stash does not know at all (it never
	// started it, or lost it in a restart): its scenes were not attempted.
	unseen   bool
	stopSent bool // we asked Stash to stop it for a scan
	// lost, when set, says why a vanished job is closed as lost, instead
	// of the text for a job Stash forgot.
	lost string
}

var activeOrCancelling = []db.JobStatus{db.JobRunning, db.JobCancelling}

// follow follows a job to its end and settles it.
func (p *pass) follow(ctx context.Context, j *tracked) error {
	return p.settle(ctx, j, p.monitor(ctx, j))
}

// monitor polls a Stash job until it ends. It stops the job when a scan is
// waiting, and keeps polling until Stash confirms the end (stopJob answers
// true even for an unknown id). When Stash goes away it retries with
// backoff for up to unavailable_timeout, then gives up and leaves the
// ledger job running for the next run to adopt. It returns nil when the
// job ended or vanished, else why it stopped following.
func (p *pass) monitor(ctx context.Context, j *tracked) error {
	p.run.SetPhase(PhaseMonitor)
	var (
		awaySince time.Time     // when Stash stopped answering
		awayWait  time.Duration // retry delays waited since then
		retry     time.Duration // the current retry delay: 1 s, doubling up to poll_interval
		delay     time.Duration
		sawAdd    bool
		lastLog   time.Time
	)
	for {
		if delay > 0 {
			if err := p.wait(ctx, delay); err != nil {
				return err
			}
		}
		job, err := p.Stash.FindJob(ctx, j.stashID)
		switch {
		case errors.Is(err, stash.ErrJobNotFound):
			j.vanished = true
			return nil
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil && stash.IsKind(err, stash.KindUnavailable):
			if awaySince.IsZero() {
				awaySince, awayWait, retry = time.Now(), 0, 0
				j.log.Warn("stash unavailable while following the job; retrying", "error", err,
					"give_up_after", p.set.UnavailableTimeout.String())
			}
			// Counting the delays as well as the clock keeps the limit
			// honest when waits are cut short (tests) or requests slow.
			if max(time.Since(awaySince), awayWait) >= p.set.UnavailableTimeout {
				return fmt.Errorf("follow stash job %s: gave up after %s: %w", j.stashID, p.set.UnavailableTimeout, err)
			}
			retry = min(max(2*retry, time.Second), p.set.PollInterval)
			delay = retry
			awayWait += retry
			continue
		case err != nil:
			return err
		}
		if !awaySince.IsZero() {
			j.log.Info("stash is back", "away", time.Since(awaySince).Round(time.Second).String())
			awaySince = time.Time{}
		}
		delay = p.set.PollInterval
		j.last = job
		if !sawAdd {
			// Stash's own addTime replaces what the launch recorded from
			// the Date of its answer, and is the first record for an
			// adopted job.
			sawAdd = true
			if err := p.Store.SetStashAddedAt(ctx, j.ledgerID, job.AddTime); err != nil && ctx.Err() == nil {
				j.log.Warn("store stash job add time failed", "error", err)
			}
		}
		if job.Progress != nil {
			if err := p.Store.SetProgress(ctx, j.ledgerID, *job.Progress); err != nil && ctx.Err() == nil {
				j.log.Warn("store job progress failed; still following the job", "error", err)
			}
		}
		p.observer().Progress(job)
		if time.Since(lastLog) >= p.set.PollInterval || job.Status.Ended() {
			lastLog = time.Now()
			j.log.Info("generation job progress", "status", job.Status, "progress", percent(job.Progress))
		}
		if job.Status.Ended() {
			return nil
		}
		if !j.stopSent {
			if err := p.stopForScans(ctx, j); err != nil {
				return err
			}
		}
	}
}

// stopForScans sends stopJob when a scan waits. A failed stopJob is tried
// again at the next poll; only an interruption ends the monitor.
func (p *pass) stopForScans(ctx context.Context, j *tracked) error {
	scans := p.scanWaiting(ctx)
	if len(scans) == 0 {
		return nil
	}
	reason := fmt.Sprintf("%d scan jobs waiting (%s)", len(scans), strings.Join(scans, ", "))
	j.log.Info(fmt.Sprintf("Detected %d scan jobs, cancelling generation job %s", len(scans), j.stashID), "scans", strings.Join(scans, ", "))
	if err := p.Stash.StopJob(ctx, j.stashID); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j.log.Warn("stopJob failed; will try again at the next poll", "error", err)
		return nil
	}
	j.stopSent = true
	if err := p.Store.TransitionJob(ctx, j.ledgerID, []db.JobStatus{db.JobRunning}, db.JobCancelling,
		db.ActionCancelled, reason, ""); err != nil {
		j.log.Warn("record cancellation failed", "error", err)
	}
	return nil
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
// vanished, counts an attempt against its incomplete scenes. monErr is why
// following stopped early, if it did.
func (p *pass) settle(ctx context.Context, j *tracked, monErr error) error {
	if monErr != nil {
		if ctx.Err() != nil {
			return p.interruptJob(ctx, j)
		}
		// Stash unusable: the job may still be running there. Leave the
		// ledger job running so the next run adopts it.
		j.log.Error("stopped following the generation job; the next run will adopt it", "error", monErr)
		return monErr
	}
	p.run.SetPhase(PhaseVerify)
	v, verr := p.verifyBatch(ctx, j.scenes)
	complete, incomplete := 0, []int64{}
	for _, vd := range v.Verdicts {
		if vd.Complete {
			complete++
		} else {
			incomplete = append(incomplete, vd.SceneID)
		}
	}
	stashID := j.stashID
	if j.unseen {
		stashID = "" // closed as lost, never followed: not this run's job
	}
	p.followedJob(stashID, complete)
	countAttempt := (j.vanished && !j.unseen) || j.last.Status == stash.JobFinished
	if verr == nil && countAttempt && len(incomplete) > 0 {
		p.recordAttempts(ctx, j.log, incomplete)
	}

	var (
		to     db.JobStatus
		action db.Action
		reason string
		errTxt string
		end    error
	)
	switch {
	case j.vanished:
		to, action = db.JobFailed, db.ActionFailed
		reason = j.lost
		if reason == "" {
			reason = fmt.Sprintf("lost: stash no longer reports job %s (it keeps only the last 10 ended jobs)", j.stashID)
		}
		errTxt = reason
		end = &stop{outcome: db.OutcomeFailed, code: ExitJobFailed, err: errors.New(reason)}
	case j.last.Status == stash.JobFinished:
		to, action, reason = db.JobCompleted, db.ActionFinished, fmt.Sprintf("%d of %d scenes complete", complete, len(j.scenes))
		if complete == 0 && len(incomplete) > 0 && verr == nil {
			// Stash ends a job FINISHED even when every scene failed: it
			// only logs why. Backoff retries them; the user should look.
			j.log.Warn(fmt.Sprintf("stash job %s finished, but 0 of %d scenes complete", j.stashID, len(incomplete)),
				"missing", strings.Join(missingOf(v.Verdicts), ","), "scene_ids", head(incomplete, 10),
				"hint", "look in Stash's log (Settings > Logs) for the errors it logged while generating these scenes")
		} else {
			j.log.Info("generation job finished", "complete", complete, "incomplete", len(incomplete))
		}
	case j.last.Status == stash.JobCancelled && j.stopSent:
		to = db.JobCancelled // the CANCELLED action was recorded when we stopped it
		end = &stop{outcome: db.OutcomeCancelledForScan, code: ExitTempFail,
			err: fmt.Errorf("stash job %s cancelled so a scan can run; %d scenes finished before it stopped", j.stashID, complete)}
	case j.last.Status == stash.JobCancelled:
		to, action, reason = db.JobCancelled, db.ActionCancelled, "cancelled in Stash, not by stashgen"
		end = &stop{outcome: db.OutcomeFailed, code: ExitJobFailed, err: fmt.Errorf("stash job %s was cancelled outside stashgen", j.stashID)}
	default: // FAILED
		to, action = db.JobFailed, db.ActionFailed
		errTxt = "stash reported FAILED"
		if j.last.Error != nil && *j.last.Error != "" {
			errTxt = *j.last.Error
		}
		reason = errTxt
		end = &stop{outcome: db.OutcomeFailed, code: ExitJobFailed, err: fmt.Errorf("stash job %s failed: %s", j.stashID, errTxt)}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*p.set.CleanupTimeout)
	defer cancel()
	if err := p.Store.TransitionJob(wctx, j.ledgerID, activeOrCancelling, to, action, reason, errTxt); err != nil {
		j.log.Warn("close ledger job failed", "error", err)
	}
	if verr != nil {
		j.log.Error("verifying the batch failed; its scenes stay not generated and are checked next run", "error", verr)
		return verr
	}
	return end
}

// verifyBatch re-reads the batch's scenes and probes them.
func (p *pass) verifyBatch(ctx context.Context, ids []int64) (verification, error) {
	refs, err := p.Store.ScenesByID(ctx, ids)
	if err != nil {
		return verification{}, err
	}
	return p.verifyAndRecord(ctx, refs, true)
}

func (p *pass) recordAttempts(ctx context.Context, log *slog.Logger, ids []int64) {
	as, err := p.Store.RecordAttempts(ctx, ids, p.set.MaxAttempts, p.set.Backoff)
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
// a Stash that hangs cannot leave the ledger job running. It returns the
// interruption.
func (p *pass) interruptJob(ctx context.Context, j *tracked) error {
	res := interrupted(ctx)
	reason := res.Err.Error()
	if j.stashID != "" {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.set.StopTimeout)
		err := p.Stash.StopJob(sctx, j.stashID)
		cancel()
		if err != nil {
			j.log.Warn("stopJob after the signal failed", "error", err)
			reason += "; stopJob failed: " + err.Error()
		} else {
			reason += "; stopJob sent"
		}
	}
	wctx, cancel := p.cleanup(ctx)
	defer cancel()
	if err := p.Store.TransitionJob(wctx, j.ledgerID, activeOrCancelling, db.JobCancelled, db.ActionCancelled, reason, ""); err != nil {
		j.log.Warn("record interruption failed", "error", err)
	}
	j.log.Warn("interrupted; stopped the generation job", "reason", reason)
	return stopWith(res)
}

// missingOf lists, once each, the resources the verdicts found missing.
func missingOf(vs []db.Verdict) []string {
	var all []string
	for _, v := range vs {
		all = append(all, v.Missing...)
	}
	return dedupe(all)
}
