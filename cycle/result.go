package cycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/stashgen/stashgen/db"
)

// Exit codes, from sysexits(3) where one fits. The README's table lists
// them; keep the two in step.
const (
	ExitOK          = 0  // generated, nothing_to_do, checked, adopted
	ExitJobFailed   = 1  // the generation job failed or ended unknown
	ExitUsage       = 64 // command-line usage error
	ExitUnavailable = 69 // Stash or PostgreSQL unreachable, or Stash answered 5xx
	ExitInternal    = 70 // a bug, or the database refused a statement
	ExitTempFail    = 75 // stood aside: locked, busy, or cancelled for a scan
	ExitNoPerm      = 77 // Stash rejected the API key
	ExitConfig      = 78 // configuration invalid
)

// Result is what a run decided: the audit row's outcome and the process's
// exit code, with the counts and error that go with them.
type Result struct {
	Outcome  db.Outcome
	ExitCode int
	Err      error
	Counts   *db.Counts
	// Generated is the scenes this run's jobs (launched or adopted) left
	// verified complete; nil when it followed no job.
	Generated  *int
	StashJobID string // the last Stash job it launched or adopted
	// Listening: the run heard Stash's events while it followed a job
	// (true) or only polled (false); nil when it followed none.
	Listening *bool
}

// AsError is what a command returns for the result: nil for exit 0, an
// *ExitError otherwise (without text when the run stood aside: the exit
// code says it all).
func (r Result) AsError() error {
	switch r.ExitCode {
	case ExitOK:
		return nil
	case ExitTempFail:
		return &ExitError{Code: r.ExitCode}
	}
	err := r.Err
	if err == nil {
		err = errors.New(string(r.Outcome))
	}
	return &ExitError{Code: r.ExitCode, Err: err, Hint: HintOf(err)}
}

// Failure turns an error into a result with the right exit code: the
// error's own ExitCode() when it has one (stash and db errors do), 130/143
// after a signal, 70 otherwise.
func Failure(ctx context.Context, err error) Result {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	return Result{Outcome: db.OutcomeError, ExitCode: ExitCode(err), Err: err}
}

// Skipped is the result of a run that stood aside before it could write
// its audit row (the lock file is held and the database cannot be read).
func Skipped() Result { return Result{Outcome: db.OutcomeSkippedLocked, ExitCode: ExitTempFail} }

// ExitError carries an exit code, and a hint, up to main. An ExitError
// without Err prints nothing: the exit code (or the output) says it all.
type ExitError struct {
	Code int
	Err  error
	Hint string
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }
func (e *ExitError) ExitCode() int { return e.Code }

// ExitCode is the exit code err means: its own ExitCode() when it has one,
// 0 for nil, 70 (a bug) otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitInternal
}

// HintOf is what err suggests the user do, or "".
func HintOf(err error) string {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Hint != "" {
		return ee.Hint
	}
	var ht interface{ HintText() string } // config.Error: its Hint is a field
	if errors.As(err, &ht) {
		return ht.HintText()
	}
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// ErrorText is what is printed about err: "stashgen: error: ..." and the
// hint, or nothing when the exit code says it all (stood aside, or a
// status verdict already printed).
func ErrorText(err error) string {
	code := ExitCode(err)
	var ee *ExitError
	quiet := errors.As(err, &ee) && ee.Err == nil
	if err == nil || quiet || code == ExitTempFail || code == ExitOK {
		return ""
	}
	s := fmt.Sprintf("stashgen: error: %v\n", err)
	if h := HintOf(err); h != "" {
		s += fmt.Sprintf("stashgen: hint: %s\n", h)
	}
	return s
}

// SignalError is the cancel cause main gives the run context when a signal
// arrives, so the exit code can follow the shell's 128+n convention.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string { return "interrupted by " + SignalName(e.Signal) }

// SignalContext cancels on the first SIGINT or SIGTERM with a cause that
// carries the signal (exit 130 or 143 after cleanup); a second signal
// exits at once.
func SignalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(&SignalError{Signal: s})
		case <-done:
			return
		}
		select {
		case s := <-ch:
			se := &SignalError{Signal: s}
			fmt.Fprintf(stderr, "stashgen: second %s: exiting now\n", SignalName(s))
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

// SignalName is SIGINT or SIGTERM, as users know them.
func SignalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// ExitCode is 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.
func (e *SignalError) ExitCode() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGTERM)
}

func interrupted(ctx context.Context) Result {
	cause := context.Cause(ctx)
	var se *SignalError
	if errors.As(cause, &se) {
		return Result{Outcome: db.OutcomeInterrupted, ExitCode: se.ExitCode(), Err: se}
	}
	return Result{Outcome: db.OutcomeInterrupted, ExitCode: 128 + int(syscall.SIGTERM), Err: cause}
}

// stop is a decision to end a run early: standing aside, giving way to a
// scan, a job that failed, an interruption. It carries the audit row's
// outcome and the exit code; err says why.
type stop struct {
	outcome db.Outcome
	code    int
	err     error
}

func (s *stop) Error() string {
	if s.err == nil {
		return string(s.outcome)
	}
	return s.err.Error()
}

func (s *stop) Unwrap() error { return s.err }

// stopWith is the decision to end the run as res says.
func stopWith(res Result) error { return &stop{outcome: res.Outcome, code: res.ExitCode, err: res.Err} }

// resultOf turns what a run's steps returned into its result: nil is the
// outcome the steps reached, a *stop its own, any other error a failure.
func resultOf(ctx context.Context, outcome db.Outcome, err error) Result {
	var s *stop
	switch {
	case err == nil:
		return Result{Outcome: outcome, ExitCode: ExitOK}
	case errors.As(err, &s):
		return Result{Outcome: s.outcome, ExitCode: s.code, Err: s.err}
	}
	return Failure(ctx, err)
}

// ends reports whether err ends a run whatever else it was doing: an
// interruption or a failure, as opposed to a decision about one job.
func ends(err error) bool {
	var s *stop
	if !errors.As(err, &s) {
		return err != nil
	}
	return s.outcome == db.OutcomeInterrupted || s.outcome == db.OutcomeError
}
