package cycle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// activity is what keeps a run from starting work: the jobs active in
// Stash's queue and in the ledger.
type activity struct {
	stash  []stash.Job
	ledger []db.Job
	// ledgerErr: the ledger could not be read, which counts as busy:
	// better to skip an hour than to start a second generation.
	ledgerErr error
}

func (a activity) busy() bool { return len(a.stash)+len(a.ledger) > 0 || a.ledgerErr != nil }

// reasons names each active job, for the run's error and the dry run.
func (a activity) reasons() []string {
	var out []string
	for _, j := range a.stash {
		out = append(out, fmt.Sprintf("stash job %s (%s, %s)", j.ID, j.Description, j.Status))
	}
	if a.ledgerErr != nil {
		out = append(out, "job ledger unreadable: "+a.ledgerErr.Error())
	}
	for _, j := range a.ledger {
		out = append(out, fmt.Sprintf("ledger job %d (%s, %s, by %s)", j.ID, j.Type, j.Status, j.CreatedBy))
	}
	return out
}

// activity reads Stash's queue and the ledger (unless reconcile's reading
// still holds). An unreachable Stash is an error; an unreadable ledger is
// activity.
func (p *pass) activity(ctx context.Context) (activity, error) {
	var a activity
	var err error
	if p.set.Toggles.Complete() {
		a.stash, err = p.Stash.JobQueue(ctx)
	} else {
		// Stash's generate defaults come along, so that a change of them is
		// noticed without a request of its own.
		var d stash.Toggles
		if a.stash, d, err = p.Stash.QueueAndDefaults(ctx); err == nil {
			p.fromStash = &d
		}
	}
	if err != nil {
		return a, err
	}
	if p.ledgerFresh {
		a.ledger = p.ledger
		return a, nil
	}
	a.ledger, a.ledgerErr = p.Store.ActiveJobs(ctx)
	if a.ledgerErr != nil && ctx.Err() != nil {
		return a, context.Cause(ctx)
	}
	return a, nil
}

// busyCheck stands aside when Stash's queue or the ledger has any active
// job.
func (p *pass) busyCheck(ctx context.Context) error {
	p.run.SetPhase(PhaseBusyCheck)
	a, err := p.activity(ctx)
	if err != nil {
		return err
	}
	for _, j := range a.stash {
		p.log.Info("stash job active", KeyStashJobID, j.ID, "description", j.Description, "status", j.Status)
	}
	if a.ledgerErr != nil {
		p.log.Warn("cannot read the job ledger; standing aside to be safe", "error", a.ledgerErr)
	}
	for _, j := range a.ledger {
		p.log.Info("ledger job active", KeyJobID, j.ID, "type", j.Type, "status", j.Status, "created_by", j.CreatedBy)
	}
	if !a.busy() {
		return nil
	}
	reasons := a.reasons()
	p.log.Info("another job is active; standing aside", "active_jobs", len(reasons))
	return &stop{outcome: db.OutcomeSkippedBusy, code: ExitTempFail, err: errors.New("busy: " + strings.Join(reasons, "; "))}
}

// queueWaiting is the check before every batch after the first: a job that
// arrived meanwhile goes first.
func (p *pass) queueWaiting(ctx context.Context) error {
	jobs, err := p.Stash.JobQueue(ctx)
	if err != nil {
		return err
	}
	scans := append(p.ledgerScans(ctx), stashScans(jobs)...)
	if len(scans) > 0 {
		p.log.Info("a scan is waiting; not launching more batches", "scans", strings.Join(scans, ", "))
		return &stop{outcome: db.OutcomeCancelledForScan, code: ExitTempFail, err: errors.New("scan waiting: " + strings.Join(scans, ", "))}
	}
	if len(jobs) > 0 {
		j := jobs[0]
		p.log.Info("another stash job is queued; not launching more batches", KeyStashJobID, j.ID, "description", j.Description, "status", j.Status)
		return &stop{outcome: db.OutcomeSkippedBusy, code: ExitTempFail,
			err: errors.New("busy: " + activity{stash: jobs[:1]}.reasons()[0])}
	}
	return nil
}

// scanWaiting lists the scan jobs in Stash's queue and the ledger, while a
// job of ours runs. Errors are logged: the scan check must not stop a
// generation.
func (p *pass) scanWaiting(ctx context.Context) []string {
	jobs, err := p.Stash.JobQueue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("cannot read stash's job queue for scans", "error", err)
		}
		return nil
	}
	return append(p.ledgerScans(ctx), stashScans(jobs)...)
}

func stashScans(jobs []stash.Job) []string {
	var out []string
	for _, j := range jobs {
		if j.IsScan() {
			out = append(out, "stash job "+j.ID)
		}
	}
	return out
}

// ledgerScans lists ledger scan jobs that are pending or running. An error
// is logged and ignored: the scan check must not stop a generation.
func (p *pass) ledgerScans(ctx context.Context) []string {
	ids, err := p.Store.ActiveScans(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("cannot read the job ledger for scan jobs", "error", err)
		}
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprintf("ledger job %d", id)
	}
	return out
}
