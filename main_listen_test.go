package main

// End-to-end tests of a run that listens to Stash: the binary as cron
// runs it, with its real timers, against the fake Stash's websocket.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/stash/stashtest"
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

// Stash's log carries the API key now and then (a stream URL's apikey=,
// a message quoting the key): what the run keeps of it, prints, stores
// and reports never does.
func TestE2E_StashsLogLosesTheKey(t *testing.T) {
	t.Parallel()
	ps := newPingServer(t, http.StatusOK)
	e := newE2E(t, ps.config(false), stashtest.WithScenesPerTick(1), stashtest.WithLogBatch(0))
	const path = "/media/leaky clip.mp4"
	broken := e.fake.AddScene(stashtest.ScenePath(path))
	e.fake.AddScenes(1)
	e.fake.FailResource(broken, stashtest.ResourceSprite)

	cmd, stdout, stderr := e.command("once")
	e.holdFindJob() // the first poll
	done := start(t, cmd)
	e.waitHang(done)
	e.holdFindJob() // the second poll: the broken scene is done by then
	e.fake.ReleaseHung()
	e.waitHang(done)
	stream := e.fake.URL() + "/scene/" + broken + "/stream?apikey=" + e2eKey
	e.fake.Log(stashtest.LogError, "[generator] failed generating scene preview for "+path+" from "+stream+", trying fallback")
	e.fake.Log(stashtest.LogWarning, "request with ApiKey "+e2eKey+" read "+path)
	e.fake.ReleaseHung()
	o := e.finish(<-done, stdout, stderr) // fails the test if the key was printed

	e.want(o, 0)
	if n := strings.Count(o.stderr, "stash logged while generating"); n != 3 || strings.Count(o.stderr, "<redacted>") < 2 {
		t.Fatalf("want the newest three lines of Stash's log, the key redacted in two:\n%s", o.stderr)
	}
	if n := e.query(`SELECT count(*)::text FROM stashgen.job_log WHERE message LIKE '%<redacted>%'`); n != "2" {
		t.Fatalf("job_log rows with the key redacted = %s, want 2", n)
	}
	last := e.query(`SELECT coalesce(last_error, '') FROM stashgen.scenes WHERE stash_id = $1`, broken)
	if !strings.Contains(last, path) || !strings.Contains(last, "<redacted>") {
		t.Fatalf("scene's last error = %q, want the last line naming its file, the key redacted", last)
	}
	outputs := []string{o.stderr}
	for _, args := range [][]string{{"history"}, {"history", "--json"}, {"status"}, {"status", "--json"}} {
		r := e.run(args...) // finish fails the test if the key was printed
		if r.code > 1 {
			t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		outputs = append(outputs, r.stdout)
	}
	if h := outputs[1]; !strings.Contains(h, "stash logged 3") || !strings.Contains(h, "<redacted>") {
		t.Fatalf("history does not list Stash's lines:\n%s", h)
	}
	pings := ps.pings()
	if len(pings) == 0 || !strings.Contains(pings[len(pings)-1], "<redacted>") {
		t.Fatalf("the final ping lacks Stash's lines: %q", pings)
	}
	outputs = append(outputs, pings...)
	outputs = append(outputs, e.dumpTables()...)
	for _, out := range outputs {
		if strings.Contains(out, e2eKey) {
			t.Errorf("the API key leaked in:\n%s", out)
		}
	}
}

// dumpTables is every row of every table of the schema, as text, one
// string a table.
func (e *e2e) dumpTables() []string {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'stashgen'`)
	if err != nil {
		e.t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 8 {
		e.t.Fatalf("tables %v, %v", tables, err)
	}
	var out []string
	for _, table := range tables {
		var dump string
		q := fmt.Sprintf(`SELECT coalesce(string_agg(t::text, E'\n'), '') FROM stashgen.%s t`, pgx.Identifier{table}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&dump); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, "table "+table+":\n"+dump)
	}
	return out
}
