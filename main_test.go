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
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/jackc/pgx/v5"

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
	e.fake.ReleaseHung()
	o1 := e.finish(<-done, stdout1, stderr1)

	e.want(o1, 0)
	e.want(o2, 75)
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
	if got := e.query(`SELECT count(*)::text FROM information_schema.schemata WHERE schema_name = 'stashgen'`); got != "0" {
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
	e := newE2E(t, "")

	o := e.run("config", "show")

	e.want(o, 0)
	if !strings.Contains(o.stdout, "stash.api_key") || !strings.Contains(o.stdout, "<redacted>") {
		t.Fatalf("stdout:\n%s", o.stdout)
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
