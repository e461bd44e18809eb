package cycle_test

import (
	"context"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// invariants are checked after every fault test: whatever went wrong,
// stashgen never runs two generations at once, never marks a scene
// generated that Stash cannot serve, leaves exactly one audit row per run,
// and never leaves a ledger job running that nothing can adopt.
func (e *env) invariants(runs int) {
	e.t.Helper()
	var gens []stashtest.JobInfo
	for _, j := range e.fake.Jobs() {
		if j.Description == stash.DescGenerating {
			gens = append(gens, j)
		}
	}
	sort.Slice(gens, func(a, b int) bool { return gens[a].AddTime.Before(gens[b].AddTime) })
	for i := 1; i < len(gens); i++ {
		prev := gens[i-1]
		if prev.EndTime.IsZero() || gens[i].AddTime.Before(prev.EndTime) {
			e.t.Errorf("two generate jobs at once: %s (ended %v) and %s (added %v)", prev.ID, prev.EndTime, gens[i].ID, gens[i].AddTime)
		}
	}
	ids := e.queryString(`SELECT coalesce(string_agg(stash_id::text, ','), '') FROM stashgen.scenes WHERE generated`)
	for _, id := range strings.Split(ids, ",") {
		if id == "" || e.deleted[id] {
			continue
		}
		for _, r := range all {
			if !e.fake.HasResource(id, r) {
				e.t.Errorf("scene %s is generated=true but stash has no %s", id, r)
			}
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.runs`); n != runs {
		e.t.Errorf("runs rows = %d, want %d (one per run)", n, runs)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.runs WHERE outcome = 'running'`); n != 0 {
		e.t.Errorf("%d runs rows left running", n)
	}
	active := map[string]bool{}
	for _, j := range e.fake.Jobs() {
		if j.EndTime.IsZero() {
			active[j.ID] = true
		}
	}
	left := e.queryString(`SELECT coalesce(string_agg(coalesce(stash_job_id, '?'), ','), '') FROM stashgen.jobs
		WHERE status IN ('running', 'cancelling') AND created_by = 'stashgen'`)
	for _, id := range strings.Split(left, ",") {
		if id != "" && !active[id] {
			e.t.Errorf("ledger job for stash job %s left running, but stash has no such active job", id)
		}
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// orphan fakes what a run killed with SIGKILL while monitoring leaves: its
// run row still running, an hour old, its ledger job running.
func (e *env) orphan(stashJobID string, addedAt *time.Time, sceneIDs ...string) {
	e.t.Helper()
	pid := deadPID(e.t)
	e.exec(`INSERT INTO stashgen.runs (command, host, pid, version, started_at) VALUES ('once', 'test-host', $1, 'old', now() - interval '1 day')`, pid)
	ids := make([]int64, len(sceneIDs))
	for i, s := range sceneIDs {
		ids[i], _ = strconv.ParseInt(s, 10, 64)
	}
	e.exec(`INSERT INTO stashgen.jobs (type, status, stash_job_id, scene_ids, created_by, started_at, run_id, stash_added_at)
		VALUES ('stash_generate', 'running', nullif($1, ''), $2, 'stashgen', now(), (SELECT max(id) FROM stashgen.runs), $3)`,
		stashJobID, ids, addedAt)
}

// launch starts a generate job in the fake as a dead run would have.
func (e *env) launch(ids ...string) stashtest.JobInfo {
	e.t.Helper()
	launch, err := e.client.Generate(context.Background(), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true), Phashes: stash.Bool(true), Previews: stash.Bool(true), Sprites: stash.Bool(true)}, SceneIDs: ids})
	id := launch.JobID
	if err != nil {
		e.t.Fatal(err)
	}
	for _, j := range e.fake.Jobs() {
		if j.ID == id {
			return j
		}
	}
	e.t.Fatalf("job %s not in the fake", id)
	return stashtest.JobInfo{}
}

func TestReconcile_AdoptsRunningOrphanAndFollowsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	ids := e.fake.AddScenes(3)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	j := e.launch(ids...)
	e.orphan(j.ID, &j.AddTime, ids...)

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeAdopted, cycle.ExitOK)
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d: a second generate was started", n)
	}
	if a := e.queryString(`SELECT string_agg(action, ',' ORDER BY id) FROM stashgen.job_actions`); a != "ADOPTED,FINISHED" {
		t.Fatalf("actions = %s", a)
	}
	if o := e.queryString(`SELECT outcome FROM stashgen.runs WHERE version = 'old'`); o != "abandoned" {
		t.Fatalf("dead run outcome = %s", o)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n != 3 {
		t.Fatalf("generated = %d, want 3", n)
	}
	e.invariants(3)
}

func TestReconcile_ClosesEndedOrphanFromStashStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := e.fake.AddScenes(2)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	j := e.launch(ids...)
	e.fake.DrainJobs() // it finished while no run followed it
	e.orphan(j.ID, &j.AddTime, ids...)

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeAdopted, cycle.ExitOK)
	if s := e.queryString(`SELECT status FROM stashgen.jobs`); s != "completed" {
		t.Fatalf("ledger = %s", s)
	}
	e.invariants(3)
}

func TestReconcile_UnknownOrphanIsLostThenTheCycleCarriesOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := e.fake.AddScenes(2)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	e.orphan("41", nil, ids...) // stash never heard of job 41

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	if s := e.queryString(`SELECT status || ': ' || coalesce(error, '') FROM stashgen.jobs ORDER BY id LIMIT 1`); !strings.HasPrefix(s, "failed: lost") {
		t.Fatalf("orphan = %q", s)
	}
	e.invariants(3)
}

func TestReconcile_StrangerAfterStashRestartIsNotAdopted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	ids := e.fake.AddScenes(2)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	j := e.launch(ids...)
	e.fake.Restart() // our job is gone; ids start again at 1
	e.fake.Advance(time.Hour)
	stranger := e.launch(ids...) // someone else's job now has our id
	if stranger.ID != j.ID {
		t.Fatalf("stranger got id %s, want %s", stranger.ID, j.ID)
	}
	e.orphan(j.ID, &j.AddTime, ids...)

	res := e.once(context.Background())

	// The stranger keeps the queue busy, so the run stands aside after
	// closing the orphan as lost; it never follows the stranger.
	e.wantResult(res, db.OutcomeSkippedBusy, cycle.ExitTempFail)
	if s := e.queryString(`SELECT status || ': ' || coalesce(error, '') FROM stashgen.jobs`); !strings.HasPrefix(s, "failed: lost") {
		t.Fatalf("orphan = %q", s)
	}
	if strings.Contains(e.log(), "ADOPTED") {
		t.Fatal("adopted a stranger")
	}
	// Say what happened: the id now belongs to another job. The text about
	// Stash's last 10 ended jobs is for a job Stash forgot, not this.
	msg := e.queryString(`SELECT error FROM stashgen.jobs`)
	if strings.Contains(msg, "last 10") || !strings.Contains(msg, "different job") || !strings.Contains(msg, "restarted") {
		t.Fatalf("orphan's error = %q, want it to say a different job now has the id (stash restarted)", msg)
	}
}

func TestReconcile_DiedBeforeStashAnswered(t *testing.T) {
	t.Parallel()
	// Adoption without a recorded addTime compares Stash's clock with the
	// database's: here they agree, as on a real host.
	e := newEnv(t, stashtest.WithScenesPerTick(1), stashtest.WithClock(time.Now()))
	ids := e.fake.AddScenes(2)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	e.launch(ids...)
	e.orphan("", nil, ids...) // the id never reached the ledger

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeAdopted, cycle.ExitOK)
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d", n)
	}
	if s := e.queryString(`SELECT stash_job_id || ' ' || status FROM stashgen.jobs`); s != "1 completed" {
		t.Fatalf("ledger = %q", s)
	}
}

func TestFault_StashAnswersBadly(t *testing.T) {
	t.Parallel()
	for _, kind := range []stashtest.FaultKind{stashtest.FaultStatus500, stashtest.FaultHTML, stashtest.FaultTruncatedJSON,
		stashtest.FaultNotJSON, stashtest.FaultGraphQLError, stashtest.FaultHugeBody, stashtest.FaultDrop} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.fake.AddScenes(1)
			e.fake.InjectFault(stashtest.Fault{Kind: kind, Field: "jobQueue"})

			res := e.once(context.Background())

			e.wantResult(res, db.OutcomeError, cycle.ExitUnavailable)
			msg := e.queryString(`SELECT error FROM stashgen.runs`)
			if !strings.Contains(msg, e.fake.URL()) {
				t.Fatalf("error %q does not name stash's URL", msg)
			}
			if len(e.fake.Mutations()) != 0 {
				t.Fatal("a mutation was sent after a bad answer")
			}
			e.invariants(1)
		})
	}
}

func TestFault_SlowStashTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slow, err := stash.New(stash.Options{URL: e.fake.URL(), APIKey: testKey, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.runner.Stash = slow
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Field: "jobQueue"})

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeError, cycle.ExitUnavailable)
	if msg := e.queryString(`SELECT error FROM stashgen.runs`); !strings.Contains(msg, "stash.timeout") {
		t.Fatalf("error %q does not say it timed out", msg)
	}
}

func TestFault_StashGoesAwayMidMonitorThenComesBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.onWait = func(n int) error {
		switch n {
		case 1:
			e.fake.Down()
		case 3:
			if err := e.fake.Up(); err != nil {
				return err
			}
		}
		return nil
	}

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	if !strings.Contains(e.log(), "stash is back") {
		t.Fatalf("log:\n%s", e.log())
	}
	e.invariants(1)
}

func TestFault_StashGoneTooLongLeavesJobForAdoption(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.runner.Settings.UnavailableTimeout = 10 * time.Second
	ids := e.fake.AddScenes(3)
	e.onWait = func(n int) error {
		if n == 1 {
			e.fake.Down()
		}
		return nil
	}

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeError, cycle.ExitUnavailable)
	if s := e.queryString(`SELECT status FROM stashgen.jobs`); s != "running" {
		t.Fatalf("ledger = %s, want running (for the next run to adopt)", s)
	}

	// Stash returns; the next run adopts the job and finishes it.
	if err := e.fake.Up(); err != nil {
		t.Fatal(err)
	}
	e.onWait = nil

	res = e.once(context.Background())

	e.wantResult(res, db.OutcomeAdopted, cycle.ExitOK)
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n != len(ids) {
		t.Fatalf("generated = %d, want %d", n, len(ids))
	}
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d", n)
	}
}

func TestFault_FindJobFlipsToNullMidRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.onWait = func(n int) error {
		if n == 2 {
			e.fake.ForgetJob("1")
		}
		return nil
	}

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeFailed, cycle.ExitJobFailed)
	// The scenes it finished before vanishing are kept.
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n == 0 {
		t.Fatal("partial work lost")
	}
	e.invariants(1)
}

func TestFault_DatabaseLostMidMonitorKeepsFollowing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	flaky := &flakyStore{Store: e.store}
	e.runner.Store = flaky
	e.onWait = func(n int) error {
		flaky.down.Store(n == 1 || n == 2) // gone for two polls
		return nil
	}

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	if !strings.Contains(e.log(), "still following the job") {
		t.Fatalf("log:\n%s", e.log())
	}
	e.invariants(1)
}

func TestCheck_FullForgetsDeletedScenesAndReprobesQuarantined(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.MaxAttempts = 1
	e.runner.Settings.Backoff = 1
	ids := e.generatedScenes(3)
	bad := e.fake.AddScene()
	e.fake.FailResource(bad, stashtest.ResourceSprite)
	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE quarantined_at IS NOT NULL`); n != 1 {
		t.Fatalf("quarantined = %d", n)
	}
	e.fake.DeleteScene(ids[0])
	e.deleted[ids[0]] = true
	e.fake.SetResources(bad, all...) // the user fixed the file

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE quarantined_at IS NOT NULL`); n != 1 {
		t.Fatal("an incremental check re-probed a quarantined scene")
	}

	e.wantResult(e.check(context.Background(), true), db.OutcomeChecked, cycle.ExitOK)

	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE stash_id = $1`, ids[0]); n != 0 {
		t.Fatal("check --full kept a scene stash deleted")
	}
	if s := e.queryString(`SELECT generated::text || ' ' || (quarantined_at IS NULL)::text FROM stashgen.scenes WHERE stash_id = $1`, bad); s != "true true" {
		t.Fatalf("fixed scene = %s, want generated and out of quarantine", s)
	}
	e.invariants(3)
}

func TestCheck_MarkerPlaceholderIsMissingAndMarkerEditResetsScene(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.fake.AddScene(stashtest.SceneResources(all...))
	m := e.fake.AddMarker(id, stashtest.MarkerResources(stashtest.ResourceMarkerStream)) // screenshot missing: PNG placeholder

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	if s := e.queryString(`SELECT generated::text || ' ' || array_to_string(missing, ',') FROM stashgen.scenes`); s != "false marker_screenshot" {
		t.Fatalf("scene = %q: the placeholder counted as present?", s)
	}
	e.fake.SetMarkerResources(m, allMarker...)
	// A pending scene is not probed again by an incremental check (its
	// batch's job verifies it); check --full does probe it.
	e.wantResult(e.check(context.Background(), true), db.OutcomeChecked, cycle.ExitOK)
	if s := e.queryString(`SELECT generated::text FROM stashgen.scenes`); s != "true" {
		t.Fatalf("generated = %s after the screenshot appeared", s)
	}

	e.fake.Advance(time.Second)
	e.fake.AddMarker(id) // a new marker, without files, on a generated scene
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	if s := e.queryString(`SELECT generated::text FROM stashgen.scenes`); s != "false" {
		t.Fatal("a new marker did not reset its scene")
	}
}

func TestCheck_TitleEditDoesNotResetGenerated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.generatedScenes(1)[0]
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	e.fake.Advance(2 * time.Second)
	e.fake.TouchScene(id)

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)

	if s := e.queryString(`SELECT generated::text FROM stashgen.scenes`); s != "true" {
		t.Fatal("an edit reset the generated flag")
	}
}

func TestCheck_RedirectToLoginIsAnAuthError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.generatedScenes(1)
	// The API works, but the file requests carry no key.
	half := &keylessProbes{Stash: e.client, url: e.fake.URL()}
	e.runner.Stash = half

	res := e.check(context.Background(), false)

	e.wantResult(res, db.OutcomeError, cycle.ExitNoPerm)
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n != 0 {
		t.Fatal("a redirect counted as present")
	}
}

func TestSync_IdleRunMakesThreeStashRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.generatedScenes(30)
	// The first run reads everything; the second re-reads the last second
	// of changes once, since more could have landed in it.
	for range 2 {
		e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
		e.fake.Advance(5 * time.Second)
	}
	e.fake.ResetLog()

	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)

	var fields []string
	for _, c := range e.fake.Calls() {
		fields = append(fields, c.Fields...)
	}
	if len(e.fake.Calls()) > 3 || len(e.fake.FileRequests()) != 0 {
		t.Fatalf("idle run made %d stash requests (%v) and %d file requests, want at most 3 and 0",
			len(e.fake.Calls()), fields, len(e.fake.FileRequests()))
	}
}

func TestSync_SameSecondChangeIsNotMissedAndImportIsNotReread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(20) // a large import, all stamped with one second
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	// Same second as the import: the sync must not miss it.
	late := e.fake.AddScene(stashtest.SceneResources(all...))
	e.fake.ResetLog()

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)

	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE stash_id = $1`, late); n != 1 {
		t.Fatal("a scene added in the same second as the last sync was missed")
	}
	// Once the clock has moved past that second, one pass settles it and
	// the next one reads nothing.
	e.fake.Advance(3 * time.Second)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	lines := strings.Split(strings.TrimSpace(e.log()), "\n")
	var last string
	for _, l := range lines {
		if strings.Contains(l, "scenes synced from stash") {
			last = l
		}
	}
	if !strings.Contains(last, " scenes=0 ") {
		t.Fatalf("an idle sync re-read the import: %s", last)
	}
}

// flakyStore loses the database while down is set: writes and ledger
// reads fail as a dropped connection would.
type flakyStore struct {
	cycle.Store
	down atomic.Bool
}

func (f *flakyStore) err() error {
	if f.down.Load() {
		return &db.UnavailableError{Host: "127.0.0.1:5432", Err: errDBGone}
	}
	return nil
}

func (f *flakyStore) Beat(ctx context.Context, h db.Heartbeat) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Beat(ctx, h)
}

func (f *flakyStore) SetProgress(ctx context.Context, id int64, p float64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.SetProgress(ctx, id, p)
}

func (f *flakyStore) ActiveJobs(ctx context.Context) ([]db.Job, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ActiveJobs(ctx)
}

// keylessProbes sends file probes without the API key, as a client that
// forgot it would: Stash redirects those to its login page.
type keylessProbes struct {
	cycle.Stash
	url string
}

func (k *keylessProbes) Probe(ctx context.Context, r stash.Resource, path string) (stash.ProbeResult, error) {
	c, err := stash.New(stash.Options{URL: k.url, Timeout: 5 * time.Second})
	if err != nil {
		return 0, err
	}
	return c.Probe(ctx, r, path)
}

// After a signal, a Stash that hangs on stopJob must not use up the time
// the ledger needs: the job still ends cancelled, as the README promises.
func TestFault_StopJobHangsAfterSignal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.runner.Settings.StopTimeout = 200 * time.Millisecond
	e.fake.AddScenes(3)
	ctx, cancel := context.WithCancelCause(context.Background())
	e.onWait = func(int) error {
		e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Field: "stopJob"})
		cancel(&cycle.SignalError{Signal: syscall.SIGTERM})
		return context.Cause(ctx)
	}

	res := e.once(ctx)

	e.wantResult(res, db.OutcomeInterrupted, 143)
	if s := e.queryString(`SELECT status FROM stashgen.jobs`); s != "cancelled" {
		t.Fatalf("ledger = %s, want cancelled although stopJob hung", s)
	}
	if r := e.queryString(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); !strings.Contains(r, "stopJob failed") {
		t.Fatalf("reason = %q, want it to say stopJob failed", r)
	}
}

// Every database read or write made after a signal has a deadline: with
// the run's context cancelled, nothing else would stop it.
func TestFault_CleanupAfterSignalHasDeadlines(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	ctx, cancel := context.WithCancelCause(context.Background())
	watch := &deadlineStore{Store: e.store, signalled: ctx.Done()}
	e.runner.Store = watch
	e.onWait = func(int) error {
		cancel(&cycle.SignalError{Signal: syscall.SIGTERM})
		return context.Cause(ctx)
	}

	e.wantResult(e.once(ctx), db.OutcomeInterrupted, 143)

	if n := watch.after.Load(); n == 0 {
		t.Fatal("no store call after the signal: the test proves nothing")
	}
	if n := watch.unbounded.Load(); n != 0 {
		t.Fatalf("%d store calls after the signal had no deadline", n)
	}
}

// deadlineStore counts the store calls made after signalled is closed, and
// those among them whose context has no deadline.
type deadlineStore struct {
	cycle.Store
	signalled        <-chan struct{}
	after, unbounded atomic.Int64
}

func (d *deadlineStore) note(ctx context.Context) {
	select {
	case <-d.signalled:
	default:
		return
	}
	d.after.Add(1)
	if _, ok := ctx.Deadline(); !ok {
		d.unbounded.Add(1)
	}
}

func (d *deadlineStore) PendingCounts(ctx context.Context) (db.Counts, error) {
	d.note(ctx)
	return d.Store.PendingCounts(ctx)
}

func (d *deadlineStore) TransitionJob(ctx context.Context, id int64, from []db.JobStatus, to db.JobStatus, action db.Action, reason, errText string) error {
	d.note(ctx)
	return d.Store.TransitionJob(ctx, id, from, to, action, reason, errText)
}

func (d *deadlineStore) FinishRun(ctx context.Context, id int64, end db.RunEnd) error {
	d.note(ctx)
	return d.Store.FinishRun(ctx, id, end)
}

func (d *deadlineStore) Beat(ctx context.Context, h db.Heartbeat) error {
	d.note(ctx)
	return d.Store.Beat(ctx, h)
}

// An idle run right after a first run made in the same second as an import
// re-reads that second's markers (the cursor overlap): unchanged markers
// must not reset their scenes, or the whole library is probed again.
func TestSync_RereadMarkersDoNotResetTheirScenes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range e.generatedScenes(20) {
		e.fake.AddMarker(id, stashtest.MarkerResources(allMarker...))
	}
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	e.fake.ResetLog()

	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)

	if n := len(e.fake.FileRequests()); n != 0 {
		t.Fatalf("the second run probed %d files: re-read markers reset their scenes", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n != 20 {
		t.Fatalf("generated = %d, want 20", n)
	}
	// A marker that really changed still resets its scene.
	e.fake.Advance(2 * time.Second)
	e.fake.TouchMarker("3")
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE markers_changed_at IS NOT NULL`); n != 1 {
		t.Fatalf("scenes reset for a marker change = %d, want 1", n)
	}
}

// A marker inserted and another deleted while a sync pages through them
// keeps the count equal; every marker that existed throughout must still
// be read in that one pass.
func TestSync_InsertAndDeleteDuringAPassSkipNoMarker(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // 7 markers a page
	ids := e.generatedScenes(30)
	for _, id := range ids {
		e.fake.AddMarker(id, stashtest.MarkerResources(allMarker...))
	}
	calls := 0
	e.runner.Stash = &markerHook{Stash: e.client, after: func() {
		calls++
		if calls == 2 {
			e.fake.DeleteMarker("2")
			e.fake.AddMarker(ids[29], stashtest.MarkerResources(allMarker...))
		}
	}}

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)

	if calls < 3 {
		t.Fatalf("markers read in %d requests: the test needs a pass of several", calls)
	}
	missing := e.queryString(`SELECT coalesce(string_agg(g::text, ','), '') FROM generate_series(1, 30) g
		WHERE g <> 2 AND NOT EXISTS (SELECT 1 FROM stashgen.markers WHERE stash_id = g)`)
	if missing != "" {
		t.Fatalf("markers skipped by the pass: %s", missing)
	}
}

// markerHook calls after once each Markers request has been answered.
type markerHook struct {
	cycle.Stash
	after func()
}

func (m *markerHook) Markers(ctx context.Context, q stash.MarkerQuery) (stash.MarkerPage, error) {
	p, err := m.Stash.Markers(ctx, q)
	m.after()
	return p, err
}
