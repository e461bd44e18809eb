package cycle_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// Tests of a run that listens to Stash's events and the ledger. The env's
// Wait stands for the time passing, as elsewhere; the wait for the
// websocket before the first job is told apart by its duration.

// listening turns listening on and makes the run's wait for its websocket
// last until the first attempt to open it has ended: the bound never
// passes. opening, if set, runs when the run starts waiting. Polls go to
// the env's Wait as before.
func (e *env) listening(opening func(ctx context.Context)) {
	e.runner.Settings.Listen = true
	polls := e.runner.Wait
	e.runner.Wait = func(ctx context.Context, d time.Duration) error {
		if d != cycle.ListenWait {
			return polls(ctx, d)
		}
		if opening != nil {
			opening(ctx)
		}
		<-ctx.Done() // the run ends the wait once the socket was tried
		return ctx.Err()
	}
}

// generateCall is the fake's record of the run's metadataGenerate.
func (e *env) generateCall() stashtest.Call {
	e.t.Helper()
	for _, c := range e.fake.Calls() {
		if slices.Contains(c.Fields, "metadataGenerate") {
			return c
		}
	}
	e.t.Fatal("no metadataGenerate")
	return stashtest.Call{}
}

// subscription is the fake's record of the accepted subscription to field
// that the run started first.
func (e *env) subscription(field string) (stashtest.SubscribeCall, bool) {
	for _, c := range e.fake.Subscriptions() {
		if slices.Contains(c.Fields, field) && c.Errors == nil {
			return c, true
		}
	}
	return stashtest.SubscribeCall{}, false
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// The socket is up, with both subscriptions, before the first
// metadataGenerate, so the job's first events and log lines are heard,
// even when Stash is slow to take the upgrade.
func TestListen_SocketOpensBeforeTheFirstGenerate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(3)
	// Stash holds the upgrade until the run is waiting for it.
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Path: "/graphql", Times: 1})
	e.listening(func(ctx context.Context) {
		select {
		case <-e.fake.HangStarted():
			e.fake.ReleaseHung()
		case <-ctx.Done():
		}
	})

	res := e.once(testCtx(t))

	e.wantResult(res, db.OutcomeGenerated, 0)
	gen := e.generateCall()
	for _, field := range []string{"jobsSubscribe", "loggingSubscribe"} {
		sub, ok := e.subscription(field)
		if !ok {
			t.Fatalf("the run never subscribed to %s: %+v", field, e.fake.Subscriptions())
		}
		if sub.Seq > gen.Seq {
			t.Errorf("%s was registered after metadataGenerate arrived (seq %d > %d)", field, sub.Seq, gen.Seq)
		}
	}
	if strings.Contains(e.log(), "not open yet") {
		t.Errorf("the run gave up waiting for the socket:\n%s", e.log())
	}
	if got := e.queryString(`SELECT listening::text FROM stashgen.runs`); got != "true" {
		t.Errorf("runs.listening = %s", got)
	}
}

// A refused upgrade ends the wait at once (not the bound): the run says it
// polls, and generates.
func TestListen_RefusedSocketDoesNotHoldTheRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithoutWebsocket(http.StatusBadGateway))
	e.fake.AddScenes(2)
	e.listening(nil)

	res := e.once(testCtx(t))

	e.wantResult(res, db.OutcomeGenerated, 0)
	log := e.log()
	polls := strings.Index(log, "not listening to stash's events; polling every poll_interval instead")
	started := strings.Index(log, "Started generation job")
	if polls < 0 || strings.Count(log, "not listening to stash's events") != 1 || polls > started {
		t.Fatalf("want one line saying the run polls, before the job starts:\n%s", log)
	}
	if ups := e.fake.Upgrades(); len(ups) == 0 || ups[0].Seq > e.generateCall().Seq {
		t.Fatalf("upgrades %+v: the first should come before metadataGenerate", ups)
	}
	if got := e.queryString(`SELECT listening::text FROM stashgen.runs`); got != "false" {
		t.Errorf("runs.listening = %s", got)
	}
}

// A socket slower than the bound does not hold the generate: once the
// bound has passed, the run says so and goes on, polling.
func TestListen_SlowSocketHoldsTheRunAtMostTheBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.AddScenes(2)
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Path: "/graphql", Times: 1})
	e.runner.Settings.Listen = true
	polls := e.runner.Wait
	bounded := 0
	e.runner.Wait = func(ctx context.Context, d time.Duration) error {
		if d == cycle.ListenWait {
			bounded++
			select {
			case <-e.fake.HangStarted(): // the upgrade is held: the bound passes meanwhile
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return polls(ctx, d)
	}

	res := e.once(testCtx(t))

	e.wantResult(res, db.OutcomeGenerated, 0)
	if bounded != 1 {
		t.Fatalf("the run waited for its socket %d times, want once", bounded)
	}
	if !strings.Contains(e.log(), "the websocket to stash is not open yet; going on, polling until it is") {
		t.Fatalf("the run did not say it went on without its socket:\n%s", e.log())
	}
	if _, ok := e.subscription("jobsSubscribe"); ok {
		t.Fatal("subscribed through an upgrade the fake still held")
	}
}

// logWatch tees the run's log into the env's and wakes a test waiting for
// a line, so it need not sleep.
type logWatch struct {
	e       *env
	mu      sync.Mutex
	changed chan struct{}
}

// watchLog makes the run log through a logWatch.
func (e *env) watchLog() *logWatch {
	w := &logWatch{e: e, changed: make(chan struct{})}
	e.runner.Log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return w
}

func (w *logWatch) Write(p []byte) (int, error) {
	n, err := lockedWriter{w.e}.Write(p)
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	return n, err
}

// await waits until the run has logged text.
func (w *logWatch) await(ctx context.Context, text string) error {
	for {
		w.mu.Lock()
		changed := w.changed
		w.mu.Unlock()
		if strings.Contains(w.e.log(), text) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("the run never logged %q", text)
		}
	}
}

// The socket drops while the run follows its job, and Stash refuses the
// upgrade for a while: the run says so once, follows the job by polling,
// yields to a scan queued meanwhile (the poll's scan check), and listens
// again once Stash takes the upgrade.
func TestListen_SocketDropsMidJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(5)
	ctx := testCtx(t)
	logs := e.watchLog()
	e.listening(nil)
	const (
		lost  = "lost stash's events; polling every poll_interval until they are back"
		again = "listening to stash's events again"
	)
	var (
		polledAtDrop, polledAtBack int
		stopsAtBack                int
		failed                     error
	)
	e.onWait = func(n int) error {
		switch n {
		case 1: // the first poll: the socket is up
			e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultStatus500, Path: "/graphql"})
			if cut := e.fake.DropSockets(); cut != 1 {
				failed = fmt.Errorf("DropSockets cut %d sockets, want the run's one", cut)
				return failed
			}
			if failed = logs.await(ctx, lost); failed != nil {
				return failed
			}
			polledAtDrop = e.fake.CountField("findJob")
			e.addScan()
		case 2: // a poll later, with the socket still refused
			polledAtBack, stopsAtBack = e.fake.CountField("findJob"), len(e.fake.StopCalls())
			e.fake.ClearFaults()
			if failed = logs.await(ctx, again); failed != nil {
				return failed
			}
		}
		return nil
	}

	res := e.once(ctx)

	if failed != nil {
		t.Fatal(failed)
	}
	e.wantResult(res, db.OutcomeCancelledForScan, 75)
	log := e.log()
	if n := strings.Count(log, lost); n != 1 {
		t.Errorf("%d lines say the socket was lost, want 1:\n%s", n, log)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(lost) + `"[^\n]* reason="[^"<]+"`).MatchString(log) {
		t.Errorf("the line saying the socket was lost gives no reason:\n%s", log)
	}
	if strings.Contains(log, "not listening to stash's events") {
		t.Errorf("a failed reconnect was announced again after the loss:\n%s", log)
	}
	if polledAtBack <= polledAtDrop {
		t.Errorf("findJob polls: %d at the drop, %d a poll later: the run stopped following its job", polledAtDrop, polledAtBack)
	}
	if stopsAtBack != 1 || len(e.fake.StopCalls()) != 1 {
		t.Errorf("stopJob calls: %d before the socket was back, %d in all; want the one, sent while polling",
			stopsAtBack, len(e.fake.StopCalls()))
	}
	subs := 0
	for _, s := range e.fake.Subscriptions() {
		if slices.Contains(s.Fields, "jobsSubscribe") && s.Errors == nil {
			subs++
		}
	}
	if subs != 2 {
		t.Errorf("jobsSubscribe accepted %d times, want 2 (before and after the drop)", subs)
	}
}

// The ledger's LISTEN connection dies mid-job (a restarted PostgreSQL, a
// killed backend): the run says so, and its polls look at the ledger for
// scans again, so a scan row is still honoured.
func TestListen_LedgerListenDropsMidJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(5)
	ctx := testCtx(t)
	logs := e.watchLog()
	e.listening(nil)
	const stopped = "stopped listening to the ledger for scans; polling it instead"
	var failed error
	e.onWait = func(n int) error {
		if n != 1 {
			return nil
		}
		killed := e.queryInt(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
		if killed != 1 {
			failed = fmt.Errorf("terminated %d LISTEN connections, want the run's one", killed)
			return failed
		}
		if failed = logs.await(ctx, stopped); failed != nil {
			return failed
		}
		e.exec(`INSERT INTO stashgen.jobs (type, status, created_by) VALUES ('stash_scan', 'running', 'my-script')`)
		return nil
	}

	res := e.once(ctx)

	if failed != nil {
		t.Fatal(failed)
	}
	e.wantResult(res, db.OutcomeCancelledForScan, 75)
	if r := e.queryString(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); !strings.Contains(r, "ledger job") {
		t.Errorf("cancel reason = %q, want the ledger's scan", r)
	}
	if n := strings.Count(e.log(), stopped); n != 1 {
		t.Errorf("%d lines say the ledger's LISTEN stopped, want 1", n)
	}
	if strings.Contains(e.log(), "lost stash's events") {
		t.Errorf("the websocket dropped too:\n%s", e.log())
	}
}
