package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes content to name in a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// env returns a Getenv over m, so tests never see the real environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// loadString loads content as the config file with the given environment.
func loadString(t *testing.T, content string, environ map[string]string, flags FlagOverrides) (*Config, *Sources, string, error) {
	t.Helper()
	p := writeFile(t, "stashgen.toml", content)
	cfg, src, err := Load(Options{Path: p, Getenv: env(environ), Flags: flags})
	return cfg, src, p, err
}

// firstError returns the first *Error in err, failing the test if none.
func firstError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("Load succeeded; want an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return e
}

// loadError loads file, which must fail, and checks that its first error
// is in that file and names key at line with msg, and that its hint
// contains hint.
func loadError(t *testing.T, file, key string, line int, msg, hint string) (*Error, error) {
	t.Helper()
	_, _, path, err := loadString(t, file, nil, FlagOverrides{})
	e := firstError(t, err)
	if e.Key != key || e.Line != line || e.Msg != msg || e.File != path {
		t.Errorf("got File=%q Key=%q Line=%d Msg=%q\nwant File=%q Key=%q Line=%d Msg=%q",
			e.File, e.Key, e.Line, e.Msg, path, key, line, msg)
	}
	if !strings.Contains(e.HintText(), hint) {
		t.Errorf("hint %q does not contain %q", e.HintText(), hint)
	}
	return e, err
}
