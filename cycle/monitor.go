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
	paths    map[int64][]string // the scenes' video files, for matching Stash's log
	log      *slog.Logger

	// What following it found.
	last     stash.Job // the last state seen
	vanished bool      // findJob answered null: Stash forgot the job
	// unseen: a dead run's job that Stash does not know at all (it never
	// started it, or lost it in a restart): its scenes were not attempted.
	unseen bool
	// stop is why we asked Stash to stop it, once we did.
	stop *stopCause
	// lost, when set, says why a vanished job is closed as lost, instead
	// of the text for a job Stash forgot.
	lost string
}

// stopCause is why stashgen stopped its own job, and the run's outcome
// when Stash confirms.
type stopCause struct {
	outcome db.Outcome // cancelled_for_scan, _for_window, _for_low_space
	reason  string     // the ledger's CANCELLED reason
}

var activeOrCancelling = []db.JobStatus{db.JobRunning, db.JobCancelling}

// follow follows a job to its end and settles it.
func (p *pass) follow(ctx context.Context, j *tracked) error {
	p.listen(ctx)
	return p.settle(ctx, j, p.monitor(ctx, j))
}

// monitor follows a Stash job until it ends. It polls findJob every
// poll_interval, and sooner when the listener hears something to act on (a
// scan queued, the job's end, a reconnect). It stops the job when a scan
// is waiting, when the maintenance window closes or when free space falls
// below the floor, and keeps following until Stash confirms the end
// (stopJob answers true even for an unknown id). When Stash goes away it
// retries with backoff for up to unavailable_timeout, then gives up and
// leaves the ledger job running for the next run to adopt. It returns nil
// when the job ended or vanished, else why it stopped following.
func (p *pass) monitor(ctx context.Context, j *tracked) error {
	p.run.SetPhase(PhaseMonitor)
	var (
		awaySince time.Time     // when Stash stopped answering
		awayWait  time.Duration // retry delays waited since then
		retry     time.Duration // the current retry delay: 1 s, doubling up to poll_interval
		delay     time.Duration
		sawAdd    bool
		lastLog   time.Time
		woke      wake
	)
	// When the window that is open now closes; zero without a window, or
	// outside it (an adopted job is then stopped at its first poll).
	var closes time.Time
	if w := p.set.Fence.Window; !w.Always() && w.Open(p.now()) {
		closes = w.Closes(p.now())
	}
	for {
		if delay > 0 {
			var err error
			if woke, err = p.sleep(ctx, j, delay, closes); err != nil {
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
			retry = backoff(retry, p.set.PollInterval)
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
		p.progress(ctx, j, job)
		if time.Since(lastLog) >= p.set.PollInterval || job.Status.Ended() {
			lastLog = time.Now()
			j.log.Info("generation job progress", "status", job.Status, "progress", percent(job.Progress))
		}
		if job.Status.Ended() {
			p.lingerForLog(ctx)
			return nil
		}
		if j.stop != nil {
			continue
		}
		if cause := p.fenceCrossed(closes); cause != nil {
			if err := p.stopJob(ctx, j, cause); err != nil {
				return err
			}
			continue
		}
		// Listening, a scan arrives as an event: look for one at a poll
		// only when the listener is not up on both sources, or just woke.
		if p.lis.listening() && woke.job == nil && woke.ledger == 0 && !woke.resync {
			continue
		}
		if scans := p.scanWaiting(ctx); len(scans) > 0 {
			j.log.Info(fmt.Sprintf("Detected %d scan jobs, cancelling generation job %s", len(scans), j.stashID), "scans", strings.Join(scans, ", "))
			cause := &stopCause{outcome: db.OutcomeCancelledForScan,
				reason: fmt.Sprintf("%d scan jobs waiting (%s)", len(scans), strings.Join(scans, ", "))}
			if err := p.stopJob(ctx, j, cause); err != nil {
				return err
			}
		}
	}
}

// sleep waits d before the next poll, or less: until the window closes,
// or until the listener hears something to act on now. Progress events of
// the job feed the progress line on the way. It returns what woke it.
func (p *pass) sleep(ctx context.Context, j *tracked, d time.Duration, closes time.Time) (wake, error) {
	if !closes.IsZero() && j.stop == nil {
		// A little past the edge, so that the clock reads it closed.
		d = min(d, max(closes.Sub(p.now()), 0)+50*time.Millisecond)
	}
	if p.lis == nil {
		return wake{}, p.wait(ctx, d)
	}
	if p.Wait != nil { // tests: their Wait stands for the time passing
		if err := p.Wait(ctx, d); err != nil {
			return wake{}, err
		}
		for {
			select {
			case w := <-p.lis.wakes:
				if p.acts(ctx, j, w) {
					return w, nil
				}
			default:
				return wake{}, nil
			}
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return wake{}, context.Cause(ctx)
		case <-t.C:
			return wake{}, nil
		case w := <-p.lis.wakes:
			if p.acts(ctx, j, w) {
				return w, nil
			}
		}
	}
}

// acts says whether what the listener heard calls for a poll now: a scan
// queued (in Stash or the ledger), our job's end, or a reconnect (events
// may have been missed). Our job's progress only feeds the progress line.
func (p *pass) acts(ctx context.Context, j *tracked, w wake) bool {
	switch {
	case w.resync || w.ledger != 0:
		return true
	case w.job == nil:
		return false
	case w.job.Job.ID == j.stashID:
		if w.job.Type == stash.JobRemove {
			return true
		}
		if j.stop == nil || w.job.Job.Status != stash.JobRunning {
			p.lis.heard.Store(true)
			p.progress(ctx, j, w.job.Job)
		}
		return false
	}
	return w.job.Type == stash.JobAdd && w.job.Job.IsScan() && j.stop == nil
}

// progress shows the job's state on the progress line and stores its
// progress in the ledger (at most every few seconds when events pour in).
func (p *pass) progress(ctx context.Context, j *tracked, job stash.Job) {
	if p.lis != nil && p.lis.socket.Load() {
		p.lis.heard.Store(true)
	}
	p.observer().Progress(job)
	if job.Progress == nil || time.Since(p.progressAt) < progressEvery && !job.Status.Ended() {
		return
	}
	p.progressAt = time.Now()
	if err := p.Store.SetProgress(ctx, j.ledgerID, *job.Progress); err != nil && ctx.Err() == nil {
		j.log.Warn("store job progress failed; still following the job", "error", err)
	}
}

// progressEvery bounds the ledger's progress writes when Stash pushes an
// update every 100 ms.
const progressEvery = 5 * time.Second

// lingerForLog keeps listening a moment after the job ended: Stash's log
// lines about its last scenes come after its REMOVE.
func (p *pass) lingerForLog(ctx context.Context) {
	if p.lis == nil || !p.lis.socket.Load() {
		return
	}
	_ = p.wait(ctx, linger)
}

// fenceCrossed says why the job must stop now for the host's sake: the
// maintenance window closed, or the free space fell below the floor (the
// fence as between batches). A disk that cannot be measured stops
// nothing.
func (p *pass) fenceCrossed(closes time.Time) *stopCause {
	s, err := p.fenceVerdict(fenceBetweenBatches)
	if err != nil {
		p.log.Warn("cannot measure the free space; the job goes on", "path", p.set.Fence.Path, "error", err)
	}
	if s == nil {
		return nil
	}
	reason := s.err.Error()
	if s.outcome == db.OutcomeCancelledForWindow {
		reason = "outside the maintenance window " + p.set.Fence.Window.String()
		if !closes.IsZero() {
			reason = "maintenance window closed at " + closes.Format("15:04")
		}
	}
	return &stopCause{outcome: s.outcome, reason: reason}
}

// stopJob asks Stash to stop the job for cause and records it. A failed
// stopJob is tried again at the next poll; only an interruption ends the
// monitor.
func (p *pass) stopJob(ctx context.Context, j *tracked, cause *stopCause) error {
	if err := p.Stash.StopJob(ctx, j.stashID); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j.log.Warn("stopJob failed; will try again at the next poll", "error", err, "reason", cause.reason)
		return nil
	}
	j.stop = cause
	if cause.outcome != db.OutcomeCancelledForScan {
		j.log.Info(fmt.Sprintf("Cancelling generation job %s: %s", j.stashID, cause.reason))
	}
	if err := p.Store.TransitionJob(ctx, j.ledgerID, []db.JobStatus{db.JobRunning}, db.JobCancelling,
		db.ActionCancelled, cause.reason, ""); err != nil {
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
	p.keepLog(ctx, j)
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
	case j.last.Status == stash.JobCancelled && j.stop != nil:
		to = db.JobCancelled // the CANCELLED action was recorded when we stopped it
		why := "so a scan can run"
		if j.stop.outcome != db.OutcomeCancelledForScan {
			why = "because the " + j.stop.reason
		}
		end = &stop{outcome: j.stop.outcome, code: ExitTempFail,
			err: fmt.Errorf("stash job %s cancelled %s; %d scenes finished before it stopped", j.stashID, why, complete)}
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
