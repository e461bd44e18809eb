package stash

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey looks like the JWT Stash hands out, so a leak is easy to spot and
// no ordinary word of an error message can collide with it.
const testKey = "eyJhbGciOiJIUzI1NiJ9.c3Rhc2hnZW4tdGVzdA.K3y-S3CR3T-4242"

// newTestClient builds a client for url with a short timeout; mods adjust
// the options first.
func newTestClient(t testing.TB, url string, mods ...func(*Options)) *Client {
	t.Helper()
	o := Options{URL: url, APIKey: testKey, Timeout: 5 * time.Second}
	for _, m := range mods {
		m(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return c
}

// gqlBody is a GraphQL request body as the client sends it.
type gqlBody struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables"`
}

// seen is one request a stub received.
type seen struct {
	Method string
	Path   string
	Query  string // raw query string of the URL
	Header http.Header
	Body   gqlBody // decoded when the body is JSON
	Raw    []byte
}

// stub is an httptest server that records every request and lets the test
// answer it.
type stub struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// newStub starts a server answering every request with answer.
func newStub(t testing.TB, answer func(w http.ResponseWriter, r *http.Request, body gqlBody)) *stub {
	t.Helper()
	s := &stub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b gqlBody
		_ = json.Unmarshal(raw, &b)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: b, Raw: raw})
		s.mu.Unlock()
		answer(w, r, b)
	}))
	t.Cleanup(s.Close)
	return s
}

// answering is a stub handler that always gives this status and body.
func answering(status int, body string) func(http.ResponseWriter, *http.Request, gqlBody) {
	return func(w http.ResponseWriter, _ *http.Request, _ gqlBody) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func (s *stub) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

// only returns the single request the stub received.
func (s *stub) only(t testing.TB) seen {
	t.Helper()
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("stub got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// checkGraphQLRequest asserts what every GraphQL request must look like.
func checkGraphQLRequest(t testing.TB, r seen, wantQuery string) {
	t.Helper()
	if r.Method != http.MethodPost || r.Path != "/graphql" {
		t.Errorf("request = %s %s, want POST /graphql", r.Method, r.Path)
	}
	if got := r.Header.Get("ApiKey"); got != testKey {
		t.Errorf("ApiKey header = %q, want the configured key", got)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", r.Header.Get("Content-Type"))
	}
	if r.Query != "" {
		t.Errorf("GraphQL URL has a query string %q", r.Query)
	}
	if wantQuery != "" && r.Body.Query != wantQuery {
		t.Errorf("query =\n%s\nwant\n%s", r.Body.Query, wantQuery)
	}
}

// jsonEqual compares a decoded JSON value with the JSON text want.
func jsonEqual(t testing.TB, what string, got any, want string) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var gv, wv any
	if err := json.Unmarshal(g, &gv); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(want), &wv); err != nil {
		t.Fatalf("%s: bad want JSON: %v", what, err)
	}
	gb, _ := json.Marshal(gv)
	wb, _ := json.Marshal(wv)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s =\n%s\nwant\n%s", what, gb, wb)
	}
}

// wantKind asserts err is a *Error of kind k and returns it.
func wantKind(t testing.TB, err error, k Kind) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want a *stash.Error of kind %d", err, err, k)
	}
	if e.Kind != k {
		t.Fatalf("error kind = %d, want %d: %v", e.Kind, k, err)
	}
	return e
}

// noSecret fails when s carries the API key or a password.
func noSecret(t testing.TB, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range append([]string{testKey}, secrets...) {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s leaks secret %q: %s", what, sec, s)
		}
	}
}

// memTransport answers every request from memory: no network, for fuzzing
// and for bodies a real server cannot easily produce.
type memTransport struct {
	status int
	header http.Header
	body   []byte
	length int64 // Content-Length to declare; -1 = unknown
	read   *int64
}

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	h := m.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	var body io.Reader = bytes.NewReader(m.body)
	if m.read != nil {
		body = &countingReader{r: body, n: m.read}
	}
	return &http.Response{
		Status: http.StatusText(m.status), StatusCode: m.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(body), ContentLength: m.length, Request: req,
	}, nil
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// memClient is a client whose every answer comes from rt, for tests that
// must not touch the network.
func memClient(t testing.TB, rt http.RoundTripper, mods ...func(*Options)) *Client {
	t.Helper()
	c := newTestClient(t, "http://stash.invalid:9999", mods...)
	c.api.base = rt
	c.files.Transport = rt
	return c
}
