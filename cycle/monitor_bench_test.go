package cycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// BenchmarkMonitorPoll measures one poll of the loop that follows a Stash
// job: findJob, the progress write, the scan check (jobQueue and the
// ledger) and the progress log line, against the fake Stash and a real
// database. One op is one poll. cpu-ms/poll is this process's user+system
// CPU per poll, the fake's share included (it runs in this process), so it
// is an upper bound; cpu-s/hour multiplies it by the 120 polls an hour of
// the default 30 s poll_interval, plus the 120 heartbeats of the default
// heartbeat_interval (measured by the heartbeat sub-benchmark).
//
//	go test ./cycle -run '^$' -bench 'BenchmarkMonitorPoll' -count 5
func BenchmarkMonitorPoll(b *testing.B) {
	const jobScenes = 100_000 // polls before the job ends; more than any op count
	fake := stashtest.New(b, stashtest.WithScenesPerTick(1))
	ids := fake.AddScenes(jobScenes)
	ctx := context.Background()
	store, err := db.Open(ctx, dbtest.URL(b), "stashgen")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	client, err := stash.New(stash.Options{URL: fake.URL(), Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &Runner{Stash: client, Store: store, Log: log, Host: "bench-host", PID: os.Getpid(), Version: "bench",
		// Every poll logs its progress line, as it does when polls are
		// poll_interval apart.
		Settings: Settings{PollInterval: time.Nanosecond}}

	var beatCPU float64 // CPU seconds per heartbeat, from the sub-benchmark below
	b.Run("heartbeat", func(b *testing.B) {
		runID, err := store.StartRun(ctx, "once", "bench-host", os.Getpid(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		hb := db.Heartbeat{Host: "bench-host", PID: os.Getpid(), RunID: runID, Phase: "monitor", StartedAt: time.Now()}
		cpu0 := monitorBenchCPU(b)
		for b.Loop() {
			if err := store.Beat(ctx, hb); err != nil {
				b.Fatal(err)
			}
		}
		beatCPU = (monitorBenchCPU(b) - cpu0).Seconds() / float64(b.N)
		b.ReportMetric(beatCPU*1e3, "cpu-ms/beat")
	})

	b.Run("poll", func(b *testing.B) {
		runID, err := store.StartRun(ctx, "once", "bench-host", os.Getpid(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		run := &Run{ID: runID, Log: log, Started: time.Now()}
		sceneIDs := make([]int64, len(ids))
		for i, s := range ids {
			if sceneIDs[i], err = sceneID(s); err != nil {
				b.Fatal(err)
			}
		}
		// The ledger holds one default batch (500 scenes), as a real run's
		// job does; Stash gets them all so that its job outlasts any op count.
		jobID, err := store.LaunchJob(ctx, runID, sceneIDs[:500], "bench")
		if err != nil {
			b.Fatal(err)
		}
		launch, err := client.Generate(ctx, stash.GenerateInput{Toggles: stash.Toggles{Previews: stash.Bool(true)}, SceneIDs: ids})
		stashID := launch.JobID
		if err != nil {
			b.Fatal(err)
		}
		errDone := errors.New("benchmark done")
		polled, next := make(chan struct{}), make(chan struct{})
		r.Wait = func(ctx context.Context, _ time.Duration) error {
			polled <- struct{}{}
			if _, ok := <-next; !ok {
				return errDone
			}
			return nil
		}
		ended := make(chan error)
		p := r.newPass(run)
		j := &tracked{ledgerID: jobID, stashID: stashID, scenes: sceneIDs[:500], log: log}
		go func() { ended <- p.monitor(ctx, j) }()
		<-polled // the first poll also stores the job's addTime: not a steady-state poll
		cpu0 := monitorBenchCPU(b)
		for b.Loop() {
			next <- struct{}{}
			<-polled
		}
		perPoll := (monitorBenchCPU(b) - cpu0).Seconds() / float64(b.N)
		close(next)
		if err := <-ended; !errors.Is(err, errDone) {
			b.Fatalf("monitor ended early: %v", err)
		}
		b.ReportMetric(perPoll*1e3, "cpu-ms/poll")
		polls := float64(time.Hour / (30 * time.Second))
		b.ReportMetric(polls*(perPoll+beatCPU), "cpu-s/hour")
	})
}

func monitorBenchCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
