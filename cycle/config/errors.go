package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ExitConfig is the exit status for a configuration problem (EX_CONFIG from
// sysexits.h), so a systemd unit or cron mail tells "fix the config" apart
// from "Stash was down".
const ExitConfig = 78

// Error is one configuration problem. Its text names where the value came
// from, the line, the key and what is wrong:
//
//	config /etc/stashgen/stashgen.toml: line 3: poll_interval: must be at least 1 second (got 0)
//
// Hint, printed separately as "stashgen: hint: ...", says how to fix it.
// No Error ever contains a secret: values are shown only when they are not
// secret, and URLs only in redacted form.
type Error struct {
	// File is the config file path, or "environment (STASHGEN_STASH_URL)",
	// or "command line (--stash-url)" when the value came from there.
	File string
	// Key is the dotted key (stash.url), empty for file-level problems.
	Key string
	// Line and Column locate the problem in File, when known (else 0).
	Line   int
	Column int
	Msg    string
	Hint   string
	// Err is the underlying error, if any, for errors.Is (fs.ErrNotExist).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	b.WriteString(": ")
	if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(", column " + strconv.Itoa(e.Column))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return printable(b.String())
}

// ExitCode implements kong's ExitCoder: 78, EX_CONFIG.
func (e *Error) ExitCode() int { return ExitConfig }

// HintText is the fix, for the top level to print as "stashgen: hint: ...".
func (e *Error) HintText() string { return printable(e.Hint) }

func (e *Error) Unwrap() error { return e.Err }

// join returns nil, the only error, or all of them joined; errors.As finds
// the first *Error either way, so the exit code and hint survive joining.
func join(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// printable escapes control and format characters (terminal escapes, bidi
// overrides) that a hostile or corrupt file could smuggle into a key name.
func printable(s string) string {
	if strings.IndexFunc(s, notPrintable) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if notPrintable(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func notPrintable(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }

// scrub replaces every occurrence of a known secret in the error's text. The
// messages are built not to contain secrets in the first place; this is the
// safety net for the case nobody thought of.
func scrub(e *Error, secrets []string) {
	for _, s := range secrets {
		if len(s) < 4 {
			continue // too short to tell from ordinary text
		}
		e.Msg = strings.ReplaceAll(e.Msg, s, Redacted)
		e.Hint = strings.ReplaceAll(e.Hint, s, Redacted)
		e.Key = strings.ReplaceAll(e.Key, s, Redacted)
		e.File = strings.ReplaceAll(e.File, s, Redacted)
	}
}
