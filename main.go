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
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/gofrs/flock"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/config"
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
	Migrate migrateCmd `cmd:"" help:"Create or upgrade the database schema, then exit."`
	Config  configCmd  `cmd:"" help:"Validate or show the configuration."`
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
	code := cycle.ExitInternal
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	var ee *exitError
	quiet := errors.As(err, &ee) && ee.err == nil
	if !quiet && code != cycle.ExitTempFail && code != cycle.ExitOK {
		fmt.Fprintf(stderr, "stashgen: error: %v\n", err)
		if h := hintOf(err); h != "" {
			fmt.Fprintf(stderr, "stashgen: hint: %s\n", h)
		}
	}
	return code
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
			fmt.Fprintf(stderr, "stashgen: second %v: exiting now\n", s)
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

func (e *env) logger(cfg *config.Config) *slog.Logger {
	level := cfg.Level()
	_, journal := e.getenv("JOURNAL_STREAM")
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if journal && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{} // journald stamps each line itself
		}
		return a
	}}
	var h slog.Handler
	if e.g.LogFormat == "json" {
		h = slog.NewJSONHandler(e.stderr, opts)
	} else {
		h = slog.NewTextHandler(e.stderr, opts)
	}
	var secrets []string
	if k := cfg.Stash.APIKey.Reveal(); k != "" {
		secrets = append(secrets, k)
	}
	if p := dbPassword(cfg.Database.URL); p != "" {
		secrets = append(secrets, p)
	}
	log := slog.New(&redactHandler{Handler: h, secrets: secrets})
	if cfg.File != "" {
		if w := config.Permissions(cfg.File); w != "" {
			log.Warn(w)
		}
	}
	return log
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
func runner(cfg *config.Config, log *slog.Logger, sc *stash.Client, store *db.Store, stderr io.Writer) *cycle.Runner {
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
// anything), the schema, and the body under Runner.Execute.
func (e *env) audited(ctx context.Context, command string, body func(*cycle.Runner) func(context.Context, *cycle.Run) cycle.Result) error {
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	log := e.logger(cfg)
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
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	sc, err := newStash(cfg)
	if err != nil {
		return &exitError{code: cycle.ExitConfig, err: err}
	}
	r := runner(cfg, log, sc, store, e.stderr)
	res := r.Execute(ctx, command, locked, cfg.LockFile, body(r))
	return resultError(res)
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
	r := runner(cfg, log, sc, store, e.stderr)
	res := r.DryRun(ctx, e.stdout, cycle.DryRunInfo{LockFile: cfg.LockFile, LockState: lockState(cfg.LockFile)})
	return resultError(res)
}

type checkCmd struct {
	Full   bool `help:"Re-verify every scene (quarantined ones too) and forget scenes Stash no longer has."`
	DryRun bool `help:"Probe and print what would change; write nothing."`
}

func (c *checkCmd) Run(ctx context.Context, e *env) error {
	if c.DryRun {
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
		res := runner(cfg, log, sc, store, e.stderr).CheckDryRun(ctx, e.stdout, c.Full)
		return resultError(res)
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
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
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

type migrateCmd struct{}

func (migrateCmd) Run(ctx context.Context, e *env) error {
	cfg, _, err := e.load()
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
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
	fmt.Fprintf(e.stdout, "# config file: %s\n", file)
	for _, en := range cfg.Entries() {
		fmt.Fprintf(e.stdout, "%-30s = %-40s # %s\n", en.Key, en.Value, (*src)[en.Key])
	}
	return nil
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
