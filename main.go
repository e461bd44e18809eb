// Command stashgen asks a Stash server to generate previews, sprites,
// covers and phashes for the scenes that lack them, one run at a time.
// cron or a systemd timer starts it; each run checks, generates, follows
// the job, and leaves an audit row in PostgreSQL.
//
// main only parses the command line, builds the clients, pools and locks,
// and turns the returned error into an exit code. Everything it builds is
// closed by defers, so no path skips the unlock or the audit row.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/gofrs/flock"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/console"
	"github.com/stashgen/stashgen/cycle/notify"
	"github.com/stashgen/stashgen/cycle/report"
	"github.com/stashgen/stashgen/cycle/systemd"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

type globals struct {
	Config      string `help:"Config file. Default: the first of /etc/stashgen/stashgen.toml and $XDG_CONFIG_HOME/stashgen/stashgen.toml that exists." env:"STASHGEN_CONFIG" placeholder:"FILE"`
	LogLevel    string `help:"Log level: debug, info, warn or error." enum:"debug,info,warn,error" default:"info"`
	LogFormat   string `help:"Log format: text or json." enum:"text,json" default:"text"`
	StashURL    string `help:"Stash base URL; beats STASHGEN_STASH_URL and the file." placeholder:"URL"`
	DatabaseURL string `help:"PostgreSQL URL; beats STASHGEN_DATABASE_URL and the file (prefer the environment: flags show in ps)." placeholder:"URL"`
}

type cli struct {
	globals

	Once    onceCmd    `cmd:"" help:"Run one cycle: check, generate the scenes that lack files, follow the job."`
	Check   checkCmd   `cmd:"" help:"Sync scenes from Stash and record which ones have every generated file."`
	Reset   resetCmd   `cmd:"" help:"Clear attempts, backoff and quarantine of scenes so they are tried again."`
	Status  statusCmd  `cmd:"" help:"Show the last run, the heartbeat, the active job and a health verdict (exit 0 healthy, 1 warning, 2 critical, 3 unknown)."`
	History historyCmd `cmd:"" help:"List recent runs, newest first, with their job actions and errors."`
	Migrate migrateCmd `cmd:"" help:"Create or upgrade the database schema, then exit."`
	Config  configCmd  `cmd:"" help:"Validate or show the configuration."`
	Systemd systemdCmd `cmd:"" help:"Print the systemd service and timer for the current configuration."`
	Version versionCmd `cmd:"" help:"Print the version."`
}

// env is what every command gets: the global flags, where to write, and
// how to build what it needs.
type env struct {
	g      *globals
	stdout io.Writer
	stderr io.Writer
	getenv func(string) (string, bool)
}

// exitError carries an exit code (and an optional hint) up to run.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

func run(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("stashgen"),
		kong.Description("Ask Stash to generate previews, sprites, covers and phashes for the scenes that lack them."),
		kong.Writers(stdout, stderr),
		kong.UsageOnError(),
		kong.Vars{"systemd_binary": systemd.DefaultBinary},
	)
	if err != nil {
		fmt.Fprintf(stderr, "stashgen: error: %v\n", err)
		return cycle.ExitInternal
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "stashgen: error: %v\n", err)
		return cycle.ExitUsage // kong's own default is 80
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	e := &env{g: &c.globals, stdout: stdout, stderr: stderr, getenv: getenv}
	kctx.BindTo(ctx, (*context.Context)(nil))
	err = kctx.Run(e)
	return exitCode(err, stderr)
}

// exitCode prints the error once, with its hint, and picks the code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return cycle.ExitOK
	}
	fmt.Fprint(stderr, errorText(err))
	return codeOf(err)
}

// errorText is what is printed about err: "stashgen: error: ..." and the
// hint, or nothing when the exit code says it all (stood aside, or a
// status verdict already printed).
func errorText(err error) string {
	code := codeOf(err)
	var ee *exitError
	quiet := errors.As(err, &ee) && ee.err == nil
	if err == nil || quiet || code == cycle.ExitTempFail || code == cycle.ExitOK {
		return ""
	}
	s := fmt.Sprintf("stashgen: error: %v\n", err)
	if h := hintOf(err); h != "" {
		s += fmt.Sprintf("stashgen: hint: %s\n", h)
	}
	return s
}

// codeOf is the exit code err means.
func codeOf(err error) int {
	if err == nil {
		return cycle.ExitOK
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return cycle.ExitInternal
}

func hintOf(err error) string {
	var ee *exitError
	if errors.As(err, &ee) && ee.hint != "" {
		return ee.hint
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.HintText()
	}
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// signalContext cancels on the first SIGINT or SIGTERM with a cause that
// carries the signal (exit 130 or 143 after cleanup); a second signal
// exits at once.
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(&cycle.SignalError{Signal: s})
		case <-done:
			return
		}
		select {
		case s := <-ch:
			se := &cycle.SignalError{Signal: s}
			fmt.Fprintf(stderr, "stashgen: second %s: exiting now\n", cycle.SignalName(s))
			os.Exit(se.ExitCode())
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// load reads the configuration and warns once about a readable secret.
func (e *env) load() (*config.Config, *config.Sources, error) {
	cfg, src, err := config.Load(config.Options{
		Path:   e.g.Config,
		Getenv: e.getenv,
		Flags:  config.FlagOverrides{StashURL: e.g.StashURL, DatabaseURL: e.g.DatabaseURL, LogLevel: e.g.LogLevel},
	})
	if err != nil {
		return nil, nil, err
	}
	return cfg, src, nil
}

// logger builds the one log handler and warns, once, about a config file
// that others can read and that holds a secret.
func (e *env) logger(cfg *config.Config) *slog.Logger {
	log := e.newLogger(cfg, nil, nil)
	if w := permissionWarning(cfg); w != "" {
		log.Warn(w)
	}
	return log
}

// newLogger builds the log handler: text or JSON on stderr, secrets
// redacted, and under systemd no timestamps and a priority prefix. tail,
// when set, also gets every line (the body of the final ping); line, when
// set, is the terminal's progress line the log scrolls above.
func (e *env) newLogger(cfg *config.Config, tail io.Writer, line *console.Line) *slog.Logger {
	_, journal := e.getenv("JOURNAL_STREAM")
	var out io.Writer = e.stderr
	if line != nil {
		out = line
	}
	var jw *journalWriter
	if journal {
		jw = &journalWriter{w: out}
		out = jw
	}
	if tail != nil {
		out = io.MultiWriter(tail, out)
	}
	opts := &slog.HandlerOptions{Level: cfg.Level(), ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if journal && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{} // journald stamps each line itself
		}
		return a
	}}
	var h slog.Handler
	if e.g.LogFormat == "json" {
		h = slog.NewJSONHandler(out, opts)
	} else {
		h = slog.NewTextHandler(out, opts)
	}
	if jw != nil {
		h = &journalHandler{Handler: h, w: jw}
	}
	return slog.New(&redactHandler{Handler: h, secrets: secretsOf(cfg)})
}

// permissionWarning is config.Permissions for the file in use, if any.
func permissionWarning(cfg *config.Config) string {
	if cfg.File == "" {
		return ""
	}
	return config.Permissions(cfg.File)
}

// secretsOf lists the values no output may show: the API key, the
// database password and the secret part of the ping URL.
func secretsOf(cfg *config.Config) []string {
	var secrets []string
	if k := cfg.Stash.APIKey.Reveal(); k != "" {
		secrets = append(secrets, k)
	}
	if p := dbPassword(cfg.Database.URL); p != "" {
		secrets = append(secrets, p)
	}
	if p := notify.Secret(cfg.Notify.PingURL); p != "" {
		secrets = append(secrets, p)
	}
	return secrets
}

// show renders a command's output and writes it to stdout with every
// secret removed: the last line of defence, like redactHandler for logs.
func (e *env) show(cfg *config.Config, render func(io.Writer) error) error {
	var b strings.Builder
	if err := render(&b); err != nil {
		return err
	}
	out := b.String()
	for _, s := range secretsOf(cfg) {
		out = strings.ReplaceAll(out, s, config.Redacted)
	}
	_, err := io.WriteString(e.stdout, out)
	return err
}

// openStore connects to PostgreSQL.
func openStore(ctx context.Context, cfg *config.Config) (*db.Store, error) {
	return db.Open(ctx, cfg.Database.URL, cfg.Database.Schema)
}

func newStash(cfg *config.Config) (*stash.Client, error) {
	return stash.New(stash.Options{
		URL:     cfg.Stash.URL,
		APIKey:  cfg.Stash.APIKey.Reveal(),
		Timeout: cfg.Stash.RequestTimeout(),
		Conns:   cfg.Check.Concurrency,
	})
}

func settings(cfg *config.Config) cycle.Settings {
	g := cfg.Generate
	return cycle.Settings{
		PollInterval:       cfg.PollEvery(),
		HeartbeatInterval:  cfg.HeartbeatEvery(),
		UnavailableTimeout: cfg.Stash.UnavailableFor(),
		Toggles: stash.GenerateOptions{
			Covers: g.Covers, Sprites: g.Sprites, Previews: g.Previews, ImagePreviews: g.ImagePreviews,
			Markers: g.Markers, MarkerImagePreviews: g.MarkerImagePreviews, MarkerScreenshots: g.MarkerScreenshots,
			Phashes: g.Phashes, Transcodes: g.Transcodes, InteractiveHeatmapsSpeeds: g.InteractiveHeatmapsSpeeds,
		},
		BatchSize:   g.BatchSize,
		MaxAttempts: g.MaxAttempts,
		Concurrency: cfg.Check.Concurrency,
	}
}

// fileLock takes the lock file without waiting. It creates the directory
// if needed and never deletes the file (removing it races with a waiter).
func fileLock(path string) (*flock.Flock, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, &exitError{code: cycle.ExitConfig, err: fmt.Errorf("create lock directory: %w", err),
			hint: "set lock_file to a path the stashgen user can write (the systemd unit uses RuntimeDirectory)"}
	}
	f := flock.New(path)
	ok, err := f.TryLock()
	if err != nil {
		return nil, false, &exitError{code: cycle.ExitConfig, err: fmt.Errorf("lock %s: %w", path, err),
			hint: "set lock_file to a path the stashgen user can write"}
	}
	return f, ok, nil
}

// lockState reports whether a run holds the lock file without creating it
// (a dry run writes nothing).
func lockState(path string) string {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "free (the file does not exist yet)"
	}
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return "held by another run"
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return "free"
}

// runner builds a cycle.Runner with everything a run needs.
func runner(cfg *config.Config, log *slog.Logger, sc *stash.Client, store cycle.Store, stderr io.Writer) *cycle.Runner {
	host, _ := os.Hostname()
	return &cycle.Runner{
		Stash: sc, Store: store, Log: log, Settings: settings(cfg),
		Host: host, PID: os.Getpid(), Version: version, Stderr: stderr,
	}
}

// resultError turns a run's result into what run returns.
func resultError(res cycle.Result) error {
	if res.ExitCode == cycle.ExitOK {
		return nil
	}
	if res.ExitCode == cycle.ExitTempFail {
		return &exitError{code: res.ExitCode}
	}
	err := res.Err
	if err == nil {
		err = errors.New(string(res.Outcome))
	}
	return &exitError{code: res.ExitCode, err: err, hint: hintOf(err)}
}

// audited runs one audited command: the lock file first, then the
// database (a run that cannot record what it does must not start
// anything), the schema, and the body under Runner.Execute. Whatever
// happened, it then writes the metrics file and sends the final ping.
func (e *env) audited(ctx context.Context, command string, body func(*cycle.Runner) func(context.Context, *cycle.Run) cycle.Result) error {
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	s := e.newSession(cfg, command == "once")
	err = e.audit(ctx, s, command, body)
	s.finish(ctx, err)
	return err
}

func (e *env) audit(ctx context.Context, s *session, command string, body func(*cycle.Runner) func(context.Context, *cycle.Run) cycle.Result) error {
	cfg, log := s.cfg, s.log
	lock, locked, err := fileLock(cfg.LockFile)
	if err != nil {
		return err
	}
	if locked {
		defer lock.Unlock()
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		if !locked {
			log.Warn("another stashgen run holds the lock file; standing aside", "lock_file", cfg.LockFile)
			return &exitError{code: cycle.ExitTempFail}
		}
		return err
	}
	s.store = store // closed by finish, after the metrics are read
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	sc, err := newStash(cfg)
	if err != nil {
		return &exitError{code: cycle.ExitConfig, err: err}
	}
	r := runner(cfg, log, sc, runStore{Store: store, started: s.started}, e.stderr)
	s.runCtx = ctx
	r.OnPhase = s.phase
	if s.line != nil {
		r.OnProgress = func(_ *cycle.Run, job stash.Job) { s.line.Update(job) }
	}
	res := r.Execute(ctx, command, locked, cfg.LockFile, body(r))
	if res.Generated != nil {
		s.generated = *res.Generated
	}
	return resultError(res)
}

// runStore is the store a run uses. It tells the session the run's id as
// soon as the audit row exists, so that what main logs about the run
// carries it too.
type runStore struct {
	*db.Store
	started func(id int64)
}

func (s runStore) StartRun(ctx context.Context, command, host string, pid int, version string) (int64, error) {
	id, err := s.Store.StartRun(ctx, command, host, pid, version)
	if err == nil {
		s.started(id)
	}
	return id, err
}

// session is what an audited command does around its run: the log kept
// for the final ping, the pings, the terminal's progress line, and the
// metrics file.
type session struct {
	cfg    *config.Config
	log    *slog.Logger // no run id: it is not known yet
	began  time.Time
	tail   *notify.Tail
	line   *console.Line  // nil unless once runs on a terminal
	pinger *notify.Pinger // nil without notify.ping_url
	rid    string         // healthchecks' run id, pairing /start with the end
	store  *db.Store
	runCtx context.Context // the run's context: /start gives up when it ends

	generated int // scenes the run's jobs left complete, for the metrics

	mu        sync.Mutex
	runID     int64
	warning   string        // the permission warning, until logged
	pinging   chan struct{} // closed when the /start ping is done; nil until sent
	stopStart func()        // gives up on the /start ping
	startOnce sync.Once
}

func (e *env) newSession(cfg *config.Config, progress bool) *session {
	s := &session{cfg: cfg, began: time.Now(), tail: notify.NewTail(notify.MaxBody), warning: permissionWarning(cfg)}
	if progress && e.isTerminal() {
		s.line = console.New(e.stderr)
		s.line.Every = time.Second
	}
	s.log = e.newLogger(cfg, s.tail, s.line)
	if cfg.Notify.PingURL != "" {
		s.pinger = &notify.Pinger{URL: cfg.Notify.PingURL, UserAgent: "stashgen/" + version}
		s.rid = notify.NewRunID()
	}
	return s
}

// isTerminal reports whether stderr is an interactive terminal (and not
// the journal, whose stream can be a tty too).
func (e *env) isTerminal() bool {
	if _, journal := e.getenv("JOURNAL_STREAM"); journal {
		return false
	}
	if term, _ := e.getenv("TERM"); term == "dumb" {
		return false
	}
	f, ok := e.stderr.(*os.File)
	return ok && console.IsTerminal(f)
}

// runLog is the session's logger with the run id, once there is one.
func (s *session) runLog() *slog.Logger {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runID == 0 {
		return s.log
	}
	return s.log.With(cycle.KeyRunID, s.runID)
}

// started learns the run's id; the permission warning waits for it so
// that it carries the id like every other line of the run.
func (s *session) started(id int64) {
	s.mu.Lock()
	s.runID = id
	s.mu.Unlock()
	log := s.runLog()
	s.warnOnce(log)
	if s.pinger != nil {
		log.Debug("pings carry a run id of their own (healthchecks wants a UUID)", "ping", notify.Redact(s.cfg.Notify.PingURL), "rid", s.rid)
	}
}

func (s *session) warnOnce(log *slog.Logger) {
	s.mu.Lock()
	w := s.warning
	s.warning = ""
	s.mu.Unlock()
	if w != "" {
		log.Warn(w)
	}
}

// workPhases are the phases in which a run does its work: reaching one
// sends /start. A run that stands aside at its busy check never gets
// there, so with ping_on_skip off it pings nothing at all.
var workPhases = map[string]bool{"sync": true, "check": true, "generate": true, "monitor": true, "verify": true}

// phase is Runner.OnPhase. It must not block, so /start goes out in the
// background; the final ping waits for it, to keep the order.
func (s *session) phase(run *cycle.Run, phase string) {
	if s.pinger == nil || !workPhases[phase] {
		return
	}
	s.startOnce.Do(func() {
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(s.runCtx)
		s.mu.Lock()
		s.pinging, s.stopStart = done, cancel
		s.mu.Unlock()
		p := *s.pinger
		p.Log = run.Log
		go func() {
			defer close(done)
			_ = p.Start(ctx, s.rid)
		}()
	})
}

// finish ends the session, whatever the run did: the progress line goes,
// the metrics file is written, the final ping sent, the store closed.
func (s *session) finish(ctx context.Context, err error) {
	code := codeOf(err)
	log := s.runLog()
	s.warnOnce(log) // the run never started: no database
	if s.line != nil {
		s.line.Close()
	}
	ctx = context.WithoutCancel(ctx)
	if s.cfg.MetricsFile != "" {
		s.writeMetrics(ctx, log, code)
	}
	if s.pinger != nil {
		s.ping(ctx, log, code, errorText(err))
	}
	if s.store != nil {
		s.store.Close()
	}
}

// metricsTimeout bounds the database reads behind the metrics file.
const metricsTimeout = 5 * time.Second

func (s *session) writeMetrics(ctx context.Context, log *slog.Logger, code int) {
	m := report.Metrics{End: time.Now(), Duration: time.Since(s.began), ExitCode: code, ScenesGenerated: s.generated}
	if s.store != nil {
		rctx, cancel := context.WithTimeout(ctx, metricsTimeout)
		dbm, err := report.GatherMetrics(rctx, s.store)
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

func (s *session) pingTimeout() time.Duration {
	if s.pinger.Timeout > 0 {
		return s.pinger.Timeout
	}
	return notify.DefaultTimeout
}

// ping sends the final ping; its body is the end of the log and the
// error line the terminal gets after it.
func (s *session) ping(ctx context.Context, log *slog.Logger, code int, errText string) {
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
	for _, secret := range secretsOf(s.cfg) {
		errText = strings.ReplaceAll(errText, secret, config.Redacted)
	}
	body := append(s.tail.Bytes(), errText...)
	p := *s.pinger
	p.Log = log
	if success {
		_ = p.Success(ctx, s.rid, body)
	} else {
		_ = p.Exit(ctx, s.rid, code, body)
	}
}

type onceCmd struct {
	DryRun bool `help:"Print what a run would do; write nothing, start nothing."`
}

func (c *onceCmd) Run(ctx context.Context, e *env) error {
	if c.DryRun {
		return e.dryRun(ctx)
	}
	return e.audited(ctx, "once", func(r *cycle.Runner) func(context.Context, *cycle.Run) cycle.Result { return r.Once })
}

func (e *env) dryRun(ctx context.Context) error {
	return e.readOnly(ctx, func(cfg *config.Config, r *cycle.Runner) cycle.Result {
		return r.DryRun(ctx, e.stdout, cycle.DryRunInfo{LockFile: cfg.LockFile, LockState: lockState(cfg.LockFile)})
	})
}

// readOnly runs a dry run: no lock file, no migration, no audit row; the
// body only reads the database and Stash.
func (e *env) readOnly(ctx context.Context, body func(*config.Config, *cycle.Runner) cycle.Result) error {
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	log := e.logger(cfg)
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	sc, err := newStash(cfg)
	if err != nil {
		return &exitError{code: cycle.ExitConfig, err: err}
	}
	return resultError(body(cfg, runner(cfg, log, sc, store, e.stderr)))
}

type checkCmd struct {
	Full   bool `help:"Re-verify every scene (quarantined ones too) and forget scenes Stash no longer has."`
	DryRun bool `help:"Probe and print what would change; write nothing."`
}

func (c *checkCmd) Run(ctx context.Context, e *env) error {
	if c.DryRun {
		return e.readOnly(ctx, func(_ *config.Config, r *cycle.Runner) cycle.Result {
			return r.CheckDryRun(ctx, e.stdout, c.Full)
		})
	}
	return e.audited(ctx, "check", func(r *cycle.Runner) func(context.Context, *cycle.Run) cycle.Result {
		return func(ctx context.Context, run *cycle.Run) cycle.Result { return r.Check(ctx, run, c.Full) }
	})
}

type resetCmd struct {
	SceneIDs []string `arg:"" name:"scene-id" help:"Stash scene ids."`
}

func (c *resetCmd) Run(ctx context.Context, e *env) error {
	ids := make([]int64, 0, len(c.SceneIDs))
	for _, s := range c.SceneIDs {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return &exitError{code: cycle.ExitUsage, err: fmt.Errorf("scene id %q: want a positive integer (the number in Stash's scene URL)", s)}
		}
		ids = append(ids, id)
	}
	_, store, err := e.migrated(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	done, err := store.ResetScenes(ctx, ids)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "reset %d of %d scenes: they are checked, and generated if still incomplete, on the next run\n", len(done), len(ids))
	if len(done) < len(ids) {
		known := map[int64]bool{}
		for _, id := range done {
			known[id] = true
		}
		var unknown []string
		for _, id := range ids {
			if !known[id] {
				unknown = append(unknown, strconv.FormatInt(id, 10))
			}
		}
		fmt.Fprintf(e.stdout, "not in the database (not synced yet, or deleted in Stash): %s\n", strings.Join(unknown, ", "))
	}
	return nil
}

// migrated loads the configuration and opens the database with its schema
// up to date, for the commands that write outside a run (no audit row).
// The caller closes the store.
func (e *env) migrated(ctx context.Context) (*config.Config, *db.Store, error) {
	cfg, _, err := e.load()
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, nil, err
	}
	return cfg, store, nil
}

type migrateCmd struct{}

func (migrateCmd) Run(ctx context.Context, e *env) error {
	cfg, store, err := e.migrated(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintf(e.stdout, "schema %s is at version %d\n", cfg.Database.Schema, db.Version())
	return nil
}

type configCmd struct {
	Check configCheckCmd `cmd:"" help:"Validate the configuration; exit 0 when valid, 78 when not."`
	Show  configShowCmd  `cmd:"" help:"Print the effective configuration and where each value came from (secrets redacted)."`
}

type configCheckCmd struct{}

func (configCheckCmd) Run(e *env) error {
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	file := cfg.File
	if file == "" {
		file = "no file (defaults, environment and flags)"
	}
	fmt.Fprintf(e.stdout, "configuration is valid: %s\n", file)
	if cfg.File != "" {
		if w := config.Permissions(cfg.File); w != "" {
			fmt.Fprintf(e.stderr, "stashgen: warning: %s\n", w)
		}
	}
	return nil
}

type configShowCmd struct{}

func (configShowCmd) Run(e *env) error {
	cfg, src, err := e.load()
	if err != nil {
		return err
	}
	file := cfg.File
	if file == "" {
		file = "(none found)"
	}
	return e.show(cfg, func(w io.Writer) error {
		fmt.Fprintf(w, "# config file: %s\n", file)
		for _, en := range cfg.Entries() {
			v := en.Value
			if en.Key == "notify.ping_url" && v != "" {
				v = notify.Redact(v) // the path is the check's secret
			}
			fmt.Fprintf(w, "%-30s = %-40s # %s\n", en.Key, v, (*src)[en.Key])
		}
		return nil
	})
}

type statusCmd struct {
	JSON bool `name:"json" help:"Print JSON (a stable schema) instead of text."`
}

// statusStashTimeout bounds status's questions to Stash: an unreachable
// Stash is reported, never waited for.
const statusStashTimeout = 5 * time.Second

func (c *statusCmd) Run(ctx context.Context, e *env) error {
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	e.logger(cfg) // the permission warning
	host, _ := os.Hostname()
	opts := report.Options{Now: time.Now(), JobInterval: cfg.JobInterval(), Host: host, StashTimeout: statusStashTimeout}
	var st report.Status
	if store, err := openStore(ctx, cfg); err != nil {
		st = report.Unreachable(opts, err)
	} else {
		defer store.Close()
		// Heartbeats and runs carry the database's clock: judge them by it.
		if now, err := store.Now(ctx); err == nil {
			opts.Now = now.In(time.Local)
		}
		var sc report.Stash
		if client, err := newStash(cfg); err == nil {
			sc = client
		}
		st = report.Gather(ctx, store, sc, opts)
	}
	err = e.show(cfg, func(w io.Writer) error {
		if c.JSON {
			return report.WriteJSON(w, st)
		}
		return report.WriteStatus(w, st)
	})
	if err != nil {
		return err
	}
	if st.Health.Level == report.Healthy {
		return nil
	}
	return &exitError{code: st.Health.ExitCode} // the output says why
}

type historyCmd struct {
	Limit int  `default:"10" help:"How many runs to show, newest first (1 to 1000)."`
	JSON  bool `name:"json" help:"Print JSON (a stable schema) instead of text."`
}

func (c *historyCmd) Run(ctx context.Context, e *env) error {
	if c.Limit < 1 || c.Limit > 1000 {
		return &exitError{code: cycle.ExitUsage, err: fmt.Errorf("--limit: must be between 1 and 1000 (got %d)", c.Limit)}
	}
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	e.logger(cfg) // the permission warning
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	h, err := report.GatherHistory(ctx, store, time.Now(), c.Limit)
	if err != nil {
		return err
	}
	return e.show(cfg, func(w io.Writer) error {
		if c.JSON {
			return report.WriteJSON(w, h)
		}
		return report.WriteHistory(w, h)
	})
}

type systemdCmd struct {
	Unit   string `arg:"" optional:"" enum:"both,service,timer" default:"both" help:"Print only this unit: service or timer."`
	Binary string `default:"${systemd_binary}" help:"stashgen's path for ExecStart."`
}

func (c *systemdCmd) Run(e *env) error {
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	path := cfg.File
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	}
	o := systemd.Options{Config: cfg, ConfigPath: path, Binary: c.Binary}
	return e.show(cfg, func(w io.Writer) error {
		switch c.Unit {
		case "service":
			_, err = io.WriteString(w, systemd.Service(o))
		case "timer":
			_, err = io.WriteString(w, systemd.Timer(o))
		default:
			_, err = fmt.Fprintf(w, "### /etc/systemd/system/stashgen.service\n%s\n### /etc/systemd/system/stashgen.timer\n%s",
				systemd.Service(o), systemd.Timer(o))
		}
		return err
	})
}

type versionCmd struct{}

func (versionCmd) Run(e *env) error {
	fmt.Fprintf(e.stdout, "stashgen %s (schema version %d)\n", version, db.Version())
	return nil
}

// redactHandler removes known secret values from every message and
// attribute before the line is written: the last line of defence when a
// library error quotes a URL or a header.
type redactHandler struct {
	slog.Handler
	secrets []string
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if len(h.secrets) == 0 {
		return h.Handler.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, h.redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.redact(err.Error()))
		}
		return slog.String(a.Key, h.redact(fmt.Sprint(v.Any())))
	}
	return a
}

func (h *redactHandler) redact(s string) string {
	for _, sec := range h.secrets {
		s = strings.ReplaceAll(s, sec, config.Redacted)
	}
	return s
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &redactHandler{Handler: h.Handler.WithAttrs(red), secrets: h.secrets}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{Handler: h.Handler.WithGroup(name), secrets: h.secrets}
}

// journalWriter puts the syslog priority of the line being written in
// front of it, as sd-daemon(3) describes: journald reads "<3>" as error,
// "<4>" warning, "<6>" info, "<7>" debug, and strips it.
type journalWriter struct {
	mu   sync.Mutex // held by journalHandler around each record
	w    io.Writer
	prio string
}

func (j *journalWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(append([]byte(j.prio), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// journalHandler tells journalWriter the level of each record.
type journalHandler struct {
	slog.Handler
	w *journalWriter
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.prio = priority(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &journalHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{Handler: h.Handler.WithGroup(name), w: h.w}
}

func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// dbPassword extracts the password of a database URL, to redact it.
func dbPassword(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return rest[c+1 : at]
			}
		}
	}
	for _, f := range strings.Fields(raw) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			return strings.Trim(v, "'")
		}
	}
	return ""
}
