package db_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stashgen/stashgen/db"
)

// foreignJob inserts a ledger row the way another tool would: only the
// columns without a default.
func foreignJob(t *testing.T, e env, status string) int64 {
	t.Helper()
	return scalar[int64](t, e, `INSERT INTO jobs (type, status, created_by) VALUES ('stash_scan', $1, 'othertool') RETURNING id`, status)
}

// jobRow reads one ledger row with raw SQL, every column the Store's Job
// carries.
func jobRow(t *testing.T, e env, id int64) db.Job {
	t.Helper()
	var j db.Job
	err := e.raw.QueryRow(t.Context(), `SELECT id, type, status, coalesce(stash_job_id, ''), scene_ids, progress,
		coalesce(error, ''), created_by, created_at, started_at, finished_at, run_id, stash_added_at FROM jobs WHERE id = $1`, id).
		Scan(&j.ID, &j.Type, &j.Status, &j.StashJobID, &j.SceneIDs, &j.Progress, &j.Error,
			&j.CreatedBy, &j.CreatedAt, &j.StartedAt, &j.FinishedAt, &j.RunID, &j.StashAddedAt)
	if err != nil {
		t.Fatalf("read job %d: %v", id, err)
	}
	return j
}

func actionsOf(t *testing.T, e env, id int64) []db.Action {
	t.Helper()
	acts, err := e.s.Actions(t.Context(), id)
	if err != nil {
		t.Fatalf("Actions(%d): %v", id, err)
	}
	var out []db.Action
	for _, a := range acts {
		if a.JobID != id || a.At.IsZero() {
			t.Errorf("action %+v", a)
		}
		out = append(out, a.Action)
	}
	return out
}

// failActions makes every insert into job_actions fail, to show that what
// goes with it is rolled back.
func failActions(t *testing.T, e env) {
	t.Helper()
	e.exec(t, `CREATE FUNCTION fail_action() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'no actions in this test'; END $$`)
	e.exec(t, `CREATE TRIGGER fail_action BEFORE INSERT ON job_actions FOR EACH ROW EXECUTE FUNCTION fail_action()`)
}

func TestStore_ForeignJobIsActive(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	pending := foreignJob(t, e, "pending")
	foreignJob(t, e, "completed")
	cancelling := foreignJob(t, e, "cancelling")

	jobs, err := e.s.ActiveJobs(ctx)
	if err != nil {
		t.Fatalf("ActiveJobs: %v", err)
	}
	var ids []int64
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	if want := []int64{pending, cancelling}; !equalIDs(ids, want) {
		t.Fatalf("ActiveJobs = %v, want %v", ids, want)
	}
	j := jobs[0]
	if j.Type != "stash_scan" || j.Status != db.JobPending || j.CreatedBy != "othertool" || j.StashJobID != "" ||
		len(j.SceneIDs) != 0 || j.Progress != nil || j.Error != "" || j.StartedAt != nil || j.FinishedAt != nil ||
		j.RunID != nil || j.CreatedAt.IsZero() {
		t.Fatalf("foreign job = %+v", j)
	}
}

func TestStore_LaunchJob(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	run := startRun(t, e)
	id, err := e.s.LaunchJob(ctx, run, []int64{3, 1, 2}, "3 scenes pending")
	if err != nil {
		t.Fatalf("LaunchJob: %v", err)
	}
	if err := e.s.SetStashJobID(ctx, id, "17"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetProgress(ctx, id, 0.25); err != nil {
		t.Fatal(err)
	}
	j := jobRow(t, e, id)
	if j.Type != db.TypeGenerate || j.Status != db.JobRunning || j.CreatedBy != db.CreatedBy ||
		!slices.Equal(j.SceneIDs, []int64{3, 1, 2}) || j.StartedAt == nil || j.FinishedAt != nil ||
		j.RunID == nil || *j.RunID != run || j.StashJobID != "17" || j.Progress == nil || *j.Progress != 0.25 {
		t.Fatalf("launched job = %+v", j)
	}
	acts, err := e.s.Actions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 1 || acts[0].Action != db.ActionLaunched || acts[0].Reason != "3 scenes pending" {
		t.Fatalf("actions = %+v, want one LAUNCHED", acts)
	}
	if jobs := column[int64](t, e, `SELECT id FROM jobs WHERE run_id = $1`, run); !equalIDs(jobs, []int64{id}) {
		t.Fatalf("jobs of the run = %v, want [%d]", jobs, id)
	}
}

func TestStore_LaunchJobIsOneTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	run := startRun(t, e)
	failActions(t, e)
	if _, err := e.s.LaunchJob(t.Context(), run, []int64{1}, ""); err == nil {
		t.Fatal("LaunchJob succeeded though its action could not be written")
	}
	if n := scalar[int](t, e, `SELECT count(*) FROM jobs`); n != 0 {
		t.Fatalf("LaunchJob left %d job rows without their action", n)
	}
}

func TestStore_TransitionJob(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	running := []db.JobStatus{db.JobRunning}
	tests := []struct {
		name         string
		status       string
		from         []db.JobStatus
		to           db.JobStatus
		action       db.Action
		errText      string
		wantConflict bool
		wantStatus   db.JobStatus
		wantFinished bool
		wantError    string
		wantActions  []db.Action
	}{
		{"running to completed", "running", running, db.JobCompleted, db.ActionFinished, "", false,
			db.JobCompleted, true, "", []db.Action{db.ActionFinished}},
		{"running to failed with error", "running", running, db.JobFailed, db.ActionFailed, "stash lost the job", false,
			db.JobFailed, true, "stash lost the job", []db.Action{db.ActionFailed}},
		{"running to cancelling is not final", "running", running, db.JobCancelling, db.ActionCancelled, "", false,
			db.JobCancelling, false, "", []db.Action{db.ActionCancelled}},
		{"cancelling to cancelled", "cancelling", []db.JobStatus{db.JobRunning, db.JobCancelling}, db.JobCancelled, "", "", false,
			db.JobCancelled, true, "", nil},
		{"pending adopted to running", "pending", []db.JobStatus{db.JobPending}, db.JobRunning, db.ActionAdopted, "", false,
			db.JobRunning, false, "", []db.Action{db.ActionAdopted}},
		{"wrong state", "pending", running, db.JobCompleted, db.ActionFinished, "x", true,
			db.JobPending, false, "", nil},
		{"already final", "completed", []db.JobStatus{db.JobRunning, db.JobCancelling}, db.JobFailed, db.ActionFailed, "x", true,
			db.JobCompleted, false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := foreignJob(t, e, tt.status)
			err := e.s.TransitionJob(ctx, id, tt.from, tt.to, tt.action, "because", tt.errText)
			if tt.wantConflict != errors.Is(err, db.ErrConflict) || (!tt.wantConflict && err != nil) {
				t.Fatalf("TransitionJob = %v; want conflict %v", err, tt.wantConflict)
			}
			j := jobRow(t, e, id)
			if j.Status != tt.wantStatus || (j.FinishedAt != nil) != tt.wantFinished || j.Error != tt.wantError {
				t.Errorf("job = %+v; want status %s, finished %v, error %q", j, tt.wantStatus, tt.wantFinished, tt.wantError)
			}
			if got := actionsOf(t, e, id); !slices.Equal(got, tt.wantActions) {
				t.Errorf("actions = %v, want %v", got, tt.wantActions)
			}
		})
	}
}

func TestStore_TransitionJobIsOneTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := foreignJob(t, e, "running")
	failActions(t, e)
	err := e.s.TransitionJob(t.Context(), id, []db.JobStatus{db.JobRunning}, db.JobCompleted, db.ActionFinished, "", "")
	if err == nil || errors.Is(err, db.ErrConflict) {
		t.Fatalf("TransitionJob = %v; want the action's error", err)
	}
	if got := scalar[string](t, e, `SELECT status FROM jobs WHERE id = $1`, id); got != "running" {
		t.Fatalf("status = %s; the transition was kept without its action", got)
	}
}

func TestStore_JobStatusCheck(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	_, err := e.raw.Exec(ctx, `INSERT INTO jobs (type, status, created_by) VALUES ('x', 'queued', 'othertool')`)
	if pgCode(err) != checkViolation {
		t.Fatalf("insert with status queued = %v; want a check violation", err)
	}
	id := foreignJob(t, e, "running")
	err = e.s.TransitionJob(ctx, id, []db.JobStatus{db.JobRunning}, "exploded", db.ActionFailed, "", "")
	if err == nil || errors.Is(err, db.ErrConflict) || pgCode(err) != checkViolation {
		t.Fatalf("TransitionJob to an unknown status = %v; want a check violation", err)
	}
	if got := actionsOf(t, e, id); len(got) != 0 {
		t.Fatalf("actions = %v after a refused transition", got)
	}
}

func TestStore_AdoptJob(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	old, run := startRun(t, e), startRun(t, e)
	id, err := e.s.LaunchJob(ctx, old, []int64{1}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.AdoptJob(ctx, id, run, "run 1 abandoned"); err != nil {
		t.Fatalf("AdoptJob: %v", err)
	}
	j := jobRow(t, e, id)
	if j.RunID == nil || *j.RunID != run || j.Status != db.JobRunning {
		t.Fatalf("adopted job = %+v", j)
	}
	acts, err := e.s.Actions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 || acts[0].Action != db.ActionLaunched || acts[1].Action != db.ActionAdopted || acts[1].Reason != "run 1 abandoned" {
		t.Fatalf("actions = %+v, want LAUNCHED then ADOPTED", acts)
	}
	if jobs := column[int64](t, e, `SELECT id FROM jobs WHERE run_id = $1`, run); !equalIDs(jobs, []int64{id}) {
		t.Fatalf("jobs of the adopter = %v, want [%d]", jobs, id)
	}
	if jobs := column[int64](t, e, `SELECT id FROM jobs WHERE run_id = $1`, old); len(jobs) != 0 {
		t.Fatalf("jobs of the previous run = %v, want none", jobs)
	}

	if err := e.s.AdoptJob(ctx, id+100, run, ""); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("AdoptJob(missing) = %v; want ErrNotFound", err)
	}
}

// The first value may be the Date of Stash's answer to the launch; Stash's
// own addTime, learned later, replaces it.
func TestStore_SetStashAddedAtKeepsTheLatest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	id := foreignJob(t, e, "running")
	date := time.Date(2025, 5, 6, 7, 8, 39, 0, time.UTC)
	added := time.Date(2025, 5, 6, 7, 8, 9, 123456000, time.UTC)
	for _, at := range []time.Time{date, added} {
		if err := e.s.SetStashAddedAt(ctx, id, at); err != nil {
			t.Fatalf("SetStashAddedAt: %v", err)
		}
	}
	j := jobRow(t, e, id)
	if j.StashAddedAt == nil || !j.StashAddedAt.Equal(added) {
		t.Fatalf("stash_added_at = %v, want Stash's addTime %v", j.StashAddedAt, added)
	}
}
