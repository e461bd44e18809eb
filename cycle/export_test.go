package cycle

import "context"

// Sync runs one run's sync step on its own, for benchmarks and tests that
// measure it without the rest of a run.
func (r *Runner) Sync(ctx context.Context, run *Run, full bool) (SyncStats, error) {
	return r.newPass(run).syncAll(ctx, full)
}

// CheckScenes runs one run's check step on its own, likewise.
func (r *Runner) CheckScenes(ctx context.Context, run *Run, full bool) (CheckStats, error) {
	return r.newPass(run).checkScenes(ctx, full)
}
