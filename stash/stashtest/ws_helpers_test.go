package stashtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawWS speaks a subscription protocol by hand, message by message, so the
// tests see exactly what the fake sends.
type rawWS struct {
	t     testing.TB
	c     *websocket.Conn
	proto string // negotiated; "" when the server chose none
	seq   int
}

// msg is a protocol message as received.
type msg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// dialWS upgrades to a websocket on the fake with the ApiKey header (when
// key is not empty) and these subprotocols.
func dialWS(t testing.TB, s *Server, key string, protos ...string) (*rawWS, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("ApiKey", key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL(), "http")+"/graphql",
		&websocket.DialOptions{HTTPHeader: h, Subprotocols: protos})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &rawWS{t: t, c: c, proto: c.Subprotocol()}, resp, nil
}

// mustDialWS dials and fails the test on error.
func mustDialWS(t testing.TB, s *Server, protos ...string) *rawWS {
	t.Helper()
	ws, _, err := dialWS(t, s, s.APIKey(), protos...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return ws
}

func (w *rawWS) send(typ, id string, payload any) {
	w.t.Helper()
	m := map[string]any{"type": typ}
	if id != "" {
		m["id"] = id
	}
	if payload != nil {
		m["payload"] = payload
	}
	b, err := json.Marshal(m)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("write %s: %v", typ, err)
	}
}

// read returns the next message, or the error that ended the socket.
func (w *rawWS) read(timeout time.Duration) (msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		return msg{}, err
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return msg{}, errors.New("not JSON: " + string(b))
	}
	return m, nil
}

// next returns the next message that is not a keep-alive.
func (w *rawWS) next() msg {
	w.t.Helper()
	for {
		m, err := w.read(5 * time.Second)
		if err != nil {
			w.t.Fatalf("read: %v", err)
		}
		if m.Type != "ka" {
			return m
		}
	}
}

// expect reads the next non-keep-alive message and checks its type and id.
func (w *rawWS) expect(typ, id string) msg {
	w.t.Helper()
	m := w.next()
	if m.Type != typ || m.ID != id {
		w.t.Fatalf("got %s id %q payload %s, want %s id %q", m.Type, m.ID, m.Payload, typ, id)
	}
	return m
}

// expectClose reads until the socket ends and checks the close code the
// fake sent (-1: cut without a close frame).
func (w *rawWS) expectClose(code websocket.StatusCode) {
	w.t.Helper()
	for {
		m, err := w.read(5 * time.Second)
		if err == nil {
			if m.Type == "ka" {
				continue
			}
			w.t.Fatalf("got %s %s, want the socket to close with %d", m.Type, m.Payload, code)
		}
		if got := websocket.CloseStatus(err); got != code {
			w.t.Fatalf("socket ended with %v (status %d), want %d", err, got, code)
		}
		return
	}
}

func (w *rawWS) tws() bool { return w.proto == ProtoTransportWS }

// init does connection_init and reads the ack (and graphql-ws's first ka).
func (w *rawWS) init() {
	w.t.Helper()
	w.send("connection_init", "", map[string]any{})
	w.expect("connection_ack", "")
}

// start starts an operation and returns its id.
func (w *rawWS) start(query string) string {
	w.t.Helper()
	w.seq++
	id := strconv.Itoa(w.seq)
	typ := "start"
	if w.tws() {
		typ = "subscribe"
	}
	w.send(typ, id, map[string]any{"query": query})
	return id
}

// dataType is the message type carrying results.
func (w *rawWS) dataType() string {
	if w.tws() {
		return "next"
	}
	return "data"
}

// sync runs a query on the socket and waits for its answer: the fake
// handles messages in order, so everything sent before is registered, and
// everything it pushed before is read first, by whoever reads.
func (w *rawWS) sync() {
	w.t.Helper()
	id := w.start(`query Sync { __typename }`)
	w.expect(w.dataType(), id)
	w.expect("complete", id)
}

// event reads the next result for id and decodes its data.
func (w *rawWS) event(id string) map[string]any {
	w.t.Helper()
	m := w.expect(w.dataType(), id)
	var p struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || p.Errors != nil {
		w.t.Fatalf("payload %s: %v", m.Payload, err)
	}
	return p.Data
}

const (
	jobsQ = `subscription Jobs { jobsSubscribe { type job { id status description progress addTime } } }`
	logsQ = `subscription Logs { loggingSubscribe { time level message } }`
)

// subscribed connects, inits and subscribes to query, waiting until the
// subscription is registered.
func subscribed(t testing.TB, s *Server, query string, protos ...string) (*rawWS, string) {
	t.Helper()
	w := mustDialWS(t, s, protos...)
	w.init()
	id := w.start(query)
	w.sync()
	return w, id
}

// jobEvent is one jobsSubscribe event, flattened for comparison.
type jobEvent struct {
	Type, ID, Status string
	Progress         any
}

func (w *rawWS) jobEvent(id string) jobEvent {
	w.t.Helper()
	d := w.event(id)
	return jobEvent{
		Type: str(dig(d, "jobsSubscribe", "type")), ID: str(dig(d, "jobsSubscribe", "job", "id")),
		Status: str(dig(d, "jobsSubscribe", "job", "status")), Progress: dig(d, "jobsSubscribe", "job", "progress"),
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
