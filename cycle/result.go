package cycle

import (
	"context"
	"errors"
	"os"
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
	Outcome    db.Outcome
	ExitCode   int
	Err        error
	Counts     *db.Counts
	Generated  *int
	StashJobID string
}

// Error implements error for the failing results, so main can print them.
func (r Result) Error() string {
	if r.Err == nil {
		return string(r.Outcome)
	}
	return r.Err.Error()
}

func result(o db.Outcome, code int) Result { return Result{Outcome: o, ExitCode: code} }

// failure turns an error into a result with the right exit code: the
// error's own ExitCode() when it has one (stash and db errors do), 130/143
// after a signal, 70 otherwise.
func failure(ctx context.Context, err error) Result {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	code := ExitInternal
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	return Result{Outcome: db.OutcomeError, ExitCode: code, Err: err}
}

// SignalError is the cancel cause main gives the run context when a signal
// arrives, so the exit code can follow the shell's 128+n convention.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string { return "interrupted by " + SignalName(e.Signal) }

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
