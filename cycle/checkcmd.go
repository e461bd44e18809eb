package cycle

import (
	"context"
	"time"

	"github.com/stashgen/stashgen/db"
)

// Check returns the body of `stashgen check`: sync, then probe.
// Incremental by default; full re-syncs everything, forgets scenes Stash no
// longer has, and probes every scene, quarantined ones included.
func (r *Runner) Check(full bool) Body {
	return func(ctx context.Context, run *Run) Result {
		p := r.newPass(run)
		c := checkPass{pass: p, full: full, since: run.Started}
		return p.result(ctx, p.do(ctx, c.clock, p.noteWanted, c.sync, c.sweep, c.check, c.count))
	}
}

// checkPass is the state of one `stashgen check`.
type checkPass struct {
	*pass
	full  bool
	since time.Time // a full sync's start, by the database's clock
	swept int64
	stats CheckStats
}

// clock notes when a full sync starts, by the database's clock that
// stamps synced_at: rows not touched since were deleted in Stash.
func (c *checkPass) clock(ctx context.Context) error {
	if !c.full {
		return nil
	}
	now, err := c.Store.Now(ctx)
	c.since = now
	return err
}

func (c *checkPass) sync(ctx context.Context) error {
	_, err := c.syncAll(ctx, c.full)
	return err
}

func (c *checkPass) sweep(ctx context.Context) error {
	if !c.full {
		return nil
	}
	n, err := c.Store.SweepScenes(ctx, c.since)
	c.swept = n
	if n > 0 {
		c.log.Info("forgot scenes that stash no longer has", KeySceneCount, n)
	}
	return err
}

func (c *checkPass) check(ctx context.Context) error {
	st, err := c.checkScenes(ctx, c.full)
	c.stats = st
	return err
}

func (c *checkPass) count(ctx context.Context) error {
	counts, err := c.Store.PendingCounts(ctx)
	if err != nil {
		return err
	}
	st := c.stats
	c.log.Info("check finished", "checked", st.Checked, "complete", st.Complete, "incomplete", st.Incomplete,
		"removed", c.swept+int64(st.Gone), "pending", counts.Pending, "backing_off", counts.Backoff, "quarantined", counts.Quarantined)
	c.counts, c.outcome = &counts, db.OutcomeChecked
	return nil
}
