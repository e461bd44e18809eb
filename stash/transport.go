package stash

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
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

	serverTime atomic.Pointer[time.Time] // Date header of the latest answer
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
	t.noteDate(res)
	body, err := io.ReadAll(io.LimitReader(res.Body, t.maxBody+1))
	res.Body.Close()
	if err != nil {
		return nil, &Error{URL: t.where, Kind: KindUnavailable, Status: res.StatusCode, Msg: "reading the answer", Err: err}
	}
	if int64(len(body)) > t.maxBody {
		return nil, &Error{URL: t.where, Kind: KindProtocol, Status: res.StatusCode,
			Msg: fmt.Sprintf("answer larger than %d bytes, refused", t.maxBody)}
	}
	if err := checkAPIAnswer(res, body); err != nil {
		err.URL = t.where
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	return res, nil
}

func (t *apiTransport) noteDate(res *http.Response) {
	if d, err := http.ParseTime(res.Header.Get("Date")); err == nil {
		t.serverTime.Store(&d)
	}
}

// checkAPIAnswer decides whether a GraphQL HTTP answer may be handed to the
// JSON decoder, and says what is wrong with it if not.
func checkAPIAnswer(res *http.Response, body []byte) *Error {
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
			Msg: fmt.Sprintf("HTTP %d redirect to %s; set stash.url to the address it redirects to", status, snippet([]byte(loc)))}
	case status >= 500:
		return &Error{Kind: KindUnavailable, Status: status, Msg: fmt.Sprintf("HTTP %d: %s", status, snippet(body))}
	}
	if !json.Valid(body) {
		return &Error{Kind: KindUnavailable, Status: status,
			Msg: fmt.Sprintf("HTTP %d answer is not JSON (%s): %s", status, res.Header.Get("Content-Type"), snippet(body))}
	}
	var env struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return &Error{Kind: KindProtocol, Status: status, Msg: "answer is not a GraphQL response", Err: err}
	}
	if len(env.Errors) > 0 {
		msgs := make([]string, len(env.Errors))
		for i, e := range env.Errors {
			msgs[i] = e.Message
		}
		return &Error{Kind: KindGraphQL, Status: status, Msg: snippet([]byte(strings.Join(msgs, "; ")))}
	}
	if status != http.StatusOK {
		return &Error{Kind: KindProtocol, Status: status, Msg: fmt.Sprintf("HTTP %d: %s", status, snippet(body))}
	}
	return nil
}

var (
	secretParam = regexp.MustCompile(`(?i)(api_?key|password|token)=[^&\s"'<>]*`)
	unprintable = regexp.MustCompile(`[^\x20-\x7e]+`)
)

// snippet is the start of a body, safe to print: one line, short, and with
// anything that looks like a key parameter blanked.
func snippet(b []byte) string {
	const max = 120
	s := unprintable.ReplaceAllString(string(b), " ")
	s = secretParam.ReplaceAllString(s, "$1=<redacted>")
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		return "(empty)"
	}
	return fmt.Sprintf("%q", s)
}
