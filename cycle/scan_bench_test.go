package cycle_test

import (
	"context"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// timedStash notes when findJob answers and when stopJob is called.
type timedStash struct {
	cycle.Stash
	polled  chan time.Time
	stopped chan time.Time
}

func (s *timedStash) FindJob(ctx context.Context, id string) (stash.Job, error) {
	j, err := s.Stash.FindJob(ctx, id)
	select {
	case s.polled <- time.Now():
	default:
	}
	return j, err
}

func (s *timedStash) StopJob(ctx context.Context, id string) error {
	t := time.Now()
	select {
	case s.stopped <- t:
	default:
	}
	return s.Stash.StopJob(ctx, id)
}

// BenchmarkScanReaction measures how long a scan waits for stashgen: from
// the scan appearing in the fake's queue to stashgen's stopJob call, with
// a real timer between polls. Each op is one whole `once` run that follows
// a generate job; the scan arrives at a phase of the poll interval taken
// from a low-discrepancy sequence, so a handful of ops cover the interval
// evenly. The reaction is the wait until the next poll plus that poll's
// requests: uniform on [0, poll_interval] plus a few milliseconds.
//
//	go test ./cycle -run '^$' -bench 'BenchmarkScanReaction/poll=1s' -benchtime 10x -count 5
//	STASHGEN_BENCH_SLOW=1 go test ./cycle -run '^$' -bench 'BenchmarkScanReaction/poll=30s' -benchtime 4x
//	go test ./cycle -run '^$' -bench 'BenchmarkScanReaction/listening' -benchtime 10x -count 3
//
// The listening case hears Stash's jobsSubscribe over a websocket: the
// scan's ADD wakes the run at once, whatever poll_interval is (30 s here).
//
// ns/op is the length of a whole run and means little; read the
// reaction-ms metrics.
func BenchmarkScanReaction(b *testing.B) {
	for _, poll := range []time.Duration{time.Second, 30 * time.Second} {
		b.Run("poll="+poll.String(), func(b *testing.B) {
			if poll > time.Second && os.Getenv("STASHGEN_BENCH_SLOW") != "1" {
				b.Skip("takes about poll_interval per op; set STASHGEN_BENCH_SLOW=1")
			}
			benchScanReaction(b, poll, false)
		})
	}
	b.Run("listening/poll=30s", func(b *testing.B) { benchScanReaction(b, 30*time.Second, true) })
}

func benchScanReaction(b *testing.B, poll time.Duration, listen bool) {
	e := newBenchEnv(b, cycle.Settings{PollInterval: poll, Toggles: fourProbes(), Listen: listen},
		stashtest.WithScenesPerTick(1))
	ts := &timedStash{Stash: e.client, polled: make(chan time.Time, 1), stopped: make(chan time.Time, 1)}
	e.runner.Stash = ts
	e.runner.Wait = nil // a real timer
	var reactions []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e.fake.DrainJobs()
		e.fake.AddScenes(20)
		e.fake.ResetLog()
		drain(ts.polled)
		drain(ts.stopped)
		b.StartTimer()

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan cycle.Result)
		go func() {
			done <- e.runner.Execute(ctx, "once", true, "/run/lock/bench.lock", e.runner.Once)
		}()
		var first time.Time
		select {
		case first = <-ts.polled:
		case res := <-done:
			b.Fatalf("run ended before following a job: %+v", res)
		}
		if listen {
			if err := e.fake.AwaitWebsockets(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
		_, phase := math.Modf(0.5 + float64(i)*0.6180339887)
		if !listen { // listening, the phase of the poll does not matter
			time.Sleep(time.Until(first.Add(time.Duration(phase * float64(poll)))))
		}
		queued := addScan(b, e.fake)
		var stop time.Time
		select {
		case stop = <-ts.stopped:
		case <-time.After(poll + 10*time.Second):
			b.Fatalf("no stopJob %s after the scan", poll+10*time.Second)
		}
		cancel() // the rest of the run (waiting for Stash to confirm) is not measured
		<-done
		reactions = append(reactions, stop.Sub(queued))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(quantile(reactions, 0)), "reaction-ms-min")
	b.ReportMetric(ms(quantile(reactions, 0.5)), "reaction-ms-p50")
	b.ReportMetric(ms(quantile(reactions, 1)), "reaction-ms-max")
	b.ReportMetric(ms(quantile(reactions, 1)-poll), "max-minus-poll-ms")
}

// addScan queues a scan as Stash's UI does and returns when the fake has
// it in its queue.
func addScan(b *testing.B, fake *stashtest.Server) time.Time {
	b.Helper()
	body := `{"query":"mutation { metadataScan(input: {}) }"}`
	res, err := http.Post(fake.URL()+"/graphql", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("metadataScan: HTTP %d", res.StatusCode)
	}
	return time.Now()
}

func drain(c chan time.Time) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// BenchmarkFollowRequests counts the requests a run sends Stash while it
// follows a job, polling and listening: polling, each poll asks findJob
// and the queue (for scans); listening, scans arrive as events, so a poll
// is findJob alone. One op is one poll; requests/hour is at the default
// 30 s poll_interval.
//
//	go test ./cycle -run '^$' -bench 'BenchmarkFollowRequests' -benchtime 20x
func BenchmarkFollowRequests(b *testing.B) {
	for _, listen := range []bool{false, true} {
		name := "polling"
		if listen {
			name = "listening"
		}
		b.Run(name, func(b *testing.B) {
			e := newBenchEnv(b, cycle.Settings{PollInterval: time.Millisecond, Toggles: fourProbes(), Listen: listen},
				stashtest.WithScenesPerTick(1))
			e.fake.AddScenes(100_000) // a job that outlasts any op count
			polls := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e.runner.Wait = func(ctx context.Context, _ time.Duration) error {
				select {
				case polls <- struct{}{}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			done := make(chan cycle.Result)
			go func() { done <- e.runner.Execute(ctx, "once", true, "/run/lock/bench.lock", e.runner.Once) }()
			<-polls // the job is launched and polled once
			if listen {
				if err := e.fake.AwaitWebsockets(ctx, 1); err != nil {
					b.Fatal(err)
				}
			}
			<-polls
			e.fake.ResetLog()
			for b.Loop() {
				<-polls
			}
			calls := len(e.fake.Calls())
			cancel()
			<-done
			perPoll := float64(calls) / float64(b.N)
			b.ReportMetric(perPoll, "requests/poll")
			b.ReportMetric(perPoll*float64(time.Hour/(30*time.Second)), "requests/hour")
		})
	}
}
