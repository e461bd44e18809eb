package cycle_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const testKey = "k3y-SECRET-do-not-print-4242"

// env is one scenario: a fake Stash, a fresh database, a real client and a
// Runner whose Wait never sleeps but lets a test act at each poll.
type env struct {
	t      *testing.T
	fake   *stashtest.Server
	store  *db.Store
	client *stash.Client
	runner *cycle.Runner
	dbURL  string

	mu     sync.Mutex
	logs   bytes.Buffer
	waits  int
	onWait func(n int) error // called at each poll; an error ends the wait

	deleted map[string]bool // scenes the test deleted from the fake
}

func newEnv(t *testing.T, opts ...stashtest.Option) *env {
	t.Helper()
	opts = append([]stashtest.Option{stashtest.WithAPIKey(testKey)}, opts...)
	e := &env{t: t, fake: stashtest.New(t, opts...), dbURL: dbtest.URL(t), deleted: map[string]bool{}}
	ctx := context.Background()
	store, err := db.Open(ctx, e.dbURL, "stashgen")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e.store = store
	e.client, err = stash.New(stash.Options{URL: e.fake.URL(), APIKey: testKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.runner = &cycle.Runner{
		Stash: e.client, Store: store,
		Log: slog.New(slog.NewTextHandler(lockedWriter{e}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Settings: cycle.Settings{PollInterval: time.Second, HeartbeatInterval: time.Hour,
			UnavailableTimeout: time.Minute, PageSize: 7},
		Host: "test-host", PID: os.Getpid(), Version: "test",
		Wait: func(ctx context.Context, d time.Duration) error {
			if err := context.Cause(ctx); err != nil {
				return err
			}
			e.mu.Lock()
			e.waits++
			n, fn := e.waits, e.onWait
			e.mu.Unlock()
			if fn != nil {
				return fn(n)
			}
			return nil
		},
		Stderr: lockedWriter{e},
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stashgen log:\n%s", e.log())
		}
		if strings.Contains(e.log(), testKey) {
			t.Errorf("the API key appears in the log")
		}
	})
	return e
}

type lockedWriter struct{ e *env }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.e.logs.Write(p)
}

func (e *env) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

func (e *env) once(ctx context.Context) cycle.Result {
	return e.runner.Execute(ctx, "once", true, "/run/lock/test.lock", e.runner.Once)
}

func (e *env) check(ctx context.Context, full bool) cycle.Result {
	return e.runner.Execute(ctx, "check", true, "/run/lock/test.lock", e.runner.Check(full))
}

// all is every resource the default toggles look at.
var all = []stashtest.Resource{stashtest.ResourceCover, stashtest.ResourcePhash, stashtest.ResourcePreview,
	stashtest.ResourceSprite, stashtest.ResourceVTT}

var allMarker = []stashtest.Resource{stashtest.ResourceMarkerStream, stashtest.ResourceMarkerScreenshot}

// generatedScenes adds n scenes that have every file.
func (e *env) generatedScenes(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.fake.AddScene(stashtest.SceneResources(all...))
	}
	return ids
}

func (e *env) queryInt(q string, args ...any) int {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (e *env) queryString(q string, args ...any) string {
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

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// addScan queues a scan in the fake the way Stash's UI does.
func (e *env) addScan() {
	e.t.Helper()
	body := `{"query":"mutation { metadataScan(input: {}) }"}`
	req, _ := http.NewRequest(http.MethodPost, e.fake.URL()+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ApiKey", testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("metadataScan: HTTP %d", res.StatusCode)
	}
}

func (e *env) wantResult(res cycle.Result, outcome db.Outcome, code int) {
	e.t.Helper()
	if res.Outcome != outcome || res.ExitCode != code {
		e.t.Fatalf("result = %s/%d (err %v), want %s/%d", res.Outcome, res.ExitCode, res.Err, outcome, code)
	}
	got := e.queryString(`SELECT outcome || '/' || exit_code FROM stashgen.runs ORDER BY id DESC LIMIT 1`)
	if want := string(outcome) + "/" + strconv.Itoa(code); got != want {
		e.t.Fatalf("audit row = %s, want %s", got, want)
	}
}
