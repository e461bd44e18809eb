package db_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stashgen/stashgen/db"
)

func TestStore_LastHeartbeatBeforeFirstBeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.s.LastHeartbeat(t.Context()); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("LastHeartbeat on an empty table = %v; want ErrNotFound", err)
	}
}

func TestStore_BeatUpsertsOneRow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	run := startRun(t, e)
	started := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	if err := e.s.Beat(ctx, db.Heartbeat{Host: "host-a", PID: 1, RunID: run, Phase: "sync", StartedAt: started}); err != nil {
		t.Fatal(err)
	}
	first, err := e.s.LastHeartbeat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := db.Heartbeat{Host: "host-b", PID: 2, RunID: run, Phase: "generate", StartedAt: started.Add(time.Hour)}
	if err := e.s.Beat(ctx, next); err != nil {
		t.Fatal(err)
	}
	if n := scalar[int](t, e, `SELECT count(*) FROM heartbeats`); n != 1 {
		t.Fatalf("heartbeats has %d rows, want 1", n)
	}
	h, err := e.s.LastHeartbeat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Host != next.Host || h.PID != next.PID || h.RunID != run || h.Phase != next.Phase || !h.StartedAt.Equal(next.StartedAt) {
		t.Fatalf("LastHeartbeat = %+v, want %+v", h, next)
	}
	if h.BeatAt.Before(first.BeatAt) {
		t.Fatalf("beat_at went back: %v then %v", first.BeatAt, h.BeatAt)
	}
}
