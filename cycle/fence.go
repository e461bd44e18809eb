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
	err := p.checkFence(p.set.Fence)
	var closed *fence.ClosedError
	var low *fence.LowSpaceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &closed):
		p.log.Info("outside the maintenance window; standing aside", "window", closed.Window.String(), "opens", closed.Opens)
		return &stop{outcome: db.OutcomeSkippedWindow, code: ExitTempFail, err: err}
	case errors.As(err, &low):
		p.log.Warn("free space below min_free_space; standing aside until there is room", "error", err)
		return &stop{outcome: db.OutcomeSkippedLowSpace, code: ExitTempFail, err: err}
	}
	return err
}

// fenceBetween is the fence before every batch after the first: no new
// batch starts after the window has closed, or below the floor.
func (p *pass) fenceBetween() error {
	err := p.checkFence(p.set.Fence)
	var closed *fence.ClosedError
	var low *fence.LowSpaceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &closed):
		p.log.Info("the maintenance window has closed; not launching more batches", "window", closed.Window.String())
		return &stop{outcome: db.OutcomeCancelledForWindow, code: ExitTempFail, err: err}
	case errors.As(err, &low):
		p.log.Warn("free space fell below min_free_space; not launching more batches", "error", err)
		return &stop{outcome: db.OutcomeCancelledForLowSpace, code: ExitTempFail, err: err}
	}
	return err
}
