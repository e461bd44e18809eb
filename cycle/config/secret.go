package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Redacted is what a secret prints as.
const Redacted = "<redacted>"

// Secret is a string that never prints itself: fmt (every verb), JSON, text
// marshalling and slog all see "<redacted>" (or "" when it is empty, so
// "not set" stays visible). Only Reveal gives the value back.
type Secret string

// Reveal returns the secret itself. Call it only where the secret is sent
// (the ApiKey header), never to build a message.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format implements fmt.Formatter so that no verb (%x included) reaches the
// underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprint(f, strconv.Quote(s.String()))
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalText implements encoding.TextMarshaler (slog's text handler, TOML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// secretParams are query parameters whose values RedactURL hides.
var secretParams = map[string]bool{
	"password":     true,
	"sslpassword":  true,
	"apikey":       true,
	"api_key":      true,
	"api-key":      true,
	"token":        true,
	"access_token": true,
}

// dsnPassword matches password=... in a key=value connection string, and
// apikey=/api_key=/token= wherever a non-URL value carries one, quoted
// (possibly unterminated, to be safe) or not.
var dsnPassword = regexp.MustCompile(`(?i)((?:(?:ssl)?password|api_?key|token)\s*=\s*)('(?:[^'\\]|\\.)*(?:'|\\?$)|\S+)`)

// RedactURL hides the secrets in a URL or a key=value DSN so it can be
// printed: the password of the userinfo (postgres://user:<redacted>@host/db),
// any apikey, api_key, password or token query parameter, and password=... in
// DSN form. It works on the raw text, without a full parse, so that a URL too
// broken to parse is still redacted; when in doubt it hides too much.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || strings.ContainsAny(scheme, " \t=") {
		return dsnPassword.ReplaceAllString(raw, "${1}"+Redacted)
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")

	// The userinfo ends at the last '@' before the first '/', '?' or '#' that
	// follows the first '@'. Searching from the first '@' means a password
	// with an unescaped '/', '?' or '#' is still hidden whole.
	if first := strings.IndexByte(rest, '@'); first >= 0 {
		end := len(rest)
		if i := strings.IndexAny(rest[first:], "/?#"); i >= 0 {
			end = first + i
		}
		at := strings.LastIndexByte(rest[:end], '@')
		user := rest[:at]
		if c := strings.IndexByte(user, ':'); c >= 0 {
			b.WriteString(user[:c+1])
			b.WriteString(Redacted)
		} else {
			b.WriteString(user)
		}
		rest = rest[at:]
	}

	path, query, hasQuery := strings.Cut(rest, "?")
	b.WriteString(path)
	if !hasQuery {
		return b.String()
	}
	query, fragment, hasFragment := strings.Cut(query, "#")
	b.WriteByte('?')
	for i, param := range strings.Split(query, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		k, _, hasValue := strings.Cut(param, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && secretParams[strings.ToLower(strings.TrimSpace(name))] {
			b.WriteString(k + "=" + Redacted)
			continue
		}
		b.WriteString(param)
	}
	if hasFragment {
		b.WriteByte('#')
		b.WriteString(fragment)
	}
	return b.String()
}

// hasSecret reports whether RedactURL would hide something in raw.
func hasSecret(raw string) bool { return RedactURL(raw) != raw }

func quote(s string) string { return strconv.Quote(s) }
