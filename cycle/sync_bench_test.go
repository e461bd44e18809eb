package cycle_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

const (
	benchScenes  = 100_000
	benchMarkers = 200_000
)

// BenchmarkSync measures the sync of a library of 100,000 scenes and
// 200,000 markers from the fake Stash: the first one into an empty
// database, and an incremental one after 10 scenes changed. The "fetch"
// and "store" parts split the first sync into its two halves: paging
// through Stash (fake and client, no database) and writing the pages
// (database only).
//
//	go test ./cycle -run '^$' -bench 'BenchmarkSync' -benchtime 1x -count 5
func BenchmarkSync(b *testing.B) {
	e := newBenchEnv(b, cycle.Settings{})
	e.library(b, benchScenes, benchMarkers)
	ctx := context.Background()
	empty := func(b *testing.B) {
		b.StopTimer()
		e.exec(b, `TRUNCATE stashgen.scenes, stashgen.markers, stashgen.sync_state`)
		b.StartTimer()
	}

	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			empty(b)
			st, err := e.runner.Sync(ctx, e.run(), false)
			if err != nil {
				b.Fatal(err)
			}
			if st.Scenes != benchScenes || st.Markers != benchMarkers {
				b.Fatalf("synced %+v, want %d scenes and %d markers", st, benchScenes, benchMarkers)
			}
		}
		b.ReportMetric(float64(benchScenes)*float64(b.N)/b.Elapsed().Seconds(), "scenes/s")
	})

	b.Run("first/fetch", func(b *testing.B) {
		for b.Loop() {
			scenes, markers := fetchAll(b, e.client)
			if len(scenes) != benchScenes || len(markers) != benchMarkers {
				b.Fatalf("fetched %d scenes and %d markers", len(scenes), len(markers))
			}
		}
	})

	b.Run("first/store", func(b *testing.B) {
		scenes, markers := fetchAll(b, e.client)
		for b.Loop() {
			empty(b)
			for p := range chunks(len(scenes), 1000) {
				if err := e.store.UpsertScenes(ctx, scenes[p[0]:p[1]]); err != nil {
					b.Fatal(err)
				}
			}
			for p := range chunks(len(markers), 1000) {
				if err := e.store.UpsertMarkers(ctx, markers[p[0]:p[1]], false); err != nil {
					b.Fatal(err)
				}
			}
		}
	})

	b.Run("incremental/changed=10", func(b *testing.B) {
		empty(b)
		if _, err := e.runner.Sync(ctx, e.run(), false); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			e.fake.Advance(2 * time.Second)
			for k := range 10 {
				e.fake.TouchScene(strconv.Itoa(1 + (i*10+k)*997%benchScenes))
			}
			e.fake.Advance(2 * time.Second)
			b.StartTimer()
			st, err := e.runner.Sync(ctx, e.run(), false)
			if err != nil {
				b.Fatal(err)
			}
			if st.Scenes != 10 || st.Markers != 0 {
				b.Fatalf("synced %+v, want 10 scenes", st)
			}
		}
	})
}

// fetchAll pages through every scene and marker as Sync does, and converts
// them to rows, without touching the database.
func fetchAll(b *testing.B, c *stash.Client) ([]db.SceneRow, []db.MarkerRow) {
	b.Helper()
	ctx := context.Background()
	var scenes []db.SceneRow
	var after int64
	for {
		p, err := c.Scenes(ctx, stash.SceneQuery{AfterID: after, PerPage: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range p.Scenes {
			id, _ := strconv.ParseInt(s.ID, 10, 64)
			scenes = append(scenes, db.SceneRow{ID: id, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
				PreviewPath: stash.FilePath(s.Paths.Preview), WebpPath: stash.FilePath(s.Paths.Webp),
				SpritePath: stash.FilePath(s.Paths.Sprite), VTTPath: stash.FilePath(s.Paths.VTT)})
			after = id
		}
		if len(p.Scenes) < 1000 {
			break
		}
	}
	var markers []db.MarkerRow
	for page := 1; ; page++ {
		p, err := c.Markers(ctx, stash.MarkerQuery{Page: page, PerPage: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range p.Markers {
			id, _ := strconv.ParseInt(m.ID, 10, 64)
			sid, _ := strconv.ParseInt(m.Scene.ID, 10, 64)
			markers = append(markers, db.MarkerRow{ID: id, SceneID: sid, UpdatedAt: m.UpdatedAt,
				StreamPath: stash.FilePath(m.Stream), PreviewPath: stash.FilePath(m.Preview),
				ScreenshotPath: stash.FilePath(m.Screenshot)})
		}
		if len(p.Markers) < 1000 {
			break
		}
	}
	return scenes, markers
}

// chunks yields [lo, hi) bounds of n items in pieces of size.
func chunks(n, size int) func(func([2]int) bool) {
	return func(yield func([2]int) bool) {
		for lo := 0; lo < n; lo += size {
			if !yield([2]int{lo, min(lo+size, n)}) {
				return
			}
		}
	}
}
