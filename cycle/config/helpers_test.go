package config

import (
	"errors"
	"os"
	"path/filepath"
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
