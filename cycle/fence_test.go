package cycle_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// clock is a settable time for Runner.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// at is a local wall-clock time today.
func at(hhmmss string) time.Time {
	t, err := time.ParseInLocation("15:04:05", hhmmss, time.Local)
	if err != nil {
		panic(err)
	}
	y, m, d := time.Now().Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.Local)
}

func window(t *testing.T, s string) fence.Window {
	t.Helper()
	w, err := fence.ParseWindow(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func floor(t *testing.T, s string) fence.Floor {
	t.Helper()
	f, err := fence.ParseFloor(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// space is a fence.Fence.Measure with a settable free space on a 100 GiB disk.
type space struct {
	mu   sync.Mutex
	free uint64
}

func (s *space) measure(path string) (fence.Space, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fence.Space{Path: path, Free: s.free, Total: 100 << 30}, nil
}

func (s *space) set(free uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free = free
}

func TestFence_OutsideTheWindowStandsAsideAndSaysWhenItOpens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(3)
	c := &clock{t: at("12:00:00")}
	e.runner.Now = c.now
	e.runner.Settings.Fence.Window = window(t, "01:00-07:00")

	e.wantResult(e.once(context.Background()), db.OutcomeSkippedWindow, cycle.ExitTempFail)

	if n := len(e.fake.Mutations()); n != 0 {
		t.Fatalf("%d mutations outside the window", n)
	}
	if n := len(e.fake.FileRequests()); n != 0 {
		t.Fatalf("%d probes outside the window", n)
	}
	if msg := e.queryString(`SELECT error FROM stashgen.runs`); !strings.Contains(msg, "01:00-07:00") || !strings.Contains(msg, "opens at 01:00 (in 13h)") {
		t.Fatalf("error = %q, want the window and when it opens", msg)
	}
}

// Outside the window a run still reconciles: a job of a dead run still
// running in Stash is stopped, keeping what it finished.
func TestFence_OutsideTheWindowStopsAnAdoptedJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	ids := e.fake.AddScenes(4)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	j := e.launch(ids...)
	e.orphan(j.ID, &j.AddTime, ids...)
	e.runner.Now = (&clock{t: at("12:00:00")}).now
	e.runner.Settings.Fence.Window = window(t, "01:00-07:00")

	e.wantResult(e.once(context.Background()), db.OutcomeSkippedWindow, cycle.ExitTempFail)

	if len(e.fake.StopCalls()) != 1 {
		t.Fatalf("stop calls = %v, want the adopted job stopped", e.fake.StopCalls())
	}
	if s := e.queryString(`SELECT status || ': ' || (SELECT reason FROM stashgen.job_actions a WHERE a.job_id = j.id AND action = 'CANCELLED')
		FROM stashgen.jobs j`); s != "cancelled: outside the maintenance window 01:00-07:00" {
		t.Fatalf("adopted job = %q", s)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n == 0 {
		t.Fatal("the adopted job's finished scenes were not kept")
	}
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d: a generate outside the window", n)
	}
}

func TestFence_WindowAcrossMidnightThatContainsNowRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	e.runner.Now = (&clock{t: at("23:30:00")}).now
	e.runner.Settings.Fence.Window = window(t, "22:00-06:00")

	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)
}

// The window closes while our job runs: stopJob at once, the finished
// scenes kept, the ledger's CANCELLED saying why.
func TestFence_WindowClosingStopsTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(6)
	c := &clock{t: at("06:59:58")}
	e.runner.Now = c.now
	e.runner.Settings.Fence.Window = window(t, "01:00-07:00")
	var waits []time.Duration
	e.runner.Wait = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		c.advance(d) // the time passes as the run waits
		return nil
	}

	e.wantResult(e.once(context.Background()), db.OutcomeCancelledForWindow, cycle.ExitTempFail)

	if len(waits) == 0 || waits[0] > 3*time.Second {
		t.Fatalf("waits = %v: the first wait should end at the window's close, 2 s away, not a whole poll", waits)
	}
	if len(e.fake.StopCalls()) != 1 {
		t.Fatalf("stop calls = %v", e.fake.StopCalls())
	}
	if r := e.queryString(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); r != "maintenance window closed at 07:00" {
		t.Fatalf("CANCELLED reason = %q", r)
	}
	gen := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`)
	if gen == 0 || gen == 6 {
		t.Fatalf("generated = %d of 6: want the finished scenes kept, and not all done", gen)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE attempts > 0`); n != 0 {
		t.Fatal("scenes the stopped job did not reach were charged an attempt")
	}
}

func TestFence_WindowClosedBetweenBatchesLaunchesNoMore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.BatchSize = 2
	e.fake.AddScenes(4)
	c := &clock{t: at("06:59:00")}
	e.runner.Now = c.now
	e.runner.Settings.Fence.Window = window(t, "01:00-07:00")
	e.runner.Stash = &scanAfterGenerate{Stash: e.client, onGenerate: func() { c.advance(2 * time.Minute) }}

	e.wantResult(e.once(context.Background()), db.OutcomeCancelledForWindow, cycle.ExitTempFail)

	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("batches launched = %d, want 1", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n != 2 {
		t.Fatalf("generated = %d, want the first batch's 2", n)
	}
}

func TestFence_BelowTheFloorStandsAside(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	sp := &space{free: 10 << 30}
	e.runner.Settings.Fence = fence.Fence{Floor: floor(t, "50GiB"), Path: "/srv/stash/generated", Measure: sp.measure}

	e.wantResult(e.once(context.Background()), db.OutcomeSkippedLowSpace, cycle.ExitTempFail)

	if msg := e.queryString(`SELECT error FROM stashgen.runs`); msg != "free space on /srv/stash/generated is 10.0 GiB, below min_free_space 50GiB" {
		t.Fatalf("error = %q, want the path, the free space and the floor", msg)
	}
	if len(e.fake.Mutations())+len(e.fake.FileRequests()) != 0 {
		t.Fatal("a run below the floor sent a mutation or probed")
	}

	sp.set(60 << 30)
	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)
}

// The floor is checked at each poll: a job that fills the disk is
// stopped, its finished scenes kept.
func TestFence_FloorCrossedWhileTheJobRunsStopsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(6)
	sp := &space{free: 60 << 30}
	e.runner.Settings.Fence = fence.Fence{Floor: floor(t, "50GiB"), Path: "/srv/stash/generated", Measure: sp.measure}
	e.onWait = func(n int) error {
		if n == 2 {
			sp.set(40 << 30)
		}
		return nil
	}

	e.wantResult(e.once(context.Background()), db.OutcomeCancelledForLowSpace, cycle.ExitTempFail)

	if r := e.queryString(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); !strings.Contains(r, "below min_free_space 50GiB") {
		t.Fatalf("CANCELLED reason = %q", r)
	}
	if gen := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); gen == 0 || gen == 6 {
		t.Fatalf("generated = %d of 6", gen)
	}
}

// clockOnSync moves the clock on at the run's first page of scenes: time
// that passes during the sync.
type clockOnSync struct {
	cycle.Stash
	once    sync.Once
	advance func()
}

func (s *clockOnSync) Scenes(ctx context.Context, q stash.SceneQuery) (stash.ScenePage, error) {
	s.once.Do(s.advance)
	return s.Stash.Scenes(ctx, q)
}

// The window closes while the run syncs: the first batch is
// not sent, and the run stands aside as it would have at its start.
func TestFence_WindowClosedDuringTheCheckLaunchesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(3)
	c := &clock{t: at("06:59:50")}
	e.runner.Now = c.now
	e.runner.Settings.Fence.Window = window(t, "01:00-07:00")
	e.runner.Stash = &clockOnSync{Stash: e.client, advance: func() { c.advance(time.Minute) }}

	e.wantResult(e.once(context.Background()), db.OutcomeSkippedWindow, cycle.ExitTempFail)

	if n := e.fake.CountField("metadataGenerate"); n != 0 {
		t.Fatalf("metadataGenerate calls = %d after the window closed", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT generated AND NOT needs_check`); n != 3 {
		t.Fatalf("scenes found incomplete = %d, want the check's 3 kept for the next window", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.jobs`); n != 0 {
		t.Fatalf("ledger jobs = %d, want none", n)
	}
}

// The fence comes before the busy check: a closed window or a full disk
// is the reason given even when Stash is busy too, and nothing is probed.
func TestFence_ComesBeforeTheBusyCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fence   func(*testing.T, *env)
		outcome db.Outcome
	}{
		{"window", func(t *testing.T, e *env) {
			e.runner.Now = (&clock{t: at("12:00:00")}).now
			e.runner.Settings.Fence.Window = window(t, "01:00-07:00")
		}, db.OutcomeSkippedWindow},
		{"free space", func(t *testing.T, e *env) {
			e.runner.Settings.Fence = fence.Fence{Floor: floor(t, "50GiB"), Path: "/srv/stash/generated", Measure: (&space{free: 1 << 30}).measure}
		}, db.OutcomeSkippedLowSpace},
		{"both: the window first", func(t *testing.T, e *env) {
			e.runner.Now = (&clock{t: at("12:00:00")}).now
			e.runner.Settings.Fence = fence.Fence{Window: window(t, "01:00-07:00"), Floor: floor(t, "50GiB"), Path: "/srv/stash/generated",
				Measure: func(string) (fence.Space, error) {
					t.Error("the free space was measured outside the window")
					return fence.Space{}, nil
				}}
		}, db.OutcomeSkippedWindow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.fake.AddScenes(2)
			e.addScan() // Stash is busy as well
			tt.fence(t, e)

			e.wantResult(e.once(context.Background()), tt.outcome, cycle.ExitTempFail)

			if n := e.fake.CountField("jobQueue"); n != 0 {
				t.Fatalf("jobQueue asked %d times: the busy check ran before the fence", n)
			}
			if n := len(e.fake.FileRequests()); n != 0 {
				t.Fatalf("%d probes by a run that stood aside", n)
			}
		})
	}
}

// check only reads: it is not fenced.
func TestFence_CheckIsNotFenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	e.runner.Now = (&clock{t: at("12:00:00")}).now
	e.runner.Settings.Fence = fence.Fence{Window: window(t, "01:00-07:00"), Floor: floor(t, "50GiB"), Path: "/srv/stash/generated",
		Measure: (&space{free: 1 << 30}).measure}

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)

	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT needs_check`); n != 2 {
		t.Fatalf("checked scenes = %d, want 2", n)
	}
}

// The disk fills during the first batch, which ends before a poll sees
// it: the second batch is not sent.
func TestFence_FloorCrossedBetweenBatchesLaunchesNoMore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.BatchSize = 2
	e.fake.AddScenes(4)
	sp := &space{free: 60 << 30}
	e.runner.Settings.Fence = fence.Fence{Floor: floor(t, "50GiB"), Path: "/srv/stash/generated", Measure: sp.measure}
	e.runner.Stash = &scanAfterGenerate{Stash: e.client, onGenerate: func() { sp.set(40 << 30) }}

	e.wantResult(e.once(context.Background()), db.OutcomeCancelledForLowSpace, cycle.ExitTempFail)

	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("batches launched = %d, want 1", n)
	}
	if msg := e.queryString(`SELECT error FROM stashgen.runs`); !strings.Contains(msg, "free space on /srv/stash/generated is 40.0 GiB, below min_free_space 50GiB") {
		t.Fatalf("error = %q", msg)
	}
}
