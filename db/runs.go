package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Outcome is what a run did, mirrored by the CHECK constraint on
// runs.outcome.
type Outcome string

const (
	OutcomeRunning          Outcome = "running"            // the run has not finished (or was killed)
	OutcomeGenerated        Outcome = "generated"          // a generate job ran to its end
	OutcomeNothingToDo      Outcome = "nothing_to_do"      // no scene pending
	OutcomeChecked          Outcome = "checked"            // `stashgen check` finished
	OutcomeAdopted          Outcome = "adopted"            // an orphaned job was reconciled and nothing else was due
	OutcomeFailed           Outcome = "failed"             // the generate job failed or ended unknown
	OutcomeError            Outcome = "error"              // stashgen could not do its work
	OutcomeSkippedLocked    Outcome = "skipped_locked"     // another run holds a lock
	OutcomeSkippedBusy      Outcome = "skipped_busy"       // Stash or the ledger had an active job
	OutcomeCancelledForScan Outcome = "cancelled_for_scan" // our job was stopped so a scan can run
	OutcomeInterrupted      Outcome = "interrupted"        // SIGINT/SIGTERM
	OutcomeAbandoned        Outcome = "abandoned"          // the process died; set by a later run

	// The fence (generate.window, min_free_space): each ends a run with
	// exit 75, "try later". The window's two are the schedule working as
	// configured; the free space's two will not clear by themselves, so
	// status keeps them apart.

	// OutcomeSkippedWindow: the run started outside the maintenance
	// window and stood aside before any work.
	OutcomeSkippedWindow Outcome = "skipped_window"
	// OutcomeCancelledForWindow: the window closed while the run worked:
	// its Stash job was stopped, or it started no new batch.
	OutcomeCancelledForWindow Outcome = "cancelled_for_window"
	// OutcomeSkippedLowSpace: free_space_path was below min_free_space
	// before launching, so the run stood aside.
	OutcomeSkippedLowSpace Outcome = "skipped_low_space"
	// OutcomeCancelledForLowSpace: the free space fell below the floor
	// while a job ran (it was stopped) or between batches (no new one was
	// started).
	OutcomeCancelledForLowSpace Outcome = "cancelled_for_low_space"
)

// Run is one row of runs, the audit trail.
type Run struct {
	ID                int64
	Command           string
	StartedAt         time.Time
	FinishedAt        *time.Time
	Host              string
	PID               int
	Version           string
	Outcome           Outcome
	ExitCode          *int
	PendingScenes     *int
	BackoffScenes     *int
	QuarantinedScenes *int
	ScenesGenerated   *int
	StashJobID        *string
	Error             *string
}

// RunEnd is what a run writes when it finishes.
type RunEnd struct {
	Outcome           Outcome
	ExitCode          int
	PendingScenes     *int
	BackoffScenes     *int
	QuarantinedScenes *int
	ScenesGenerated   *int
	StashJobID        string
	Error             string
}

const runColumns = `id, command, started_at, finished_at, host, pid, version, outcome, exit_code,
	pending_scenes, backoff_scenes, quarantined_scenes, scenes_generated, stash_job_id, error`

// StartRun inserts the run's row as soon as the database is reachable, so
// that even a run killed with SIGKILL leaves a trace.
func (s *Store) StartRun(ctx context.Context, command, host string, pid int, version string) (int64, error) {
	const q = `INSERT INTO runs (command, host, pid, version) VALUES ($1, $2, $3, $4) RETURNING id`
	var id int64
	err := s.pool.QueryRow(ctx, q, command, host, pid, version).Scan(&id)
	return id, s.wrap("start run", err)
}

// FinishRun writes the outcome. It only touches a run still marked running,
// so a row is finished exactly once.
func (s *Store) FinishRun(ctx context.Context, id int64, e RunEnd) error {
	const q = `UPDATE runs SET finished_at = now(), outcome = $2, exit_code = $3,
		pending_scenes = $4, backoff_scenes = $5, quarantined_scenes = $6, scenes_generated = $7,
		stash_job_id = nullif($8, ''), error = nullif($9, '')
		WHERE id = $1 AND outcome = 'running'`
	tag, err := s.pool.Exec(ctx, q, id, e.Outcome, e.ExitCode, e.PendingScenes, e.BackoffScenes,
		e.QuarantinedScenes, e.ScenesGenerated, e.StashJobID, e.Error)
	if err != nil {
		return s.wrap("finish run", err)
	}
	if tag.RowsAffected() == 0 {
		return s.wrap("finish run", ErrConflict)
	}
	return nil
}

// AbandonRun marks a run whose process died as abandoned.
func (s *Store) AbandonRun(ctx context.Context, id int64, reason string) error {
	const q = `UPDATE runs SET outcome = 'abandoned', finished_at = now(), error = $2
		WHERE id = $1 AND outcome = 'running'`
	_, err := s.pool.Exec(ctx, q, id, reason)
	return s.wrap("abandon run", err)
}

// RunningRuns lists runs still marked running other than the given one.
func (s *Store) RunningRuns(ctx context.Context, except int64) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE outcome = 'running' AND id <> $1 ORDER BY id`, except)
	if err != nil {
		return nil, s.wrap("list running runs", err)
	}
	out, err := pgx.CollectRows(rows, scanRun)
	return out, s.wrap("list running runs", err)
}

// RecentRuns returns the newest runs first.
func (s *Store) RecentRuns(ctx context.Context, limit int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, s.wrap("list runs", err)
	}
	out, err := pgx.CollectRows(rows, scanRun)
	return out, s.wrap("list runs", err)
}

// GetRun returns one run.
func (s *Store) GetRun(ctx context.Context, id int64) (Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id)
	if err != nil {
		return Run{}, s.wrap("get run", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	return r, s.wrap("get run", err)
}

func scanRun(row pgx.CollectableRow) (Run, error) {
	var r Run
	err := row.Scan(&r.ID, &r.Command, &r.StartedAt, &r.FinishedAt, &r.Host, &r.PID, &r.Version,
		&r.Outcome, &r.ExitCode, &r.PendingScenes, &r.BackoffScenes, &r.QuarantinedScenes,
		&r.ScenesGenerated, &r.StashJobID, &r.Error)
	return r, err
}
