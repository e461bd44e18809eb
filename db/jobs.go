package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// JobStatus is a ledger job's state, mirrored by the CHECK constraint on
// jobs.status.
type JobStatus string

const (
	JobPending    JobStatus = "pending"    // inserted by another tool, not started
	JobRunning    JobStatus = "running"    // launched in Stash and being followed
	JobCancelling JobStatus = "cancelling" // stopJob sent, Stash has not confirmed
	JobCompleted  JobStatus = "completed"  // Stash reported FINISHED
	JobFailed     JobStatus = "failed"     // Stash reported FAILED, or lost track
	JobCancelled  JobStatus = "cancelled"  // Stash reported CANCELLED, or we were interrupted
)

// ActiveStatuses are the states that make stashgen stand aside.
var ActiveStatuses = []JobStatus{JobPending, JobRunning, JobCancelling}

// Job types stashgen knows; the column is free text.
const (
	TypeGenerate = "stash_generate"
	TypeScan     = "stash_scan"
)

// CreatedBy marks stashgen's own ledger rows.
const CreatedBy = "stashgen"

// Action is a job_actions entry.
type Action string

const (
	ActionLaunched  Action = "LAUNCHED"
	ActionCancelled Action = "CANCELLED"
	ActionFinished  Action = "FINISHED"
	ActionFailed    Action = "FAILED"
	ActionAdopted   Action = "ADOPTED"
)

// Job is one ledger row.
type Job struct {
	ID         int64
	Type       string
	Status     JobStatus
	StashJobID string
	SceneIDs   []int64
	Progress   *float64
	Error      string
	CreatedBy  string
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
	RunID      *int64
	// StashAddedAt is Stash's addTime for StashJobID, once seen.
	StashAddedAt *time.Time
}

const jobColumns = `id, type, status, coalesce(stash_job_id, ''), scene_ids, progress, coalesce(error, ''),
	created_by, created_at, started_at, finished_at, run_id, stash_added_at`

func scanJob(row pgx.CollectableRow) (Job, error) {
	var j Job
	err := row.Scan(&j.ID, &j.Type, &j.Status, &j.StashJobID, &j.SceneIDs, &j.Progress, &j.Error,
		&j.CreatedBy, &j.CreatedAt, &j.StartedAt, &j.FinishedAt, &j.RunID, &j.StashAddedAt)
	return j, err
}

// ActiveJobs lists ledger jobs that are pending, running or cancelling, of
// any type and from any tool.
func (s *Store) ActiveJobs(ctx context.Context) ([]Job, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE status = ANY($1) ORDER BY id`, ActiveStatuses)
	if err != nil {
		return nil, s.wrap("list active jobs", err)
	}
	out, err := pgx.CollectRows(rows, scanJob)
	return out, s.wrap("list active jobs", err)
}

// ActiveScans lists the ids of ledger scan jobs that are pending or
// running. Monitoring asks this every poll, so it reads ids only.
func (s *Store) ActiveScans(ctx context.Context) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM jobs WHERE type = $1 AND status IN ('pending', 'running') ORDER BY id`, TypeScan)
	if err != nil {
		return nil, s.wrap("list scan jobs", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, s.wrap("list scan jobs", err)
}

// LaunchJob records a generate job as running, with its LAUNCHED action, in
// one transaction, before Stash is asked: a crash after the request still
// leaves a ledger row for the next run to reconcile.
func (s *Store) LaunchJob(ctx context.Context, runID int64, sceneIDs []int64, reason string) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const q = `INSERT INTO jobs (type, status, scene_ids, created_by, started_at, run_id)
			VALUES ($1, 'running', $2, $3, now(), $4) RETURNING id`
		if err := tx.QueryRow(ctx, q, TypeGenerate, sceneIDs, CreatedBy, runID).Scan(&id); err != nil {
			return err
		}
		return addAction(ctx, tx, id, ActionLaunched, reason)
	})
	return id, s.wrap("record launched job", err)
}

// SetStashJobID stores the id Stash gave the job.
func (s *Store) SetStashJobID(ctx context.Context, id int64, stashID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET stash_job_id = $2 WHERE id = $1`, id, stashID)
	return s.wrap("store stash job id", err)
}

// SetStashAddedAt stores when Stash queued the job, which tells it apart
// from a later job that got the same id after a Stash restart. The first
// value may come from the Date header of Stash's answer to the launch;
// Stash's own addTime, once seen, replaces it.
func (s *Store) SetStashAddedAt(ctx context.Context, id int64, t time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET stash_added_at = $2 WHERE id = $1`, id, t)
	return s.wrap("store stash job add time", err)
}

// SetProgress stores Stash's progress (0..1).
func (s *Store) SetProgress(ctx context.Context, id int64, p float64) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET progress = $2 WHERE id = $1`, id, p)
	return s.wrap("store job progress", err)
}

// TransitionJob moves a job from one of the given states to another and
// records the action, in one transaction. ErrConflict when the job was not
// in any of the from states (someone else already moved it). A final
// status sets finished_at.
func (s *Store) TransitionJob(ctx context.Context, id int64, from []JobStatus, to JobStatus, action Action, reason, errText string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const q = `UPDATE jobs SET status = $3,
				error = coalesce(nullif($4, ''), error),
				finished_at = CASE WHEN $3 IN ('completed', 'failed', 'cancelled') THEN now() ELSE finished_at END
			WHERE id = $1 AND status = ANY($2)`
		tag, err := tx.Exec(ctx, q, id, from, to, errText)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrConflict
		}
		if action == "" {
			return nil
		}
		return addAction(ctx, tx, id, action, reason)
	})
	return s.wrap("update job", err)
}

// execer is what pool and transaction have in common.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func addAction(ctx context.Context, x execer, id int64, action Action, reason string) error {
	_, err := x.Exec(ctx, `INSERT INTO job_actions (job_id, action, reason) VALUES ($1, $2, nullif($3, ''))`, id, action, reason)
	return err
}

// JobAction is one job_actions row.
type JobAction struct {
	JobID  int64
	Action Action
	Reason string
	At     time.Time
}

// Actions lists a job's actions in order.
func (s *Store) Actions(ctx context.Context, jobID int64) ([]JobAction, error) {
	rows, err := s.pool.Query(ctx, `SELECT job_id, action, coalesce(reason, ''), at FROM job_actions WHERE job_id = $1 ORDER BY id`, jobID)
	if err != nil {
		return nil, s.wrap("list job actions", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (JobAction, error) {
		var a JobAction
		return a, row.Scan(&a.JobID, &a.Action, &a.Reason, &a.At)
	})
	return out, s.wrap("list job actions", err)
}

// AdoptJob hands a job to the adopting run; ErrNotFound when the job is gone.
func (s *Store) AdoptJob(ctx context.Context, id, runID int64, reason string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE jobs SET run_id = $2 WHERE id = $1`, id, runID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return addAction(ctx, tx, id, ActionAdopted, reason)
	})
	return s.wrap("adopt job", err)
}
