package session

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/db"
)

const pingSecret = "/ping-secret-3e1f0a"

func noEnv(string) (string, bool) { return "", false }

// A ping server that never answers costs a run its ping timeouts and no
// more: the final ping gives up on a hanging /start after one timeout,
// then tries the end ping (1 + 2 retries, each bounded).
func TestSession_HangingPingServer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method)
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	var logs lockedBuffer
	cfg := config.Default()
	cfg.Notify.PingURL = srv.URL + pingSecret
	s := New(context.Background(), Options{Config: &cfg, Stderr: &logs, Getenv: noEnv, Format: "text"})
	s.pinger.Timeout = 50 * time.Millisecond
	s.pinger.Wait = func(context.Context, time.Duration) error { return nil }

	s.Started(1)
	s.Phase(cycle.PhaseSync)
	done := make(chan struct{})
	go func() {
		s.Finished(cycle.Result{Outcome: db.OutcomeGenerated})
		close(done)
	}()

	select {
	case <-done:
	case <-time.After(30 * time.Second): // far beyond the ~0.3 s of timeouts: only a hang gets here
		t.Fatal("the run waited on its pings beyond their timeouts")
	}
	mu.Lock()
	defer mu.Unlock()
	if posts := slices.Index(got, http.MethodPost); posts < 1 || len(got)-posts != 3 || got[0] != http.MethodGet {
		t.Fatalf("requests = %v, want /start attempts then 3 end attempts", got)
	}
	if !strings.Contains(logs.String(), "ping failed; the run is not affected") || strings.Contains(logs.String(), pingSecret) {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// Only a work phase sends /start, and only the first; Finished counts once.
func TestSession_StartPingOnceAndOnlyForWork(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	cfg := config.Default()
	cfg.Notify.PingURL = srv.URL + pingSecret
	s := New(context.Background(), Options{Config: &cfg, Stderr: &lockedBuffer{}, Getenv: noEnv})
	s.Started(7)
	for _, p := range []cycle.Phase{cycle.PhaseReconcile, cycle.PhaseBusyCheck, cycle.PhaseSync, cycle.PhaseCheck, cycle.PhaseMonitor} {
		s.Phase(p)
	}
	s.Finished(cycle.Result{Outcome: db.OutcomeNothingToDo})
	s.Finished(cycle.Result{Outcome: db.OutcomeError, ExitCode: 69})
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET " + pingSecret + "/start", "POST " + pingSecret + "/0"}
	if !slices.Equal(got, want) {
		t.Fatalf("pings = %v, want %v", got, want)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The lock file is released before the final ping, which may retry for a
// while: the next run is not kept out by it.
func TestSession_UnlocksBeforeTheFinalPing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	unlocked, lockedAtPing := false, []string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !unlocked {
			lockedAtPing = append(lockedAtPing, r.Method+" "+r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := config.Default()
	cfg.Notify.PingURL = srv.URL + pingSecret
	s := New(context.Background(), Options{Config: &cfg, Stderr: &lockedBuffer{}, Getenv: noEnv, Format: "text"})
	s.Unlock = func() {
		mu.Lock()
		defer mu.Unlock()
		unlocked = true
	}

	s.Started(1)
	s.Finished(cycle.Result{Outcome: db.OutcomeNothingToDo})

	mu.Lock()
	defer mu.Unlock()
	if !unlocked || len(lockedAtPing) != 0 {
		t.Fatalf("unlocked %v; pings sent while the lock was held: %v", unlocked, lockedAtPing)
	}
}
