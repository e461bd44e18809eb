package main

// End-to-end tests of a run that listens to Stash: the binary as cron
// runs it, with its real timers, against the fake Stash's websocket.

import (
	"slices"
	"strings"
	"testing"
)

// The run subscribes to Stash's jobs and log before it sends its first
// metadataGenerate, so that nothing the job says is missed.
func TestE2E_ListeningSubscribesBeforeGenerating(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(2)

	o := e.run("once")

	e.want(o, 0)
	var gen int64
	for _, c := range e.fake.Calls() {
		if slices.Contains(c.Fields, "metadataGenerate") {
			gen = c.Seq
			break
		}
	}
	if gen == 0 {
		t.Fatal("no metadataGenerate")
	}
	seen := map[string]bool{}
	for _, s := range e.fake.Subscriptions() {
		if s.Errors == nil && s.Seq < gen {
			seen[s.Fields[0]] = true
		}
	}
	if !seen["jobsSubscribe"] || !seen["loggingSubscribe"] {
		t.Fatalf("subscribed before metadataGenerate: %v; subscriptions %+v", seen, e.fake.Subscriptions())
	}
	if strings.Contains(o.stderr, "not open yet") || strings.Contains(o.stderr, "not listening") {
		t.Fatalf("the run did not listen from the start:\n%s", o.stderr)
	}
	if got := e.query(`SELECT outcome || ' ' || listening FROM stashgen.runs`); got != "generated true" {
		t.Fatalf("audit row = %s", got)
	}
}
