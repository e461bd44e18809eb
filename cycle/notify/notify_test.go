package notify

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// secretPath is the part of the ping URL that must never be logged.
const secretPath = "/ping/0f6b1e4c-secret-check-uuid"

// request is what the ping server received.
type request struct {
	method, path, rid, ctype, body string
}

// server records requests and answers with the statuses given, in turn
// (200 when they run out).
type server struct {
	*httptest.Server
	mu       sync.Mutex
	got      []request
	statuses []int
}

func newServer(t *testing.T, statuses ...int) *server {
	s := &server{statuses: statuses}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, request{r.Method, r.URL.Path, r.URL.Query().Get("rid"), r.Header.Get("Content-Type"), string(b)})
		code := http.StatusOK
		if len(s.statuses) > 0 {
			code, s.statuses = s.statuses[0], s.statuses[1:]
		}
		s.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "OK")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.got...)
}

// pinger pings srv's secret URL, waiting without sleeping and logging into
// the returned buffer.
func pinger(url string) (*Pinger, *bytes.Buffer, *[]time.Duration) {
	var log bytes.Buffer
	waits := &[]time.Duration{}
	p := &Pinger{
		URL:       url + secretPath,
		UserAgent: "stashgen/test",
		Log:       slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Wait: func(_ context.Context, d time.Duration) error {
			*waits = append(*waits, d)
			return nil
		},
	}
	return p, &log, waits
}

func TestPinger_StartAndExit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	p, log, _ := pinger(srv.URL)
	rid := NewRunID()

	if err := p.Start(t.Context(), rid); err != nil {
		t.Fatal(err)
	}
	if err := p.Exit(t.Context(), rid, 69, []byte("level=ERROR msg=\"run finished\"\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.Success(t.Context(), rid, []byte("stood aside\n")); err != nil {
		t.Fatal(err)
	}

	want := []request{
		{http.MethodGet, secretPath + "/start", rid, "", ""},
		{http.MethodPost, secretPath + "/69", rid, "text/plain; charset=utf-8", "level=ERROR msg=\"run finished\"\n"},
		{http.MethodPost, secretPath, rid, "text/plain; charset=utf-8", "stood aside\n"},
	}
	got := srv.requests()
	if len(got) != len(want) {
		t.Fatalf("requests = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if strings.Contains(log.String(), secretPath) {
		t.Fatalf("the ping URL was logged:\n%s", log)
	}
}

func TestPinger_KeepsTheURLsQuery(t *testing.T) {
	t.Parallel()
	p := &Pinger{URL: "https://hc.example/ping/key/slug?create=1"}
	got, err := p.target("/start", "r")
	if err != nil || got != "https://hc.example/ping/key/slug/start?create=1&rid=r" {
		t.Fatalf("target = %q, %v", got, err)
	}
}

func TestPinger_Retries(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.StatusInternalServerError, http.StatusTooManyRequests)
	p, log, waits := pinger(srv.URL)

	if err := p.Exit(t.Context(), "rid", 0, nil); err != nil {
		t.Fatalf("third attempt should succeed: %v", err)
	}
	if n := len(srv.requests()); n != 3 {
		t.Fatalf("attempts = %d, want 3", n)
	}
	if len(*waits) != 2 || (*waits)[0] != time.Second || (*waits)[1] != 2*time.Second {
		t.Fatalf("waits = %v, want [1s 2s]", *waits)
	}
	if strings.Contains(log.String(), "WARN") {
		t.Fatalf("a ping that got through was reported as failed:\n%s", log)
	}
}

func TestPinger_GivesUp(t *testing.T) {
	t.Parallel()
	srv := newServer(t, 500, 500, 500, 500)
	p, log, _ := pinger(srv.URL)

	err := p.Start(t.Context(), "rid")

	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.requests()); n != 1+DefaultRetries {
		t.Fatalf("attempts = %d, want %d", n, 1+DefaultRetries)
	}
	line := log.String()
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "ping failed; the run is not affected") ||
		!strings.Contains(line, srv.URL+"/<redacted>/start") || strings.Contains(line, secretPath) {
		t.Fatalf("log:\n%s", line)
	}
}

func TestPinger_NoRetryOn4xx(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.StatusNotFound)
	p, _, _ := pinger(srv.URL)
	if err := p.Start(t.Context(), "rid"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Fatalf("attempts = %d, want 1: a 404 will not change", n)
	}
}

func TestPinger_UnreachableIsLoggedWithoutTheURL(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Close() // connection refused
	p, log, _ := pinger(srv.URL)
	p.Retries = -1

	if err := p.Start(t.Context(), "rid"); err == nil {
		t.Fatal("ping to a closed server succeeded")
	}
	if strings.Contains(log.String(), secretPath) || !strings.Contains(log.String(), "refused") {
		t.Fatalf("log:\n%s", log)
	}
}

// A ping server that never answers costs each attempt its timeout, no
// more: the run is never held longer than (retries+1) × timeout.
func TestPinger_HangingServer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	arrived := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	p, _, _ := pinger(srv.URL)
	p.Timeout = 50 * time.Millisecond

	done := make(chan error, 1)
	go func() { done <- p.Exit(context.Background(), "rid", 0, []byte("log")) }()

	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(30 * time.Second): // far beyond 3 × 50 ms: only a hang gets here
		t.Fatal("the ping outlived its timeouts")
	}
	mu.Lock()
	defer mu.Unlock()
	if arrived != 1+DefaultRetries {
		t.Fatalf("attempts = %d, want %d", arrived, 1+DefaultRetries)
	}
}

func TestPinger_BodyIsCapped(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	p, _, _ := pinger(srv.URL)
	big := bytes.Repeat([]byte("x"), MaxBody+100)
	big[len(big)-1] = 'E'
	if err := p.Exit(t.Context(), "rid", 1, big); err != nil {
		t.Fatal(err)
	}
	got := srv.requests()[0].body
	if len(got) != MaxBody || !strings.HasSuffix(got, "E") {
		t.Fatalf("body of %d bytes, ends %q; want the last %d", len(got), got[len(got)-1:], MaxBody)
	}
}

func TestEndPing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code               int
		started, onSkip    bool
		wantSend, wantSucc bool
	}{
		{0, true, false, true, false},
		{1, true, false, true, false},
		{69, false, false, true, false}, // no database: no start, still a failure ping
		{75, false, false, false, false},
		{75, false, true, true, true},
		{75, true, false, true, true}, // cancelled for a scan after /start: close the run
		{143, true, false, true, false},
	} {
		send, succ := EndPing(tt.code, tt.started, tt.onSkip)
		if send != tt.wantSend || succ != tt.wantSucc {
			t.Errorf("EndPing(%d, started %v, on_skip %v) = %v, %v; want %v, %v", tt.code, tt.started, tt.onSkip, send, succ, tt.wantSend, tt.wantSucc)
		}
	}
}

func TestNewRunID(t *testing.T) {
	t.Parallel()
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := NewRunID(), NewRunID()
	if !uuid.MatchString(a) || a == b {
		t.Fatalf("run ids %q, %q", a, b)
	}
}

func TestRedactAndSecret(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://hc-ping.com/0f6b1e4c-uuid":    "https://hc-ping.com/<redacted>",
		"https://hc.example/ping/key/slug?x=1": "https://hc.example/<redacted>",
		"http://kuma.lan:3001":                 "http://kuma.lan:3001",
		"::not a url":                          "<redacted>",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := Secret("https://hc-ping.com/0f6b1e4c-uuid/"); got != "/0f6b1e4c-uuid" {
		t.Errorf("Secret = %q", got)
	}
	if got := Secret("https://hc-ping.com/"); got != "" {
		t.Errorf("Secret of a bare host = %q", got)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	tl := NewTail(20)
	for _, l := range []string{"line one\n", "line two\n", "line three\n"} {
		if _, err := io.WriteString(tl, l); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(tl.Bytes()); got != "line three\n" {
		t.Fatalf("tail = %q, want whole lines only", got)
	}
	if _, err := io.WriteString(tl, "a\n"); err != nil {
		t.Fatal(err)
	}
	if got := string(tl.Bytes()); got != "line three\na\n" {
		t.Fatalf("tail = %q", got)
	}
}
