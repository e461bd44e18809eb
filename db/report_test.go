package db_test

import (
	"errors"
	"testing"

	"github.com/stashgen/stashgen/db"
)

func finishRun(t *testing.T, e env, o db.Outcome, code int) int64 {
	t.Helper()
	id := startRun(t, e)
	if err := e.s.FinishRun(t.Context(), id, db.RunEnd{Outcome: o, ExitCode: code}); err != nil {
		t.Fatalf("FinishRun: %v", err)
	}
	return id
}

func TestStore_RunCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	got, err := e.s.RunCounts(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("RunCounts on no runs = %v, %v", got, err)
	}
	finishRun(t, e, db.OutcomeGenerated, 0)
	finishRun(t, e, db.OutcomeGenerated, 0)
	finishRun(t, e, db.OutcomeFailed, 1)
	startRun(t, e) // still running: not counted

	got, err = e.s.RunCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[db.Outcome]int64{db.OutcomeGenerated: 2, db.OutcomeFailed: 1}
	if len(got) != len(want) || got[db.OutcomeGenerated] != 2 || got[db.OutcomeFailed] != 1 {
		t.Fatalf("RunCounts = %v, want %v", got, want)
	}
}

func TestStore_LastRunWith(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := []db.Outcome{db.OutcomeGenerated, db.OutcomeSkippedLocked}
	if _, err := e.s.LastRunWith(t.Context(), good); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("LastRunWith on no runs = %v, want ErrNotFound", err)
	}
	finishRun(t, e, db.OutcomeGenerated, 0)
	want := finishRun(t, e, db.OutcomeSkippedLocked, 75)
	finishRun(t, e, db.OutcomeError, 69)
	startRun(t, e)

	r, err := e.s.LastRunWith(t.Context(), good)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != want || r.Outcome != db.OutcomeSkippedLocked {
		t.Fatalf("LastRunWith = run %d %s, want run %d", r.ID, r.Outcome, want)
	}
}

func TestStore_RunActions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	first := startRun(t, e)
	second := startRun(t, e)
	other := startRun(t, e)
	j1, err := e.s.LaunchJob(ctx, first, []int64{1, 2}, "batch 1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetStashJobID(ctx, j1, "7"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.TransitionJob(ctx, j1, []db.JobStatus{db.JobRunning}, db.JobCompleted, db.ActionFinished, "2 of 2 scenes complete", ""); err != nil {
		t.Fatal(err)
	}
	j2, err := e.s.LaunchJob(ctx, second, []int64{3}, "batch 1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.LaunchJob(ctx, other, []int64{4}, "not asked for"); err != nil {
		t.Fatal(err)
	}

	got, err := e.s.RunActions(ctx, []int64{first, second})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		run, job int64
		stash    string
		action   db.Action
		reason   string
	}
	want := []row{
		{first, j1, "7", db.ActionLaunched, "batch 1"},
		{first, j1, "7", db.ActionFinished, "2 of 2 scenes complete"},
		{second, j2, "", db.ActionLaunched, "batch 1"},
	}
	if len(got) != len(want) {
		t.Fatalf("RunActions = %+v, want %d rows", got, len(want))
	}
	for i, a := range got {
		if (row{a.RunID, a.JobID, a.StashJobID, a.Action, a.Reason}) != want[i] || a.At.IsZero() {
			t.Fatalf("RunActions[%d] = %+v, want %+v", i, a, want[i])
		}
	}
}
