// Package lockfile is the flock(2) lock that keeps two stashgen runs on
// one host apart. The file is created once and never deleted: removing it
// would race with a run waiting on it.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gofrs/flock"
)

// exitConfig is EX_CONFIG: a lock file that cannot be created is a
// configuration problem.
const exitConfig = 78

// Error says the lock file cannot be created or locked, and what to do.
type Error struct {
	Err  error
	hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
func (e *Error) ExitCode() int { return exitConfig }
func (e *Error) Hint() string  { return e.hint }

// Lock is the lock file, held or not.
type Lock struct {
	f    *flock.Flock
	held bool
}

// Take tries the lock without waiting. It creates the directory if needed.
// A lock another run holds is not an error: Held says whether we got it.
func Take(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, &Error{Err: fmt.Errorf("create lock directory: %w", err),
			hint: "set lock_file to a path the stashgen user can write (the systemd unit uses RuntimeDirectory)"}
	}
	f := flock.New(path)
	ok, err := f.TryLock()
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("lock %s: %w", path, err),
			hint: "set lock_file to a path the stashgen user can write"}
	}
	return &Lock{f: f, held: ok}, nil
}

// Held reports whether this process holds the lock.
func (l *Lock) Held() bool { return l.held }

// Release unlocks, if held. The file stays.
func (l *Lock) Release() {
	if l.held {
		_ = l.f.Unlock()
		l.held = false
	}
}

// State reports whether a run holds the lock file without creating it (a
// dry run writes nothing): a description, and held when another run
// holds it.
func State(path string) (state string, held bool) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "free (the file does not exist yet)", false
	}
	if err != nil {
		return "unknown: " + err.Error(), false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return "held by another run", true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return "free", false
}
