package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The reads behind `stashgen status`, `stashgen history` and the metrics
// file. They only read, and touch nothing a run writes on its hot path.

// RunCounts counts the finished runs by outcome (runs still marked running
// are left out: their outcome is not known yet).
func (s *Store) RunCounts(ctx context.Context) (map[Outcome]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT outcome, count(*) FROM runs WHERE outcome <> 'running' GROUP BY outcome`)
	if err != nil {
		return nil, s.wrap("count runs", err)
	}
	out := map[Outcome]int64{}
	var (
		o Outcome
		n int64
	)
	_, err = pgx.ForEachRow(rows, []any{&o, &n}, func() error {
		out[o] = n
		return nil
	})
	if err != nil {
		return nil, s.wrap("count runs", err)
	}
	return out, nil
}

// LastRunWith returns the newest run whose outcome is one of outcomes;
// ErrNotFound when there is none.
func (s *Store) LastRunWith(ctx context.Context, outcomes []Outcome) (Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE outcome = ANY($1) ORDER BY id DESC LIMIT 1`, outcomes)
	if err != nil {
		return Run{}, s.wrap("find last run", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	return r, s.wrap("find last run", err)
}

// RunAction is a job action together with the run the job belongs to.
type RunAction struct {
	RunID      int64
	JobID      int64
	StashJobID string
	Action     Action
	Reason     string
	At         time.Time
}

// RunActions lists the actions of the ledger jobs of the given runs, in
// the order they happened. A job adopted by a later run belongs to that
// run, with all its actions.
func (s *Store) RunActions(ctx context.Context, runIDs []int64) ([]RunAction, error) {
	const q = `SELECT j.run_id, a.job_id, coalesce(j.stash_job_id, ''), a.action, coalesce(a.reason, ''), a.at
		FROM job_actions a JOIN jobs j ON j.id = a.job_id
		WHERE j.run_id = ANY($1) ORDER BY a.id`
	rows, err := s.pool.Query(ctx, q, runIDs)
	if err != nil {
		return nil, s.wrap("list job actions of runs", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RunAction, error) {
		var a RunAction
		return a, row.Scan(&a.RunID, &a.JobID, &a.StashJobID, &a.Action, &a.Reason, &a.At)
	})
	return out, s.wrap("list job actions of runs", err)
}
