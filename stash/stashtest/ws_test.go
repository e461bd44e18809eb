package stashtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebsocket_Handshake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		offer   []string
		want    string // negotiated subprotocol
		spoken  string // protocol the fake speaks
		firstKA bool
	}{
		{"transport-ws first", []string{ProtoTransportWS, ProtoGraphQLWS}, ProtoTransportWS, ProtoTransportWS, false},
		{"client's order wins", []string{ProtoGraphQLWS, ProtoTransportWS}, ProtoGraphQLWS, ProtoGraphQLWS, true},
		{"graphql-ws", []string{ProtoGraphQLWS}, ProtoGraphQLWS, ProtoGraphQLWS, true},
		{"none means graphql-ws", nil, "", ProtoGraphQLWS, true},
		{"unknown means graphql-ws", []string{"mqtt"}, "", ProtoGraphQLWS, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, WithAPIKey("k"))
			w := mustDialWS(t, s, tt.offer...)
			if w.proto != tt.want {
				t.Fatalf("negotiated %q, want %q", w.proto, tt.want)
			}
			w.send("connection_init", "", map[string]any{})
			if m, _ := w.read(5 * time.Second); m.Type != "connection_ack" {
				t.Fatalf("first message %+v, want connection_ack", m)
			}
			w.proto = tt.spoken
			if tt.firstKA {
				if m, _ := w.read(5 * time.Second); m.Type != "ka" {
					t.Fatalf("after the ack %+v, want ka", m)
				}
			}
			w.sync() // no ka on graphql-transport-ws: the answer comes next
			up := s.Upgrades()
			if len(up) != 1 || up[0].Status != http.StatusSwitchingProtocols || up[0].Protocol != tt.spoken ||
				!reflect.DeepEqual(up[0].Offered, tt.offer) || !up[0].KeyPresent || !up[0].KeyValid {
				t.Errorf("upgrades %+v", up)
			}
		})
	}
}

func TestWebsocket_SubscribeBeforeInitCloses(t *testing.T) {
	t.Parallel()
	t.Run(ProtoTransportWS, func(t *testing.T) {
		t.Parallel()
		s := New(t)
		w := mustDialWS(t, s, ProtoTransportWS)
		w.start(jobsQ)
		w.expectClose(websocket.StatusProtocolError) // what Stash's gqlgen does, not the spec's 4401
	})
	t.Run(ProtoGraphQLWS, func(t *testing.T) {
		t.Parallel()
		s := New(t)
		w := mustDialWS(t, s, ProtoGraphQLWS)
		w.start(jobsQ)
		m := w.expect("connection_error", "")
		if !strings.Contains(string(m.Payload), "unexpected message start") {
			t.Errorf("payload %s", m.Payload)
		}
		w.expectClose(websocket.StatusProtocolError)
	})
}

func TestWebsocket_ProtocolViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		proto string
		do    func(w *rawWS)
		code  websocket.StatusCode
	}{
		{ProtoTransportWS, func(w *rawWS) { w.init(); w.send("connection_init", "", nil) }, 4429},
		{ProtoTransportWS, func(w *rawWS) { w.init(); w.send("start", "1", nil) }, 4400},
		{ProtoTransportWS, func(w *rawWS) { w.init(); w.start(jobsQ); w.seq--; w.start(jobsQ) }, 4409},
		{ProtoGraphQLWS, func(w *rawWS) { w.init(); w.send("subscribe", "1", nil) }, websocket.StatusProtocolError},
		{ProtoGraphQLWS, func(w *rawWS) { w.init(); w.send("connection_terminate", "", nil) }, websocket.StatusNormalClosure},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.proto, i), func(t *testing.T) {
			t.Parallel()
			s := New(t)
			w := mustDialWS(t, s, tt.proto)
			tt.do(w)
			for {
				m, err := w.read(5 * time.Second)
				if err != nil {
					if got := websocket.CloseStatus(err); got != tt.code {
						t.Fatalf("closed with %d (%v), want %d", got, err, tt.code)
					}
					return
				}
				if m.Type != "ka" && m.Type != "connection_error" {
					t.Fatalf("got %+v before the close", m)
				}
			}
		})
	}
}

func TestWebsocket_KeyCheckedAtUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		serverKey string
		forbidden bool
		sendKey   string
		status    int
	}{
		{"no key", "k", false, "", http.StatusUnauthorized},
		{"wrong key", "k", false, "nope", http.StatusUnauthorized},
		{"forbidden mode", "", true, "", http.StatusForbidden},
		{"right key", "k", false, "k", http.StatusSwitchingProtocols},
		{"no key needed", "", false, "", http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []Option{WithAPIKey(tt.serverKey)}
			if tt.forbidden {
				opts = append(opts, WithForbidden())
			}
			s := New(t, opts...)
			_, resp, err := dialWS(t, s, tt.sendKey, ProtoTransportWS)
			if tt.status == http.StatusSwitchingProtocols {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
			} else if err == nil || resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("dial: %v, response %v, want status %d", err, resp, tt.status)
			}
			up := s.Upgrades()
			if len(up) != 1 || up[0].Status != tt.status || up[0].KeyPresent != (tt.sendKey != "") || up[0].RawQuery != "" {
				t.Errorf("upgrades %+v", up)
			}
			if tt.status != http.StatusSwitchingProtocols && (up[0].KeyValid || up[0].Protocol != "") {
				t.Errorf("refused upgrade recorded as %+v", up[0])
			}
		})
	}
}

func TestWebsocket_WithoutWebsocket(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusNotFound, http.StatusBadRequest, http.StatusBadGateway} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			s := New(t, WithAPIKey("k"), WithoutWebsocket(status))
			_, resp, err := dialWS(t, s, "k", ProtoTransportWS)
			if err == nil || resp == nil || resp.StatusCode != status {
				t.Fatalf("dial: %v, response %v, want %d", err, resp, status)
			}
			if up := s.Upgrades(); len(up) != 1 || up[0].Status != status {
				t.Errorf("upgrades %+v", up)
			}
			// Plain HTTP still works behind such a proxy.
			newClient(t, s).ok(`{ version { hash } }`, nil)
		})
	}
}

func TestWebsocket_KeepAlive(t *testing.T) {
	t.Parallel()
	// Right after the ack, whatever the interval.
	s := New(t, WithKeepAlive(time.Hour))
	w := mustDialWS(t, s, ProtoGraphQLWS)
	w.send("connection_init", "", nil)
	w.expect("connection_ack", "")
	if m, err := w.read(5 * time.Second); err != nil || m.Type != "ka" {
		t.Fatalf("after the ack: %+v %v, want ka", m, err)
	}

	// Then every interval: ticks keep their schedule, so only the time from
	// a reference taken before the ticker started is a safe lower bound.
	const every = 100 * time.Millisecond
	s = New(t, WithKeepAlive(every))
	w = mustDialWS(t, s, ProtoGraphQLWS)
	start := time.Now()
	w.send("connection_init", "", nil)
	w.expect("connection_ack", "")
	for i := range 3 {
		m, err := w.read(5 * time.Second)
		if err != nil || m.Type != "ka" {
			t.Fatalf("ka %d: %+v %v", i, m, err)
		}
	}
	if took := time.Since(start); took < 2*every {
		t.Errorf("three ka after %v, want the last two an interval (%v) apart at least", took, every)
	}

	// graphql-transport-ws has no ka: the socket stays silent.
	w2 := mustDialWS(t, s, ProtoTransportWS)
	w2.init()
	if m, err := w2.read(3 * every); err == nil {
		t.Errorf("graphql-transport-ws got %+v", m)
	}
}

func TestWebsocket_PingPong(t *testing.T) {
	t.Parallel()
	s := New(t)
	w := mustDialWS(t, s, ProtoTransportWS)
	w.init()
	w.send("ping", "", map[string]any{"n": 7})
	m := w.expect("pong", "")
	if string(m.Payload) != `{"n":7}` {
		t.Errorf("pong payload %s", m.Payload)
	}
}

func TestWebsocket_InvalidDocuments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query, wantMsg string
	}{
		{"unknown field", `subscription { scanCompleteSubscribe }`, "Cannot query field"},
		{"missing selection", `subscription { jobsSubscribe }`, "must have a selection"},
		{"two root fields", `subscription { jobsSubscribe { type } loggingSubscribe { message } }`, "must select only one top level field"},
		{"misspelt field", `subscription { loggingSubscribe { time level mesage } }`, "Cannot query field"},
		{"parse error", `subscription {`, "Expected Name"},
	}
	for _, proto := range []string{ProtoTransportWS, ProtoGraphQLWS} {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				s := New(t)
				w := mustDialWS(t, s, proto)
				w.init()
				id := w.start(tt.query)
				m := w.expect("error", id)
				var errs []struct {
					Message string `json:"message"`
				}
				if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 ||
					!strings.Contains(errs[0].Message, tt.wantMsg) {
					t.Fatalf("error payload %s, want a list with %q", m.Payload, tt.wantMsg)
				}
				w.expect("complete", id) // as gqlgen does
				w.sync()                 // the socket stays usable
				calls := s.Subscriptions()
				if len(calls) != 2 || calls[0].Query != tt.query || len(calls[0].Errors) == 0 || calls[1].Errors != nil {
					t.Errorf("calls %+v", calls)
				}
			})
		}
	}
}

func TestWebsocket_JobEventsForGenerate(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{ProtoTransportWS, ProtoGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := New(t, WithAPIKey("k"), WithScenesPerTick(1))
			ids := s.AddScenes(3)
			w, sub := subscribed(t, s, jobsQ, proto)
			c := newClient(t, s)
			id := c.generate(map[string]any{"covers": true, "sceneIDs": ids})
			for range 3 {
				s.Tick()
			}
			want := []jobEvent{
				{"ADD", id, "READY", nil},
				{"UPDATE", id, "RUNNING", 0.0},
				{"UPDATE", id, "RUNNING", 1.0 / 3},
				{"UPDATE", id, "RUNNING", 2.0 / 3},
				{"REMOVE", id, "FINISHED", 1.0},
			}
			for i, we := range want {
				if got := w.jobEvent(sub); got != we {
					t.Fatalf("event %d = %+v, want %+v", i, got, we)
				}
			}
			calls := s.Subscriptions()
			if len(calls) < 1 || calls[0].Operation != "subscription" || !slices.Equal(calls[0].Fields, []string{"jobsSubscribe"}) ||
				!calls[0].KeyValid || !calls[0].KeyPresent {
				t.Errorf("calls %+v", calls)
			}
		})
	}
}

func TestWebsocket_JobEventFields(t *testing.T) {
	t.Parallel()
	s := New(t)
	w, sub := subscribed(t, s, `subscription { u: jobsSubscribe { type job { ...J } } } fragment J on Job { id description addTime startTime }`, ProtoTransportWS)
	newClient(t, s).generate(map[string]any{"covers": true})
	d := w.event(sub)
	got, _ := json.Marshal(d)
	want := `{"u":{"job":{"addTime":"2024-03-10T12:00:00+02:00","description":"Generating...","id":"1","startTime":null},"type":"ADD"}}`
	if string(got) != want {
		t.Errorf("event %s\nwant  %s", got, want)
	}
}

func TestWebsocket_ScanQueuedBehindGenerate(t *testing.T) {
	t.Parallel()
	s := New(t, WithScenesPerTick(1))
	s.AddScenes(3)
	w, sub := subscribed(t, s, jobsQ, ProtoGraphQLWS)
	c := newClient(t, s)
	gen := c.generate(map[string]any{"covers": true})
	w.jobEvent(sub) // ADD
	w.jobEvent(sub) // UPDATE RUNNING
	scan := str(c.ok(`mutation { metadataScan(input: {}) }`, nil)["metadataScan"])
	d := w.event(sub)
	if dig(d, "jobsSubscribe", "type") != "ADD" || dig(d, "jobsSubscribe", "job", "id") != scan ||
		dig(d, "jobsSubscribe", "job", "status") != "READY" || dig(d, "jobsSubscribe", "job", "description") != "Scanning..." {
		t.Fatalf("scan event %v", d)
	}
	if gen == scan {
		t.Fatal("same ids")
	}
}

func TestWebsocket_StopPushesOnTheNextTick(t *testing.T) {
	t.Parallel()
	s := New(t, WithScenesPerTick(1))
	s.AddScenes(4)
	w, sub := subscribed(t, s, jobsQ, ProtoTransportWS)
	c := newClient(t, s)
	id := c.generate(map[string]any{"covers": true})
	s.Tick()
	for range 3 { // ADD, RUNNING 0, RUNNING 0.25
		w.jobEvent(sub)
	}
	c.ok(`mutation { stopJob(job_id: "`+id+`") }`, nil)
	if j := s.Jobs(); j[0].Status != JobStopping { // a findJob poll would tick
		t.Fatalf("job %+v", j[0])
	}
	// Had stopJob pushed anything, it would come before this answer.
	w.sync()
	s.Tick()
	want := []jobEvent{{"UPDATE", id, "STOPPING", 0.5}, {"REMOVE", id, "CANCELLED", 0.5}}
	for i, we := range want {
		if got := w.jobEvent(sub); got != we {
			t.Fatalf("event %d = %+v, want %+v", i, got, we)
		}
	}
}

func TestWebsocket_StopReadyJobRemovesIt(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddScenes(1)
	w, sub := subscribed(t, s, jobsQ, ProtoTransportWS)
	c := newClient(t, s)
	c.generate(map[string]any{"covers": true})
	second := c.generate(map[string]any{"covers": true})
	for range 3 { // ADD 1, RUNNING 1, ADD 2
		w.jobEvent(sub)
	}
	c.ok(`mutation { stopJob(job_id: "`+second+`") }`, nil)
	if got, want := w.jobEvent(sub), (jobEvent{"REMOVE", second, "CANCELLED", nil}); got != want {
		t.Fatalf("event %+v, want %+v", got, want)
	}
}

func TestWebsocket_FailedJobRemoved(t *testing.T) {
	t.Parallel()
	s := New(t)
	w, sub := subscribed(t, s, jobsQ, ProtoTransportWS)
	c := newClient(t, s)
	s.FailNextGenerate("boom")
	id := c.generate(map[string]any{"covers": true})
	s.Tick()
	w.jobEvent(sub)
	w.jobEvent(sub)
	if got, want := w.jobEvent(sub), (jobEvent{"REMOVE", id, "FAILED", 0.0}); got != want {
		t.Fatalf("event %+v, want %+v", got, want)
	}
}

func TestWebsocket_ForgetJobPushesNothing(t *testing.T) {
	t.Parallel()
	s := New(t)
	w, sub := subscribed(t, s, jobsQ, ProtoTransportWS)
	id := newClient(t, s).generate(map[string]any{"covers": true})
	w.jobEvent(sub)
	w.jobEvent(sub)
	s.ForgetJob(id)
	w.sync()
}

func TestWebsocket_ClientStop(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{ProtoTransportWS, ProtoGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			w, sub := subscribed(t, s, jobsQ, proto)
			stop := "stop"
			if w.tws() {
				stop = "complete"
			}
			w.send(stop, sub, nil)
			w.expect("complete", sub)
			newClient(t, s).generate(map[string]any{"covers": true})
			w.sync() // no event for the stopped subscription
			if calls := s.Subscriptions(); !calls[0].Stopped {
				t.Errorf("calls %+v", calls)
			}
		})
	}
}

func TestWebsocket_LogBatches(t *testing.T) {
	t.Parallel()
	const batch = 300 * time.Millisecond
	s := New(t, WithLogBatch(batch), WithScenesPerTick(1))
	ids := []string{s.AddScene(ScenePath("/media/clip.mp4")), s.AddScene()}
	s.FailResource(ids[0], ResourceSprite)
	s.FailResource(ids[0], ResourcePhash)
	w, sub := subscribed(t, s, logsQ, ProtoTransportWS)
	entries := func() []map[string]any {
		t.Helper()
		list, _ := w.event(sub)["loggingSubscribe"].([]any)
		out := make([]map[string]any, len(list))
		for i, e := range list {
			out[i], _ = e.(map[string]any)
		}
		return out
	}

	c := newClient(t, s)
	c.generate(map[string]any{"sprites": true, "phashes": true, "covers": true})
	t0 := time.Now() // before the first push, so a safe lower bound
	s.Tick()         // scene 1: an Info line, then its failures
	first := entries()
	if len(first) != 1 || first[0]["level"] != "Info" || first[0]["message"] != "[generator] generating files for /media/clip.mp4" {
		t.Fatalf("first batch %v", first)
	}
	// The first entry after a quiet spell goes at once; the rest wait
	// for the interval and come together.
	second := entries()
	if took := time.Since(t0); took < batch {
		t.Errorf("second batch %v after the first push, want at least %v", took, batch)
	}
	var msgs []string
	for _, e := range second {
		msgs = append(msgs, fmt.Sprint(e["level"], ": ", e["message"]))
	}
	want := []string{
		"Error: error generating sprite: ffmpeg command produced no output: <-v error -y -ss 5.92 -i /media/clip.mp4 -frames:v 1 -vf scale=160:-2 -c:v bmp -f rawvideo ->",
		"Error: Error generating phash: generating sprite image: ffmpeg command produced no output",
	}
	if !slices.Equal(msgs, want) {
		t.Fatalf("second batch\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}

	// Times carry ordered nanoseconds on the fake clock.
	var last time.Time
	for i, e := range append(first, second...) {
		tm, err := time.Parse(time.RFC3339Nano, str(e["time"]))
		if err != nil || !tm.After(last) || tm.Truncate(time.Second).Equal(tm) || !tm.Truncate(time.Second).Equal(DefaultStart) {
			t.Errorf("entry %d time %v (%v)", i, e["time"], err)
		}
		last = tm
	}
	if logs := s.Logs(); len(logs) != 3 || logs[2].Level != LogError {
		t.Errorf("Logs() = %+v", logs)
	}

	s.Log(LogWarning, "by the test")
	third := entries()
	if len(third) != 1 || third[0]["message"] != "by the test" || third[0]["level"] != "Warning" {
		t.Errorf("third batch %v", third)
	}
}

func TestWebsocket_LogFailureWording(t *testing.T) {
	t.Parallel()
	s := New(t, WithLogBatch(time.Hour))
	id := s.AddScene(ScenePath("/media/a.mp4"))
	m := s.AddMarker(id)
	for _, r := range []Resource{ResourceCover, ResourcePreview, ResourceWebP, ResourceSprite, ResourceVTT} {
		s.FailResource(id, r)
	}
	s.FailMarkerResource(m, ResourceMarkerScreenshot)
	c := newClient(t, s)
	c.findJob(c.generate(map[string]any{"covers": true, "previews": true, "imagePreviews": true,
		"sprites": true, "markers": true, "markerScreenshots": true}))
	var got []string
	for _, e := range s.Logs() {
		got = append(got, string(e.Level)+": "+strings.SplitN(e.Message, ": <", 2)[0])
	}
	want := []string{
		"Info: [generator] generating files for /media/a.mp4",
		"Error: Error generating screenshot: ffmpeg command produced no output",
		"Error: error generating sprite: ffmpeg command produced no output",
		"Warning: [generator] failed generating scene preview, trying fallback",
		"Error: error generating preview: ffmpeg command produced no output",
		"Error: error generating preview webp: ffmpeg command produced no output",
		"Error: [generator] failed to generate marker screenshot: ffmpeg command produced no output",
	}
	if !slices.Equal(got, want) {
		t.Errorf("log\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWebsocket_TraceNoise(t *testing.T) {
	t.Parallel()
	s := New(t, WithTraceNoise(5))
	s.Tick()
	logs := s.Logs()
	if len(logs) != 5 || logs[0].Level != LogTrace {
		t.Fatalf("logs %+v", logs)
	}
}

func TestWebsocket_LogRejectsUnknownLevel(t *testing.T) {
	t.Parallel()
	s := New(t)
	defer func() {
		if recover() == nil {
			t.Error("no panic for level Fatal")
		}
	}()
	s.Log("Fatal", "x")
}

func TestWebsocket_DownRestartAndCloseCutSockets(t *testing.T) {
	t.Parallel()
	cuts := map[string]func(s *Server){
		"down":    (*Server).Down,
		"restart": (*Server).Restart,
	}
	for name, cut := range cuts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			w, _ := subscribed(t, s, jobsQ, ProtoTransportWS)
			cut(s)
			w.expectClose(-1) // no close frame: the connection is gone
			if err := s.AwaitWebsockets(ctxT(t), 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Not parallel: it counts goroutines.
func TestWebsocket_CloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s, closeFn := NewServer(WithAutoTick(time.Millisecond), WithLogBatch(time.Hour), WithTraceNoise(1))
	w, _ := subscribed(t, s, logsQ, ProtoGraphQLWS)
	w2, _ := subscribed(t, s, jobsQ, ProtoTransportWS)
	s.Log(LogError, "schedules a push an hour away")
	s.Log(LogError, "still waiting")
	closeFn()
	for _, ws := range []*rawWS{w, w2} {
		for { // batches pushed before the close may still be in flight
			_, err := ws.read(5 * time.Second)
			if err != nil {
				if websocket.CloseStatus(err) != -1 {
					t.Fatalf("socket ended with %v, want it cut", err)
				}
				break
			}
		}
	}
	_ = w.c.CloseNow()
	_ = w2.c.CloseNow()
	http.DefaultClient.CloseIdleConnections()
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

func TestWebsocket_AutoTick(t *testing.T) {
	t.Parallel()
	s := New(t, WithAutoTick(5*time.Millisecond), WithScenesPerTick(1))
	s.AddScenes(3)
	w, sub := subscribed(t, s, jobsQ, ProtoTransportWS)
	id := newClient(t, s).generate(map[string]any{"covers": true})
	for {
		if e := w.jobEvent(sub); e.Type == "REMOVE" {
			if e.ID != id || e.Status != "FINISHED" {
				t.Fatalf("end %+v", e)
			}
			return
		}
	}
}

func TestWebsocket_AutoTickPollsDoNotTick(t *testing.T) {
	t.Parallel()
	s := New(t, WithAutoTick(time.Hour), WithScenesPerTick(1))
	s.AddScenes(3)
	c := newClient(t, s)
	id := c.generate(map[string]any{"covers": true})
	for range 5 {
		if j := c.findJob(id); j["status"] != "RUNNING" || j["progress"] != 0.0 {
			t.Fatalf("poll ticked: %v", j)
		}
	}
	s.Tick() // an explicit tick still works
	if j := c.findJob(id); j["progress"] != 1.0/3 {
		t.Fatalf("after Tick: %v", j)
	}
}

func TestWebsocket_QueryOverSocket(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k"))
	id := s.AddScene()
	w := mustDialWS(t, s, ProtoTransportWS)
	w.init()
	qid := w.start(`{ findScene(id: "` + id + `") { paths { preview } } }`)
	d := w.event(qid)
	if p := str(dig(d, "findScene", "paths", "preview")); p != s.URL()+"/scene/"+id+"/preview" {
		t.Errorf("preview %q", p)
	}
	w.expect("complete", qid)
}

func TestWebsocket_ManyClientsRace(t *testing.T) {
	t.Parallel()
	s := New(t, WithAutoTick(time.Millisecond), WithLogBatch(20*time.Millisecond), WithTraceNoise(3), WithScenesPerTick(1))
	s.AddScenes(20)
	type sock struct {
		w   *rawWS
		sub string
	}
	var socks []sock
	for i := range 4 {
		proto := []string{ProtoTransportWS, ProtoGraphQLWS}[i%2]
		q := []string{jobsQ, logsQ}[i/2]
		w, sub := subscribed(t, s, q, proto)
		socks = append(socks, sock{w, sub})
	}
	c := newClient(t, s)
	for range 3 {
		c.generate(map[string]any{"covers": true})
	}
	for _, sk := range socks {
		for range 5 {
			sk.w.event(sk.sub)
		}
	}
	s.Restart()
	if err := s.AwaitWebsockets(ctxT(t), 0); err != nil {
		t.Fatal(err)
	}
}
