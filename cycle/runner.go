package cycle

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
)

// Log attribute keys, shared by every line stashgen writes.
const (
	KeyRunID      = "run_id"
	KeyJobID      = "job_id"
	KeyStashJobID = "stash_job_id"
	KeySceneCount = "scene_count"
)

// Runner runs one command under the rules every run obeys: one audit row,
// a heartbeat, the database lock, and a final write that survives a signal.
// It holds what lives as long as the process; what one run learns lives in
// a pass.
type Runner struct {
	Stash    Stash
	Store    Store
	Log      *slog.Logger
	Settings Settings
	Host     string
	PID      int
	Version  string
	// Wait pauses between polls and retries, and measures the longest a
	// run waits for its websocket to open. Nil means a real timer; tests
	// replace it so that nothing sleeps.
	Wait func(ctx context.Context, d time.Duration) error
	// Stderr receives the audit row as one JSON line when the database
	// cannot take it. Nil means os.Stderr.
	Stderr io.Writer
	// Observer sees each run: its id, phases, the Stash job's progress and
	// its end. Nil means nobody.
	Observer Observer
	// Now is the clock the maintenance window is read on; nil means
	// time.Now. Tests replace it to cross a window's edge.
	Now func() time.Time
}

// Body is what a command does inside its run: Runner.Once, or a check.
type Body func(ctx context.Context, run *Run) Result

// Run is one process's run, as recorded in the runs table.
type Run struct {
	ID      int64
	Log     *slog.Logger
	Started time.Time

	mu    sync.Mutex
	phase Phase
	obs   Observer
	// prevBeat is the heartbeat row as this run found it, before its own
	// first beat: what the last run left.
	prevBeat *db.Heartbeat
}

// SetPhase names what the run is doing, for the heartbeat and status.
func (r *Run) SetPhase(p Phase) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
	if r.obs != nil {
		r.obs.Phase(p)
	}
}

// Phase is what the run is doing now.
func (r *Run) Phase() Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phase
}

func (r *Runner) settings() Settings { return r.Settings.withDefaults() }

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// checkFence is the host's fence at now (fence.Fence.Check).
func (r *Runner) checkFence(f fence.Fence) error { return f.Check(r.now()) }

func (r *Runner) observer() Observer {
	if r.Observer == nil {
		return nobody{}
	}
	return r.Observer
}

func (r *Runner) wait(ctx context.Context, d time.Duration) error {
	if r.Wait != nil {
		return r.Wait(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Execute runs body as one audited run of command. fileLocked says whether
// the caller got the lock file; a run without it (or without the database
// lock) records skipped_locked and does nothing else. The observer learns
// the run's id as soon as its audit row exists, and its result once the
// row is final.
func (r *Runner) Execute(ctx context.Context, command string, fileLocked bool, lockFile string, body Body) Result {
	obs := r.observer()
	id, err := r.Store.StartRun(ctx, command, r.Host, r.PID, r.Version)
	if err != nil {
		res := Failure(ctx, err)
		obs.Finished(res)
		return res
	}
	run := &Run{ID: id, Log: r.Log.With(KeyRunID, id), Started: time.Now(), phase: PhaseStart, obs: obs}
	obs.Started(id)
	res := r.locked(ctx, run, fileLocked, lockFile, body)
	res = r.finish(ctx, run, res)
	obs.Finished(res)
	return res
}

func (r *Runner) locked(ctx context.Context, run *Run, fileLocked bool, lockFile string, body Body) Result {
	if !fileLocked {
		run.Log.Warn("another stashgen run holds the lock file; standing aside", "lock_file", lockFile)
		return Result{Outcome: db.OutcomeSkippedLocked, ExitCode: ExitTempFail}
	}
	lock, ok, err := r.Store.TryRunLock(ctx)
	if err != nil {
		return Failure(ctx, err)
	}
	if !ok {
		run.Log.Warn("another stashgen run holds the database lock (another host sharing this database?); standing aside",
			"database", r.Store.Host())
		return Result{Outcome: db.OutcomeSkippedLocked, ExitCode: ExitTempFail}
	}
	defer lock.Release()

	if hb, err := r.Store.LastHeartbeat(ctx); err == nil {
		run.prevBeat = &hb
	}
	r.beat(ctx, run)
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.heartbeat(hbCtx, run) })
	res := body(ctx, run)
	stopHeartbeat()
	wg.Wait()
	run.SetPhase(PhaseDone)
	r.beat(context.WithoutCancel(ctx), run)
	return res
}

// heartbeat refreshes the heartbeat row until ctx ends. A failed beat is
// logged and tried again at the next tick: losing the database for a while
// must not stop a run that is following a Stash job.
func (r *Runner) heartbeat(ctx context.Context, run *Run) {
	every := r.settings().HeartbeatInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.beat(ctx, run)
		}
	}
}

func (r *Runner) beat(ctx context.Context, run *Run) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := r.Store.Beat(ctx, db.Heartbeat{Host: r.Host, PID: r.PID, RunID: run.ID, Phase: string(run.Phase()), StartedAt: run.Started})
	if err != nil && ctx.Err() == nil {
		run.Log.Warn("write heartbeat failed; will retry", "error", err)
	}
}

// finish writes the audit row, retrying: it runs after a signal too, so it
// uses a context that is not cancelled. When the database will not take
// it, the row goes to stderr as one JSON line and the exit code becomes 69.
func (r *Runner) finish(ctx context.Context, run *Run, res Result) Result {
	end := db.RunEnd{
		Outcome:         res.Outcome,
		ExitCode:        res.ExitCode,
		ScenesGenerated: res.Generated,
		StashJobID:      res.StashJobID,
		Listening:       res.Listening,
	}
	if res.Counts != nil {
		end.PendingScenes = &res.Counts.Pending
		end.BackoffScenes = &res.Counts.Backoff
		end.QuarantinedScenes = &res.Counts.Quarantined
	}
	if res.Err != nil {
		end.Error = res.Err.Error()
	}
	wctx := context.WithoutCancel(ctx)
	var err error
	for attempt, delay := 0, time.Second; attempt < 4; attempt, delay = attempt+1, delay*2 {
		if attempt > 0 {
			_ = r.wait(wctx, delay)
		}
		tctx, cancel := context.WithTimeout(wctx, r.settings().CleanupTimeout)
		err = r.Store.FinishRun(tctx, run.ID, end)
		cancel()
		if err == nil {
			break
		}
		run.Log.Warn("write audit row failed; retrying", "error", err, "attempt", attempt+1)
	}
	level := slog.LevelInfo
	if res.ExitCode != ExitOK && res.ExitCode != ExitTempFail {
		level = slog.LevelError
	}
	attrs := []any{"outcome", res.Outcome, "exit_code", res.ExitCode}
	if res.Generated != nil {
		attrs = append(attrs, "scenes_generated", *res.Generated)
	}
	if res.StashJobID != "" {
		attrs = append(attrs, KeyStashJobID, res.StashJobID)
	}
	if res.Err != nil {
		attrs = append(attrs, "error", res.Err)
	}
	run.Log.Log(ctx, level, "run finished", attrs...)
	if err != nil {
		r.dumpAuditRow(run, end, err)
		if res.ExitCode == ExitOK || res.ExitCode == ExitTempFail {
			res.ExitCode = ExitUnavailable
			res.Err = err
		}
	}
	return res
}

func (r *Runner) dumpAuditRow(run *Run, end db.RunEnd, cause error) {
	w := r.Stderr
	if w == nil {
		w = os.Stderr
	}
	row := map[string]any{
		"audit_row_not_written": cause.Error(),
		"run_id":                run.ID, "host": r.Host, "pid": r.PID, "version": r.Version,
		"started_at": run.Started.UTC().Format(time.RFC3339), "finished_at": time.Now().UTC().Format(time.RFC3339),
		"outcome": end.Outcome, "exit_code": end.ExitCode, "stash_job_id": end.StashJobID, "error": end.Error,
		"pending_scenes": end.PendingScenes, "scenes_generated": end.ScenesGenerated,
	}
	b, _ := json.Marshal(row)
	_, _ = w.Write(append(b, '\n'))
}
