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
			<-e.fake.HangStarted() // the upgrade is held: the bound passes meanwhile
			return nil
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
