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

// fenceStop checks the fence and, when it says no, logs why and returns
// the stop it means at w.
func (p *pass) fenceStop(w fenceWhen) error {
	s, err := p.fenceVerdict(w)
	if s == nil {
		return err
	}
	var closed *fence.ClosedError
	if errors.As(s.err, &closed) {
		p.log.Info(w.closed, "window", closed.Window.String(), "opens", closed.Opens)
	} else {
		p.log.Warn(w.low, "error", s.err)
	}
	return s
}

// fenceVerdict is the stop the fence's answer means at w: nil when the
// fence is open, or with the error of measuring the free space.
func (p *pass) fenceVerdict(w fenceWhen) (*stop, error) {
	err := p.checkFence(p.set.Fence)
	var closed *fence.ClosedError
	var low *fence.LowSpaceError
	switch {
	case errors.As(err, &closed):
		return &stop{outcome: w.closedOutcome, code: ExitTempFail, err: err}, nil
	case errors.As(err, &low):
		return &stop{outcome: w.lowOutcome, code: ExitTempFail, err: err}, nil
	}
	return nil, err
}
