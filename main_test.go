package main

// End-to-end tests: they build the stashgen binary once and run it as cron
// would, against the fake Stash and a real PostgreSQL database, then read
// the database and the fake's request log. They are the project's smoke
// tests. Nothing here sleeps: a test that must act while the binary is in
// the middle of a run makes the fake hold a request (FaultHang) and waits
// for it to arrive.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/report"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
	"github.com/stashgen/stashgen/stash/stashtest"
)

const e2eKey = "e2e-API-KEY-never-printed-7c1d"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stashgen-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "stashgen")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build stashgen: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	dbtest.Main(m)
}

// e2e is one scenario: a fake Stash, a database, a config file.
type e2e struct {
	t      *testing.T
	fake   *stashtest.Server
	dbURL  string
	dir    string
	config string
	lock   string
}

func newE2E(t *testing.T, extraConfig string, opts ...stashtest.Option) *e2e {
	t.Helper()
	e := &e2e{t: t, dir: t.TempDir(), dbURL: dbtest.URL(t)}
	e.fake = stashtest.New(t, append([]stashtest.Option{stashtest.WithAPIKey(e2eKey)}, opts...)...)
	e.lock = filepath.Join(e.dir, "lock", "stashgen.lock")
	e.config = filepath.Join(e.dir, "stashgen.toml")
	cfg := fmt.Sprintf(`poll_interval = 1
heartbeat_interval = 30
lock_file = %q

[stash]
url = %q
timeout = 5
unavailable_timeout = 2

[database]
url = %q
%s`, e.lock, e.fake.URL(), e.dbURL, extraConfig)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

type outcome struct {
	code   int
	stdout string
	stderr string
}

func (e *e2e) command(args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "STASHGEN_CONFIG="+e.config, "STASHGEN_STASH_API_KEY="+e2eKey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// schemaExists says whether stashgen's schema was created: a dry run or a
// usage error must not.
func (e *e2e) schemaExists() bool {
	e.t.Helper()
	return e.query(`SELECT count(*)::text FROM information_schema.schemata WHERE schema_name = 'stashgen'`) != "0"
}

func (e *e2e) run(args ...string) outcome {
	e.t.Helper()
	cmd, stdout, stderr := e.command(args...)
	err := cmd.Run()
	return e.finish(err, stdout, stderr)
}

func (e *e2e) finish(err error, stdout, stderr *bytes.Buffer) outcome {
	e.t.Helper()
	o := outcome{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.code = 128 + int(ws.Signal())
		}
	default:
		e.t.Fatal(err)
	}
	for _, s := range []string{o.stdout, o.stderr} {
		if strings.Contains(s, e2eKey) {
			e.t.Fatalf("the API key was printed:\n%s", s)
		}
	}
	return o
}

func (e *e2e) want(o outcome, code int) {
	e.t.Helper()
	if o.code != code {
		e.t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", o.code, code, o.stdout, o.stderr)
	}
}

func (e *e2e) query(q string, args ...any) string {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&s); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return s
}

// lastRun is "outcome/exit_code" of the newest audit row.
func (e *e2e) lastRun() string {
	return e.query(`SELECT outcome || '/' || exit_code FROM stashgen.runs ORDER BY id DESC LIMIT 1`)
}

// holdFindJob makes the fake hold the next findJob until release is
// called; it returns once the binary is waiting on it, i.e. while it is
// monitoring a job it launched.
func (e *e2e) holdFindJob() (release func()) {
	e.t.Helper()
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Field: "findJob", Times: 1})
	return e.fake.ReleaseHung
}

func (e *e2e) waitHang(done <-chan error) {
	e.t.Helper()
	select {
	case <-e.fake.HangStarted():
	case err := <-done:
		e.t.Fatalf("stashgen exited (%v) before it polled its job", err)
	case <-time.After(time.Minute):
		e.t.Fatal("stashgen never polled its job")
	}
}

var generated = []stashtest.Resource{stashtest.ResourceCover, stashtest.ResourcePhash,
	stashtest.ResourcePreview, stashtest.ResourceSprite, stashtest.ResourceVTT}

func TestE2E_Generated(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScene(stashtest.SceneResources(generated...))
	e.fake.AddScenes(2)

	o := e.run("once")

	e.want(o, 0)
	if got := e.lastRun(); got != "generated/0" {
		t.Fatalf("audit row %s", got)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated`); got != "3" {
		t.Fatalf("generated scenes = %s, want 3", got)
	}
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d", n)
	}
	if got := e.query(`SELECT phase FROM stashgen.heartbeats`); got != "done" {
		t.Fatalf("heartbeat phase = %s", got)
	}
}

func TestE2E_NothingToDo(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScene(stashtest.SceneResources(generated...))

	o := e.run("once")

	e.want(o, 0)
	if got := e.lastRun(); got != "nothing_to_do/0" {
		t.Fatalf("audit row %s", got)
	}
	if !strings.Contains(o.stderr, "All scenes have generated attribute set") {
		t.Fatalf("stderr:\n%s", o.stderr)
	}
	if len(e.fake.Mutations()) != 0 {
		t.Fatal("a mutation was sent")
	}
}

func TestE2E_FailedJob(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(1)
	e.fake.FailNextGenerate("no ffmpeg")

	o := e.run("once")

	e.want(o, 1)
	if got := e.lastRun(); got != "failed/1" {
		t.Fatalf("audit row %s", got)
	}
	if !strings.Contains(o.stderr, "stashgen: error: stash job 1 failed: no ffmpeg") {
		t.Fatalf("stderr:\n%s", o.stderr)
	}
}

func TestE2E_UsageError(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")

	o := e.run("once", "--no-such-flag")

	e.want(o, 64)
	if !strings.Contains(o.stderr, "stashgen: error:") {
		t.Fatalf("stderr:\n%s", o.stderr)
	}
}

func TestE2E_BadConfig(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "\n[generate]\nbatchsize = 10\n")

	o := e.run("once")

	e.want(o, 78)
	for _, want := range []string{e.config, "generate.batchsize", "batch_size"} {
		if !strings.Contains(o.stderr, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if _, err := os.Stat(e.lock); err == nil {
		t.Fatal("a run with a bad config took the lock")
	}
}

func TestE2E_ConfigCheck(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.want(e.run("config", "check"), 0)
	bad := newE2E(t, "poll_interval = 0\n")
	o := bad.run("config", "check")
	bad.want(o, 78)
	if !strings.Contains(o.stderr, "line") || !strings.Contains(o.stderr, "poll_interval") {
		t.Fatalf("stderr:\n%s", o.stderr)
	}
}

func TestE2E_WrongAPIKey(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	cmd, stdout, stderr := e.command("once")
	cmd.Env = append(cmd.Env, "STASHGEN_STASH_API_KEY=not-the-key")

	o := e.finish(cmd.Run(), stdout, stderr)

	e.want(o, 77)
	if got := e.lastRun(); got != "error/77" {
		t.Fatalf("audit row %s", got)
	}
	if strings.Contains(o.stderr, "not-the-key") {
		t.Fatal("the wrong key was printed")
	}
	if !strings.Contains(o.stderr, "stashgen: hint:") {
		t.Fatalf("no hint:\n%s", o.stderr)
	}
}

func TestE2E_StashDown(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.Down()

	o := e.run("once")

	e.want(o, 69)
	if got := e.lastRun(); got != "error/69" {
		t.Fatalf("audit row %s", got)
	}
	if !strings.Contains(e.query(`SELECT error FROM stashgen.runs`), e.fake.URL()) {
		t.Fatal("the audit row does not name Stash's URL")
	}
}

func TestE2E_DatabaseDown(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	cmd, stdout, stderr := e.command("once")
	cmd.Env = append(cmd.Env, "STASHGEN_DATABASE_URL=postgres://stashgen:hunter2-db-pass@127.0.0.1:1/stashgen?connect_timeout=2")

	o := e.finish(cmd.Run(), stdout, stderr)

	e.want(o, 69)
	if !strings.Contains(o.stderr, "127.0.0.1:1") || !strings.Contains(o.stderr, "stashgen: hint:") {
		t.Fatalf("stderr lacks the host or the hint:\n%s", o.stderr)
	}
	if strings.Contains(o.stderr, "hunter2-db-pass") {
		t.Fatal("the database password was printed")
	}
	if len(e.fake.Calls()) != 0 {
		t.Fatal("stashgen talked to Stash without a database")
	}
	if ok, err := flock.New(e.lock).TryLock(); err != nil || !ok {
		t.Fatalf("lock not released: %v %v", ok, err)
	}
}

func TestE2E_SkippedBusy(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(1)
	scan(t, e.fake)

	o := e.run("once")

	e.want(o, 75)
	if got := e.lastRun(); got != "skipped_busy/75" {
		t.Fatalf("audit row %s", got)
	}
	if !strings.Contains(o.stderr, "Scanning...") {
		t.Fatalf("stderr does not name the busy job:\n%s", o.stderr)
	}
}

func TestE2E_SkippedLocked(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	if err := os.MkdirAll(filepath.Dir(e.lock), 0o755); err != nil {
		t.Fatal(err)
	}
	held := flock.New(e.lock)
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer held.Unlock()

	o := e.run("once")

	e.want(o, 75)
	if got := e.lastRun(); got != "skipped_locked/75" {
		t.Fatalf("audit row %s", got)
	}
	if !strings.Contains(o.stderr, e.lock) {
		t.Fatalf("stderr does not name the lock file:\n%s", o.stderr)
	}
}

func TestE2E_CancelledForScan(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.holdFindJob()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.waitHang(done)
	scan(t, e.fake)
	e.fake.ReleaseHung()

	o := e.finish(<-done, stdout, stderr)

	e.want(o, 75)
	if got := e.lastRun(); got != "cancelled_for_scan/75" {
		t.Fatalf("audit row %s", got)
	}
	if !strings.Contains(o.stderr, "Detected 1 scan jobs, cancelling generation job 1") {
		t.Fatalf("stderr:\n%s", o.stderr)
	}
	if len(e.fake.StopCalls()) != 1 {
		t.Fatalf("stopJob calls = %v", e.fake.StopCalls())
	}
}

func TestE2E_SIGTERMWhileMonitoring(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.holdFindJob()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.waitHang(done)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	o := e.finish(<-done, stdout, stderr)

	e.want(o, 143)
	if got := e.lastRun(); got != "interrupted/143" {
		t.Fatalf("audit row %s", got)
	}
	if len(e.fake.StopCalls()) != 1 {
		t.Fatalf("stopJob calls = %v, want 1", e.fake.StopCalls())
	}
	if got := e.query(`SELECT status FROM stashgen.jobs`); got != "cancelled" {
		t.Fatalf("ledger = %s", got)
	}
	if ok, err := flock.New(e.lock).TryLock(); err != nil || !ok {
		t.Fatalf("lock not released: %v %v", ok, err)
	}
}

func TestE2E_TwoConcurrentRuns(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(2)
	e.holdFindJob()
	first, stdout1, stderr1 := e.command("once")
	done := start(t, first)
	e.waitHang(done) // the first run is monitoring, both locks held

	o2 := e.run("once")
	plan := e.run("once", "--dry-run") // a real run now would stand aside: so says the plan
	e.fake.ReleaseHung()
	o1 := e.finish(<-done, stdout1, stderr1)

	e.want(o1, 0)
	e.want(o2, 75)
	e.want(plan, 75)
	if want := "stand aside (skipped_locked, exit 75): another stashgen run holds the lock file " + e.lock; !strings.Contains(plan.stdout, want) {
		t.Fatalf("dry run output lacks %q:\n%s", want, plan.stdout)
	}
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d, want 1", n)
	}
	if got := e.query(`SELECT string_agg(outcome, ',' ORDER BY id) FROM stashgen.runs`); got != "generated,skipped_locked" {
		t.Fatalf("runs = %s", got)
	}
}

func TestE2E_DryRunWritesNothing(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScene(stashtest.SceneResources(generated...))
	e.fake.AddScenes(2)

	o := e.run("once", "--dry-run")

	e.want(o, 0)
	for _, want := range []string{"schema absent", "busy:       no", `"sceneIDs": [`, `"2"`, `"3"`, "metadataGenerate"} {
		if !strings.Contains(o.stdout, want) {
			t.Fatalf("dry-run output lacks %q:\n%s", want, o.stdout)
		}
	}
	if len(e.fake.Mutations()) != 0 {
		t.Fatalf("mutations: %v", e.fake.Mutations())
	}
	if e.schemaExists() {
		t.Fatal("the dry run created the schema")
	}
	if _, err := os.Stat(e.lock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dry run created the lock file: %v", err)
	}
}

func TestE2E_DryRunBusyAfterARealRun(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(1)
	e.want(e.run("once"), 0)
	runs := e.query(`SELECT count(*)::text FROM stashgen.runs`)
	scan(t, e.fake)

	o := e.run("once", "--dry-run")

	e.want(o, 75)
	if !strings.Contains(o.stdout, "Scanning...") {
		t.Fatalf("dry-run output:\n%s", o.stdout)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.runs`); got != runs {
		t.Fatal("the dry run wrote an audit row")
	}
}

func TestE2E_ConfigShowRedacts(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "\n[notify]\nping_url = \"https://hc-ping.com/0f6b1e4c-secret-uuid\"\n")

	o := e.run("--database-url", "postgres://stashgen:hunter2-db-pass@127.0.0.1:5432/stashgen", "config", "show")

	e.want(o, 0)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^stash\.api_key +=  *<redacted> +# env$`),
		regexp.MustCompile(`(?m)^stash\.url +=  *http://127\.0\.0\.1:\d+ +# file$`),
		regexp.MustCompile(`(?m)^database\.url += postgres://stashgen:<redacted>@127\.0\.0\.1:5432/stashgen +# flag$`),
		regexp.MustCompile(`(?m)^generate\.batch_size += 500 +# default$`),
		regexp.MustCompile(`(?m)^notify\.ping_url += https://hc-ping\.com/<redacted> +# file$`),
		regexp.MustCompile(`(?m)^# config file: ` + regexp.QuoteMeta(e.config) + `$`),
	} {
		if !want.MatchString(o.stdout) {
			t.Fatalf("config show lacks %s:\n%s", want, o.stdout)
		}
	}
	if strings.Contains(o.stdout, "hunter2-db-pass") || strings.Contains(o.stdout, "0f6b1e4c-secret-uuid") {
		t.Fatalf("config show printed a secret:\n%s", o.stdout)
	}
}

func TestE2E_CheckAndReset(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScene(stashtest.SceneResources(generated...))
	id := e.fake.AddScene()

	e.want(e.run("check"), 0)
	if got := e.lastRun(); got != "checked/0" {
		t.Fatalf("audit row %s", got)
	}
	if got := e.query(`SELECT generated::text FROM stashgen.scenes WHERE stash_id = $1`, id); got != "false" {
		t.Fatalf("scene %s generated = %s", id, got)
	}
	e.want(e.run("reset", id), 0)
	e.want(e.run("reset", "abc"), 64)
}

// start runs cmd in the background and reports its end on the channel.
func start(t *testing.T, cmd *exec.Cmd) <-chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return done
}

// scan queues a scan in the fake, as Stash's UI would.
func scan(t *testing.T, fake *stashtest.Server) {
	t.Helper()
	body := strings.NewReader(`{"query":"mutation { metadataScan(input: {}) }"}`)
	req, err := http.NewRequest(http.MethodPost, fake.URL()+"/graphql", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ApiKey", e2eKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("metadataScan: HTTP %d", res.StatusCode)
	}
}

// exec runs SQL on the scenario's database as the test's admin.
func (e *e2e) exec(sql string, args ...any) {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// seedRun inserts a finished run that started ago and took a minute, on a
// host other than this one (so status cannot check its process).
func (e *e2e) seedRun(outcome string, code int, ago time.Duration) {
	e.t.Helper()
	e.exec(`INSERT INTO stashgen.runs (command, started_at, finished_at, host, pid, version, outcome, exit_code)
		VALUES ('once', now() - $1::interval, now() - $1::interval + interval '1 minute', 'elsewhere', 1, 'test', $2, $3)`,
		fmt.Sprintf("%d seconds", int(ago.Seconds())), outcome, code)
}

// seedBeat writes the heartbeat as the newest run left it, ago.
func (e *e2e) seedBeat(ago time.Duration) {
	e.t.Helper()
	e.exec(`INSERT INTO stashgen.heartbeats (name, host, pid, run_id, phase, beat_at, started_at)
		VALUES ('stashgen', 'elsewhere', 1, (SELECT max(id) FROM stashgen.runs), 'done', now() - $1::interval, now() - $1::interval)
		ON CONFLICT (name) DO UPDATE SET beat_at = EXCLUDED.beat_at`, fmt.Sprintf("%d seconds", int(ago.Seconds())))
}

// statusJSON runs status --json and decodes it strictly.
func (e *e2e) statusJSON(code int) report.Status {
	e.t.Helper()
	o := e.run("status", "--json")
	e.want(o, code)
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	dec.DisallowUnknownFields()
	var st report.Status
	if err := dec.Decode(&st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, o.stdout)
	}
	if st.Now.IsZero() || st.JobIntervalSeconds != 3600 || st.Health.Reasons == nil || st.Jobs == nil || st.Stash.Queue == nil {
		e.t.Fatalf("status --json lacks a required field:\n%s", o.stdout)
	}
	return st
}

// Each health state gives its exit code, the one a Nagios-style check
// reads: 0 healthy, 1 warning, 2 critical, 3 unknown.
func TestE2E_StatusHealthStates(t *testing.T) {
	t.Parallel()
	const h = time.Hour
	tests := []struct {
		name   string
		seed   func(e *e2e)
		code   int
		reason string
	}{
		{"healthy", func(e *e2e) {
			e.seedRun("generated", 0, 65*time.Minute)
			e.seedBeat(64 * time.Minute)
		}, 0, ""},
		{"stood aside counts as fine", func(e *e2e) {
			e.seedRun("generated", 0, 5*h)
			e.seedRun("skipped_locked", 75, 30*time.Minute)
			e.seedBeat(90 * time.Minute)
		}, 0, ""},
		{"last run failed", func(e *e2e) {
			e.seedRun("generated", 0, 3*h)
			e.seedRun("failed", 1, 10*time.Minute)
			e.seedBeat(9 * time.Minute)
		}, 1, "the last run (#2) failed: failed (exit 1)"},
		{"stale heartbeat", func(e *e2e) {
			e.seedRun("generated", 0, 3*h)
			e.seedBeat(3*h - time.Minute)
			e.seedRun("skipped_locked", 75, 10*time.Minute)
		}, 1, "the last heartbeat is 2h59m old"},
		{"no success for 6 intervals", func(e *e2e) {
			e.seedRun("generated", 0, 7*h)
			e.seedBeat(7*h - time.Minute)
		}, 2, "no run went well in the last 6h"},
		{"three failures in a row", func(e *e2e) {
			e.seedRun("generated", 0, 2*h)
			e.seedRun("error", 69, 40*time.Minute)
			e.seedRun("failed", 1, 30*time.Minute)
			e.seedRun("abandoned", 0, 20*time.Minute)
			e.seedBeat(20 * time.Minute)
		}, 2, "the last 3 runs failed"},
		{"first run failed", func(e *e2e) {
			e.seedRun("error", 69, 10*time.Minute)
			e.seedBeat(9 * time.Minute)
		}, 1, "the last run (#1) failed"},
		{"never ran", nil, 2, "no run recorded yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, "")
			if tt.seed != nil {
				e.want(e.run("migrate"), 0)
				tt.seed(e)
			}

			o := e.run("status")

			e.want(o, tt.code)
			if !strings.Contains(o.stdout, tt.reason) || strings.Contains(o.stderr, "stashgen: error") {
				t.Fatalf("status lacks %q or printed an error:\n%s%s", tt.reason, o.stdout, o.stderr)
			}
			if n := strings.Count(o.stdout, "\n"); n > 15 {
				t.Fatalf("%d lines:\n%s", n, o.stdout)
			}
			st := e.statusJSON(tt.code)
			if st.Health.ExitCode != tt.code || int(st.Health.Level) != tt.code {
				t.Fatalf("status --json health = %+v", st.Health)
			}
		})
	}
	t.Run("database unreachable", func(t *testing.T) {
		t.Parallel()
		e := newE2E(t, "")
		cmd, stdout, stderr := e.command("status")
		cmd.Env = append(cmd.Env, "STASHGEN_DATABASE_URL=postgres://stashgen:hunter2-db-pass@127.0.0.1:1/stashgen?connect_timeout=2")
		o := e.finish(cmd.Run(), stdout, stderr)
		e.want(o, 3)
		if !strings.Contains(o.stdout, "UNKNOWN") || !strings.Contains(o.stdout, "127.0.0.1:1") || strings.Contains(o.stdout+o.stderr, "hunter2-db-pass") {
			t.Fatalf("stdout:\n%s\nstderr:\n%s", o.stdout, o.stderr)
		}
	})
}

// Status while a run follows its Stash job: the heartbeat's process is
// alive, and the job shows with Stash's progress.
func TestE2E_StatusDuringRun(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.holdFindJob()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.waitHang(done)

	o := e.run("status")
	st := e.statusJSON(0)
	stashDown := e.fake
	stashDown.Down()
	down := e.run("status")
	if err := stashDown.Up(); err != nil {
		t.Fatal(err)
	}
	e.fake.ReleaseHung()
	e.want(e.finish(<-done, stdout, stderr), 0)

	e.want(o, 0)
	for _, want := range []string{"HEALTHY", "running since", "in phase start", "(running)", "ledger #1 stash_generate running", "stash job 1: RUNNING"} {
		if !strings.Contains(o.stdout, want) {
			t.Fatalf("status lacks %q:\n%s", want, o.stdout)
		}
	}
	if st.Heartbeat == nil || st.Heartbeat.Alive == nil || !*st.Heartbeat.Alive || len(st.Jobs) != 1 || st.Jobs[0].Stash == nil ||
		st.Jobs[0].Stash.Status != "RUNNING" || !st.Stash.Reachable {
		t.Fatalf("status --json: %+v", st)
	}
	e.want(down, 0) // an unreachable Stash is reported, not a failure
	if !strings.Contains(down.stdout, "unreachable") {
		t.Fatalf("status with Stash down:\n%s", down.stdout)
	}
}

func TestE2E_History(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScenes(2)
	e.want(e.run("once"), 0)
	e.fake.AddScenes(1)
	e.fake.FailNextGenerate("no ffmpeg")
	e.want(e.run("once"), 1)

	o := e.run("history")

	e.want(o, 0)
	lines := strings.Split(o.stdout, "\n")
	if !strings.HasPrefix(lines[0], "RUN") || !strings.HasPrefix(lines[1], "#2 ") || !strings.Contains(lines[1], "failed") {
		t.Fatalf("history is not newest first:\n%s", o.stdout)
	}
	for _, want := range []string{"LAUNCHED", "FAILED", "FINISHED", "error: stash job 2 failed: no ffmpeg", "generated", "(stash 1)"} {
		if !strings.Contains(o.stdout, want) {
			t.Fatalf("history lacks %q:\n%s", want, o.stdout)
		}
	}

	j := e.run("history", "--json", "--limit", "1")
	e.want(j, 0)
	dec := json.NewDecoder(strings.NewReader(j.stdout))
	dec.DisallowUnknownFields()
	var h report.History
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("history --json: %v\n%s", err, j.stdout)
	}
	if len(h.Runs) != 1 || h.Runs[0].ID != 2 || h.Runs[0].Outcome != "failed" || h.Runs[0].ExitCode == nil || *h.Runs[0].ExitCode != 1 ||
		h.Runs[0].StashJobID != "2" || len(h.Runs[0].Actions) != 2 || h.Runs[0].Actions[1].Action != "FAILED" || h.Runs[0].DurationSeconds <= 0 {
		t.Fatalf("history --json:\n%s", j.stdout)
	}
	e.want(e.run("history", "--limit", "0"), 64)
}

// pingServer records the pings it gets, answering status.
type pingServer struct {
	*httptest.Server
	mu     sync.Mutex
	got    []string // "METHOD path?query body"
	status int
}

const pingSecret = "/ping-secret-3e1f0a"

func newPingServer(t *testing.T, status int) *pingServer {
	p := &pingServer{status: status}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got = append(p.got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		p.mu.Unlock()
		w.WriteHeader(p.status)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *pingServer) pings() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func (p *pingServer) config(onSkip bool) string {
	return fmt.Sprintf("\n[notify]\nping_url = %q\nping_on_skip = %v\n", p.URL+pingSecret, onSkip)
}

var ridRE = regexp.MustCompile(`\?rid=([0-9a-f-]{36}) `)

func TestE2E_Pings(t *testing.T) {
	t.Parallel()
	t.Run("generated", func(t *testing.T) {
		t.Parallel()
		ps := newPingServer(t, http.StatusOK)
		e := newE2E(t, ps.config(false))
		e.fake.AddScenes(1)

		o := e.run("once")

		e.want(o, 0)
		got := ps.pings()
		if len(got) != 2 || !strings.HasPrefix(got[0], "GET "+pingSecret+"/start?rid=") || !strings.HasPrefix(got[1], "POST "+pingSecret+"/0?rid=") {
			t.Fatalf("pings = %q", got)
		}
		start, end := ridRE.FindStringSubmatch(got[0]), ridRE.FindStringSubmatch(got[1])
		if start == nil || end == nil || start[1] != end[1] {
			t.Fatalf("the run ids of /start and the end differ: %q", got)
		}
		if !strings.Contains(got[1], `msg="run finished" run_id=1 outcome=generated`) {
			t.Fatalf("the end ping does not carry the log:\n%s", got[1])
		}
		if strings.Contains(o.stderr, pingSecret) {
			t.Fatalf("the ping URL was logged:\n%s", o.stderr)
		}
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		ps := newPingServer(t, http.StatusOK)
		e := newE2E(t, ps.config(false))
		e.fake.AddScenes(1)
		e.fake.FailNextGenerate("no ffmpeg")
		e.want(e.run("once"), 1)
		if got := ps.pings(); len(got) != 2 || !strings.HasPrefix(got[1], "POST "+pingSecret+"/1?rid=") || !strings.Contains(got[1], "no ffmpeg") {
			t.Fatalf("pings = %q", got)
		}
	})
	t.Run("stood aside, ping_on_skip off", func(t *testing.T) {
		t.Parallel()
		ps := newPingServer(t, http.StatusOK)
		e := newE2E(t, ps.config(false))
		e.fake.AddScenes(1)
		scan(t, e.fake)
		e.want(e.run("once"), 75)
		if got := ps.pings(); len(got) != 0 {
			t.Fatalf("a run that stood aside pinged: %q", got)
		}
	})
	t.Run("stood aside, ping_on_skip on", func(t *testing.T) {
		t.Parallel()
		ps := newPingServer(t, http.StatusOK)
		e := newE2E(t, ps.config(true))
		e.fake.AddScenes(1)
		scan(t, e.fake)
		e.want(e.run("once"), 75)
		if got := ps.pings(); len(got) != 1 || !strings.HasPrefix(got[0], "POST "+pingSecret+"?rid=") {
			t.Fatalf("pings = %q, want one success ping", got)
		}
	})
	t.Run("database down", func(t *testing.T) {
		t.Parallel()
		ps := newPingServer(t, http.StatusOK)
		e := newE2E(t, ps.config(false))
		cmd, stdout, stderr := e.command("once")
		cmd.Env = append(cmd.Env, "STASHGEN_DATABASE_URL=postgres://stashgen@127.0.0.1:1/stashgen?connect_timeout=2")
		e.want(e.finish(cmd.Run(), stdout, stderr), 69)
		if got := ps.pings(); len(got) != 1 || !strings.HasPrefix(got[0], "POST "+pingSecret+"/69?rid=") || !strings.Contains(got[0], "127.0.0.1:1") {
			t.Fatalf("pings = %q", got)
		}
	})
	t.Run("a failing ping server fails nothing", func(t *testing.T) {
		t.Parallel()
		ps := newPingServer(t, http.StatusNotFound)
		e := newE2E(t, ps.config(false))
		e.fake.AddScenes(1)
		o := e.run("once")
		e.want(o, 0)
		if got := e.lastRun(); got != "generated/0" {
			t.Fatalf("audit row %s", got)
		}
		if !strings.Contains(o.stderr, "ping failed; the run is not affected") || strings.Contains(o.stderr, pingSecret) {
			t.Fatalf("stderr:\n%s", o.stderr)
		}
	})
}

func TestE2E_MetricsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "stashgen.prom")
	e := newE2E(t, "")
	// metrics_file is a top-level key: it must come before the tables.
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.config, append([]byte(fmt.Sprintf("metrics_file = %q\n", path)), cfg...), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake.AddScenes(2)

	e.want(e.run("once"), 0)

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE stashgen_last_run_exit_code gauge\nstashgen_last_run_exit_code 0\n",
		"stashgen_scenes{state=\"generated\"} 2\n",
		"stashgen_runs_total{outcome=\"generated\"} 1\n",
		"# TYPE stashgen_runs_total counter\n",
		"stashgen_last_success_timestamp_seconds 1",
	} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("metrics lack %q:\n%s", want, b)
		}
	}

	cmd, stdout, stderr := e.command("once")
	cmd.Env = append(cmd.Env, "STASHGEN_DATABASE_URL=postgres://stashgen@127.0.0.1:1/stashgen?connect_timeout=2")
	e.want(e.finish(cmd.Run(), stdout, stderr), 69)
	b, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "stashgen_last_run_exit_code 69\n") || strings.Contains(string(b), "stashgen_runs_total") {
		t.Fatalf("metrics after a run without a database:\n%s", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// Under systemd, lines carry a priority prefix journald understands, and
// no timestamp.
func TestE2E_JournaldLevels(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.Down()
	cmd, stdout, stderr := e.command("once")
	cmd.Env = append(cmd.Env, "JOURNAL_STREAM=8:12345")

	o := e.finish(cmd.Run(), stdout, stderr)

	e.want(o, 69)
	var levels []string
	for _, l := range strings.Split(strings.TrimSpace(o.stderr), "\n") {
		if strings.HasPrefix(l, "stashgen: ") {
			continue // the final error line, not a log line
		}
		if strings.Contains(l, "time=") || !regexp.MustCompile(`^<[3-7]>level=`).MatchString(l) {
			t.Fatalf("line without a priority, or with a timestamp: %q", l)
		}
		levels = append(levels, l[:3])
	}
	if !slices.Contains(levels, "<3>") {
		t.Fatalf("the error has no <3>:\n%s", o.stderr)
	}
}

// The shipped units are what `stashgen systemd` prints for the default
// configuration (and the file at the default place).
func TestE2E_SystemdMatchesContrib(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	empty := filepath.Join(e.dir, "empty.toml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, unit := range []string{"service", "timer"} {
		o := e.run("--config", empty, "systemd", unit)
		e.want(o, 0)
		want, err := os.ReadFile(filepath.Join("contrib", "systemd", "stashgen."+unit))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(o.stdout, empty, "/etc/stashgen/stashgen.toml"); got != string(want) {
			t.Fatalf("stashgen systemd %s differs from contrib/systemd/stashgen.%s:\n%s", unit, unit, got)
		}
	}
	o := e.run("systemd")
	e.want(o, 0)
	if !strings.Contains(o.stdout, "### /etc/systemd/system/stashgen.service\n") || !strings.Contains(o.stdout, "### /etc/systemd/system/stashgen.timer\n") ||
		!strings.Contains(o.stdout, "Environment=STASHGEN_CONFIG="+e.config+"\n") || !strings.Contains(o.stdout, "ReadWritePaths="+filepath.Dir(e.lock)+"\n") {
		t.Fatalf("stashgen systemd:\n%s", o.stdout)
	}
}

// Every command, run with a known API key, a database password and a
// secret ping URL in a config file others can read: none of the three
// appears in any output, ping or database row, nothing else is redacted
// with them, and the file's permissions are warned about once per
// command, with the run's id. The database password is given in each form
// a connection string can carry it.
func TestE2E_EveryCommandKeepsSecrets(t *testing.T) {
	t.Parallel()
	forms := []struct {
		name, pass string
		dsn        func(u *url.URL, role, pass string) string
	}{
		{"userinfo", "dbPASS-never-printed-93f1", func(u *url.URL, role, pass string) string {
			u.User = url.UserPassword(role, pass)
			return u.String()
		}},
		{"query parameter", "dbPASS-query-param-5e2a", func(u *url.URL, role, pass string) string {
			u.User = url.User(role)
			q := u.Query()
			q.Set("password", pass)
			u.RawQuery = q.Encode()
			return u.String()
		}},
		// A quoted keyword DSN with a space: the password starts with the
		// letter "a", which a naive parser takes for the whole password.
		{"keyword DSN", "a bPASS-keyword-dsn-7c40", func(u *url.URL, role, pass string) string {
			return fmt.Sprintf("host=%s port=%s dbname=%s user=%s password='%s'",
				u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/"), role, pass)
		}},
	}
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			keepsSecrets(t, form.pass, form.dsn)
		})
	}
}

func keepsSecrets(t *testing.T, dbPass string, dsn func(u *url.URL, role, pass string) string) {
	e := newE2E(t, "")
	role := "stashgen_secret_" + strings.ReplaceAll(strconv.FormatInt(time.Now().UnixNano(), 36), "-", "")
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
	ps := newPingServer(t, http.StatusOK)
	cfg := fmt.Sprintf(`lock_file = %q

[stash]
url = %q
api_key = %q
timeout = 5

[database]
url = %q

[notify]
ping_url = %q
`, e.lock, e.fake.URL(), e2eKey, dsn(mustParse(t, e.dbURL), role, dbPass), ps.URL+pingSecret)
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.config, 0o644); err != nil { // readable by others: the warning's case
		t.Fatal(err)
	}
	e.fake.AddScene(stashtest.SceneResources(generated...))
	id := e.fake.AddScene()

	secrets := []string{e2eKey, dbPass, pingSecret}
	var outputs []string
	for _, args := range [][]string{
		{"once", "--dry-run"}, {"once", "--dry-run", "--json"}, {"check", "--dry-run"}, {"once"}, {"check"},
		{"status"}, {"status", "--json"}, {"history"}, {"history", "--json"}, {"config", "check"}, {"config", "show"},
		{"migrate"}, {"version"}, {"reset", id}, {"systemd"},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "STASHGEN_CONFIG="+e.config)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		o := e.finish(cmd.Run(), &stdout, &stderr)
		name := strings.Join(args, " ")
		if o.code != 0 {
			t.Errorf("%s: exit %d\n%s%s", name, o.code, o.stdout, o.stderr)
		}
		all := o.stdout + o.stderr
		outputs = append(outputs, name+":\n"+all)
		if strings.ContainsAny(all, "\r\x1b") {
			t.Errorf("%s: terminal control characters in output that is not a terminal:\n%q", name, all)
		}
		warnings := strings.Count(all, "is readable by other users")
		switch name {
		case "once", "check":
			if warnings != 1 || !regexp.MustCompile(`level=WARN msg="config [^\n]*is readable by other users[^\n]* run_id=\d+`).MatchString(all) {
				t.Errorf("%s: want one permission warning with the run id:\n%s", name, all)
			}
		case "once --dry-run", "once --dry-run --json", "check --dry-run", "status", "status --json", "history", "history --json", "config check":
			if warnings != 1 {
				t.Errorf("%s: %d permission warnings, want 1:\n%s", name, warnings, all)
			}
		}
		if name == "config show" && (!strings.Contains(o.stdout, "stash.url") || !strings.Contains(o.stdout, "database.url")) {
			t.Errorf("config show mangled by redaction:\n%s", o.stdout)
		}
	}
	for _, p := range ps.pings() {
		outputs = append(outputs, "ping body:\n"+p[strings.Index(p, " ")+1:][strings.Index(p[strings.Index(p, " ")+1:], " ")+1:])
	}
	if len(ps.pings()) != 4 {
		t.Errorf("pings = %d, want /start and the end for once and check", len(ps.pings()))
	}

	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT table_name FROM information_schema.tables WHERE table_schema = 'stashgen'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 8 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	for _, table := range tables {
		var dump string
		q := fmt.Sprintf(`SELECT coalesce(string_agg(t::text, E'\n'), '') FROM stashgen.%s t`, pgx.Identifier{table}.Sanitize())
		if err := conn.QueryRow(context.Background(), q).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, "table "+table+":\n"+dump)
	}
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q leaked in %s", s, out)
			}
		}
		// Redacting the right secret leaves ordinary words alone.
		if strings.Contains(out, "st"+config.Redacted+"sh") || strings.Contains(out, "d"+config.Redacted+"t") {
			t.Errorf("redaction mangled ordinary words in %s", out)
		}
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.runs`); got != "2" {
		t.Fatalf("runs = %s: the commands did not all run against the database", got)
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// openPTY opens a pseudo-terminal: the test reads the master, the binary
// writes to the slave as if it were a terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// On a terminal, once shows one progress line for the Stash job, redrawn
// in place below the log.
func TestE2E_ProgressLineOnATerminal(t *testing.T) {
	t.Parallel()
	master, slave := openPTY(t)
	e := newE2E(t, "", stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	cmd, stdout, _ := e.command("once")
	cmd.Stderr = slave
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		out <- string(b)
	}()

	err := cmd.Run()
	slave.Close()
	o := e.finish(err, stdout, &bytes.Buffer{})
	e.want(o, 0)
	var tty string
	select {
	case tty = <-out:
	case <-time.After(time.Minute):
		t.Fatal("the terminal never closed")
	}
	if !regexp.MustCompile(`\r\x1b\[Kstash job 1: RUNNING \[[#.]{20}\] +\d+% · elapsed 0:\d\d · ETA`).MatchString(tty) {
		t.Fatalf("no progress line on the terminal:\n%q", tty)
	}
	if !strings.Contains(tty, `msg="run finished"`) || strings.Contains(tty, e2eKey) {
		t.Fatalf("terminal:\n%q", tty)
	}
}

func TestE2E_SIGKILLThenNextRunAdopts(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.holdFindJob()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.waitHang(done)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	e.finish(<-done, stdout, stderr)
	e.fake.ReleaseHung()
	if got := e.query(`SELECT status FROM stashgen.jobs`); got != "running" {
		t.Fatalf("ledger after SIGKILL = %s", got)
	}

	o := e.run("once")

	e.want(o, 0)
	if got := e.query(`SELECT string_agg(outcome, ',' ORDER BY id) FROM stashgen.runs`); got != "abandoned,adopted" {
		t.Fatalf("runs = %s", got)
	}
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d: a second generate was started", n)
	}
	if !strings.Contains(o.stderr, "ADOPTED") {
		t.Fatalf("stderr:\n%s", o.stderr)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated`); got != "3" {
		t.Fatalf("generated = %s", got)
	}
}

// twenty starts 20 runs at once against one database and one fake; config
// gives run i its config file (nil: all share one). The winner is held in
// its first findJob, locks taken, until the other 19 have exited.
func twenty(t *testing.T, e *e2e, config func(i int) string) (codes map[int]int) {
	t.Helper()
	e.fake.AddScenes(2)
	e.holdFindJob()
	type exit struct {
		i   int
		err error
	}
	exits := make(chan exit, 20)
	var bufs [20][2]*bytes.Buffer
	for i := range 20 {
		cmd, stdout, stderr := e.command("once")
		if config != nil {
			cmd.Env = append(cmd.Env, "STASHGEN_CONFIG="+config(i))
		}
		bufs[i] = [2]*bytes.Buffer{stdout, stderr}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		go func() { exits <- exit{i, cmd.Wait()} }()
	}
	codes = map[int]int{}
	collect := func(x exit) {
		codes[x.i] = e.finish(x.err, bufs[x.i][0], bufs[x.i][1]).code
	}
	for range 19 {
		collect(<-exits)
	}
	select {
	case <-e.fake.HangStarted(): // the winner is following its job
		e.fake.ReleaseHung()
		collect(<-exits)
	case x := <-exits:
		collect(x)
		t.Errorf("run %d ended without following a job", x.i)
	}
	return codes
}

func wantOneWinner(t *testing.T, e *e2e, codes map[int]int) {
	t.Helper()
	tally := map[int]int{}
	for _, c := range codes {
		tally[c]++
	}
	if tally[0] != 1 || tally[75] != 19 {
		t.Fatalf("exit codes %v, want one 0 and nineteen 75", tally)
	}
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d, want exactly 1", n)
	}
	if got := e.query(`SELECT string_agg(outcome || ':' || n, ',' ORDER BY outcome) FROM
		(SELECT outcome, count(*) AS n FROM stashgen.runs GROUP BY outcome) c`); got != "generated:1,skipped_locked:19" {
		t.Fatalf("runs = %s", got)
	}
}

func TestE2E_TwentyRunsOneLockFile(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	wantOneWinner(t, e, twenty(t, e, nil))
}

func TestE2E_TwentyHostsOneDatabase(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	base, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	configs := make([]string, 20)
	for i := range configs {
		// Each "host" has its own lock file: only the advisory lock
		// keeps them apart.
		lock := filepath.Join(e.dir, fmt.Sprintf("host%d", i), "stashgen.lock")
		configs[i] = filepath.Join(e.dir, fmt.Sprintf("host%d.toml", i))
		b := bytes.Replace(base, []byte(strconv.Quote(e.lock)), []byte(strconv.Quote(lock)), 1)
		if err := os.WriteFile(configs[i], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wantOneWinner(t, e, twenty(t, e, func(i int) string { return configs[i] }))
}

func TestE2E_SecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1))
	e.fake.AddScenes(3)
	e.holdFindJob()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.waitHang(done)
	// After the first SIGTERM stashgen sends stopJob; hold that too.
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Field: "stopJob", Times: 1})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.waitHang(done)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	o := e.finish(<-done, stdout, stderr)

	e.want(o, 143)
	if !strings.Contains(o.stderr, "second SIGTERM: exiting now") {
		t.Fatalf("stderr:\n%s", o.stderr)
	}
	e.fake.ReleaseHung()
}

func TestE2E_SIGTERMInEachPhase(t *testing.T) {
	t.Parallel()
	for _, phase := range []struct {
		name  string
		fault stashtest.Fault
	}{
		{"busy-check", stashtest.Fault{Kind: stashtest.FaultHang, Field: "jobQueue", Times: 1}},
		{"sync", stashtest.Fault{Kind: stashtest.FaultHang, Field: "findScenes", Times: 1}},
		{"check", stashtest.Fault{Kind: stashtest.FaultHang, Path: "/scene/", Times: 1}},
		{"generate", stashtest.Fault{Kind: stashtest.FaultHang, Field: "metadataGenerate", Times: 1, AfterExecute: true}},
	} {
		t.Run(phase.name, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, "")
			e.fake.AddScenes(2)
			e.fake.InjectFault(phase.fault)
			cmd, stdout, stderr := e.command("once")
			done := start(t, cmd)
			e.waitHang(done)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}

			o := e.finish(<-done, stdout, stderr)

			e.want(o, 130)
			if got := e.lastRun(); got != "interrupted/130" {
				t.Fatalf("audit row %s", got)
			}
			if ok, err := flock.New(e.lock).TryLock(); err != nil || !ok {
				t.Fatalf("lock not released: %v %v", ok, err)
			}
			if got := e.query(`SELECT count(*)::text FROM stashgen.jobs WHERE status IN ('running', 'cancelling')`); got != "0" {
				t.Fatal("a ledger job was left running")
			}
			e.fake.ReleaseHung()
		})
	}
}

func TestE2E_CheckDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	e.fake.AddScene(stashtest.SceneResources(generated...))
	e.fake.AddScenes(2)

	o := e.run("check", "--dry-run")

	e.want(o, 0)
	for _, want := range []string{"would check:  3 scenes", "complete (generated=true):      1", "incomplete (generated=false):   2"} {
		if !strings.Contains(o.stdout, want) {
			t.Fatalf("output lacks %q:\n%s", want, o.stdout)
		}
	}
	if len(e.fake.Mutations()) != 0 {
		t.Fatal("a mutation was sent")
	}
	if e.schemaExists() {
		t.Fatal("the dry run created the schema")
	}
}

func TestE2E_CheckTakesTheLock(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	if err := os.MkdirAll(filepath.Dir(e.lock), 0o755); err != nil {
		t.Fatal(err)
	}
	held := flock.New(e.lock)
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer held.Unlock()

	o := e.run("check", "--full")

	e.want(o, 75)
	if got := e.lastRun(); got != "skipped_locked/75" {
		t.Fatalf("audit row %s", got)
	}
}

// A metadataGenerate that takes effect but answers after stash.timeout:
// the run finds its job in the queue and follows it. Killed while
// following, the next run must still know the job as its own (Stash's
// addTime was recorded, not the Date of a later answer), adopt it and
// follow it to the end.
func TestE2E_LateLaunchAnswerThenSIGKILLIsAdopted(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1))
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	// One second per request, so the held answer times out quickly.
	cfg = bytes.Replace(cfg, []byte("timeout = 5\n"), []byte("timeout = 1\n"), 1)
	if err := os.WriteFile(e.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake.AddScenes(3)
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Field: "metadataGenerate", AfterExecute: true, Times: 1})
	e.holdFindJob()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.waitHang(done) // the launch answer is held; the job exists
	// Stash's clock moves on while the answer is late: every later answer
	// carries a Date well after the job's addTime.
	e.fake.Advance(30 * time.Second)
	e.waitHang(done) // following the job it found in the queue
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	e.finish(<-done, stdout, stderr)
	e.fake.ReleaseHung()

	o := e.run("once")

	e.want(o, 0)
	if got := e.query(`SELECT string_agg(outcome, ',' ORDER BY id) FROM stashgen.runs`); got != "abandoned,adopted" {
		t.Fatalf("runs = %s\n%s", got, o.stderr)
	}
	if got := e.query(`SELECT string_agg(status, ',') FROM stashgen.jobs`); got != "completed" {
		t.Fatalf("ledger = %s\n%s", got, o.stderr)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.jobs WHERE error LIKE '%lost%'`); got != "0" {
		t.Fatalf("a job was closed as lost\n%s", o.stderr)
	}
	if n := e.fake.CountField("metadataGenerate"); n != 1 {
		t.Fatalf("metadataGenerate calls = %d", n)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated`); got != "3" {
		t.Fatalf("generated = %s", got)
	}
}

// The run that adopts an orphaned job records the work it adopted: in its
// audit row, in history, in the metrics file and in the final ping's body.
func TestE2E_AdoptedWorkIsRecorded(t *testing.T) {
	t.Parallel()
	ps := newPingServer(t, http.StatusOK)
	metrics := filepath.Join(t.TempDir(), "stashgen.prom")
	e := newE2E(t, fmt.Sprintf("\nmetrics_file = %q\n", metrics), stashtest.WithScenesPerTick(1))
	// metrics_file is a top-level key: put it before the first table.
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(cfg), fmt.Sprintf("\nmetrics_file = %q\n", metrics), "", 1)
	body = fmt.Sprintf("metrics_file = %q\n", metrics) + body + ps.config(false)
	if err := os.WriteFile(e.config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake.AddScenes(3)
	e.holdFindJob()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.waitHang(done)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	e.finish(<-done, stdout, stderr)
	e.fake.ReleaseHung()

	o := e.run("once")

	e.want(o, 0)
	if got := e.query(`SELECT outcome || ' ' || scenes_generated || ' ' || stash_job_id FROM stashgen.runs ORDER BY id DESC LIMIT 1`); got != "adopted 3 1" {
		t.Fatalf("adopting run's row = %q, want adopted, 3 scenes, stash job 1", got)
	}
	h := e.run("history", "--limit", "1")
	e.want(h, 0)
	if !regexp.MustCompile(`#2 +once .* adopted +0 +3 +1\n`).MatchString(h.stdout) {
		t.Fatalf("history does not show the adopted work:\n%s", h.stdout)
	}
	m, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m), "\nstashgen_last_run_scenes_generated 3\n") {
		t.Fatalf("metrics file:\n%s", m)
	}
	pings := ps.pings()
	last := pings[len(pings)-1]
	if !strings.HasPrefix(last, "POST /ping-secret-3e1f0a/0?") || !strings.Contains(last, "scenes_generated=3") || !strings.Contains(last, "stash_job_id=1") {
		t.Fatalf("final ping = %q", last)
	}
}

// A job that ended FINISHED yet left its whole batch incomplete keeps exit
// 0 (backoff handles the scene), but says so at WARN with what is still
// missing, and history shows "0 of N scenes complete".
func TestE2E_BatchThatVerifiedNothingSaysSo(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	id := e.fake.AddScene()
	e.fake.FailResource(id, stashtest.ResourceSprite)
	e.fake.FailResource(id, stashtest.ResourceVTT)

	o := e.run("once")

	e.want(o, 0)
	if !regexp.MustCompile(`level=WARN msg="[^"]*0 of 1 scenes complete[^\n]*missing=[^\n]*sprite[^\n]*hint="[^"]*Stash's log`).MatchString(o.stderr) {
		t.Fatalf("no WARN line naming what is missing and pointing at Stash's log:\n%s", o.stderr)
	}
	h := e.run("history")
	e.want(h, 0)
	if !strings.Contains(h.stdout, "0 of 1 scenes complete") {
		t.Fatalf("history:\n%s", h.stdout)
	}
}

// A resource turned on later is generated by the timer alone: the dry run
// says which scenes will be probed again and why, and the next run sends
// exactly those with the new toggle.
func TestE2E_ToggleTurnedOnLater(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	with := append(slices.Clone(generated), stashtest.ResourceWebP)
	e.fake.AddScene(stashtest.SceneResources(with...))
	lack := []string{e.fake.AddScene(stashtest.SceneResources(generated...)), e.fake.AddScene(stashtest.SceneResources(generated...))}
	e.want(e.run("once"), 0)
	f, err := os.OpenFile(e.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n[generate]\nimage_previews = true\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	d := e.run("once", "--dry-run")

	e.want(d, 0)
	for _, want := range []string{"re-probe:   3 verified before webp was wanted", "plan:       generate 2 scenes", `"imagePreviews": true`} {
		if !strings.Contains(d.stdout, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, d.stdout)
		}
	}

	o := e.run("once")

	e.want(o, 0)
	if got := e.lastRun(); got != "generated/0" {
		t.Fatalf("audit row %s\n%s", got, o.stderr)
	}
	in := e.fake.GenerateInputs()
	if len(in) != 1 || in[0]["imagePreviews"] != true || fmt.Sprint(in[0]["sceneIDs"]) != fmt.Sprint([]any{lack[0], lack[1]}) {
		t.Fatalf("generate inputs = %v, want scenes %v with image previews", in, lack)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated AND 'webp' = ANY(checked_for)`); got != "3" {
		t.Fatalf("scenes verified with their webp = %s, want 3", got)
	}
}

// A check with nothing changed sends Stash no file request, even with
// scenes pending: Stash's log gets no line from it.
func TestE2E_QuietSecondCheck(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "")
	for range 5 {
		e.fake.AddScene(stashtest.SceneResources(stashtest.ResourceCover, stashtest.ResourcePhash))
	}
	first := e.run("check")
	e.want(first, 0)
	notFound := 0
	for _, f := range e.fake.FileRequests() {
		if f.Status == http.StatusNotFound {
			notFound++
		}
	}
	if notFound != 5 || !strings.Contains(first.stderr, "file_requests=5 not_found=5") {
		t.Fatalf("first check: %d 404s, want one a scene\n%s", notFound, first.stderr)
	}
	e.fake.Advance(5 * time.Second)
	e.want(e.run("check"), 0) // re-reads the last second
	e.fake.ResetLog()

	e.want(e.run("check"), 0)

	if n := len(e.fake.FileRequests()); n != 0 {
		t.Fatalf("a check with nothing changed sent %d file requests", n)
	}
	s := e.run("status", "--json")
	var st report.Status
	if err := json.Unmarshal([]byte(s.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Scenes == nil || st.Scenes.Pending != 5 || st.Scenes.ToCheck != 0 || st.Checks == nil || st.Checks.ReverifyAfterSeconds != 604800 {
		t.Fatalf("status: scenes %+v, checks %+v", st.Scenes, st.Checks)
	}
}

// setConfig replaces old with new in the scenario's config file.
func (e *e2e) setConfig(old, new string) {
	e.t.Helper()
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(old)) {
		e.t.Fatalf("config lacks %q", old)
	}
	if err := os.WriteFile(e.config, bytes.Replace(cfg, []byte(old), []byte(new), 1), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// awaitRunningGenerate waits for a generate job that has made progress,
// with the run listening to Stash's events.
func (e *e2e) awaitRunningGenerate(ctx context.Context) {
	e.t.Helper()
	if err := e.fake.AwaitWebsockets(ctx, 1); err != nil {
		e.t.Fatalf("the run never listened: %v", err)
	}
	err := e.fake.Await(ctx, func() bool {
		for _, j := range e.fake.Jobs() {
			if j.Description == "Generating..." && j.Status == stashtest.JobRunning && j.Progress > 0 {
				return true
			}
		}
		return false
	})
	if err != nil {
		e.t.Fatalf("no generate job ran: %v", err)
	}
}

// awaitStop waits for the run's stopJob and returns how long after since
// it came.
func (e *e2e) awaitStop(ctx context.Context, since time.Time) time.Duration {
	e.t.Helper()
	if err := e.fake.Await(ctx, func() bool { return len(e.fake.StopCalls()) > 0 }); err != nil {
		e.t.Fatalf("no stopJob: %v", err)
	}
	return e.fake.StopCalls()[0].At.Sub(since)
}

// Listening to Stash, a scan queued during our generate gets its stopJob
// at once, whatever poll_interval is, and the run ends on Stash's word
// that the job stopped, not at the next poll.
func TestE2E_ListeningYieldsToAScanAtOnce(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1), stashtest.WithAutoTick(200*time.Millisecond))
	e.setConfig("poll_interval = 1\n", "poll_interval = 30\n")
	e.fake.AddScenes(100) // 20 s of work
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := e.command("once")
	began := time.Now()
	done := start(t, cmd)
	e.awaitRunningGenerate(ctx)

	scan(t, e.fake)
	reaction := e.awaitStop(ctx, time.Now())
	o := e.finish(<-done, stdout, stderr)

	e.want(o, 75)
	// Woken by the event, not by the next poll 30 s away: half the poll
	// interval leaves a loaded machine room (the speed itself is measured
	// by BenchmarkScanReaction/listening, about 11 ms).
	if reaction > 15*time.Second {
		t.Fatalf("stopJob came %s after the scan was queued: it waited for a poll", reaction)
	}
	if took := time.Since(began); took >= 30*time.Second {
		t.Fatalf("the run took %s: it waited for the next poll", took)
	}
	if got := e.query(`SELECT outcome || ' ' || listening FROM stashgen.runs`); got != "cancelled_for_scan true" {
		t.Fatalf("audit row = %s", got)
	}
}

// A ledger scan row is honoured as fast as one in Stash's queue: the
// trigger's NOTIFY wakes the run.
func TestE2E_ListeningHonoursALedgerScanAtOnce(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1), stashtest.WithAutoTick(200*time.Millisecond))
	e.setConfig("poll_interval = 1\n", "poll_interval = 30\n")
	e.fake.AddScenes(100)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := e.command("once")
	done := start(t, cmd)
	e.awaitRunningGenerate(ctx)

	e.exec(`INSERT INTO stashgen.jobs (type, status, created_by) VALUES ('stash_scan', 'running', 'my-script')`)
	reaction := e.awaitStop(ctx, time.Now())
	o := e.finish(<-done, stdout, stderr)

	e.want(o, 75)
	if reaction > 15*time.Second { // woken by NOTIFY, not the poll 30 s away
		t.Fatalf("stopJob came %s after the ledger scan row: it waited for a poll", reaction)
	}
	if r := e.query(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); !strings.Contains(r, "ledger job") {
		t.Fatalf("cancel reason = %q", r)
	}
}

// A short job ends the run within seconds of its end, not at the next
// poll, after a moment spent listening for Stash's last log lines.
func TestE2E_ListeningEndsWithAShortJob(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithScenesPerTick(1), stashtest.WithAutoTick(200*time.Millisecond))
	e.setConfig("poll_interval = 1\n", "poll_interval = 30\n")
	e.fake.AddScenes(15) // 3 s of work

	began := time.Now()
	o := e.run("once")

	e.want(o, 0)
	if took := time.Since(began); took >= 30*time.Second {
		t.Fatalf("a 3 s job kept the run %s: it waited for the next poll", took)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated`); got != "15" {
		t.Fatalf("generated = %s", got)
	}
}

// A scene Stash cannot generate: its log line naming the file ends up on
// the scene, with the job, in history, in status and in the final ping.
func TestE2E_StashsErrorIsKept(t *testing.T) {
	t.Parallel()
	ps := newPingServer(t, http.StatusOK)
	e := newE2E(t, ps.config(false))
	id := e.fake.AddScene(stashtest.ScenePath("/media/broken clip.mp4"))
	e.fake.AddScenes(2)
	e.fake.FailResource(id, stashtest.ResourceSprite)

	e.want(e.run("once"), 0)

	errText := e.query(`SELECT coalesce(last_error, '') FROM stashgen.scenes WHERE stash_id = $1`, id)
	if !strings.Contains(errText, "error generating sprite") || !strings.Contains(errText, "/media/broken clip.mp4") {
		t.Fatalf("scene's last error = %q", errText)
	}
	if n := e.query(`SELECT count(*)::text FROM stashgen.job_log WHERE level = 'Error'`); n == "0" {
		t.Fatal("the job kept no Error entry of Stash's log")
	}
	h := e.run("history")
	if !strings.Contains(h.stdout, "stash logged") || !strings.Contains(h.stdout, "error generating sprite") {
		t.Fatalf("history:\n%s", h.stdout)
	}
	s := e.run("status")
	if !strings.Contains(s.stdout, "failing:      scene "+id) || !strings.Contains(s.stdout, "error generating sprite") {
		t.Fatalf("status:\n%s", s.stdout)
	}
	pings := ps.pings()
	if last := pings[len(pings)-1]; !strings.Contains(last, "error generating sprite") {
		t.Fatalf("final ping lacks Stash's error: %q", last)
	}
	// Generated once fixed, the scene's error goes.
	e.fake.SetResources(id, generated...)
	e.want(e.run("check", "--full"), 0)
	if got := e.query(`SELECT coalesce(last_error, 'cleared') FROM stashgen.scenes WHERE stash_id = $1`, id); got != "cleared" {
		t.Fatalf("last error after the scene verified complete = %q", got)
	}
}

// Behind a proxy that does not pass websocket upgrades, a run says so once
// and follows its job by polling, as before.
func TestE2E_WithoutWebsocketsItPolls(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "", stashtest.WithoutWebsocket(http.StatusBadGateway))
	e.fake.AddScenes(2)

	o := e.run("once")

	e.want(o, 0)
	if n := strings.Count(o.stderr, "not listening to stash's events"); n != 1 || !strings.Contains(o.stderr, "502") {
		t.Fatalf("want one line saying why it polls (HTTP 502):\n%s", o.stderr)
	}
	if got := e.query(`SELECT outcome || ' ' || listening FROM stashgen.runs`); got != "generated false" {
		t.Fatalf("audit row = %s", got)
	}
	s := e.run("status")
	if !strings.Contains(s.stdout, ", polling") {
		t.Fatalf("status does not say the last run polled:\n%s", s.stdout)
	}
}

// hhmm is a local wall-clock time, as a window is written.
func hhmm(t time.Time) string { return t.Format("15:04") }

func TestE2E_OutsideTheWindowStandsAside(t *testing.T) {
	t.Parallel()
	now := time.Now()
	win := hhmm(now.Add(2*time.Hour)) + "-" + hhmm(now.Add(3*time.Hour))
	e := newE2E(t, "\n[generate]\nwindow = \""+win+"\"\n")
	e.fake.AddScenes(2)

	plan := e.run("once", "--dry-run")
	o := e.run("once")

	e.want(plan, 75)
	if want := "stand aside (skipped_window, exit 75): outside the maintenance window " + win + ": it opens at " + win[:5]; !strings.Contains(plan.stdout, want) {
		t.Fatalf("dry run output lacks %q:\n%s", want, plan.stdout)
	}
	e.want(o, 75)
	if got := e.lastRun(); got != "skipped_window/75" {
		t.Fatalf("audit row %s", got)
	}
	if n := len(e.fake.Mutations()); n != 0 {
		t.Fatalf("%d mutations outside the window", n)
	}
	if msg := e.query(`SELECT error FROM stashgen.runs`); !strings.Contains(msg, "outside the maintenance window "+win) || !strings.Contains(msg, "opens at "+win[:5]) {
		t.Fatalf("error = %q, want the window and when it opens", msg)
	}
}

func TestE2E_WindowAcrossMidnightContainingNowRuns(t *testing.T) {
	t.Parallel()
	now := time.Now()
	// Start an hour ago, end two hours ago: 23 hours that always span
	// midnight and always contain now.
	win := hhmm(now.Add(-time.Hour)) + "-" + hhmm(now.Add(-2*time.Hour))
	e := newE2E(t, "\n[generate]\nwindow = \""+win+"\"\n")
	e.fake.AddScenes(2)

	e.want(e.run("once"), 0)
	if got := e.lastRun(); got != "generated/0" {
		t.Fatalf("audit row %s", got)
	}
}

// The window closes while a long job runs: stopJob within 3 s of the
// closing minute, the finished scenes kept.
func TestE2E_WindowClosesWhileTheJobRuns(t *testing.T) {
	t.Parallel()
	now := time.Now()
	closes := now.Truncate(time.Minute).Add(time.Minute)
	if closes.Sub(now) < 15*time.Second { // room to start the job first
		closes = closes.Add(time.Minute)
	}
	win := hhmm(closes.Add(-time.Hour)) + "-" + hhmm(closes)
	e := newE2E(t, "\n[generate]\nwindow = \""+win+"\"\n", stashtest.WithScenesPerTick(1), stashtest.WithAutoTick(200*time.Millisecond))
	e.setConfig("poll_interval = 1\n", "poll_interval = 30\n")
	e.fake.AddScenes(500) // 100 s of work: it outlasts the window

	o := e.run("once")

	e.want(o, 75)
	stops := e.fake.StopCalls()
	if len(stops) != 1 {
		t.Fatalf("stop calls = %v", stops)
	}
	if late := stops[0].At.Sub(closes); late < 0 || late > 3*time.Second {
		t.Fatalf("stopJob came %s after the window closed at %s, want within 3 s", late, hhmm(closes))
	}
	if got := e.lastRun(); got != "cancelled_for_window/75" {
		t.Fatalf("audit row %s", got)
	}
	if r := e.query(`SELECT reason FROM stashgen.job_actions WHERE action = 'CANCELLED'`); r != "maintenance window closed at "+hhmm(closes) {
		t.Fatalf("CANCELLED reason = %q", r)
	}
	if n := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated`); n == "0" {
		t.Fatal("the finished scenes were not kept")
	}
}

func TestE2E_FreeSpaceFloor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("above the free space", func(t *testing.T) {
		t.Parallel()
		e := newE2E(t, fmt.Sprintf("\n[generate]\nfree_space_path = %q\nmin_free_space = \"99.9%%\"\n", dir))
		e.fake.AddScenes(2)

		o := e.run("once")

		e.want(o, 75)
		if got := e.lastRun(); got != "skipped_low_space/75" {
			t.Fatalf("audit row %s", got)
		}
		if msg := e.query(`SELECT error FROM stashgen.runs`); !strings.Contains(msg, "free space on "+dir) || !strings.Contains(msg, "below min_free_space 99.9%") {
			t.Fatalf("error = %q, want the path, the free space and the floor", msg)
		}
		if n := len(e.fake.Mutations()) + len(e.fake.FileRequests()); n != 0 {
			t.Fatalf("%d mutations and probes below the floor", n)
		}
		s := e.run("status")
		e.want(s, 1)
		if !strings.Contains(s.stdout, "low disk space") {
			t.Fatalf("status does not warn about the disk:\n%s", s.stdout)
		}
	})
	t.Run("below the free space", func(t *testing.T) {
		t.Parallel()
		e := newE2E(t, fmt.Sprintf("\n[generate]\nfree_space_path = %q\nmin_free_space = \"1MiB\"\n", dir))
		e.fake.AddScenes(2)

		e.want(e.run("once"), 0)
		if got := e.lastRun(); got != "generated/0" {
			t.Fatalf("audit row %s", got)
		}
	})
}

// End-to-end tests of a run that listens to Stash: the binary as cron
// runs it, with its real timers, against the fake Stash's websocket.

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

// End-to-end tests of the dry runs' JSON plans (`once --dry-run --json`,
// `check --dry-run --json`): their field names are a contract for
// scripts, so the tests read them by name from the raw JSON, not through
// the Go struct that writes them.

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
			if e.schemaExists() {
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

// End-to-end tests of truth that lasts (issue 11): checks that age are
// probed again, a share a run, and a resource turned off makes nothing
// pending. Time is moved by rewriting checked_at in the test database,
// never by sleeping.

// files counts the file requests the fake saw since its log was reset,
// and the 404s among them.
func (e *e2e) files() (all, notFound int) {
	for _, f := range e.fake.FileRequests() {
		all++
		if f.Status == http.StatusNotFound {
			notFound++
		}
	}
	return all, notFound
}

// probed lists the scenes of ids that had a file requested since the
// fake's log was reset, in ids' order.
func (e *e2e) probed(ids []string) []string {
	var out []string
	for _, id := range ids {
		byID, byHash := "/scene/"+id+"/", "/scene/"+e.fake.SceneOSHash(id)+"_"
		for _, f := range e.fake.FileRequests() {
			if strings.HasPrefix(f.Path, byID) || strings.HasPrefix(f.Path, byHash) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// sent lists the scene ids of every metadataGenerate the fake executed.
func (e *e2e) sent() []string {
	var out []string
	for _, in := range e.fake.GenerateInputs() {
		for _, id := range in["sceneIDs"].([]any) {
			out = append(out, id.(string))
		}
	}
	return out
}

// A sprite cleaned away behind stashgen's back is noticed once the
// scene's check is older than reverify_after, and regenerated by the timer
// alone: that scene, and only it, goes to metadataGenerate.
func TestE2E_ReverifyRegeneratesAVanishedFile(t *testing.T) {
	t.Parallel()
	// reverify_after equal to the job interval: every due scene in one run.
	e := newE2E(t, "\n[check]\nreverify_after = 3600\n")
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = e.fake.AddScene(stashtest.SceneResources(generated...))
	}
	e.want(e.run("once"), 0)
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated`); got != "3" {
		t.Fatalf("generated = %s, want 3", got)
	}
	e.fake.SetResources(ids[1], stashtest.ResourceCover, stashtest.ResourcePhash, stashtest.ResourcePreview, stashtest.ResourceVTT)
	e.fake.ResetLog()
	e.want(e.run("once"), 0) // not due yet: nothing notices
	if n, _ := e.files(); n != 0 || len(e.fake.GenerateInputs()) != 0 {
		t.Fatalf("a run before reverify_after made %d file requests and %d generates", n, len(e.fake.GenerateInputs()))
	}
	e.exec(`UPDATE stashgen.scenes SET checked_at = checked_at - interval '2 hours'`)
	e.fake.ResetLog()

	o := e.run("once")

	e.want(o, 0)
	if got := e.lastRun(); got != "generated/0" {
		t.Fatalf("audit row %s\n%s", got, o.stderr)
	}
	if got := e.sent(); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("scenes sent = %v, want only the one that lost its sprite %v", got, ids[1:2])
	}
	if !strings.Contains(o.stderr, "reverified=3") {
		t.Fatalf("the check did not say it re-verified the 3 scenes:\n%s", o.stderr)
	}
	// Re-verification: 3 files of each of the 3 scenes, one of them the
	// missing sprite; after the job, the scene's 3 files again.
	if all, notFound := e.files(); all != 3*3+3 || notFound != 1 {
		t.Fatalf("file requests = %d, 404s = %d; want 12 and 1", all, notFound)
	}
	if !e.fake.HasResource(ids[1], stashtest.ResourceSprite) {
		t.Fatal("the sprite was not regenerated")
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated AND checked_at > now() - interval '1 hour'`); got != "3" {
		t.Fatalf("freshly verified generated scenes = %s, want 3", got)
	}

	// A run right after the re-verification probes nothing.
	e.fake.ResetLog()
	e.want(e.run("once"), 0)
	if n, _ := e.files(); n != 0 || e.lastRun() != "nothing_to_do/0" {
		t.Fatalf("the run after: %d file requests, audit row %s", n, e.lastRun())
	}
}

// Turning resources off in [generate] never makes a scene pending: the
// dry run and the run after it send nothing and request no more files
// than an idle run does.
func TestE2E_ToggleTurnedOffMakesNothingPending(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "\n[generate]\nimage_previews = true\n")
	with := append(slices.Clone(generated), stashtest.ResourceWebP)
	for range 3 {
		e.fake.AddScene(stashtest.SceneResources(with...))
	}
	e.want(e.run("once"), 0)
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated`); got != "3" {
		t.Fatalf("generated = %s, want 3", got)
	}
	// An hour on, Stash's clock has moved past the last sync: an idle run.
	e.fake.Advance(5 * time.Second)
	e.want(e.run("once"), 0) // reads the last second again
	e.fake.ResetLog()
	e.want(e.run("once"), 0)
	idle, _ := e.files()
	e.setConfig("image_previews = true", "image_previews = false\nsprites = false")
	e.fake.ResetLog()

	d := e.run("once", "--dry-run")

	e.want(d, 0)
	if strings.Contains(d.stdout, "re-probe:") || !strings.Contains(d.stdout, "plan:       nothing to generate") {
		t.Fatalf("dry run plans something:\n%s", d.stdout)
	}
	if n, _ := e.files(); n != idle {
		t.Fatalf("the dry run made %d file requests, an idle run %d\n%s", n, idle, d.stdout)
	}

	o := e.run("once")

	e.want(o, 0)
	if got := e.lastRun(); got != "nothing_to_do/0" {
		t.Fatalf("audit row %s\n%s", got, o.stderr)
	}
	if n := e.fake.CountField("metadataGenerate"); n != 0 {
		t.Fatalf("turning resources off sent %d generates", n)
	}
	if n, _ := e.files(); n != idle {
		t.Fatalf("the dry run and the run made %d file requests, an idle run %d", n, idle)
	}
	if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE generated AND NOT needs_check`); got != "3" {
		t.Fatalf("generated and settled = %s, want 3", got)
	}
}

// A library all due at once is re-verified a share a run, oldest check
// first: ceil(N × job_interval / reverify_after) scenes, here ceil(10 ×
// 1/4) = 3, then the next 3, and so on.
func TestE2E_ReverifyIsSpreadOverRuns(t *testing.T) {
	t.Parallel()
	e := newE2E(t, "\n[check]\nreverify_after = 14400\n") // 4 job intervals
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = e.fake.AddScene(stashtest.SceneResources(generated...))
	}
	e.want(e.run("once"), 0)
	// All due; the highest id has the oldest check.
	e.exec(`UPDATE stashgen.scenes SET checked_at = now() - interval '5 hours' - stash_id * interval '1 second'`)
	if st := e.statusJSON(0); st.Checks == nil || st.Checks.Due != 10 || st.Checks.PerRun != 3 {
		t.Fatalf("status checks = %+v, want 10 due, 3 a run", st.Checks)
	}

	for run, want := range [][]string{ids[7:], ids[4:7], ids[1:4], ids[:1], nil} {
		e.fake.ResetLog()
		o := e.run("once")
		e.want(o, 0)
		if got := e.probed(ids); !slices.Equal(got, want) {
			t.Fatalf("run %d probed scenes %v, want %v (oldest checks first)", run+1, got, want)
		}
		if n, _ := e.files(); n != 3*len(want) || e.lastRun() != "nothing_to_do/0" { // preview, sprite, vtt
			t.Fatalf("run %d made %d file requests (want %d), audit row %s", run+1, n, 3*len(want), e.lastRun())
		}
		due := fmt.Sprint(max(0, 10-3*(run+1)))
		if got := e.query(`SELECT count(*)::text FROM stashgen.scenes WHERE checked_at < now() - interval '4 hours'`); got != due {
			t.Fatalf("after run %d, %s scenes due, want %s", run+1, got, due)
		}
	}
}
