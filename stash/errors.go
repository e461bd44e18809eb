package stash

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind says what went wrong talking to Stash, which decides the exit code
// and the hint.
type Kind int

const (
	// KindUnavailable: connection refused, timeout, 5xx, or a body that is
	// not Stash's JSON (a proxy error page, a truncated answer).
	KindUnavailable Kind = iota + 1
	// KindAuth: 401/403 on the API, or a redirect to the login page on a
	// file: the API key is missing or wrong.
	KindAuth
	// KindGraphQL: Stash answered with a GraphQL errors array.
	KindGraphQL
	// KindProtocol: an answer stashgen does not understand (an unexpected
	// status on a file probe, a body over the size cap).
	KindProtocol
)

// Error is every error the client returns, apart from context
// cancellation and ErrJobNotFound. It names Stash's URL without secrets.
type Error struct {
	Op     string // GraphQL field or "GET <path>"
	URL    string // redacted: no userinfo, no query
	Kind   Kind
	Status int // HTTP status, 0 when there was none
	Msg    string
	Err    error

	// secret is the API key, blanked from Error() as a last line of
	// defence: a decoding error may quote a value Stash sent back.
	secret string
}

func (e *Error) Error() string {
	var what string
	switch e.Kind {
	case KindUnavailable:
		what = "stash unavailable"
	case KindAuth:
		what = "stash rejected the API key"
	case KindGraphQL:
		what = "stash answered with an error"
	default:
		what = "unexpected answer from stash"
	}
	s := fmt.Sprintf("%s at %s (%s)", what, e.URL, e.Op)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.secret != "" {
		s = strings.ReplaceAll(s, e.secret, "<redacted>")
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode follows sysexits: 77 for a rejected key, 69 for everything that
// makes Stash unusable right now.
func (e *Error) ExitCode() int {
	if e.Kind == KindAuth {
		return 77
	}
	return 69
}

// Hint says what the user can do about it.
func (e *Error) Hint() string {
	if errors.Is(e.Err, ErrUpgradeRefused) {
		return "let the reverse proxy in front of Stash pass websocket upgrades on /graphql (the Upgrade and Connection headers)"
	}
	switch e.Kind {
	case KindAuth:
		return "check stash.api_key (or api_key_file / STASHGEN_STASH_API_KEY) against Settings > Security > API Key in Stash"
	case KindUnavailable:
		return "check that Stash is running and that stash.url (" + e.URL + ") is the address you open Stash at"
	case KindGraphQL:
		return "this Stash may be older than stashgen supports; check Stash's log for the same error"
	default:
		return "check that stash.url points at Stash itself, not at a proxy error page"
	}
}

// IsKind reports whether err is a stash *Error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// redactURL drops userinfo and query so an error never carries a secret.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

// unwrapURLError strips net/http's `Post "url":` prefix, which would repeat
// the URL we already print.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
