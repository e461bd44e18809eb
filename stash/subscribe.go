package stash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The subprotocols Stash serves subscriptions in.
const (
	// ProtoTransportWS is graphql-transport-ws, offered first.
	ProtoTransportWS = "graphql-transport-ws"
	// ProtoGraphQLWS is the older graphql-ws (subscriptions-transport-ws),
	// which Stash also speaks when no subprotocol is agreed.
	ProtoGraphQLWS = "graphql-ws"
)

// JobEventType is Stash's JobStatusUpdateType.
type JobEventType string

const (
	JobAdd    JobEventType = "ADD"    // queued (READY); a scan arrives as this within milliseconds
	JobUpdate JobEventType = "UPDATE" // status change or progress, at most about every 100 ms a job
	JobRemove JobEventType = "REMOVE" // ended, with its final status
)

// JobEvent is one jobsSubscribe push. Job carries only what the
// subscription asks for: ID, Status, Description, Progress and AddTime.
type JobEvent struct {
	Type JobEventType
	Job  Job
}

// LogLevel is Stash's LogLevel enum.
type LogLevel string

const (
	LogTrace    LogLevel = "Trace"
	LogDebug    LogLevel = "Debug"
	LogInfo     LogLevel = "Info"
	LogProgress LogLevel = "Progress"
	LogWarning  LogLevel = "Warning"
	LogError    LogLevel = "Error"
)

// rank orders levels. A level this client does not know ranks above Error,
// so a new severity in a later Stash is kept rather than silently lost.
func (l LogLevel) rank() int {
	switch l {
	case LogTrace:
		return 0
	case LogDebug:
		return 1
	case LogInfo:
		return 2
	case LogProgress:
		return 3
	case LogWarning:
		return 4
	case LogError:
		return 5
	}
	return 6
}

// LogEntry is one line of Stash's log. Time is Stash's clock, with
// nanoseconds; entries reach us about a second after they were logged.
type LogEntry struct {
	Time    time.Time
	Level   LogLevel
	Message string
}

// SubscribeOptions configure Subscribe. The zero value is what a run wants.
type SubscribeOptions struct {
	// MinLevel drops log entries below it as soon as they are decoded: a
	// Stash at Trace level pushes a lot, and a run keeps only its warnings
	// and errors. Zero means LogWarning; LogTrace keeps everything.
	MinLevel LogLevel
	// Protocol forces one subprotocol (tests). Zero offers
	// graphql-transport-ws, then graphql-ws.
	Protocol string
	// JobBuffer is how many job events may wait for the reader of Jobs
	// before progress UPDATEs are dropped. Zero means 64.
	JobBuffer int
	// LogBuffer is how many log entries may wait for the reader of Logs
	// before new ones are dropped. Zero means 256.
	LogBuffer int
	// Idle is how long the socket may stay silent before it counts as
	// dead. Stash sends graphql-ws keep-alives every 10 s; on
	// graphql-transport-ws the client pings every Idle/3. Zero means 30 s.
	Idle time.Duration
}

// Drops counts what a Subscription threw away because its reader was slow.
type Drops struct {
	JobUpdates int64 // UPDATE events dropped or overwritten by a newer one
	LogEntries int64 // entries at or above MinLevel dropped
}

// Subscription is one websocket to Stash carrying jobsSubscribe and
// loggingSubscribe. Events are read from Jobs and Logs; the socket reader
// never waits for them.
//
// Jobs never loses an ADD or a REMOVE: those queue without bound (Stash has
// one per job), while progress UPDATEs beyond JobBuffer replace an older
// UPDATE of the same job, or are dropped, and counted. Logs drops entries
// when LogBuffer is full, and counts them. Both channels are closed once
// the socket has ended and what it delivered has been read (Logs: at once,
// its buffer still readable), or at Close.
//
// What the socket cannot tell: an event pushed while Subscribe was starting
// may be missed, and Stash itself drops events for a subscriber that falls
// far behind. Callers that must not miss a job read the queue (JobQueue)
// once after Subscribe returns, and again whenever Done closes.
type Subscription struct {
	c     *Client
	conn  *websocket.Conn
	proto string

	minRank int
	jobs    chan JobEvent
	logs    chan LogEntry
	queue   jobQueue
	drops   struct{ updates, logs atomic.Int64 }

	lastRead atomic.Int64 // unix nanoseconds of the latest message
	idle     time.Duration

	mu       sync.Mutex
	cause    error // first reason the socket ended; errClosed after Close
	closing  bool  // a stop and close are under way: read errors are ours
	done     chan struct{}
	quit     chan struct{} // closed by Close: stop delivering
	quitOnce sync.Once
	shutOnce sync.Once
	wg       sync.WaitGroup

	// Reader goroutine only: the message buffer, reused, and what decoding
	// leaves behind.
	buf  bytes.Buffer
	wire wireMsg
}

// errClosed marks an end the caller asked for.
var errClosed = errors.New("subscription closed")

// ErrUpgradeRefused is in the chain of the error Subscribe returns when the
// websocket upgrade was answered with an HTTP status: a reverse proxy that
// does not pass upgrades, most of the time. Callers fall back to polling.
var ErrUpgradeRefused = errors.New("websocket upgrade refused")

// The operations sent, under their ids on the socket.
const (
	opSubscribe = "subscribe" // Error.Op of what concerns the socket as a whole

	idJobs = "1"
	idLogs = "2"
	idSync = "3"

	sJobs = `subscription StashgenJobs { jobsSubscribe { type job { id status description progress addTime } } }`
	sLogs = `subscription StashgenLogs { loggingSubscribe { time level message } }`
	// qSync is answered after Stash has handled both subscribe messages
	// before it (it reads one message at a time), so its answer says both
	// were accepted, or brings their errors first.
	qSync = `query StashgenSync { __typename }`
)

// Subscribe opens a websocket to <url>/graphql (ws:// or wss://, the API
// key in the ApiKey header of the upgrade, the HTTP client's proxy
// settings), and subscribes to jobsSubscribe and loggingSubscribe. It
// returns once Stash has accepted both, each step bounded by the client's
// Timeout. The subscription lasts until ctx is done, the socket drops, or
// Close; always call Close.
func (c *Client) Subscribe(ctx context.Context, o SubscribeOptions) (*Subscription, error) {
	if o.MinLevel == "" {
		o.MinLevel = LogWarning
	}
	if o.JobBuffer <= 0 {
		o.JobBuffer = 64
	}
	if o.LogBuffer <= 0 {
		o.LogBuffer = 256
	}
	if o.Idle <= 0 {
		o.Idle = 30 * time.Second
	}
	offer := []string{ProtoTransportWS, ProtoGraphQLWS}
	switch o.Protocol {
	case "":
	case ProtoTransportWS, ProtoGraphQLWS:
		offer = []string{o.Protocol}
	default:
		return nil, fmt.Errorf("subscribe: unknown protocol %q (want %s or %s)", o.Protocol, ProtoTransportWS, ProtoGraphQLWS)
	}

	conn, err := c.dial(ctx, offer)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(c.maxBody)
	s := &Subscription{
		c: c, conn: conn, proto: conn.Subprotocol(),
		minRank: o.MinLevel.rank(),
		jobs:    make(chan JobEvent),
		logs:    make(chan LogEntry, o.LogBuffer),
		idle:    o.Idle,
		done:    make(chan struct{}),
		quit:    make(chan struct{}),
	}
	if s.proto == "" {
		s.proto = ProtoGraphQLWS // what Stash speaks when none was agreed
	}
	s.queue.init(o.JobBuffer)
	s.touch()

	if err := s.handshake(ctx); err != nil {
		_ = conn.CloseNow()
		return nil, err
	}
	s.wg.Add(3)
	go s.readLoop()
	go s.pump()
	go s.keep(ctx)
	return s, nil
}

// dial upgrades to a websocket and turns a refusal into an *Error.
func (c *Client) dial(ctx context.Context, offer []string) (*websocket.Conn, error) {
	h := http.Header{}
	if c.key != "" {
		h.Set("ApiKey", c.key) // only ever here: never in the URL
	}
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, res, err := websocket.Dial(dctx, c.wsURL, &websocket.DialOptions{
		HTTPClient: c.wsHTTP, HTTPHeader: h, Subprotocols: offer,
	})
	if err == nil {
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	e := &Error{Op: opSubscribe, URL: c.endpoint}
	switch {
	case res == nil:
		root := unwrapURLError(err) // the net error, without coder's "failed to ..." layers
		if root == err {
			root = innermost(err)
		}
		e.Kind, e.Err = KindUnavailable, describeNetErr(root)
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		e.Kind, e.Status = KindAuth, res.StatusCode
		e.Msg = fmt.Sprintf("HTTP %d to the websocket upgrade", res.StatusCode)
	case res.StatusCode >= 300 && res.StatusCode < 400 && strings.Contains(res.Header.Get("Location"), "login"):
		e.Kind, e.Status = KindAuth, res.StatusCode
		e.Msg = fmt.Sprintf("HTTP %d to the login page", res.StatusCode)
	case res.StatusCode != http.StatusSwitchingProtocols:
		e.Kind, e.Status, e.Err = KindProtocol, res.StatusCode, ErrUpgradeRefused
		if res.StatusCode >= 500 {
			e.Kind = KindUnavailable
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		e.Msg = fmt.Sprintf("HTTP %d to the websocket upgrade (%s); a reverse proxy in front of Stash may not pass websocket upgrades",
			res.StatusCode, snippet(body, c.key))
	default: // 101, but not a websocket we can use (say, a subprotocol we did not offer)
		e.Kind, e.Status, e.Err = KindProtocol, res.StatusCode, errors.New(clean(innermost(err).Error(), c.key, 200))
	}
	return nil, c.fail(e)
}

// handshake does connection_init, waits for the ack, subscribes, and waits
// until Stash has accepted both subscriptions. Events arriving meanwhile
// are delivered as usual.
func (s *Subscription) handshake(ctx context.Context) error {
	hctx, cancel := context.WithTimeout(ctx, s.c.timeout)
	defer cancel()
	if err := s.send(hctx, wireOut{Type: "connection_init", Payload: emptyObject}); err != nil {
		return s.startErr(ctx, hctx, err, "")
	}
	acked := false
	synced := false
	for !synced {
		if err := s.readMessage(hctx); err != nil {
			late := "the subscriptions were not confirmed"
			if !acked {
				late = "no connection_ack"
			}
			return s.startErr(ctx, hctx, err, late)
		}
		m := &s.wire
		switch m.Type {
		case msgAck:
			if acked {
				continue
			}
			acked = true
			start := "subscribe"
			if s.proto == ProtoGraphQLWS {
				start = "start"
			}
			for _, op := range []struct{ id, query, name string }{
				{idJobs, sJobs, "StashgenJobs"}, {idLogs, sLogs, "StashgenLogs"}, {idSync, qSync, "StashgenSync"},
			} {
				out := wireOut{Type: start, ID: op.id, Payload: operation{Query: op.query, OperationName: op.name}}
				if err := s.send(hctx, out); err != nil {
					return s.startErr(ctx, hctx, err, "")
				}
			}
		case msgComplete:
			if m.ID == idSync {
				synced = true
				continue
			}
			if err := s.handle(); err != nil {
				return err
			}
		default:
			if !acked && (m.Type == msgNext || m.Type == msgError) {
				return s.c.fail(&Error{Op: opSubscribe, URL: s.c.endpoint, Kind: KindProtocol,
					Msg: "stash sent " + m.Type.String() + " before connection_ack"})
			}
			if err := s.handle(); err != nil {
				return err
			}
		}
	}
	return nil
}

// startErr explains why the handshake ended; late says what did not come
// in time, if that was it.
func (s *Subscription) startErr(ctx, hctx context.Context, err error, late string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	if hctx.Err() != nil && late != "" {
		return s.c.fail(&Error{Op: opSubscribe, URL: s.c.endpoint, Kind: KindUnavailable,
			Msg: fmt.Sprintf("%s within stash.timeout (%s)", late, s.c.timeout)})
	}
	return s.socketErr(err)
}

// readMessage reads one message into s.buf and decodes it into s.wire.
func (s *Subscription) readMessage(ctx context.Context) error {
	_, r, err := s.conn.Reader(ctx)
	if err != nil {
		return err
	}
	s.buf.Reset()
	if _, err := s.buf.ReadFrom(r); err != nil {
		return err
	}
	s.touch()
	if err := s.wire.decode(s.buf.Bytes()); err != nil {
		return s.c.fail(&Error{Op: opSubscribe, URL: s.c.endpoint, Kind: KindProtocol,
			Msg: "a message that is not GraphQL over websocket: " + snippet(s.buf.Bytes(), s.c.key)})
	}
	return nil
}

// handle acts on the decoded message in s.wire; an error ends the
// subscription.
func (s *Subscription) handle() error {
	m := &s.wire
	switch m.Type {
	case msgKeepAlive, msgPong, msgAck:
	case msgPing:
		ctx, cancel := context.WithTimeout(context.Background(), s.c.timeout)
		defer cancel()
		return s.send(ctx, wireOut{Type: "pong"})
	case msgNext:
		if len(m.Payload.Errors) > 0 {
			return s.graphQLErr(m.ID, m.Payload.Errors)
		}
		switch m.ID {
		case idJobs:
			return s.deliverJob()
		case idLogs:
			return s.deliverLogs()
		}
	case msgError:
		return s.graphQLErr(m.ID, m.errorList())
	case msgComplete:
		// Stash confirms a stop with complete: only unasked for is it an end.
		if (m.ID == idJobs || m.ID == idLogs) && !s.isClosing() {
			return s.c.fail(&Error{Op: opName(m.ID), URL: s.c.endpoint, Kind: KindProtocol,
				Msg: "stash ended the subscription"})
		}
	case msgConnectionError:
		return s.graphQLErr("", m.errorList())
	}
	return nil // unknown types are ignored: a newer server may send more
}

func opName(id string) string {
	switch id {
	case idJobs:
		return "jobsSubscribe"
	case idLogs:
		return "loggingSubscribe"
	}
	return opSubscribe
}

func (s *Subscription) graphQLErr(id string, errs []wireError) error {
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, clean(e.Message, s.c.key, 300))
	}
	if len(msgs) == 0 {
		msgs = append(msgs, "(no message)")
	}
	return s.c.fail(&Error{Op: opName(id), URL: s.c.endpoint, Kind: KindGraphQL, Msg: strings.Join(msgs, "; ")})
}

func (s *Subscription) deliverJob() error {
	ev, err := s.wire.jobEvent()
	if err != nil {
		return s.c.fail(&Error{Op: "jobsSubscribe", URL: s.c.endpoint, Kind: KindProtocol, Msg: "decoding a job event", Err: err})
	}
	if s.queue.push(ev) {
		s.drops.updates.Add(1)
	}
	return nil
}

func (s *Subscription) deliverLogs() error {
	for i := range s.wire.Payload.Data.Logs {
		w := &s.wire.Payload.Data.Logs[i]
		if w.Level.rank < s.minRank {
			continue
		}
		e, err := w.entry()
		if err != nil {
			return s.c.fail(&Error{Op: "loggingSubscribe", URL: s.c.endpoint, Kind: KindProtocol, Msg: "decoding a log entry", Err: err})
		}
		e.Message = scrub(e.Message, s.c.key)
		select {
		case s.logs <- e:
		default:
			s.drops.logs.Add(1)
		}
	}
	return nil
}

// send writes one protocol message.
func (s *Subscription) send(ctx context.Context, m wireOut) error {
	return s.conn.Write(ctx, websocket.MessageText, m.encode())
}

func (s *Subscription) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Subscription) touch() { s.lastRead.Store(time.Now().UnixNano()) }

// readLoop reads until the socket ends, then records why and closes what
// the reader owns.
func (s *Subscription) readLoop() {
	defer s.wg.Done()
	var err error
	for {
		if err = s.readMessage(context.Background()); err != nil {
			err = s.socketErr(err)
			break
		}
		if err = s.handle(); err != nil {
			break
		}
	}
	s.end(err)
	_ = s.conn.CloseNow()
	close(s.logs)
	s.queue.end()
	close(s.done)
}

// end records the first reason the subscription ended.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause == nil {
		s.cause = err
	}
}

// socketErr turns a read or write failure into an *Error, or into the
// reason already recorded (Close, ctx, idle) when that caused it.
func (s *Subscription) socketErr(err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	s.mu.Lock()
	closing, cause := s.closing, s.cause
	s.mu.Unlock()
	if cause != nil || closing {
		return cause
	}
	e := &Error{Op: opSubscribe, URL: s.c.endpoint, Kind: KindUnavailable}
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		e.Msg = fmt.Sprintf("stash closed the websocket (%d %s)", int(ce.Code), clean(ce.Reason, s.c.key, 120))
		switch {
		case ce.Code == 4401 || ce.Code == 4403:
			e.Kind = KindAuth
		case ce.Code == websocket.StatusMessageTooBig:
			e.Kind = KindProtocol
			e.Msg = fmt.Sprintf("a message larger than %d bytes, refused", s.c.maxBody)
		case ce.Code >= 4000 || ce.Code == websocket.StatusProtocolError || ce.Code == websocket.StatusUnsupportedData:
			e.Kind = KindProtocol
		}
	case strings.Contains(err.Error(), "read limited at"):
		e.Kind = KindProtocol
		e.Msg = fmt.Sprintf("a message larger than %d bytes, refused", s.c.maxBody)
	default:
		e.Msg = "connection to stash lost"
		e.Err = describeNetErr(innermost(err))
	}
	return s.c.fail(e)
}

// innermost is the root of an error chain: coder/websocket wraps every
// error in "failed to ..." layers that say nothing to a user.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// keep ends the subscription when ctx is done or the socket has been
// silent for too long, and pings on graphql-transport-ws, where Stash sends
// no keep-alives of its own but answers pings.
func (s *Subscription) keep(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.idle / 3)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-ctx.Done():
			s.shutdown(ctx.Err())
			return
		case <-t.C:
			silent := time.Since(time.Unix(0, s.lastRead.Load()))
			if silent > s.idle {
				s.end(s.c.fail(&Error{Op: opSubscribe, URL: s.c.endpoint, Kind: KindUnavailable,
					Msg: fmt.Sprintf("no message from stash for %s", silent.Round(time.Second))}))
				_ = s.conn.CloseNow()
				return
			}
			if s.proto == ProtoTransportWS {
				wctx, cancel := context.WithTimeout(context.Background(), s.c.timeout)
				_ = s.send(wctx, wireOut{Type: "ping"}) // a failure shows in the reader
				cancel()
			}
		}
	}
}

// pump hands job events to the caller, in order, from the queue the reader
// fills without waiting.
func (s *Subscription) pump() {
	defer s.wg.Done()
	defer close(s.jobs)
	for {
		ev, ok, ended := s.queue.pop()
		if !ok {
			if ended {
				return
			}
			select {
			case <-s.queue.wake:
				continue
			case <-s.quit:
				return
			}
		}
		select {
		case s.jobs <- ev:
		case <-s.quit:
			return
		}
	}
}

// shutdown ends the subscription politely: each subscription is stopped,
// then the socket is closed with 1000. cause is what Err will say (nil
// after Close).
func (s *Subscription) shutdown(cause error) {
	s.shutOnce.Do(func() {
		if cause == nil {
			cause = errClosed
		}
		s.mu.Lock()
		s.closing = true
		if s.cause == nil {
			s.cause = cause
		}
		s.mu.Unlock()
		stop := "complete"
		if s.proto == ProtoGraphQLWS {
			stop = "stop"
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.c.timeout)
		defer cancel()
		for _, id := range []string{idJobs, idLogs} {
			if s.send(ctx, wireOut{Type: stop, ID: id}) != nil {
				break
			}
		}
		// Close waits (at most about 5 s) for Stash's close frame, which
		// the reader goroutine reads.
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
	})
}

// Jobs delivers jobsSubscribe events in the order Stash sent them.
func (s *Subscription) Jobs() <-chan JobEvent { return s.jobs }

// Logs delivers log entries at or above MinLevel, one per value.
func (s *Subscription) Logs() <-chan LogEntry { return s.logs }

// Done is closed when the socket has ended, for whatever reason.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the socket ended: nil while it is open, and when Close
// ended it; ctx's error when ctx ended it; otherwise an *Error
// (KindUnavailable for a dropped connection or a silent socket, KindGraphQL
// for an error Stash sent, KindProtocol for what Stash should not send).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(s.cause, errClosed) {
		return nil
	}
	return s.cause
}

// Dropped counts what was thrown away because the reader of Jobs or Logs
// was slow.
func (s *Subscription) Dropped() Drops {
	return Drops{JobUpdates: s.drops.updates.Load(), LogEntries: s.drops.logs.Load()}
}

// Protocol is the subprotocol spoken.
func (s *Subscription) Protocol() string { return s.proto }

// Close stops both subscriptions, closes the socket with 1000 and waits
// for the subscription's goroutines. Events not yet read are discarded.
// It is safe to call more than once, and after the socket has ended.
func (s *Subscription) Close() error {
	s.shutdown(nil)
	s.quitOnce.Do(func() { close(s.quit) })
	s.wg.Wait()
	return nil
}
