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

// hooks records what a run's Observer was told.
type hooks struct {
	mu       sync.Mutex
	phases   []string
	progress []stash.JobStatus
	runIDs   map[int64]bool
	results  []cycle.Result
}

func (h *hooks) attach(r *cycle.Runner) {
	h.runIDs = map[int64]bool{}
	r.Observer = h
}

func (h *hooks) Started(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runIDs[id] = true
}

func (h *hooks) Phase(p cycle.Phase) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.phases = append(h.phases, string(p))
}

func (h *hooks) Progress(job stash.Job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress = append(h.progress, job.Status)
}

func (h *hooks) Finished(res cycle.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.results = append(h.results, res)
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
	if len(h.results) != 1 || h.results[0].Outcome != db.OutcomeGenerated {
		t.Fatalf("results seen = %+v, want the one run's", h.results)
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
