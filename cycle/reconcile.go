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
// on unless it was interrupted or could not do its work.
func (p *pass) reconcile(ctx context.Context) error {
	p.run.SetPhase(PhaseReconcile)
	if err := p.abandonDead(ctx); err != nil {
		return err
	}
	jobs, err := p.Store.ActiveJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.CreatedBy != db.CreatedBy || j.Type != db.TypeGenerate {
			continue
		}
		if j.RunID != nil {
			if *j.RunID == p.run.ID {
				continue
			}
			owner, err := p.Store.GetRun(ctx, *j.RunID)
			if err != nil && !errors.Is(err, db.ErrNotFound) {
				return err
			}
			if err == nil && owner.Outcome == db.OutcomeRunning {
				continue // its run may be alive: the busy check stands aside
			}
		}
		p.reconciled = true
		if err := p.adopt(ctx, j); ends(err) {
			return err
		}
	}
	// The busy check reuses what was read, unless adopting changed it.
	p.ledger, p.ledgerFresh = jobs, !p.reconciled
	return nil
}

// abandonDead marks the runs that died as abandoned.
func (p *pass) abandonDead(ctx context.Context) error {
	stale := 3 * p.set.HeartbeatInterval
	runs, err := p.Store.RunningRuns(ctx, p.run.ID)
	if err != nil || len(runs) == 0 {
		return err
	}
	now, err := p.Store.Now(ctx) // ages by the database's clock, which wrote them
	if err != nil {
		return err
	}
	prev := p.run.prevBeat
	for _, old := range runs {
		// Dead: its process is gone from this host, or it is old enough
		// to have beaten and its heartbeat is stale (another host, or a
		// pid reused by an unrelated process). The age guard spares runs
		// that just started and are about to stand aside.
		gone := old.Host == p.Host && !ProcessAlive(old.PID)
		beatFresh := prev != nil && prev.RunID == old.ID && now.Sub(prev.BeatAt) < stale
		if !gone && (now.Sub(old.StartedAt) < stale || beatFresh) {
			continue
		}
		why := fmt.Sprintf("process gone: pid %d on %s, no heartbeat within %s", old.PID, old.Host, stale)
		p.log.Warn("an earlier run died; marking it abandoned", "dead_run_id", old.ID, "reason", why)
		if err := p.Store.AbandonRun(ctx, old.ID, why); err != nil {
			return err
		}
	}
	return nil
}

// ProcessAlive reports whether a process with this pid exists on this
// host: kill(pid, 0), where a process we may not signal still exists.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// adopt reconciles one orphaned ledger job with Stash.
func (p *pass) adopt(ctx context.Context, dead db.Job) error {
	j := &tracked{
		ledgerID: dead.ID, stashID: dead.StashJobID, scenes: dead.SceneIDs,
		log: p.log.With(KeyJobID, dead.ID, KeyStashJobID, dead.StashJobID),
	}
	if dead.Status == db.JobCancelling { // the dead run stopped it for a scan
		j.stop = &stopCause{outcome: db.OutcomeCancelledForScan}
	}
	if j.stashID == "" {
		// Died between recording the launch and storing Stash's answer:
		// the job may or may not exist.
		queue, err := p.Stash.JobQueue(ctx)
		if err != nil {
			return err
		}
		for _, sj := range queue {
			if ours(dead, sj) {
				j.stashID = sj.ID
				break
			}
		}
	}
	var sj stash.Job
	err := stash.ErrJobNotFound
	if j.stashID != "" {
		sj, err = p.Stash.FindJob(ctx, j.stashID)
	}
	switch {
	case errors.Is(err, stash.ErrJobNotFound):
		j.vanished, j.unseen = true, true
		if j.stashID == "" {
			// No id to look up: not a job Stash forgot, one we never knew.
			j.lost = "lost: the run died before it recorded Stash's answer to the launch, and no job of ours is in Stash's queue"
			j.log.Warn("an orphaned generation job has no stash job id and none of ours is queued in stash; closing it as lost")
		} else {
			j.log.Warn("an orphaned generation job is unknown to stash; closing it as lost")
		}
		return p.settle(ctx, j, nil)
	case err != nil:
		return err
	case !ours(dead, sj):
		// Stash restarted: its job ids start again at 1.
		j.log.Warn("stash job with that id is not ours (stash restarted?); closing the orphan as lost",
			"stash_description", sj.Description, "stash_added", sj.AddTime)
		j.vanished, j.unseen = true, true
		j.lost = fmt.Sprintf("lost: stash job %s is now a different job (%s, added %s): stash restarted since ours was launched, and its job ids start again at 1",
			j.stashID, sj.Description, sj.AddTime.UTC().Format(time.RFC3339))
		return p.settle(ctx, j, nil)
	}
	if j.stashID != dead.StashJobID {
		if err := p.Store.SetStashJobID(ctx, j.ledgerID, j.stashID); err != nil {
			j.log.Warn("store stash job id failed", "error", err)
		}
	}
	if sj.Status.Ended() {
		j.log.Info("an orphaned generation job ended while no run followed it; closing it", "status", sj.Status)
		j.last = sj
		return p.settle(ctx, j, nil)
	}
	if err := p.Store.AdoptJob(ctx, j.ledgerID, p.run.ID, fmt.Sprintf("run %d adopted stash job %s (%s) from a dead run", p.run.ID, j.stashID, sj.Status)); err != nil {
		return err
	}
	j.log.Info("ADOPTED an orphaned generation job; following it to its end", "status", sj.Status, "progress", percent(sj.Progress))
	if p.set.Listen { // the scenes' files, to tell which one Stash's log names
		if _, _, j.paths, err = p.knownOnly(ctx, j.scenes); err != nil {
			return err
		}
	}
	return p.follow(ctx, j)
}

// ours tells our generate job from a stranger that got the same id after a
// Stash restart: it must be a generate job, added when we launched ours.
func ours(j db.Job, sj stash.Job) bool {
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
