package cycle_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// Truth that lasts (resources turned on later, files that vanish) and
// quiet checks (each probe is a line in Stash's log).

// sceneIDsSent are the scene ids of every metadataGenerate, in order.
func (e *env) sceneIDsSent() []string {
	var out []string
	for _, in := range e.fake.GenerateInputs() {
		for _, id := range in["sceneIDs"].([]any) {
			out = append(out, id.(string))
		}
	}
	return out
}

// probes counts the file requests since the log was reset, and the 404s
// among them.
func (e *env) probes() (all, notFound int) {
	for _, f := range e.fake.FileRequests() {
		all++
		if f.Status == http.StatusNotFound {
			notFound++
		}
	}
	return all, notFound
}

func TestToggles_TurnedOnInConfigGeneratesExactlyTheAffectedScenes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	with := append(slices.Clone(all), stashtest.ResourceWebP)
	have := []string{e.fake.AddScene(stashtest.SceneResources(with...)), e.fake.AddScene(stashtest.SceneResources(with...))}
	lack := e.generatedScenes(3) // verified before image previews were wanted
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	e.fake.ResetLog()

	e.runner.Settings.Toggles.ImagePreviews = stash.Bool(true)
	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)

	if got := e.sceneIDsSent(); !slices.Equal(got, lack) {
		t.Fatalf("scenes sent = %v, want exactly those without a webp %v (not %v)", got, lack, have)
	}
	in := e.fake.GenerateInputs()[0]
	if in["imagePreviews"] != true || in["previews"] != true {
		t.Fatalf("input = %v, want imagePreviews and previews", in)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated`); n != 5 {
		t.Fatalf("generated = %d, want 5", n)
	}
	for _, id := range lack {
		if !e.fake.HasResource(id, stashtest.ResourceWebP) {
			t.Errorf("scene %s has no webp", id)
		}
	}
}

func TestToggles_TurnedOnInStashDefaultsToo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := e.generatedScenes(2)
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)

	e.fake.SetGenerateDefaults(map[string]any{"imagePreviews": true})
	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)

	if got := e.sceneIDsSent(); !slices.Equal(got, ids) {
		t.Fatalf("scenes sent = %v, want %v", got, ids)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated AND 'webp' = ANY(checked_for)`); n != 2 {
		t.Fatalf("scenes verified for the webp = %d, want 2", n)
	}
}

// An idle run still makes at most 3 Stash requests: the generate defaults
// come with the job queue.
func TestToggles_IdleRunAsksForDefaultsWithTheQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.generatedScenes(5)
	for range 2 {
		e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
		e.fake.Advance(5 * time.Second)
	}
	e.fake.ResetLog()

	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)

	calls := e.fake.Calls()
	if len(calls) > 3 || !slices.Contains(calls[0].Fields, "jobQueue") || !slices.Contains(calls[0].Fields, "configuration") {
		var fields [][]string
		for _, c := range calls {
			fields = append(fields, c.Fields)
		}
		t.Fatalf("idle run's requests = %v: want at most 3, the first asking for the queue and the defaults", fields)
	}
}

func TestToggles_TurnedOffMakesNothingPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.Toggles.ImagePreviews = stash.Bool(true)
	with := append(slices.Clone(all), stashtest.ResourceWebP)
	e.fake.AddScene(stashtest.SceneResources(with...))
	e.fake.AddScene(stashtest.SceneResources(with...))
	noWebp := e.fake.AddScene(stashtest.SceneResources(all...))
	e.fake.FailResource(noWebp, stashtest.ResourceWebP) // cannot be made: pending
	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT generated`); n != 1 {
		t.Fatalf("not generated = %d, want the one without a webp", n)
	}
	e.fake.ResetLog()

	e.runner.Settings.Toggles.ImagePreviews = stash.Bool(false)
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)

	if n := e.fake.CountField("metadataGenerate"); n != 0 {
		t.Fatal("turning a resource off sent a generate")
	}
	// The scene that lacked only the webp is complete now.
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT generated`); n != 0 {
		t.Fatalf("not generated = %d after turning image previews off, want 0", n)
	}
}

func TestReverify_DeletedSpriteIsRegeneratedAfterReverifyAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.ReverifyAfter = 7 * 24 * time.Hour
	e.runner.Settings.JobInterval = 7 * 24 * time.Hour // everything due in one run
	ids := e.generatedScenes(3)
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	e.fake.SetResources(ids[1], stashtest.ResourceCover, stashtest.ResourcePhash, stashtest.ResourcePreview) // sprite and vtt cleaned away

	// Before reverify_after, nothing notices.
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	if n := e.fake.CountField("metadataGenerate"); n != 0 {
		t.Fatal("a generate before the check was due")
	}
	e.exec(`UPDATE stashgen.scenes SET checked_at = checked_at - interval '8 days'`)

	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)

	if got := e.sceneIDsSent(); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("scenes sent = %v, want %v", got, ids[1:2])
	}
	if !e.fake.HasResource(ids[1], stashtest.ResourceSprite) {
		t.Fatal("the sprite was not regenerated")
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated AND checked_at > now() - interval '1 hour'`); n != 3 {
		t.Fatalf("freshly checked generated scenes = %d, want 3", n)
	}
}

func TestReverify_AllDueIsSpreadOverRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.ReverifyAfter = 4 * time.Hour
	e.runner.Settings.JobInterval = time.Hour // a quarter of the library a run
	e.generatedScenes(100)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	// Checked at different times, oldest first: scene 100 the oldest.
	e.exec(`UPDATE stashgen.scenes SET checked_at = now() - interval '5 hours' - stash_id * interval '1 second'`)

	var order []int
	for run := 1; run <= 4; run++ {
		e.fake.ResetLog()
		e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
		n, _ := e.probes()
		if n != 25*3 { // preview, sprite, vtt
			t.Fatalf("run %d probed %d files, want 75 (25 scenes)", run, n)
		}
		order = append(order, e.queryInt(`SELECT min(stash_id) FROM stashgen.scenes WHERE checked_at > now() - interval '1 hour'`))
	}
	if !slices.Equal(order, []int{76, 51, 26, 1}) {
		t.Fatalf("lowest re-verified id after each run = %v, want the oldest checks first (76, 51, 26, 1)", order)
	}

	// A run right after the re-verification probes nothing.
	e.fake.ResetLog()
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	if n, _ := e.probes(); n != 0 {
		t.Fatalf("the run after the re-verification probed %d files", n)
	}
}

func TestQuiet_SecondCheckWithNothingChangedProbesNoFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.generatedScenes(3)
	e.fake.AddScenes(4) // never generated: pending after the first check
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	e.fake.Advance(5 * time.Second)
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK) // reads the last second again
	e.fake.ResetLog()

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)

	if n, _ := e.probes(); n != 0 {
		t.Fatalf("a check with nothing changed probed %d files", n)
	}
	if n := len(e.fake.Calls()); n > 3 {
		t.Fatalf("a check with nothing changed made %d GraphQL requests", n)
	}
}

// Scenes a scan left with a cover and a phash but no other file: the first
// check draws one 404 (one WARN line in Stash's log) per scene, not one per
// missing file; a scene with no cover at all draws none.
func TestQuiet_FirstCheckDrawsOne404PerScene(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for range 10 {
		e.fake.AddScene(stashtest.SceneResources(stashtest.ResourceCover, stashtest.ResourcePhash))
	}
	bare := e.fake.AddScene()
	e.fake.AddMarker(bare)

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)

	if all, notFound := e.probes(); all != 10 || notFound != 10 {
		t.Fatalf("probes = %d, 404s = %d; want one 404 for each of the 10 scenes and none for the one without a cover", all, notFound)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT generated AND missing = '{preview}'`); n != 10 {
		t.Fatalf("scenes found missing the preview (only, so far) = %d, want 10", n)
	}
	if m := e.queryString(`SELECT array_to_string(missing, ',') FROM stashgen.scenes WHERE stash_id = $1`, bare); m != "cover,phash" {
		t.Fatalf("the scene without a cover: missing = %q, want cover,phash (from Stash's is_missing filters, no 404)", m)
	}
}

// A scene found incomplete at its first probe, then generated, is
// verified on every resource after its job: nothing is marked generated
// without all its files answering 2xx.
func TestQuiet_AfterTheJobEveryResourceIsProbed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.fake.AddScene(stashtest.SceneResources(stashtest.ResourceCover, stashtest.ResourcePhash))
	e.fake.FailResource(id, stashtest.ResourceVTT) // the job leaves the vtt out

	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)

	var paths []string
	for _, f := range e.fake.FileRequests() {
		paths = append(paths, f.Path)
	}
	if len(paths) != 4 { // one at the check; preview, sprite, vtt after the job
		t.Fatalf("probes = %v, want 1 before the job and 3 after", paths)
	}
	if s := e.queryString(`SELECT generated::text || ' ' || array_to_string(missing, ',') FROM stashgen.scenes`); s != "false vtt" {
		t.Fatalf("scene = %q, want not generated, missing exactly the vtt", s)
	}
}

func TestQuiet_StandingAsideProbesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(5)
	e.addScan()
	e.fake.ResetLog()

	e.wantResult(e.once(context.Background()), db.OutcomeSkippedBusy, cycle.ExitTempFail)

	if n, _ := e.probes(); n != 0 {
		t.Fatalf("a run that stood aside probed %d files", n)
	}
	if strings.Contains(e.log(), "check done") {
		t.Fatal("a run that stood aside checked scenes")
	}
}

// The dry run shows the scenes a real run would probe again and why, what
// its probes cost Stash, and plans the batch they lead to; it writes
// nothing, not even the marks a real run would set.
func TestDryRun_ShowsReprobesAndTheirCost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.runner.Settings.ReverifyAfter = 4 * time.Hour
	e.runner.Settings.JobInterval = time.Hour
	e.generatedScenes(8)
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	e.exec(`UPDATE stashgen.scenes SET checked_at = now() - interval '5 hours' WHERE stash_id <= 4`)
	e.runner.Settings.Toggles.ImagePreviews = stash.Bool(true) // no scene has a webp
	e.fake.ResetLog()
	before := e.queryString(`SELECT string_agg(stash_id || ':' || needs_check || ':' || checked_at, ',' ORDER BY stash_id) FROM stashgen.scenes`)

	plan, err := e.runner.DryRun(context.Background(), cycle.DryRunInfo{})

	if err != nil {
		t.Fatal(err)
	}
	if r := plan.Reprobe; r.ForToggles != 8 || !slices.Equal(r.Added, []string{"webp"}) {
		t.Fatalf("reprobe = %+v, want the 8 scenes verified before webp was wanted", r)
	}
	if plan.Outcome != db.OutcomeGenerated || len(plan.Batch) != 8 || plan.Input == nil || plan.Input.ImagePreviews == nil || !*plan.Input.ImagePreviews {
		t.Fatalf("plan = %s, %d scenes, input %+v; want all 8 sent with image previews", plan.Outcome, len(plan.Batch), plan.Input)
	}
	if files, notFound := e.probes(); plan.Cost.FileRequests != int64(files) || plan.Cost.NotFound != int64(notFound) || notFound != 8 {
		t.Fatalf("cost = %+v, the fake saw %d requests and %d 404s; want 8 404s", plan.Cost, files, notFound)
	}
	if n := len(e.fake.Mutations()); n != 0 {
		t.Fatalf("the dry run sent %d mutations", n)
	}
	if after := e.queryString(`SELECT string_agg(stash_id || ':' || needs_check || ':' || checked_at, ',' ORDER BY stash_id) FROM stashgen.scenes`); after != before {
		t.Fatal("the dry run wrote to the scenes table")
	}

	// Without the toggle change, the age is the reason: ceil(8 × 1/4) = 2
	// of the 4 old checks.
	e.runner.Settings.Toggles.ImagePreviews = nil
	plan, err = e.runner.DryRun(context.Background(), cycle.DryRunInfo{})
	if err != nil || plan.Reprobe.ForAge != 2 || plan.Reprobe.ForToggles != 0 || plan.Reprobe.ReverifyAfterSeconds != 4*3600 {
		t.Fatalf("reprobe = %+v, %v; want 2 for their age", plan.Reprobe, err)
	}
}
