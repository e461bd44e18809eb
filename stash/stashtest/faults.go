package stashtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// FaultKind is a way a Stash (or what sits in front of it) misbehaves.
type FaultKind string

// The faults a test can inject.
const (
	// FaultStatus500 answers 500 with a plain-text body, as a crashing
	// Stash or a failing reverse proxy does.
	FaultStatus500 FaultKind = "status_500"
	// FaultHTML answers 200 with an HTML page (a captive portal, a proxy
	// login page, the Stash UI at the wrong path).
	FaultHTML FaultKind = "html"
	// FaultTruncatedJSON answers 200 with JSON cut off midway.
	FaultTruncatedJSON FaultKind = "truncated_json"
	// FaultNotJSON answers 200, Content-Type application/json, with a body
	// that is not JSON.
	FaultNotJSON FaultKind = "not_json"
	// FaultGraphQLError answers 200 with a GraphQL errors array, data null.
	FaultGraphQLError FaultKind = "graphql_error"
	// FaultHugeBody answers 200 with HugeBodySize bytes of valid-looking
	// JSON, to prove the client caps what it reads.
	FaultHugeBody FaultKind = "huge_body"
	// FaultHang holds the request until the client gives up, the server
	// closes, or ReleaseHung lets it continue normally.
	FaultHang FaultKind = "hang"
	// FaultDrop closes the connection without answering.
	FaultDrop FaultKind = "drop"
)

// HugeBodySize is the size of a FaultHugeBody response body.
const HugeBodySize = 20 << 20

// Fault scripts one misbehaviour. The zero value of each filter matches
// everything.
type Fault struct {
	Kind FaultKind
	// Field limits the fault to GraphQL requests with this top-level field.
	Field string
	// Path, when set, applies the fault to non-GraphQL requests whose path
	// starts with it, instead of to GraphQL requests: file requests, and
	// with "/graphql" websocket upgrades (FaultHang holds an upgrade until
	// ReleaseHung, then it proceeds; the others answer it instead).
	Path string
	// Times limits how many requests the fault hits; 0 means until
	// ClearFaults.
	Times int
	// AfterExecute runs the operation first, so a mutation takes effect,
	// and then answers with the fault: the "did my job start?" case.
	AfterExecute bool
	// Message is the GraphQL error message for FaultGraphQLError.
	Message string
}

type faultEntry struct {
	Fault
	left int
}

type faults struct {
	list        []*faultEntry
	release     chan struct{}
	hanging     int
	hangStarted chan struct{}
}

func (f *faults) init() {
	f.release = make(chan struct{})
	f.hangStarted = make(chan struct{}, 1024)
}

// InjectFault adds a fault; earlier faults are matched first.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flts.list = append(s.flts.list, &faultEntry{Fault: f, left: f.Times})
}

// ClearFaults removes all faults (hung requests stay hung; see ReleaseHung).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flts.list = nil
}

// ReleaseHung lets every request held by FaultHang continue normally.
func (s *Server) ReleaseHung() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.flts.release)
	s.flts.release = make(chan struct{})
}

// Hanging is how many requests FaultHang holds right now.
func (s *Server) Hanging() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flts.hanging
}

// HangStarted receives a value each time FaultHang starts holding a request,
// so tests can wait for the hang without sleeping.
func (s *Server) HangStarted() <-chan struct{} { return s.flts.hangStarted }

// takeFault finds and consumes the first fault matching the request.
// Called with s.mu held.
func (s *Server) takeFault(graphql bool, fields []string, path string, after bool) *Fault {
	for i, f := range s.flts.list {
		if f.AfterExecute != after {
			continue
		}
		if graphql {
			if f.Path != "" || (f.Field != "" && !slices.Contains(fields, f.Field)) {
				continue
			}
		} else if f.Path == "" || !strings.HasPrefix(path, f.Path) {
			continue
		}
		if f.Times > 0 {
			f.left--
			if f.left <= 0 {
				s.flts.list = slices.Delete(s.flts.list, i, i+1)
			}
		}
		out := f.Fault
		return &out
	}
	return nil
}

// applyFault answers with the fault. It reports whether the request is
// finished; a released hang is not, and proceeds normally.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault, field string) bool {
	h := w.Header()
	switch f.Kind {
	case FaultStatus500:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	case FaultHTML:
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(uiPage))
	case FaultTruncatedJSON:
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"data":{"findJob":{"id":"1","status":"RUNN`))
	case FaultNotJSON:
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("upstream connect error or disconnect/reset before headers"))
	case FaultGraphQLError:
		msg := f.Message
		if msg == "" {
			msg = "injected fault"
		}
		e := map[string]any{"message": msg}
		if field != "" {
			e["path"] = []string{field}
		}
		b, _ := json.Marshal(map[string]any{"errors": []any{e}, "data": nil})
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	case FaultHugeBody:
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		writeHuge(w)
	case FaultHang:
		return !s.hang(r)
	case FaultDrop:
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = c.Close()
		}
	default:
		http.Error(w, "stashtest: unknown fault "+string(f.Kind), http.StatusInternalServerError)
	}
	return true
}

func writeHuge(w http.ResponseWriter) {
	head := []byte(`{"data":{"padding":"`)
	tail := []byte(`"}}`)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	if _, err := w.Write(head); err != nil {
		return
	}
	for left := HugeBodySize - len(head) - len(tail); left > 0; left -= len(chunk) {
		n := min(left, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
	}
	_, _ = w.Write(tail)
}

// hang blocks until the client goes away, the server closes, or the test
// releases it; it reports whether it was released.
func (s *Server) hang(r *http.Request) bool {
	s.mu.Lock()
	rel := s.flts.release
	s.flts.hanging++
	s.mu.Unlock()
	select {
	case s.flts.hangStarted <- struct{}{}:
	default:
	}
	released := false
	select {
	case <-r.Context().Done():
	case <-s.closed:
	case <-rel:
		released = true
	}
	s.mu.Lock()
	s.flts.hanging--
	s.mu.Unlock()
	return released
}
