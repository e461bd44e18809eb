package stashtest

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"
)

// The two GraphQL-over-websocket subprotocols Stash's gqlgen serves.
const (
	// ProtoTransportWS is graphql-transport-ws (the graphql-ws library's
	// protocol): subscribe/next/complete, ping/pong, close codes 44xx.
	ProtoTransportWS = "graphql-transport-ws"
	// ProtoGraphQLWS is the older graphql-ws (subscriptions-transport-ws)
	// protocol: start/data/stop, ka keep-alives. Stash speaks it to a client
	// that asks for no subprotocol.
	ProtoGraphQLWS = "graphql-ws"
)

// Close codes of graphql-transport-ws, from its protocol description.
const (
	closeInvalidMessage   websocket.StatusCode = 4400
	closeSubscriberExists websocket.StatusCode = 4409
	closeTooManyInits     websocket.StatusCode = 4429
)

// The JobStatusUpdateType values.
const (
	updateAdd    = "ADD"
	updateUpdate = "UPDATE"
	updateRemove = "REMOVE"
)

// Upgrade is one websocket upgrade request on /graphql, whatever the fake
// answered, so tests can check where the key went.
type Upgrade struct {
	Seq        int64     // place in the server's order log (see Server.Seq)
	Time       time.Time // fake clock at arrival
	RawQuery   string    // the URL's query string, which must never carry the key
	Offered    []string  // subprotocols the client asked for, in its order
	Protocol   string    // the protocol spoken; "" when refused
	KeyPresent bool      // an ApiKey header (or apikey parameter) was sent
	KeyValid   bool
	Status     int // 101 when upgraded, else the refusal's status
}

// SubscribeCall is one operation a client started on a websocket
// (graphql-transport-ws subscribe, graphql-ws start).
type SubscribeCall struct {
	Seq           int64 // place in the order log (see Server.Seq): when it was registered, or refused
	Time          time.Time
	Protocol      string
	ID            string
	Operation     string // "subscription", "query" or "mutation"; "" if unparsed
	OperationName string
	Fields        []string // top-level field names
	Query         string
	Variables     map[string]any
	KeyPresent    bool // of the socket's upgrade request
	KeyValid      bool
	Errors        []string // messages of the error answered; nil if accepted
	Stopped       bool     // the client sent complete/stop for it
}

// wsState is the server's websocket bookkeeping, under s.mu.
type wsState struct {
	conns    map[*wsConn]struct{}
	subs     []*wsSub
	epoch    int // bumped by Down, Restart and close: older sockets are cut
	upgrades []*Upgrade
	calls    []*SubscribeCall
	changed  chan struct{} // closed and replaced when conns changes
}

// wsSub is one live subscription.
type wsSub struct {
	conn  *wsConn
	id    string
	field string
	op    *ast.OperationDefinition
	vars  map[string]any
	call  *SubscribeCall
}

// wsConn is one accepted websocket. Its handler goroutine reads; a writer
// goroutine drains an outgoing queue, so the server only ever appends to
// the queue while holding s.mu and never writes to a socket under it.
type wsConn struct {
	s       *Server
	c       *websocket.Conn
	proto   string
	base    string // scheme and host the client used, for URLs in answers
	up      *Upgrade
	closing bool // read loop only: a close is queued, ignore the rest
	acked   bool // read loop only
	qmu     sync.Mutex
	queue   []wsOut
	wake    chan struct{}
	done    chan struct{}
}

// wsOut is one queued write: a message, a keep-alive start, or a close.
type wsOut struct {
	msg     []byte
	startKA bool
	code    websocket.StatusCode
	reason  string
}

// WithKeepAlive sets how often graphql-ws sockets get a "ka" after the one
// right after connection_ack. Stash's is 10 s, the default.
func WithKeepAlive(d time.Duration) Option { return func(s *Server) { s.keepAlive = d } }

// WithLogBatch sets how often at most log entries are pushed to
// loggingSubscribe. Stash's is 1 s, the default; 0 pushes every entry
// within the call that logs it.
func WithLogBatch(d time.Duration) Option { return func(s *Server) { s.logBatch = d } }

// WithoutWebsocket answers every websocket upgrade with this HTTP status
// (404, 400, 502...), as a reverse proxy that does not pass upgrades does.
func WithoutWebsocket(status int) Option { return func(s *Server) { s.noUpgrade = status } }

// WithAutoTick makes jobs advance on their own, one tick every d, as real
// Stash works; findJob polls then no longer tick.
func WithAutoTick(d time.Duration) Option { return func(s *Server) { s.autoTick = d } }

// WithTraceNoise logs n Trace lines at every tick, as a Stash at Trace
// level does, so clients prove they drop them cheaply.
func WithTraceNoise(n int) Option { return func(s *Server) { s.noise = n } }

// Upgrades lists every websocket upgrade request in arrival order.
func (s *Server) Upgrades() []Upgrade {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Upgrade, len(s.ws.upgrades))
	for i, u := range s.ws.upgrades {
		out[i] = *u
		out[i].Offered = slices.Clone(u.Offered)
	}
	return out
}

// Subscriptions lists every operation started over a websocket, accepted or
// not, in arrival order.
func (s *Server) Subscriptions() []SubscribeCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SubscribeCall, len(s.ws.calls))
	for i, c := range s.ws.calls {
		out[i] = *c
	}
	return out
}

// OpenWebsockets is how many websockets are open now.
func (s *Server) OpenWebsockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ws.conns)
}

// AwaitWebsockets waits until exactly n websockets are open, so tests can
// wait for a client to connect or to go away without sleeping.
func (s *Server) AwaitWebsockets(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		open, changed := len(s.ws.conns), s.ws.changed
		s.mu.Unlock()
		if open == n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// isUpgrade reports whether the request asks for a websocket, as gqlgen
// decides it: any Upgrade header.
func isUpgrade(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

// serveWebsocket is a websocket upgrade on /graphql: the proxy refusal of
// WithoutWebsocket, the key check (Stash checks only here), then the
// protocol until the socket ends.
func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	present, valid := s.checkKey(r)
	offered := headerTokens(r.Header.Values("Sec-WebSocket-Protocol"))
	s.mu.Lock()
	up := &Upgrade{Seq: s.nextSeq(), Time: s.now, RawQuery: r.URL.RawQuery, Offered: offered, KeyPresent: present, KeyValid: valid}
	s.ws.upgrades = append(s.ws.upgrades, up)
	f := s.takeFault(false, nil, r.URL.Path, false)
	s.mu.Unlock()
	setStatus := func(code int) {
		s.mu.Lock()
		up.Status = code
		s.mu.Unlock()
	}
	if f != nil {
		// A fault with Path "/graphql": what sits in front of Stash
		// answers the upgrade (a 500, a dropped connection), or holds it
		// until the test releases it (then it goes on as usual).
		sw := &statusWriter{ResponseWriter: w}
		if s.applyFault(sw, r, f, "") {
			setStatus(sw.status)
			return
		}
	}

	s.mu.Lock()
	noUpgrade, closed, epoch := s.noUpgrade, s.isClosed, s.ws.epoch
	if !closed && noUpgrade == 0 && valid {
		s.wg.Add(1)
	}
	s.mu.Unlock()

	switch {
	case closed:
		return
	case noUpgrade != 0:
		// Statuses are recorded before answering, so a client that has its
		// answer also finds it in the log.
		setStatus(noUpgrade)
		http.Error(w, http.StatusText(noUpgrade), noUpgrade)
		return
	case !valid:
		status := http.StatusUnauthorized
		if s.isForbidden() {
			status = http.StatusForbidden
		}
		setStatus(status)
		s.denyUnauthorized(w)
		return
	}
	defer s.wg.Done()

	// gqlgen lets gorilla pick the first protocol the client offers that it
	// knows; none at all means graphql-ws.
	proto := ""
	for _, p := range offered {
		if p == ProtoTransportWS || p == ProtoGraphQLWS {
			proto = p
			break
		}
	}
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true} // Stash accepts any origin
	spoken := ProtoGraphQLWS
	if proto != "" {
		opts.Subprotocols = []string{proto}
		spoken = proto
	}
	s.mu.Lock()
	up.Status = http.StatusSwitchingProtocols
	up.Protocol = spoken
	s.mu.Unlock()
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		s.mu.Lock()
		up.Status, up.Protocol = http.StatusBadRequest, ""
		s.mu.Unlock()
		return
	}
	wc := &wsConn{s: s, c: c, proto: spoken, base: "http://" + r.Host, up: up,
		wake: make(chan struct{}, 1), done: make(chan struct{})}

	s.mu.Lock()
	if s.isClosed || s.ws.epoch != epoch {
		// Down, Restart or close ran while the handshake was under way.
		s.mu.Unlock()
		_ = c.CloseNow()
		return
	}
	s.ws.conns[wc] = struct{}{}
	s.wsChanged()
	s.mu.Unlock()

	var writer sync.WaitGroup
	writer.Go(func() { wc.writeLoop(s.keepAlive) })
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			break
		}
		if !wc.closing {
			wc.handle(data)
		}
	}
	close(wc.done)
	writer.Wait()
	_ = c.CloseNow()

	s.mu.Lock()
	s.ws.subs = slices.DeleteFunc(s.ws.subs, func(sub *wsSub) bool { return sub.conn == wc })
	delete(s.ws.conns, wc)
	s.wsChanged()
	s.mu.Unlock()
}

// headerTokens splits comma-separated header values.
func headerTokens(values []string) []string {
	var out []string
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// wsChanged wakes AwaitWebsockets. Called with s.mu held.
func (s *Server) wsChanged() {
	close(s.ws.changed)
	s.ws.changed = make(chan struct{})
}

// dropWebsockets forgets every open websocket and its subscriptions and
// returns the sockets for closeWebsockets, which must run without s.mu.
// Called with s.mu held.
func (s *Server) dropWebsockets() []*wsConn {
	s.ws.epoch++
	s.ws.subs = nil
	conns := make([]*wsConn, 0, len(s.ws.conns))
	for c := range s.ws.conns {
		conns = append(conns, c)
	}
	return conns
}

// DropSockets cuts every open websocket without a close frame, as a
// reverse proxy that restarts or a connection that breaks does, and
// returns how many it cut. Stash itself stays up: clients may connect and
// subscribe again at once.
func (s *Server) DropSockets() int {
	s.mu.Lock()
	conns := s.dropWebsockets()
	s.mu.Unlock()
	closeWebsockets(conns)
	return len(conns)
}

// closeWebsockets cuts sockets without a close handshake, as a dropped
// connection or a dying process does.
func closeWebsockets(conns []*wsConn) {
	for _, c := range conns {
		_ = c.c.CloseNow()
	}
}

// wsMessage is a protocol message, in gqlgen's field order.
type wsMessage struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
}

// handle answers one client message. The read loop calls it, so messages
// are handled in order: a subscription is registered before the next
// message is read.
func (wc *wsConn) handle(data []byte) {
	var m wsMessage
	if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
		wc.protocolError("invalid message received", closeInvalidMessage)
		return
	}
	tws := wc.proto == ProtoTransportWS
	switch {
	case m.Type == "connection_init":
		if wc.acked {
			wc.protocolError("too many initialisation requests", closeTooManyInits)
			return
		}
		wc.acked = true
		wc.send(wsOut{msg: encode(wsMessage{Type: "connection_ack"})})
		if !tws {
			// gqlgen sends a ka right after the ack, then every interval.
			wc.send(wsOut{msg: encode(wsMessage{Type: "ka"})})
			wc.send(wsOut{startKA: true})
		}
	case tws && m.Type == "subscribe", !tws && m.Type == "start":
		if !wc.acked {
			// The transport-ws spec asks for 4401 here, but Stash's gqlgen
			// (v0.17.73) closes both protocols with 1002 "unexpected
			// message" (graphql-ws after a connection_error, which it does
			// not send on graphql-transport-ws): be that server.
			wc.closing = true
			if wc.proto == ProtoGraphQLWS {
				b, _ := json.Marshal(map[string]string{"message": "unexpected message " + m.Type})
				wc.send(wsOut{msg: encode(wsMessage{Type: "connection_error", Payload: b})})
			}
			wc.send(wsOut{code: websocket.StatusProtocolError, reason: "unexpected message"})
			return
		}
		wc.start(m.ID, m.Payload)
	case tws && m.Type == "complete", !tws && m.Type == "stop":
		wc.stop(m.ID)
	case tws && m.Type == "ping":
		wc.send(wsOut{msg: encode(wsMessage{Type: "pong", Payload: m.Payload})})
	case tws && m.Type == "pong":
	case !tws && m.Type == "connection_terminate":
		wc.closing = true
		wc.send(wsOut{code: websocket.StatusNormalClosure, reason: "terminated"})
	default:
		wc.protocolError("unexpected message "+m.Type, closeInvalidMessage)
	}
}

// protocolError ends the socket the way each protocol says: a 44xx close
// for graphql-transport-ws; for graphql-ws, whose description names no
// codes, what gqlgen does (connection_error, then close 1002).
func (wc *wsConn) protocolError(msg string, code websocket.StatusCode) {
	wc.closing = true
	if wc.proto == ProtoTransportWS {
		reason := map[websocket.StatusCode]string{
			closeInvalidMessage: "Invalid message received",
			closeTooManyInits:   "Too many initialisation requests",
		}[code]
		wc.send(wsOut{code: code, reason: reason})
		return
	}
	b, _ := json.Marshal(map[string]string{"message": msg})
	wc.send(wsOut{msg: encode(wsMessage{Type: "connection_error", Payload: b})})
	wc.send(wsOut{code: websocket.StatusProtocolError, reason: "unexpected message"})
}

// startPayload is the payload of subscribe and start.
type startPayload struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
}

// start validates an operation like the HTTP endpoint does; a subscription
// is registered for events, a query or mutation is answered at once, as
// gqlgen does over a websocket.
func (wc *wsConn) start(id string, payload json.RawMessage) {
	s := wc.s
	var p startPayload
	decodeErr := json.Unmarshal(payload, &p)
	call := &SubscribeCall{Protocol: wc.proto, ID: id, Query: p.Query, OperationName: p.OperationName,
		KeyPresent: wc.up.KeyPresent, KeyValid: wc.up.KeyValid}
	var vars map[string]any
	if decodeErr == nil && len(p.Variables) > 0 && string(p.Variables) != "null" {
		decodeErr = json.Unmarshal(p.Variables, &vars)
	}
	call.Variables = vars

	var errs gqlerror.List
	var op *ast.OperationDefinition
	var coerced map[string]any
	if decodeErr != nil {
		errs = gqlerror.List{gqlerror.Errorf("invalid json")}
	} else if entry := s.docs.get(p.Query); len(entry.errs) > 0 {
		errs = entry.errs
	} else {
		var err error
		op, err = pickOperation(entry.doc, p.OperationName)
		if err == nil {
			call.Operation = string(op.Operation)
			call.Fields = topFieldNames(op)
			coerced, err = validator.VariableValues(Schema, op, vars)
			if err == nil {
				err = checkEnumCase(op, coerced)
			}
		}
		if err != nil {
			errs = withCode(asList(err), "GRAPHQL_VALIDATION_FAILED")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	call.Time, call.Seq = s.now, s.nextSeq()
	s.ws.calls = append(s.ws.calls, call)
	if len(errs) > 0 {
		for _, e := range errs {
			call.Errors = append(call.Errors, e.Message)
		}
		// gqlgen: an error message carrying the list, then complete.
		b, _ := json.Marshal(errs)
		wc.send(wsOut{msg: encode(wsMessage{Type: "error", ID: id, Payload: b})})
		wc.send(wsOut{msg: encode(wsMessage{Type: "complete", ID: id})})
		return
	}
	if op.Operation != ast.Subscription {
		wc.sendData(id, s.execute(op, coerced, wc.base))
		wc.send(wsOut{msg: encode(wsMessage{Type: "complete", ID: id})})
		return
	}
	for _, sub := range s.ws.subs {
		if sub.conn == wc && sub.id == id && wc.proto == ProtoTransportWS {
			wc.closing = true
			wc.send(wsOut{code: closeSubscriberExists, reason: "Subscriber for " + id + " already exists"})
			return
		}
	}
	s.ws.subs = append(s.ws.subs, &wsSub{conn: wc, id: id, field: call.Fields[0], op: op, vars: coerced, call: call})
}

// stop ends a subscription at the client's request; gqlgen confirms with
// complete even where the protocol says it need not.
func (wc *wsConn) stop(id string) {
	s := wc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	s.ws.subs = slices.DeleteFunc(s.ws.subs, func(sub *wsSub) bool {
		if sub.conn == wc && sub.id == id {
			sub.call.Stopped = true
			found = true
			return true
		}
		return false
	})
	if found {
		wc.send(wsOut{msg: encode(wsMessage{Type: "complete", ID: id})})
	}
}

// sendData queues one result for an operation: next or data.
func (wc *wsConn) sendData(id string, payload []byte) {
	t := "next"
	if wc.proto == ProtoGraphQLWS {
		t = "data"
	}
	wc.send(wsOut{msg: encode(wsMessage{Type: t, ID: id, Payload: payload})})
}

// send queues a write; it never blocks.
func (wc *wsConn) send(o wsOut) {
	wc.qmu.Lock()
	wc.queue = append(wc.queue, o)
	wc.qmu.Unlock()
	select {
	case wc.wake <- struct{}{}:
	default:
	}
}

func encode(m wsMessage) []byte {
	b, _ := json.Marshal(m)
	return b
}

// writeLoop writes queued messages in order, and graphql-ws keep-alives
// once the ack asked for them.
func (wc *wsConn) writeLoop(keepAlive time.Duration) {
	var ka <-chan time.Time
	ctx := context.Background()
	for {
		select {
		case <-wc.done:
			return
		case <-ka:
			if wc.c.Write(ctx, websocket.MessageText, []byte(`{"type":"ka"}`)) != nil {
				_ = wc.c.CloseNow()
				return
			}
		case <-wc.wake:
			wc.qmu.Lock()
			items := wc.queue
			wc.queue = nil
			wc.qmu.Unlock()
			for _, it := range items {
				switch {
				case it.code != 0:
					_ = wc.c.Close(it.code, it.reason)
					return
				case it.startKA:
					t := time.NewTicker(keepAlive)
					defer t.Stop()
					ka = t.C
				default:
					if wc.c.Write(ctx, websocket.MessageText, it.msg) != nil {
						_ = wc.c.CloseNow()
						return
					}
				}
			}
		}
	}
}

// pushJob sends a job event to every jobsSubscribe subscriber. Called with
// s.mu held, right where the real job manager notifies its subscribers.
func (s *Server) pushJob(typ string, j *job) {
	s.jobsChanged()
	var value map[string]any
	for _, sub := range s.ws.subs {
		if sub.field != "jobsSubscribe" {
			continue
		}
		if value == nil {
			value = map[string]any{"type": typ, "job": jobValue(j)}
		}
		sub.conn.sendData(sub.id, s.executeEvent(sub.op, sub.vars, value))
	}
}

// autoTicker advances jobs in real time until the server closes.
func (s *Server) autoTicker() {
	defer s.wg.Done()
	t := time.NewTicker(s.autoTick)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			s.mu.Lock()
			s.tick()
			s.mu.Unlock()
		}
	}
}
