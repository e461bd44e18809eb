package cycle

import "context"

// ListenWait is the longest a run waits for its websocket before its first
// job: a test's Wait recognises it by this duration.
const ListenWait = listenWait

// Sync runs one run's sync step on its own, for benchmarks and tests that
// measure it without the rest of a run.
func (r *Runner) Sync(ctx context.Context, run *Run, full bool) (SyncStats, error) {
	return r.newPass(run).syncAll(ctx, full)
}

// CheckScenes runs one run's check step on its own, likewise.
func (r *Runner) CheckScenes(ctx context.Context, run *Run, full bool) (CheckStats, error) {
	return r.newPass(run).checkScenes(ctx, full)
}

// VerifyBatch is the verification after a job, on its own.
func (r *Runner) VerifyBatch(ctx context.Context, run *Run, ids []int64) (CheckStats, error) {
	v, err := r.newPass(run).verifyBatch(ctx, ids)
	var st CheckStats
	st.add(v)
	return st, err
}
