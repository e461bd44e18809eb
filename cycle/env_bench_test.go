package cycle_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// benchEnv is a fake Stash, a migrated database of its own and a Runner
// wired as main wires it, for benchmarks: logs are formatted but
// discarded, and the fake runs in this process (its CPU and allocations
// count in the figures; the scripts in contrib/bench measure stashgen alone).
type benchEnv struct {
	fake   *stashtest.Server
	store  *db.Store
	client *stash.Client
	runner *cycle.Runner
	dbURL  string
}

// fourProbes are generate toggles under which a scene has exactly four
// probed files (preview, webp, sprite, vtt) and covers and phashes come
// from is_missing queries; markers are synced but not probed. Every key is
// set, so no run asks Stash for its defaults.
func fourProbes() stash.Toggles {
	t, f := stash.Bool(true), stash.Bool(false)
	return stash.Toggles{
		Covers: t, Sprites: t, Previews: t, ImagePreviews: t, Phashes: t,
		Markers: f, MarkerImagePreviews: f, MarkerScreenshots: f, Transcodes: f, InteractiveHeatmapsSpeeds: f,
	}
}

func newBenchEnv(b *testing.B, set cycle.Settings, opts ...stashtest.Option) *benchEnv {
	b.Helper()
	e := &benchEnv{fake: stashtest.New(b, opts...), dbURL: dbtest.URL(b)}
	ctx := context.Background()
	store, err := db.Open(ctx, e.dbURL, "stashgen")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	e.store = store
	conns := set.Concurrency
	e.client, err = stash.New(stash.Options{URL: e.fake.URL(), Timeout: 30 * time.Second, Conns: conns})
	if err != nil {
		b.Fatal(err)
	}
	if set.HeartbeatInterval == 0 {
		set.HeartbeatInterval = time.Hour
	}
	e.runner = &cycle.Runner{
		Stash: e.client, Store: store,
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Settings: set,
		Host:     "bench-host", PID: os.Getpid(), Version: "bench",
		Stderr: io.Discard,
	}
	return e
}

// run is a Run as Execute would make it, without the audit row.
func (e *benchEnv) run() *cycle.Run {
	return &cycle.Run{ID: 1, Log: e.runner.Log, Started: time.Now()}
}

// library fills the fake with scenes (each with every generated file) and
// markers spread round-robin over them, then moves the fake clock on so
// the first sync's cursor lands after all of them.
func (e *benchEnv) library(b *testing.B, scenes, markers int) []string {
	b.Helper()
	ids := make([]string, scenes)
	res := stashtest.SceneResources(stashtest.ResourceCover, stashtest.ResourcePhash, stashtest.ResourcePreview,
		stashtest.ResourceWebP, stashtest.ResourceSprite, stashtest.ResourceVTT)
	for i := range ids {
		ids[i] = e.fake.AddScene(res)
	}
	mres := stashtest.MarkerResources(stashtest.ResourceMarkerStream, stashtest.ResourceMarkerPreview, stashtest.ResourceMarkerScreenshot)
	for i := range markers {
		e.fake.AddMarker(ids[i%scenes], mres)
	}
	e.fake.Advance(time.Minute)
	return ids
}

// exec runs SQL on the benchmark's database, outside any timed region.
func (e *benchEnv) exec(b *testing.B, sql string) {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// quantile of sorted durations, nearest rank.
func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}
