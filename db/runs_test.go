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

func TestStore_FinishRunRejectsUnknownOutcome(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	id := startRun(t, e)
	err := e.s.FinishRun(ctx, id, db.RunEnd{Outcome: "exploded", ExitCode: 1})
	if err == nil || errors.Is(err, db.ErrConflict) || pgCode(err) != checkViolation {
		t.Fatalf("FinishRun(unknown outcome) = %v; want a check violation", err)
	}
	if got := scalar[string](t, e, `SELECT outcome FROM runs WHERE id = $1`, id); got != "running" {
		t.Fatalf("outcome = %q after a refused FinishRun", got)
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
