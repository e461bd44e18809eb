package stash_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// subscribe opens a subscription that the test closes at the end.
func subscribe(t *testing.T, c *stash.Client, o stash.SubscribeOptions) *stash.Subscription {
	t.Helper()
	sub, err := c.Subscribe(ctx(t), o)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// nextJob waits for the next job event.
func nextJob(t *testing.T, sub *stash.Subscription) stash.JobEvent {
	t.Helper()
	select {
	case ev, ok := <-sub.Jobs():
		if !ok {
			t.Fatalf("Jobs closed: %v", sub.Err())
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no job event within 5s")
	}
	panic("unreachable")
}

// nextLog waits for the next log entry.
func nextLog(t *testing.T, sub *stash.Subscription) stash.LogEntry {
	t.Helper()
	select {
	case e, ok := <-sub.Logs():
		if !ok {
			t.Fatalf("Logs closed: %v", sub.Err())
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no log entry within 5s")
	}
	panic("unreachable")
}

// awaitDone waits for the socket to end.
func awaitDone(t *testing.T, sub *stash.Subscription) {
	t.Helper()
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed within 10s")
	}
}

// ev is a job event reduced to what the tests compare.
type ev struct {
	Type     stash.JobEventType
	ID       string
	Status   stash.JobStatus
	Progress float64 // -1 for null
}

func short(e stash.JobEvent) ev {
	p := -1.0
	if e.Job.Progress != nil {
		p = *e.Job.Progress
	}
	return ev{e.Type, e.Job.ID, e.Job.Status, p}
}

// startScan queues a scan as Stash's UI does.
func startScan(t *testing.T, fake *stashtest.Server) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fake.URL()+"/graphql",
		strings.NewReader(`{"query":"mutation { metadataScan(input: {}) }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ApiKey", fake.APIKey())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("metadataScan: %s", res.Status)
	}
}

func TestSubscribe_GenerateEventsInOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		force, spoken string
		offered       []string
	}{
		{"", stash.ProtoTransportWS, []string{stash.ProtoTransportWS, stash.ProtoGraphQLWS}},
		{stash.ProtoTransportWS, stash.ProtoTransportWS, []string{stash.ProtoTransportWS}},
		{stash.ProtoGraphQLWS, stash.ProtoGraphQLWS, []string{stash.ProtoGraphQLWS}},
	}
	for _, tt := range tests {
		t.Run("force="+tt.force, func(t *testing.T) {
			t.Parallel()
			fake, c := newFake(t, stashtest.WithScenesPerTick(1))
			ids := fake.AddScenes(3)
			sub := subscribe(t, c, stash.SubscribeOptions{Protocol: tt.force})
			if sub.Protocol() != tt.spoken {
				t.Errorf("Protocol() = %q, want %q", sub.Protocol(), tt.spoken)
			}
			launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: ids})
			id := launch.JobID
			if err != nil {
				t.Fatal(err)
			}
			fake.DrainJobs()
			want := []ev{
				{stash.JobAdd, id, stash.JobReady, -1},
				{stash.JobUpdate, id, stash.JobRunning, 0},
				{stash.JobUpdate, id, stash.JobRunning, 1.0 / 3},
				{stash.JobUpdate, id, stash.JobRunning, 2.0 / 3},
				{stash.JobRemove, id, stash.JobFinished, 1},
			}
			for i, w := range want {
				e := nextJob(t, sub)
				if got := short(e); got != w {
					t.Fatalf("event %d = %+v, want %+v", i, got, w)
				}
				if e.Job.Description != stash.DescGenerating || !e.Job.AddTime.Equal(stashtest.DefaultStart) {
					t.Errorf("event %d job %+v", i, e.Job)
				}
			}

			up := fake.Upgrades()
			if len(up) != 1 || !slices.Equal(up[0].Offered, tt.offered) || up[0].Protocol != tt.spoken ||
				!up[0].KeyPresent || !up[0].KeyValid || up[0].RawQuery != "" {
				t.Errorf("upgrades %+v", up)
			}
			var fields []string
			for _, call := range fake.Subscriptions() {
				if call.Errors != nil || !call.KeyValid {
					t.Errorf("operation %s refused: %v", call.Query, call.Errors)
				}
				fields = append(fields, call.Fields...)
			}
			if !slices.Equal(fields, []string{"jobsSubscribe", "loggingSubscribe", "__typename"}) {
				t.Errorf("operations %v", fields)
			}
			checkCalls(t, fake)
		})
	}
}

func TestSubscribe_ScanArrivesAsAdd(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t, stashtest.WithScenesPerTick(1))
	ids := fake.AddScenes(3)
	sub := subscribe(t, c, stash.SubscribeOptions{})
	launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: ids})
	id := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	nextJob(t, sub)
	nextJob(t, sub)
	startScan(t, fake)
	e := nextJob(t, sub)
	if e.Type != stash.JobAdd || !e.Job.IsScan() || e.Job.ID == id {
		t.Fatalf("event %+v, want a scan's ADD", e)
	}
}

func TestSubscribe_StopSequence(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t, stashtest.WithScenesPerTick(1))
	ids := fake.AddScenes(4)
	sub := subscribe(t, c, stash.SubscribeOptions{})
	launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: ids})
	id := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	fake.Tick()
	for range 3 {
		nextJob(t, sub)
	}
	if err := c.StopJob(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	fake.Tick()
	// Anything stopJob itself had pushed would come first.
	want := []ev{{stash.JobUpdate, id, stash.JobStopping, 0.5}, {stash.JobRemove, id, stash.JobCancelled, 0.5}}
	for i, w := range want {
		if got := short(nextJob(t, sub)); got != w {
			t.Fatalf("event %d = %+v, want %+v", i, got, w)
		}
	}
}

func TestSubscribe_LevelFiltering(t *testing.T) {
	t.Parallel()
	levels := []stash.LogLevel{stash.LogTrace, stash.LogDebug, stash.LogInfo, stash.LogProgress, stash.LogWarning, stash.LogError}
	tests := []struct {
		min  stash.LogLevel
		want []stash.LogLevel
	}{
		{"", levels[4:]},
		{stash.LogTrace, levels},
		{stash.LogInfo, levels[2:]},
		{stash.LogError, levels[5:]},
	}
	for _, tt := range tests {
		t.Run("min="+string(tt.min), func(t *testing.T) {
			t.Parallel()
			fake, c := newFake(t, stashtest.WithLogBatch(10*time.Millisecond))
			sub := subscribe(t, c, stash.SubscribeOptions{MinLevel: tt.min})
			for _, l := range levels {
				fake.Log(stashtest.LogLevel(l), "at "+string(l))
			}
			fake.Log(stashtest.LogError, "end")
			var got []stash.LogLevel
			for {
				e := nextLog(t, sub)
				if e.Message == "end" {
					break
				}
				if e.Message != "at "+string(e.Level) {
					t.Errorf("entry %+v", e)
				}
				got = append(got, e.Level)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("levels %v, want %v", got, tt.want)
			}
			if d := sub.Dropped(); d != (stash.Drops{}) {
				t.Errorf("dropped %+v", d)
			}
		})
	}
}

func TestSubscribe_GenerateFailureLogged(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t, stashtest.WithLogBatch(10*time.Millisecond))
	id := fake.AddScene(stashtest.ScenePath("/media/clip.mp4"))
	fake.FailResource(id, stashtest.ResourceSprite)
	sub := subscribe(t, c, stash.SubscribeOptions{})
	if _, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Sprites: stash.Bool(true)}, SceneIDs: []string{id}}); err != nil {
		t.Fatal(err)
	}
	fake.DrainJobs()
	e := nextLog(t, sub) // the Info line is filtered out
	if e.Level != stash.LogError || !strings.HasPrefix(e.Message, "error generating sprite: ffmpeg command produced no output: <-v error -y -ss 5.92 -i /media/clip.mp4 ") {
		t.Fatalf("entry %+v", e)
	}
	logs := fake.Logs()
	if want := logs[len(logs)-1].Time; !e.Time.Equal(want) || e.Time.Nanosecond() == 0 {
		t.Errorf("time %v, want %v with its nanoseconds", e.Time, want)
	}
}

func TestSubscribe_UpgradeRefused(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusNotFound, http.StatusBadRequest, http.StatusBadGateway} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			_, c := newFake(t, stashtest.WithoutWebsocket(status))
			_, err := c.Subscribe(ctx(t), stash.SubscribeOptions{})
			if !errors.Is(err, stash.ErrUpgradeRefused) {
				t.Fatalf("error %v, want ErrUpgradeRefused in its chain", err)
			}
			var se *stash.Error
			errors.As(err, &se)
			wantKind := stash.KindProtocol
			if status >= 500 {
				wantKind = stash.KindUnavailable
			}
			msg := err.Error()
			if se.Kind != wantKind || se.Status != status || se.Op != "subscribe" ||
				!strings.Contains(msg, fmt.Sprintf("HTTP %d to the websocket upgrade", status)) ||
				!strings.Contains(msg, "reverse proxy") || !strings.Contains(se.Hint(), "websocket upgrades") {
				t.Errorf("error %q (kind %d), hint %q", msg, se.Kind, se.Hint())
			}
			if strings.Contains(msg, fakeKey) || strings.Contains(msg, "failed to") {
				t.Errorf("error %q", msg)
			}
		})
	}
}

func TestSubscribe_KeyRejectedAtUpgrade(t *testing.T) {
	t.Parallel()
	const wrong = "eyJhbGciOiJIUzI1NiJ9.d3Jvbmc.Wr0ng-K3y-0000"
	tests := []struct {
		name   string
		opts   []stashtest.Option
		key    string
		status int
	}{
		{"wrong key", []stashtest.Option{stashtest.WithAPIKey(fakeKey)}, wrong, http.StatusUnauthorized},
		{"no key", []stashtest.Option{stashtest.WithAPIKey(fakeKey)}, "", http.StatusUnauthorized},
		{"forbidden", []stashtest.Option{stashtest.WithForbidden()}, "", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := stashtest.New(t, tt.opts...)
			c := newClient(t, fake.URL(), tt.key)
			_, err := c.Subscribe(ctx(t), stash.SubscribeOptions{})
			if !stash.IsKind(err, stash.KindAuth) {
				t.Fatalf("error %v, want KindAuth", err)
			}
			var se *stash.Error
			if errors.As(err, &se); se.Status != tt.status || se.ExitCode() != 77 {
				t.Errorf("error %v: status %d", err, se.Status)
			}
			for _, k := range []string{fakeKey, wrong} {
				if strings.Contains(err.Error(), k) {
					t.Errorf("error quotes a key: %v", err)
				}
			}
			if up := fake.Upgrades(); len(up) != 1 || up[0].RawQuery != "" || up[0].KeyPresent != (tt.key != "") {
				t.Errorf("upgrades %+v", up)
			}
		})
	}
}

func TestSubscribe_KeyNeverInURLOrError(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	sub := subscribe(t, c, stash.SubscribeOptions{})
	for _, up := range fake.Upgrades() {
		if up.RawQuery != "" || !up.KeyPresent || !up.KeyValid {
			t.Errorf("upgrade %+v", up)
		}
	}
	for _, call := range fake.Subscriptions() {
		if strings.Contains(call.Query, fakeKey) || strings.Contains(fmt.Sprint(call.Variables), fakeKey) {
			t.Errorf("operation carries the key: %+v", call)
		}
	}
	fake.Down()
	awaitDone(t, sub)
	if err := sub.Err(); err == nil || strings.Contains(err.Error(), fakeKey) {
		t.Errorf("Err() = %v", err)
	}
}

func TestSubscribe_DroppedMidStream(t *testing.T) {
	t.Parallel()
	cuts := []struct {
		name string
		cut  func(*stashtest.Server)
	}{
		{"down", (*stashtest.Server).Down},
		{"restart", (*stashtest.Server).Restart},
	}
	for _, tt := range cuts {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, c := newFake(t)
			fake.AddScenes(1)
			sub := subscribe(t, c, stash.SubscribeOptions{})
			if _, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: []string{"1"}}); err != nil {
				t.Fatal(err)
			}
			nextJob(t, sub) // mid-stream: ADD
			nextJob(t, sub) // UPDATE RUNNING
			tt.cut(fake)
			awaitDone(t, sub)
			err := sub.Err()
			if !stash.IsKind(err, stash.KindUnavailable) || !strings.Contains(err.Error(), "connection to stash lost") ||
				strings.Contains(err.Error(), "failed to") {
				t.Fatalf("Err() = %v", err)
			}
			for e := range sub.Jobs() {
				t.Errorf("event after the cut: %+v", e)
			}
			if _, ok := <-sub.Logs(); ok {
				t.Error("Logs still open")
			}
			if err := sub.Close(); err != nil || !stash.IsKind(sub.Err(), stash.KindUnavailable) {
				t.Errorf("Close after the drop: %v; Err() = %v", err, sub.Err())
			}
		})
	}
}

func TestSubscribe_ContextEndsIt(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	cctx, cancel := context.WithCancel(ctx(t))
	sub, err := c.Subscribe(cctx, stash.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cancel()
	awaitDone(t, sub)
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Errorf("Err() = %v", sub.Err())
	}
	if err := fake.AwaitWebsockets(ctx(t), 0); err != nil {
		t.Fatal(err)
	}
	for _, call := range fake.Subscriptions()[:2] {
		if !call.Stopped {
			t.Errorf("%v not stopped", call.Fields)
		}
	}
}

// Not parallel: it counts goroutines.
func TestSubscribe_CloseIsCleanAndLeavesNoGoroutines(t *testing.T) {
	fake, c := newFake(t, stashtest.WithAutoTick(time.Millisecond), stashtest.WithTraceNoise(5),
		stashtest.WithLogBatch(5*time.Millisecond))
	before := runtime.NumGoroutine()
	for _, proto := range []string{stash.ProtoTransportWS, stash.ProtoGraphQLWS} {
		sub, err := c.Subscribe(ctx(t), stash.SubscribeOptions{Protocol: proto, MinLevel: stash.LogTrace})
		if err != nil {
			t.Fatal(err)
		}
		nextLog(t, sub) // traffic flowing, and nobody reading Jobs
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		if err := sub.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		awaitDone(t, sub)
		if sub.Err() != nil {
			t.Errorf("Err() after Close = %v", sub.Err())
		}
		if _, ok := <-sub.Jobs(); ok {
			t.Error("Jobs open after Close")
		}
		if err := fake.AwaitWebsockets(ctx(t), 0); err != nil {
			t.Fatal(err)
		}
	}
	calls := fake.Subscriptions()
	for _, call := range calls {
		if call.Operation == "subscription" && !call.Stopped {
			t.Errorf("%s %v not stopped before the close", call.Protocol, call.Fields)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		// Nothing signals a goroutine's exit: poll, as goleak does.
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscribe_SlowReaderLosesOnlyUpdates(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t, stashtest.WithScenesPerTick(1))
	ids := fake.AddScenes(50)
	sub := subscribe(t, c, stash.SubscribeOptions{JobBuffer: 2})
	launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: ids})
	id := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	fake.DrainJobs()
	startScan(t, fake) // queued behind nothing now, but it must arrive
	fake.DrainJobs()
	var got []ev
	for {
		e := short(nextJob(t, sub))
		got = append(got, e)
		if e.Type == stash.JobRemove && e.ID != id {
			break
		}
	}
	var updates int
	var order []string
	for _, e := range got {
		if e.Type == stash.JobUpdate {
			updates++
			continue
		}
		order = append(order, string(e.Type)+" "+e.ID)
	}
	scan := got[len(got)-1].ID
	if want := []string{"ADD " + id, "REMOVE " + id, "ADD " + scan, "REMOVE " + scan}; !slices.Equal(order, want) {
		t.Errorf("ADD/REMOVE %v, want %v", order, want)
	}
	// 50 UPDATEs for the generate (start, then 49 progress steps), one for
	// the scan's start.
	if d := sub.Dropped(); d.JobUpdates == 0 || int64(updates)+d.JobUpdates != 51 {
		t.Errorf("delivered %d updates, dropped %d, want 51 in all and some dropped", updates, d.JobUpdates)
	}
	// The newest state survives: the last UPDATE before REMOVE is current.
	for i, e := range got[1:] {
		if e.Type == stash.JobRemove && e.ID == id && got[i].Type == stash.JobUpdate && got[i].Progress < 0.9 {
			t.Errorf("last update before REMOVE is stale: %+v", got[i])
		}
	}
}

func TestSubscribe_SlowReaderDropsLogs(t *testing.T) {
	t.Parallel()
	// No batching: each entry is pushed within Log, so all of them are on
	// the socket before the job event that follows.
	fake, c := newFake(t, stashtest.WithLogBatch(0))
	sub := subscribe(t, c, stash.SubscribeOptions{LogBuffer: 2, MinLevel: stash.LogTrace})
	for i := range 10 {
		fake.Log(stashtest.LogError, fmt.Sprint("entry ", i))
	}
	fake.AddScenes(1)
	if _, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	nextJob(t, sub) // so the entries have been read
	if d := sub.Dropped(); d.LogEntries != 8 || d.JobUpdates != 0 {
		t.Fatalf("dropped %+v, want 8 log entries", d)
	}
	for _, want := range []string{"entry 0", "entry 1"} {
		if e := nextLog(t, sub); e.Message != want {
			t.Errorf("kept %q, want %q", e.Message, want)
		}
	}
}

func TestSubscribe_ManyAtOnceRace(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t, stashtest.WithAutoTick(time.Millisecond), stashtest.WithScenesPerTick(1),
		stashtest.WithTraceNoise(3), stashtest.WithLogBatch(5*time.Millisecond))
	ids := fake.AddScenes(30)
	var subs []*stash.Subscription
	for range 3 {
		subs = append(subs, subscribe(t, c, stash.SubscribeOptions{MinLevel: stash.LogTrace, JobBuffer: 4, LogBuffer: 8}))
	}
	if _, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: ids}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		for e := nextJob(t, sub); e.Type != stash.JobRemove; e = nextJob(t, sub) {
			_ = sub.Dropped()
		}
	}
	fake.Restart()
	for _, sub := range subs {
		awaitDone(t, sub)
		_ = sub.Close()
	}
}

func TestSubscribe_StashDown(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.Down()
	_, err := c.Subscribe(ctx(t), stash.SubscribeOptions{})
	if !stash.IsKind(err, stash.KindUnavailable) || !strings.Contains(err.Error(), "connection refused") ||
		strings.Contains(err.Error(), "failed to") {
		t.Fatalf("error %v", err)
	}
	if _, err := c.Subscribe(ctx(t), stash.SubscribeOptions{Protocol: "graphql-sse"}); err == nil {
		t.Error("an unknown protocol accepted")
	}
}
