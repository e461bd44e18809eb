package stashtest

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake Stash. All state sits behind one mutex: requests are
// short, and a single lock makes every GraphQL response a consistent
// snapshot, as one database transaction is in real Stash.
type Server struct {
	mu sync.Mutex

	apiKey        string
	loc           *time.Location
	scenesPerTick int
	scanTicks     int
	stopTicks     int
	forbidden     bool
	version       [3]string
	keepAlive     time.Duration // graphql-ws ka interval
	logBatch      time.Duration // loggingSubscribe push interval
	autoTick      time.Duration // 0: jobs tick on findJob polls
	noUpgrade     int           // status answering upgrades; 0 upgrades
	noise         int           // Trace lines per tick

	now time.Time
	lib library
	jq  jobQueue

	generateDefaults map[string]any

	log  callLog
	seq  int64 // the order log's last number: see Seq
	flts faults
	ws   wsState
	slog stashLog

	docs docCache

	// Network. lnMu guards the listener so Down and Up can swap it while
	// requests are served.
	srv    *http.Server
	addr   string
	lnMu   sync.Mutex
	ln     net.Listener
	isDown bool
	conns  map[net.Conn]struct{}
	closed chan struct{}
	once   sync.Once

	// isClosed (under mu) stops new goroutines once close has begun; wg
	// counts those close must wait for: websocket handlers, the auto-tick
	// loop and a scheduled log push.
	isClosed bool
	wg       sync.WaitGroup
}

// Option configures a Server at construction.
type Option func(*Server)

// WithAPIKey makes the fake demand header "ApiKey: key" on every request, as
// Stash does once credentials are configured. Stream URLs then embed the key.
func WithAPIKey(key string) Option { return func(s *Server) { s.apiKey = key } }

// WithClock starts the fake clock at start (truncated to the second).
func WithClock(start time.Time) Option {
	return func(s *Server) { s.now = start }
}

// WithZone sets the zone timestamps are rendered in. The default is a fixed
// +02:00 so clients that drop offsets fail tests instead of production.
func WithZone(loc *time.Location) Option { return func(s *Server) { s.loc = loc } }

// WithScenesPerTick limits how many scenes a generate job processes per tick,
// so tests can watch progress and stop a job midway. 0 means all at once.
func WithScenesPerTick(n int) Option { return func(s *Server) { s.scenesPerTick = n } }

// WithScanTicks sets how many ticks a scan job runs before it finishes.
func WithScanTicks(n int) Option { return func(s *Server) { s.scanTicks = n } }

// WithStopTicks sets how many ticks a STOPPING job takes to become CANCELLED.
// 0 cancels it within the stopJob call itself.
func WithStopTicks(n int) Option { return func(s *Server) { s.stopTicks = n } }

// WithVersion sets what the version query answers.
func WithVersion(version, hash, buildTime string) Option {
	return func(s *Server) { s.version = [3]string{version, hash, buildTime} }
}

// WithForbidden makes every request lacking a valid key get 403, as Stash
// answers clients outside the local network when no credentials are set.
func WithForbidden() Option { return func(s *Server) { s.forbidden = true } }

// DefaultStart is the fake clock's default starting time.
var DefaultStart = time.Date(2024, 3, 10, 12, 0, 0, 0, time.FixedZone("", 2*60*60))

// New starts a fake Stash on a loopback port and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, closeFn := NewServer(opts...)
	t.Cleanup(closeFn)
	return s
}

// NewServer starts a fake Stash outside a test (benchmarks, a standalone fake
// process). Call the returned func to stop it; it panics if no loopback port
// can be had, as httptest does.
func NewServer(opts ...Option) (*Server, func()) {
	s := &Server{
		loc:       time.FixedZone("", 2*60*60),
		now:       DefaultStart,
		scanTicks: 1,
		stopTicks: 1,
		version:   [3]string{"v0.27.2", "a1b2c3d4", "2024-10-28 00:40:59"},
		keepAlive: 10 * time.Second,
		logBatch:  time.Second,
		conns:     map[net.Conn]struct{}{},
		closed:    make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.now = s.now.Truncate(time.Second).In(s.loc)
	s.lib.init()
	s.jq.init()
	s.flts.init()
	s.ws.conns = map[*wsConn]struct{}{}
	s.ws.changed = make(chan struct{})
	if s.keepAlive <= 0 {
		s.keepAlive = 10 * time.Second
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("stashtest: listen: %v", err))
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s,
		ConnState:         s.trackConn,
		ReadHeaderTimeout: time.Minute,
	}
	s.ln = ln
	go func() { _ = s.srv.Serve(ln) }()
	if s.autoTick > 0 {
		s.wg.Add(1)
		go s.autoTicker()
	}
	return s, s.close
}

func (s *Server) close() {
	s.once.Do(func() {
		// Cut connections before waking hung handlers, so they cannot
		// answer on the way out.
		_ = s.srv.Close()
		close(s.closed)
		// http.Server.Close knows nothing of hijacked connections:
		// websockets are cut here, and their goroutines waited for.
		s.mu.Lock()
		s.isClosed = true
		s.stopLogTimer()
		conns := s.dropWebsockets()
		s.mu.Unlock()
		closeWebsockets(conns)
		s.wg.Wait()
	})
}

// URL is the base URL, as a user would configure it (no trailing slash).
func (s *Server) URL() string { return "http://" + s.addr }

// APIKey is the key the fake demands ("" when none).
func (s *Server) APIKey() string { return s.apiKey }

func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	switch st {
	case http.StateNew:
		if s.isDown {
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Down makes Stash unreachable: the listener closes (new connections are
// refused) and open connections, websockets included, are cut, so clients
// see connection-level errors, not HTTP ones.
func (s *Server) Down() {
	s.lnMu.Lock()
	if s.isDown {
		s.lnMu.Unlock()
		return
	}
	s.isDown = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
		delete(s.conns, c)
	}
	s.lnMu.Unlock()

	s.mu.Lock()
	conns := s.dropWebsockets()
	s.mu.Unlock()
	closeWebsockets(conns)
}

// Up brings a downed server back on the same address. State (scenes, jobs)
// is kept; call Restart as well to model a Stash restart.
func (s *Server) Up() error {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if !s.isDown {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("relisten on %s: %w", s.addr, err)
	}
	s.ln = ln
	s.isDown = false
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Now is the fake clock's current time.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// SetNow sets the fake clock (truncated to the second, as Stash stores it).
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = t.Truncate(time.Second).In(s.loc)
}

// Advance moves the fake clock forward by d (whole seconds).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d).Truncate(time.Second)
}

// SetScenesPerTick changes WithScenesPerTick mid-test.
func (s *Server) SetScenesPerTick(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scenesPerTick = n
}

// SetForbidden switches the 403 mode of WithForbidden on or off.
func (s *Server) SetForbidden(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden = on
}

// SetGenerateDefaults sets configuration.defaults.generate, keyed by
// GenerateMetadataOptions field name. nil means Stash has no defaults saved,
// which is the initial state and answers null.
func (s *Server) SetGenerateDefaults(opts map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if opts == nil {
		s.generateDefaults = nil
		return
	}
	s.generateDefaults = make(map[string]any, len(opts))
	for k, v := range opts {
		s.generateDefaults[k] = v
	}
}

// ServeHTTP routes like Stash: /graphql, the /scene file routes, and the UI
// (HTML with 200) for anything else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	now := s.now
	s.mu.Unlock()
	// Stash's Date header comes from its own clock; ours is fake, and tests
	// check clients do not mix it up with the local clock.
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))

	switch {
	case r.URL.Path == "/graphql" && isUpgrade(r):
		s.serveWebsocket(w, r)
	case r.URL.Path == "/graphql":
		s.serveGraphQL(w, r)
	case strings.HasPrefix(r.URL.Path, "/scene/"):
		s.serveFile(w, r)
	default:
		sw := &statusWriter{ResponseWriter: w}
		present, valid := s.checkKey(r)
		if !valid {
			s.denyRedirect(sw, r)
		} else {
			sw.Header().Set("Content-Type", "text/html; charset=utf-8")
			sw.WriteHeader(http.StatusOK)
			_, _ = sw.Write([]byte(uiPage))
		}
		s.logFile(r, present, valid, sw.status, "")
	}
}

const uiPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stash</title></head><body><div id="root"></div></body></html>`

// checkKey reports whether a key was sent (header, or the apikey query
// parameter Stash also accepts) and whether the request may proceed.
func (s *Server) checkKey(r *http.Request) (present, valid bool) {
	got := r.Header.Get("ApiKey")
	if got == "" {
		got = r.URL.Query().Get("apikey")
	}
	present = got != ""
	s.mu.Lock()
	forbidden := s.forbidden
	s.mu.Unlock()
	switch {
	case s.apiKey == "":
		valid = !forbidden
	default:
		valid = got == s.apiKey
	}
	return present, valid
}

func (s *Server) isForbidden() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forbidden
}

// denyRedirect answers an unauthenticated browser-style request: 302 to the
// login page, or 403 in forbidden mode.
func (s *Server) denyRedirect(w http.ResponseWriter, r *http.Request) {
	if s.isForbidden() {
		http.Error(w, forbiddenText, http.StatusForbidden)
		return
	}
	w.Header().Set("Location", "/login?returnURL="+url.QueryEscape(r.URL.RequestURI()))
	w.WriteHeader(http.StatusFound)
}

// denyUnauthorized answers an unauthenticated API-style request: 401 with
// plain text, or 403 in forbidden mode.
func (s *Server) denyUnauthorized(w http.ResponseWriter) {
	if s.isForbidden() {
		http.Error(w, forbiddenText, http.StatusForbidden)
		return
	}
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}

const forbiddenText = "Stash is exposed to the public internet without authentication, and is not serving any more content to protect your privacy."

// statusWriter remembers the status for the call log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (hijack, flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
