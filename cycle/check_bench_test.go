package cycle_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stashgen/stashgen/cycle"
)

// BenchmarkCheckScenes measures verification probes: a full check of
// 10,000 scenes with four probed files each (40,000 one-byte GETs, plus
// the is_missing queries for covers and phashes and one database write per
// 500 scenes) against the fake Stash over loopback, at concurrency 1, 4
// (the default) and 16.
//
//	go test ./cycle -run '^$' -bench 'BenchmarkCheckScenes' -count 5
func BenchmarkCheckScenes(b *testing.B) {
	const scenes, probesPerScene = 10_000, 4
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("scenes=%d/concurrency=%d", scenes, conc), func(b *testing.B) {
			e := newBenchEnv(b, cycle.Settings{Concurrency: conc, Toggles: fourProbes()})
			e.library(b, scenes, 0)
			ctx := context.Background()
			if _, err := e.runner.Sync(ctx, e.run(), false); err != nil {
				b.Fatal(err)
			}
			run := e.run()
			for b.Loop() {
				b.StopTimer()
				e.fake.ResetLog() // the fake remembers every request
				b.StartTimer()
				st, err := e.runner.CheckScenes(ctx, run, true)
				if err != nil {
					b.Fatal(err)
				}
				if st.Complete != scenes {
					b.Fatalf("check: %+v", st)
				}
			}
			if n := len(e.fake.FileRequests()); n != scenes*probesPerScene {
				b.Fatalf("%d probes in the last check, want %d", n, scenes*probesPerScene)
			}
			b.ReportMetric(float64(scenes*probesPerScene)*float64(b.N)/b.Elapsed().Seconds(), "probes/s")
		})
	}
}
