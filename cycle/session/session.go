// Package session is what an audited command (`once`, `check`) does around
// its run, as the run's cycle.Observer: the log kept for the final ping,
// the healthchecks pings, the terminal's progress line, the metrics file,
// and the one warning about a config file others can read, carrying the
// run's id like every other line of the run.
package session

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/console"
	"github.com/stashgen/stashgen/cycle/logging"
	"github.com/stashgen/stashgen/cycle/notify"
	"github.com/stashgen/stashgen/cycle/report"
	"github.com/stashgen/stashgen/stash"
)

// Options say how a command logs and where.
type Options struct {
	Config  *config.Config
	Stderr  io.Writer
	Getenv  func(string) (string, bool)
	Format  string // --log-format: text or json
	Version string
	// Progress asks for the progress line, shown only when stderr is an
	// interactive terminal.
	Progress bool
}

// Logger builds the log of a command that has no run (status, history, a
// dry run) and warns, once, about a config file that others can read and
// that holds a secret.
func Logger(o Options) *slog.Logger {
	log := logger(o, o.Stderr, nil)
	if w := permissionWarning(o.Config); w != "" {
		log.Warn(w)
	}
	return log
}

func logger(o Options, w io.Writer, tail io.Writer) *slog.Logger {
	_, journal := o.Getenv("JOURNAL_STREAM")
	return logging.New(logging.Options{W: w, Format: o.Format, Level: o.Config.Level(), Journal: journal,
		Secrets: o.Config.Secrets(), Tail: tail})
}

// permissionWarning is config.Permissions for the file in use, if any.
func permissionWarning(cfg *config.Config) string {
	if cfg.File == "" {
		return ""
	}
	return config.Permissions(cfg.File)
}

// Session is one audited command's session.
type Session struct {
	cfg    *config.Config
	ctx    context.Context // the run's: /start gives up when it ends
	log    *slog.Logger    // no run id: it is not known yet
	began  time.Time
	tail   *notify.Tail
	line   *console.Line  // nil unless on a terminal
	pinger *notify.Pinger // nil without notify.ping_url
	rid    string         // healthchecks' run id, pairing /start with the end

	// Metrics is where the metrics file's database figures come from; nil
	// when the database could not be opened. Set it before the run starts.
	Metrics report.MetricsStore
	// Unlock releases the lock file; Finished calls it first, so that the
	// final ping (which may retry for a while) does not keep the next run
	// out. nil when there is no lock to release.
	Unlock func()

	mu        sync.Mutex
	runID     int64
	warning   string        // the permission warning, until logged
	pinging   chan struct{} // closed when the /start ping is done; nil until sent
	stopStart func()        // gives up on the /start ping
	startOnce sync.Once
	endOnce   sync.Once
}

// New starts a session for a run under ctx.
func New(ctx context.Context, o Options) *Session {
	s := &Session{cfg: o.Config, ctx: ctx, began: time.Now(), tail: notify.NewTail(notify.MaxBody), warning: permissionWarning(o.Config)}
	w := o.Stderr
	if o.Progress && isTerminal(o) {
		s.line = console.New(o.Stderr)
		s.line.Every = time.Second
		w = s.line
	}
	s.log = logger(o, w, s.tail)
	if u := o.Config.Notify.PingURL; u != "" {
		s.pinger = &notify.Pinger{URL: u, UserAgent: "stashgen/" + o.Version}
		s.rid = notify.NewRunID()
	}
	return s
}

// isTerminal reports whether stderr is an interactive terminal (and not
// the journal, whose stream can be a tty too).
func isTerminal(o Options) bool {
	if _, journal := o.Getenv("JOURNAL_STREAM"); journal {
		return false
	}
	if term, _ := o.Getenv("TERM"); term == "dumb" {
		return false
	}
	f, ok := o.Stderr.(*os.File)
	return ok && console.IsTerminal(f)
}

// Log is the session's logger, for the runner: it adds the run id itself.
func (s *Session) Log() *slog.Logger { return s.log }

// runLog is the session's logger with the run id, once there is one.
func (s *Session) runLog() *slog.Logger {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runID == 0 {
		return s.log
	}
	return s.log.With(cycle.KeyRunID, s.runID)
}

// Started learns the run's id; the permission warning waits for it so
// that it carries the id like every other line of the run.
func (s *Session) Started(id int64) {
	s.mu.Lock()
	s.runID = id
	s.mu.Unlock()
	log := s.runLog()
	s.warnOnce(log)
	if s.pinger != nil {
		log.Debug("pings carry a run id of their own (healthchecks wants a UUID)", "ping", notify.Redact(s.cfg.Notify.PingURL), "rid", s.rid)
	}
}

func (s *Session) warnOnce(log *slog.Logger) {
	s.mu.Lock()
	w := s.warning
	s.warning = ""
	s.mu.Unlock()
	if w != "" {
		log.Warn(w)
	}
}

// Phase sends /start when the run reaches its first work phase. It must not
// block, so /start goes out in the background; the final ping waits for
// it, to keep the order.
func (s *Session) Phase(p cycle.Phase) {
	if s.pinger == nil || !p.IsWork() {
		return
	}
	s.startOnce.Do(func() {
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(s.ctx)
		s.mu.Lock()
		s.pinging, s.stopStart = done, cancel
		s.mu.Unlock()
		p := *s.pinger
		p.Log = s.runLog()
		go func() {
			defer close(done)
			_ = p.Start(ctx, s.rid)
		}()
	})
}

// Progress redraws the terminal's progress line.
func (s *Session) Progress(job stash.Job) {
	if s.line != nil {
		s.line.Update(job)
	}
}

// Finished ends the session, whatever the run did: the lock file is
// released, the progress line goes, the metrics file is written, the final
// ping sent. Only the first call counts.
func (s *Session) Finished(res cycle.Result) {
	s.endOnce.Do(func() { s.finish(res) })
}

func (s *Session) finish(res cycle.Result) {
	if s.Unlock != nil {
		s.Unlock()
	}
	err := res.AsError()
	code := cycle.ExitCode(err)
	log := s.runLog()
	s.warnOnce(log) // the run never started: no database
	if s.line != nil {
		s.line.Close()
	}
	ctx := context.WithoutCancel(s.ctx)
	if s.cfg.MetricsFile != "" {
		generated := 0
		if res.Generated != nil {
			generated = *res.Generated
		}
		s.writeMetrics(ctx, log, report.Metrics{End: time.Now(), Duration: time.Since(s.began), ExitCode: code,
			ScenesGenerated: generated, FreeSpace: report.MeasureFence(s.cfg.Generate.Fence)})
	}
	if s.pinger != nil {
		s.ping(ctx, log, code, cycle.ErrorText(err))
	}
}

// metricsTimeout bounds the database reads behind the metrics file.
const metricsTimeout = 5 * time.Second

func (s *Session) writeMetrics(ctx context.Context, log *slog.Logger, m report.Metrics) {
	if s.Metrics != nil {
		rctx, cancel := context.WithTimeout(ctx, metricsTimeout)
		dbm, err := report.GatherMetrics(rctx, s.Metrics)
		cancel()
		if err != nil {
			log.Warn("read metrics from the database failed; writing the others", "error", err)
		}
		m.DB = dbm
	}
	if err := report.WriteMetricsFile(s.cfg.MetricsFile, m); err != nil {
		log.Warn("write metrics file failed; the run is not affected", "error", err)
	}
}

func (s *Session) pingTimeout() time.Duration {
	if s.pinger.Timeout > 0 {
		return s.pinger.Timeout
	}
	return notify.DefaultTimeout
}

// ping sends the final ping; its body is the end of the log and the error
// line the terminal gets after it.
func (s *Session) ping(ctx context.Context, log *slog.Logger, code int, errText string) {
	s.mu.Lock()
	pinging, stopStart := s.pinging, s.stopStart
	s.mu.Unlock()
	send, success := notify.EndPing(code, pinging != nil, s.cfg.Notify.PingOnSkip)
	if !send {
		log.Debug("stood aside: no ping (notify.ping_on_skip is off)")
		return
	}
	if pinging != nil {
		// /start must arrive first; but a run that ends while its /start
		// still hangs waits one more ping timeout, then gives up on it.
		t := time.NewTimer(s.pingTimeout())
		select {
		case <-pinging:
		case <-t.C:
			stopStart()
			<-pinging
		}
		t.Stop()
		stopStart()
	}
	body := append(s.tail.Bytes(), s.cfg.Redact(errText)...)
	p := *s.pinger
	p.Log = log
	if success {
		_ = p.Success(ctx, s.rid, body)
	} else {
		_ = p.Exit(ctx, s.rid, code, body)
	}
}
