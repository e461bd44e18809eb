package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTake_SecondIsNotHeldAndTheFileStays(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "stashgen.lock")
	if got, held := State(path); got != "free (the file does not exist yet)" || held {
		t.Fatalf("State before = %q", got)
	}
	a, err := Take(path)
	if err != nil || !a.Held() {
		t.Fatalf("first Take = %v, %v", a, err)
	}
	b, err := Take(path)
	if err != nil || b.Held() {
		t.Fatalf("second Take = held %v, %v; want not held", b.Held(), err)
	}
	if got, held := State(path); got != "held by another run" || !held {
		t.Fatalf("State while held = %q", got)
	}
	a.Release()
	if got, held := State(path); got != "free" || held {
		t.Fatalf("State after release = %q", got)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the lock file went: %v", err)
	}
}

func TestTake_UnwritableDirectoryIsAConfigError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Take(filepath.Join(file, "stashgen.lock")) // a file where a directory must be
	var le *Error
	if !errors.As(err, &le) || le.ExitCode() != 78 || le.Hint() == "" {
		t.Fatalf("Take = %v; want a config error with a hint", err)
	}
}
