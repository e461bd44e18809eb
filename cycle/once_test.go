package cycle_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

func TestOnce_FirstRunOverGeneratedLibraryDoesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := e.generatedScenes(20)
	e.fake.AddMarker(ids[0], stashtest.MarkerResources(allMarker...))

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeNothingToDo, cycle.ExitOK)
	if m := e.fake.Mutations(); len(m) != 0 {
		t.Fatalf("mutations sent: %v", m)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n != 20 {
		t.Fatalf("generated scenes = %d, want 20", n)
	}
	if !strings.Contains(e.log(), "All scenes have generated attribute set") {
		t.Fatalf("log lacks the all-generated line:\n%s", e.log())
	}
}

func TestOnce_GeneratesMissingScenesAndVerifies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.generatedScenes(3)
	missing := e.fake.AddScenes(4)

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	in := e.fake.GenerateInputs()
	if len(in) != 1 {
		t.Fatalf("metadataGenerate calls = %d, want 1", len(in))
	}
	got := in[0]["sceneIDs"].([]any)
	if len(got) != len(missing) {
		t.Fatalf("sceneIDs = %v, want %v", got, missing)
	}
	for i, id := range missing {
		if got[i] != id {
			t.Fatalf("sceneIDs = %v, want %v", got, missing)
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT generated`); n != 0 {
		t.Fatalf("not generated after the job = %d, want 0", n)
	}
	if s := e.queryString(`SELECT status || ' ' || stash_job_id FROM stashgen.jobs`); !strings.HasPrefix(s, "completed ") {
		t.Fatalf("ledger job = %q, want completed", s)
	}
	if a := e.queryString(`SELECT string_agg(action, ',' ORDER BY id) FROM stashgen.job_actions`); a != "LAUNCHED,FINISHED" {
		t.Fatalf("actions = %s", a)
	}
	if n := e.queryInt(`SELECT scenes_generated FROM stashgen.runs`); n != 4 {
		t.Fatalf("runs.scenes_generated = %d, want 4", n)
	}
	if !strings.Contains(e.log(), "Found 4 scenes with generated=false") {
		t.Fatalf("log lacks the pending line:\n%s", e.log())
	}
}

func TestOnce_StandsAsideWhenStashIsBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	e.addScan()

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeSkippedBusy, cycle.ExitTempFail)
	if n := e.fake.CountField("metadataGenerate"); n != 0 {
		t.Fatalf("metadataGenerate calls = %d, want 0", n)
	}
	if !strings.Contains(e.log(), "Scanning...") {
		t.Fatalf("log does not name the busy job:\n%s", e.log())
	}
}

func TestOnce_StandsAsideForAnyActiveLedgerJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	e.exec(`INSERT INTO stashgen.jobs (type, status, created_by) VALUES ('sync', 'pending', 'other-tool')`)

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeSkippedBusy, cycle.ExitTempFail)
	if len(e.fake.Mutations()) != 0 {
		t.Fatal("a mutation was sent")
	}
	if !strings.Contains(e.log(), "other-tool") {
		t.Fatalf("log does not name the ledger job:\n%s", e.log())
	}
}

func TestOnce_CancelsForScanAndKeepsFinishedScenes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	ids := e.fake.AddScenes(4)
	e.onWait = func(n int) error {
		if n == 1 {
			e.addScan() // a scan arrives while our job runs
		}
		return nil
	}

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeCancelledForScan, cycle.ExitTempFail)
	if len(e.fake.StopCalls()) != 1 {
		t.Fatalf("stopJob calls = %v, want 1", e.fake.StopCalls())
	}
	if !strings.Contains(e.log(), "Detected 1 scan jobs, cancelling generation job") {
		t.Fatalf("log lacks the detection line:\n%s", e.log())
	}
	gen := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`)
	if gen == 0 || gen == len(ids) {
		t.Fatalf("generated = %d of %d: want the partial work kept, and not all done", gen, len(ids))
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE attempts > 0`); n != 0 {
		t.Fatalf("scenes charged an attempt after a cancel: %d", n)
	}
	if s := e.queryString(`SELECT status FROM stashgen.jobs`); s != "cancelled" {
		t.Fatalf("ledger status = %s", s)
	}
	if r := e.queryString(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); !strings.Contains(r, "scan") {
		t.Fatalf("cancel reason = %q", r)
	}
}

func TestOnce_FailedJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	e.fake.FailNextGenerate("ffmpeg exploded")

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeFailed, cycle.ExitJobFailed)
	if s := e.queryString(`SELECT status || ': ' || error FROM stashgen.jobs`); s != "failed: ffmpeg exploded" {
		t.Fatalf("ledger = %q", s)
	}
	if s := e.queryString(`SELECT error FROM stashgen.runs`); !strings.Contains(s, "ffmpeg exploded") {
		t.Fatalf("runs.error = %q", s)
	}
}

func TestOnce_JobVanishedFromStash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.onWait = func(n int) error {
		for _, j := range e.fake.Jobs() {
			e.fake.ForgetJob(j.ID)
		}
		return nil
	}

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeFailed, cycle.ExitJobFailed)
	if s := e.queryString(`SELECT status || ': ' || error FROM stashgen.jobs`); !strings.Contains(s, "failed: lost") {
		t.Fatalf("ledger = %q", s)
	}
}

func TestOnce_PoisonSceneIsQuarantinedAndLibraryReachesNothingToDo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.MaxAttempts = 3
	e.runner.Settings.Backoff = 1 // a nanosecond: due again at once
	e.generatedScenes(2)
	bad := e.fake.AddScene()
	e.fake.FailResource(bad, stashtest.ResourcePreview)

	for i := 1; i <= 3; i++ {
		res := e.once(context.Background())
		e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	}
	if q := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE quarantined_at IS NOT NULL AND attempts = 3`); q != 1 {
		t.Fatalf("quarantined = %d, want 1", q)
	}
	if m := e.queryString(`SELECT array_to_string(missing, ',') FROM stashgen.scenes WHERE stash_id = $1`, bad); m != "preview" {
		t.Fatalf("missing = %q, want preview", m)
	}

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeNothingToDo, cycle.ExitOK)
	if n := e.fake.CountField("metadataGenerate"); n != 3 {
		t.Fatalf("metadataGenerate calls = %d, want 3", n)
	}
	if strings.Count(e.log(), "All scenes have generated attribute set") != 0 {
		t.Fatal("said all scenes are generated while one is quarantined")
	}
	if q := e.queryInt(`SELECT quarantined_scenes FROM stashgen.runs ORDER BY id DESC LIMIT 1`); q != 1 {
		t.Fatalf("runs.quarantined_scenes = %d", q)
	}
}

func TestOnce_BatchesAreVerifiedOneByOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.BatchSize = 2
	e.fake.AddScenes(5)

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	in := e.fake.GenerateInputs()
	if len(in) != 3 {
		t.Fatalf("metadataGenerate calls = %d, want 3", len(in))
	}
	want := [][]string{{"1", "2"}, {"3", "4"}, {"5"}}
	for i, w := range want {
		got := in[i]["sceneIDs"].([]any)
		if len(got) != len(w) || got[0] != w[0] {
			t.Fatalf("batch %d = %v, want %v", i, got, w)
		}
	}
}

func TestOnce_ScanBetweenBatchesStopsLaunching(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.BatchSize = 2
	e.fake.AddScenes(5)
	launched := 0
	e.onWait = func(int) error { return nil }
	// The first batch finishes in one poll; queue a scan as it ends.
	e.runner.Stash = &scanAfterGenerate{Stash: e.client, onGenerate: func() {
		launched++
		if launched == 1 {
			e.addScan()
		}
	}}

	res := e.once(context.Background())

	// The scan waits behind the first batch, which ends at the first
	// poll; the check before the second batch finds it.
	if res.Outcome != db.OutcomeCancelledForScan {
		t.Fatalf("outcome = %s (%v)", res.Outcome, res.Err)
	}
	if launched != 1 {
		t.Fatalf("batches launched = %d, want 1", launched)
	}
}

func TestOnce_UnknownSceneIsFilteredBeforeSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := e.fake.AddScenes(3)
	// First run syncs; make the job fail so the scenes stay pending.
	e.fake.FailNextGenerate("boom")
	e.once(context.Background())
	e.fake.DeleteScene(ids[1])

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	in := e.fake.GenerateInputs()
	last := in[len(in)-1]["sceneIDs"].([]any)
	for _, id := range last {
		if id == ids[1] {
			t.Fatalf("deleted scene %s was sent: %v", ids[1], last)
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE stash_id = $1`, ids[1]); n != 0 {
		t.Fatal("deleted scene still in the table")
	}
}

func TestOnce_InterruptedWhileMonitoring(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	ctx, cancel := context.WithCancelCause(context.Background())
	e.onWait = func(int) error {
		cancel(&cycle.SignalError{Signal: syscall.SIGTERM})
		return context.Cause(ctx)
	}

	res := e.once(ctx)

	e.wantResult(res, db.OutcomeInterrupted, 143)
	if len(e.fake.StopCalls()) != 1 {
		t.Fatalf("stopJob calls = %d, want 1", len(e.fake.StopCalls()))
	}
	if s := e.queryString(`SELECT status FROM stashgen.jobs`); s != "cancelled" {
		t.Fatalf("ledger = %s", s)
	}
	if r := e.queryString(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); !strings.Contains(r, "SIGTERM") {
		t.Fatalf("reason = %q", r)
	}
}

func TestOnce_StashUnreachableAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.Down()

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeError, cycle.ExitUnavailable)
	if s := e.queryString(`SELECT error FROM stashgen.runs`); !strings.Contains(s, e.fake.URL()) {
		t.Fatalf("error %q does not name stash's URL", s)
	}
}

func TestOnce_WrongAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad, err := newClient(e.fake.URL(), "wrong")
	if err != nil {
		t.Fatal(err)
	}
	e.runner.Stash = bad

	res := e.once(context.Background())

	e.wantResult(res, db.OutcomeError, cycle.ExitNoPerm)
}

func TestOnce_AuditRowGoesToStderrWhenTheDatabaseIsGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.generatedScenes(1)
	e.runner.Store = &failingFinish{Store: e.store}

	res := e.once(context.Background())

	if res.ExitCode != cycle.ExitUnavailable {
		t.Fatalf("exit = %d, want 69", res.ExitCode)
	}
	if !strings.Contains(e.log(), `"audit_row_not_written"`) || !strings.Contains(e.log(), `"outcome":"nothing_to_do"`) {
		t.Fatalf("no JSON audit row on stderr:\n%s", e.log())
	}
}

var errDBGone = errors.New("connection refused")

type failingFinish struct{ cycle.Store }

func (f *failingFinish) FinishRun(context.Context, int64, db.RunEnd) error {
	return &db.UnavailableError{Host: "db.example:5432", Err: errDBGone}
}

// scanAfterGenerate lets a test act right after each metadataGenerate.
type scanAfterGenerate struct {
	cycle.Stash
	onGenerate func()
}

func (s *scanAfterGenerate) Generate(ctx context.Context, in stash.GenerateInput) (stash.Launch, error) {
	l, err := s.Stash.Generate(ctx, in)
	s.onGenerate()
	return l, err
}

func newClient(url, key string) (*stash.Client, error) {
	return stash.New(stash.Options{URL: url, APIKey: key, Timeout: 5 * time.Second})
}
