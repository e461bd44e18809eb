package main

// End-to-end tests of the dry runs' JSON plans (`once --dry-run --json`,
// `check --dry-run --json`): their field names are a contract for
// scripts, so the tests read them by name from the raw JSON, not through
// the Go struct that writes them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// plan runs a dry run that must exit 0 and print exactly one JSON object
// on stdout, and returns it. The fake's request log is reset first, so
// afterwards it holds only what the dry run sent.
func (e *e2e) plan(args ...string) map[string]any {
	e.t.Helper()
	e.fake.ResetLog()
	o := e.run(args...)
	e.want(o, 0)
	if !json.Valid([]byte(o.stdout)) {
		e.t.Fatalf("%s: stdout is not valid JSON:\n%s", strings.Join(args, " "), o.stdout)
	}
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	var p map[string]any
	if err := dec.Decode(&p); err != nil {
		e.t.Fatalf("%s: decode the plan: %v\n%s", strings.Join(args, " "), err, o.stdout)
	}
	if dec.More() {
		e.t.Fatalf("%s: more than one JSON value on stdout:\n%s", strings.Join(args, " "), o.stdout)
	}
	if strings.Contains(o.stdout, e2eKey) || strings.Contains(o.stderr, e2eKey) {
		e.t.Fatalf("%s: the API key was printed", strings.Join(args, " "))
	}
	if len(e.fake.Mutations()) != 0 {
		e.t.Fatalf("%s: the dry run sent mutations: %v", strings.Join(args, " "), e.fake.Mutations())
	}
	return p
}

// canonical is v as JSON with sorted keys, for comparing a decoded field
// with the value a test expects.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantFields compares the named top-level fields of a plan; a field that
// is absent fails, as a renamed field would for a script.
func wantFields(t *testing.T, p map[string]any, want map[string]any) {
	t.Helper()
	for name, w := range want {
		got, ok := p[name]
		if !ok {
			t.Errorf("plan has no field %q", name)
			continue
		}
		if g, w := canonical(t, got), canonical(t, w); g != w {
			t.Errorf("plan.%s = %s, want %s", name, g, w)
		}
	}
}

// wantCost checks the plan's cost against the file requests the fake
// received during the dry run.
func (e *e2e) wantCost(p map[string]any) {
	e.t.Helper()
	files := e.fake.FileRequests()
	notFound := 0
	for _, f := range files {
		if f.Status == 404 {
			notFound++
		}
	}
	wantFields(e.t, p, map[string]any{"cost": map[string]any{"file_requests": len(files), "not_found": notFound}})
}

func ids(t *testing.T, ss ...string) []int64 {
	t.Helper()
	out := make([]int64, len(ss))
	for i, s := range ss {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = n
	}
	return out
}

// A library with a recorded history: one scene backing off, one
// quarantined, one generated, then three new scenes in Stash (two
// incomplete, one complete). The config turns sprites off and Stash's own
// defaults turn interactive heatmaps on. The plan names every figure, and
// the real run that follows sends exactly the input the plan showed.
func TestE2E_DryRunJSONPlan(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "\n[generate]\nbatch_size = 2\nsprites = false\n")
	old := e.fake.AddScenes(2)
	e.fake.AddScene(stashtest.SceneResources(generated...))
	e.fake.Advance(time.Minute) // the check's cursor then re-reads none of them
	e.want(e.run("check"), 0)
	e.exec(`UPDATE stashgen.scenes SET attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE stash_id = $1`, ids(t, old[0])[0])
	e.exec(`UPDATE stashgen.scenes SET attempts = 3, quarantined_at = now() WHERE stash_id = $1`, ids(t, old[1])[0])
	e.fake.Advance(time.Minute)
	s4 := e.fake.AddScene()
	e.fake.AddScene(stashtest.SceneResources(generated...))
	s6 := e.fake.AddScene()
	e.fake.SetGenerateDefaults(map[string]any{"interactiveHeatmapsSpeeds": true})
	e.fake.Advance(time.Minute)
	scenes := e.query(`SELECT count(*)::text FROM stashgen.scenes`)

	p := e.plan("once", "--dry-run", "--json")

	input := map[string]any{
		"covers": true, "sprites": false, "previews": true, "imagePreviews": false, "markers": true,
		"markerImagePreviews": false, "markerScreenshots": true, "transcodes": false, "phashes": true,
		"interactiveHeatmapsSpeeds": true, // Stash's default: the config leaves it out
		"sceneIDs":                  []string{s4, s6}, "overwrite": false,
	}
	wantFields(t, p, map[string]any{
		"command": "once", "full": false, "lock_file": e.lock, "lock_state": "free",
		"schema_version": db.Version(), "stash": e.fake.URL(),
		"busy":     []any{},
		"to_sync":  3,
		"recorded": map[string]any{"pending": 0, "backoff": 1, "quarantined": 1},
		"checked":  3, "complete": 1, "incomplete": 2, "gone": 0, "become_generated": 1, "newly_incomplete": 2,
		"batch": ids(t, s4, s6), "batch_size": 2,
		"input":   input,
		"outcome": "generated", "exit_code": 0,
	})
	if r, ok := p["reprobe"].(map[string]any); !ok || r["for_toggles"] != 0.0 || r["for_age"] != 0.0 || r["reverify_after_seconds"] != 604800.0 {
		t.Errorf("plan.reprobe = %v, want nothing re-probed and reverify_after_seconds 604800", p["reprobe"])
	}
	if d, ok := p["database"].(string); !ok || !strings.Contains(d, strings.TrimPrefix(mustParse(t, e.dbURL).Path, "/")) {
		t.Errorf("plan.database = %v, want it to name the database", p["database"])
	}
	e.wantCost(p)
	if files := e.fake.FileRequests(); len(files) == 0 {
		t.Error("the dry run probed no file: the complete new scene must be probed")
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes`); got != scenes {
		t.Fatalf("scenes = %s after the dry run, want %s: it synced", got, scenes)
	}

	// The real run sends what the plan showed, and its check costs Stash
	// what the plan said.
	e.fake.ResetLog()
	o := e.run("once")
	e.want(o, 0)
	gens := e.fake.GenerateInputs()
	if len(gens) == 0 {
		t.Fatalf("the real run sent no metadataGenerate\n%s", o.stderr)
	}
	if got, want := canonical(t, gens[0]), canonical(t, p["input"]); got != want {
		t.Errorf("the real run's first input = %s, the plan's = %s", got, want)
	}
	m := regexp.MustCompile(`msg="check done".* file_requests=(\d+) not_found=(\d+)`).FindStringSubmatch(o.stderr)
	if m == nil {
		t.Fatalf("no check done line with its cost:\n%s", o.stderr)
	}
	if cost := canonical(t, p["cost"]); cost != `{"file_requests":`+m[1]+`,"not_found":`+m[2]+`}` {
		t.Errorf("plan.cost = %s, the real check's: file_requests=%s not_found=%s", cost, m[1], m[2])
	}
}

// With a job in Stash's queue the plan is to stand aside: exit 75, the
// job listed, no batch.
func TestE2E_DryRunJSONPlanBusy(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(1)
	scan(t, e.fake)

	e.fake.ResetLog()
	o := e.run("once", "--dry-run", "--json")

	e.want(o, 75)
	var p map[string]any
	if err := json.Unmarshal([]byte(o.stdout), &p); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, o.stdout)
	}
	wantFields(t, p, map[string]any{
		"command": "once", "outcome": "skipped_busy", "exit_code": 75,
		"busy":  []any{map[string]any{"source": "stash", "id": "1", "description": "Scanning...", "status": "RUNNING"}},
		"batch": nil, "input": nil,
	})
	if len(e.fake.Mutations()) != 0 {
		t.Fatalf("the dry run sent mutations: %v", e.fake.Mutations())
	}
}

// --json prints a plan: without --dry-run it is a usage error, before
// anything is touched.
func TestE2E_JSONWithoutDryRunIsAUsageError(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"once", "check"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, "")
			e.fake.AddScenes(1)

			o := e.run(cmd, "--json")

			e.want(o, 64)
			if want := "stashgen: error: --json: goes with --dry-run\n"; o.stderr != want || o.stdout != "" {
				t.Fatalf("stdout %q, stderr %q; want only %q", o.stdout, o.stderr, want)
			}
			if len(e.fake.Calls()) != 0 || len(e.fake.FileRequests()) != 0 {
				t.Fatal("a usage error still spoke to Stash")
			}
			if got := e.query(`SELECT count(*)::text FROM information_schema.schemata WHERE schema_name = 'stashgen'`); got != "0" {
				t.Fatal("a usage error created the schema")
			}
		})
	}
}

// `check --dry-run --json`: what an incremental and a full check would
// find, by name; then the real full check records what its plan said.
func TestE2E_CheckDryRunJSON(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(2)
	gone := e.fake.AddScene(stashtest.SceneResources(generated...))
	e.fake.Advance(time.Minute)
	e.want(e.run("check"), 0)
	e.fake.DeleteScene(gone)
	e.fake.Advance(time.Minute)
	e.fake.AddScene()
	e.fake.AddScene(stashtest.SceneResources(generated...))
	e.fake.Advance(time.Minute)

	p := e.plan("check", "--dry-run", "--json")

	// Incremental: only the two new scenes are probed; the recorded ones
	// wait for their batch, and a deletion is noticed by --full only.
	wantFields(t, p, map[string]any{
		"command": "check", "full": false, "schema_version": db.Version(), "stash": e.fake.URL(),
		"to_sync": 2, "recorded": map[string]any{"pending": 2, "backoff": 0, "quarantined": 0},
		"checked": 2, "complete": 1, "incomplete": 1, "gone": 0, "become_generated": 1, "newly_incomplete": 1,
		"outcome": "checked", "exit_code": 0,
	})
	e.wantCost(p)

	p = e.plan("check", "--full", "--dry-run", "--json")

	wantFields(t, p, map[string]any{
		"command": "check", "full": true,
		"to_sync": 4, "recorded": map[string]any{"pending": 2, "backoff": 0, "quarantined": 0},
		"checked": 5, "complete": 1, "incomplete": 3, "gone": 1, "become_generated": 1, "newly_incomplete": 1,
		"outcome": "checked", "exit_code": 0,
	})
	e.wantCost(p)
	if got := e.query(`SELECT count(*)::text FROM stashgen.runs`); got != "1" {
		t.Fatalf("runs = %s: a dry run wrote an audit row", got)
	}

	e.want(e.run("check", "--full"), 0)
	got := e.query(`SELECT count(*) FILTER (WHERE generated) || ' generated, ' || count(*) FILTER (WHERE NOT generated) || ' not, '
		|| count(*) FILTER (WHERE stash_id = $1) || ' gone' FROM stashgen.scenes`, ids(t, gone)[0])
	if want := "1 generated, 3 not, 0 gone"; got != want {
		t.Fatalf("after check --full: %s, want %s (what its plan said)", got, want)
	}
}

// Neither JSON plan carries a secret: not the API key, not the database
// password, not the ping URL's path. (main_test's keepsSecrets covers the
// other commands and the other DSN forms.)
func TestE2E_DryRunJSONKeepsSecrets(t *testing.T) {
	t.Parallel()
	const dbPass = "dbPASS-plan-json-never-printed-61d2"
	e := newE2E(t, "")
	role := "stashgen_plan_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dbName := strings.TrimPrefix(mustParse(t, e.dbURL).Path, "/")
	e.exec(fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, role, dbPass))
	e.exec(fmt.Sprintf(`GRANT ALL ON DATABASE %s TO %s`, dbName, role))
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), e.dbURL)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP OWNED BY "+role+" CASCADE")
			_, _ = conn.Exec(context.Background(), "DROP ROLE "+role)
			_ = conn.Close(context.Background())
		}
	})
	u := mustParse(t, e.dbURL)
	u.User = url.UserPassword(role, dbPass)
	ps := newPingServer(t, http.StatusOK)
	cfg := fmt.Sprintf("lock_file = %q\n\n[stash]\nurl = %q\napi_key = %q\n\n[database]\nurl = %q\n\n[notify]\nping_url = %q\n",
		e.lock, e.fake.URL(), e2eKey, u.String(), ps.URL+pingSecret)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake.AddScene(stashtest.SceneResources(generated...))
	e.fake.AddScene()
	e.want(e.run("check"), 0) // a schema, so the plans read the database as that role

	for _, args := range [][]string{{"once", "--dry-run", "--json"}, {"check", "--dry-run", "--json"}, {"check", "--full", "--dry-run", "--json"}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "STASHGEN_CONFIG="+e.config)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		o := e.finish(cmd.Run(), &stdout, &stderr)
		name := strings.Join(args, " ")
		if o.code != 0 || !json.Valid([]byte(o.stdout)) {
			t.Errorf("%s: exit %d, valid JSON %v\n%s%s", name, o.code, json.Valid([]byte(o.stdout)), o.stdout, o.stderr)
		}
		for _, s := range []string{e2eKey, dbPass, pingSecret} {
			if strings.Contains(o.stdout+o.stderr, s) {
				t.Errorf("%s: secret %q printed:\n%s%s", name, s, o.stdout, o.stderr)
			}
		}
	}
}
