package db_test

import (
	"errors"
	"testing"

	"github.com/stashgen/stashgen/db"
)

func ptr[T any](v T) *T { return &v }

func startRun(t *testing.T, e env) int64 {
	t.Helper()
	id, err := e.s.StartRun(t.Context(), "once", "host-a", 4242, "v1.2.3")
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	return id
}

func TestStore_StartRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := startRun(t, e)
	r, err := e.s.GetRun(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != id || r.Command != "once" || r.Host != "host-a" || r.PID != 4242 || r.Version != "v1.2.3" ||
		r.Outcome != db.OutcomeRunning || r.FinishedAt != nil || r.ExitCode != nil || r.StartedAt.IsZero() {
		t.Fatalf("started run = %+v", r)
	}
}

func TestStore_GetRunNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.s.GetRun(t.Context(), 12345); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("GetRun(missing) = %v; want ErrNotFound", err)
	}
}

func TestStore_FinishRunOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	id := startRun(t, e)

	end := db.RunEnd{
		Outcome:           db.OutcomeGenerated,
		ExitCode:          0,
		PendingScenes:     ptr(7),
		BackoffScenes:     ptr(2),
		QuarantinedScenes: ptr(1),
		ScenesGenerated:   ptr(50),
		StashJobID:        "42",
	}
	if err := e.s.FinishRun(ctx, id, end); err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	r, err := e.s.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != db.OutcomeGenerated || r.FinishedAt == nil || r.ExitCode == nil || *r.ExitCode != 0 ||
		r.PendingScenes == nil || *r.PendingScenes != 7 || r.BackoffScenes == nil || *r.BackoffScenes != 2 ||
		r.QuarantinedScenes == nil || *r.QuarantinedScenes != 1 || r.ScenesGenerated == nil || *r.ScenesGenerated != 50 ||
		r.StashJobID == nil || *r.StashJobID != "42" || r.Error != nil {
		t.Fatalf("finished run = %+v", r)
	}

	err = e.s.FinishRun(ctx, id, db.RunEnd{Outcome: db.OutcomeError, ExitCode: 1, Error: "late"})
	if !errors.Is(err, db.ErrConflict) {
		t.Fatalf("second FinishRun = %v; want ErrConflict", err)
	}
	again, err := e.s.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if again.Outcome != db.OutcomeGenerated || *again.ExitCode != 0 || again.Error != nil {
		t.Fatalf("second FinishRun changed the row: %+v", again)
	}
}

func TestStore_FinishRunNullCounts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	id := startRun(t, e)
	if err := e.s.FinishRun(ctx, id, db.RunEnd{Outcome: db.OutcomeError, ExitCode: 69, Error: "stash unavailable"}); err != nil {
		t.Fatal(err)
	}
	r, err := e.s.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.PendingScenes != nil || r.ScenesGenerated != nil || r.StashJobID != nil ||
		r.Error == nil || *r.Error != "stash unavailable" || *r.ExitCode != 69 {
		t.Fatalf("run = %+v", r)
	}
}

// Every outcome a run can end with passes the CHECK on runs.outcome, the
// fence's four (added by a later migration) included, and the constraint
// keeps the name PostgreSQL gave migration 1's, which the next list change
// drops by.
func TestStore_FinishRunEveryOutcome(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	tests := []struct {
		outcome db.Outcome
		exit    int
		err     string
	}{
		{db.OutcomeGenerated, 0, ""},
		{db.OutcomeNothingToDo, 0, ""},
		{db.OutcomeChecked, 0, ""},
		{db.OutcomeAdopted, 0, ""},
		{db.OutcomeFailed, 1, "stash job 8 failed"},
		{db.OutcomeError, 69, "stash unavailable"},
		{db.OutcomeSkippedLocked, 75, "lock held"},
		{db.OutcomeSkippedBusy, 75, "busy"},
		{db.OutcomeCancelledForScan, 75, "a scan goes first"},
		{db.OutcomeInterrupted, 143, "SIGTERM"},
		{db.OutcomeSkippedWindow, 75, "outside the maintenance window 01:00-07:00: it opens at 01:00 (in 3h)"},
		{db.OutcomeCancelledForWindow, 75, "maintenance window 01:00-07:00 closed at 07:00"},
		{db.OutcomeSkippedLowSpace, 75, "free space on /srv/stash/generated is 12.3 GiB, below min_free_space 50GiB"},
		{db.OutcomeCancelledForLowSpace, 75, "free space on /srv/stash/generated is 49.9 GiB, below min_free_space 50GiB"},
	}
	for _, tt := range tests {
		t.Run(string(tt.outcome), func(t *testing.T) {
			id := startRun(t, e)
			if err := e.s.FinishRun(ctx, id, db.RunEnd{Outcome: tt.outcome, ExitCode: tt.exit, Error: tt.err}); err != nil {
				t.Fatalf("FinishRun(%s): %v", tt.outcome, err)
			}
			r, err := e.s.GetRun(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != tt.outcome || r.ExitCode == nil || *r.ExitCode != tt.exit || (tt.err != "" && (r.Error == nil || *r.Error != tt.err)) {
				t.Fatalf("run = %+v", r)
			}
		})
	}
	if n := scalar[int](t, e, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'runs'::regclass AND conname = 'runs_outcome_check'`); n != 1 {
		t.Fatalf("%d constraints named runs_outcome_check on runs, want 1", n)
	}
}

func TestStore_FinishRunRejectsUnknownOutcome(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	// A near miss of a fence outcome too: the new constraint lists names,
	// not patterns.
	for _, o := range []db.Outcome{"exploded", "skipped_low_disk", "cancelled_for_windows"} {
		id := startRun(t, e)
		err := e.s.FinishRun(ctx, id, db.RunEnd{Outcome: o, ExitCode: 1})
		if err == nil || errors.Is(err, db.ErrConflict) || pgCode(err) != checkViolation {
			t.Fatalf("FinishRun(%q) = %v; want a check violation", o, err)
		}
		if got := scalar[string](t, e, `SELECT outcome FROM runs WHERE id = $1`, id); got != "running" {
			t.Fatalf("outcome = %q after a refused FinishRun(%q)", got, o)
		}
	}
}

func TestStore_AbandonRunTouchesOnlyRunning(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	running, finished := startRun(t, e), startRun(t, e)
	if err := e.s.FinishRun(ctx, finished, db.RunEnd{Outcome: db.OutcomeNothingToDo}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{running, finished} {
		if err := e.s.AbandonRun(ctx, id, "process 4242 on host-a is gone"); err != nil {
			t.Fatalf("AbandonRun(%d): %v", id, err)
		}
	}

	r, err := e.s.GetRun(ctx, running)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != db.OutcomeAbandoned || r.FinishedAt == nil || r.Error == nil || *r.Error != "process 4242 on host-a is gone" {
		t.Errorf("abandoned run = %+v", r)
	}
	f, err := e.s.GetRun(ctx, finished)
	if err != nil {
		t.Fatal(err)
	}
	if f.Outcome != db.OutcomeNothingToDo || f.Error != nil {
		t.Errorf("AbandonRun changed a finished run: %+v", f)
	}
}

func TestStore_RunningRuns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	self, other, done, other2 := startRun(t, e), startRun(t, e), startRun(t, e), startRun(t, e)
	if err := e.s.FinishRun(ctx, done, db.RunEnd{Outcome: db.OutcomeChecked}); err != nil {
		t.Fatal(err)
	}
	runs, err := e.s.RunningRuns(ctx, self)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if want := []int64{other, other2}; !equalIDs(ids, want) {
		t.Fatalf("RunningRuns(%d) = %v, want %v", self, ids, want)
	}
}

func TestStore_RecentRunsNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	var started []int64
	for range 4 {
		started = append(started, startRun(t, e))
	}
	// started_at is the transaction clock: make the order unambiguous
	// without waiting.
	e.exec(t, `UPDATE runs SET started_at = now() - (10 - id) * interval '1 minute'`)

	tests := []struct {
		limit int
		want  []int64
	}{
		{1, []int64{started[3]}},
		{3, []int64{started[3], started[2], started[1]}},
		{10, []int64{started[3], started[2], started[1], started[0]}},
	}
	for _, tt := range tests {
		runs, err := e.s.RecentRuns(ctx, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for i, r := range runs {
			ids = append(ids, r.ID)
			if i > 0 && r.StartedAt.After(runs[i-1].StartedAt) {
				t.Errorf("RecentRuns(%d): run %d started after run %d", tt.limit, r.ID, runs[i-1].ID)
			}
		}
		if !equalIDs(ids, tt.want) {
			t.Errorf("RecentRuns(%d) = %v, want %v", tt.limit, ids, tt.want)
		}
	}
}
