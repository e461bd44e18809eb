package stashtest

import (
	"net/http"
	"slices"
	"time"
)

// Call is one GraphQL request as received, whatever the fake answered, so
// tests can assert what the client sent, including what it must not send.
type Call struct {
	Seq           int64          // place in the server's order log (see Server.Seq)
	Time          time.Time      // fake clock at arrival
	Operation     string         // "query" or "mutation"; "" if the query did not parse
	OperationName string         // as sent
	Fields        []string       // top-level field names (not aliases), in order
	Variables     map[string]any // decoded JSON; do not modify
	Query         string         // raw query text
	KeyPresent    bool           // an ApiKey header (or apikey parameter) was sent
	KeyValid      bool           // the request passed the key check
	Status        int            // HTTP status answered; 0 if the connection was dropped
	Fault         FaultKind      // the fault that answered instead, if any
}

// FileRequest is one request outside /graphql (file routes, the UI).
type FileRequest struct {
	Time       time.Time
	Method     string
	Path       string
	Range      string // the Range header
	KeyPresent bool
	KeyValid   bool
	Status     int
	Fault      FaultKind
}

// StopCall is one stopJob or stopAllJobs mutation.
type StopCall struct {
	JobID string // "" for stopAllJobs
	All   bool
	At    time.Time // the real clock when it arrived, to time a client's reaction
}

type callLog struct {
	calls     []*Call
	files     []*FileRequest
	generates []map[string]any
	scans     []map[string]any
	stops     []StopCall
}

// Seq is the number the next record of the order log will get. Calls,
// Upgrades and Subscriptions each carry a Seq from one counter, taken under
// the lock that records them, so a smaller Seq happened first, across all
// three: a call arrived before an upgrade, or before a subscription was
// registered (and thus could be pushed to). The fake clock cannot tell
// them apart: it moves only when a test moves it.
func (s *Server) Seq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq + 1
}

// nextSeq numbers a record of the order log. Called with s.mu held.
func (s *Server) nextSeq() int64 {
	s.seq++
	return s.seq
}

// Calls lists every GraphQL request in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.log.calls))
	for i, c := range s.log.calls {
		out[i] = *c
	}
	return out
}

// Mutations lists the GraphQL requests that were mutations, whether or not
// they were honoured (a 401 mutation is still an attempt).
func (s *Server) Mutations() []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Operation == "mutation" {
			out = append(out, c)
		}
	}
	return out
}

// CountField counts top-level fields with this name over all requests; a
// request with 250 aliased findScene fields counts 250.
func (s *Server) CountField(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.log.calls {
		for _, f := range c.Fields {
			if f == name {
				n++
			}
		}
	}
	return n
}

// FileRequests lists every non-GraphQL request in arrival order.
func (s *Server) FileRequests() []FileRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FileRequest, len(s.log.files))
	for i, f := range s.log.files {
		out[i] = *f
	}
	return out
}

// GenerateInputs lists the input of each executed metadataGenerate, as JSON
// would decode it (absent keys absent, numbers float64).
func (s *Server) GenerateInputs() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log.generates)
}

// ScanInputs lists the input of each executed metadataScan.
func (s *Server) ScanInputs() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log.scans)
}

// StopCalls lists executed stopJob and stopAllJobs mutations.
func (s *Server) StopCalls() []StopCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log.stops)
}

// ResetLog forgets all recorded requests, e.g. after a test's setup phase.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = callLog{}
}

func (s *Server) logFile(r *http.Request, present, valid bool, status int, fault FaultKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.files = append(s.log.files, &FileRequest{
		Time: s.now, Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"),
		KeyPresent: present, KeyValid: valid, Status: status, Fault: fault,
	})
}
