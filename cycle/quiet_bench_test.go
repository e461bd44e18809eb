package cycle_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// stashCost is what one op cost Stash: GraphQL requests, file requests,
// and the 404s among those (each a WARN line in Stash's log).
func (e *benchEnv) stashCost() (graphql, files, notFound int) {
	for _, f := range e.fake.FileRequests() {
		files++
		if f.Status == http.StatusNotFound {
			notFound++
		}
	}
	return len(e.fake.Calls()), files, notFound
}

func (e *benchEnv) reportCost(b *testing.B) (graphql, files, notFound int) {
	b.Helper()
	graphql, files, notFound = e.stashCost()
	b.ReportMetric(float64(graphql), "graphql/op")
	b.ReportMetric(float64(files), "file-requests/op")
	b.ReportMetric(float64(notFound), "404s/op")
	return graphql, files, notFound
}

// BenchmarkQuietCheck measures what checks cost Stash, over 10,000 scenes
// a scan left with a cover and a phash but no other file, under toggles
// with four files a scene (preview, webp, sprite, vtt):
//
//   - first: the first check of those never-generated scenes (each a quiet
//     probe: one 404 a scene, not four);
//
//   - again: an incremental check with the 10,000 pending and nothing
//     changed (no file request);
//
//   - idle-once: a whole once over them while they back off (nothing due,
//     at most 3 requests);
//
//   - verify-500: the verification after a job of 500 scenes, 50 of which
//     still lack their webp (every file probed; 404s only for those 50).
//
//   - verify-500-default: the same under the default toggles (preview,
//     sprite, vtt; markers' streams and screenshots), with a marker on
//     every fifth scene and 50 scenes still lacking their sprite: 1,700
//     file requests (3 × 500 and 2 × 100), 404s only for the 50 sprites.
//
//     go test ./cycle -run '^$' -bench 'BenchmarkQuietCheck' -benchtime 3x -count 1
func BenchmarkQuietCheck(b *testing.B) {
	const scenes = 10_000
	set := cycle.Settings{Toggles: fourProbes()}
	e := newBenchEnv(b, set)
	ids := make([]string, scenes)
	for i := range ids {
		ids[i] = e.fake.AddScene(stashtest.SceneResources(stashtest.ResourceCover, stashtest.ResourcePhash))
	}
	e.fake.Advance(60e9)
	ctx := context.Background()
	if _, err := e.runner.Sync(ctx, e.run(), false); err != nil {
		b.Fatal(err)
	}

	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			e.exec(b, `UPDATE stashgen.scenes SET needs_check = true, generated = false, checked_at = NULL, missing = '{}'`)
			e.fake.ResetLog()
			b.StartTimer()
			st, err := e.runner.CheckScenes(ctx, e.run(), false)
			if err != nil || st.Incomplete != scenes {
				b.Fatalf("check: %+v, %v", st, err)
			}
		}
		if _, files, notFound := e.reportCost(b); files != scenes || notFound != scenes {
			b.Fatalf("%d file requests, %d 404s; want one of each a scene", files, notFound)
		}
	})

	b.Run("again", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			e.fake.ResetLog()
			b.StartTimer()
			if res := e.runner.Execute(ctx, "check", true, "/run/lock/bench.lock", e.runner.Check(false)); res.ExitCode != 0 {
				b.Fatalf("check: %+v", res)
			}
		}
		if graphql, files, _ := e.reportCost(b); files != 0 || graphql > 3 {
			b.Fatalf("%d file requests, %d GraphQL requests; want none and at most 3", files, graphql)
		}
	})

	b.Run("idle-once", func(b *testing.B) {
		e.exec(b, `UPDATE stashgen.scenes SET next_attempt_at = now() + interval '1 day', attempts = 1`)
		for b.Loop() {
			b.StopTimer()
			e.fake.ResetLog()
			b.StartTimer()
			if res := e.runner.Execute(ctx, "once", true, "/run/lock/bench.lock", e.runner.Once); res.ExitCode != 0 {
				b.Fatalf("once: %+v", res)
			}
		}
		if graphql, files, _ := e.reportCost(b); files != 0 || graphql > 3 {
			b.Fatalf("%d file requests, %d GraphQL requests; want none and at most 3", files, graphql)
		}
	})

	b.Run("verify-500", func(b *testing.B) {
		batch := make([]int64, 500)
		for i := range batch {
			batch[i] = int64(i + 1)
			res := []stashtest.Resource{stashtest.ResourceCover, stashtest.ResourcePhash, stashtest.ResourcePreview,
				stashtest.ResourceSprite, stashtest.ResourceVTT}
			if i%10 != 0 { // one in ten still lacks its webp
				res = append(res, stashtest.ResourceWebP)
			}
			e.fake.SetResources(ids[i], res...)
		}
		for b.Loop() {
			b.StopTimer()
			e.fake.ResetLog()
			b.StartTimer()
			st, err := e.runner.VerifyBatch(ctx, e.run(), batch)
			if err != nil || st.Incomplete != 50 {
				b.Fatalf("verify: %+v, %v", st, err)
			}
		}
		if _, files, notFound := e.reportCost(b); files != 500*4 || notFound != 50 {
			b.Fatalf("%d file requests, %d 404s; want every file (2000) and a 404 for each of the 50 webps", files, notFound)
		}
	})

	b.Run("verify-500-default", func(b *testing.B) {
		defer func(t stash.Toggles) { e.runner.Settings.Toggles = t }(e.runner.Settings.Toggles)
		e.runner.Settings.Toggles = stash.ResolveToggles(stash.Toggles{}, stash.Toggles{}) // the built-in defaults
		const markers = 100
		batch := make([]int64, 500)
		for i := range batch {
			batch[i] = int64(i + 1)
			res := []stashtest.Resource{stashtest.ResourceCover, stashtest.ResourcePhash, stashtest.ResourcePreview,
				stashtest.ResourceVTT}
			if i%10 != 0 { // one in ten still lacks its sprite
				res = append(res, stashtest.ResourceSprite)
			}
			e.fake.SetResources(ids[i], res...)
			if i%5 == 0 {
				e.fake.AddMarker(ids[i], stashtest.MarkerResources(stashtest.ResourceMarkerStream, stashtest.ResourceMarkerScreenshot))
			}
		}
		e.fake.Advance(time.Minute)
		if st, err := e.runner.Sync(ctx, e.run(), false); err != nil || st.Markers != markers {
			b.Fatalf("sync: %+v, %v; want the %d markers", st, err, markers)
		}
		for b.Loop() {
			b.StopTimer()
			e.fake.ResetLog()
			b.StartTimer()
			st, err := e.runner.VerifyBatch(ctx, e.run(), batch)
			if err != nil || st.Incomplete != 50 {
				b.Fatalf("verify: %+v, %v", st, err)
			}
		}
		if _, files, notFound := e.reportCost(b); files != 500*3+markers*2 || notFound != 50 {
			b.Fatalf("%d file requests, %d 404s; want every wanted file (3 × 500 + 2 × %d markers) and a 404 for each of the 50 sprites",
				files, notFound, markers)
		}
	})
}
