package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
	"github.com/stashgen/stashgen/stash"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fakeStash is a Stash whose answers the test sets.
type fakeStash struct {
	JobQueueFunc func(ctx context.Context) ([]stash.Job, error)
	FindJobFunc  func(ctx context.Context, id string) (stash.Job, error)
	Defaults     stash.Toggles // Stash's generate defaults
}

func (f *fakeStash) URL() string { return "http://stash.test:9999" }
func (f *fakeStash) QueueAndDefaults(ctx context.Context) ([]stash.Job, stash.Toggles, error) {
	jobs, err := f.JobQueueFunc(ctx)
	if err != nil {
		return nil, stash.Toggles{}, err
	}
	return jobs, f.Defaults, nil
}
func (f *fakeStash) FindJob(ctx context.Context, id string) (stash.Job, error) {
	if f.FindJobFunc == nil {
		return stash.Job{}, stash.ErrJobNotFound
	}
	return f.FindJobFunc(ctx, id)
}

func openStore(t *testing.T, migrate bool) *db.Store {
	t.Helper()
	s, _ := openStoreAt(t, migrate)
	return s
}

// openStoreAt is openStore, with the database's URL for raw SQL.
func openStoreAt(t *testing.T, migrate bool) (*db.Store, string) {
	t.Helper()
	url := dbtest.URL(t)
	s, err := db.Open(t.Context(), url, "stashgen")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if migrate {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return s, url
}

// seed writes a generated run, then a run still marked running on
// host-a with a heartbeat and a ledger job following Stash job 7.
func seed(t *testing.T, s *db.Store) (running, job int64) {
	t.Helper()
	ctx := t.Context()
	good, err := s.StartRun(ctx, "once", "host-a", 100, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, good, db.RunEnd{Outcome: db.OutcomeGenerated, ScenesGenerated: ptr(3), StashJobID: "6"}); err != nil {
		t.Fatal(err)
	}
	running, err = s.StartRun(ctx, "once", "host-a", 200, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Beat(ctx, db.Heartbeat{Host: "host-a", PID: 200, RunID: running, Phase: "monitor", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	job, err = s.LaunchJob(ctx, running, []int64{1, 2, 3}, "batch 1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetStashJobID(ctx, job, "7"); err != nil {
		t.Fatal(err)
	}
	return running, job
}

func TestGather_Live(t *testing.T) {
	t.Parallel()
	s := openStore(t, true)
	running, job := seed(t, s)
	sc := &fakeStash{JobQueueFunc: func(context.Context) ([]stash.Job, error) {
		return []stash.Job{{ID: "7", Status: stash.JobRunning, Description: stash.DescGenerating, Progress: ptr(0.45)}}, nil
	}}
	opts := Options{Now: time.Now(), JobInterval: time.Hour, Host: "host-a", Alive: func(pid int) bool { return pid == 200 }}

	st := Gather(t.Context(), s, sc, opts)

	if st.Health.Level != Healthy || !st.Database.Reachable || st.Database.SchemaVersion != db.Version() {
		t.Fatalf("health %v %q, database %+v", st.Health.Level, st.Health.Reasons, st.Database)
	}
	if st.LastRun == nil || st.LastRun.ID != running || st.LastRun.Outcome != "running" {
		t.Fatalf("last run = %+v", st.LastRun)
	}
	if st.LastSuccess == nil || st.LastSuccess.Outcome != "generated" || st.LastSuccess.StashJobID != "6" || *st.LastSuccess.ScenesGenerated != 3 {
		t.Fatalf("last success = %+v", st.LastSuccess)
	}
	if hb := st.Heartbeat; hb == nil || hb.RunID != running || hb.Phase != "monitor" || hb.Alive == nil || !*hb.Alive {
		t.Fatalf("heartbeat = %+v", st.Heartbeat)
	}
	if len(st.Jobs) != 1 || st.Jobs[0].ID != job || st.Jobs[0].Scenes != 3 || st.Jobs[0].Stash == nil ||
		st.Jobs[0].Stash.Status != "RUNNING" || *st.Jobs[0].Stash.Progress != 0.45 {
		t.Fatalf("jobs = %+v", st.Jobs)
	}
	if !st.Stash.Reachable || len(st.Stash.Queue) != 1 {
		t.Fatalf("stash = %+v", st.Stash)
	}
	if st.Scenes == nil {
		t.Fatal("no scene counts")
	}
}

func TestGather_StashUnreachableIsNotAFailure(t *testing.T) {
	t.Parallel()
	s := openStore(t, true)
	seed(t, s)
	sc := &fakeStash{JobQueueFunc: func(ctx context.Context) ([]stash.Job, error) {
		<-ctx.Done() // a Stash that never answers
		return nil, errors.New("stash unavailable: " + ctx.Err().Error())
	}}
	opts := Options{Now: time.Now(), JobInterval: time.Hour, Host: "host-a", Alive: func(int) bool { return true },
		StashTimeout: 50 * time.Millisecond}

	st := Gather(t.Context(), s, sc, opts)

	if st.Health.Level != Healthy {
		t.Fatalf("health %v %q", st.Health.Level, st.Health.Reasons)
	}
	if !st.Stash.Asked || st.Stash.Reachable || !strings.Contains(st.Stash.Error, "deadline") || st.Jobs[0].StashError != "stash unreachable" {
		t.Fatalf("stash = %+v, job = %+v", st.Stash, st.Jobs[0])
	}
}

func TestGather_DeadRunAndForgottenJob(t *testing.T) {
	t.Parallel()
	s := openStore(t, true)
	running, _ := seed(t, s)
	sc := &fakeStash{JobQueueFunc: func(context.Context) ([]stash.Job, error) { return nil, nil }}
	opts := Options{Now: time.Now(), JobInterval: time.Hour, Host: "host-a", Alive: func(int) bool { return false }}

	st := Gather(t.Context(), s, sc, opts)

	if st.Health.Level != Warning || len(st.Health.Reasons) != 1 ||
		!strings.Contains(st.Health.Reasons[0], "is marked running but its process (pid 200 on host-a) is gone") {
		t.Fatalf("health %v %q", st.Health.Level, st.Health.Reasons)
	}
	if st.Heartbeat.Alive == nil || *st.Heartbeat.Alive || st.LastRun.ID != running {
		t.Fatalf("heartbeat %+v", st.Heartbeat)
	}
	if st.Jobs[0].Stash != nil || st.Jobs[0].StashError != "stash no longer knows this job" {
		t.Fatalf("job = %+v", st.Jobs[0])
	}
}

func TestGather_NoSchema(t *testing.T) {
	t.Parallel()
	s := openStore(t, false)

	st := Gather(t.Context(), s, nil, Options{Now: time.Now(), JobInterval: time.Hour})

	if st.Health.Level != Critical || !st.Database.Reachable || st.Database.SchemaVersion != 0 || st.Scenes != nil || st.Stash.Asked {
		t.Fatalf("status = %+v", st)
	}
	h, err := GatherHistory(t.Context(), s, time.Now(), 10)
	if err != nil || len(h.Runs) != 0 {
		t.Fatalf("history without a schema = %+v, %v", h, err)
	}
}

func TestGatherHistoryAndMetrics(t *testing.T) {
	t.Parallel()
	s := openStore(t, true)
	running, job := seed(t, s)
	ctx := t.Context()
	if err := s.TransitionJob(ctx, job, []db.JobStatus{db.JobRunning}, db.JobFailed, db.ActionFailed, "no ffmpeg", "no ffmpeg"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, running, db.RunEnd{Outcome: db.OutcomeFailed, ExitCode: 1, Error: "stash job 7 failed: no ffmpeg", StashJobID: "7"}); err != nil {
		t.Fatal(err)
	}

	h, err := GatherHistory(ctx, s, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 1 || h.Runs[0].ID != running || h.Runs[0].Error != "stash job 7 failed: no ffmpeg" || len(h.Runs[0].Actions) != 2 ||
		h.Runs[0].Actions[0].Action != "LAUNCHED" || h.Runs[0].Actions[1].Reason != "no ffmpeg" || h.Runs[0].Actions[1].StashJobID != "7" {
		t.Fatalf("history = %+v", h)
	}

	m, err := GatherMetrics(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if m.LastSuccess == nil || m.Runs[db.OutcomeGenerated] != 1 || m.Runs[db.OutcomeFailed] != 1 {
		t.Fatalf("metrics = %+v", m)
	}
}

// Status says how old the generated scenes' checks are, how many are due
// for re-verification and how many one run takes, and how many new or
// changed scenes the next check probes.
func TestGather_CheckAges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, url := openStoreAt(t, true)
	seed(t, s)
	checkedScenes(t, s, url, 10, 8, 3, "9 days")
	opts := Options{Now: time.Now(), JobInterval: time.Hour, Host: "host-a", ReverifyAfter: 7 * 24 * time.Hour}

	st := Gather(ctx, s, nil, opts)

	c := st.Checks
	if c == nil || c.Due != 3 || c.PerRun != 1 || c.ReverifyAfterSeconds != 604800 || c.OldestCheck == nil ||
		time.Since(*c.OldestCheck) < 9*24*time.Hour-time.Minute || st.Scenes.ToCheck != 2 {
		t.Fatalf("checks = %+v, scenes = %+v; want 3 due, 1 a run (ceil(10 × 1h / 7d)), oldest 9 days, 2 to check", c, st.Scenes)
	}
}

func mustFence(t *testing.T, window, floor, path string) fence.Fence {
	t.Helper()
	w, err := fence.ParseWindow(window)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fence.ParseFloor(floor)
	if err != nil {
		t.Fatal(err)
	}
	return fence.Fence{Window: w, Floor: f, Path: path}
}

const gib = 1 << 30

// finish writes a finished run with the given outcome.
func finish(t *testing.T, s *db.Store, o db.Outcome, exit int, msg string) int64 {
	t.Helper()
	id, err := s.StartRun(t.Context(), "once", "host-a", 300, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(t.Context(), id, db.RunEnd{Outcome: o, ExitCode: exit, Error: msg}); err != nil {
		t.Fatal(err)
	}
	return id
}

// A run that stood aside for low disk space keeps status at a warning
// through the runs outside the window after it (they never looked at the
// disk), while a floor is configured; status shows the window and the
// free space it measured.
func TestGather_LowSpaceAndTheFence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, true)
	finish(t, s, db.OutcomeGenerated, 0, "")
	low := finish(t, s, db.OutcomeSkippedLowSpace, 75, "free space on /srv/gen is 12.3 GiB, below min_free_space 50GiB")
	finish(t, s, db.OutcomeSkippedWindow, 75, "outside the maintenance window 01:00-07:00: it opens at 01:00 (in 13h)")
	last := finish(t, s, db.OutcomeSkippedWindow, 75, "outside the maintenance window 01:00-07:00: it opens at 01:00 (in 12h)")
	if err := s.Beat(ctx, db.Heartbeat{Host: "host-a", PID: 300, RunID: last, Phase: "done", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A window that opens in two hours: closed now, whatever the time.
	now := time.Now()
	win := now.Add(2*time.Hour).Format("15:04") + "-" + now.Add(3*time.Hour).Format("15:04")
	f := mustFence(t, win, "50GiB", "/srv/gen")
	var measured []string
	f.Measure = func(path string) (fence.Space, error) {
		measured = append(measured, path)
		return fence.Space{Path: path, Free: 12 * gib, Total: 1024 * gib}, nil
	}
	opts := Options{Now: now, JobInterval: time.Hour, Host: "host-a", Alive: func(int) bool { return false }, Fence: f}

	st := Gather(ctx, s, nil, opts)

	want := fmt.Sprintf("the last run to check the disk space (#%d) stood aside for low disk space; it will not fix itself", low)
	if st.Health.Level != Warning || len(st.Health.Reasons) != 1 || !strings.HasPrefix(st.Health.Reasons[0], want) ||
		!strings.HasSuffix(st.Health.Reasons[0], "(free space on /srv/gen is 12.3 GiB, below min_free_space 50GiB)") {
		t.Fatalf("health %v %q; want a warning starting %q", st.Health.Level, st.Health.Reasons, want)
	}
	if st.LastSuccess == nil || st.LastSuccess.ID != last {
		t.Fatalf("last success = %+v, want the last skipped_window run #%d", st.LastSuccess, last)
	}
	fi := st.Fence
	if fi == nil || fi.Window != win || fi.ClosesAt == nil || fi.OpensAt == nil || fi.Open ||
		fi.FreeSpacePath != "/srv/gen" || fi.FreeBytes == nil || *fi.FreeBytes != 12*gib || !fi.Below || fi.MinFreeSpace != "50GiB" ||
		len(measured) != 1 || measured[0] != "/srv/gen" {
		t.Fatalf("fence = %+v, measured %q", fi, measured)
	}

	// Without a floor (removing it is a fix), the warning goes, and so
	// does the fence when there is no window either.
	opts.Fence = fence.Fence{}
	st = Gather(ctx, s, nil, opts)
	if st.Health.Level != Healthy || st.Fence != nil {
		t.Fatalf("without a fence: health %v %q, fence %+v", st.Health.Level, st.Health.Reasons, st.Fence)
	}

	// A run that got past the floor clears it.
	opts.Fence = f
	finish(t, s, db.OutcomeGenerated, 0, "")
	if st = Gather(ctx, s, nil, opts); st.Health.Level != Healthy {
		t.Fatalf("after a generated run: health %v %q", st.Health.Level, st.Health.Reasons)
	}
}

// Status measures the real free space, and reports a path it cannot
// measure without failing.
func TestGather_MeasuresTheFreeSpace(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("fence.Measure is implemented on Linux only")
	}
	s := openStore(t, true)
	dir := t.TempDir()
	opts := Options{Now: time.Now(), JobInterval: time.Hour, Fence: mustFence(t, "", "1B", dir)}

	st := Gather(t.Context(), s, nil, opts)
	if fi := st.Fence; fi == nil || fi.Error != "" || fi.FreeBytes == nil || fi.TotalBytes == nil || *fi.TotalBytes < *fi.FreeBytes ||
		fi.Below || fi.Window != "" || !fi.Open || fi.ClosesAt != nil {
		t.Fatalf("fence = %+v", st.Fence)
	}

	opts.Fence.Path = filepath.Join(dir, "gone")
	st = Gather(t.Context(), s, nil, opts)
	if fi := st.Fence; fi == nil || fi.FreeBytes != nil || !strings.Contains(fi.Error, "no such file or directory") || fi.Below ||
		st.Health.Level == Unknown {
		t.Fatalf("fence on a missing path = %+v, health %v", st.Fence, st.Health.Level)
	}
}

// The next check's cost: the new or changed scenes and this run's share
// of those due, each probed on the wanted files, by the config over
// Stash's defaults (asked with the queue) over the built-ins.
func TestGather_NextCheckCost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, url := openStoreAt(t, true)
	// 10 checked and generated, 8 of them long ago; 2 new.
	checkedScenes(t, s, url, 12, 10, 8, "10 days")
	queue := func(context.Context) ([]stash.Job, error) { return nil, nil }
	opts := Options{Now: time.Now(), JobInterval: time.Hour, ReverifyAfter: 4 * time.Hour}
	tests := []struct {
		name  string
		sc    *fakeStash
		files int
	}{
		// per run: ceil(12 × 1/4) = 3 of the 8 due, and the 2 new.
		{"stash's defaults want webps", &fakeStash{JobQueueFunc: queue, Defaults: stash.Toggles{ImagePreviews: stash.Bool(true)}}, 4},
		{"stash unreachable: the built-ins", &fakeStash{JobQueueFunc: func(context.Context) ([]stash.Job, error) {
			return nil, errors.New("stash unavailable")
		}}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Gather(ctx, s, tt.sc, opts)
			c := st.Checks
			if c == nil || c.NextScenes != 5 || c.FilesPerScene != tt.files || c.NextFileRequests != 5*tt.files {
				t.Fatalf("checks = %+v, want 5 scenes × %d files", c, tt.files)
			}
			var b bytes.Buffer
			if err := WriteStatus(&b, st); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("cost:         next check: up to %d file requests (5 scenes × %d, + markers')", 5*tt.files, tt.files); !strings.Contains(b.String(), want) {
				t.Fatalf("status lacks %q:\n%s", want, b.String())
			}
		})
	}
}

// checkedScenes stores scenes 1..n, records the first checked of them as
// verified complete, and makes the first old of those checks age old.
func checkedScenes(t *testing.T, s *db.Store, url string, n, checked, old int, age string) {
	t.Helper()
	ctx := t.Context()
	rows := make([]db.SceneRow, n)
	for i := range rows {
		rows[i] = db.SceneRow{ID: int64(i + 1), UpdatedAt: time.Now()}
	}
	if err := s.UpsertScenes(ctx, rows); err != nil {
		t.Fatal(err)
	}
	vs := make([]db.Verdict, checked)
	for i := range vs {
		vs[i] = db.Verdict{SceneID: int64(i + 1), Complete: true}
	}
	if err := s.RecordVerdicts(ctx, vs, []string{"preview"}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE stashgen.scenes SET checked_at = now() - $1::interval WHERE stash_id <= $2`, age, old); err != nil {
		t.Fatal(err)
	}
}
