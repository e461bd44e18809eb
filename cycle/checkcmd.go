package cycle

import (
	"context"

	"github.com/stashgen/stashgen/db"
)

// Check is the body of `stashgen check`: sync, then probe. Incremental by
// default; full re-syncs everything, forgets scenes Stash no longer has,
// and probes every scene, quarantined ones included.
func (r *Runner) Check(ctx context.Context, run *Run, full bool) Result {
	var since = run.Started
	if full {
		now, err := r.Store.Now(ctx)
		if err != nil {
			return failure(ctx, err)
		}
		since = now
	}
	if _, err := r.Sync(ctx, run, full); err != nil {
		return failure(ctx, err)
	}
	var swept int64
	if full {
		n, err := r.Store.SweepScenes(ctx, since)
		if err != nil {
			return failure(ctx, err)
		}
		swept = n
		if n > 0 {
			run.Log.Info("forgot scenes that stash no longer has", KeySceneCount, n)
		}
	}
	st, err := r.CheckScenes(ctx, run, full)
	if err != nil {
		return failure(ctx, err)
	}
	counts, err := r.Store.PendingCounts(ctx)
	if err != nil {
		return failure(ctx, err)
	}
	run.Log.Info("check finished", "checked", st.Checked, "complete", st.Complete, "incomplete", st.Incomplete,
		"removed", swept+int64(st.Gone), "pending", counts.Pending, "backing_off", counts.Backoff, "quarantined", counts.Quarantined)
	res := result(db.OutcomeChecked, ExitOK)
	res.Counts = &counts
	return res
}
