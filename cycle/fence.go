package cycle

import (
	"context"
	"errors"

	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
)

// fence stands aside before any Stash request that could start work when
// the host's fence says no: outside the maintenance window (which costs
// nothing to know), then below the free-space floor. It comes after
// reconcile, which still deals with what a dead run left (and stops a job
// of ours still running outside the window), and before the busy check:
// a run that stands aside probes nothing.
func (p *pass) fence(context.Context) error {
	return p.fenceStop(fenceAtStart)
}

// fenceBetween is the fence before every batch after the first: no new
// batch starts after the window has closed, or below the floor.
func (p *pass) fenceBetween() error {
	return p.fenceStop(fenceBetweenBatches)
}

// fenceWhen is what a run says and records when the fence stops it: at the
// start it has done nothing and stands aside (skipped_*); between batches
// it keeps what it did and launches no more (cancelled_for_*).
type fenceWhen struct {
	closed, low               string
	closedOutcome, lowOutcome db.Outcome
}

var (
	fenceAtStart = fenceWhen{
		closed:        "outside the maintenance window; standing aside",
		low:           "free space below min_free_space; standing aside until there is room",
		closedOutcome: db.OutcomeSkippedWindow,
		lowOutcome:    db.OutcomeSkippedLowSpace,
	}
	fenceBetweenBatches = fenceWhen{
		closed:        "the maintenance window has closed; not launching more batches",
		low:           "free space fell below min_free_space; not launching more batches",
		closedOutcome: db.OutcomeCancelledForWindow,
		lowOutcome:    db.OutcomeCancelledForLowSpace,
	}
)

func (p *pass) fenceStop(w fenceWhen) error {
	err := p.checkFence(p.set.Fence)
	var closed *fence.ClosedError
	var low *fence.LowSpaceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &closed):
		p.log.Info(w.closed, "window", closed.Window.String(), "opens", closed.Opens)
		return &stop{outcome: w.closedOutcome, code: ExitTempFail, err: err}
	case errors.As(err, &low):
		p.log.Warn(w.low, "error", err)
		return &stop{outcome: w.lowOutcome, code: ExitTempFail, err: err}
	}
	return err
}
