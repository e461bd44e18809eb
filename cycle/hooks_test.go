package cycle_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// hooks records what Runner.OnPhase and Runner.OnProgress were told.
type hooks struct {
	mu       sync.Mutex
	phases   []string
	progress []stash.JobStatus
	runIDs   map[int64]bool
}

func (h *hooks) attach(r *cycle.Runner) {
	h.runIDs = map[int64]bool{}
	r.OnPhase = func(run *cycle.Run, phase string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.phases = append(h.phases, phase)
		h.runIDs[run.ID] = true
	}
	r.OnProgress = func(run *cycle.Run, job stash.Job) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.progress = append(h.progress, job.Status)
		h.runIDs[run.ID] = true
	}
}

func TestRunner_HooksSeePhasesAndProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	var h hooks
	h.attach(e.runner)

	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)

	want := []string{"reconcile", "busy-check", "sync", "check", "generate", "monitor", "verify", "done"}
	if !slices.Equal(h.phases, want) {
		t.Fatalf("phases = %v, want %v", h.phases, want)
	}
	if len(h.progress) == 0 || h.progress[len(h.progress)-1] != stash.JobFinished {
		t.Fatalf("progress = %v, want the job's states ending FINISHED", h.progress)
	}
	if len(h.runIDs) != 1 || h.runIDs[0] {
		t.Fatalf("run ids seen = %v, want the one run's", h.runIDs)
	}
}

// A run that stands aside at its busy check never reaches a work phase:
// main's /start ping depends on it.
func TestRunner_StandingAsideStopsAtTheBusyCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(1)
	e.addScan()
	var h hooks
	h.attach(e.runner)

	e.wantResult(e.once(context.Background()), db.OutcomeSkippedBusy, cycle.ExitTempFail)

	if want := []string{"reconcile", "busy-check", "done"}; !slices.Equal(h.phases, want) {
		t.Fatalf("phases = %v, want %v", h.phases, want)
	}
}
