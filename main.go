// Command stashgen asks a Stash server to generate previews, sprites,
// covers and phashes for the scenes that lack them, one run at a time.
// cron or a systemd timer starts it; each run checks, generates, follows
// the job, and leaves an audit row in PostgreSQL.
//
// main only wires the command line: it parses it, loads the configuration,
// builds the clients, pools and locks, hands them to the packages under
// cycle/, and turns the returned error into an exit code. Everything it
// builds is closed by defers, so no path skips the unlock or the audit row.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/lockfile"
	"github.com/stashgen/stashgen/cycle/report"
	"github.com/stashgen/stashgen/cycle/session"
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
// the environment. Commands also get, by type, the configuration (loaded
// once, on first use) and, for commands without a run, their logger.
type env struct {
	g              *globals
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	sources        config.Sources // where each value came from, once loaded
}

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
	ctx, stop := cycle.SignalContext(stderr)
	defer stop()
	e := &env{g: &c.globals, stdout: stdout, stderr: stderr, getenv: getenv}
	kctx.BindTo(ctx, (*context.Context)(nil))
	_ = kctx.BindSingletonProvider(e.load)
	_ = kctx.BindSingletonProvider(e.logger)
	err = kctx.Run(e)
	fmt.Fprint(stderr, cycle.ErrorText(err))
	return cycle.ExitCode(err)
}

func (e *env) load() (*config.Config, error) {
	cfg, src, err := config.Load(config.Options{
		Path:   e.g.Config,
		Getenv: e.getenv,
		Flags:  config.FlagOverrides{StashURL: e.g.StashURL, DatabaseURL: e.g.DatabaseURL, LogLevel: e.g.LogLevel},
	})
	if err != nil {
		return nil, err
	}
	e.sources = *src
	return cfg, nil
}

func (e *env) sessionOptions(cfg *config.Config, progress bool) session.Options {
	return session.Options{Config: cfg, Stderr: e.stderr, Getenv: e.getenv, Format: e.g.LogFormat, Version: version, Progress: progress}
}

// logger is the log of a command without a run; making it warns about a
// config file others can read.
func (e *env) logger(cfg *config.Config) *slog.Logger {
	return session.Logger(e.sessionOptions(cfg, false))
}

// show renders a command's output and writes it to stdout with every
// secret removed: the last line of defence, as the log handler is for logs.
func (e *env) show(cfg *config.Config, render func(io.Writer) error) error {
	var b strings.Builder
	if err := render(&b); err != nil {
		return err
	}
	_, err := io.WriteString(e.stdout, cfg.Redact(b.String()))
	return err
}

func openStore(ctx context.Context, cfg *config.Config) (*db.Store, error) {
	return db.Open(ctx, cfg.Database.URL, cfg.Database.Schema)
}

func newStash(cfg *config.Config) (*stash.Client, error) {
	c, err := stash.New(stash.Options{URL: cfg.Stash.URL, APIKey: cfg.Stash.APIKey.Reveal(),
		Timeout: cfg.Stash.RequestTimeout(), Conns: cfg.Check.Concurrency})
	if err != nil {
		return nil, &cycle.ExitError{Code: cycle.ExitConfig, Err: err}
	}
	return c, nil
}

func (e *env) runner(cfg *config.Config, log *slog.Logger, sc *stash.Client, store *db.Store) *cycle.Runner {
	host, _ := os.Hostname()
	return &cycle.Runner{Stash: sc, Store: store, Log: log, Settings: cycle.SettingsFrom(cfg),
		Host: host, PID: os.Getpid(), Version: version, Stderr: e.stderr}
}

// audited runs one audited command (once, check) in a session that ends
// with the metrics file and the final ping, whatever happened.
func (e *env) audited(ctx context.Context, cfg *config.Config, command string, body func(*cycle.Runner) cycle.Body) error {
	sess := session.New(ctx, e.sessionOptions(cfg, command == "once"))
	res := e.execute(ctx, cfg, sess, command, body)
	sess.Finished(res) // done already when the run got as far as its audit row
	return res.AsError()
}

// execute takes the lock file first, then the database (a run that cannot
// record what it does must not start anything) and its schema, then runs
// the body under Runner.Execute.
func (e *env) execute(ctx context.Context, cfg *config.Config, sess *session.Session, command string, body func(*cycle.Runner) cycle.Body) (res cycle.Result) {
	lock, err := lockfile.Take(cfg.LockFile)
	if err != nil {
		return cycle.Failure(ctx, err)
	}
	defer lock.Release()
	sess.Unlock = lock.Release
	store, err := openStore(ctx, cfg)
	if err != nil {
		if !lock.Held() {
			sess.Log().Warn("another stashgen run holds the lock file; standing aside", "lock_file", cfg.LockFile)
			return cycle.Skipped()
		}
		return cycle.Failure(ctx, err)
	}
	defer store.Close()
	sess.Metrics = store
	// The session ends while the database is open, for the metrics file,
	// whichever way execute returns; Runner.Execute ends it itself once the
	// audit row is final, and only the first end counts.
	defer func() { sess.Finished(res) }()
	if err := store.Migrate(ctx); err != nil {
		return cycle.Failure(ctx, err)
	}
	sc, err := newStash(cfg)
	if err != nil {
		return cycle.Failure(ctx, err)
	}
	r := e.runner(cfg, sess.Log(), sc, store)
	r.Observer = sess
	return r.Execute(ctx, command, lock.Held(), cfg.LockFile, body(r))
}

// dryRun plans without writing anything: no lock file, no migration, no
// audit row. It prints the plan as far as it got, as text or JSON.
func (e *env) dryRun(ctx context.Context, cfg *config.Config, log *slog.Logger, asJSON bool, plan func(*cycle.Runner) (cycle.Plan, error)) error {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	sc, err := newStash(cfg)
	if err != nil {
		return err
	}
	p, err := plan(e.runner(cfg, log, sc, store))
	if serr := e.show(cfg, func(w io.Writer) error { return report.WritePlanAs(w, p, asJSON, err) }); err == nil {
		err = serr
	}
	if err != nil {
		return cycle.Failure(ctx, err).AsError()
	}
	return cycle.Result{Outcome: p.Outcome, ExitCode: p.ExitCode}.AsError()
}

type onceCmd struct {
	DryRun bool `help:"Print what a run would do; write nothing, start nothing."`
	JSON   bool `name:"json" help:"With --dry-run: print the plan as JSON (a stable schema)."`
}

func (c *onceCmd) Run(ctx context.Context, e *env, cfg *config.Config) error {
	switch {
	case c.JSON && !c.DryRun:
		return &cycle.ExitError{Code: cycle.ExitUsage, Err: fmt.Errorf("--json: goes with --dry-run")}
	case c.DryRun:
		return e.dryRun(ctx, cfg, e.logger(cfg), c.JSON, func(r *cycle.Runner) (cycle.Plan, error) {
			state, held := lockfile.State(cfg.LockFile)
			return r.DryRun(ctx, cycle.DryRunInfo{LockFile: cfg.LockFile, LockState: state, LockHeld: held})
		})
	}
	return e.audited(ctx, cfg, "once", func(r *cycle.Runner) cycle.Body { return r.Once })
}

type checkCmd struct {
	Full   bool `help:"Re-verify every scene (quarantined ones too) and forget scenes Stash no longer has."`
	DryRun bool `help:"Probe and print what would change; write nothing."`
	JSON   bool `name:"json" help:"With --dry-run: print the plan as JSON (a stable schema)."`
}

func (c *checkCmd) Run(ctx context.Context, e *env, cfg *config.Config) error {
	switch {
	case c.JSON && !c.DryRun:
		return &cycle.ExitError{Code: cycle.ExitUsage, Err: fmt.Errorf("--json: goes with --dry-run")}
	case c.DryRun:
		return e.dryRun(ctx, cfg, e.logger(cfg), c.JSON, func(r *cycle.Runner) (cycle.Plan, error) { return r.CheckDryRun(ctx, c.Full) })
	}
	return e.audited(ctx, cfg, "check", func(r *cycle.Runner) cycle.Body { return r.Check(c.Full) })
}

type resetCmd struct {
	SceneIDs []string `arg:"" name:"scene-id" help:"Stash scene ids."`
}

func (c *resetCmd) Run(ctx context.Context, e *env) error {
	ids, err := report.SceneIDs(c.SceneIDs)
	if err != nil {
		return &cycle.ExitError{Code: cycle.ExitUsage, Err: err}
	}
	cfg, err := e.load()
	if err != nil {
		return err
	}
	store, err := migrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	done, err := store.ResetScenes(ctx, ids)
	if err != nil {
		return err
	}
	return report.WriteReset(e.stdout, ids, done)
}

// migrated opens the database with its schema up to date, for the
// commands that write outside a run (no audit row). The caller closes it.
func migrated(ctx context.Context, cfg *config.Config) (*db.Store, error) {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

type migrateCmd struct{}

func (migrateCmd) Run(ctx context.Context, e *env, cfg *config.Config) error {
	store, err := migrated(ctx, cfg)
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

func (configCheckCmd) Run(e *env, cfg *config.Config) error {
	return report.WriteConfigCheck(e.stdout, e.stderr, cfg)
}

type configShowCmd struct{}

func (configShowCmd) Run(e *env, cfg *config.Config) error {
	return e.show(cfg, func(w io.Writer) error { return report.WriteConfig(w, cfg, e.sources) })
}

type statusCmd struct {
	JSON bool `name:"json" help:"Print JSON (a stable schema) instead of text."`
}

func (c *statusCmd) Run(ctx context.Context, e *env, cfg *config.Config, _ *slog.Logger) error {
	host, _ := os.Hostname()
	store, openErr := openStore(ctx, cfg)
	if openErr == nil {
		defer store.Close()
	}
	var sc report.Stash
	if client, err := newStash(cfg); err == nil {
		sc = client
	}
	st := report.GatherStatus(ctx, store, openErr, sc, report.Options{Now: time.Now(), JobInterval: cfg.JobInterval(),
		Host: host, ReverifyAfter: cfg.Check.Reverify(), Fence: cfg.Generate.Fence, Toggles: cfg.Generate.Toggles})
	if err := e.show(cfg, func(w io.Writer) error { return report.Write(w, st, c.JSON) }); err != nil {
		return err
	}
	if st.Health.Level == report.Healthy {
		return nil
	}
	return &cycle.ExitError{Code: st.Health.ExitCode} // the output says why
}

type historyCmd struct {
	Limit int  `default:"10" help:"How many runs to show, newest first (1 to 1000)."`
	JSON  bool `name:"json" help:"Print JSON (a stable schema) instead of text."`
}

// Validate runs when the command line is parsed, before anything loads.
func (c *historyCmd) Validate() error {
	if c.Limit < 1 || c.Limit > 1000 {
		return fmt.Errorf("--limit: must be between 1 and 1000 (got %d)", c.Limit)
	}
	return nil
}

func (c *historyCmd) Run(ctx context.Context, e *env, cfg *config.Config, _ *slog.Logger) error {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	h, err := report.GatherHistory(ctx, store, time.Now(), c.Limit)
	if err != nil {
		return err
	}
	return e.show(cfg, func(w io.Writer) error { return report.Write(w, h, c.JSON) })
}

type systemdCmd struct {
	Unit   string `arg:"" optional:"" enum:"both,service,timer" default:"both" help:"Print only this unit: service or timer."`
	Binary string `default:"${systemd_binary}" help:"stashgen's path for ExecStart."`
}

func (c *systemdCmd) Run(e *env, cfg *config.Config) error {
	o := systemd.Options{Config: cfg, ConfigPath: cfg.File, Binary: c.Binary}
	return e.show(cfg, func(w io.Writer) error { return systemd.Write(w, o, c.Unit) })
}

type versionCmd struct{}

func (versionCmd) Run(e *env) error {
	fmt.Fprintf(e.stdout, "stashgen %s (schema version %d)\n", version, db.Version())
	return nil
}
