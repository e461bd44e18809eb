package stash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// apiTransport wraps every GraphQL round trip. machinebox/graphql has no
// timeout, reads whole bodies, keeps only the first GraphQL error and
// ignores the HTTP status when the body decodes; this fixes all of that in
// one place, and it is the only place the API key is attached.
type apiTransport struct {
	base    http.RoundTripper
	key     string
	maxBody int64
	where   string // redacted endpoint, for errors
}

// dateKey marks the context of one GraphQL call whose caller wants Stash's
// clock as of its answer: the transport stores the Date header there, so
// the time travels with the answer it belongs to.
type dateKey struct{}

// withDate returns a context whose answer's Date header lands in *t.
func withDate(ctx context.Context, t *time.Time) context.Context {
	return context.WithValue(ctx, dateKey{}, t)
}

func (t *apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if t.key != "" {
		req.Header.Set("ApiKey", t.key)
	}
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	noteDate(req.Context(), res)
	defer res.Body.Close()
	tooBig := func() error {
		return &Error{URL: t.where, Kind: KindProtocol, Status: res.StatusCode,
			Msg: fmt.Sprintf("answer larger than %d bytes, refused", t.maxBody), secret: t.key}
	}
	if res.ContentLength > t.maxBody {
		return nil, tooBig() // declared too big: not a byte is read
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, t.maxBody+1))
	if err != nil {
		// A plain error: the caller finds it inside a *url.Error (or the
		// client's timeout error) and makes it KindUnavailable.
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if int64(len(body)) > t.maxBody {
		return nil, tooBig()
	}
	if err := checkAPIAnswer(res, body, t.key); err != nil {
		err.URL = t.where
		err.secret = t.key
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	return res, nil
}

// noteDate stores the answer's Date header for a caller that asked for it.
func noteDate(ctx context.Context, res *http.Response) {
	dst, ok := ctx.Value(dateKey{}).(*time.Time)
	if !ok {
		return
	}
	if d, err := http.ParseTime(res.Header.Get("Date")); err == nil {
		*dst = d
	}
}

// checkAPIAnswer decides whether a GraphQL HTTP answer may be handed to the
// JSON decoder, and says what is wrong with it if not. Whatever it lets
// through is a JSON object with a data object: machinebox/graphql panics
// on a bare null, and an answer without data would read as empty results.
// key is blanked from everything it quotes.
func checkAPIAnswer(res *http.Response, body []byte, key string) *Error {
	status := res.StatusCode
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &Error{Kind: KindAuth, Status: status, Msg: fmt.Sprintf("HTTP %d", status)}
	case status >= 300 && status < 400:
		loc := res.Header.Get("Location")
		if strings.Contains(loc, "login") {
			return &Error{Kind: KindAuth, Status: status, Msg: fmt.Sprintf("HTTP %d to the login page", status)}
		}
		return &Error{Kind: KindProtocol, Status: status,
			Msg: fmt.Sprintf("HTTP %d redirect to %s; set stash.url to the address it redirects to", status, snippet([]byte(loc), key))}
	case status >= 500:
		return &Error{Kind: KindUnavailable, Status: status, Msg: fmt.Sprintf("HTTP %d: %s", status, snippet(body, key))}
	}
	// One pass: the data is only looked at, not copied (machinebox decodes
	// it afterwards); json.Valid runs only to explain a failure.
	var env struct {
		Data   firstByte `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(body, &env) != nil {
		if !json.Valid(body) {
			return &Error{Kind: KindUnavailable, Status: status,
				Msg: fmt.Sprintf("HTTP %d answer is not JSON (%s): %s", status,
					clean(res.Header.Get("Content-Type"), key, 60), snippet(body, key))}
		}
		// A bare null or array would decode into env without complaint.
		return &Error{Kind: KindProtocol, Status: status,
			Msg: fmt.Sprintf("HTTP %d answer is not a GraphQL response: %s", status, snippet(body, key))}
	}
	if len(env.Errors) > 0 {
		// Every message: the first is often not the one that explains.
		msgs := make([]string, len(env.Errors))
		for i, e := range env.Errors {
			msgs[i] = clean(e.Message, key, 300)
		}
		return &Error{Kind: KindGraphQL, Status: status, Msg: strings.Join(msgs, "; ")}
	}
	if status != http.StatusOK {
		return &Error{Kind: KindProtocol, Status: status, Msg: fmt.Sprintf("HTTP %d: %s", status, snippet(body, key))}
	}
	if env.Data != '{' {
		return &Error{Kind: KindProtocol, Status: status, Msg: "answer has neither data nor errors: " + snippet(body, key)}
	}
	return nil
}

// firstByte records only the first byte of a JSON value: enough to tell an
// object from null without copying it.
type firstByte byte

func (f *firstByte) UnmarshalJSON(b []byte) error {
	if len(b) > 0 {
		*f = firstByte(b[0])
	}
	return nil
}

var (
	secretParam = regexp.MustCompile(`(?i)(api_?key|password|token)=[^&\s"'<>]*`)
	unprintable = regexp.MustCompile(`[^\x20-\x7e]+`)
)

// clean makes text from Stash (or whatever answered instead) safe to print:
// one line of printable ASCII, no key, at most max bytes.
func clean(s, key string, max int) string {
	s = redactKey(s, key)
	s = unprintable.ReplaceAllString(s, " ")
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// scrub makes a whole text from Stash safe to keep and print: no key (a
// stream URL in a log line carries it as apikey=), no terminal control
// characters; line breaks and length are kept.
func scrub(s, key string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, redactKey(s, key))
}

// redactKey hides the key, and any key=, password= or token= value, in s.
func redactKey(s, key string) string {
	s = secretParam.ReplaceAllString(s, "$1=<redacted>")
	if key != "" {
		s = strings.ReplaceAll(s, key, "<redacted>")
	}
	return s
}

// snippet is the start of a body, safe to print and quoted.
func snippet(b []byte, key string) string {
	s := clean(string(b), key, 120)
	if s == "(empty)" {
		return s
	}
	return fmt.Sprintf("%q", s)
}
