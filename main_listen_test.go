package main

// End-to-end tests of a run that listens to Stash: the binary as cron
// runs it, with its real timers, against the fake Stash's websocket.

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
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

// logWhileJobRuns holds the run's first poll of its job, has the fake's
// log say lines (at once: no batching needed), then lets the run go on,
// and returns what it printed.
func (e *e2e) logWhileJobRuns(lines ...stashtest.LogEntry) outcome {
	e.t.Helper()
	cmd, stdout, stderr := e.command("once")
	release := e.holdFindJob()
	done := start(e.t, cmd)
	e.waitHang(done)
	for _, l := range lines {
		e.fake.Log(l.Level, l.Message)
	}
	release()
	return e.finish(<-done, stdout, stderr)
}

var warnedRE = regexp.MustCompile(`level=WARN msg="stash logged while generating" .*stash_level=(\w+) stash_message=("(?:[^"\\]|\\.)*"|\S+)`)

// warned lists the Stash lines the run logged at WARN: "level message".
func warned(t *testing.T, stderr string) []string {
	t.Helper()
	var out []string
	for _, m := range warnedRE.FindAllStringSubmatch(stderr, -1) {
		msg := m[2]
		if strings.HasPrefix(msg, `"`) {
			var err error
			if msg, err = strconv.Unquote(msg); err != nil {
				t.Fatalf("stash_message %s: %v", m[2], err)
			}
		}
		out = append(out, m[1]+" "+msg)
	}
	return out
}

// More than three warnings and errors: the run logs the newest three at
// WARN (so the final ping has them) and one line with their count; Info
// lines are not kept.
func TestE2E_StashsNewestLinesAreLogged(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithLogBatch(0))
	e.fake.AddScenes(2)

	o := e.logWhileJobRuns(
		stashtest.LogEntry{Level: stashtest.LogInfo, Message: "[generator] not kept"},
		stashtest.LogEntry{Level: stashtest.LogWarning, Message: "stash line 1 of 5"},
		stashtest.LogEntry{Level: stashtest.LogError, Message: "stash line 2 of 5"},
		stashtest.LogEntry{Level: stashtest.LogWarning, Message: "stash line 3 of 5"},
		stashtest.LogEntry{Level: stashtest.LogError, Message: "stash line 4 of 5"},
		stashtest.LogEntry{Level: stashtest.LogError, Message: "stash line 5 of 5"},
	)

	e.want(o, 0)
	want := []string{"Warning stash line 3 of 5", "Error stash line 4 of 5", "Error stash line 5 of 5"}
	if got := warned(t, o.stderr); !slices.Equal(got, want) {
		t.Fatalf("logged %q, want the newest three %q:\n%s", got, want, o.stderr)
	}
	if n := strings.Count(o.stderr, "stash logged 5 warnings and errors while generating; `stashgen history` lists them"); n != 1 {
		t.Fatalf("%d lines with the count, want 1:\n%s", n, o.stderr)
	}
	if n := e.query(`SELECT count(*)::text FROM stashgen.job_log`); n != "5" {
		t.Fatalf("job_log rows = %s, want the 5 warnings and errors", n)
	}
}

// Past the per-job cap the count line says history lists only the newest.
func TestE2E_StashsLinesPastTheCapAreCounted(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithLogBatch(0))
	e.fake.AddScenes(2)
	lines := make([]stashtest.LogEntry, 120)
	for i := range lines {
		lines[i] = stashtest.LogEntry{Level: stashtest.LogError, Message: fmt.Sprintf("stash line %d of 120", i+1)}
	}

	o := e.logWhileJobRuns(lines...)

	e.want(o, 0)
	if n := strings.Count(o.stderr, "stash logged 120 warnings and errors while generating; `stashgen history` lists the newest 100"); n != 1 {
		t.Fatalf("%d lines with the count, want 1:\n%s", n, o.stderr)
	}
	if n := e.query(`SELECT count(*)::text FROM stashgen.job_log`); n != "100" {
		t.Fatalf("job_log rows = %s, want the newest 100", n)
	}
}

// Stash may log lines far longer than an ffmpeg error: each is cut to
// 4 KiB, in the log and in the ledger, and the run goes on (a panic in
// settling left runs and jobs running).
func TestE2E_StashsLongLinesAreCut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    int
		size int
	}{
		{"three 40 KiB lines", 3, 40 << 10},
		{"one 100 KiB line", 1, 100 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, "", stashtest.WithLogBatch(0))
			e.fake.AddScenes(2)
			var lines []stashtest.LogEntry
			for i := range tt.n {
				head := fmt.Sprintf("long line %d ", i+1)
				lines = append(lines, stashtest.LogEntry{Level: stashtest.LogError,
					Message: head + strings.Repeat("x", tt.size-len(head))})
			}

			o := e.logWhileJobRuns(lines...)

			e.want(o, 0)
			if got := e.lastRun(); got != "generated/0" {
				t.Fatalf("audit row %s", got)
			}
			if got := e.query(`SELECT string_agg(status, ',') FROM stashgen.jobs`); got != "completed" {
				t.Fatalf("ledger jobs %s", got)
			}
			got := warned(t, o.stderr)
			if len(got) != tt.n {
				t.Fatalf("logged %d of Stash's lines, want %d:\n%.3000s", len(got), tt.n, o.stderr)
			}
			for i, l := range got {
				if !strings.HasPrefix(l, fmt.Sprintf("Error long line %d ", i+1)) || !strings.HasSuffix(l, " [...]") || len(l) > 4<<10+len("Error ") {
					t.Errorf("logged line %d is %d bytes, %.40q...%q: want it cut to 4 KiB", i+1, len(l), l, l[max(0, len(l)-10):])
				}
			}
			kept := e.query(`SELECT count(*) FILTER (WHERE octet_length(message) <= 4096 AND message LIKE '% [...]')::text || '/' || count(*)::text FROM stashgen.job_log`)
			if want := fmt.Sprintf("%d/%d", tt.n, tt.n); kept != want {
				t.Fatalf("job_log rows cut to 4 KiB / all = %s, want %s", kept, want)
			}
		})
	}
}
