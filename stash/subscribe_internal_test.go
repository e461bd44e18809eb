package stash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsPeer is the server end of a stub websocket, driven by the test.
type wsPeer struct {
	t testing.TB
	c *websocket.Conn
}

// send writes a message; false when the socket is gone.
func (p *wsPeer) send(raw string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.c.Write(ctx, websocket.MessageText, []byte(raw)) == nil
}

// read returns the next message's type and id.
func (p *wsPeer) read() (typ, id string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := p.c.Read(ctx)
	if err != nil {
		return "", "", err
	}
	var m struct{ Type, ID string }
	_ = json.Unmarshal(b, &m)
	return m.Type, m.ID, nil
}

// expect reads until a message of this type arrives; false when the
// socket ended first (the test then fails on what the client saw).
func (p *wsPeer) expect(typ string) bool {
	for {
		got, _, err := p.read()
		if err != nil {
			return false
		}
		if got == typ {
			return true
		}
	}
}

// ackAndConfirm plays a Stash that accepts everything: ack, then the sync
// query's answer once the three operations are in.
func (p *wsPeer) ackAndConfirm(proto string) bool {
	if !p.expect("connection_init") || !p.send(`{"type":"connection_ack"}`) {
		return false
	}
	start, data := "subscribe", "next"
	if proto == ProtoGraphQLWS {
		start, data = "start", "data"
	}
	for range 3 {
		if !p.expect(start) {
			return false
		}
	}
	return p.send(`{"payload":{"data":{"__typename":"Query"}},"id":"3","type":"`+data+`"}`) &&
		p.send(`{"id":"3","type":"complete"}`)
}

// wsStub serves one websocket per connection in proto and hands it to play,
// which runs until it returns (then the socket is cut). At cleanup every
// socket is cut, which ends any read or write play is blocked in:
// httptest knows nothing of hijacked connections.
func wsStub(t testing.TB, proto string, play func(p *wsPeer)) string {
	t.Helper()
	var (
		mu    sync.Mutex
		conns []*websocket.Conn
		wg    sync.WaitGroup
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{proto}})
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		play(&wsPeer{t: t, c: c})
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.CloseNow()
		}
		mu.Unlock()
		wg.Wait()
	})
	return srv.URL
}

func TestSubscribe_Timeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		play func(p *wsPeer)
		want string
	}{
		{"no ack", func(p *wsPeer) {
			p.expect("connection_init")
			p.read() // until the client gives up
		}, "no connection_ack within stash.timeout (300ms)"},
		{"no confirmation", func(p *wsPeer) {
			p.expect("connection_init")
			p.send(`{"type":"connection_ack"}`)
			p.read()
			p.read()
			p.read()
			p.read()
		}, "the subscriptions were not confirmed within stash.timeout (300ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := wsStub(t, ProtoTransportWS, tt.play)
			c := newTestClient(t, url, func(o *Options) { o.Timeout = 300 * time.Millisecond })
			_, err := c.Subscribe(t.Context(), SubscribeOptions{})
			e := wantKind(t, err, KindUnavailable)
			if e.Msg != tt.want {
				t.Errorf("Msg = %q, want %q", e.Msg, tt.want)
			}
		})
	}
}

func TestSubscribe_StashErrors(t *testing.T) {
	t.Parallel()
	acked := func(proto string, then string) func(p *wsPeer) {
		return func(p *wsPeer) {
			p.ackAndConfirm(proto)
			p.send(then)
			p.read()
		}
	}
	tests := []struct {
		name     string
		proto    string
		play     func(p *wsPeer)
		kind     Kind
		op, want string
		atStart  bool // Subscribe itself fails
	}{
		{"subscribe refused", ProtoTransportWS, func(p *wsPeer) {
			p.expect("connection_init")
			p.send(`{"type":"connection_ack"}`)
			p.expect("subscribe")
			p.send(`{"payload":[{"message":"Cannot query field \"jobsSubscribe\"","extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}],"id":"1","type":"error"}`)
			p.send(`{"id":"1","type":"complete"}`)
			p.read()
		}, KindGraphQL, "jobsSubscribe", `Cannot query field "jobsSubscribe"`, true},
		{"connection_error before ack", ProtoGraphQLWS, func(p *wsPeer) {
			p.expect("connection_init")
			p.send(`{"payload":{"message":"unexpected message connection_init"},"type":"connection_error"}`)
			p.read()
		}, KindGraphQL, "subscribe", "unexpected message connection_init", true},
		{"unauthorized close", ProtoTransportWS, func(p *wsPeer) {
			p.expect("connection_init")
			_ = p.c.Close(4403, "Forbidden")
		}, KindAuth, "subscribe", "stash closed the websocket (4403 Forbidden)", true},
		{"not a protocol message", ProtoTransportWS, func(p *wsPeer) {
			p.expect("connection_init")
			p.send(`<html>502 Bad Gateway</html>`)
			p.read()
		}, KindProtocol, "subscribe", `a message that is not GraphQL over websocket: "<html>502 Bad Gateway</html>"`, true},
		{"old-style error object", ProtoGraphQLWS, acked(ProtoGraphQLWS,
			`{"payload":{"message":"logger gone"},"id":"2","type":"error"}`), KindGraphQL, "loggingSubscribe", "logger gone", false},
		{"errors in a result", ProtoTransportWS, acked(ProtoTransportWS,
			`{"payload":{"errors":[{"message":"a"},{"message":"b"}],"data":null},"id":"1","type":"next"}`), KindGraphQL, "jobsSubscribe", "a; b", false},
		{"unasked complete", ProtoTransportWS, acked(ProtoTransportWS,
			`{"id":"1","type":"complete"}`), KindProtocol, "jobsSubscribe", "stash ended the subscription", false},
		{"broken job event", ProtoTransportWS, acked(ProtoTransportWS,
			`{"payload":{"data":{"jobsSubscribe":{"type":"ADD","job":null}}},"id":"1","type":"next"}`), KindProtocol, "jobsSubscribe", "decoding a job event", false},
		{"invalid close", ProtoTransportWS, func(p *wsPeer) {
			p.ackAndConfirm(ProtoTransportWS)
			_ = p.c.Close(4400, "Invalid message received")
		}, KindProtocol, "subscribe", "stash closed the websocket (4400 Invalid message received)", false},
		{"key echoed", ProtoTransportWS, acked(ProtoTransportWS,
			`{"payload":[{"message":"bad key `+testKey+`"}],"id":"2","type":"error"}`), KindGraphQL, "loggingSubscribe", "bad key <redacted>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, wsStub(t, tt.proto, tt.play))
			sub, err := c.Subscribe(t.Context(), SubscribeOptions{Protocol: tt.proto})
			if !tt.atStart {
				if err != nil {
					t.Fatalf("Subscribe: %v", err)
				}
				defer sub.Close()
				select {
				case <-sub.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("Done not closed")
				}
				err = sub.Err()
			}
			e := wantKind(t, err, tt.kind)
			if e.Op != tt.op || e.Msg != tt.want {
				t.Errorf("Op %q Msg %q, want %q %q", e.Op, e.Msg, tt.op, tt.want)
			}
			noSecret(t, "error", err.Error())
		})
	}
}

func TestSubscribe_MessageTooBig(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, wsStub(t, ProtoTransportWS, func(p *wsPeer) {
		p.ackAndConfirm(ProtoTransportWS)
		big := `{"payload":{"data":{"loggingSubscribe":[{"message":"` + strings.Repeat("x", 4096) + `"}]}},"id":"2","type":"next"}`
		// The client hangs up partway through: the write may fail.
		_ = p.c.Write(context.Background(), websocket.MessageText, []byte(big))
		p.read()
	}), func(o *Options) { o.MaxBody = 1024 })
	sub, err := c.Subscribe(t.Context(), SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	<-sub.Done()
	e := wantKind(t, sub.Err(), KindProtocol)
	if e.Msg != "a message larger than 1024 bytes, refused" {
		t.Errorf("Msg %q", e.Msg)
	}
}

func TestSubscribe_KeepAlives(t *testing.T) {
	t.Parallel()
	t.Run("silent socket ends", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, wsStub(t, ProtoGraphQLWS, func(p *wsPeer) {
			p.ackAndConfirm(ProtoGraphQLWS)
			p.read() // no ka from here on
		}))
		sub, err := c.Subscribe(t.Context(), SubscribeOptions{Protocol: ProtoGraphQLWS, Idle: 150 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		<-sub.Done()
		e := wantKind(t, sub.Err(), KindUnavailable)
		if !strings.HasPrefix(e.Msg, "no message from stash for ") {
			t.Errorf("Msg %q", e.Msg)
		}
	})
	t.Run("ka keeps it open", func(t *testing.T) {
		t.Parallel()
		// Generous margins: a loaded machine running -race can stall a
		// goroutine for half a second.
		const idle = time.Second
		stop, spanned := make(chan struct{}), make(chan struct{})
		c := newTestClient(t, wsStub(t, ProtoGraphQLWS, func(p *wsPeer) {
			if !p.ackAndConfirm(ProtoGraphQLWS) {
				return
			}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			first, told := time.Now(), false
			for {
				select {
				case <-stop:
					p.send(`{"payload":{"data":{"loggingSubscribe":[{"time":"2024-03-10T12:00:00.5+02:00","level":"Error","message":"done"}]}},"id":"2","type":"data"}`)
					p.read()
					return
				case <-tick.C:
					if !p.send(`{"type":"ka"}`) {
						return
					}
					// The stub says when its ka alone have spanned three
					// idle periods.
					if !told && time.Since(first) > 3*idle {
						close(spanned)
						told = true
					}
				}
			}
		}))
		sub, err := c.Subscribe(t.Context(), SubscribeOptions{Protocol: ProtoGraphQLWS, Idle: idle})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		select {
		case <-sub.Done():
			t.Fatalf("ended: %v", sub.Err())
		case <-spanned:
		}
		close(stop)
		if e := <-sub.Logs(); e.Message != "done" {
			t.Errorf("entry %+v", e)
		}
	})
	t.Run("transport-ws pings and pongs", func(t *testing.T) {
		t.Parallel()
		pinged := make(chan string, 1)
		c := newTestClient(t, wsStub(t, ProtoTransportWS, func(p *wsPeer) {
			p.ackAndConfirm(ProtoTransportWS)
			p.send(`{"type":"ping","payload":{}}`)
			p.expect("pong")
			p.expect("ping") // the client's own, within Idle/3
			p.send(`{"type":"pong"}`)
			pinged <- "ok"
			p.read()
		}))
		sub, err := c.Subscribe(t.Context(), SubscribeOptions{Idle: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		select {
		case <-pinged:
		case <-sub.Done():
			t.Fatalf("ended: %v", sub.Err())
		}
	})
}

func TestWireMsg_Decode(t *testing.T) {
	t.Parallel()
	var m wireMsg
	// A big batch first, so the small one after reuses its elements.
	if err := m.decode([]byte(`{"payload":{"data":{"loggingSubscribe":[` +
		`{"time":"2024-03-10T12:00:00.000000001+02:00","level":"Error","message":"one"},` +
		`{"time":"2024-03-10T12:00:00.000000002+02:00","level":"Trace","message":"two"}]}},"id":"2","type":"next"}`)); err != nil {
		t.Fatal(err)
	}
	if len(m.Payload.Data.Logs) != 2 || m.Type != msgNext || m.ID != "2" {
		t.Fatalf("decoded %+v", m)
	}
	if err := m.decode([]byte(`{"type":"next","id":"2","payload":{"data":{"loggingSubscribe":[{"level":"Fatal"}]}}}`)); err != nil {
		t.Fatal(err)
	}
	w := m.Payload.Data.Logs[0]
	if w.Level.level != "Fatal" || w.Level.rank <= LogError.rank() || w.Message != nil || w.Time != nil {
		t.Fatalf("reused entry kept stale fields: %+v", w)
	}
	if _, err := w.entry(); err == nil {
		t.Error("an entry without message and time decoded")
	}

	tests := []struct {
		raw  string
		typ  msgType
		errs []string
	}{
		{`{"type":"ka"}`, msgKeepAlive, nil},
		{`{"type":"connection_ack","payload":{}}`, msgAck, nil},
		{`{"type":"something_new","payload":[1,2]}`, msgUnknown, nil},
		{`{"type":"ping","payload":"x"}`, msgPing, nil},
		{`{"payload":[{"message":"x"},{"message":"y"}],"id":"1","type":"error"}`, msgError, []string{"x", "y"}},
		{`{"type":"error","id":"1","payload":{"message":"z"}}`, msgError, []string{"z"}},
		{`{"type":"connection_error","payload":{"message":"no"}}`, msgConnectionError, []string{"no"}},
	}
	for _, tt := range tests {
		if err := m.decode([]byte(tt.raw)); err != nil {
			t.Errorf("%s: %v", tt.raw, err)
			continue
		}
		var msgs []string
		for _, e := range m.errorList() {
			msgs = append(msgs, e.Message)
		}
		if m.Type != tt.typ || !slices.Equal(msgs, tt.errs) {
			t.Errorf("%s: type %v errors %v", tt.raw, m.Type, msgs)
		}
	}
	for _, bad := range []string{`not json`, `[]`, `{"type":"ka","id":5}`, `{"type":"next","payload":{"data":{"loggingSubscribe":{}}}}`} {
		if err := m.decode([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

func TestJobQueue_KeepsAddAndRemove(t *testing.T) {
	t.Parallel()
	e := func(typ JobEventType, id string, p float64) JobEvent {
		return JobEvent{Type: typ, Job: Job{ID: id, Status: JobRunning, Progress: &p}}
	}
	str := func(evs []JobEvent) string {
		var b strings.Builder
		for _, ev := range evs {
			fmt.Fprintf(&b, "%s%s@%g ", ev.Type[:1], ev.Job.ID, *ev.Job.Progress)
		}
		return strings.TrimSpace(b.String())
	}
	tests := []struct {
		name  string
		limit int
		in    []JobEvent
		want  string
		lost  int
	}{
		{"room for all", 4, []JobEvent{e(JobAdd, "1", 0), e(JobUpdate, "1", .5), e(JobRemove, "1", 1)}, "A1@0 U1@0.5 R1@1", 0},
		{"newest update overwrites", 2, []JobEvent{e(JobAdd, "1", 0), e(JobUpdate, "1", .1), e(JobUpdate, "1", .2), e(JobUpdate, "1", .3)}, "A1@0 U1@0.3", 2},
		{"add and remove past the limit", 1, []JobEvent{e(JobAdd, "1", 0), e(JobAdd, "2", 0), e(JobUpdate, "1", .5), e(JobRemove, "1", 1), e(JobRemove, "2", 1)}, "A1@0 A2@0 R1@1 R2@1", 1},
		{"no update of that job queued", 1, []JobEvent{e(JobUpdate, "1", .1), e(JobUpdate, "2", .1)}, "U1@0.1", 1},
		{"never past its own remove", 2, []JobEvent{e(JobUpdate, "1", .1), e(JobRemove, "1", 1), e(JobUpdate, "1", .9)}, "U1@0.1 R1@1", 1},
	}
	for _, tt := range tests {
		var q jobQueue
		q.init(tt.limit)
		lost := 0
		for _, ev := range tt.in {
			if q.push(ev) {
				lost++
			}
		}
		q.end()
		var out []JobEvent
		for {
			ev, ok, ended := q.pop()
			if !ok {
				if !ended {
					t.Fatalf("%s: empty but not ended", tt.name)
				}
				break
			}
			out = append(out, ev)
		}
		if got := str(out); got != tt.want || lost != tt.lost {
			t.Errorf("%s: %s (%d lost), want %s (%d lost)", tt.name, got, lost, tt.want, tt.lost)
		}
	}
}

func TestSubscription_PumpDrainsBeforeClosingJobs(t *testing.T) {
	t.Parallel()
	s := &Subscription{jobs: make(chan JobEvent), quit: make(chan struct{})}
	s.queue.init(8)
	for _, id := range []string{"1", "2", "3"} {
		s.queue.push(JobEvent{Type: JobAdd, Job: Job{ID: id}})
	}
	s.queue.end() // the socket ended with three events unread
	s.wg.Add(1)
	go s.pump()
	var ids []string
	for ev := range s.jobs {
		ids = append(ids, ev.Job.ID)
	}
	s.wg.Wait()
	if !slices.Equal(ids, []string{"1", "2", "3"}) {
		t.Errorf("delivered %v", ids)
	}
}

func TestSubscription_ErrWhileOpenIsNil(t *testing.T) {
	t.Parallel()
	s := &Subscription{done: make(chan struct{})}
	s.cause = errors.New("recorded early")
	if s.Err() != nil {
		t.Error("Err before Done")
	}
	close(s.done)
	if s.Err() == nil {
		t.Error("Err after Done")
	}
	s.cause = errClosed
	if s.Err() != nil {
		t.Error("Err after Close")
	}
}

func TestSubscribe_URLAndTransport(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"http://localhost:9999":               "ws://localhost:9999/graphql",
		"https://stash.lan/stash/":            "wss://stash.lan/stash/graphql",
		"https://admin:pw@stash.lan:443/deep": "wss://admin:pw@stash.lan:443/deep/graphql", // basic auth, as for HTTP
	} {
		c := newTestClient(t, raw)
		if c.wsURL != want {
			t.Errorf("%s: websocket URL %q, want %q", raw, c.wsURL, want)
		}
		noSecret(t, "websocket URL", c.wsURL)
		// One transport for the API, files and the socket: the same proxy
		// settings and dialer; no http.Client timeout, which would cut the
		// socket (the handshake is bounded by a context instead).
		tr, ok := c.wsHTTP.Transport.(*http.Transport)
		if !ok || tr != c.files.Transport || tr != c.api.base || tr.Proxy == nil || c.wsHTTP.Timeout != 0 {
			t.Errorf("%s: websocket client %+v", raw, c.wsHTTP)
		}
	}
}

func TestSubscribe_LoginRedirectIsAuth(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login?returnURL=%2Fgraphql", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	_, err := newTestClient(t, srv.URL).Subscribe(t.Context(), SubscribeOptions{})
	if e := wantKind(t, err, KindAuth); e.Status != http.StatusFound || e.Msg != "HTTP 302 to the login page" {
		t.Errorf("error %v", err)
	}
}
