package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/cycle/notify"
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

// Secrets lists the values no output may show, for the log handler and
// the output filter to replace with Redacted: the Stash API key, the
// database password the connection string carries (see dbPasswords), and
// the secret part of the ping URL (notify.Secret). A value of fewer than
// two characters is left out: replacing it would blank that letter in
// every line and hide nothing. The list has no duplicates and is longest
// first, so replacing in order never leaves part of a longer secret that
// contains a shorter one.
func (c *Config) Secrets() []string {
	all := []string{c.Stash.APIKey.Reveal()}
	all = append(all, dbPasswords(c.Database.URL)...)
	all = append(all, notify.Secret(c.Notify.PingURL))

	var out []string
	for _, s := range all {
		if utf8.RuneCountInString(s) >= 2 && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

// dbPasswords returns the password a PostgreSQL connection string itself
// carries, in the userinfo (postgres://u:pw@h), a ?password= parameter or
// a key=value password='...', as pgx.ParseConfig decodes it (the parser
// the connection uses: percent-escapes, quotes, backslashes), plus the
// text it is written as where that differs (p%40ss for p@ss), which is
// what a connection string that reached a log unredacted would show.
//
// When the string carries no password, pgx fills one in from PGPASSWORD,
// a service file or ~/.pgpass; those are left out. They are not part of
// the configuration, they would be read again on every call, and a .pgpass
// password such as "postgres" would blank that word in every line.
//
// A string pgx cannot parse (Load rejects those) still yields the password
// as written, where the rules below find one: over-redacting is the safe
// side.
func dbPasswords(raw string) []string {
	written := writtenPasswords(raw)
	if len(written) == 0 {
		return nil
	}
	if pc, err := pgx.ParseConfig(raw); err == nil && pc.Password != "" {
		written = append(written, pc.Password)
	}
	return written
}

// writtenPasswords finds the non-empty passwords in a connection string
// by pgconn's rules, as they are written: a URL when it starts with
// postgres:// or postgresql://, else key=value pairs.
func writtenPasswords(raw string) []string {
	for _, scheme := range []string{"postgresql://", "postgres://"} {
		if rest, ok := strings.CutPrefix(raw, scheme); ok {
			return urlPasswords(rest)
		}
	}
	return keywordPasswords(raw)
}

// urlPasswords reads the userinfo password (the userinfo ends at the
// first '@' when no '/' comes before it, as in libpq) and every
// password= query parameter.
func urlPasswords(rest string) []string {
	var out []string
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		if _, pw, ok := strings.Cut(rest[:i], ":"); ok && pw != "" {
			out = append(out, pw)
		}
		rest = rest[i+1:]
	}
	_, query, _ := strings.Cut(rest, "?")
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(pair, "=")
		if name, err := url.PathUnescape(k); (err == nil && name == "password" || k == "password") && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// keywordPasswords reads every password=value of a key=value string: the
// value is 'quoted' (a backslash escapes the next character) or runs to
// the next space. It returns the text inside the quotes, escapes and all;
// an unterminated quote runs to the end.
func keywordPasswords(s string) []string {
	const spaces = " \t\n\r\v\f"
	var out []string
	for {
		s = strings.TrimLeft(s, spaces)
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return out
		}
		key := strings.Trim(s[:eq], spaces)
		s = strings.TrimLeft(s[eq+1:], spaces)
		quoted := strings.HasPrefix(s, "'")
		start, end := 0, 0
		if quoted {
			start, end = 1, 1
		}
		for end < len(s) {
			if quoted && s[end] == '\'' || !quoted && strings.IndexByte(spaces, s[end]) >= 0 {
				break
			}
			if s[end] == '\\' {
				end++
			}
			end++
		}
		end = min(end, len(s))
		if value := s[start:end]; key == "password" && value != "" {
			out = append(out, value)
		}
		if quoted && end < len(s) {
			end++ // the closing quote
		}
		s = s[end:]
	}
}

// hasSecret reports whether RedactURL would hide something in raw.
func hasSecret(raw string) bool { return RedactURL(raw) != raw }

func quote(s string) string { return strconv.Quote(s) }
