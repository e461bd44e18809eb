package cycle_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
)

// sentIDs are the scene ids of the n-th metadataGenerate (from 0).
func (e *env) sentIDs(n int) []string {
	e.t.Helper()
	in := e.fake.GenerateInputs()
	if len(in) <= n {
		e.t.Fatalf("%d generate inputs, want at least %d", len(in), n+1)
	}
	var out []string
	for _, id := range in[n]["sceneIDs"].([]any) {
		out = append(out, fmt.Sprint(id))
	}
	return out
}

// Scenes an earlier check found incomplete are not probed again before
// their batch, by a run or by its plan; the plan still sends them, in the
// order the run will: the oldest of them and of what it finds now.
func TestDryRun_PlansScenesAlreadyFoundIncomplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.BatchSize = 3
	e.fake.AddScenes(2)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	e.fake.AddScenes(2) // new in Stash since: the plan checks them itself
	e.fake.ResetLog()

	plan, err := e.runner.DryRun(context.Background(), cycle.DryRunInfo{})

	if err != nil {
		t.Fatal(err)
	}
	if plan.Outcome != db.OutcomeGenerated || plan.ExitCode != cycle.ExitOK || plan.Input == nil {
		t.Fatalf("plan = %s/%d, input %+v; want the waiting scenes generated", plan.Outcome, plan.ExitCode, plan.Input)
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(plan.Input.SceneIDs, want) {
		t.Fatalf("planned batch %v, want %v: the two waiting scenes, then the oldest new one", plan.Input.SceneIDs, want)
	}
	if plan.Recorded.Pending != 2 || plan.NewlyIncomplete != 2 {
		t.Fatalf("recorded %+v, newly incomplete %d; want 2 and 2", plan.Recorded, plan.NewlyIncomplete)
	}

	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)
	if got := e.sentIDs(0); !slices.Equal(got, plan.Input.SceneIDs) {
		t.Fatalf("the run's first batch %v, the plan's %v", got, plan.Input.SceneIDs)
	}
}

// What stops a real run before its busy check stops the plan too, with
// the same outcome, exit code and reason, and before any Stash request.
func TestDryRun_StandsAsideLikeARun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		info    cycle.DryRunInfo
		fence   func(*testing.T, *env)
		outcome db.Outcome
		reason  string
	}{
		{"the lock is held", cycle.DryRunInfo{LockFile: "/run/lock/stashgen.lock", LockState: "held by another run", LockHeld: true},
			func(*testing.T, *env) {}, db.OutcomeSkippedLocked, "another stashgen run holds the lock file /run/lock/stashgen.lock"},
		{"outside the window", cycle.DryRunInfo{}, func(t *testing.T, e *env) {
			e.runner.Now = (&clock{t: at("12:00:00")}).now
			e.runner.Settings.Fence.Window = window(t, "01:00-07:00")
		}, db.OutcomeSkippedWindow, "outside the maintenance window 01:00-07:00: it opens at 01:00 (in 13h)"},
		{"below the floor", cycle.DryRunInfo{}, func(t *testing.T, e *env) {
			e.runner.Settings.Fence = fence.Fence{Floor: floor(t, "50GiB"), Path: "/srv/stash/generated", Measure: (&space{free: 10 << 30}).measure}
		}, db.OutcomeSkippedLowSpace, "free space on /srv/stash/generated is 10.0 GiB, below min_free_space 50GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.fake.AddScenes(2)
			tt.fence(t, e)

			plan, err := e.runner.DryRun(context.Background(), tt.info)

			if err != nil {
				t.Fatal(err)
			}
			if plan.Outcome != tt.outcome || plan.ExitCode != cycle.ExitTempFail || plan.StandAside != tt.reason || plan.Stage != cycle.PlanDone {
				t.Fatalf("plan = %s/%d %q, want %s/75 %q", plan.Outcome, plan.ExitCode, plan.StandAside, tt.outcome, tt.reason)
			}
			if calls := e.fake.Calls(); len(calls) != 0 {
				t.Fatalf("the plan asked Stash %d times: %+v", len(calls), calls)
			}
			if !strings.Contains(tt.reason, "lock") && plan.Input != nil {
				t.Fatal("a plan that stands aside has an input")
			}
		})
	}
}

// check sends nothing: its plan has no batch, only what would change.
func TestCheckDryRun_HasNoBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(3)

	plan, err := e.runner.CheckDryRun(context.Background(), false)

	if err != nil {
		t.Fatal(err)
	}
	if plan.Batch != nil || plan.Input != nil || plan.Incomplete != 3 || plan.Outcome != db.OutcomeChecked {
		t.Fatalf("check plan: batch %v, input %v, incomplete %d, outcome %s; want no batch and 3 incomplete", plan.Batch, plan.Input, plan.Incomplete, plan.Outcome)
	}
}
