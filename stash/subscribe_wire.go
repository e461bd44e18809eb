package stash

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// msgType is a protocol message type, both protocols folded together
// (next and data are one), decoded without allocating.
type msgType uint8

const (
	msgUnknown msgType = iota
	msgAck
	msgKeepAlive
	msgPing
	msgPong
	msgNext
	msgError
	msgComplete
	msgConnectionError
)

func (t *msgType) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"connection_ack"`:
		*t = msgAck
	case `"ka"`:
		*t = msgKeepAlive
	case `"ping"`:
		*t = msgPing
	case `"pong"`:
		*t = msgPong
	case `"next"`, `"data"`:
		*t = msgNext
	case `"error"`:
		*t = msgError
	case `"complete"`:
		*t = msgComplete
	case `"connection_error"`:
		*t = msgConnectionError
	default:
		*t = msgUnknown
	}
	return nil
}

func (t msgType) String() string {
	return [...]string{"an unknown message", "connection_ack", "ka", "ping", "pong", "next", "error", "complete", "connection_error"}[t]
}

// rawJSON keeps a JSON value undecoded and uncopied: it points into the
// message buffer and is only valid until the next message is read. Log
// entries below MinLevel are dropped without their text ever being
// unquoted or copied.
type rawJSON []byte

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = b
	return nil
}

// wireLevel is a log level decoded without allocating for the known ones.
type wireLevel struct {
	level LogLevel
	rank  int
	ok    bool
}

func (l *wireLevel) UnmarshalJSON(b []byte) error {
	l.ok = true
	switch string(b) {
	case `"Trace"`:
		l.level = LogTrace
	case `"Debug"`:
		l.level = LogDebug
	case `"Info"`:
		l.level = LogInfo
	case `"Progress"`:
		l.level = LogProgress
	case `"Warning"`:
		l.level = LogWarning
	case `"Error"`:
		l.level = LogError
	default:
		var s string
		if err := json.Unmarshal(b, &s); err != nil || s == "" {
			l.ok = false
			return nil
		}
		l.level = LogLevel(s)
	}
	l.rank = l.level.rank()
	return nil
}

// wireLog is one loggingSubscribe entry as sent.
type wireLog struct {
	Time    rawJSON   `json:"time"`
	Level   wireLevel `json:"level"`
	Message rawJSON   `json:"message"`
}

// entry decodes what was kept. Every field is non-null in Stash's schema.
func (w *wireLog) entry() (LogEntry, error) {
	if !w.Level.ok {
		return LogEntry{}, errors.New("an entry without a level")
	}
	if len(w.Message) == 0 || w.Message[0] != '"' {
		return LogEntry{}, errors.New("an entry without a message")
	}
	e := LogEntry{Level: w.Level.level}
	if err := json.Unmarshal(w.Message, &e.Message); err != nil {
		return LogEntry{}, err
	}
	if len(w.Time) == 0 || w.Time[0] != '"' {
		return LogEntry{}, errors.New("an entry without a time")
	}
	if err := json.Unmarshal(w.Time, &e.Time); err != nil {
		return LogEntry{}, err
	}
	return e, nil
}

type wireJobUpdate struct {
	Type JobEventType `json:"type"`
	Job  *Job         `json:"job"`
}

type wireError struct {
	Message string `json:"message"`
}

// wirePayload covers every payload shape a server sends as an object:
// results (next/data), an old-style error object, connection_error.
type wirePayload struct {
	Data struct {
		Jobs *wireJobUpdate `json:"jobsSubscribe"`
		Logs []wireLog      `json:"loggingSubscribe"`
	} `json:"data"`
	Errors  []wireError `json:"errors"`
	Message string      `json:"message"`
}

// wireMsg is one message from Stash. It is decoded in a single pass and
// reused, so a stream of log batches allocates next to nothing.
type wireMsg struct {
	Type    msgType     `json:"type"`
	ID      string      `json:"id"`
	Payload wirePayload `json:"payload"`
}

// decode replaces m with the message in b, keeping the capacity of the
// log entry slice.
func (m *wireMsg) decode(b []byte) error {
	logs := m.Payload.Data.Logs
	clear(logs[:cap(logs)]) // json reuses elements: no field may survive
	*m = wireMsg{}
	m.Payload.Data.Logs = logs[:0]
	err := json.Unmarshal(b, m)
	if err == nil {
		return nil
	}
	// A payload of another shape: json decoded the rest regardless.
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || !strings.HasPrefix(te.Field, "payload") {
		return err
	}
	switch m.Type {
	case msgNext:
		return err
	case msgError, msgConnectionError:
		// gqlgen sends a list of errors, which the one pass cannot put in
		// an object.
		var env struct {
			Payload []wireError `json:"payload"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			return err
		}
		m.Payload = wirePayload{Errors: env.Payload}
	default:
		m.Payload = wirePayload{} // ping, pong, a type we do not know: unused
	}
	return nil
}

// errorList is the errors a message carries, in either shape.
func (m *wireMsg) errorList() []wireError {
	if len(m.Payload.Errors) > 0 {
		return m.Payload.Errors
	}
	if m.Payload.Message != "" {
		return []wireError{{Message: m.Payload.Message}}
	}
	return nil
}

// jobEvent checks and copies out a jobsSubscribe result: a broken event
// must never read as "nothing happened".
func (m *wireMsg) jobEvent() (JobEvent, error) {
	u := m.Payload.Data.Jobs
	switch {
	case u == nil:
		return JobEvent{}, errors.New("no jobsSubscribe in the result")
	case u.Type == "":
		return JobEvent{}, errors.New("an event without a type")
	case u.Job == nil || u.Job.ID == "" || u.Job.Status == "":
		return JobEvent{}, fmt.Errorf("a %s event without a job id and status", u.Type)
	}
	return JobEvent{Type: u.Type, Job: *u.Job}, nil
}

// wireOut is a message to Stash.
type wireOut struct {
	ID      string `json:"id,omitempty"`
	Type    string `json:"type"`
	Payload any    `json:"payload,omitempty"`
}

type operation struct {
	Query         string `json:"query"`
	OperationName string `json:"operationName"`
}

// emptyObject is connection_init's payload: {}. Stash needs nothing there;
// the key went in the upgrade's header, and never goes here.
var emptyObject = struct{}{}

func (m wireOut) encode() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("stash: encoding a websocket message: " + err.Error()) // only our own constant shapes
	}
	return b
}

// jobQueue sits between the socket reader and the caller: the reader
// pushes without ever waiting, the pump hands events over in order.
// ADD and REMOVE are always queued, beyond the limit if need be (one of
// each per job, so the queue stays small); an UPDATE that finds the queue
// full overwrites the newest queued UPDATE of the same job, keeping the
// latest state, or is dropped.
type jobQueue struct {
	mu    sync.Mutex
	items []JobEvent
	limit int
	ended bool
	wake  chan struct{}
}

func (q *jobQueue) init(limit int) {
	q.limit = limit
	q.wake = make(chan struct{}, 1)
}

// push queues ev and reports whether an UPDATE was lost to make room.
func (q *jobQueue) push(ev JobEvent) (lost bool) {
	q.mu.Lock()
	if ev.Type == JobUpdate && len(q.items) >= q.limit {
		for i := len(q.items) - 1; i >= 0; i-- {
			if q.items[i].Job.ID != ev.Job.ID {
				continue
			}
			if q.items[i].Type == JobUpdate {
				q.items[i] = ev
			}
			break
		}
		q.mu.Unlock()
		return true
	}
	q.items = append(q.items, ev)
	q.mu.Unlock()
	q.signal()
	return false
}

// pop takes the oldest event; ok is false when there is none, and ended
// then says none will come.
func (q *jobQueue) pop() (ev JobEvent, ok, ended bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return JobEvent{}, false, q.ended
	}
	ev = q.items[0]
	q.items[0] = JobEvent{}
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = q.items[:0:0]
	}
	return ev, true, false
}

// end says no more events will be pushed.
func (q *jobQueue) end() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
	q.signal()
}

func (q *jobQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
